//! Request dispatch: ARM URLs to model operations.
//!
//! ARM addresses resources by path, case-insensitively. The path is split into segments and
//! matched against the shapes vnet serves: subscriptions, resource groups, Microsoft.Network
//! collections, resources, child resources and actions. The OpenAPI document is generated from
//! the same tables ([`crate::openapi`]).

use crate::engine::{now_rfc3339, Engine, Operation};
use crate::http::{self, empty, error, json_response};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use model::id::{group_prefix, Kind};
use model::ops::{self, PutOptions};
use model::{doc, render, routes as eff, ArmError, ArmResult, ResourceId};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Tunables of the HTTP layer.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// Items per page of a list before `nextLink`.
    pub page_size: usize,
    /// How long asynchronous provisioning (gateways, local gateways, connections) takes.
    pub provision_delay: Duration,
    /// "http" or "https", for the URLs in Location headers.
    pub scheme: String,
    /// The base of the URLs handed out (`Location`, `Azure-AsyncOperation`, `nextLink`, cloud
    /// metadata, token issuers): `vnet serve` always sets it (`--public-url`). `None` only for
    /// a router embedded in-process (tests), which then names the request's `Host`.
    pub public_url: Option<String>,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            page_size: 1000,
            provision_delay: Duration::from_millis(500),
            scheme: "http".into(),
            public_url: None,
        }
    }
}

pub struct App {
    pub engine: Arc<Engine>,
    pub opts: AppOptions,
    /// The data plane (agent and planner), once started by [`crate::dataplane::start`].
    pub dataplane: std::sync::OnceLock<Arc<crate::dataplane::Dataplane>>,
}

/// One request, decoded.
pub struct Req {
    pub method: Method,
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// Who decides the links of a write (`None`: no authentication, `--insecure-http`).
    pub links: Option<Arc<dyn LinkCheck>>,
}

/// Azure's linked authorization for one request's principal: may it link the written
/// resource to each of these? Called with the links of the cleaned document the write will
/// store ([`ops::Prepared::links`]), never of the raw body.
pub trait LinkCheck: Send + Sync {
    fn check(&self, links: &[model::links::Linked]) -> ArmResult<()>;
}

/// Kinds that provision asynchronously.
fn is_async(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::VirtualNetworkGateway | Kind::LocalNetworkGateway | Kind::Connection
    )
}

impl App {
    pub async fn handle(self: &Arc<Self>, req: Req) -> Response {
        match self.dispatch(&req).await {
            Ok(r) => r,
            Err(e) => error(&e),
        }
    }

