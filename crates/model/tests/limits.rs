//! Issue 9 item 4 in the pure model: per-subscription-per-region limits at their edges, and
//! the transaction's indexes (staged references, borrowed scans, counts) agreeing with the
//! definitions they replace.

use model::ops::{self, PutOptions};
use model::state::{references, tracked_of, Tracked};
use model::testkit::{self, World};
use model::{Kind, ResourceId, State, Tx};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

fn code(r: model::ArmResult<()>) -> String {
    r.err().map(|e| e.code).unwrap_or_default()
}

fn vnet_body(loc: &str) -> Value {
    json!({"location": loc, "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}})
}

/// 1,000 VNets per subscription and region: the 1,001st is refused, an update of an existing
/// one and a VNet in another region or subscription are not; "West Europe" is westeurope.
#[test]
fn vnets_per_region_edge() {
    let mut w = World::new();
    for i in 0..1000 {
        w.put(&testkit::vnet_id(&format!("v{i}")), vnet_body("westeurope"))
            .unwrap();
    }
    let before = w.st.len();
    assert_eq!(
        code(w.put(&testkit::vnet_id("v1000"), vnet_body("West Europe"))),
        "VirtualNetworkCountLimitReached"
    );
    assert_eq!(w.st.len(), before, "nothing applied");
    w.put(&testkit::vnet_id("v0"), vnet_body("westeurope"))
        .unwrap();
    w.put(&testkit::vnet_id("v1000"), vnet_body("northeurope"))
        .unwrap();
    // Another subscription (its own group first).
    let other = "00000000-0000-0000-0000-0000000000ee";
    w.put(
        &format!("/subscriptions/{other}/resourceGroups/rg"),
        json!({"location": "westeurope"}),
    )
    .unwrap();
    w.put(
        &format!("/subscriptions/{other}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v"),
        vnet_body("westeurope"),
    )
    .unwrap();
    // Deleting one frees a slot.
    w.delete(&testkit::vnet_id("v5")).unwrap();
    w.put(&testkit::vnet_id("v1001"), vnet_body("westeurope"))
        .unwrap();
}

/// 65,536 NICs per subscription and region. The first 65,535 are seeded straight into the
/// state (as the store would load them); the last two go through the model's write.
#[test]
fn nics_per_region_edge() {
    let mut w = World::new();
    w.vnet("v", &["10.0.0.0/8"]).unwrap();
    w.subnet("v", "a", &["10.0.0.0/24"], None).unwrap();
    let seeded: Vec<model::Change> = (0..65_535)
        .map(|i| {
            let id = testkit::nic_id(&format!("seed{i}"));
            (
                testkit::key(&id),
                Some(json!({"id": id, "name": format!("seed{i}"), "type": "Microsoft.Network/networkInterfaces", "location": "westeurope", "properties": {}})),
            )
        })
        .collect();
    w.st.apply(&seeded);
    w.nic("last", "v", "a", None, None, false).unwrap();
    let before = w.st.len();
    assert_eq!(
        code(w.nic("over", "v", "a", None, None, false)),
        "NetworkInterfaceCountLimitReached"
    );
    assert_eq!(w.st.len(), before);
    // An update of an existing NIC still goes through.
    w.nic("last", "v", "a", None, None, true).unwrap();
}

/// A refused VNet PUT with thousands of staged subnets leaves nothing behind.
#[test]
fn refused_big_vnet_stages_nothing() {
    let w = World::new();
    let subnets: Vec<Value> = (0..3001)
        .map(|i| json!({"name": format!("s{i}"), "properties": {"addressPrefix": format!("10.{}.{}.0/24", i / 256, i % 256)}}))
        .collect();
    let rid = ResourceId::parse(&testkit::vnet_id("v")).unwrap();
    let body = json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/8"]}, "subnets": subnets}});
    let e = w
        .stage(|tx, ctx| ops::put(tx, ctx, &rid, &body, &PutOptions::default()).map(|_| ()))
        .unwrap_err();
    assert_eq!(e.code, "SubnetCountLimitReached");
}

#[test]
fn tracked_slots() {
    let nic = "/subscriptions/S/resourcegroups/rg/providers/microsoft.network/networkinterfaces/n";
    assert_eq!(
        tracked_of(nic, &json!({"location": "westeurope"})),
        Some(Tracked {
            kind: Kind::NetworkInterface,
            subscription: "s".into(),
            location: "westeurope".into()
        })
    );
    let subnet = "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/virtualnetworks/v/subnets/a";
    assert_eq!(tracked_of(subnet, &json!({})), None);
    assert_eq!(
        tracked_of(
            "/subscriptions/s/resourcegroups/rg",
            &json!({"location": "x"})
        ),
        None
    );
}

// ----- the transaction's indexes against their definitions -----

/// Keys under a small set of VNets and NICs so that scans and references collide often.
fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        (0..3u8, 0..4u8).prop_map(|(v, s)| testkit::key(&testkit::subnet_id(
            &format!("v{v}"),
            &format!("s{s}")
        ))),
        (0..3u8).prop_map(|v| testkit::key(&testkit::vnet_id(&format!("v{v}")))),
        (0..4u8).prop_map(|n| testkit::key(&testkit::nic_id(&format!("n{n}")))),
    ]
}

