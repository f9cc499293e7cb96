//! The fields of every resource vnet serves, in Azure's spelling (api-version 2025-07-01 and
//! the 2026-03-01 additions). Fields typed `Any` are stored and echoed but not interpreted.

use crate::id::Kind;
use crate::schema::{ro, rw, wo, Link, Ty, STRS};

/// Reference fields and the action linking to each needs on the referenced resource
/// (Azure's linked authorization; see [`crate::links`]).
mod link {
    use super::{Link, Ty};
    const fn r(action: &'static str) -> Link {
        Link { action }
    }
    pub const SUBNET: Ty = Ty::Ref(&r("Microsoft.Network/virtualNetworks/subnets/join/action"));
    pub const PEER: Ty = Ty::Ref(&r("Microsoft.Network/virtualNetworks/peer/action"));
    pub const PUBLIC_IP: Ty = Ty::Ref(&r("Microsoft.Network/publicIPAddresses/join/action"));
    pub const PUBLIC_IP_PREFIX: Ty = Ty::Ref(&r("Microsoft.Network/publicIPPrefixes/join/action"));
    pub const ROUTE_TABLE: Ty = Ty::Ref(&r("Microsoft.Network/routeTables/join/action"));
    pub const NSG: Ty = Ty::Ref(&r("Microsoft.Network/networkSecurityGroups/join/action"));
    pub const NAT_GATEWAY: Ty = Ty::Ref(&r("Microsoft.Network/natGateways/join/action"));
    pub const DDOS_PLAN: Ty = Ty::Ref(&r("Microsoft.Network/ddosProtectionPlans/join/action"));
    pub const SERVICE_ENDPOINT_POLICIES: Ty = Ty::Arr(&Ty::Ref(&r(
        "Microsoft.Network/serviceEndpointPolicies/join/action",
    )));
    pub const ASGS: Ty = Ty::Arr(&Ty::Ref(&r(
        "Microsoft.Network/applicationSecurityGroups/joinIpConfiguration/action",
    )));
    pub const LB_POOLS: Ty = Ty::Arr(&Ty::Ref(&r(
        "Microsoft.Network/loadBalancers/backendAddressPools/join/action",
    )));
    pub const LB_NAT_RULES: Ty = Ty::Arr(&Ty::Ref(&r(
        "Microsoft.Network/loadBalancers/inboundNatRules/join/action",
    )));
    pub const APPGW_POOLS: Ty = Ty::Arr(&Ty::Ref(&r(
        "Microsoft.Network/applicationGateways/backendAddressPools/join/action",
    )));
    pub const GATEWAY_LB: Ty = Ty::Ref(&r(
        "Microsoft.Network/loadBalancers/frontendIPConfigurations/join/action",
    ));
    pub const GATEWAY: Ty = Ty::Ref(&r("Microsoft.Network/virtualNetworkGateways/join/action"));
    pub const LOCAL_GATEWAY: Ty = Ty::Ref(&r("Microsoft.Network/localNetworkGateways/join/action"));
    pub const CIRCUIT: Ty = Ty::Ref(&r("Microsoft.Network/expressRouteCircuits/join/action"));
}

const PREFIXES: Ty = Ty::Obj(&[
    rw("addressPrefixes", STRS),
    rw("ipamPoolPrefixAllocations", Ty::Any),
]);

/// Envelope fields of a child resource (subnet, peering, route, …) around `props`.
macro_rules! child {
    ($props:expr) => {
        Ty::Obj(&[
            rw("id", Ty::Str),
            rw("name", Ty::Str),
            ro("etag", Ty::Str),
            ro("type", Ty::Str),
            rw("properties", $props),
        ])
    };
}

/// Envelope fields of a tracked (top-level) resource around `props`, plus `extra`.
macro_rules! tracked {
    ($props:expr $(, $extra:expr)*) => {
        Ty::Obj(&[
            ro("id", Ty::Str),
            ro("name", Ty::Str),
            ro("type", Ty::Str),
            ro("etag", Ty::Str),
            rw("location", Ty::Str),
            rw("tags", Ty::StrMap),
            rw("properties", $props),
            $($extra,)*
        ])
    };
}

