//! The engine: the desired state in memory, kept identical to the store on disk.
//!
//! Writes are serialised (one writer at a time, as in Azure's per-resource locking but
//! simpler): a write stages its changes over the current state with the pure model, commits
//! them to the store in one transaction (one revision), and only then applies them in memory.
//! A refused or failed write therefore changes nothing anywhere. Reads take a shared lock and
//! never wait for the disk.

use model::{ArmError, ArmResult, Config, Ctx, State, Tx};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use store::{Op, Store};

/// Store key prefix of resource documents.
const RES: &str = "res/";
/// Store key prefix of long-running operation records.
const OPS: &str = "op/";

/// A long-running operation's record (`Azure-AsyncOperation` status).
#[derive(Debug, Clone)]
pub struct Operation {
    pub id: String,
    pub status: String,
    pub resource_key: Option<String>,
    pub error: Option<ArmError>,
    pub start: String,
    pub end: Option<String>,
}

impl Operation {
    /// An operation that is already over (deletes and resets that finish synchronously but
    /// answer with polling URLs).
    pub fn completed(resource_key: Option<String>) -> Operation {
        let now = now_rfc3339();
        Operation {
            id: uuid::Uuid::new_v4().to_string(),
            status: "Succeeded".into(),
            resource_key,
            error: None,
            start: now.clone(),
            end: Some(now),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut v =
            json!({"id": self.id, "name": self.id, "status": self.status, "startTime": self.start});
        if let Some(e) = &self.end {
            v["endTime"] = json!(e);
        }
        if let Some(e) = &self.error {
            v["error"] = e.to_json()["error"].clone();
        }
        v
    }
    fn to_store(&self) -> String {
        json!({"id": self.id, "status": self.status, "resource": self.resource_key, "start": self.start, "end": self.end,
               "error": self.error.as_ref().map(|e| json!({"code": e.code, "message": e.message}))})
        .to_string()
    }
    fn from_store(s: &str) -> Option<Operation> {
        let v: Value = serde_json::from_str(s).ok()?;
        Some(Operation {
            id: v["id"].as_str()?.to_string(),
            status: v["status"].as_str()?.to_string(),
            resource_key: v["resource"].as_str().map(String::from),
            error: v.get("error").and_then(|e| {
                Some(ArmError::bad(
                    e.get("code")?.as_str()?,
                    e.get("message")?.as_str()?.to_string(),
                ))
            }),
            start: v["start"].as_str().unwrap_or("").to_string(),
            end: v["end"].as_str().map(String::from),
        })
    }
}

pub struct Engine {
    state: RwLock<State>,
    store: Arc<dyn Store>,
    writer: Mutex<()>,
    pub config: Config,
    ops: RwLock<HashMap<String, Operation>>,
    /// Seals the write-only fields kept beside the documents (see `secrets.rs`).
    sealer: crate::secrets::Sealer,
}

/// Current time in RFC 3339 (UTC, seconds).
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let dd = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Random 128-bit values from aws-lc's generator (seeded by the OS): a VNet PUT asks for one
/// per subnet etag, and opening /dev/urandom for each of 3,000 subnets cost milliseconds
/// under the writer lock.
pub fn random_u128() -> u128 {
    let mut b = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut b).is_ok() {
        return u128::from_le_bytes(b);
    }
    use std::io::Read;
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        if f.read_exact(&mut b).is_ok() {
            return u128::from_le_bytes(b);
        }
    }
    // Fallback: hash of time and a counter (never reached on Linux).
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    ((h.finish() as u128) << 64) | h.finish() as u128
}

/// A failed commit as a 500. The client learns what kind of failure it was (a full or
/// read-only disk), never the server's file paths; the operator's log has the whole error.
fn store_err(e: store::StoreError) -> ArmError {
    tracing::error!(error = %e, "the store failed to commit a change");
    let what = match &e {
        store::StoreError::NoSpace { .. } => "no space left on device".to_string(),
        store::StoreError::ReadOnly { .. } => "the data directory is read-only".to_string(),
        _ => "see the server's log".to_string(),
    };
    ArmError::new(
        500,
        "InternalServerError",
        format!("The store failed to commit the change: {what}."),
    )
}

impl Engine {
    /// Loads the whole desired state from the store, with secrets sealed by a key that lives
    /// in memory only (in-memory stores and tests).
    pub fn open(
        store: Arc<dyn Store>,
        config: Config,
    ) -> Result<Engine, Box<dyn std::error::Error + Send + Sync>> {
        Engine::open_sealed(store, config, crate::secrets::Sealer::ephemeral())
    }