    async fn dispatch(self: &Arc<Self>, req: &Req) -> ArmResult<Response> {
        let segs: Vec<String> = req
            .path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(http::percent_decode)
            .collect();
        let low: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
        let l: Vec<&str> = low.iter().map(String::as_str).collect();
        if l.as_slice() == ["openapi.json"] {
            return Ok(json_response(200, &crate::openapi::document(), &[]));
        }
        if l.first() == Some(&"vnet") {
            return crate::dataplane::dispatch(self, req).await;
        }
        if l.first() != Some(&"subscriptions") {
            return Err(not_found_route(&req.path));
        }
        let api = http::check_api_version(&req.query)?;
        let m = &req.method;
        match l.as_slice() {
            ["subscriptions"] if m == Method::GET => Ok(self.list_subscriptions()),
            ["subscriptions", _] if m == Method::GET => self.get_subscription(&segs[1]),
            ["subscriptions", _, "resourcegroups"] if m == Method::GET => {
                let prefix = format!(
                    "/subscriptions/{}/resourcegroups/",
                    segs[1].to_ascii_lowercase()
                );
                let items = self.engine.read(|st| {
                    st.scan(&prefix)
                        .filter(|(k, _)| k[prefix.len()..].find('/').is_none())
                        .map(|(_, d)| d.clone())
                        .collect::<Vec<_>>()
                });
                Ok(self.page(req, items))
            }
            ["subscriptions", _, "resourcegroups", _] => {
                let id = ResourceId::group(&segs[1], &segs[3]);
                self.resource(req, &id, &api).await
            }
            ["subscriptions", _, "providers", "microsoft.network", "locations", _, "operations", _]
                if m == Method::GET =>
            {
                let op = self.operation_for(req, &segs[1], &segs[7])?;
                let mut h = vec![];
                if op.status == "InProgress" {
                    h.push(("Retry-After".into(), "1".into()));
                }
                Ok(json_response(200, &op.to_json(), &h))
            }
            ["subscriptions", _, "providers", "microsoft.network", "locations", _, "operationresults", _]
                if m == Method::GET =>
            {
                let op = self.operation_for(req, &segs[1], &segs[7])?;
                match op.status.as_str() {
                    "InProgress" => Ok(empty(
                        202,
                        &[
                            ("Retry-After".into(), "1".into()),
                            ("Location".into(), self.url(req, &req.path, &api)),
                        ],
                    )),
                    "Failed" => Err(op.error.unwrap_or_else(|| {
                        ArmError::new(500, "InternalServerError", "The operation failed.")
                    })),
                    _ => match op
                        .resource_key
                        .as_deref()
                        .and_then(|k| self.engine.read(|st| render::get(st, k)))
                    {
                        Some(b) => Ok(json_response(200, &b, &[])),
                        None => Ok(empty(204, &[])),
                    },
                }
            }
            ["subscriptions", _, "providers", "microsoft.network", t] if m == Method::GET => {
                let kind = Kind::top_level(t).ok_or_else(|| unknown_type(t, &api))?;
                model::id::check_subscription(&segs[1])?;
                let prefix = format!("/subscriptions/{}/", segs[1].to_ascii_lowercase());
                let items = self.engine.read(|st| render::list(st, &prefix, kind));
                Ok(self.page(req, items))
            }
            ["subscriptions", _, "resourcegroups", _, "providers", "microsoft.network", t]
                if m == Method::GET =>
            {
                let kind = Kind::top_level(t).ok_or_else(|| unknown_type(t, &api))?;
                self.require_group(&segs[1], &segs[3])?;
                let prefix = group_prefix(&segs[1], &segs[3]);
                let items = self.engine.read(|st| render::list(st, &prefix, kind));
                Ok(self.page(req, items))
            }
            ["subscriptions", _, "resourcegroups", _, "providers", "microsoft.network", t, _] => {
                let kind = Kind::top_level(t).ok_or_else(|| unknown_type(t, &api))?;
                let id = ResourceId::top(&segs[1], &segs[3], kind, &segs[7]);
                self.resource(req, &id, &api).await
            }
            ["subscriptions", _, "resourcegroups", _, "providers", "microsoft.network", t, _, c] => {
                let kind = Kind::top_level(t).ok_or_else(|| unknown_type(t, &api))?;
                let parent = ResourceId::top(&segs[1], &segs[3], kind, &segs[7]);
                match Kind::child(kind, c) {
                    Some(ck) if m == Method::GET => {
                        self.require_existing(&parent)?;
                        let prefix =
                            format!("{}/{}/", parent.key(), ck.segment().to_ascii_lowercase());
                        let items = self.engine.read(|st| render::list(st, &prefix, ck));
                        Ok(self.page(req, items))
                    }
                    Some(_) => Err(method_not_allowed(m)),
                    None => self.action(req, &parent, c, None, &api).await,
                }
            }
            ["subscriptions", _, "resourcegroups", _, "providers", "microsoft.network", t, _, c, _] =>
            {
                let kind = Kind::top_level(t).ok_or_else(|| unknown_type(t, &api))?;
                let parent = ResourceId::top(&segs[1], &segs[3], kind, &segs[7]);
                match Kind::child(kind, c) {
                    Some(ck) => {
                        let id = ResourceId::child_of(&parent, ck, &segs[9]);
                        self.resource(req, &id, &api).await
                    }
                    None => self.action(req, &parent, c, Some(l[9]), &api).await,
                }
            }
            _ => Err(not_found_route(&req.path)),
        }
    }

