//! Effective routes of a NIC and Network Watcher's next hop, computed from the desired state
//! the way Azure documents it: system routes (VNet prefixes, 0.0.0.0/0, reserved ranges),
//! peering routes for Connected peerings, gateway routes (own gateway or the hub's through
//! useRemoteGateways), user routes, and the precedence between them.

use crate::cidr;
use crate::doc::{self, props};
use crate::error::{ArmError, ArmResult};
use crate::id::ResourceId;
use crate::ops::peering::{self, CONNECTED};
use crate::state::State;
use ipnet::IpNet;
use serde_json::{json, Value};
use std::net::IpAddr;

/// Where a route came from (`EffectiveRouteSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    User,
    VirtualNetworkGateway,
    Default,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::User => "User",
            Source::VirtualNetworkGateway => "VirtualNetworkGateway",
            Source::Default => "Default",
        }
    }
}

/// One effective route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub name: Option<String>,
    pub source: Source,
    pub active: bool,
    /// A CIDR, or a service tag for user routes.
    pub prefix: String,
    pub next_hop_type: String,
    pub next_hop_ips: Vec<String>,
    /// The route table of a user route.
    pub route_table: Option<String>,
    pub disable_bgp: bool,
}

impl Route {
    fn new(source: Source, prefix: IpNet, hop: &str, ips: Vec<String>) -> Self {
        Route {
            name: None,
            source,
            active: true,
            prefix: prefix.to_string(),
            next_hop_type: hop.to_string(),
            next_hop_ips: ips,
            route_table: None,
            disable_bgp: false,
        }
    }
    pub fn net(&self) -> Option<IpNet> {
        self.prefix.parse().ok()
    }
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "disableBgpRoutePropagation": self.disable_bgp,
            "source": self.source.as_str(),
            "state": if self.active { "Active" } else { "Invalid" },
            "addressPrefix": [self.prefix],
            "nextHopIpAddress": self.next_hop_ips,
            "nextHopType": self.next_hop_type,
        });
        if let Some(n) = &self.name {
            v["name"] = json!(n);
        }
        v
    }
}

/// Azure's reserved ranges that get a None route unless the VNet uses them.
const RESERVED: [&str; 4] = [
    "10.0.0.0/8",
    "100.64.0.0/10",
    "172.16.0.0/12",
    "192.168.0.0/16",
];

/// The gateway a VNet's subnets route through: its own, or the remote one of a Connected
/// peering with useRemoteGateways whose reverse link allows gateway transit.
pub fn serving_gateway(st: &State, vnet_key: &str) -> Option<Value> {
    let tx = crate::state::Tx::new(st);
    if let Some((_, g)) = peering::vnet_gateway(&tx, vnet_key) {
        return Some(g);
    }
    for (_, l) in st.scan(&format!("{vnet_key}/virtualnetworkpeerings/")) {
        let lp = props(l);
        if !doc::get_bool(lp, "useRemoteGateways", false) || peering::state_of(l) != CONNECTED {
            continue;
        }
        let rk = doc::ref_key(lp, "remoteVirtualNetwork")?;
        let (_, r) = peering::reverse(&tx, vnet_key, &rk)?;
        if doc::get_bool(props(&r), "allowGatewayTransit", false) {
            return peering::vnet_gateway(&tx, &rk).map(|(_, g)| g);
        }
    }
    None
}

