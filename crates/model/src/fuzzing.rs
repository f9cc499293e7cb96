//! Fuzz entry points, shared by `fuzz/fuzz_targets/*` (cargo fuzz) and the test that replays
//! the committed corpus. Request bodies come from anyone who can reach the API: whatever they
//! hold, a write must end in success or a 4xx ARM error — never a panic, never a 5xx.

use crate::testkit::{self, World};
use crate::{ops, render, ArmError, Config, ResourceId};
use serde_json::{json, Value};
use std::sync::OnceLock;

/// The resources the fuzzer writes to: existing ones (updates) and new ones (creates).
const TARGETS: &[&str] = &[
    "",
    "/providers/Microsoft.Network/virtualNetworks/hub",
    "/providers/Microsoft.Network/virtualNetworks/hub/subnets/default",
    "/providers/Microsoft.Network/virtualNetworks/hub/subnets/GatewaySubnet",
    "/providers/Microsoft.Network/virtualNetworks/hub/virtualNetworkPeerings/hub-spoke",
    "/providers/Microsoft.Network/virtualNetworks/spoke/virtualNetworkPeerings/spoke-hub",
    "/providers/Microsoft.Network/virtualNetworks/new",
    "/providers/Microsoft.Network/virtualNetworks/spoke/subnets/new",
    "/providers/Microsoft.Network/networkInterfaces/nic1",
    "/providers/Microsoft.Network/networkInterfaces/new",
    "/providers/Microsoft.Network/routeTables/rt",
    "/providers/Microsoft.Network/routeTables/rt/routes/r1",
    "/providers/Microsoft.Network/publicIPAddresses/new",
    "/providers/Microsoft.Network/virtualNetworkGateways/gw",
    "/providers/Microsoft.Network/virtualNetworkGateways/new",
    "/providers/Microsoft.Network/localNetworkGateways/onprem",
    "/providers/Microsoft.Network/connections/c1",
    "/providers/Microsoft.Network/connections/new",
];

/// Hub (default + GatewaySubnet, a NIC, a route table, a VPN gateway with a public IP, an
/// on-premises site and a connection) peered with a spoke.
pub fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let mut w = World::with_config(Config {
            public_ip_pools: vec!["198.18.0.0/24".parse().expect("pool")],
        });
        let rg = testkit::rg_path();
        let net = |rest: &str| format!("{rg}/providers/Microsoft.Network/{rest}");
        w.vnet("hub", &["10.0.0.0/16", "fd00::/48"]).expect("hub");
        w.subnet("hub", "default", &["10.0.1.0/24", "fd00:0:0:1::/64"], None)
            .expect("subnet");
        w.subnet("hub", "GatewaySubnet", &["10.0.255.0/27"], None)
            .expect("gateway subnet");
        w.vnet("spoke", &["10.1.0.0/16"]).expect("spoke");
        w.subnet("spoke", "s1", &["10.1.1.0/24"], None)
            .expect("subnet");
        w.link("hub", "spoke", true, false).expect("peering");
        w.link("spoke", "hub", true, false).expect("peering");
        w.nic("nic1", "hub", "default", None, None, false)
            .expect("nic");
        w.route_table("rt").expect("route table");
        w.route("rt", "r1", "192.168.0.0/16", "VirtualAppliance", Some("10.0.1.4"))
            .expect("route");
        let ok = |r: crate::ArmResult<()>, what: &str| r.unwrap_or_else(|e| panic!("{what}: {e:?}"));
        ok(
            w.put(&net("publicIPAddresses/gw-pip"), json!({"location": "westeurope", "sku": {"name": "Standard"}})),
            "public ip",
        );
        ok(w.put(&net("virtualNetworkGateways/gw"), json!({"location": "westeurope", "properties": {
            "gatewayType": "Vpn", "vpnType": "RouteBased", "sku": {"name": "VpnGw1", "tier": "VpnGw1"},
            "ipConfigurations": [{"name": "default", "properties": {
                "subnet": {"id": testkit::subnet_id("hub", "GatewaySubnet")},
                "publicIPAddress": {"id": net("publicIPAddresses/gw-pip")}}}]}})), "gateway");
        ok(w.put(&net("localNetworkGateways/onprem"), json!({"location": "westeurope", "properties": {
            "gatewayIpAddress": "198.18.10.1",
            "localNetworkAddressSpace": {"addressPrefixes": ["192.168.0.0/16"]}}})), "local gateway");
        ok(w.put(&net("connections/c1"), json!({"location": "westeurope", "properties": {
            "connectionType": "IPsec", "sharedKey": "s3cret-Key",
            "virtualNetworkGateway1": {"id": net("virtualNetworkGateways/gw")},
            "localNetworkGateway2": {"id": net("localNetworkGateways/onprem")}}})), "connection");
        w
    })
}

/// Input layout: `[target, operation, JSON body…]`; operation 0..=5 PUT, 6 PATCH tags,
/// 7 DELETE (body ignored), others PUT with `?syncRemoteAddressSpace=true`.
pub fn put_target(data: &[u8]) {
    let Some((&[target, op], body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let w = world();
    let id = format!(
        "{}{}",
        testkit::rg_path(),
        TARGETS[usize::from(target) % TARGETS.len()]
    );
    let rid = ResourceId::parse(&id).expect("target ids parse");
    let body: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) if op % 8 == 7 => Value::Null,
        Err(_) => return, // the API refuses unparsable bodies before the model sees them
    };
    let result = w.stage(|tx, ctx| match op % 8 {
        0..=5 => ops::put(tx, ctx, &rid, &body, &ops::PutOptions::default()).map(|_| ()),
        6 => ops::patch_tags(tx, ctx, &rid, &body),
        7 => ops::delete(tx, ctx, &rid).map(|_| ()),
        _ => unreachable!(),
    });
    if let Ok(changes) = &result {
        // What was accepted renders (every response goes through this).
        let mut st = w.st.clone();
        st.apply(changes);
        for (key, doc) in changes {
            if let (Some(doc), Ok(rid)) = (doc, ResourceId::parse(key)) {
                let _ = render::render(&st, &rid, doc);
            }
        }
    }
    if let Err(ArmError { status, code, .. }) = &result {
        assert!(
            (400..500).contains(status),
            "bad input must get a 4xx, got {status} {code}"
        );
        assert!(!code.is_empty());
    }
    if op >= 8 && op % 8 < 6 {
        let opts = ops::PutOptions {
            sync_remote_address_space: true,
        };
        if let Err(e) = w.stage(|tx, ctx| ops::put(tx, ctx, &rid, &body, &opts).map(|_| ())) {
            assert!((400..500).contains(&e.status), "{e:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays every file of `fuzz/corpus/put` (seeds and what the fuzzer kept).
    #[test]
    fn put_corpus() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/put");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = e.unwrap().path();
            if path.is_file() {
                put_target(&std::fs::read(&path).unwrap());
                n += 1;
            }
        }
        assert!(
            n >= TARGETS.len(),
            "corpus of {} has {n} files",
            dir.display()
        );
    }
}