    /// An operation record, for a caller that may read its resource: polling names the
    /// subscription in its path, and an operation of another one is not found there.
    fn operation_for(&self, req: &Req, sub: &str, id: &str) -> ArmResult<Operation> {
        let op = self.engine.operation(id).ok_or_else(|| op_not_found(id))?;
        if let Some(k) = &op.resource_key {
            let mine = format!("/subscriptions/{}/", sub.to_ascii_lowercase());
            if !k.starts_with(&mine) {
                return Err(op_not_found(id));
            }
            if let (Some(check), Some(link)) = (&req.links, model::links::read_link(k)) {
                check.check(&[link])?;
            }
        }
        Ok(op)
    }

    fn list_subscriptions(&self) -> Response {
        let subs = self.engine.read(|st| {
            // A subscription is listed once it holds a resource group.
            let mut out: Vec<String> = st
                .scan("/subscriptions/")
                .filter_map(|(_, d)| doc::doc_id(d))
                .filter(|r| r.kind == Kind::ResourceGroup)
                .map(|r| r.subscription)
                .collect();
            out.dedup();
            out
        });
        let value: Vec<Value> = subs.iter().map(|s| subscription_json(s)).collect();
        json_response(200, &json!({"value": value}), &[])
    }

    fn get_subscription(&self, sub: &str) -> ArmResult<Response> {
        model::id::check_subscription(sub)?;
        Ok(json_response(200, &subscription_json(sub), &[]))
    }

    fn require_group(&self, sub: &str, rg: &str) -> ArmResult<()> {
        model::id::check_subscription(sub)?;
        let k = ResourceId::group(sub, rg).key();
        if self.engine.read(|st| st.get(&k).is_some()) {
            Ok(())
        } else {
            Err(ops::group_not_found(rg))
        }
    }

    fn require_existing(&self, id: &ResourceId) -> ArmResult<Value> {
        if id.kind != Kind::ResourceGroup {
            self.require_group(&id.subscription, &id.resource_group)?;
        }
        let k = id.key();
        self.engine
            .read(|st| st.get(&k).cloned())
            .ok_or_else(|| ops::not_found(id))
    }

    /// A page of a list, with `nextLink` when more remain (`$skiptoken` = offset).
    fn page(&self, req: &Req, items: Vec<Value>) -> Response {
        let start: usize = req
            .query
            .get("$skiptoken")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let size = self.opts.page_size.max(1);
        let end = (start + size).min(items.len());
        let value: Vec<Value> = items
            .get(start.min(items.len())..end)
            .unwrap_or(&[])
            .to_vec();
        let mut body = json!({"value": value});
        if end < items.len() {
            let mut q: Vec<String> = req
                .query
                .iter()
                .filter(|(k, _)| k.as_str() != "$skiptoken")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            q.sort();
            q.push(format!("$skiptoken={end}"));
            body["nextLink"] = json!(format!(
                "{}{}?{}",
                http::base_url(
                    self.opts.public_url.as_deref(),
                    &req.headers,
                    &self.opts.scheme
                ),
                req.path,
                q.join("&")
            ));
        }
        json_response(200, &body, &[])
    }

    fn url(&self, req: &Req, path: &str, api: &str) -> String {
        format!(
            "{}{}?api-version={api}",
            http::base_url(
                self.opts.public_url.as_deref(),
                &req.headers,
                &self.opts.scheme
            ),
            path
        )
    }

    fn op_urls(
        &self,
        req: &Req,
        id: &ResourceId,
        op: &str,
        api: &str,
        location: &str,
    ) -> Vec<(String, String)> {
        let base = format!(
            "/subscriptions/{}/providers/Microsoft.Network/locations/{location}",
            id.subscription
        );
        vec![
            (
                "Azure-AsyncOperation".into(),
                self.url(req, &format!("{base}/operations/{op}"), api),
            ),
            (
                "Location".into(),
                self.url(req, &format!("{base}/operationResults/{op}"), api),
            ),
            ("Retry-After".into(), "1".into()),
        ]
    }