pub const SUBNET_PROPS: Ty = Ty::Obj(&[
    rw("addressPrefix", Ty::Str),
    rw("addressPrefixes", STRS),
    rw("networkSecurityGroup", link::NSG),
    rw("routeTable", link::ROUTE_TABLE),
    rw("natGateway", link::NAT_GATEWAY),
    rw("serviceEndpoints", Ty::Any),
    rw("serviceEndpointPolicies", link::SERVICE_ENDPOINT_POLICIES),
    rw("delegations", Ty::Any),
    rw("privateEndpointNetworkPolicies", Ty::Str),
    rw("privateLinkServiceNetworkPolicies", Ty::Str),
    rw("sharingScope", Ty::Str),
    rw("defaultOutboundAccess", Ty::Bool),
    rw("ipamPoolPrefixAllocations", Ty::Any),
    rw("serviceGateway", Ty::Any),
    rw("applicationGatewayIPConfigurations", Ty::Any),
    rw("ipAllocations", Ty::Any),
    ro("ipConfigurations", Ty::Any),
    ro("ipConfigurationProfiles", Ty::Any),
    ro("privateEndpoints", Ty::Any),
    ro("resourceNavigationLinks", Ty::Any),
    ro("serviceAssociationLinks", Ty::Any),
    ro("purpose", Ty::Any),
    ro("provisioningState", Ty::Any),
]);
pub const SUBNET: Ty = child!(SUBNET_PROPS);

pub const PEERING_PROPS: Ty = Ty::Obj(&[
    rw("allowVirtualNetworkAccess", Ty::Bool),
    rw("allowForwardedTraffic", Ty::Bool),
    rw("allowGatewayTransit", Ty::Bool),
    rw("useRemoteGateways", Ty::Bool),
    rw("remoteVirtualNetwork", link::PEER),
    rw("doNotVerifyRemoteGateways", Ty::Bool),
    rw("peerCompleteVnets", Ty::Bool),
    rw("enableOnlyIPv6Peering", Ty::Bool),
    rw("localSubnetNames", STRS),
    rw("remoteSubnetNames", STRS),
    ro("remoteAddressSpace", Ty::Any),
    ro("remoteVirtualNetworkAddressSpace", Ty::Any),
    ro("localAddressSpace", Ty::Any),
    ro("localVirtualNetworkAddressSpace", Ty::Any),
    ro("remoteBgpCommunities", Ty::Any),
    ro("remoteVirtualNetworkEncryption", Ty::Any),
    ro("peeringState", Ty::Any),
    ro("peeringSyncLevel", Ty::Any),
    ro("provisioningState", Ty::Any),
    ro("resourceGuid", Ty::Any),
]);
pub const PEERING: Ty = child!(PEERING_PROPS);

pub const VNET: Ty = tracked!(
    Ty::Obj(&[
        rw("addressSpace", PREFIXES),
        rw("subnets", Ty::Arr(&SUBNET)),
        rw("virtualNetworkPeerings", Ty::Arr(&PEERING)),
        rw("dhcpOptions", Ty::Obj(&[rw("dnsServers", STRS)])),
        rw("enableDdosProtection", Ty::Bool),
        rw("enableVmProtection", Ty::Bool),
        rw("ddosProtectionPlan", link::DDOS_PLAN),
        rw(
            "bgpCommunities",
            Ty::Obj(&[
                rw("virtualNetworkCommunity", Ty::Str),
                ro("regionalCommunity", Ty::Any)
            ])
        ),
        rw("encryption", Ty::Any),
        rw("flowTimeoutInMinutes", Ty::Int),
        rw("ipAllocations", Ty::Any),
        rw("privateEndpointVNetPolicies", Ty::Str),
        ro("summarizedGatewayPrefixes", Ty::Any),
        ro("defaultPublicNatGateway", Ty::Any),
        ro("provisioningState", Ty::Any),
        ro("resourceGuid", Ty::Any),
    ]),
    rw("extendedLocation", Ty::Any)
);

