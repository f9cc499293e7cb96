//! IPv6: dual-stack address spaces, subnets with an IPv4 and an IPv6 prefix, NICs with an IPv6
//! IP configuration, peering and effective routes over both families.

mod common;
use common::*;
use serde_json::json;

#[test]
fn dual_stack_vnets_peer_and_route() {
    let s = Server::start();
    s.rg("rg");
    s.vnet("rg", "a", &["10.1.0.0/16", "fd00:1::/48"]);
    s.vnet("rg", "b", &["10.2.0.0/16", "fd00:2::/48"]);
    s.ok_put(
        &net("rg", "virtualNetworks/a/subnets/s"),
        json!({"properties": {"addressPrefixes": ["10.1.0.0/24", "fd00:1::/64"]}}),
    );
    let (st, nic) = s.put(&net("rg", "networkInterfaces/n"), json!({"location": "westeurope", "properties": {"ipConfigurations": [
        {"name": "v4", "properties": {"subnet": {"id": id("rg", "virtualNetworks/a/subnets/s")}}},
        {"name": "v6", "properties": {"privateIPAddressVersion": "IPv6", "subnet": {"id": id("rg", "virtualNetworks/a/subnets/s")}}}]}}));
    assert_eq!(st, 201, "{nic}");
    let cfgs = nic["properties"]["ipConfigurations"].as_array().unwrap();
    assert_eq!(cfgs[0]["properties"]["privateIPAddress"], "10.1.0.4");
    assert_eq!(cfgs[1]["properties"]["privateIPAddress"], "fd00:1::4");
    assert_eq!(cfgs[1]["properties"]["privateIPAddressVersion"], "IPv6");
    assert_eq!(cfgs[0]["properties"]["primary"], true);
    // IPv6 overlap is checked like IPv4.
    s.vnet("rg", "c", &["10.3.0.0/16", "fd00:1:0:8000::/49"]);
    s.refused(
        s.peer("rg", "a", "c", json!({})),
        400,
        "VnetAddressSpacesOverlap",
    );
    s.peer("rg", "a", "b", json!({}));
    s.peer("rg", "b", "a", json!({}));
    let r = s.routes("rg", "n");
    assert!(has(&r, "fd00:1::/48", "VnetLocal"), "{r:?}");
    assert!(has(&r, "fd00:2::/48", "VNetPeering"), "{r:?}");
    assert!(has(&r, "::/0", "Internet"), "{r:?}");
    assert!(has(&r, "10.2.0.0/16", "VNetPeering"), "{r:?}");
    // A static IPv6 address is checked against the IPv6 prefix.
    let (st, b) = s.put(&net("rg", "networkInterfaces/m"), json!({"location": "westeurope", "properties": {"ipConfigurations": [
        {"name": "v4", "properties": {"subnet": {"id": id("rg", "virtualNetworks/a/subnets/s")}}},
        {"name": "v6", "properties": {"privateIPAddressVersion": "IPv6", "privateIPAddress": "fd00:1::4", "subnet": {"id": id("rg", "virtualNetworks/a/subnets/s")}}}]}}));
    assert_eq!(st, 400, "{b}");
    assert_eq!(b["error"]["code"], "PrivateIPAddressInUse");
}
