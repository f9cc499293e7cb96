//! vnet's data-plane extension of the API (not part of Azure's surface; under `/vnet/v1/`):
//!
//! * **Bindings** — which workload network namespace a NIC is attached to on this host:
//!   `PUT/GET/DELETE /vnet/v1/bindings/{nic-id}`, `GET /vnet/v1/bindings`. Stored under their
//!   own store prefix ([`BIND_PREFIX`]), so Azure resources' JSON is untouched. A PUT or DELETE
//!   answers once the agent has installed (acknowledged) the generation that contains it.
//! * **Status** — `GET /vnet/v1/dataplane` (planned and applied generations, every bound NIC
//!   with its counters), `GET /vnet/v1/nics/{nic-id}` (one NIC).
//! * **Capture** — `POST /vnet/v1/capture/{nic-id}?duration=S` answers with a pcap file.
//!
//! [`start`] runs the planner: on every store change it compiles the state into host tables
//! (`plan::compile`, generation = store revision) and installs them in the in-process agent.

use crate::http::{self, json_response};
use crate::routes::{App, Req};
use axum::body::Body;
use axum::http::Method;
use axum::response::Response;
use model::{ArmError, ArmResult};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use store::{Op, Store};

/// Store key prefix of bindings: `dp/bind/<lower-cased NIC id>`.
pub const BIND_PREFIX: &str = "dp/bind/";
/// Store key of this server's instance id: whose managed namespaces are ours
/// ([`agent::owner`]). Kept in the store so it survives restarts and moves with the data.
pub const INSTANCE_KEY: &str = "dp/instance";
/// How long a binding write waits for the agent's acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// The data plane of one server: the in-process agent (when this host can run one) and the
/// planner's progress.
pub struct Dataplane {
    agent: Option<Arc<agent::Agent>>,
    /// Why the data plane is off (not root, no /dev/net/tun, …).
    pub off_reason: Option<String>,
    planned: AtomicU64,
}

impl Dataplane {
    pub fn agent(&self) -> Option<&Arc<agent::Agent>> {
        self.agent.as_ref()
    }
    pub fn planned_generation(&self) -> u64 {
        self.planned.load(Ordering::SeqCst)
    }
}

/// Starts the agent and the planner for `app` (once; later calls return the same data plane).
/// Without root or /dev/net/tun the data plane is off: bindings are still stored, and the
/// reason is logged and reported by `GET /vnet/v1/dataplane`.
pub fn start(app: &Arc<App>) -> Arc<Dataplane> {
    if let Some(d) = app.dataplane.get() {
        return d.clone();
    }
    let started = agent::dataplane_supported().and_then(|_| {
        let instance = instance_id(app.engine.store())?;
        agent::Agent::start_as(&instance).map_err(|e| format!("cannot start the agent: {e}"))
    });
    let (agent, off_reason) = match started {
        Ok(a) => (Some(a), None),
        Err(e) => {
            tracing::warn!(reason = %e, "data plane off: NICs carry no packets on this host");
            (None, Some(e))
        }
    };
    let dp = Arc::new(Dataplane {
        agent: agent.clone(),
        off_reason,
        planned: AtomicU64::new(0),
    });
    if app.dataplane.set(dp.clone()).is_err() {
        return app.dataplane.get().cloned().unwrap_or(dp);
    }
    if let Some(agent) = agent {
        tracing::info!(workers = agent.workers(), "data plane on");
        tokio::spawn(planner(app.clone(), dp.clone(), agent));
    }
    dp
}

/// This server's instance id, made (random) at the first start of the data plane.
fn instance_id(store: &Arc<dyn Store>) -> Result<String, String> {
    let err = |e: store::StoreError| format!("cannot read the server's instance id: {e}");
    if let Some(id) = store.get(INSTANCE_KEY).map_err(err)? {
        return Ok(id);
    }
    let id = uuid::Uuid::new_v4().to_string();
    store
        .commit(&[Op::Put {
            key: INSTANCE_KEY.into(),
            value: id.clone(),
        }])
        .map_err(err)?;
    Ok(id)
}

fn read_bindings(store: &Arc<dyn Store>) -> Result<(u64, BTreeMap<String, plan::Binding>), String> {
    let (rev, items) = store.range(BIND_PREFIX).map_err(|e| e.to_string())?;
    let b = items
        .into_iter()
        .filter_map(|(k, v)| {
            Some((
                k[BIND_PREFIX.len()..].to_string(),
                serde_json::from_str(&v).ok()?,
            ))
        })
        .collect();
    Ok((rev, b))
}

