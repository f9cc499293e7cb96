//! Bad input: every refused request answers with an ARM error naming the problem and writes
//! nothing (the store revision does not move).

mod common;
use common::*;
use serde_json::{json, Value};

fn rev(s: &Server) -> u64 {
    s.app.engine.store().revision().unwrap()
}

/// Sends `req` and asserts the error and that nothing was written.
fn refused_unchanged(s: &Server, what: &str, r: (u16, Value), status: u16, code: &str) -> String {
    let before = rev(s);
    let _ = what;
    let m = s.refused(r, status, code);
    assert_eq!(rev(s), before, "{what}: a refused request must not write");
    m
}

fn setup() -> Server {
    let s = Server::start();
    s.rg("rg");
    s.vnet("rg", "v", &["10.0.0.0/16"]);
    s.subnet("rg", "v", "a", "10.0.1.0/24");
    s
}

#[test]
fn malformed_and_mistyped_bodies() {
    let s = setup();
    let url = s.url(&net("rg", "virtualNetworks/v2"));
    let raw = |body: &str| {
        let r = s
            .client
            .put(&url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        let st = r.status().as_u16();
        (st, r.json::<Value>().unwrap())
    };
    let before = rev(&s);
    s.refused(
        raw("{\"location\": \"westeurope\", "),
        400,
        "InvalidRequestFormat",
    );
    s.refused(raw(""), 400, "InvalidRequestFormat");
    s.refused(raw("[1,2]"), 400, "InvalidRequestFormat");
    assert_eq!(rev(&s), before);
    let m = refused_unchanged(
        &s,
        "unknown field",
        s.put(
            &net("rg", "virtualNetworks/v2"),
            json!({"location": "westeurope", "properties": {"adressSpace": {}}}),
        ),
        400,
        "InvalidRequestFormat",
    );
    assert!(m.contains("adressSpace"), "{m}");
    let m = refused_unchanged(&s, "wrong type", s.put(&net("rg", "virtualNetworks/v2"), json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": "10.1.0.0/16"}}})), 400, "InvalidRequestFormat");
    assert!(m.contains("properties.addressSpace.addressPrefixes"), "{m}");
    refused_unchanged(
        &s,
        "bool as string",
        s.put(
            &net("rg", "virtualNetworks/v/virtualNetworkPeerings/p"),
            json!({"properties": {"allowForwardedTraffic": "yes"}}),
        ),
        400,
        "InvalidRequestFormat",
    );
    refused_unchanged(
        &s,
        "tags not strings",
        s.patch(&net("rg", "virtualNetworks/v"), json!({"tags": {"a": 1}})),
        400,
        "InvalidRequestFormat",
    );
}

#[test]
fn invalid_prefixes() {
    let s = setup();
    let put = |p: &[&str]| {
        s.put(&net("rg", "virtualNetworks/v2"), json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": p}}}))
    };
    refused_unchanged(
        &s,
        "bad cidr",
        put(&["10.0.0.0/33"]),
        400,
        "InvalidAddressPrefixFormat",
    );
    refused_unchanged(
        &s,
        "not a cidr",
        put(&["ten.0.0.0/8"]),
        400,
        "InvalidAddressPrefixFormat",
    );
    let m = refused_unchanged(
        &s,
        "non-canonical",
        put(&["10.0.0.1/16"]),
        400,
        "InvalidCIDRNotation",
    );
    assert!(
        m.contains("10.0.0.0/16"),
        "the message names the canonical form: {m}"
    );
    refused_unchanged(&s, "empty space", put(&[]), 400, "InvalidAddressSpace");
    refused_unchanged(
        &s,
        "loopback",
        put(&["127.0.0.0/8"]),
        400,
        "InvalidAddressSpace",
    );
    refused_unchanged(
        &s,
        "self-overlap",
        put(&["10.1.0.0/16", "10.1.2.0/24"]),
        400,
        "VnetAddressSpaceOverlapsWithItself",
    );
    let sub = |p: &str| {
        s.put(
            &net("rg", "virtualNetworks/v/subnets/b"),
            json!({"properties": {"addressPrefix": p}}),
        )
    };
    let m = refused_unchanged(
        &s,
        "outside",
        sub("10.9.0.0/24"),
        400,
        "NetcfgSubnetRangeOutsideVnet",
    );
    assert!(
        m.contains("outside the IP address range of virtual network 'v'"),
        "{m}"
    );
    let m = refused_unchanged(
        &s,
        "overlap",
        sub("10.0.1.128/25"),
        400,
        "NetcfgSubnetRangesOverlap",
    );
    assert!(
        m.contains("overlaps with that of an existing subnet"),
        "{m}"
    );
    refused_unchanged(
        &s,
        "too small",
        sub("10.0.2.0/30"),
        400,
        "NetcfgInvalidSubnet",
    );
    refused_unchanged(
        &s,
        "no prefix",
        s.put(
            &net("rg", "virtualNetworks/v/subnets/b"),
            json!({"properties": {}}),
        ),
        400,
        "NetcfgInvalidSubnet",
    );
    refused_unchanged(
        &s,
        "ipv6 not /64",
        s.put(
            &net("rg", "virtualNetworks/v/subnets/b"),
            json!({"properties": {"addressPrefix": "fd00::/48"}}),
        ),
        400,
        "NetcfgInvalidSubnet",
    );
}

#[test]
fn oversized_body_and_api_version_and_routes() {
    let s = setup();
    let big = format!(
        "{{\"location\": \"westeurope\", \"tags\": {{\"x\": \"{}\"}}}}",
        "a".repeat(5 * 1024 * 1024)
    );
    let before = rev(&s);
    let r = s
        .client
        .put(s.url(&net("rg", "virtualNetworks/big")))
        .body(big)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(
        r.json::<Value>().unwrap()["error"]["code"],
        "RequestEntityTooLarge"
    );
    assert_eq!(rev(&s), before);
    // The server closes a connection whose body it refused to read: use a fresh client.
    let s = Server {
        client: reqwest::blocking::Client::new(),
        ..s
    };
    let r = s
        .client
        .put(format!("{}{}", s.base, net("rg", "virtualNetworks/v3")))
        .json(&json!({"location": "x"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.json::<Value>().unwrap()["error"]["code"],
        "MissingApiVersionParameter"
    );
    let r = s
        .client
        .get(format!(
            "{}{}?api-version=soon",
            s.base,
            net("rg", "virtualNetworks/v")
        ))
        .send()
        .unwrap();
    assert_eq!(
        r.json::<Value>().unwrap()["error"]["code"],
        "InvalidApiVersionParameter"
    );
    assert_eq!(rev(&s), before);
    s.refused(
        s.get(&net("rg", "virtualMachines/x")),
        404,
        "InvalidResourceType",
    );
    s.refused(
        s.get(&net("rg", "virtualNetworks/nope")),
        404,
        "ResourceNotFound",
    );
    s.refused(
        s.get(&net("nogroup", "virtualNetworks/v")),
        404,
        "ResourceGroupNotFound",
    );
    s.refused(
        s.get(&net("rg", "virtualNetworks/nope/subnets/a")),
        404,
        "ParentResourceNotFound",
    );
    s.refused(
        s.get(&net("rg", "virtualNetworks/v/subnets/zz")),
        404,
        "ResourceNotFound",
    );
}

#[test]
fn wrong_parent_names_and_locations() {
    let s = setup();
    refused_unchanged(
        &s,
        "missing parent",
        s.put(
            &net("rg", "virtualNetworks/nope/subnets/a"),
            json!({"properties": {"addressPrefix": "10.0.0.0/24"}}),
        ),
        404,
        "ParentResourceNotFound",
    );
    refused_unchanged(&s, "missing group", s.put(&net("nogroup", "virtualNetworks/x"), json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}})), 404, "ResourceGroupNotFound");
    refused_unchanged(&s, "bad name", s.put(&net("rg", "virtualNetworks/-bad"), json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}})), 400, "InvalidResourceName");
    refused_unchanged(
        &s,
        "no location",
        s.put(
            &net("rg", "virtualNetworks/v9"),
            json!({"properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}}),
        ),
        400,
        "LocationRequired",
    );
    refused_unchanged(&s, "moved", s.put(&net("rg", "virtualNetworks/v"), json!({"location": "eastus", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}})), 400, "InvalidResourceLocation");
    refused_unchanged(&s, "missing route table", s.put(&net("rg", "virtualNetworks/v/subnets/a"), json!({"properties": {"addressPrefix": "10.0.1.0/24", "routeTable": {"id": id("rg", "routeTables/nope")}}})), 400, "InvalidResourceReference");
    refused_unchanged(
        &s,
        "peer to missing vnet",
        s.peer("rg", "v", "ghost", json!({})),
        400,
        "InvalidResourceReference",
    );
    refused_unchanged(
        &s,
        "peer to itself",
        s.peer("rg", "v", "v", json!({})),
        400,
        "CannotPeerVirtualNetworkWithItself",
    );
}

#[test]
fn ip_address_rules() {
    let s = setup();
    let (st, b) = s.nic("rg", "n1", "v", "a", None);
    assert_eq!(st, 201, "{b}");
    assert_eq!(
        b["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"], "10.0.1.4",
        "lowest after the 5 reserved"
    );
    let (_, b) = s.nic("rg", "n2", "v", "a", Some("10.0.1.10"));
    assert_eq!(
        b["properties"]["ipConfigurations"][0]["properties"]["privateIPAllocationMethod"],
        "Static"
    );
    refused_unchanged(
        &s,
        "taken",
        s.nic("rg", "n3", "v", "a", Some("10.0.1.10")),
        400,
        "PrivateIPAddressInUse",
    );
    refused_unchanged(
        &s,
        "taken dynamic",
        s.nic("rg", "n3", "v", "a", Some("10.0.1.4")),
        400,
        "PrivateIPAddressInUse",
    );
    refused_unchanged(
        &s,
        "reserved",
        s.nic("rg", "n3", "v", "a", Some("10.0.1.1")),
        400,
        "PrivateIPAddressInReservedRange",
    );
    refused_unchanged(
        &s,
        "broadcast",
        s.nic("rg", "n3", "v", "a", Some("10.0.1.255")),
        400,
        "PrivateIPAddressInReservedRange",
    );
    refused_unchanged(
        &s,
        "outside",
        s.nic("rg", "n3", "v", "a", Some("10.0.2.7")),
        400,
        "PrivateIPAddressNotInSubnet",
    );
    refused_unchanged(
        &s,
        "missing subnet",
        s.nic("rg", "n3", "v", "zz", None),
        400,
        "InvalidResourceReference",
    );
    s.subnet("rg", "v", "GatewaySubnet", "10.0.255.0/27");
    refused_unchanged(
        &s,
        "gateway subnet",
        s.nic("rg", "n3", "v", "GatewaySubnet", None),
        400,
        "GatewaySubnet",
    );
    // Next dynamic skips the static one; deleting frees the address for reuse.
    let (_, b) = s.nic("rg", "n3", "v", "a", None);
    assert_eq!(
        b["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"],
        "10.0.1.5"
    );
    assert_eq!(s.delete(&net("rg", "networkInterfaces/n1")).0, 200);
    let (_, b) = s.nic("rg", "n4", "v", "a", None);
    assert_eq!(
        b["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"],
        "10.0.1.4"
    );
    // A subnet in use cannot be deleted, nor dropped by a full-replace VNet PUT; the whole PUT
    // (including the new subnet it also lists) is refused.
    let m = refused_unchanged(
        &s,
        "in use",
        s.delete(&net("rg", "virtualNetworks/v/subnets/a")),
        400,
        "InUseSubnetCannotBeDeleted",
    );
    assert!(
        m.contains("is in use by") && m.contains("networkInterfaces/"),
        "{m}"
    );
    refused_unchanged(
        &s,
        "full replace drops in-use subnet",
        s.put(&net("rg", "virtualNetworks/v"), json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}, "subnets": [{"name": "new", "properties": {"addressPrefix": "10.0.9.0/24"}}]}})),
        400,
        "InUseSubnetCannotBeDeleted",
    );
    assert!(s.get(&net("rg", "virtualNetworks/v/subnets/new")).0 == 404);
    // A /29 holds exactly three dynamic addresses.
    s.subnet("rg", "v", "tiny", "10.0.3.0/29");
    for i in 0..3 {
        assert_eq!(s.nic("rg", &format!("t{i}"), "v", "tiny", None).0, 201);
    }
    refused_unchanged(
        &s,
        "full",
        s.nic("rg", "t3", "v", "tiny", None),
        400,
        "SubnetIsFull",
    );
    // Shrinking an in-use subnet away from its addresses is refused.
    refused_unchanged(
        &s,
        "resize in use",
        s.put(
            &net("rg", "virtualNetworks/v/subnets/a"),
            json!({"properties": {"addressPrefix": "10.0.1.128/25"}}),
        ),
        400,
        "InUseSubnetCannotBeUpdated",
    );
}

