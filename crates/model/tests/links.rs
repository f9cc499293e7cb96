//! Property: for random PUT bodies — member names in random letter case, members named twice
//! in different cases, references buried at random depth in free-form fields — the scopes the
//! authorizer checks (`Prepared::links`, from the cleaned document) are exactly the references
//! the state indexes in the documents the write stores. Whatever an attacker spells, nothing
//! the model writes links to a resource the authorizer did not see.

use model::ops::{self, PutOptions};
use model::state::{references, trim_to_resource};
use model::testkit::{self, subnet_id, table_id, vnet_id};
use model::ResourceId;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// Random letter case of every object key (`properties` → `pRoPeRtIes`).
fn recase(v: &Value, bits: &mut impl Iterator<Item = bool>) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                let k: String = k
                    .chars()
                    .map(|c| {
                        if bits.next().unwrap_or(false) {
                            c.to_ascii_uppercase()
                        } else {
                            c.to_ascii_lowercase()
                        }
                    })
                    .collect();
                out.insert(k, recase(x, bits));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| recase(x, bits)).collect()),
        x => x.clone(),
    }
}

/// `id` wrapped `depth` objects deep under random keys, the innermost key spelled `key`.
fn buried(id: &str, depth: usize, key: &str) -> Value {
    let mut v = json!({ key: id });
    for i in 0..depth {
        v = if i % 2 == 0 {
            json!({ format!("k{i}"): v })
        } else {
            json!([v])
        };
    }
    v
}

fn targets() -> Vec<String> {
    let mut t = vec![];
    for v in ["a", "b", "c", "d"] {
        t.push(vnet_id(v));
        t.push(subnet_id(v, "s1"));
        t.push(subnet_id(v, "s2"));
    }
    t.push(table_id("rt"));
    // Ids of nothing, in another subscription, in another case.
    t.push("/subscriptions/ffffffff-0000-0000-0000-000000000000/resourceGroups/x/providers/Microsoft.Network/virtualNetworks/elsewhere".into());
    t.push(subnet_id("b", "s1").to_uppercase());
    t
}

/// A body of one of several kinds with references chosen by `pick`.
fn body(kind: u8, pick: &[usize], depth: usize, key: &str) -> (String, Value) {
    let t = targets();
    let at = |i: usize| t[pick[i % pick.len()] % t.len()].clone();
    let hidden = buried(&at(3), depth, key);
    match kind % 4 {
        0 => (
            testkit::nic_id("new"),
            json!({"location": "westeurope", "properties": {
                "privateLinkService": hidden,
                "ipConfigurations": [{"name": "c1", "properties": {"subnet": {"id": subnet_id("b", "s1")}, "applicationGatewayBackendAddressPools": [{"id": at(0)}]}},
                                     {"name": "c2", "properties": {"subnet": {"id": subnet_id("b", "s2"), "name": "x"}}}]}}),
        ),
        1 => (
            subnet_id("a", "s9"),
            json!({"properties": {"addressPrefix": "10.1.9.0/24", "routeTable": {"id": table_id("rt")},
                "serviceGateway": hidden, "applicationGatewayIPConfigurations": [{"properties": {"subnet": {"id": at(1)}}}]}}),
        ),
        2 => (
            format!("{}/virtualNetworkPeerings/a-new", vnet_id("a")),
            json!({"properties": {"remoteVirtualNetwork": {"id": at(2)}, "allowForwardedTraffic": true}}),
        ),
        _ => (
            vnet_id("e"),
            json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.5.0.0/16"]},
                "ddosProtectionPlan": {"id": at(0)},
                "subnets": [{"name": "s1", "properties": {"addressPrefix": "10.5.1.0/24", "routeTable": {"id": table_id("rt")}, "delegations": hidden}}],
                "virtualNetworkPeerings": [{"name": "e-x", "properties": {"remoteVirtualNetwork": {"id": at(2)}}}]}}),
        ),
    }
}

fn norm(id: &str) -> String {
    trim_to_resource(id.trim_end_matches('/').to_ascii_lowercase().as_str())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn checked_scopes_equal_stored_references(
        kind in 0u8..4,
        pick in proptest::collection::vec(0usize..64, 4),
        depth in 0usize..6,
        key in prop_oneof![Just("id"), Just("ID"), Just("Id"), Just("resourceId"), Just("x")],
        bits in proptest::collection::vec(any::<bool>(), 0..400),
        twin in any::<bool>(),
    ) {
        let mut w = testkit::chain();
        w.route_table("rt").unwrap();
        let (id, b) = body(kind, &pick, depth, key);
        let mut b = recase(&b, &mut bits.into_iter());
        if twin {
            // The same member in a second spelling: a reader could take either.
            let m = b.as_object_mut().unwrap();
            let (k, v) = m.iter().find(|(k, _)| k.eq_ignore_ascii_case("properties")).map(|(k, v)| (k.clone(), v.clone())).unwrap();
            let other = if k == "PROPERTIES" { "properties".to_string() } else { "PROPERTIES".to_string() };
            m.insert(other, v);
            let rid = ResourceId::parse(&id).unwrap();
            prop_assert!(ops::prepare(&rid, &b).is_err(), "members named twice must be refused");
            return Ok(());
        }
        let rid = ResourceId::parse(&id).unwrap();
        let prepared = ops::prepare(&rid, &b).expect("the schemas accept any letter case");
        let checked: BTreeSet<String> = prepared.links().iter().map(|l| norm(&l.scope)).collect();
        let own = rid.key();
        let changes = w.stage(|tx, ctx| ops::put_prepared(tx, ctx, &prepared, &PutOptions::default()).map(|_| ()));
        let Ok(changes) = changes else {
            // Refused by the model (a reference to nothing, an overlap): nothing is stored.
            return Ok(());
        };
        let mut stored = BTreeSet::new();
        for (k, d) in &changes {
            if let Some(d) = d {
                if *k == own || k.starts_with(&format!("{own}/")) {
                    stored.extend(references(k, d));
                }
            }
        }
        // The VNet's inline children are its own; what they link to is not.
        stored.retain(|r| *r != own && !r.starts_with(&format!("{own}/")));
        prop_assert_eq!(checked, stored, "body {}", b);
    }
}
