//! Property tests of the model's invariants under random sequences of writes:
//! - IPAM never hands out an address twice, never a reserved one, never outside the subnet;
//! - effective routes of a NIC never contain a prefix of a VNet that is not Connected to it;
//! - the peering states of a pair are always consistent (Connected on one side iff the
//!   reverse link exists and is Connected).

use model::ops::{self, peering_api};
use model::{doc, routes, Config, Ctx, Kind, ResourceId, State, Tx};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::IpAddr;

const SUB: &str = "sub";
const RG: &str = "rg";

struct World {
    st: State,
    cfg: Config,
    seed: u128,
}

impl World {
    fn new() -> Self {
        let mut w = World {
            st: State::new(),
            cfg: Config::default(),
            seed: 1,
        };
        w.put(
            &ResourceId::group(SUB, RG),
            json!({"location": "westeurope"}),
        )
        .unwrap();
        w
    }
    fn write(
        &mut self,
        f: impl FnOnce(&mut Tx, &mut Ctx) -> model::ArmResult<()>,
    ) -> model::ArmResult<()> {
        let mut seed = self.seed;
        let mut rng = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed
        };
        let changes = {
            let mut tx = Tx::new(&self.st);
            let mut ctx = Ctx {
                config: &self.cfg,
                now: "2026-01-01T00:00:00Z".into(),
                rng: &mut rng,
            };
            f(&mut tx, &mut ctx)?;
            tx.into_changes()
        };
        self.seed += 1;
        self.st.apply(&changes);
        Ok(())
    }
    fn put(&mut self, id: &ResourceId, body: Value) -> model::ArmResult<()> {
        let id = id.clone();
        self.write(|tx, ctx| ops::put(tx, ctx, &id, &body, &Default::default()).map(|_| ()))
    }
    fn delete(&mut self, id: &ResourceId) -> model::ArmResult<()> {
        let id = id.clone();
        self.write(|tx, ctx| ops::delete(tx, ctx, &id).map(|_| ()))
    }
}

fn vnet_id(i: usize) -> ResourceId {
    ResourceId::top(SUB, RG, Kind::VirtualNetwork, &format!("v{i}"))
}

fn link_id(a: usize, b: usize) -> ResourceId {
    ResourceId::child_of(&vnet_id(a), Kind::Peering, &format!("v{a}-v{b}"))
}

#[derive(Debug, Clone)]
enum NicOp {
    Dynamic(u8),
    Static(u8, u8),
    Delete(u8),
}

fn nic_op() -> impl Strategy<Value = NicOp> {
    prop_oneof![
        (0u8..40).prop_map(NicOp::Dynamic),
        (0u8..40, 0u8..16).prop_map(|(n, h)| NicOp::Static(n, h)),
        (0u8..40).prop_map(NicOp::Delete),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn ipam_never_double_allocates(ops_list in proptest::collection::vec(nic_op(), 1..80)) {
        let mut w = World::new();
        w.put(&vnet_id(0), json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}})).unwrap();
        let subnet = ResourceId::child_of(&vnet_id(0), Kind::Subnet, "s");
        // A /28: 11 usable addresses, so the subnet fills up and refusals happen too.
        w.put(&subnet, json!({"properties": {"addressPrefix": "10.0.0.0/28"}})).unwrap();
        for op in ops_list {
            let (n, body) = match &op {
                NicOp::Dynamic(n) => (*n, json!({"subnet": {"id": subnet.to_id()}})),
                NicOp::Static(n, h) => (*n, json!({"subnet": {"id": subnet.to_id()}, "privateIPAddress": format!("10.0.0.{h}")})),
                NicOp::Delete(n) => {
                    let _ = w.delete(&ResourceId::top(SUB, RG, Kind::NetworkInterface, &format!("n{n}")));
                    continue;
                }
            };
            let id = ResourceId::top(SUB, RG, Kind::NetworkInterface, &format!("n{n}"));
            let _ = w.put(&id, json!({"location": "westeurope", "properties": {"ipConfigurations": [{"name": "c", "properties": body}]}}));
            // Invariant over all NICs.
            let mut seen = BTreeSet::new();
            let prefix: ipnet::IpNet = "10.0.0.0/28".parse().unwrap();
            for (_, d) in w.st.scan("/subscriptions/sub/resourcegroups/rg/providers/microsoft.network/networkinterfaces/") {
                for c in doc::props(d)["ipConfigurations"].as_array().unwrap() {
                    let a: IpAddr = c["properties"]["privateIPAddress"].as_str().unwrap().parse().unwrap();
                    prop_assert!(seen.insert(a), "{a} handed out twice");
                    prop_assert!(prefix.contains(&a));
                    prop_assert!(!model::cidr::is_reserved(&prefix, a), "{a} is reserved");
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
enum PeerOp {
    Link(usize, usize, bool),
    Unlink(usize, usize),
    DeleteVnet(usize),
    CreateVnet(usize),
    Sync(usize, usize),
    Grow(usize),
}

fn peer_op() -> impl Strategy<Value = PeerOp> {
    let v = 0usize..5;
    prop_oneof![
        4 => (v.clone(), v.clone(), any::<bool>()).prop_map(|(a, b, x)| PeerOp::Link(a, b, x)),
        2 => (v.clone(), v.clone()).prop_map(|(a, b)| PeerOp::Unlink(a, b)),
        1 => v.clone().prop_map(PeerOp::DeleteVnet),
        1 => v.clone().prop_map(PeerOp::CreateVnet),
        1 => (v.clone(), v.clone()).prop_map(|(a, b)| PeerOp::Sync(a, b)),
        1 => v.prop_map(PeerOp::Grow),
    ]
}

fn create_vnet(w: &mut World, i: usize, grown: bool) {
    let mut p = vec![format!("10.{i}.0.0/16")];
    if grown {
        p.push(format!("10.{}.0.0/16", 100 + i));
    }
    let _ = w.put(
        &vnet_id(i),
        json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": p},
        "subnets": [{"name": "s", "properties": {"addressPrefix": format!("10.{i}.0.0/24")}}]}}),
    );
    let nic = ResourceId::top(SUB, RG, Kind::NetworkInterface, &format!("nic{i}"));
    let sub = ResourceId::child_of(&vnet_id(i), Kind::Subnet, "s");
    let _ = w.put(&nic, json!({"location": "westeurope", "properties": {"ipConfigurations": [{"name": "c", "properties": {"subnet": {"id": sub.to_id()}}}]}}));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn peering_states_and_routes_stay_consistent(ops_list in proptest::collection::vec(peer_op(), 1..60)) {
        let mut w = World::new();
        for i in 0..5 {
            create_vnet(&mut w, i, false);
        }
        for op in ops_list {
            match op {
                PeerOp::Link(a, b, fwd) if a != b => {
                    let _ = w.put(&link_id(a, b), json!({"properties": {"remoteVirtualNetwork": {"id": vnet_id(b).to_id()}, "allowForwardedTraffic": fwd}}));
                }
                PeerOp::Unlink(a, b) => { let _ = w.delete(&link_id(a, b)); }
                PeerOp::DeleteVnet(a) => {
                    let _ = w.delete(&ResourceId::top(SUB, RG, Kind::NetworkInterface, &format!("nic{a}")));
                    let _ = w.delete(&vnet_id(a));
                }
                PeerOp::CreateVnet(a) => create_vnet(&mut w, a, false),
                PeerOp::Grow(a) => {
                    let _ = w.put(&vnet_id(a), json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": [format!("10.{a}.0.0/16"), format!("10.{}.0.0/16", 100 + a)]},
                        "subnets": [{"name": "s", "properties": {"addressPrefix": format!("10.{a}.0.0/24")}}]}}));
                }
                PeerOp::Sync(a, b) => {
                    if let Some(l) = w.st.get(&link_id(a, b).key()).cloned() {
                        let id = link_id(a, b);
                        let body = json!({"properties": {"remoteVirtualNetwork": l["properties"]["remoteVirtualNetwork"].clone()}});
                        let _ = w.write(|tx, ctx| ops::put(tx, ctx, &id, &body, &ops::PutOptions { sync_remote_address_space: true }).map(|_| ()));
                    }
                }
                _ => {}
            }
            check_pairs(&w)?;
            check_routes(&w)?;
        }
    }
}