/// A document referencing some subnets (through ipConfigurations, as NICs do).
fn arb_doc() -> impl Strategy<Value = Value> {
    (
        proptest::collection::vec((0..3u8, 0..4u8), 0..3),
        0..3u8,
    )
        .prop_map(|(refs, loc)| {
            let cfgs: Vec<Value> = refs
                .iter()
                .map(|(v, s)| json!({"properties": {"subnet": {"id": testkit::subnet_id(&format!("v{v}"), &format!("s{s}"))}}}))
                .collect();
            json!({"location": format!("l{loc}"), "properties": {"ipConfigurations": cfgs}})
        })
}

#[derive(Debug, Clone)]
enum Op {
    Put(String, Value),
    Delete(String),
}

fn arb_ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(
        prop_oneof![
            3 => (arb_key(), arb_doc()).prop_map(|(k, d)| Op::Put(k, d)),
            1 => arb_key().prop_map(Op::Delete),
        ],
        0..30,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// After any mix of committed and staged puts and deletes (re-puts included), the
    /// transaction's scans, counts, referrers and tracked counts equal what a brute-force
    /// walk over the merged documents gives.
    #[test]
    fn tx_indexes_match_brute_force(base_ops in arb_ops(), tx_ops in arb_ops()) {
        let mut st = State::new();
        let mut model: BTreeMap<String, Value> = BTreeMap::new();
        for op in &base_ops {
            match op {
                Op::Put(k, d) => { st.apply(&[(k.clone(), Some(d.clone()))]); model.insert(k.clone(), d.clone()); }
                Op::Delete(k) => { st.apply(&[(k.clone(), None)]); model.remove(k); }
            }
        }
        let mut tx = Tx::new(&st);
        for op in &tx_ops {
            match op {
                Op::Put(k, d) => { tx.put(k.clone(), d.clone()); model.insert(k.clone(), d.clone()); }
                Op::Delete(k) => { tx.delete(k); model.remove(k); }
            }
        }
        let prefixes = ["/subscriptions/", &testkit::key(&testkit::vnet_id("v1")), &format!("{}/subnets/", testkit::key(&testkit::vnet_id("v0")))];
        for p in prefixes {
            let want: Vec<(String, Value)> = model.range(p.to_string()..).take_while(|(k, _)| k.starts_with(p)).map(|(k, v)| (k.clone(), v.clone())).collect();
            prop_assert_eq!(tx.scan(p), want.clone());
            prop_assert_eq!(tx.count(p), want.len());
            prop_assert_eq!(tx.scan_keys(p), want.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>());
        }
        for v in 0..3 {
            for s in 0..4 {
                let target = testkit::key(&testkit::subnet_id(&format!("v{v}"), &format!("s{s}")));
                let want: BTreeSet<String> = model.iter().filter(|(k, d)| references(k, d).contains(&target)).map(|(k, _)| k.clone()).collect();
                prop_assert_eq!(tx.referrers(&target), want);
            }
        }
        for loc in 0..3 {
            let slot = Tracked { kind: Kind::NetworkInterface, subscription: testkit::SUB.to_string(), location: format!("l{loc}") };
            let want = model.iter().filter(|(k, d)| tracked_of(k, d).as_ref() == Some(&slot)).count();
            prop_assert_eq!(tx.tracked_count(&slot), want);
        }
        let want: BTreeSet<String> = model.iter().filter(|(k, d)| tracked_of(k, d).is_some_and(|t| t.kind == Kind::VirtualNetwork)).map(|(k, _)| k.clone()).collect();
        prop_assert_eq!(tx.tracked_of_kind(Kind::VirtualNetwork), want);
    }
}
