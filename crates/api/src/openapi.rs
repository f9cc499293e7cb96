//! The OpenAPI 3 document of what vnet serves, generated from the same kind and action tables
//! the dispatcher uses, so the two cannot drift apart.

use model::Kind;
use serde_json::{json, Map, Value};

const SUB: &str = "/subscriptions/{subscriptionId}";
const RG: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}";

/// Top-level Microsoft.Network kinds and the name of their path parameter.
pub const TOP: [(Kind, &str); 8] = [
    (Kind::VirtualNetwork, "virtualNetworkName"),
    (Kind::NetworkInterface, "networkInterfaceName"),
    (Kind::RouteTable, "routeTableName"),
    (Kind::PublicIp, "publicIpAddressName"),
    (Kind::VirtualNetworkGateway, "virtualNetworkGatewayName"),
    (Kind::LocalNetworkGateway, "localNetworkGatewayName"),
    (Kind::Connection, "virtualNetworkGatewayConnectionName"),
    (Kind::NetworkWatcher, "networkWatcherName"),
];

/// Child kinds: (parent, child, child path parameter).
pub const CHILDREN: [(Kind, Kind, &str); 3] = [
    (Kind::VirtualNetwork, Kind::Subnet, "subnetName"),
    (
        Kind::VirtualNetwork,
        Kind::Peering,
        "virtualNetworkPeeringName",
    ),
    (Kind::RouteTable, Kind::Route, "routeName"),
];

/// Actions: (parent kind, method, path suffix, operation id).
pub const ACTIONS: [(Kind, &str, &str, &str); 15] = [
    (
        Kind::NetworkInterface,
        "post",
        "effectiveRouteTable",
        "NetworkInterfaces_GetEffectiveRouteTable",
    ),
    (
        Kind::NetworkWatcher,
        "post",
        "nextHop",
        "NetworkWatchers_GetNextHop",
    ),
    (
        Kind::VirtualNetwork,
        "get",
        "CheckIPAddressAvailability",
        "VirtualNetworks_CheckIPAddressAvailability",
    ),
    (
        Kind::VirtualNetwork,
        "get",
        "usages",
        "VirtualNetworks_ListUsage",
    ),
    (
        Kind::Connection,
        "get",
        "sharedkey",
        "VirtualNetworkGatewayConnections_GetSharedKey",
    ),
    (
        Kind::Connection,
        "put",
        "sharedkey",
        "VirtualNetworkGatewayConnections_SetSharedKey",
    ),
    (
        Kind::Connection,
        "post",
        "sharedkey/reset",
        "VirtualNetworkGatewayConnections_ResetSharedKey",
    ),
    (
        Kind::Connection,
        "post",
        "resetconnection",
        "VirtualNetworkGatewayConnections_ResetConnection",
    ),
    (
        Kind::Connection,
        "post",
        "getikesas",
        "VirtualNetworkGatewayConnections_GetIkeSas",
    ),
    (
        Kind::VirtualNetworkGateway,
        "get",
        "connections",
        "VirtualNetworkGateways_ListConnections",
    ),
    (
        Kind::VirtualNetworkGateway,
        "post",
        "reset",
        "VirtualNetworkGateways_Reset",
    ),
    (
        Kind::VirtualNetworkGateway,
        "post",
        "getLearnedRoutes",
        "VirtualNetworkGateways_GetLearnedRoutes",
    ),
    (
        Kind::VirtualNetworkGateway,
        "post",
        "getAdvertisedRoutes",
        "VirtualNetworkGateways_GetAdvertisedRoutes",
    ),
    (
        Kind::VirtualNetworkGateway,
        "post",
        "getBgpPeerStatus",
        "VirtualNetworkGateways_GetBgpPeerStatus",
    ),
    (
        Kind::VirtualNetworkGateway,
        "post",
        "getVpnclientConnectionHealth",
        "VirtualNetworkGateways_GetVpnclientConnectionHealth",
    ),
];

fn param(name: &str, inn: &str) -> Value {
    json!({"name": name, "in": inn, "required": true, "schema": {"type": "string"}})
}

