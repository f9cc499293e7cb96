//! The planner: compiles the desired state (`model::State`) into the tables one host's data
//! plane forwards with ([`HostTables`]), versioned by a generation number.
//!
//! Pure: no IO. Everything the packet path decides comes from here, and the routing part is
//! derived from [`model::routes::effective_routes`] — the very function behind the API's
//! `effectiveRouteTable` — so the data plane and the API cannot disagree about where a packet
//! goes. The peering flags that effective routes do not show (`allowVirtualNetworkAccess`,
//! `allowForwardedTraffic`) are compiled into the peering next hops.
//!
//! NIC ↔ workload bindings are a vnet extension, not part of the Azure resources: they come in
//! as a separate map ([`Binding`]), keyed by the NIC's lower-cased id.

pub mod lpm;
/// Topologies for tests, built with the model's own write rules (lives in `model`).
pub use model::testkit;

use ipnet::IpNet;
use model::doc::{self, props};
use model::ops::peering_api::{self as peering, CONNECTED};
use model::{Kind, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use lpm::Lpm;

/// Index of a NIC in [`HostTables::nics`].
pub type NicIdx = u32;
/// Index of a VNet in [`HostTables::vnets`].
pub type VnetIdx = u32;

/// The MTU of a NIC whose binding does not set one.
pub const DEFAULT_MTU: u16 = 1500;
/// The smallest MTU a binding may ask for (IPv6's minimum).
pub const MIN_MTU: u16 = 1280;

/// Where a NIC lives on this host: a network namespace and the name of its TUN device there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    /// A namespace name (under /run/netns) or a path (`/proc/PID/ns/net`, `/run/netns/x`).
    pub netns: String,
    /// Created (and deleted) by vnet: the namespace of a `vnet vm`.
    #[serde(default)]
    pub managed: bool,
    /// Interface name inside the namespace (default `eth0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifname: Option<String>,
    /// MTU of the interface (default 1500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u16>,
}

impl Binding {
    pub fn ifname(&self) -> &str {
        self.ifname.as_deref().unwrap_or("eth0")
    }

    /// Checks what the API accepts.
    pub fn validate(&self) -> Result<(), String> {
        if self.netns.is_empty() {
            return Err("netns must name a network namespace or be a path to one".into());
        }
        // "." and ".." name no namespace: under /run/netns they are /run/netns and /run, which a
        // managed binding would otherwise have vnet create or unmount.
        let bad_name = self.netns.contains('/')
            || self.netns.contains('\0')
            || self.netns == "."
            || self.netns == ".."
            || self.netns.len() > 200;
        if !self.netns.starts_with('/') && bad_name {
            return Err(format!(
                "netns {:?} is neither a namespace name nor an absolute path",
                self.netns
            ));
        }
        if let Some(n) = &self.ifname {
            if n.is_empty() || n.len() > 15 || n.contains('/') || n.contains(char::is_whitespace) {
                return Err(format!("ifname {n:?} is not a valid interface name (1 to 15 characters, no '/' or blanks)"));
            }
        }
        if let Some(m) = self.mtu {
            if !(MIN_MTU..=9000).contains(&m) {
                return Err(format!("mtu {m} is outside {MIN_MTU}..=9000"));
            }
        }
        Ok(())
    }
}

/// Why the data plane dropped a packet (also the index of its counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DropReason {
    /// Not an IPv4/IPv6 packet, or a truncated or inconsistent header.
    Malformed = 0,
    /// Source address not the sending NIC's (and IP forwarding off).
    Spoofed,
    /// Multicast or broadcast destination.
    Multicast,
    /// No route, or a route to the Internet (no egress from VNets yet).
    NoRoute,
    /// A route with next hop None.
    RouteNone,
    /// A route through a VPN gateway (no gateway data path yet).
    Gateway,
    /// No NIC with the destination address.
    NoSuchHost,
    /// A peering whose links do not both allow virtual network access.
    PeeringAccess,
    /// Forwarded traffic (source outside the sending VNet) refused by the receiving side.
    ForwardedTraffic,
    /// The appliance of a VirtualAppliance route is no NIC we can reach.
    ApplianceUnreachable,
    /// A packet not addressed to the receiving NIC, which has IP forwarding off.
    NotForwarding,
    /// The receiving NIC is not bound to a workload on this host.
    Unbound,
    /// TTL / hop limit ran out (an ICMP error was sent when allowed).
    TtlExceeded,
    /// Larger than the next hop's MTU (an ICMP error was sent when allowed).
    TooBig,
    /// The egress device could not take the packet (queue full, device gone).
    TxError,
}