#[test]
fn gateway_and_connection_rules() {
    let s = setup();
    s.ok_put(
        &net("rg", "publicIPAddresses/p1"),
        json!({"location": "westeurope", "sku": {"name": "Standard"}}),
    );
    let gw = |subnet: &str, extra: Value| {
        let mut p = json!({"sku": {"name": "VpnGw1"}, "ipConfigurations": [{"name": "default", "properties": {"subnet": {"id": id("rg", &format!("virtualNetworks/v/subnets/{subnet}"))}, "publicIPAddress": {"id": id("rg", "publicIPAddresses/p1")}}}]});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        s.put(
            &net("rg", "virtualNetworkGateways/g"),
            json!({"location": "westeurope", "properties": p}),
        )
    };
    refused_unchanged(
        &s,
        "not GatewaySubnet",
        gw("a", json!({})),
        400,
        "InvalidGatewaySubnet",
    );
    s.subnet("rg", "v", "GatewaySubnet", "10.0.255.0/27");
    refused_unchanged(
        &s,
        "bad sku",
        gw("GatewaySubnet", json!({"sku": {"name": "Huge"}})),
        400,
        "InvalidGatewaySku",
    );
    refused_unchanged(
        &s,
        "AA needs 2",
        gw("GatewaySubnet", json!({"activeActive": true})),
        400,
        "InvalidNumberOfIpConfigurations",
    );
    refused_unchanged(
        &s,
        "basic bgp",
        gw(
            "GatewaySubnet",
            json!({"sku": {"name": "Basic"}, "enableBgp": true}),
        ),
        400,
        "BasicSkuNotSupportedFeature",
    );
    refused_unchanged(
        &s,
        "pool overlaps",
        gw(
            "GatewaySubnet",
            json!({"vpnClientConfiguration": {"vpnClientAddressPool": {"addressPrefixes": ["10.0.200.0/24"]}}}),
        ),
        400,
        "VpnClientAddressPoolOverlapsVirtualNetwork",
    );
    refused_unchanged(
        &s,
        "policy-based p2s",
        gw(
            "GatewaySubnet",
            json!({"vpnType": "PolicyBased", "vpnClientConfiguration": {"vpnClientAddressPool": {"addressPrefixes": ["172.16.0.0/24"]}}}),
        ),
        400,
        "PointToSiteRequiresRouteBasedGateway",
    );
    let (st, _) = gw("GatewaySubnet", json!({}));
    assert_eq!(st, 201);
    s.wait_succeeded(&net("rg", "virtualNetworkGateways/g"));
    refused_unchanged(
        &s,
        "vpnType fixed",
        gw("GatewaySubnet", json!({"vpnType": "PolicyBased"})),
        400,
        "VpnTypeCannotBeChanged",
    );
    refused_unchanged(
        &s,
        "pip in use",
        s.delete(&net("rg", "publicIPAddresses/p1")),
        400,
        "PublicIPAddressCannotBeDeleted",
    );
    refused_unchanged(&s, "lng without address", s.put(&net("rg", "localNetworkGateways/l"), json!({"location": "westeurope", "properties": {"localNetworkAddressSpace": {"addressPrefixes": ["192.168.0.0/16"]}}})), 400, "LocalNetworkGatewayMustHaveIpAddressOrFqdn");
    refused_unchanged(&s, "lng bad asn", s.put(&net("rg", "localNetworkGateways/l"), json!({"location": "westeurope", "properties": {"gatewayIpAddress": "198.18.0.9", "bgpSettings": {"asn": 65515}}})), 400, "InvalidBgpAsn");
    s.ok_put(&net("rg", "localNetworkGateways/l"), json!({"location": "westeurope", "properties": {"gatewayIpAddress": "198.18.0.9", "localNetworkAddressSpace": {"addressPrefixes": ["192.168.0.0/16"]}}}));
    let conn = |props: Value| {
        let mut p = json!({"connectionType": "IPsec", "virtualNetworkGateway1": {"id": id("rg", "virtualNetworkGateways/g")}, "localNetworkGateway2": {"id": id("rg", "localNetworkGateways/l")}});
        for (k, v) in props.as_object().unwrap() {
            p[k] = v.clone();
        }
        s.put(
            &net("rg", "connections/c"),
            json!({"location": "westeurope", "properties": p}),
        )
    };
    let policy = json!({"saLifeTimeSeconds": 27000, "saDataSizeKilobytes": 102400000, "ipsecEncryption": "GCMAES256", "ipsecIntegrity": "GCMAES256", "ikeEncryption": "AES256", "ikeIntegrity": "SHA256", "dhGroup": "DHGroup14"});
    refused_unchanged(
        &s,
        "incomplete policy",
        conn(json!({"ipsecPolicies": [policy]})),
        400,
        "IpsecPolicyIncomplete",
    );
    let mut p2 = policy.clone();
    p2["pfsGroup"] = json!("PFS2048");
    p2["ipsecIntegrity"] = json!("SHA256");
    refused_unchanged(
        &s,
        "gcm pairing",
        conn(json!({"ipsecPolicies": [p2]})),
        400,
        "IpsecEncryptionAndIntegrityMismatch",
    );
    refused_unchanged(
        &s,
        "dpd",
        conn(json!({"dpdTimeoutSeconds": 3})),
        400,
        "InvalidDpdTimeout",
    );
    refused_unchanged(
        &s,
        "type",
        conn(json!({"connectionType": "ExpressRoute"})),
        400,
        "UnsupportedConnectionType",
    );
    refused_unchanged(
        &s,
        "lng missing",
        conn(json!({"localNetworkGateway2": {"id": id("rg", "localNetworkGateways/zz")}})),
        400,
        "InvalidResourceReference",
    );
    let (st, b) = conn(json!({"sharedKey": "abc"}));
    assert_eq!(st, 201, "{b}");
    refused_unchanged(
        &s,
        "lng in use",
        s.delete(&net("rg", "localNetworkGateways/l")),
        400,
        "InUseLocalNetworkGatewayCannotBeDeleted",
    );
    refused_unchanged(
        &s,
        "gw in use",
        s.delete(&net("rg", "virtualNetworkGateways/g")),
        400,
        "InUseVirtualNetworkGatewayCannotBeDeleted",
    );
    refused_unchanged(
        &s,
        "key length",
        s.post(
            &net("rg", "connections/c/sharedkey/reset"),
            json!({"keyLength": 0}),
        ),
        400,
        "InvalidSharedKeyLength",
    );
    refused_unchanged(
        &s,
        "key body",
        s.put(&net("rg", "connections/c/sharedkey"), json!({"val": "x"})),
        400,
        "InvalidRequestFormat",
    );
}

