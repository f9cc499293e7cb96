//! Whole scenarios over HTTP: hub with a VPN gateway and three spokes using remote gateways,
//! peering state changes, overlap refusals, address-space sync, effective routes at each step.

mod common;
use common::*;
use serde_json::json;

/// Hub 10.0.0.0/16 with GatewaySubnet and a VPN gateway connected to an on-premises site
/// (192.168.0.0/16 via a local network gateway); spokes 10.1–10.3 peer with it and use its
/// gateway. Checks states, routes and the refusals along the way.
#[test]
fn hub_with_gateway_and_three_spokes() {
    let s = Server::start();
    s.rg("net");
    s.vnet("net", "hub", &["10.0.0.0/16"]);
    s.subnet("net", "hub", "GatewaySubnet", "10.0.255.0/27");
    s.subnet("net", "hub", "shared", "10.0.1.0/24");
    for i in 1..=3 {
        s.vnet("net", &format!("spoke{i}"), &[&format!("10.{i}.0.0/16")]);
        s.subnet(
            "net",
            &format!("spoke{i}"),
            "app",
            &format!("10.{i}.1.0/24"),
        );
    }
    // useRemoteGateways before the hub has a gateway: Azure's refusal.
    let msg = s.refused(
        s.peer("net", "spoke1", "hub", json!({"useRemoteGateways": true})),
        400,
        "RemoteVnetHasNoGateways",
    );
    assert!(msg.contains("does not have any gateways"), "{msg}");

    let gw = s.gateway("net", "hub", "hub-gw", json!({}));
    assert_eq!(
        gw["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"],
        "10.0.255.4"
    );
    assert_eq!(gw["properties"]["bgpSettings"]["asn"], 65515);
    // A second VPN gateway in the same VNet is refused.
    s.ok_put(
        &net("net", "publicIPAddresses/pip2"),
        json!({"location": "westeurope", "sku": {"name": "Standard"}}),
    );
    let r = s.put(&net("net", "virtualNetworkGateways/gw2"), json!({"location": "westeurope", "properties": {"sku": {"name": "VpnGw1"},
        "ipConfigurations": [{"name": "default", "properties": {"subnet": {"id": id("net", "virtualNetworks/hub/subnets/GatewaySubnet")}, "publicIPAddress": {"id": id("net", "publicIPAddresses/pip2")}}}]}}));
    s.refused(r, 400, "VnetAlreadyHasVpnGateway");

    // On-premises site and connection.
    let (st, lng) = s.put(&net("net", "localNetworkGateways/onprem"), json!({"location": "West Europe", "properties": {"gatewayIpAddress": "198.18.10.1", "localNetworkAddressSpace": {"addressPrefixes": ["192.168.0.0/16"]}}}));
    assert_eq!(st, 201, "{lng}");
    assert_eq!(lng["location"], "westeurope");
    s.wait_succeeded(&net("net", "localNetworkGateways/onprem"));
    let (st, c) = s.put(
        &net("net", "connections/hub-onprem"),
        json!({"location": "westeurope", "properties": {
        "connectionType": "IPsec", "sharedKey": "s3cret-Key",
        "virtualNetworkGateway1": {"id": id("net", "virtualNetworkGateways/hub-gw")},
        "localNetworkGateway2": {"id": id("net", "localNetworkGateways/onprem")}}}),
    );
    assert_eq!(st, 201, "{c}");
    assert!(
        c["properties"].get("sharedKey").is_none(),
        "sharedKey is write-only: {c}"
    );
    s.wait_succeeded(&net("net", "connections/hub-onprem"));

    s.nic("net", "hub-vm", "hub", "shared", None);
    let r = s.routes("net", "hub-vm");
    assert!(has(&r, "10.0.0.0/16", "VnetLocal"));
    assert!(has(&r, "192.168.0.0/16", "VirtualNetworkGateway"), "{r:?}");
    // The gateway route beats the reserved-range None route of the same prefix, which stays
    // listed as Invalid.
    assert!(
        r.iter()
            .any(|x| x.0 == "192.168.0.0/16" && x.1 == "None" && x.3 == "Invalid"),
        "{r:?}"
    );

    for i in 1..=3 {
        let sp = format!("spoke{i}");
        s.nic("net", &format!("{sp}-vm"), &sp, "app", None);
        // Spoke link first: Initiated, no routes to the hub yet.
        let (st, b) = s.peer("net", &sp, "hub", json!({"useRemoteGateways": true}));
        assert!(st == 201, "{b}");
        assert_eq!(b["properties"]["peeringState"], "Initiated");
        let r = s.routes("net", &format!("{sp}-vm"));
        assert!(
            !r.iter().any(|x| x.0 == "10.0.0.0/16"),
            "Initiated peering must not add routes: {r:?}"
        );
        // Hub link without allowGatewayTransit would break the spoke's use of the gateway.
        s.refused(
            s.peer("net", "hub", &sp, json!({"allowGatewayTransit": false})),
            400,
            "PeeringGatewayTransitInUse",
        );
        let (st, b) = s.peer("net", "hub", &sp, json!({"allowGatewayTransit": true}));
        assert_eq!(st, 201, "{b}");
        assert_eq!(b["properties"]["peeringState"], "Connected");
        assert_eq!(s.peering_state("net", &sp, "hub"), "Connected");
        let r = s.routes("net", &format!("{sp}-vm"));
        assert!(has(&r, "10.0.0.0/16", "VNetPeering"), "{r:?}");
        assert!(
            has(&r, "192.168.0.0/16", "VirtualNetworkGateway"),
            "spoke gets the hub gateway's routes: {r:?}"
        );
        assert!(has(&r, &format!("10.{i}.0.0/16"), "VnetLocal"));
    }
    // Non-transitive: spoke1 has no route to spoke2.
    let r = s.routes("net", "spoke1-vm");
    assert!(!r.iter().any(|x| x.0 == "10.2.0.0/16"), "{r:?}");
    // The hub sees all three spokes.
    let r = s.routes("net", "hub-vm");
    for i in 1..=3 {
        assert!(has(&r, &format!("10.{i}.0.0/16"), "VNetPeering"), "{r:?}");
    }
    // A spoke may use only one remote gateway, and a VNet using remote gateways cannot get one.
    s.subnet("net", "spoke1", "GatewaySubnet", "10.1.255.0/27");
    s.ok_put(
        &net("net", "publicIPAddresses/pip3"),
        json!({"location": "westeurope", "sku": {"name": "Standard"}}),
    );
    let r = s.put(&net("net", "virtualNetworkGateways/spoke-gw"), json!({"location": "westeurope", "properties": {"sku": {"name": "VpnGw1"},
        "ipConfigurations": [{"name": "default", "properties": {"subnet": {"id": id("net", "virtualNetworks/spoke1/subnets/GatewaySubnet")}, "publicIPAddress": {"id": id("net", "publicIPAddresses/pip3")}}}]}}));
    s.refused(r, 400, "VnetUsingRemoteGatewayCannotHaveGateway");
    // The hub gateway cannot be deleted while spokes use it.
    s.refused(
        s.delete(&net("net", "virtualNetworkGateways/hub-gw")),
        400,
        "InUseVirtualNetworkGatewayCannotBeDeleted",
    );
    // A user route: 0.0.0.0/0 to an appliance in the hub, and one that overrides a peering route.
    s.ok_put(&net("net", "routeTables/spoke-rt"), json!({"location": "westeurope", "properties": {"routes": [
        {"name": "default-to-fw", "properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.0.1.4"}},
        {"name": "blackhole", "properties": {"addressPrefix": "10.0.0.0/16", "nextHopType": "None"}}]}}));
    s.ok_put(&net("net", "virtualNetworks/spoke2/subnets/app"), json!({"properties": {"addressPrefix": "10.2.1.0/24", "routeTable": {"id": id("net", "routeTables/spoke-rt")}}}));
    let r = s.routes("net", "spoke2-vm");
    assert!(has(&r, "0.0.0.0/0", "VirtualAppliance"), "{r:?}");
    assert!(
        r.iter()
            .any(|x| x.0 == "0.0.0.0/0" && x.1 == "Internet" && x.3 == "Invalid"),
        "{r:?}"
    );
    assert!(
        r.iter()
            .any(|x| x.0 == "10.0.0.0/16" && x.1 == "VNetPeering" && x.3 == "Invalid"),
        "{r:?}"
    );
    assert!(has(&r, "10.0.0.0/16", "None"));
    // The route table cannot be deleted while associated.
    s.refused(
        s.delete(&net("net", "routeTables/spoke-rt")),
        400,
        "InUseRouteTableCannotBeDeleted",
    );
    // Next hop agrees with the routes.
    let nic = s.ok_get(&net("net", "networkInterfaces/spoke2-vm"));
    let src = nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, nh) = s.post(&net("net", "networkWatchers/NetworkWatcher_westeurope/nextHop"), json!({"targetResourceId": id("net", "networkInterfaces/spoke2-vm"), "sourceIPAddress": src, "destinationIPAddress": "8.8.8.8"}));
    assert_eq!(st, 200, "{nh}");
    assert_eq!(nh["nextHopType"], "VirtualAppliance");
    assert_eq!(nh["nextHopIpAddress"], "10.0.1.4");
    assert_eq!(nh["routeTableId"], id("net", "routeTables/spoke-rt"));
    // disableBgpRoutePropagation keeps gateway routes out.
    s.ok_put(&net("net", "routeTables/spoke-rt"), json!({"location": "westeurope", "properties": {"disableBgpRoutePropagation": true, "routes": []}}));
    let r = s.routes("net", "spoke2-vm");
    assert!(!r.iter().any(|x| x.1 == "VirtualNetworkGateway"), "{r:?}");
    // Shared key operations.
    let k = s.ok_get(&net("net", "connections/hub-onprem/sharedkey"));
    assert_eq!(k["value"], "s3cret-Key");
    let (st, _) = s.put(
        &net("net", "connections/hub-onprem/sharedkey"),
        json!({"value": "AzureAbc123"}),
    );
    assert_eq!(st, 200);
    assert_eq!(
        s.ok_get(&net("net", "connections/hub-onprem/sharedkey"))["value"],
        "AzureAbc123"
    );
    let (st, b) = s.post(
        &net("net", "connections/hub-onprem/sharedkey/reset"),
        json!({"keyLength": 64}),
    );
    assert_eq!(st, 200, "{b}");
    let k = s.ok_get(&net("net", "connections/hub-onprem/sharedkey"))["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(k.len(), 64);
    assert_ne!(k, "AzureAbc123");
    let c = s.ok_get(&net("net", "connections/hub-onprem"));
    assert!(
        !c.to_string().contains(&k),
        "the key never appears in the connection body"
    );
}