    /// GET, PUT, DELETE, PATCH (and HEAD for groups) on one resource.
    async fn resource(
        self: &Arc<Self>,
        req: &Req,
        id: &ResourceId,
        api: &str,
    ) -> ArmResult<Response> {
        let m = &req.method;
        if *m == Method::GET || *m == Method::HEAD {
            let k = id.key();
            if id.kind == Kind::ResourceGroup {
                model::id::check_subscription(&id.subscription)?;
            } else {
                self.require_group(&id.subscription, &id.resource_group)?;
                if let Some(p) = id.parent() {
                    self.require_existing(&p).map_err(|_| {
                        ArmError::new(404, "ParentResourceNotFound", format!("Can not perform requested operation on nested resource. Parent resource '{}' not found.", p.name))
                    })?;
                }
            }
            let body = self
                .engine
                .read(|st| render::get(st, &k))
                .ok_or_else(|| ops::not_found(id))?;
            if *m == Method::HEAD {
                return Ok(empty(204, &[]));
            }
            return Ok(json_response(200, &body, &[]));
        }
        if *m == Method::PUT {
            let body = http::parse_body(&req.body, false)?;
            // One parse, one spelling: the links are authorized on the document the write
            // stores, and the schema work is done before the writer lock is taken.
            let prepared = ops::prepare(id, &body)?;
            if let Some(check) = &req.links {
                check.check(&prepared.links())?;
            }
            let opts = PutOptions {
                sync_remote_address_space: req
                    .query
                    .get("syncremoteaddressspace")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            };
            let key = id.key();
            let precond = Preconditions::from(&req.headers);
            let asynchronous = is_async(id.kind);
            let op_id = uuid::Uuid::new_v4().to_string();
            let mut op_records = vec![];
            if asynchronous {
                op_records.push(Operation {
                    id: op_id.clone(),
                    status: "InProgress".into(),
                    resource_key: Some(key.clone()),
                    error: None,
                    start: now_rfc3339(),
                    end: None,
                });
            }
            let engine = self.engine.clone();
            let id2 = id.clone();
            let created = tokio::task::spawn_blocking(move || {
                engine.write(&op_records, |tx, ctx| {
                    precond.check(tx.get(&id2.key()), &id2)?;
                    ops::put_prepared(tx, ctx, &prepared, &opts)
                })
            })
            .await
            .map_err(internal)??;
            if id.kind == Kind::ResourceGroup {
                let b = self
                    .engine
                    .read(|st| st.get(&key).cloned())
                    .unwrap_or(Value::Null);
                return Ok(json_response(if created { 201 } else { 200 }, &b, &[]));
            }
            let body = self
                .engine
                .read(|st| render::get(st, &key))
                .unwrap_or(Value::Null);
            let mut headers = vec![];
            if asynchronous {
                let loc = body["location"].as_str().unwrap_or("local").to_string();
                headers = self.op_urls(req, id, &op_id, api, &loc);
                self.spawn_finisher(key.clone(), op_id);
            }
            return Ok(json_response(
                if created { 201 } else { 200 },
                &body,
                &headers,
            ));
        }
        if *m == Method::DELETE {
            let precond = Preconditions::from(&req.headers);
            let engine = self.engine.clone();
            let id2 = id.clone();
            let loc = self.engine.read(|st| {
                st.get(&id.key())
                    .and_then(|d| d["location"].as_str().map(String::from))
            });
            let asynchronous = is_async(id.kind) || id.kind == Kind::ResourceGroup;
            let done = Operation::completed(None);
            let op_id = done.id.clone();
            let records = if asynchronous && loc.is_some() {
                vec![done]
            } else {
                vec![]
            };
            let existed = tokio::task::spawn_blocking(move || {
                engine.write(&records, |tx, ctx| {
                    precond.check(tx.get(&id2.key()), &id2)?;
                    ops::delete(tx, ctx, &id2)
                })
            })
            .await
            .map_err(internal)??;
            if !existed {
                return Ok(empty(204, &[]));
            }
            if let (true, Some(loc)) = (asynchronous, loc) {
                return Ok(empty(202, &self.op_urls(req, id, &op_id, api, &loc)));
            }
            return Ok(empty(200, &[]));
        }
        if *m == Method::PATCH {
            let body = http::parse_body(&req.body, false)?;
            let engine = self.engine.clone();
            let id2 = id.clone();
            if id.kind.parent().is_some() {
                return Err(method_not_allowed(m));
            }
            tokio::task::spawn_blocking(move || {
                engine.write(&[], |tx, ctx| {
                    if id2.kind != Kind::ResourceGroup {
                        ops::require_group(tx, &id2)?;
                    }
                    ops::patch_tags(tx, ctx, &id2, &body)
                })
            })
            .await
            .map_err(internal)??;
            let key = id.key();
            let body = self
                .engine
                .read(|st| {
                    if id.kind == Kind::ResourceGroup {
                        st.get(&key).cloned()
                    } else {
                        render::get(st, &key)
                    }
                })
                .unwrap_or(Value::Null);
            return Ok(json_response(200, &body, &[]));
        }
        Err(method_not_allowed(m))
    }