pub const IPCONFIG_PROPS: Ty = Ty::Obj(&[
    rw("privateIPAddress", Ty::Str),
    rw("privateIPAllocationMethod", Ty::Str),
    rw("privateIPAddressVersion", Ty::Str),
    rw("privateIPAddressPrefixLength", Ty::Int),
    rw("subnet", link::SUBNET),
    rw("publicIPAddress", link::PUBLIC_IP),
    rw("primary", Ty::Bool),
    rw("applicationSecurityGroups", link::ASGS),
    rw("loadBalancerBackendAddressPools", link::LB_POOLS),
    rw("loadBalancerInboundNatRules", link::LB_NAT_RULES),
    rw("applicationGatewayBackendAddressPools", link::APPGW_POOLS),
    rw("gatewayLoadBalancer", link::GATEWAY_LB),
    rw("virtualNetworkTaps", Ty::Any),
    ro("privateLinkConnectionProperties", Ty::Any),
    ro("provisioningState", Ty::Any),
]);

pub const NIC: Ty = tracked!(
    Ty::Obj(&[
        rw("ipConfigurations", Ty::Arr(&child!(IPCONFIG_PROPS))),
        rw(
            "dnsSettings",
            Ty::Obj(&[
                rw("dnsServers", STRS),
                rw("internalDnsNameLabel", Ty::Str),
                ro("appliedDnsServers", Ty::Any),
                ro("internalFqdn", Ty::Any),
                ro("internalDomainNameSuffix", Ty::Any),
            ])
        ),
        rw("enableAcceleratedNetworking", Ty::Bool),
        rw("enableIPForwarding", Ty::Bool),
        rw("disableTcpStateTracking", Ty::Bool),
        rw("networkSecurityGroup", link::NSG),
        rw("nicType", Ty::Str),
        rw("auxiliaryMode", Ty::Str),
        rw("auxiliarySku", Ty::Str),
        rw("migrationPhase", Ty::Str),
        rw("workloadType", Ty::Str),
        rw("privateLinkService", Ty::Any),
        ro("tapConfigurations", Ty::Any),
        ro("virtualMachine", Ty::Any),
        ro("macAddress", Ty::Any),
        ro("primary", Ty::Any),
        ro("vnetEncryptionSupported", Ty::Any),
        ro("hostedWorkloads", Ty::Any),
        ro("dscpConfiguration", Ty::Any),
        ro("privateEndpoint", Ty::Any),
        ro("defaultOutboundConnectivityEnabled", Ty::Any),
        ro("provisioningState", Ty::Any),
        ro("resourceGuid", Ty::Any),
    ]),
    rw("extendedLocation", Ty::Any)
);

pub const ROUTE_PROPS: Ty = Ty::Obj(&[
    rw("addressPrefix", Ty::Str),
    rw("nextHopType", Ty::Str),
    rw("nextHopIpAddress", Ty::Str),
    ro("hasBgpOverride", Ty::Any),
    ro("provisioningState", Ty::Any),
]);
pub const ROUTE: Ty = child!(ROUTE_PROPS);

pub const ROUTE_TABLE: Ty = tracked!(Ty::Obj(&[
    rw("routes", Ty::Arr(&ROUTE)),
    rw("disableBgpRoutePropagation", Ty::Bool),
    ro("subnets", Ty::Any),
    ro("provisioningState", Ty::Any),
    ro("resourceGuid", Ty::Any),
]));

pub const PUBLIC_IP: Ty = tracked!(
    Ty::Obj(&[
        rw("publicIPAllocationMethod", Ty::Str),
        rw("publicIPAddressVersion", Ty::Str),
        rw("idleTimeoutInMinutes", Ty::Int),
        rw("dnsSettings", Ty::Any),
        rw("ipTags", Ty::Any),
        rw("publicIPPrefix", link::PUBLIC_IP_PREFIX),
        rw("ddosSettings", Ty::Any),
        rw("deleteOption", Ty::Str),
        rw("natGateway", link::NAT_GATEWAY),
        rw("linkedPublicIPAddress", Ty::Any),
        rw("servicePublicIPAddress", Ty::Any),
        rw("migrationPhase", Ty::Str),
        ro("ipAddress", Ty::Any),
        ro("ipConfiguration", Ty::Any),
        ro("provisioningState", Ty::Any),
        ro("resourceGuid", Ty::Any),
    ]),
    rw("sku", Ty::Obj(&[rw("name", Ty::Str), rw("tier", Ty::Str)])),
    rw("zones", STRS),
    rw("extendedLocation", Ty::Any)
);

