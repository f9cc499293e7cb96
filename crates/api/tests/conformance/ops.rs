//! The operations of the Microsoft.Network REST API that the example files exercise, as the
//! 2025-07-01 specification declares them (operation id, method, path, query and body
//! parameters), and which example files belong to which operation (the spec's `x-ms-examples`).

/// What an operation does to its target, which decides what the harness creates first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// PUT of the resource at the path: the target must not exist beforehand.
    Create,
    /// GET of one resource: the target exists as the example's response describes it.
    Get,
    /// DELETE: the target exists.
    Delete,
    /// PATCH `{"tags": …}`: the target exists (without the new tags).
    UpdateTags,
    /// GET of a collection: the response's items exist (and the path's parent).
    List,
    /// Any other call on an existing resource (POST actions, shared key, usages, …).
    Action,
}

pub struct Op {
    pub id: &'static str,
    /// Resource type the summary groups the operation under.
    pub resource: &'static str,
    pub method: &'static str,
    /// Path template; `{name}` is a path parameter of the example.
    pub path: &'static str,
    /// Query parameters besides `api-version`, when the example has them.
    pub query: &'static [&'static str],
    /// Name of the body parameter, when the operation has a body.
    pub body: Option<&'static str>,
    pub kind: Kind,
    pub examples: &'static [&'static str],
}

const RG: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Network";

macro_rules! op {
    ($id:literal, $res:literal, $m:literal, $path:literal, $q:expr, $body:expr, $kind:ident, [$($ex:literal),* $(,)?]) => {
        Op { id: $id, resource: $res, method: $m, path: $path, query: $q, body: $body, kind: Kind::$kind, examples: &[$($ex),*] }
    };
}