    /// Finishes asynchronous provisioning after the configured delay.
    fn spawn_finisher(self: &Arc<Self>, key: String, op_id: String) {
        let app = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(app.opts.provision_delay).await;
            app.finish(key, op_id).await;
        });
    }

    pub async fn finish(self: &Arc<Self>, key: String, op_id: String) {
        let engine = self.engine.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let r = engine.write(&[], |tx, _| {
                ops::finish_provisioning(tx, &key);
                Ok(())
            });
            if let Some(op) = engine.operation(&op_id) {
                let _ = engine.finish_operation(op, r.err());
            }
        })
        .await;
    }

    /// POST/GET actions on a resource (`effectiveRouteTable`, `sharedkey`, `nextHop`, …).
    async fn action(
        self: &Arc<Self>,
        req: &Req,
        parent: &ResourceId,
        action: &str,
        sub: Option<&str>,
        api: &str,
    ) -> ArmResult<Response> {
        let m = req.method.clone();
        let kind = parent.kind;
        let act = action.to_ascii_lowercase();
        // An action's body may name other resources (Network Watcher's targets): reading about
        // them needs read rights there, as Azure's linked checks do.
        if let (Some(check), false) = (&req.links, req.body.iter().all(u8::is_ascii_whitespace)) {
            let body = http::parse_body(&req.body, false)?;
            check.check(&model::links::read_links(&body, &parent.to_id()))?;
        }
        match (kind, act.as_str(), sub, &m) {
            (Kind::NetworkInterface, "effectiveroutetable", None, &Method::POST) => {
                self.require_existing(parent)?;
                let key = parent.key();
                let routes = self.engine.read(|st| eff::effective_routes(st, &key))?;
                let value: Vec<Value> = routes.iter().map(eff::Route::to_json).collect();
                Ok(json_response(200, &json!({"value": value}), &[]))
            }
            (Kind::NetworkWatcher, "nexthop", None, &Method::POST) => {
                self.require_group(&parent.subscription, &parent.resource_group)?;
                let body = http::parse_body(&req.body, false)?;
                self.next_hop(&body)
            }
            (Kind::VirtualNetwork, "checkipaddressavailability", None, &Method::GET) => {
                let vnet = self.require_existing(parent)?;
                let ip = req.query.get("ipaddress").ok_or_else(|| {
                    ArmError::bad(
                        "MissingParameter",
                        "The ipAddress query parameter is required.",
                    )
                })?;
                self.check_ip(&vnet, parent, ip)
            }
            (Kind::VirtualNetwork, "usages", None, &Method::GET) => {
                self.require_existing(parent)?;
                Ok(self.usages(req, parent))
            }
            (Kind::Connection, "sharedkey", None, &Method::GET) => {
                self.require_group(&parent.subscription, &parent.resource_group)?;
                let k = parent.key();
                let st_key = self
                    .engine
                    .read(|st| ops::shared_key(&model::Tx::new(st), parent));
                let _ = k;
                Ok(json_response(200, &st_key?, &[]))
            }
            (Kind::Connection, "sharedkey", None, &Method::PUT) => {
                self.require_group(&parent.subscription, &parent.resource_group)?;
                let body = http::parse_body(&req.body, false)?;
                let engine = self.engine.clone();
                let id2 = parent.clone();
                let v = tokio::task::spawn_blocking(move || {
                    engine.write(&[], |tx, ctx| ops::set_shared_key(tx, ctx, &id2, &body))
                })
                .await
                .map_err(internal)??;
                Ok(json_response(200, &v, &[]))
            }
            (Kind::Connection, "sharedkey", Some("reset"), &Method::POST) => {
                self.require_group(&parent.subscription, &parent.resource_group)?;
                let body = http::parse_body(&req.body, false)?;
                let engine = self.engine.clone();
                let id2 = parent.clone();
                let v = tokio::task::spawn_blocking(move || {
                    engine.write(&[], |tx, ctx| ops::reset_shared_key(tx, ctx, &id2, &body))
                })
                .await
                .map_err(internal)??;
                Ok(json_response(200, &v, &[]))
            }
            (Kind::Connection, "resetconnection", None, &Method::POST) => {
                self.completed_action(req, parent, api, None).await
            }
            (Kind::Connection, "getikesas", None, &Method::POST) => {
                self.require_existing(parent)?;
                // No IKE SA exists until the gateway data plane negotiates one.
                Ok(json_response(200, &json!("[]"), &[]))
            }
            (Kind::VirtualNetworkGateway, "connections", None, &Method::GET) => {
                self.require_existing(parent)?;
                let gk = parent.key();
                let items = self.engine.read(|st| {
                    st.referrers(&gk)
                        .filter_map(|k| {
                            st.get(k)
                                .and_then(doc::doc_id)
                                .filter(|r| r.kind == Kind::Connection)
                                .and_then(|r| render::get(st, &r.key()))
                        })
                        .collect::<Vec<_>>()
                });
                Ok(self.page(req, items))
            }
            (Kind::VirtualNetworkGateway, "reset", None, &Method::POST) => {
                self.completed_action(req, parent, api, Some(parent.key()))
                    .await
            }
            (Kind::VirtualNetworkGateway, "getvpnclientconnectionhealth", None, &Method::POST) => {
                self.require_existing(parent)?;
                // Point-to-site clients appear here once the gateway data plane serves them.
                Ok(json_response(200, &json!({"value": []}), &[]))
            }
            (
                Kind::VirtualNetworkGateway,
                "getlearnedroutes" | "getadvertisedroutes" | "getbgppeerstatus",
                None,
                &Method::POST,
            ) => {
                let gw = self.require_existing(parent)?;
                let v = self.engine.read(|st| gateway_routes(st, &gw, &act));
                Ok(json_response(200, &json!({"value": v}), &[]))
            }
            _ => Err(not_found_route(&req.path)),
        }
    }

    /// An action that completes at once but answers like a long-running one (202 with polling
    /// URLs), as Azure's reset operations do. The operation's result is `result_key`'s resource.
    async fn completed_action(
        self: &Arc<Self>,
        req: &Req,
        parent: &ResourceId,
        api: &str,
        result_key: Option<String>,
    ) -> ArmResult<Response> {
        let d = self.require_existing(parent)?;
        let loc = d["location"].as_str().unwrap_or("local").to_string();
        let rec = Operation::completed(result_key);
        let op = rec.id.clone();
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || engine.write(&[rec], |_, _| Ok(())))
            .await
            .map_err(internal)??;
        Ok(empty(202, &self.op_urls(req, parent, &op, api, &loc)))
    }

    fn next_hop(&self, body: &Value) -> ArmResult<Response> {
        let nic_ref = doc::get_str(body, "targetNicResourceId")
            .or_else(|| doc::get_str(body, "targetResourceId"))
            .ok_or_else(|| {
                ArmError::bad(
                    "InvalidRequestFormat",
                    "targetNicResourceId (or a NIC targetResourceId) is required.",
                )
            })?;
        let nic = ResourceId::parse(nic_ref)
            .ok()
            .filter(|r| r.kind == Kind::NetworkInterface)
            .ok_or_else(|| {
                ArmError::bad(
                    "InvalidResourceReference",
                    format!("{nic_ref} is not a network interface id."),
                )
            })?;
        let parse_ip = |f: &str| -> ArmResult<std::net::IpAddr> {
            doc::get_str(body, f)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    ArmError::bad(
                        "InvalidRequestFormat",
                        format!("{f} must be a valid IP address."),
                    )
                })
        };
        let src = parse_ip("sourceIPAddress")?;
        let dst = parse_ip("destinationIPAddress")?;
        let key = nic.key();
        let r = self.engine.read(|st| {
            let d = st.get(&key).ok_or_else(|| ops::not_found(&nic))?;
            let mine = doc::props(d)
                .get("ipConfigurations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| {
                    doc::get_str(doc::props(c), "privateIPAddress")
                        == Some(src.to_string().as_str())
                });
            if !mine {
                return Err(ArmError::bad(
                    "InvalidSourceIpAddress",
                    format!(
                        "Source IP address {src} is not an address of network interface {nic_ref}."
                    ),
                ));
            }
            eff::next_hop(st, &key, dst)
        })?;
        Ok(json_response(200, &r, &[]))
    }

    fn check_ip(&self, _vnet: &Value, parent: &ResourceId, ip: &str) -> ArmResult<Response> {
        let a: std::net::IpAddr = ip.parse().map_err(|_| {
            ArmError::bad(
                "InvalidPrivateIPAddress",
                format!("{ip} is not a valid IP address."),
            )
        })?;
        let vk = parent.key();
        let body = self.engine.read(|st| {
            let tx = model::Tx::new(st);
            let subnet = tx
                .scan(&format!("{vk}/subnets/"))
                .into_iter()
                .find(|(_, s)| doc::subnet_prefixes(s).iter().any(|p| p.contains(&a)));
            let Some((sk, s)) = subnet else {
                return json!({"available": false, "availableIPAddresses": []});
            };
            let prefixes = doc::subnet_prefixes(&s);
            let taken = ops::taken_addresses(&tx, &sk, None);
            let p = prefixes
                .iter()
                .find(|p| p.contains(&a))
                .copied()
                .expect("found above");
            let available = !taken.contains(&a) && !model::cidr::is_reserved(&p, a);
            let mut free = vec![];
            let mut n = model::cidr::to_u128(a) + 1;
            while free.len() < 5 && n <= model::cidr::last_usable(&p) {
                let c = model::cidr::from_u128(n, a.is_ipv6());
                if !taken.contains(&c) && !model::cidr::is_reserved(&p, c) {
                    free.push(c.to_string());
                }
                n += 1;
            }
            json!({"available": available, "availableIPAddresses": free})
        });
        Ok(json_response(200, &body, &[]))
    }

    fn usages(&self, req: &Req, parent: &ResourceId) -> Response {
        let vk = parent.key();
        let items = self.engine.read(|st| {
            let tx = model::Tx::new(st);
            tx.scan(&format!("{vk}/subnets/"))
                .into_iter()
                .map(|(k, s)| {
                    let used = ops::taken_addresses(&tx, &k, None).len() as f64;
                    let limit: f64 = doc::subnet_prefixes(&s)
                        .iter()
                        .map(|p| {
                            (model::cidr::last_usable(p)
                                .saturating_sub(model::cidr::first_usable(p))
                                + 1) as f64
                        })
                        .sum();
                    let gw = doc::name(&s) == "GatewaySubnet";
                    json!({
                        "currentValue": if gw { -1.0 } else { used },
                        "id": doc::id_str(&s),
                        "limit": if gw { -1.0 } else { limit },
                        "name": {"localizedValue": "Subnet size and usage", "value": "SubnetSpace"},
                        "unit": "Count",
                    })
                })
                .collect::<Vec<_>>()
        });
        self.page(req, items)
    }
}