#[test]
fn route_rules() {
    let s = setup();
    let rt = |routes: Value| {
        s.put(
            &net("rg", "routeTables/rt"),
            json!({"location": "westeurope", "properties": {"routes": routes}}),
        )
    };
    refused_unchanged(
        &s,
        "appliance without ip",
        rt(
            json!([{"name": "r", "properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance"}}]),
        ),
        400,
        "NextHopIpAddressRequired",
    );
    refused_unchanged(
        &s,
        "ip with internet",
        rt(
            json!([{"name": "r", "properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "Internet", "nextHopIpAddress": "10.0.0.4"}}]),
        ),
        400,
        "NextHopIpAddressNotAllowed",
    );
    refused_unchanged(
        &s,
        "peering hop",
        rt(
            json!([{"name": "r", "properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "VNetPeering"}}]),
        ),
        400,
        "InvalidNextHopType",
    );
    let many: Vec<Value> = (0..401).map(|i| json!({"name": format!("r{i}"), "properties": {"addressPrefix": format!("10.{}.{}.0/24", i / 256, i % 256), "nextHopType": "None"}})).collect();
    refused_unchanged(
        &s,
        "too many",
        rt(Value::Array(many)),
        400,
        "RouteTableRouteLimitExceeded",
    );
}