async fn planner(app: Arc<App>, dp: Arc<Dataplane>, agent: Arc<agent::Agent>) {
    loop {
        let (a, d, ag) = (app.clone(), dp.clone(), agent.clone());
        let r = tokio::task::spawn_blocking(move || -> Result<u64, String> {
            let (rev, bindings) = read_bindings(a.engine.store())?;
            // Barrier: a write whose store commit is in `rev` may still be applying to memory;
            // an empty write waits for it (writes are serialised), so the state read next
            // contains at least revision `rev`.
            a.engine.write(&[], |_, _| Ok(())).map_err(|e| e.message)?;
            let tables = a.engine.read(|st| plan::compile(st, &bindings, rev));
            d.planned.store(rev, Ordering::SeqCst);
            ag.install(tables);
            Ok(rev)
        })
        .await;
        let rev = match r {
            Ok(Ok(rev)) => rev,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "planning failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "planner task failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        wait_for_change(app.engine.store(), rev).await;
    }
}

/// Why [`wait_for_change`] returned; in every case the planner re-plans from a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A commit after the planned revision.
    Changed,
    /// The history after the planned revision was compacted away (the planner fell behind
    /// the retained history): what it planned is stale, and only a fresh snapshot is right.
    Resync,
    /// The watch failed otherwise (logged); retried after a pause.
    Failed,
}

/// Waits for the first commit after `rev`. A compacted history is the "resync from
/// snapshot" signal: returned at once (no pause), as the snapshot is the remedy.
pub async fn wait_for_change(store: &Arc<dyn Store>, rev: u64) -> Wake {
    let mut w = store.watch(rev);
    match w.next().await {
        Ok(_) => Wake::Changed,
        Err(e) if e.needs_resync() => {
            tracing::info!(planned = rev, error = %e, "planner fell behind the retained history; resyncing from a snapshot");
            Wake::Resync
        }
        Err(e) => {
            tracing::warn!(error = %e, "store watch failed; re-planning");
            tokio::time::sleep(Duration::from_millis(200)).await;
            Wake::Failed
        }
    }
}

fn nic_key(tail: &str) -> String {
    format!("/{}", http::percent_decode(tail.trim_matches('/'))).to_ascii_lowercase()
}

fn not_found(what: String) -> ArmError {
    ArmError::new(404, "NotFound", what)
}

fn counters_json(c: &agent::CounterSnapshot) -> Value {
    json!({"packetsOut": c.out_packets, "bytesOut": c.out_bytes, "packetsIn": c.in_packets, "bytesIn": c.in_bytes, "drops": c.drops})
}

fn status_json(s: &agent::NicStatus) -> Value {
    json!({"nicId": s.key, "name": s.name, "netns": s.netns, "ifname": s.ifname, "mtu": s.mtu, "attached": s.attached,
           "error": s.error, "counters": counters_json(&s.counters)})
}

fn binding_json(key: &str, b: &plan::Binding, st: Option<&agent::NicStatus>) -> Value {
    let mut v = json!({"nicId": key, "netns": b.netns, "managed": b.managed, "ifname": b.ifname(), "mtu": b.mtu.unwrap_or(plan::DEFAULT_MTU)});
    if let Some(s) = st {
        v["attached"] = json!(s.attached);
        v["error"] = json!(s.error);
    }
    v
}