/// Learned/advertised routes and BGP peer status of a gateway. Routes are the static ones vnet
/// knows (local network gateways, VNet prefixes); there are no BGP sessions yet.
fn gateway_routes(st: &model::State, gw: &Value, what: &str) -> Vec<Value> {
    let ip = doc::props(gw)
        .get("ipConfigurations")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|c| doc::get_str(doc::props(c), "privateIPAddress"))
        .unwrap_or("")
        .to_string();
    match what {
        "getlearnedroutes" => {
            let mut v: Vec<Value> = eff::gateway_prefixes(st, gw)
                .iter()
                .map(|p| json!({"localAddress": ip, "network": p.to_string(), "nextHop": "", "sourcePeer": ip, "origin": "Network", "asPath": "", "weight": 32768}))
                .collect();
            if let Some(vk) = ops::gateway_vnet_of(gw) {
                if let Some(vn) = st.get(&vk) {
                    for p in doc::vnet_space(vn) {
                        v.push(json!({"localAddress": ip, "network": p.to_string(), "nextHop": "", "sourcePeer": ip, "origin": "Network", "asPath": "", "weight": 32768}));
                    }
                }
            }
            v
        }
        "getadvertisedroutes" => ops::gateway_vnet_of(gw)
            .and_then(|vk| st.get(&vk).map(doc::vnet_space))
            .unwrap_or_default()
            .iter()
            .map(|p| json!({"localAddress": ip, "network": p.to_string(), "nextHop": ip, "origin": "Igp", "asPath": doc::props(gw)["bgpSettings"]["asn"].to_string(), "weight": 0}))
            .collect(),
        _ => vec![],
    }
}

