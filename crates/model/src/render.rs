//! Reading: a stored document becomes Azure's response body. Child collections are embedded
//! (a VNet shows its subnets and peerings), back-references are computed (a subnet lists the
//! IP configurations in it), peering sync levels are derived, and secrets are stripped.

use crate::doc::{self, props};
use crate::id::{Kind, ResourceId};
use crate::ops::peering;
use crate::schema;
use crate::schemas;
use crate::state::State;
use serde_json::{json, Map, Value};

/// Renders the resource stored under `key`, or None.
pub fn get(st: &State, key: &str) -> Option<Value> {
    let d = st.get(key)?;
    let rid = doc::doc_id(d)?;
    Some(render(st, &rid, d))
}

/// Renders one stored document of kind `rid.kind`.
pub fn render(st: &State, rid: &ResourceId, d: &Value) -> Value {
    let mut out = d.clone();
    if let Some(o) = out.as_object_mut() {
        o.remove("_vnet");
    }
    let key = rid.key();
    match rid.kind {
        Kind::VirtualNetwork => {
            let subnets: Vec<Value> = st
                .scan(&format!("{key}/subnets/"))
                .filter_map(|(k, s)| doc::doc_id(s).map(|r| (k, r, s)))
                .map(|(_, r, s)| render(st, &r, s))
                .collect();
            let links: Vec<Value> = st
                .scan(&format!("{key}/virtualnetworkpeerings/"))
                .filter_map(|(_, l)| doc::doc_id(l).map(|r| render(st, &r, l)))
                .collect();
            let pm = props_obj(&mut out);
            pm.insert("subnets".into(), Value::Array(subnets));
            pm.insert("virtualNetworkPeerings".into(), Value::Array(links));
        }
        Kind::Subnet => {
            let mut cfgs = Vec::new();
            for r in st.referrers(&key) {
                let Some(u) = st.get(r) else { continue };
                for c in props(u)
                    .get("ipConfigurations")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if doc::ref_key(props(c), "subnet").as_deref() == Some(key.as_str()) {
                        cfgs.push(json!({"id": doc::id_str(c)}));
                    }
                }
            }
            if !cfgs.is_empty() {
                props_obj(&mut out).insert("ipConfigurations".into(), Value::Array(cfgs));
            }
        }
        Kind::Peering => {
            let local_key = rid.parent().expect("vnet").key();
            let local = st.get(&local_key).cloned().unwrap_or(Value::Null);
            let level = peering::sync_level(&|k| st.get(k).cloned(), d, &local);
            let remote_now = doc::ref_key(props(d), "remoteVirtualNetwork")
                .and_then(|k| st.get(&k))
                .map(|r| json!({"addressPrefixes": doc::prefix_strings(&doc::vnet_space(r))}));
            let local_snap = doc::private(d)
                .get("localAddressSpace")
                .cloned()
                .unwrap_or(json!([]));
            let pm = props_obj(&mut out);
            pm.insert("peeringSyncLevel".into(), json!(level));
            pm.insert(
                "remoteVirtualNetworkAddressSpace".into(),
                remote_now
                    .unwrap_or_else(|| pm.get("remoteAddressSpace").cloned().unwrap_or(json!({}))),
            );
            pm.insert(
                "localAddressSpace".into(),
                json!({"addressPrefixes": local_snap}),
            );
            pm.insert(
                "localVirtualNetworkAddressSpace".into(),
                json!({"addressPrefixes": doc::prefix_strings(&doc::vnet_space(&local))}),
            );
        }
        Kind::RouteTable => {
            let routes: Vec<Value> = st
                .scan(&format!("{key}/routes/"))
                .map(|(_, r)| r.clone())
                .collect();
            let subnets: Vec<Value> = st
                .referrers(&key)
                .filter(|r| r.contains("/subnets/"))
                .filter_map(|r| st.get(r).map(|s| json!({"id": doc::id_str(s)})))
                .collect();
            let pm = props_obj(&mut out);
            pm.insert("routes".into(), Value::Array(routes));
            if !subnets.is_empty() {
                pm.insert("subnets".into(), Value::Array(subnets));
            }
        }
        Kind::PublicIp => {
            let mut assoc = None;
            for r in st.referrers(&key) {
                let Some(u) = st.get(r) else { continue };
                for c in props(u)
                    .get("ipConfigurations")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if doc::ref_key(props(c), "publicIPAddress").as_deref() == Some(key.as_str()) {
                        assoc = Some(json!({"id": doc::id_str(c)}));
                    }
                }
            }
            let dynamic = doc::get_str(props(d), "publicIPAllocationMethod") == Some("Dynamic");
            let pm = props_obj(&mut out);
            if dynamic && assoc.is_none() {
                // A dynamic address is only shown while something uses it.
                pm.remove("ipAddress");
            }
            if let Some(a) = assoc {
                pm.insert("ipConfiguration".into(), a);
            }
        }
        Kind::VirtualNetworkGateway => {
            let cfgs: Vec<Value> = props(d)
                .get("ipConfigurations")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let custom = props(d)
                .get("bgpSettings")
                .and_then(|b| b.get("bgpPeeringAddresses"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let addrs: Vec<Value> = cfgs
                .iter()
                .map(|c| {
                    let cid = doc::id_str(c).to_string();
                    let pip = doc::ref_key(props(c), "publicIPAddress")
                        .and_then(|k| st.get(&k))
                        .and_then(|p| doc::get_str(props(p), "ipAddress").map(String::from));
                    let mine = custom.iter().find(|x| doc::get_str(x, "ipconfigurationId").is_some_and(|i| i.eq_ignore_ascii_case(&cid)));
                    json!({
                        "ipconfigurationId": cid,
                        "defaultBgpIpAddresses": [doc::get_str(props(c), "privateIPAddress").unwrap_or("")],
                        "customBgpIpAddresses": mine.and_then(|m| m.get("customBgpIpAddresses").cloned()).unwrap_or(json!([])),
                        "tunnelIpAddresses": pip.map(|p| vec![p]).unwrap_or_default(),
                    })
                })
                .collect();
            let pm = props_obj(&mut out);
            if let Some(b) = pm.get_mut("bgpSettings") {
                b["bgpPeeringAddresses"] = Value::Array(addrs);
            }
        }
        Kind::Connection => {
            let status = doc::private(d).get("status").cloned();
            let pm = props_obj(&mut out);
            pm.insert(
                "connectionStatus".into(),
                status.unwrap_or(json!("Unknown")),
            );
            pm.entry("ingressBytesTransferred").or_insert(json!(0));
            pm.entry("egressBytesTransferred").or_insert(json!(0));
        }
        _ => {}
    }
    schema::strip_secrets(&mut out, schemas::of(rid.kind));
    out
}

fn props_obj(v: &mut Value) -> &mut Map<String, Value> {
    doc::props_mut(v)
}

/// Lists rendered resources of `kind` whose keys start with `prefix` (a subscription, a
/// resource group or a parent resource).
pub fn list(st: &State, prefix: &str, kind: Kind) -> Vec<Value> {
    st.scan(prefix)
        .filter_map(|(_, d)| {
            let rid = doc::doc_id(d)?;
            (rid.kind == kind).then(|| render(st, &rid, d))
        })
        .collect()
}