/// Prefixes a gateway has routes for: local network gateways of its connections, the far VNets
/// of its VNet-to-VNet connections, and its point-to-site client pool.
pub fn gateway_prefixes(st: &State, gw: &Value) -> Vec<IpNet> {
    let gkey = doc::id_str(gw).to_ascii_lowercase();
    let mut out = Vec::new();
    for r in st.referrers(&gkey) {
        let Some(c) = st.get(r) else { continue };
        let cp = props(c);
        let g1 = doc::ref_key(cp, "virtualNetworkGateway1");
        let g2 = doc::ref_key(cp, "virtualNetworkGateway2");
        if let Some(l) =
            doc::ref_key(cp, "localNetworkGateway2").filter(|_| g1.as_deref() == Some(&gkey))
        {
            if let Some(lng) = st.get(&l) {
                out.extend(doc::stored_prefixes(
                    props(lng)
                        .get("localNetworkAddressSpace")
                        .unwrap_or(&Value::Null),
                ));
            }
        }
        let other = if g1.as_deref() == Some(&gkey) { g2 } else { g1 };
        if doc::get_str(cp, "connectionType") == Some("Vnet2Vnet") {
            if let Some(vk) = other
                .and_then(|k| st.get(&k))
                .and_then(crate::ops::gateway_vnet_of)
            {
                if let Some(v) = st.get(&vk) {
                    out.extend(doc::vnet_space(v));
                }
            }
        }
    }
    if let Some(pool) = props(gw)
        .get("vpnClientConfiguration")
        .and_then(|v| v.get("vpnClientAddressPool"))
    {
        out.extend(doc::stored_prefixes(pool));
    }
    out.sort();
    out.dedup();
    out
}