    /// Loads the whole desired state from the store; secrets kept beside the documents are
    /// opened with `sealer` and put back into them in memory.
    pub fn open_sealed(
        store: Arc<dyn Store>,
        config: Config,
        sealer: crate::secrets::Sealer,
    ) -> Result<Engine, Box<dyn std::error::Error + Send + Sync>> {
        let changes = crate::secrets::load(store.as_ref(), &sealer, RES)?;
        let mut state = State::new();
        state.apply(&changes);
        let (_, ops) = store.range(OPS)?;
        let ops = ops
            .into_iter()
            .filter_map(|(_, v)| Operation::from_store(&v))
            .map(|o| (o.id.clone(), o))
            .collect();
        Ok(Engine {
            state: RwLock::new(state),
            store,
            writer: Mutex::new(()),
            config,
            ops: RwLock::new(ops),
            sealer,
        })
    }

    /// Runs `f` against the current state under the read lock.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        let st = self.state.read().unwrap_or_else(|e| e.into_inner());
        f(&st)
    }

    /// Runs one write: `f` stages changes in a transaction; they are committed to the store
    /// and applied in memory only if `f` succeeds. `extra` operation records are committed in
    /// the same store transaction.
    pub fn write<R>(
        &self,
        ops: &[Operation],
        f: impl FnOnce(&mut Tx, &mut Ctx) -> ArmResult<R>,
    ) -> ArmResult<R> {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let (result, changes) = {
            let st = self.state.read().unwrap_or_else(|e| e.into_inner());
            let mut tx = Tx::new(&st);
            let mut rng = random_u128;
            let mut ctx = Ctx {
                config: &self.config,
                now: now_rfc3339(),
                rng: &mut rng,
            };
            let r = f(&mut tx, &mut ctx)?;
            (r, tx.into_changes())
        };
        // Documents without their write-only fields; those go sealed beside them.
        let mut store_ops: Vec<Op> = {
            let st = self.state.read().unwrap_or_else(|e| e.into_inner());
            changes
                .iter()
                .flat_map(|(k, v)| {
                    let res_key = format!("{RES}{k}");
                    crate::secrets::store_ops(&self.sealer, k, res_key, st.get(k), v.as_ref())
                })
                .collect()
        };
        // A deleted NIC takes its data-plane binding with it, in the same commit: no binding
        // outlives its NIC (a NIC re-created under the same id starts unbound, as on Azure a
        // new NIC is attached to no VM).
        store_ops.extend(
            changes
                .iter()
                .filter(|(k, v)| v.is_none() && is_nic_key(k))
                .map(|(k, _)| Op::Delete {
                    key: format!("{}{k}", crate::dataplane::BIND_PREFIX),
                }),
        );
        store_ops.extend(ops.iter().map(|o| Op::Put {
            key: format!("{OPS}{}", o.id),
            value: o.to_store(),
        }));
        self.store.commit(&store_ops).map_err(store_err)?;
        self.state
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .apply(&changes);
        let mut m = self.ops.write().unwrap_or_else(|e| e.into_inner());
        for o in ops {
            m.insert(o.id.clone(), o.clone());
        }
        Ok(result)
    }

    /// Commits store records that live beside the resources (data-plane bindings) after
    /// `check` accepted the current state, both under the writer lock: no resource write can
    /// slip between the check and the commit. Returns the store revision of the commit.
    pub fn commit_beside(
        &self,
        check: impl FnOnce(&State) -> ArmResult<()>,
        ops: &[Op],
    ) -> ArmResult<u64> {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        self.read(check)?;
        self.store.commit(ops).map_err(store_err)
    }

    pub fn operation(&self, id: &str) -> Option<Operation> {
        self.ops
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Records the end of an operation (durably).
    pub fn finish_operation(&self, mut op: Operation, error: Option<ArmError>) -> ArmResult<()> {
        op.status = if error.is_some() {
            "Failed"
        } else {
            "Succeeded"
        }
        .into();
        op.error = error;
        op.end = Some(now_rfc3339());
        self.write(&[op], |_, _| Ok(()))
    }

    /// Operations still InProgress (after a restart they are finished again).
    pub fn pending_operations(&self) -> Vec<Operation> {
        self.ops
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|o| o.status == "InProgress")
            .cloned()
            .collect()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

/// Whether a state key is a network interface itself (not one of its children).
fn is_nic_key(key: &str) -> bool {
    key.rsplit_once("/providers/microsoft.network/networkinterfaces/")
        .is_some_and(|(_, name)| !name.is_empty() && !name.contains('/'))
}