fn links(w: &World) -> Vec<(usize, usize, Value)> {
    let mut out = vec![];
    for a in 0..5 {
        for (_, l) in
            w.st.scan(&format!("{}/virtualnetworkpeerings/", vnet_id(a).key()))
        {
            let rk = doc::ref_key(doc::props(l), "remoteVirtualNetwork").unwrap();
            let b = (0..5).find(|b| vnet_id(*b).key() == rk).unwrap();
            out.push((a, b, l.clone()));
        }
    }
    out
}

fn check_pairs(w: &World) -> Result<(), TestCaseError> {
    for (a, b, l) in links(w) {
        let tx = Tx::new(&w.st);
        let rev = peering_api::reverse(&tx, &vnet_id(a).key(), &vnet_id(b).key());
        let state = peering_api::state_of(&l);
        match state {
            peering_api::CONNECTED => {
                let (_, r) = rev.ok_or_else(|| {
                    TestCaseError::fail(format!("v{a}->v{b} Connected without reverse"))
                })?;
                prop_assert_eq!(peering_api::state_of(&r), peering_api::CONNECTED);
            }
            _ => prop_assert!(
                rev.is_none(),
                "v{}->v{} is {} but the reverse link exists",
                a,
                b,
                state
            ),
        }
    }
    Ok(())
}

fn check_routes(w: &World) -> Result<(), TestCaseError> {
    let connected: BTreeSet<(usize, usize)> = links(w)
        .into_iter()
        .filter(|(_, _, l)| peering_api::state_of(l) == peering_api::CONNECTED)
        .map(|(a, b, _)| (a, b))
        .collect();
    for i in 0..5 {
        let key = ResourceId::top(SUB, RG, Kind::NetworkInterface, &format!("nic{i}")).key();
        if w.st.get(&key).is_none() {
            continue;
        }
        for r in routes::effective_routes(&w.st, &key).unwrap() {
            let Some(net) = r.net() else { continue };
            let octet = match net {
                ipnet::IpNet::V4(n) => n.network().octets()[1] as usize,
                _ => continue,
            };
            let owner = if octet >= 100 { octet - 100 } else { octet };
            if owner < 5 && owner != i && net.prefix_len() == 16 {
                prop_assert!(
                    connected.contains(&(i, owner)) && connected.contains(&(owner, i)),
                    "nic{} has route {:?} to v{} without a Connected peering",
                    i,
                    r,
                    owner
                );
                prop_assert_eq!(r.next_hop_type.as_str(), "VNetPeering");
            }
        }
    }
    Ok(())
}