const BGP_SETTINGS: Ty = Ty::Obj(&[
    rw("asn", Ty::Int),
    rw("bgpPeeringAddress", Ty::Str),
    rw("peerWeight", Ty::Int),
    rw(
        "bgpPeeringAddresses",
        Ty::Arr(&Ty::Obj(&[
            rw("ipconfigurationId", Ty::Str),
            rw("customBgpIpAddresses", STRS),
            ro("defaultBgpIpAddresses", Ty::Any),
            ro("tunnelIpAddresses", Ty::Any),
        ])),
    ),
]);

const CERT: Ty = Ty::Obj(&[
    rw("id", Ty::Str),
    rw("name", Ty::Str),
    ro("etag", Ty::Str),
    rw(
        "properties",
        Ty::Obj(&[
            rw("publicCertData", Ty::Str),
            rw("thumbprint", Ty::Str),
            ro("provisioningState", Ty::Any),
        ]),
    ),
]);

pub const VPN_CLIENT: Ty = Ty::Obj(&[
    rw("vpnClientAddressPool", PREFIXES),
    rw("vpnClientProtocols", STRS),
    rw("vpnAuthenticationTypes", STRS),
    rw("vpnClientIpsecPolicies", Ty::Any),
    rw("vpnClientRootCertificates", Ty::Arr(&CERT)),
    rw("vpnClientRevokedCertificates", Ty::Arr(&CERT)),
    rw("radiusServerAddress", Ty::Str),
    wo("radiusServerSecret", Ty::Str),
    rw(
        "radiusServers",
        Ty::Arr(&Ty::Obj(&[
            rw("radiusServerAddress", Ty::Str),
            rw("radiusServerScore", Ty::Int),
            wo("radiusServerSecret", Ty::Str),
        ])),
    ),
    rw("aadTenant", Ty::Str),
    rw("aadAudience", Ty::Str),
    rw("aadIssuer", Ty::Str),
    rw("vngClientConnectionConfigurations", Ty::Any),
]);

pub const GATEWAY: Ty = tracked!(
    Ty::Obj(&[
        rw(
            "ipConfigurations",
            Ty::Arr(&child!(Ty::Obj(&[
                rw("privateIPAllocationMethod", Ty::Str),
                rw("subnet", link::SUBNET),
                rw("publicIPAddress", link::PUBLIC_IP),
                ro("privateIPAddress", Ty::Any),
                ro("provisioningState", Ty::Any),
            ])))
        ),
        rw("gatewayType", Ty::Str),
        rw("vpnType", Ty::Str),
        rw("vpnGatewayGeneration", Ty::Str),
        rw(
            "sku",
            Ty::Obj(&[
                rw("name", Ty::Str),
                rw("tier", Ty::Str),
                ro("capacity", Ty::Any)
            ])
        ),
        rw("enableBgp", Ty::Bool),
        rw("activeActive", Ty::Bool),
        rw("enablePrivateIpAddress", Ty::Bool),
        rw("enableHighBandwidthVpnGateway", Ty::Bool),
        rw("disableIPSecReplayProtection", Ty::Bool),
        rw("enableDnsForwarding", Ty::Bool),
        rw("enableBgpRouteTranslationForNat", Ty::Bool),
        rw("allowVirtualWanTraffic", Ty::Bool),
        rw("allowRemoteVnetTraffic", Ty::Bool),
        rw("bgpSettings", BGP_SETTINGS),
        rw("customRoutes", PREFIXES),
        rw("gatewayDefaultSite", link::LOCAL_GATEWAY),
        rw("vpnClientConfiguration", VPN_CLIENT),
        rw("virtualNetworkGatewayPolicyGroups", Ty::Any),
        rw(
            "natRules",
            Ty::Arr(&child!(Ty::Obj(&[
                rw("type", Ty::Str),
                rw("mode", Ty::Str),
                rw("internalMappings", Ty::Any),
                rw("externalMappings", Ty::Any),
                rw("ipConfigurationId", Ty::Str),
                ro("provisioningState", Ty::Any),
            ])))
        ),
        rw("adminState", Ty::Str),
        rw("resiliencyModel", Ty::Str),
        rw("autoScaleConfiguration", Ty::Any),
        rw("vNetExtendedLocationResourceId", Ty::Str),
        ro("virtualNetworkGatewayMigrationStatus", Ty::Any),
        ro("inboundDnsForwardingEndpoint", Ty::Any),
        ro("provisioningState", Ty::Any),
        ro("resourceGuid", Ty::Any),
    ]),
    rw("identity", Ty::Any),
    rw("extendedLocation", Ty::Any)
);