/// `RG` is spliced in by [`path`]; the table keeps the parts after it (or a full path).
pub const OPS: &[Op] = &[
    // Virtual networks
    op!("VirtualNetworks_CreateOrUpdate", "virtualNetworks", "PUT", "~/virtualNetworks/{virtualNetworkName}", &[], Some("parameters"), Create,
        ["VirtualNetworkCreate", "VirtualNetworkCreateSubnet", "VirtualNetworkCreateSubnetWithAddressPrefixes"]),
    op!("VirtualNetworks_Get", "virtualNetworks", "GET", "~/virtualNetworks/{virtualNetworkName}", &[], None, Get, ["VirtualNetworkGet"]),
    op!("VirtualNetworks_Delete", "virtualNetworks", "DELETE", "~/virtualNetworks/{virtualNetworkName}", &[], None, Delete, ["VirtualNetworkDelete"]),
    op!("VirtualNetworks_UpdateTags", "virtualNetworks", "PATCH", "~/virtualNetworks/{virtualNetworkName}", &[], Some("parameters"), UpdateTags, ["VirtualNetworkUpdateTags"]),
    op!("VirtualNetworks_List", "virtualNetworks", "GET", "~/virtualNetworks", &[], None, List, ["VirtualNetworkList"]),
    op!("VirtualNetworks_ListAll", "virtualNetworks", "GET", "/subscriptions/{subscriptionId}/providers/Microsoft.Network/virtualNetworks", &[], None, List, ["VirtualNetworkListAll"]),
    op!("VirtualNetworks_CheckIPAddressAvailability", "virtualNetworks", "GET", "~/virtualNetworks/{virtualNetworkName}/CheckIPAddressAvailability", &["ipAddress"], None, Action,
        ["VirtualNetworkCheckIPAddressAvailability"]),
    op!("VirtualNetworks_ListUsage", "virtualNetworks", "GET", "~/virtualNetworks/{virtualNetworkName}/usages", &[], None, Action, ["VirtualNetworkListUsage"]),
    // Subnets
    op!("Subnets_CreateOrUpdate", "subnets", "PUT", "~/virtualNetworks/{virtualNetworkName}/subnets/{subnetName}", &[], Some("subnetParameters"), Create, ["SubnetCreate"]),
    op!("Subnets_Get", "subnets", "GET", "~/virtualNetworks/{virtualNetworkName}/subnets/{subnetName}", &[], None, Get, ["SubnetGet"]),
    op!("Subnets_Delete", "subnets", "DELETE", "~/virtualNetworks/{virtualNetworkName}/subnets/{subnetName}", &[], None, Delete, ["SubnetDelete"]),
    op!("Subnets_List", "subnets", "GET", "~/virtualNetworks/{virtualNetworkName}/subnets", &[], None, List, ["SubnetList"]),
    // Peerings
    op!("VirtualNetworkPeerings_CreateOrUpdate", "virtualNetworkPeerings", "PUT", "~/virtualNetworks/{virtualNetworkName}/virtualNetworkPeerings/{virtualNetworkPeeringName}",
        &["syncRemoteAddressSpace"], Some("VirtualNetworkPeeringParameters"), Create, ["VirtualNetworkPeeringCreate", "VirtualNetworkPeeringSync"]),
    op!("VirtualNetworkPeerings_Get", "virtualNetworkPeerings", "GET", "~/virtualNetworks/{virtualNetworkName}/virtualNetworkPeerings/{virtualNetworkPeeringName}", &[], None, Get,
        ["VirtualNetworkPeeringGet"]),
    op!("VirtualNetworkPeerings_Delete", "virtualNetworkPeerings", "DELETE", "~/virtualNetworks/{virtualNetworkName}/virtualNetworkPeerings/{virtualNetworkPeeringName}", &[], None, Delete,
        ["VirtualNetworkPeeringDelete"]),
    op!("VirtualNetworkPeerings_List", "virtualNetworkPeerings", "GET", "~/virtualNetworks/{virtualNetworkName}/virtualNetworkPeerings", &[], None, List, ["VirtualNetworkPeeringList"]),
    // Network interfaces
    op!("NetworkInterfaces_CreateOrUpdate", "networkInterfaces", "PUT", "~/networkInterfaces/{networkInterfaceName}", &[], Some("parameters"), Create, ["NetworkInterfaceCreate"]),
    op!("NetworkInterfaces_Get", "networkInterfaces", "GET", "~/networkInterfaces/{networkInterfaceName}", &[], None, Get, ["NetworkInterfaceGet"]),
    op!("NetworkInterfaces_Delete", "networkInterfaces", "DELETE", "~/networkInterfaces/{networkInterfaceName}", &[], None, Delete, ["NetworkInterfaceDelete"]),
    op!("NetworkInterfaces_List", "networkInterfaces", "GET", "~/networkInterfaces", &[], None, List, ["NetworkInterfaceList"]),
    op!("NetworkInterfaces_GetEffectiveRouteTable", "networkInterfaces", "POST", "~/networkInterfaces/{networkInterfaceName}/effectiveRouteTable", &[], None, Action,
        ["NetworkInterfaceEffectiveRouteTableList"]),
    // Route tables and routes
    op!("RouteTables_CreateOrUpdate", "routeTables", "PUT", "~/routeTables/{routeTableName}", &[], Some("parameters"), Create, ["RouteTableCreate", "RouteTableCreateWithRoute"]),
    op!("RouteTables_Get", "routeTables", "GET", "~/routeTables/{routeTableName}", &[], None, Get, ["RouteTableGet"]),
    op!("RouteTables_Delete", "routeTables", "DELETE", "~/routeTables/{routeTableName}", &[], None, Delete, ["RouteTableDelete"]),
    op!("RouteTables_List", "routeTables", "GET", "~/routeTables", &[], None, List, ["RouteTableList"]),
    op!("RouteTables_UpdateTags", "routeTables", "PATCH", "~/routeTables/{routeTableName}", &[], Some("parameters"), UpdateTags, ["RouteTableUpdateTags"]),
    op!("Routes_CreateOrUpdate", "routes", "PUT", "~/routeTables/{routeTableName}/routes/{routeName}", &[], Some("routeParameters"), Create, ["RouteTableRouteCreate"]),
    op!("Routes_Get", "routes", "GET", "~/routeTables/{routeTableName}/routes/{routeName}", &[], None, Get, ["RouteTableRouteGet"]),
    op!("Routes_Delete", "routes", "DELETE", "~/routeTables/{routeTableName}/routes/{routeName}", &[], None, Delete, ["RouteTableRouteDelete"]),
    op!("Routes_List", "routes", "GET", "~/routeTables/{routeTableName}/routes", &[], None, List, ["RouteTableRouteList"]),
    // Public IP addresses
    op!("PublicIPAddresses_CreateOrUpdate", "publicIPAddresses", "PUT", "~/publicIPAddresses/{publicIpAddressName}", &[], Some("parameters"), Create, ["PublicIpAddressCreateDefaults"]),
    op!("PublicIPAddresses_Get", "publicIPAddresses", "GET", "~/publicIPAddresses/{publicIpAddressName}", &[], None, Get, ["PublicIpAddressGet"]),
    op!("PublicIPAddresses_Delete", "publicIPAddresses", "DELETE", "~/publicIPAddresses/{publicIpAddressName}", &[], None, Delete, ["PublicIpAddressDelete"]),
    op!("PublicIPAddresses_List", "publicIPAddresses", "GET", "~/publicIPAddresses", &[], None, List, ["PublicIpAddressList"]),
    // Virtual network gateways
    op!("VirtualNetworkGateways_CreateOrUpdate", "virtualNetworkGateways", "PUT", "~/virtualNetworkGateways/{virtualNetworkGatewayName}", &[], Some("parameters"), Create,
        ["VirtualNetworkGatewayUpdate"]),
    op!("VirtualNetworkGateways_Get", "virtualNetworkGateways", "GET", "~/virtualNetworkGateways/{virtualNetworkGatewayName}", &[], None, Get, ["VirtualNetworkGatewayGet"]),
    op!("VirtualNetworkGateways_Delete", "virtualNetworkGateways", "DELETE", "~/virtualNetworkGateways/{virtualNetworkGatewayName}", &[], None, Delete, ["VirtualNetworkGatewayDelete"]),
    op!("VirtualNetworkGateways_UpdateTags", "virtualNetworkGateways", "PATCH", "~/virtualNetworkGateways/{virtualNetworkGatewayName}", &[], Some("parameters"), UpdateTags,
        ["VirtualNetworkGatewayUpdateTags"]),
    op!("VirtualNetworkGateways_List", "virtualNetworkGateways", "GET", "~/virtualNetworkGateways", &[], None, List, ["VirtualNetworkGatewayList"]),
    op!("VirtualNetworkGateways_ListConnections", "virtualNetworkGateways", "GET", "~/virtualNetworkGateways/{virtualNetworkGatewayName}/connections", &[], None, List,
        ["VirtualNetworkGatewaysListConnections"]),
    op!("VirtualNetworkGateways_Reset", "virtualNetworkGateways", "POST", "~/virtualNetworkGateways/{virtualNetworkGatewayName}/reset", &["gatewayVip"], None, Action,
        ["VirtualNetworkGatewayReset"]),
    op!("VirtualNetworkGateways_Generatevpnclientpackage", "virtualNetworkGateways", "POST", "~/virtualNetworkGateways/{virtualNetworkGatewayName}/generatevpnclientpackage", &[],
        Some("parameters"), Action, ["VirtualNetworkGatewayGenerateVpnClientPackage"]),
    op!("VirtualNetworkGateways_GetBgpPeerStatus", "virtualNetworkGateways", "POST", "~/virtualNetworkGateways/{virtualNetworkGatewayName}/getBgpPeerStatus", &["peer"], None, Action,
        ["VirtualNetworkGatewayGetBGPPeerStatus"]),
    op!("VirtualNetworkGateways_GetLearnedRoutes", "virtualNetworkGateways", "POST", "~/virtualNetworkGateways/{virtualNetworkGatewayName}/getLearnedRoutes", &[], None, Action,
        ["VirtualNetworkGatewayLearnedRoutes"]),
    op!("VirtualNetworkGateways_GetAdvertisedRoutes", "virtualNetworkGateways", "POST", "~/virtualNetworkGateways/{virtualNetworkGatewayName}/getAdvertisedRoutes", &["peer"], None,
        Action, ["VirtualNetworkGatewayGetAdvertisedRoutes"]),
    op!("VirtualNetworkGateways_GetVpnclientConnectionHealth", "virtualNetworkGateways", "POST", "~/virtualNetworkGateways/{virtualNetworkGatewayName}/getVpnClientConnectionHealth",
        &[], None, Action, ["VirtualNetworkGatewayGetVpnclientConnectionHealth"]),
    op!("VirtualNetworkGateways_DisconnectVirtualNetworkGatewayVpnConnections", "virtualNetworkGateways", "POST",
        "~/virtualNetworkGateways/{virtualNetworkGatewayName}/disconnectVirtualNetworkGatewayVpnConnections", &[], Some("request"), Action,
        ["VirtualNetworkGatewaysDisconnectP2sVpnConnections"]),
    // The spec files this operation under the gateway; its path is a connection's.
    op!("VirtualNetworkGateways_VpnDeviceConfigurationScript", "virtualNetworkGateways", "POST", "~/connections/{virtualNetworkGatewayConnectionName}/vpndeviceconfigurationscript",
        &[], Some("parameters"), Action, ["VirtualNetworkGatewayVpnDeviceConfigurationScript"]),
    // Local network gateways
    op!("LocalNetworkGateways_CreateOrUpdate", "localNetworkGateways", "PUT", "~/localNetworkGateways/{localNetworkGatewayName}", &[], Some("parameters"), Create,
        ["LocalNetworkGatewayCreate"]),
    op!("LocalNetworkGateways_Get", "localNetworkGateways", "GET", "~/localNetworkGateways/{localNetworkGatewayName}", &[], None, Get, ["LocalNetworkGatewayGet"]),
    op!("LocalNetworkGateways_Delete", "localNetworkGateways", "DELETE", "~/localNetworkGateways/{localNetworkGatewayName}", &[], None, Delete, ["LocalNetworkGatewayDelete"]),
    op!("LocalNetworkGateways_UpdateTags", "localNetworkGateways", "PATCH", "~/localNetworkGateways/{localNetworkGatewayName}", &[], Some("parameters"), UpdateTags,
        ["LocalNetworkGatewayUpdateTags"]),
    op!("LocalNetworkGateways_List", "localNetworkGateways", "GET", "~/localNetworkGateways", &[], None, List, ["LocalNetworkGatewayList"]),
    // Connections
    op!("VirtualNetworkGatewayConnections_CreateOrUpdate", "connections", "PUT", "~/connections/{virtualNetworkGatewayConnectionName}", &[], Some("parameters"), Create,
        ["VirtualNetworkGatewayConnectionCreate"]),
    op!("VirtualNetworkGatewayConnections_Get", "connections", "GET", "~/connections/{virtualNetworkGatewayConnectionName}", &[], None, Get, ["VirtualNetworkGatewayConnectionGet"]),
    op!("VirtualNetworkGatewayConnections_Delete", "connections", "DELETE", "~/connections/{virtualNetworkGatewayConnectionName}", &[], None, Delete,
        ["VirtualNetworkGatewayConnectionDelete"]),
    op!("VirtualNetworkGatewayConnections_UpdateTags", "connections", "PATCH", "~/connections/{virtualNetworkGatewayConnectionName}", &[], Some("parameters"), UpdateTags,
        ["VirtualNetworkGatewayConnectionUpdateTags"]),
    op!("VirtualNetworkGatewayConnections_List", "connections", "GET", "~/connections", &[], None, List, ["VirtualNetworkGatewayConnectionsList"]),
    op!("VirtualNetworkGatewayConnections_SetSharedKey", "connections", "PUT", "~/connections/{virtualNetworkGatewayConnectionName}/sharedkey", &[], Some("parameters"), Action,
        ["VirtualNetworkGatewayConnectionSetSharedKey"]),
    op!("VirtualNetworkGatewayConnections_GetSharedKey", "connections", "GET", "~/connections/{virtualNetworkGatewayConnectionName}/sharedkey", &[], None, Action,
        ["VirtualNetworkGatewayConnectionGetSharedKey"]),
    op!("VirtualNetworkGatewayConnections_ResetSharedKey", "connections", "POST", "~/connections/{virtualNetworkGatewayConnectionName}/sharedkey/reset", &[], Some("parameters"),
        Action, ["VirtualNetworkGatewayConnectionResetSharedKey"]),
    op!("VirtualNetworkGatewayConnections_GetIkeSas", "connections", "POST", "~/connections/{virtualNetworkGatewayConnectionName}/getikesas", &[], None, Action,
        ["VirtualNetworkGatewayConnectionGetIkeSas"]),
    op!("VirtualNetworkGatewayConnections_ResetConnection", "connections", "POST", "~/connections/{virtualNetworkGatewayConnectionName}/resetconnection", &[], None, Action,
        ["VirtualNetworkGatewayConnectionReset"]),
    // Network Watcher
    op!("NetworkWatchers_GetNextHop", "networkWatchers", "POST", "~/networkWatchers/{networkWatcherName}/nextHop", &[], Some("parameters"), Action, ["NetworkWatcherNextHopGet"]),
    op!("NetworkWatchers_VerifyIPFlow", "networkWatchers", "POST", "~/networkWatchers/{networkWatcherName}/ipFlowVerify", &[], Some("parameters"), Action,
        ["NetworkWatcherIpFlowVerify"]),
];