impl DropReason {
    pub const COUNT: usize = 15;
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::Malformed,
        DropReason::Spoofed,
        DropReason::Multicast,
        DropReason::NoRoute,
        DropReason::RouteNone,
        DropReason::Gateway,
        DropReason::NoSuchHost,
        DropReason::PeeringAccess,
        DropReason::ForwardedTraffic,
        DropReason::ApplianceUnreachable,
        DropReason::NotForwarding,
        DropReason::Unbound,
        DropReason::TtlExceeded,
        DropReason::TooBig,
        DropReason::TxError,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::Spoofed => "spoofedSource",
            DropReason::Multicast => "multicast",
            DropReason::NoRoute => "noRoute",
            DropReason::RouteNone => "routeNone",
            DropReason::Gateway => "gatewayRoute",
            DropReason::NoSuchHost => "noSuchHost",
            DropReason::PeeringAccess => "peeringAccessDenied",
            DropReason::ForwardedTraffic => "forwardedTrafficDenied",
            DropReason::ApplianceUnreachable => "applianceUnreachable",
            DropReason::NotForwarding => "ipForwardingDisabled",
            DropReason::Unbound => "unbound",
            DropReason::TtlExceeded => "ttlExceeded",
            DropReason::TooBig => "tooBig",
            DropReason::TxError => "txError",
        }
    }
}

/// Crossing a peering: the VNet on the far side and what the two links allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerHop {
    pub vnet: VnetIdx,
    /// Both links Connected and both allow virtual network access.
    pub access: bool,
    /// The receiving side's link allows forwarded traffic.
    pub forwarded: bool,
}

/// What a route tells the packet path to do with a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// VnetLocal: to the NIC of the sending VNet that owns the destination.
    Local,
    /// VNetPeering: to the NIC of the peered VNet that owns the destination.
    Peer(PeerHop),
    /// VirtualAppliance: to the appliance's NIC, the destination unchanged.
    Appliance {
        nic: NicIdx,
        peer: Option<PeerHop>,
    },
    Drop(DropReason),
}

/// One address of a NIC, with the subnet prefix it was allocated from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicAddr {
    pub addr: IpAddr,
    pub prefix: IpNet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    /// Lower-cased ARM id.
    pub key: String,
    pub name: String,
    pub vnet: VnetIdx,
    pub addrs: Vec<NicAddr>,
    pub ip_forwarding: bool,
    pub mtu: u16,
    /// Index in [`HostTables::route_tables`].
    pub routes: u32,
    /// The subnet's gateway addresses (x.x.x.1, prefix::1): the source of ICMP errors.
    pub gw4: Ipv4Addr,
    pub gw6: Ipv6Addr,
    pub binding: Option<Binding>,
}

impl Nic {
    #[inline]
    pub fn owns_v4(&self, a: u32) -> bool {
        self.addrs
            .iter()
            .any(|x| matches!(x.addr, IpAddr::V4(v) if u32::from(v) == a))
    }
    #[inline]
    pub fn owns_v6(&self, a: u128) -> bool {
        self.addrs
            .iter()
            .any(|x| matches!(x.addr, IpAddr::V6(v) if u128::from(v) == a))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vnet {
    pub key: String,
    /// The address space.
    pub space: Lpm<()>,
    /// Host routes: each NIC address (/32, /128) to its NIC.
    pub hosts: Lpm<NicIdx>,
}

/// The effective routes of one subnet, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    pub subnet: String,
    pub lpm: Lpm<Action>,
}

/// Everything one host forwards with. Built whole, installed whole.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostTables {
    pub generation: u64,
    pub nics: Vec<Nic>,
    pub vnets: Vec<Vnet>,
    pub route_tables: Vec<RouteTable>,
}

impl HostTables {
    pub fn nic_by_key(&self, key: &str) -> Option<NicIdx> {
        self.nics
            .iter()
            .position(|n| n.key == key)
            .map(|i| i as NicIdx)
    }
}

fn kind_of(d: &Value) -> Option<Kind> {
    doc::doc_id(d).map(|i| i.kind)
}

/// The Connected peering link of `vnet_key` whose remote address space has a prefix that
/// `matches`: its remote VNet, the link, and the reverse link.
fn link_pair(
    st: &State,
    vnet_key: &str,
    matches: &dyn Fn(&IpNet) -> bool,
) -> Option<(String, Value, Option<Value>)> {
    for (_, l) in st.scan(&format!("{vnet_key}/virtualnetworkpeerings/")) {
        if peering::state_of(l) != CONNECTED {
            continue;
        }
        let lp = props(l);
        if !doc::stored_prefixes(lp.get("remoteAddressSpace").unwrap_or(&Value::Null))
            .iter()
            .any(matches)
        {
            continue;
        }
        let remote = doc::ref_key(lp, "remoteVirtualNetwork")?;
        let tx = model::Tx::new(st);
        let rev = peering::reverse(&tx, vnet_key, &remote).map(|(_, r)| r);
        return Some((remote, l.clone(), rev));
    }
    None
}