/// The effective routes of the NIC `nic_key`, in Azure's order.
pub fn effective_routes(st: &State, nic_key: &str) -> ArmResult<Vec<Route>> {
    let nic = st.get(nic_key).ok_or_else(|| {
        ArmError::new(
            404,
            "ResourceNotFound",
            format!("Network interface {nic_key} was not found."),
        )
    })?;
    let cfgs = props(nic)
        .get("ipConfigurations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let primary = cfgs
        .iter()
        .find(|c| doc::get_bool(props(c), "primary", false))
        .or(cfgs.first())
        .ok_or_else(|| {
            ArmError::bad(
                "NetworkInterfaceMustHaveAtLeastOneIpConfiguration",
                "The NIC has no IP configuration.",
            )
        })?;
    let subnet_key = doc::ref_key(props(primary), "subnet").unwrap_or_default();
    let subnet = st.get(&subnet_key).cloned().unwrap_or(Value::Null);
    let vnet_key = ResourceId::parse(doc::id_str(&subnet))
        .ok()
        .and_then(|s| s.parent())
        .map(|v| v.key())
        .unwrap_or_default();
    let vnet = st.get(&vnet_key).cloned().unwrap_or(Value::Null);
    Ok(compute(st, &vnet_key, &vnet, &subnet))
}

fn compute(st: &State, vnet_key: &str, vnet: &Value, subnet: &Value) -> Vec<Route> {
    let space = doc::vnet_space(vnet);
    let mut routes: Vec<Route> = space
        .iter()
        .map(|p| Route::new(Source::Default, *p, "VnetLocal", vec![]))
        .collect();

    // Peering routes: Connected links, with the remote space as last synced.
    let mut peered: Vec<IpNet> = Vec::new();
    for (_, l) in st.scan(&format!("{vnet_key}/virtualnetworkpeerings/")) {
        if peering::state_of(l) != CONNECTED {
            continue;
        }
        for p in doc::stored_prefixes(props(l).get("remoteAddressSpace").unwrap_or(&Value::Null)) {
            peered.push(p);
            routes.push(Route::new(Source::Default, p, "VNetPeering", vec![]));
        }
    }

    // The route table of the subnet.
    let table =
        doc::ref_key(props(subnet), "routeTable").and_then(|k| st.get(&k).cloned().map(|t| (k, t)));
    let disable_bgp = table
        .as_ref()
        .is_some_and(|(_, t)| doc::get_bool(props(t), "disableBgpRoutePropagation", false));

    // Gateway routes, unless the table turns propagation off. Prefixes equal to or inside the
    // VNet's own or peered space are filtered, as Azure does for BGP.
    let gw = serving_gateway(st, vnet_key)
        .filter(|g| doc::get_str(props(g), "provisioningState") == Some("Succeeded"));
    if let (Some(g), false) = (&gw, disable_bgp) {
        let ips: Vec<String> = props(g)
            .get("ipConfigurations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| doc::get_str(props(c), "privateIPAddress").map(String::from))
            .collect();
        for p in gateway_prefixes(st, g) {
            if space.iter().chain(peered.iter()).any(|v| v.contains(&p)) {
                continue;
            }
            routes.push(Route::new(
                Source::VirtualNetworkGateway,
                p,
                "VirtualNetworkGateway",
                ips.clone(),
            ));
        }
    }

    // System defaults.
    let v4_default: IpNet = cidr::v4("0.0.0.0/0");
    routes.push(Route::new(Source::Default, v4_default, "Internet", vec![]));
    if space.iter().any(|p| p.network().is_ipv6()) {
        routes.push(Route::new(
            Source::Default,
            cidr::v6("::/0"),
            "Internet",
            vec![],
        ));
    }
    for r in RESERVED {
        let rn = cidr::v4(r);
        if space.iter().any(|v| v.contains(&rn)) {
            continue;
        }
        routes.push(Route::new(Source::Default, rn, "None", vec![]));
    }

    // User routes.
    if let Some((tk, t)) = &table {
        let table_id = doc::id_str(t).to_string();
        for (_, r) in st.scan(&format!("{tk}/routes/")) {
            let rp = props(r);
            let hop = doc::get_str(rp, "nextHopType")
                .unwrap_or("None")
                .to_string();
            let ip = doc::get_str(rp, "nextHopIpAddress").map(String::from);
            let valid = match hop.as_str() {
                "VirtualNetworkGateway" => gw.is_some(),
                h if h.starts_with("VirtualAppliance") => ip
                    .as_ref()
                    .and_then(|i| i.parse::<IpAddr>().ok())
                    .is_some_and(|a| space.iter().chain(peered.iter()).any(|p| p.contains(&a))),
                _ => true,
            };
            routes.push(Route {
                name: Some(doc::name(r).to_string()),
                source: Source::User,
                active: valid,
                prefix: doc::get_str(rp, "addressPrefix").unwrap_or("").to_string(),
                next_hop_type: hop,
                next_hop_ips: ip.into_iter().collect(),
                route_table: Some(table_id.clone()),
                disable_bgp,
            });
        }
    }
    for r in routes.iter_mut() {
        r.disable_bgp = disable_bgp;
    }

    // Precedence among equal prefixes: User > VirtualNetworkGateway > Default.
    let n = routes.len();
    for i in 0..n {
        if !routes[i].active {
            continue;
        }
        for j in 0..n {
            if i != j
                && routes[j].active
                && routes[j].prefix == routes[i].prefix
                && routes[j].source < routes[i].source
            {
                routes[i].active = false;
                break;
            }
        }
    }
    routes
}

/// Network Watcher next hop for a packet from the NIC to `dest`: the active route with the
/// longest prefix containing it.
pub fn next_hop(st: &State, nic_key: &str, dest: IpAddr) -> ArmResult<Value> {
    let routes = effective_routes(st, nic_key)?;
    let best = routes
        .iter()
        .filter(|r| r.active)
        .filter_map(|r| r.net().map(|n| (n, r)))
        .filter(|(n, _)| n.contains(&dest))
        .max_by_key(|(n, r)| (n.prefix_len(), std::cmp::Reverse(r.source)));
    let Some((_, r)) = best else {
        return Ok(
            json!({"nextHopType": "None", "nextHopIpAddress": "", "routeTableId": "System Route"}),
        );
    };
    let ip = match r.next_hop_type.as_str() {
        "VnetLocal" | "VNetPeering" => dest.to_string(),
        _ => r.next_hop_ips.first().cloned().unwrap_or_default(),
    };
    Ok(json!({
        "nextHopType": r.next_hop_type,
        "nextHopIpAddress": ip,
        "routeTableId": r.route_table.clone().unwrap_or_else(|| "System Route".into()),
    }))
}
