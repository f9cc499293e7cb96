//! Data-plane bindings (`/vnet/v1/bindings/{nic-id}`) as stored records, without an agent:
//! a binding never outlives its NIC, and refused binding writes change nothing.

mod common;
use common::*;
use serde_json::{json, Value};

fn binding_url(s: &Server, rg: &str, nic: &str) -> String {
    format!(
        "{}/vnet/v1/bindings{}",
        s.base,
        id(rg, &format!("networkInterfaces/{nic}"))
    )
}

fn put_binding(s: &Server, rg: &str, nic: &str, netns: &str) -> (u16, Value) {
    let r = s
        .client
        .put(binding_url(s, rg, nic))
        .json(&json!({"netns": netns, "managed": false}))
        .send()
        .unwrap();
    let st = r.status().as_u16();
    (st, r.json().unwrap_or(Value::Null))
}

fn binding_status(s: &Server, rg: &str, nic: &str) -> u16 {
    s.client
        .get(binding_url(s, rg, nic))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn rev(s: &Server) -> u64 {
    s.app.engine.store().revision().unwrap()
}

#[test]
fn a_binding_goes_with_its_nic() {
    let s = Server::start();
    s.rg("rg");
    s.vnet("rg", "v", &["10.0.0.0/16"]);
    s.subnet("rg", "v", "a", "10.0.1.0/24");
    assert_eq!(s.nic("rg", "n1", "v", "a", None).0, 201);
    assert_eq!(s.nic("rg", "n2", "v", "a", None).0, 201);

    // Tried: binding a NIC that does not exist → 404, nothing written.
    let before = rev(&s);
    let (st, body) = put_binding(&s, "rg", "ghost", "ns-ghost");
    assert_eq!(st, 404, "{body}");
    assert_eq!(body["error"]["code"], "NotFound", "{body}");
    assert_eq!(rev(&s), before, "a refused binding must not write");

    assert_eq!(put_binding(&s, "rg", "n1", "ns-one").0, 200);
    assert_eq!(binding_status(&s, "rg", "n1"), 200);
    // Tried: a second NIC as the same interface of the same namespace → 409, nothing written.
    let before = rev(&s);
    let (st, body) = put_binding(&s, "rg", "n2", "ns-one");
    assert_eq!(st, 409, "{body}");
    assert_eq!(body["error"]["code"], "BindingConflict", "{body}");
    assert_eq!(rev(&s), before);

    // Deleting the NIC deletes its binding in the same commit; re-creating it starts unbound.
    let (st, _) = s.delete(&net("rg", "networkInterfaces/n1"));
    assert!(st == 200 || st == 202 || st == 204, "{st}");
    s.wait_gone(&net("rg", "networkInterfaces/n1"));
    assert_eq!(binding_status(&s, "rg", "n1"), 404);
    assert_eq!(s.nic("rg", "n1", "v", "a", None).0, 201);
    assert_eq!(
        binding_status(&s, "rg", "n1"),
        404,
        "a new NIC is not attached"
    );

    // Deleting the resource group takes the bindings of its NICs too.
    assert_eq!(put_binding(&s, "rg", "n2", "ns-two").0, 200);
    let (st, _) = s.delete(&format!("/subscriptions/{SUB}/resourceGroups/rg"));
    assert!(st == 200 || st == 202, "{st}");
    s.wait_gone(&format!("/subscriptions/{SUB}/resourceGroups/rg"));
    assert_eq!(binding_status(&s, "rg", "n2"), 404);
    let all: Value = s
        .client
        .get(format!("{}/vnet/v1/bindings", s.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(all["value"], json!([]), "{all}");
}