fn subscription_json(sub: &str) -> Value {
    json!({
        "id": format!("/subscriptions/{sub}"),
        "subscriptionId": sub,
        "displayName": format!("vnet subscription {sub}"),
        "state": "Enabled",
        "tenantId": "00000000-0000-0000-0000-000000000000",
        "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "vnet", "spendingLimit": "Off"},
    })
}

/// `If-Match` / `If-None-Match` on writes.
struct Preconditions {
    if_match: Option<String>,
    if_none_match: Option<String>,
}

impl Preconditions {
    fn from(h: &HeaderMap) -> Self {
        let get = |n: &str| {
            h.get(n)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_string())
        };
        Preconditions {
            if_match: get("if-match"),
            if_none_match: get("if-none-match"),
        }
    }
    fn check(&self, current: Option<&Value>, id: &ResourceId) -> ArmResult<()> {
        let etag = current.and_then(|d| doc::get_str(d, "etag"));
        let failed = || {
            ArmError::new(
                412,
                "PreconditionFailed",
                format!(
                    "The condition specified using HTTP conditional header(s) is not met for {}.",
                    id.to_id()
                ),
            )
        };
        if let Some(m) = &self.if_match {
            let ok = match (m.as_str(), etag) {
                ("*", _) => current.is_some(),
                (m, Some(e)) => m.split(',').any(|x| x.trim() == e),
                _ => false,
            };
            if !ok {
                return Err(failed());
            }
        }
        if let Some(n) = &self.if_none_match {
            let clash = match (n.as_str(), etag) {
                ("*", _) => current.is_some(),
                (n, Some(e)) => n.split(',').any(|x| x.trim() == e),
                _ => false,
            };
            if clash {
                return Err(failed());
            }
        }
        Ok(())
    }
}

fn internal(e: impl std::fmt::Display) -> ArmError {
    ArmError::new(500, "InternalServerError", format!("Internal error: {e}"))
}

fn not_found_route(path: &str) -> ArmError {
    ArmError::new(
        404,
        "NotFound",
        format!("No route matches '{path}'. See /openapi.json for the operations vnet serves."),
    )
}

fn unknown_type(t: &str, api: &str) -> ArmError {
    ArmError::new(
        404,
        "InvalidResourceType",
        format!("The resource type '{t}' could not be found in the namespace 'Microsoft.Network' for api version '{api}'."),
    )
}

fn op_not_found(id: &str) -> ArmError {
    ArmError::new(
        404,
        "OperationNotFound",
        format!("Operation {id} was not found."),
    )
}

fn method_not_allowed(m: &Method) -> ArmError {
    ArmError::new(
        405,
        "MethodNotAllowed",
        format!("The HTTP method '{m}' is not supported for this resource."),
    )
}