/// Waits until the agent has acknowledged a generation at or after `rev`.
async fn wait_applied(dp: &Dataplane, rev: u64) -> bool {
    let Some(a) = dp.agent() else { return false };
    let deadline = tokio::time::Instant::now() + ACK_TIMEOUT;
    while a.applied_generation() < rev {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

fn nic_status(dp: Option<&Arc<Dataplane>>, key: &str) -> Option<agent::NicStatus> {
    dp?.agent()?.status().into_iter().find(|s| s.key == key)
}

fn store_err(e: impl std::fmt::Display) -> ArmError {
    ArmError::new(500, "InternalServerError", format!("The store failed: {e}"))
}

/// Answers `/vnet/v1/...`.
pub async fn dispatch(app: &Arc<App>, req: &Req) -> ArmResult<Response> {
    let path = req.path.trim_matches('/');
    let rest = path
        .get("vnet/v1".len()..)
        .unwrap_or("")
        .trim_start_matches('/');
    let (head, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let dp = app.dataplane.get();
    let store = app.engine.store().clone();
    let m = &req.method;
    match head.to_ascii_lowercase().as_str() {
        "dataplane" if *m == Method::GET && tail.is_empty() => {
            let (enabled, reason, applied, nics) = match dp {
                Some(d) => (
                    d.agent.is_some(),
                    d.off_reason.clone(),
                    d.agent().map(|a| a.applied_generation()).unwrap_or(0),
                    d.agent()
                        .map(|a| a.status().iter().map(status_json).collect::<Vec<_>>())
                        .unwrap_or_default(),
                ),
                None => (
                    false,
                    Some("the data plane was not started in this server".to_string()),
                    0,
                    vec![],
                ),
            };
            let planned = dp.map(|d| d.planned_generation()).unwrap_or(0);
            let rev = store.revision().map_err(store_err)?;
            Ok(json_response(
                200,
                &json!({"enabled": enabled, "reason": reason, "storeRevision": rev, "plannedGeneration": planned, "appliedGeneration": applied, "nics": nics}),
                &[],
            ))
        }
        "bindings" if tail.is_empty() && *m == Method::GET => {
            let (_, b) = read_bindings(&store).map_err(store_err)?;
            let all = dp
                .and_then(|d| d.agent())
                .map(|a| a.status())
                .unwrap_or_default();
            let value: Vec<Value> = b
                .iter()
                .map(|(k, v)| binding_json(k, v, all.iter().find(|s| &s.key == k)))
                .collect();
            Ok(json_response(200, &json!({"value": value}), &[]))
        }
        "bindings" if !tail.is_empty() => {
            let key = nic_key(tail);
            let skey = format!("{BIND_PREFIX}{key}");
            if *m == Method::GET {
                let v = store
                    .get(&skey)
                    .map_err(store_err)?
                    .ok_or_else(|| not_found(format!("NIC {key} has no binding.")))?;
                let b: plan::Binding = serde_json::from_str(&v).map_err(store_err)?;
                return Ok(json_response(
                    200,
                    &binding_json(&key, &b, nic_status(dp, &key).as_ref()),
                    &[],
                ));
            }
            if *m == Method::DELETE {
                let existed = store.get(&skey).map_err(store_err)?.is_some();
                let rev = store
                    .commit(&[Op::Delete { key: skey }])
                    .map_err(store_err)?;
                if let Some(d) = dp {
                    wait_applied(d, rev).await;
                }
                return Ok(http::empty(if existed { 200 } else { 204 }, &[]));
            }
            if *m != Method::PUT {
                return Err(ArmError::new(
                    405,
                    "MethodNotAllowed",
                    format!("{m} is not supported on bindings."),
                ));
            }
            let b: plan::Binding = serde_json::from_slice(&req.body)
                .map_err(|e| ArmError::bad("InvalidRequestFormat", format!("The binding body is not valid: {e}. Expected {{\"netns\": NAME-OR-PATH, \"managed\": BOOL, \"ifname\": NAME, \"mtu\": N}}.")))?;
            b.validate()
                .map_err(|e| ArmError::bad("InvalidBinding", e))?;
            // A managed namespace (`vnet vm`) that exists and is not this server's is refused
            // here, before anything is stored; the agent refuses it again when installing (it
            // may appear in between).
            if b.managed && !b.netns.starts_with('/') {
                if let Some(a) = dp.and_then(|d| d.agent()) {
                    a.check_managed_netns(&b.netns)
                        .map_err(|why| ArmError::new(409, "NetworkNamespaceNotOwned", why))?;
                }
            }
            let text = serde_json::to_string(&b).map_err(store_err)?;
            // Checked and committed under the engine's writer lock: a NIC deleted meanwhile
            // cannot leave a binding behind, and two attaches cannot both take one ifname.
            let rev = app.engine.commit_beside(
                |st| {
                    let is_nic = key.contains("/providers/microsoft.network/networkinterfaces/")
                        && st.get(&key).is_some();
                    if !is_nic {
                        return Err(not_found(format!("Network interface {key} was not found.")));
                    }
                    let (_, all) = read_bindings(&store).map_err(store_err)?;
                    match all
                        .iter()
                        .find(|(k, o)| **k != key && o.netns == b.netns && o.ifname() == b.ifname())
                    {
                        Some((other, _)) => Err(ArmError::new(
                            409,
                            "BindingConflict",
                            format!(
                                "NIC {other} is already attached as {} in network namespace {}.",
                                b.ifname(),
                                b.netns
                            ),
                        )),
                        None => Ok(()),
                    }
                },
                &[Op::Put {
                    key: skey,
                    value: text,
                }],
            )?;
            if let Some(d) = dp {
                wait_applied(d, rev).await;
            }
            Ok(json_response(
                200,
                &binding_json(&key, &b, nic_status(dp, &key).as_ref()),
                &[],
            ))
        }
        "nics" if *m == Method::GET && !tail.is_empty() => {
            let key = nic_key(tail);
            let s = nic_status(dp, &key)
                .ok_or_else(|| not_found(format!("NIC {key} is not bound on this host.")))?;
            Ok(json_response(200, &status_json(&s), &[]))
        }
        "capture" if *m == Method::POST && !tail.is_empty() => {
            let key = nic_key(tail);
            let secs: f64 = req
                .query
                .get("duration")
                .and_then(|s| s.parse().ok())
                .unwrap_or(10.0);
            if !(0.0..=600.0).contains(&secs) {
                return Err(ArmError::bad(
                    "InvalidDuration",
                    "duration must be between 0 and 600 seconds.",
                ));
            }
            let a = dp.and_then(|d| d.agent().cloned()).ok_or_else(|| {
                ArmError::new(409, "DataPlaneOff", "The data plane is off on this server.")
            })?;
            let bytes =
                tokio::task::spawn_blocking(move || a.capture(&key, Duration::from_secs_f64(secs)))
                    .await
                    .map_err(store_err)?
                    .map_err(|e| not_found(e.to_string()))?;
            Response::builder()
                .status(200)
                .header("content-type", "application/vnd.tcpdump.pcap")
                .body(Body::from(bytes))
                .map_err(store_err)
        }
        _ => Err(not_found(format!(
            "No data-plane route matches {} {}.",
            m, req.path
        ))),
    }
}