fn peer_hop(link: &Value, rev: Option<&Value>, vnet: VnetIdx) -> PeerHop {
    let lp = props(link);
    let (access, forwarded) = match rev {
        Some(r) if peering::state_of(r) == CONNECTED => {
            let rp = props(r);
            (
                doc::get_bool(lp, "allowVirtualNetworkAccess", true)
                    && doc::get_bool(rp, "allowVirtualNetworkAccess", true),
                doc::get_bool(rp, "allowForwardedTraffic", false),
            )
        }
        _ => (false, false),
    };
    PeerHop {
        vnet,
        access: peering::state_of(link) == CONNECTED && access,
        forwarded,
    }
}

/// Compiles the state into host tables. `bindings` maps lower-cased NIC ids to the workload
/// they are attached to on this host; NICs without one are still compiled (they are
/// destinations of routes) but marked unbound.
pub fn compile(st: &State, bindings: &BTreeMap<String, Binding>, generation: u64) -> HostTables {
    // VNets and their spaces.
    let mut vnet_idx: HashMap<String, VnetIdx> = HashMap::new();
    // (key, address space, host routes)
    type VnetParts = (String, Vec<IpNet>, Vec<(IpNet, NicIdx)>);
    let mut vnets: Vec<VnetParts> = Vec::new();
    for (k, d) in st.scan("/subscriptions/") {
        if kind_of(d) == Some(Kind::VirtualNetwork) {
            vnet_idx.insert(k.clone(), vnets.len() as VnetIdx);
            vnets.push((k.clone(), doc::vnet_space(d), Vec::new()));
        }
    }

    // NICs: addresses, subnet, VNet.
    struct Pending {
        nic: Nic,
        subnet: String,
    }
    let mut pending: Vec<Pending> = Vec::new();
    for (k, d) in st.scan("/subscriptions/") {
        if kind_of(d) != Some(Kind::NetworkInterface) {
            continue;
        }
        let p = props(d);
        let cfgs = p
            .get("ipConfigurations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let primary = cfgs
            .iter()
            .find(|c| doc::get_bool(props(c), "primary", false))
            .or(cfgs.first());
        let Some(subnet_key) = primary.and_then(|c| doc::ref_key(props(c), "subnet")) else {
            continue;
        };
        let Some(vnet_key) = model::ResourceId::parse(&subnet_key)
            .ok()
            .and_then(|s| s.parent())
            .map(|v| v.key())
        else {
            continue;
        };
        let Some(&vi) = vnet_idx.get(&vnet_key) else {
            continue;
        };
        let mut addrs = Vec::new();
        for c in &cfgs {
            let cp = props(c);
            let Some(a) =
                doc::get_str(cp, "privateIPAddress").and_then(|s| s.parse::<IpAddr>().ok())
            else {
                continue;
            };
            let Some(sk) = doc::ref_key(cp, "subnet") else {
                continue;
            };
            let Some(sn) = st.get(&sk) else { continue };
            let Some(prefix) = doc::subnet_prefixes(sn)
                .into_iter()
                .find(|n| n.contains(&a))
            else {
                continue;
            };
            addrs.push(NicAddr { addr: a, prefix });
        }
        if addrs.is_empty() {
            continue;
        }
        let gw = |v6: bool| {
            addrs
                .iter()
                .find(|a| a.addr.is_ipv6() == v6)
                .map(|a| model::cidr::subnet_gateway(&a.prefix))
        };
        let gw4 = match gw(false) {
            Some(IpAddr::V4(a)) => a,
            _ => Ipv4Addr::UNSPECIFIED,
        };
        let gw6 = match gw(true) {
            Some(IpAddr::V6(a)) => a,
            _ => Ipv6Addr::UNSPECIFIED,
        };
        let binding = bindings.get(k.as_str()).cloned();
        let mtu = binding.as_ref().and_then(|b| b.mtu).unwrap_or(DEFAULT_MTU);
        pending.push(Pending {
            nic: Nic {
                key: k.clone(),
                name: doc::name(d).to_string(),
                vnet: vi,
                addrs,
                ip_forwarding: doc::get_bool(p, "enableIPForwarding", false),
                mtu,
                routes: 0,
                gw4,
                gw6,
                binding,
            },
            subnet: subnet_key,
        });
    }
    for (i, p) in pending.iter().enumerate() {
        for a in &p.nic.addrs {
            let host =
                IpNet::new(a.addr, if a.addr.is_ipv4() { 32 } else { 128 }).expect("host prefix");
            vnets[p.nic.vnet as usize].2.push((host, i as NicIdx));
        }
    }
    let vnets: Vec<Vnet> = vnets
        .into_iter()
        .map(|(key, space, hosts)| Vnet {
            key,
            space: Lpm::new(space.into_iter().map(|n| (n, ()))),
            hosts: Lpm::new(hosts),
        })
        .collect();

    // Route tables, one per subnet in use, from the effective routes.
    let mut route_tables: Vec<RouteTable> = Vec::new();
    let mut by_subnet: HashMap<String, u32> = HashMap::new();
    let mut nics = Vec::with_capacity(pending.len());
    for p in pending {
        let mut nic = p.nic;
        let idx = match by_subnet.get(&p.subnet) {
            Some(&i) => i,
            None => {
                let lpm = compile_routes(st, &nic.key, &vnets, &vnet_idx);
                route_tables.push(RouteTable {
                    subnet: p.subnet.clone(),
                    lpm,
                });
                let i = (route_tables.len() - 1) as u32;
                by_subnet.insert(p.subnet, i);
                i
            }
        };
        nic.routes = idx;
        nics.push(nic);
    }
    HostTables {
        generation,
        nics,
        vnets,
        route_tables,
    }
}

/// The active effective routes of a NIC, as (prefix, action).
fn compile_routes(
    st: &State,
    nic_key: &str,
    vnets: &[Vnet],
    vnet_idx: &HashMap<String, VnetIdx>,
) -> Lpm<Action> {
    let Ok(routes) = model::routes::effective_routes(st, nic_key) else {
        return Lpm::default();
    };
    let vnet_key = vnet_of_nic(st, nic_key).unwrap_or_default();
    let own = vnet_idx.get(&vnet_key).copied();
    let active: Vec<(IpNet, &model::routes::Route)> = routes
        .iter()
        .filter(|r| r.active)
        .filter_map(|r| r.net().map(|n| (n, r)))
        .collect();
    let hop = |m: &dyn Fn(&IpNet) -> bool| -> Option<PeerHop> {
        let (remote, link, rev) = link_pair(st, &vnet_key, m)?;
        let vi = *vnet_idx.get(&remote)?;
        Some(peer_hop(&link, rev.as_ref(), vi))
    };
    let peer_of = |net: &IpNet| hop(&|p: &IpNet| p == net);
    let peer_of_ip = |ip: IpAddr| hop(&|p: &IpNet| p.contains(&ip));
    let mut entries = Vec::with_capacity(active.len());
    for (net, r) in &active {
        let action = match r.next_hop_type.as_str() {
            "VnetLocal" => Action::Local,
            "VNetPeering" => match peer_of(net) {
                Some(h) => Action::Peer(h),
                None => Action::Drop(DropReason::NoRoute),
            },
            "VirtualAppliance" => {
                let ip = r
                    .next_hop_ips
                    .first()
                    .and_then(|s| s.parse::<IpAddr>().ok());
                match ip.and_then(|ip| resolve_appliance(ip, own, vnets, &peer_of_ip)) {
                    Some(a) => a,
                    None => Action::Drop(DropReason::ApplianceUnreachable),
                }
            }
            "None" => Action::Drop(DropReason::RouteNone),
            "VirtualNetworkGateway" => Action::Drop(DropReason::Gateway),
            _ => Action::Drop(DropReason::NoRoute),
        };
        entries.push((*net, action));
    }
    Lpm::new(entries)
}

fn vnet_of_nic(st: &State, nic_key: &str) -> Option<String> {
    let p = props(st.get(nic_key)?);
    let cfgs = p.get("ipConfigurations")?.as_array()?;
    let c = cfgs
        .iter()
        .find(|c| doc::get_bool(props(c), "primary", false))
        .or(cfgs.first())?;
    let sk = doc::ref_key(props(c), "subnet")?;
    model::ResourceId::parse(&sk)
        .ok()?
        .parent()
        .map(|v| v.key())
}

/// The NIC owning an appliance address: in the own VNet, or in a VNet peered with it over a
/// Connected link (the condition under which the model shows the route as active), whatever
/// other routes say about that address.
fn resolve_appliance(
    ip: IpAddr,
    own: Option<VnetIdx>,
    vnets: &[Vnet],
    peer_of_ip: &dyn Fn(IpAddr) -> Option<PeerHop>,
) -> Option<Action> {
    let own = own?;
    if vnets[own as usize].space.lookup(ip).is_some() {
        let (_, &nic) = vnets[own as usize].hosts.lookup(ip)?;
        return Some(Action::Appliance { nic, peer: None });
    }
    let h = peer_of_ip(ip)?;
    let (_, &nic) = vnets[h.vnet as usize].hosts.lookup(ip)?;
    Some(Action::Appliance { nic, peer: Some(h) })
}

#[cfg(test)]
mod tests;