pub const LOCAL_GATEWAY: Ty = tracked!(Ty::Obj(&[
    rw("localNetworkAddressSpace", PREFIXES),
    rw("gatewayIpAddress", Ty::Str),
    rw("fqdn", Ty::Str),
    rw("bgpSettings", BGP_SETTINGS),
    ro("provisioningState", Ty::Any),
    ro("resourceGuid", Ty::Any),
]));

pub const IPSEC_POLICY: Ty = Ty::Obj(&[
    rw("saLifeTimeSeconds", Ty::Int),
    rw("saDataSizeKilobytes", Ty::Int),
    rw("ipsecEncryption", Ty::Str),
    rw("ipsecIntegrity", Ty::Str),
    rw("ikeEncryption", Ty::Str),
    rw("ikeIntegrity", Ty::Str),
    rw("dhGroup", Ty::Str),
    rw("pfsGroup", Ty::Str),
]);

pub const CONNECTION: Ty = tracked!(Ty::Obj(&[
    rw("virtualNetworkGateway1", link::GATEWAY),
    rw("virtualNetworkGateway2", link::GATEWAY),
    rw("localNetworkGateway2", link::LOCAL_GATEWAY),
    rw("peer", link::CIRCUIT),
    wo("authorizationKey", Ty::Str),
    rw("connectionType", Ty::Str),
    rw("connectionProtocol", Ty::Str),
    rw("routingWeight", Ty::Int),
    rw("dpdTimeoutSeconds", Ty::Int),
    rw("connectionMode", Ty::Str),
    wo("sharedKey", Ty::Str),
    rw("enableBgp", Ty::Bool),
    rw("gatewayCustomBgpIpAddresses", Ty::Any),
    rw("useLocalAzureIpAddress", Ty::Bool),
    rw("usePolicyBasedTrafficSelectors", Ty::Bool),
    rw("ipsecPolicies", Ty::Arr(&IPSEC_POLICY)),
    rw("trafficSelectorPolicies", Ty::Any),
    rw("expressRouteGatewayBypass", Ty::Bool),
    rw("enablePrivateLinkFastPath", Ty::Bool),
    rw("ingressNatRules", Ty::Any),
    rw("egressNatRules", Ty::Any),
    rw("tunnelProperties", Ty::Any),
    rw("authenticationType", Ty::Str),
    rw("certificateAuthentication", Ty::Any),
    rw("routingConfiguration", Ty::Any),
    ro("connectionStatus", Ty::Any),
    ro("tunnelConnectionStatus", Ty::Any),
    ro("ingressBytesTransferred", Ty::Any),
    ro("egressBytesTransferred", Ty::Any),
    ro("provisioningState", Ty::Any),
    ro("resourceGuid", Ty::Any),
]));

pub const RESOURCE_GROUP: Ty = Ty::Obj(&[
    ro("id", Ty::Str),
    ro("name", Ty::Str),
    ro("type", Ty::Str),
    rw("location", Ty::Str),
    rw("tags", Ty::StrMap),
    rw("managedBy", Ty::Str),
    rw("properties", Ty::Obj(&[ro("provisioningState", Ty::Any)])),
]);

pub const NETWORK_WATCHER: Ty = tracked!(Ty::Obj(&[ro("provisioningState", Ty::Any)]));

/// Tag-only PATCH bodies (`UpdateTags`).
pub const TAGS_ONLY: Ty = Ty::Obj(&[rw("tags", Ty::StrMap)]);

/// The request schema of a kind.
pub fn of(kind: Kind) -> &'static Ty {
    match kind {
        Kind::ResourceGroup => &RESOURCE_GROUP,
        Kind::VirtualNetwork => &VNET,
        Kind::Subnet => &SUBNET,
        Kind::Peering => &PEERING,
        Kind::NetworkInterface => &NIC,
        Kind::RouteTable => &ROUTE_TABLE,
        Kind::Route => &ROUTE,
        Kind::PublicIp => &PUBLIC_IP,
        Kind::VirtualNetworkGateway => &GATEWAY,
        Kind::LocalNetworkGateway => &LOCAL_GATEWAY,
        Kind::Connection => &CONNECTION,
        Kind::NetworkWatcher => &NETWORK_WATCHER,
    }
}