fn op(id: &str, params: &[&str], body: bool, responses: &[&str]) -> Value {
    let mut p: Vec<Value> = params.iter().map(|n| param(n, "path")).collect();
    p.push(param("api-version", "query"));
    let mut r = Map::new();
    for code in responses {
        r.insert(code.to_string(), json!({"description": "ARM response", "content": {"application/json": {"schema": {"type": "object"}}}}));
    }
    r.insert("default".into(), json!({"description": "ARM error envelope", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CloudError"}}}}));
    let mut o = json!({"operationId": id, "parameters": p, "responses": r});
    if body {
        o["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"type": "object"}}}});
    }
    o
}

fn short(k: Kind) -> String {
    let s = k.segment();
    let mut c = s.chars();
    let first = c
        .next()
        .map(|f| f.to_ascii_uppercase())
        .into_iter()
        .collect::<String>();
    first + c.as_str()
}

/// Every path template with its operations.
pub fn document() -> Value {
    let mut paths = Map::new();
    let mut add = |path: String, method: &str, v: Value| {
        let e = paths.entry(path).or_insert(json!({}));
        e[method] = v;
    };
    add(
        "/subscriptions".into(),
        "get",
        op("Subscriptions_List", &[], false, &["200"]),
    );
    add(
        SUB.into(),
        "get",
        op("Subscriptions_Get", &["subscriptionId"], false, &["200"]),
    );
    add(
        format!("{SUB}/resourcegroups"),
        "get",
        op("ResourceGroups_List", &["subscriptionId"], false, &["200"]),
    );
    let rgp = ["subscriptionId", "resourceGroupName"];
    add(
        RG.into(),
        "get",
        op("ResourceGroups_Get", &rgp, false, &["200"]),
    );
    add(
        RG.into(),
        "head",
        op("ResourceGroups_CheckExistence", &rgp, false, &["204"]),
    );
    add(
        RG.into(),
        "put",
        op("ResourceGroups_CreateOrUpdate", &rgp, true, &["200", "201"]),
    );
    add(
        RG.into(),
        "patch",
        op("ResourceGroups_Update", &rgp, true, &["200"]),
    );
    add(
        RG.into(),
        "delete",
        op("ResourceGroups_Delete", &rgp, false, &["200", "202"]),
    );
    let opsp = ["subscriptionId", "location", "operationId"];
    add(
        format!(
            "{SUB}/providers/Microsoft.Network/locations/{{location}}/operations/{{operationId}}"
        ),
        "get",
        op("Operations_GetStatus", &opsp, false, &["200"]),
    );
    add(format!("{SUB}/providers/Microsoft.Network/locations/{{location}}/operationResults/{{operationId}}"), "get", op("Operations_GetResult", &opsp, false, &["200", "202", "204"]));
    for (k, pname) in TOP {
        let n = short(k);
        add(
            format!("{SUB}/providers/Microsoft.Network/{}", k.segment()),
            "get",
            op(
                &format!("{n}_ListAll"),
                &["subscriptionId"],
                false,
                &["200"],
            ),
        );
        add(
            format!("{RG}/providers/Microsoft.Network/{}", k.segment()),
            "get",
            op(&format!("{n}_List"), &rgp, false, &["200"]),
        );
        let path = format!(
            "{RG}/providers/Microsoft.Network/{}/{{{pname}}}",
            k.segment()
        );
        let pp = ["subscriptionId", "resourceGroupName", pname];
        add(
            path.clone(),
            "get",
            op(&format!("{n}_Get"), &pp, false, &["200"]),
        );
        add(
            path.clone(),
            "put",
            op(&format!("{n}_CreateOrUpdate"), &pp, true, &["200", "201"]),
        );
        add(
            path.clone(),
            "delete",
            op(&format!("{n}_Delete"), &pp, false, &["200", "202", "204"]),
        );
        add(
            path.clone(),
            "patch",
            op(&format!("{n}_UpdateTags"), &pp, true, &["200"]),
        );
        for (pk, ck, cname) in CHILDREN.iter().filter(|(pk, _, _)| *pk == k) {
            let _ = pk;
            let cn = short(*ck);
            add(
                format!("{path}/{}", ck.segment()),
                "get",
                op(&format!("{cn}_List"), &pp, false, &["200"]),
            );
            let cpath = format!("{path}/{}/{{{cname}}}", ck.segment());
            let cp = ["subscriptionId", "resourceGroupName", pname, cname];
            add(
                cpath.clone(),
                "get",
                op(&format!("{cn}_Get"), &cp, false, &["200"]),
            );
            add(
                cpath.clone(),
                "put",
                op(&format!("{cn}_CreateOrUpdate"), &cp, true, &["200", "201"]),
            );
            add(
                cpath.clone(),
                "delete",
                op(&format!("{cn}_Delete"), &cp, false, &["200", "202", "204"]),
            );
        }
        for (_, m, suffix, id) in ACTIONS.iter().filter(|(ak, ..)| *ak == k) {
            add(
                format!("{path}/{suffix}"),
                m,
                op(id, &pp, *m != "get", &["200", "202"]),
            );
        }
    }
    crate::identity_routes::openapi_paths(&mut paths);
    json!({
        "openapi": "3.0.3",
        "info": {"title": "vnet ARM-compatible API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Azure Resource Manager Microsoft.Network operations served by vnet (api-version 2025-07-01 modelled; 2026-03-01 and other dated versions accepted)."},
        "paths": paths,
        "components": {"schemas": {"CloudError": {"type": "object", "properties": {"error": {"type": "object", "properties": {
            "code": {"type": "string"}, "message": {"type": "string"}, "target": {"type": "string"}, "details": {"type": "array", "items": {"type": "object"}}}}}}}},
    })
}