/// The operation an example file (by file stem) belongs to.
pub fn of_example(stem: &str) -> Option<&'static Op> {
    OPS.iter().find(|o| o.examples.contains(&stem))
}

impl Op {
    /// The path template with the resource-group prefix spliced in.
    pub fn template(&self) -> String {
        match self.path.strip_prefix('~') {
            Some(rest) => format!("{RG}{rest}"),
            None => self.path.to_string(),
        }
    }

    /// The request path for the example's parameters, or the name of a missing parameter.
    pub fn path(&self, params: &serde_json::Value) -> Result<String, String> {
        fill(&self.template(), params)
    }

    /// The path up to its last name parameter: the resource an operation acts on (an
    /// action's suffix dropped), or the parent of a listed collection.
    pub fn target(&self, params: &serde_json::Value) -> Option<String> {
        let t = self.template();
        fill(&t[..=t.rfind('}')?], params).ok()
    }
}

/// Substitutes `{name}` with the example's parameter `name`.
fn fill(template: &str, params: &serde_json::Value) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let j = rest[i..].find('}').ok_or("unclosed { in a path template")? + i;
        let name = &rest[i + 1..j];
        let v = params
            .get(name)
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("path parameter {name} is missing"))?;
        out.push_str(v);
        rest = &rest[j + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