/// Deleting one side disconnects the other; re-creating needs the Disconnected side re-PUT first.
#[test]
fn delete_and_recreate_one_side() {
    let s = Server::start();
    s.rg("rg");
    s.vnet("rg", "a", &["10.10.0.0/16"]);
    s.vnet("rg", "b", &["10.20.0.0/16"]);
    s.subnet("rg", "a", "s", "10.10.0.0/24");
    s.nic("rg", "a-vm", "a", "s", None);
    s.peer("rg", "a", "b", json!({}));
    s.peer("rg", "b", "a", json!({}));
    assert_eq!(s.peering_state("rg", "a", "b"), "Connected");
    assert!(has(&s.routes("rg", "a-vm"), "10.20.0.0/16", "VNetPeering"));

    // Remove the remote VNet entirely: the survivor goes Disconnected and its routes disappear.
    let (st, _) = s.delete(&net("rg", "virtualNetworks/b"));
    assert_eq!(st, 200);
    assert_eq!(s.peering_state("rg", "a", "b"), "Disconnected");
    assert!(!s.routes("rg", "a-vm").iter().any(|x| x.0 == "10.20.0.0/16"));
    // Re-create b and its link: refused while a→b is Disconnected.
    s.vnet("rg", "b", &["10.20.0.0/16"]);
    let msg = s.refused(
        s.peer("rg", "b", "a", json!({})),
        400,
        "RemotePeeringIsDisconnected",
    );
    assert!(msg.contains("Disconnected state"), "{msg}");
    // Recovery order: re-PUT a→b (Initiated), then b→a (both Connected).
    let (_, b) = s.peer("rg", "a", "b", json!({}));
    assert_eq!(b["properties"]["peeringState"], "Initiated");
    let (_, b) = s.peer("rg", "b", "a", json!({}));
    assert_eq!(b["properties"]["peeringState"], "Connected");
    assert_eq!(s.peering_state("rg", "a", "b"), "Connected");

    // Deleting one link: the other goes Disconnected.
    let (st, _) = s.delete(&net(
        "rg",
        "virtualNetworks/b/virtualNetworkPeerings/b-to-a",
    ));
    assert_eq!(st, 200);
    assert_eq!(s.peering_state("rg", "a", "b"), "Disconnected");
    let (st, _) = s.delete(&net(
        "rg",
        "virtualNetworks/b/virtualNetworkPeerings/b-to-a",
    ));
    assert_eq!(st, 204, "deleting what is gone answers 204");
}

#[test]
fn overlap_refusals() {
    let s = Server::start();
    s.rg("rg");
    s.vnet("rg", "a", &["10.1.0.0/16"]);
    s.vnet("rg", "b", &["10.1.1.0/24", "10.9.0.0/16"]);
    s.vnet("rg", "c", &["10.2.0.0/16"]);
    s.vnet("rg", "d", &["10.2.128.0/17"]);
    let msg = s.refused(
        s.peer("rg", "a", "b", json!({})),
        400,
        "VnetAddressSpacesOverlap",
    );
    assert!(
        msg.contains("Overlapping address prefixes: 10.1.1.0/24"),
        "{msg}"
    );
    // c is peered with a; d overlaps c, so d cannot peer with a.
    s.peer("rg", "a", "c", json!({}));
    s.peer("rg", "c", "a", json!({}));
    let msg = s.refused(
        s.peer("rg", "d", "a", json!({})),
        400,
        "VnetAddressSpaceOverlapsWithAlreadyPeeredVnet",
    );
    assert!(
        msg.contains("already peered with the second virtual network"),
        "{msg}"
    );
    // The other direction: a's link to d is refused too, since a already peers with c, which
    // d overlaps (a could not route 10.2.128.0/17 to two peers).
    let msg = s.refused(
        s.peer("rg", "a", "d", json!({})),
        400,
        "VnetAddressSpaceOverlapsWithAlreadyPeeredVnet",
    );
    assert!(msg.contains("virtualNetworks/d and"), "{msg}");
    // One peering per remote VNet.
    let r = s.put(
        &net("rg", "virtualNetworks/a/virtualNetworkPeerings/second"),
        json!({"properties": {"remoteVirtualNetwork": {"id": id("rg", "virtualNetworks/c")}}}),
    );
    s.refused(r, 400, "AnotherPeeringAlreadyReferencesRemoteVnet");
    // Unpeered VNets may overlap freely.
    s.vnet("rg", "e", &["10.1.0.0/16"]);
    // Changing a's space to overlap its peer c is refused; nothing changes.
    let r = s.put(&net("rg", "virtualNetworks/a"), json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16", "10.2.5.0/24"]}}}));
    s.refused(r, 400, "VnetAddressSpacesOverlap");
    assert_eq!(
        s.ok_get(&net("rg", "virtualNetworks/a"))["properties"]["addressSpace"]["addressPrefixes"],
        json!(["10.1.0.0/16"])
    );
}

#[test]
fn sync_after_address_space_change() {
    let s = Server::start();
    s.rg("rg");
    s.vnet("rg", "a", &["10.1.0.0/16"]);
    s.vnet("rg", "b", &["10.2.0.0/16"]);
    s.subnet("rg", "b", "s", "10.2.0.0/24");
    s.nic("rg", "b-vm", "b", "s", None);
    s.peer("rg", "a", "b", json!({}));
    s.peer("rg", "b", "a", json!({}));
    let lvl = |from: &str, to: &str| {
        s.ok_get(&net(
            "rg",
            &format!("virtualNetworks/{from}/virtualNetworkPeerings/{from}-to-{to}"),
        ))["properties"]["peeringSyncLevel"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(lvl("a", "b"), "FullyInSync");
    // a grows; the peering is not in sync until b's link is synced.
    s.vnet("rg", "a", &["10.1.0.0/16", "10.3.0.0/16"]);
    assert_eq!(lvl("a", "b"), "RemoteNotInSync");
    assert_eq!(lvl("b", "a"), "LocalNotInSync");
    assert_eq!(s.peering_state("rg", "a", "b"), "Connected");
    let r = s.routes("rg", "b-vm");
    assert!(
        !r.iter().any(|x| x.0 == "10.3.0.0/16"),
        "routes follow the synced snapshot: {r:?}"
    );
    let link = s.ok_get(&net(
        "rg",
        "virtualNetworks/b/virtualNetworkPeerings/b-to-a",
    ));
    assert_eq!(
        link["properties"]["remoteVirtualNetworkAddressSpace"]["addressPrefixes"],
        json!(["10.1.0.0/16", "10.3.0.0/16"])
    );
    assert_eq!(
        link["properties"]["remoteAddressSpace"]["addressPrefixes"],
        json!(["10.1.0.0/16"])
    );
    // Sync b→a.
    let (st, b) = s.put(
        &format!(
            "{}?syncRemoteAddressSpace=true",
            net("rg", "virtualNetworks/b/virtualNetworkPeerings/b-to-a")
        ),
        json!({"properties": link["properties"].clone()}),
    );
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["properties"]["peeringSyncLevel"], "FullyInSync");
    assert_eq!(lvl("a", "b"), "FullyInSync");
    assert!(has(&s.routes("rg", "b-vm"), "10.3.0.0/16", "VNetPeering"));
}
