//! What an example assumes exists, derived from the example itself, and the requests that
//! create it on a fresh vnet server.
//!
//! The rules (docs/conformance-differences.md, "Prerequisites", says the same in prose):
//!
//! * **Resource groups**: every resource group named by an id anywhere in the example.
//! * **The target**: a Get, Delete, UpdateTags or action acts on an existing resource. When the
//!   example's `200` body is that resource (same id), it is created as the body describes it
//!   (read-only fields in the body are dropped by the server, as ARM drops them; UpdateTags
//!   drops the tags so the PATCH is what sets them). A List creates every item of its `value`.
//!   A Create's target must not exist; its request body only contributes references and hints.
//! * **References**: every Microsoft.Network resource a described resource or the request body
//!   references (`subnet`, `publicIPAddress`, `remoteVirtualNetwork`, `virtualNetworkGateway1/2`,
//!   `localNetworkGateway2`, `routeTable`, `ingressNatRules`/`egressNatRules`) exists; embedded
//!   resources (a reference with non-empty `properties`) are created as embedded. A public IP's
//!   `ipConfiguration` names the NIC configuration that uses it: that NIC exists. References to
//!   kinds vnet does not model (load balancers, NSGs, VMs, …) are left as they are.
//! * **Undescribed resources** get a minimal body: a gateway `G` gets VNet `G-vnet` with a
//!   GatewaySubnet and public IP `G-pip`; a connection `C` gets gateway `C-gw` and local gateway
//!   `C-lng`; a NIC `N` gets subnet `default` of VNet `N-vnet`; a peering `P` gets remote VNet
//!   `P-remote-vnet`; a route gets `VnetLocal` to an invented prefix.
//! * **Addresses**: a subnet's prefix is the example's, else the smallest block (/24, /27 for
//!   GatewaySubnet, widened as needed) holding the addresses the example shows in it (NIC
//!   addresses, a gateway's BGP peering address); a VNet's space is the example's, else the
//!   peering's `remoteAddressSpace` for a remote VNet, else the /16s of its subnets. Invented
//!   spaces come from 10.200.0.0/16 upwards and local-gateway spaces from 192.168.200.0/24
//!   upwards, avoiding every prefix the example shows. A subnet whose example prefix collides
//!   with a sibling's (which Azure refuses) gets a free one, noted in the report.
//! * **Placeholders**: `x.x.x.x` becomes 198.51.100.N (RFC 5737 TEST-NET-2), N = 1, 2, …
//! * **Operation hints**: effective routes put the NIC in the `VnetLocal` prefixes of the
//!   response; CheckIPAddressAvailability puts the address in a subnet and, when the response
//!   says it is taken, gives it to a NIC; ListUsage sizes each subnet from its `limit` and puts
//!   `currentValue` NICs in it; next hop gives the NIC the source address in a subnet holding
//!   source and destination and, when the response names a route table, attaches it to that
//!   subnet with a route for the destination of the response's hop type; GetSharedKey sets the
//!   connection's key to the response's; a peering sync first creates the peering while the
//!   remote VNet has half of its final space, then widens the remote, so the sync has
//!   something to sync.

use crate::ops::{Kind as OpKind, Op};
use ipnet::{IpNet, Ipv4Net};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// One request the harness sends before the example's.
#[derive(Debug, Clone)]
pub struct Step {
    pub method: &'static str,
    pub path: String,
    pub body: Value,
    /// Asynchronously provisioned: wait until provisioningState is Succeeded.
    pub wait: bool,
}

pub struct Setup {
    pub steps: Vec<Step>,
    /// Adjustments the harness made to the example's data, for the report.
    pub notes: Vec<String>,
    /// The example's request body with placeholders replaced.
    pub body: Option<Value>,
}

/// Resource kinds vnet models (lower-case type path).
const MODELLED: [&str; 11] = [
    "virtualnetworks",
    "virtualnetworks/subnets",
    "virtualnetworks/virtualnetworkpeerings",
    "networkinterfaces",
    "routetables",
    "routetables/routes",
    "publicipaddresses",
    "virtualnetworkgateways",
    "localnetworkgateways",
    "connections",
    "networkwatchers",
];

/// Creation order: what a kind references is created before it.
const ORDER: [&str; 9] = [
    "publicipaddresses",
    "routetables",
    "virtualnetworks",
    "virtualnetworks/virtualnetworkpeerings",
    "localnetworkgateways",
    "virtualnetworkgateways",
    "networkinterfaces",
    "connections",
    "networkwatchers",
];

/// Fields holding a reference (`{"id": …}`) to another resource.
const REF_FIELDS: [&str; 7] = [
    "subnet",
    "publicIPAddress",
    "remoteVirtualNetwork",
    "virtualNetworkGateway1",
    "virtualNetworkGateway2",
    "localNetworkGateway2",
    "routeTable",
];

/// An ARM id: subscription, resource group and Microsoft.Network type/name pairs.
#[derive(Clone, Debug)]
struct Id {
    sub: String,
    rg: String,
    types: Vec<String>,
    names: Vec<String>,
}

impl Id {
    fn parse(s: &str) -> Option<Id> {
        let p: Vec<&str> = s.split('/').collect();
        if p.len() < 5
            || !p[0].is_empty()
            || !p[1].eq_ignore_ascii_case("subscriptions")
            || !p[3].eq_ignore_ascii_case("resourceGroups")
        {
            return None;
        }
        let mut id = Id {
            sub: p[2].into(),
            rg: p[4].into(),
            types: vec![],
            names: vec![],
        };
        if p.len() == 5 {
            return Some(id);
        }
        if p.len() < 9
            || !p[5].eq_ignore_ascii_case("providers")
            || !p[6].eq_ignore_ascii_case("Microsoft.Network")
        {
            return None;
        }
        for pair in p[7..].chunks(2) {
            let [ty, name] = pair else { return None };
            id.types.push(ty.to_string());
            id.names.push(name.to_string());
        }
        Some(id)
    }
    fn kind(&self) -> String {
        self.types.join("/").to_ascii_lowercase()
    }
    fn name(&self) -> &str {
        self.names.last().map_or(self.rg.as_str(), String::as_str)
    }
    fn group(&self) -> String {
        format!("/subscriptions/{}/resourceGroups/{}", self.sub, self.rg)
    }
    fn text(&self) -> String {
        let mut s = self.group();
        if !self.types.is_empty() {
            s.push_str("/providers/Microsoft.Network");
            for (t, n) in self.types.iter().zip(&self.names) {
                s.push_str(&format!("/{t}/{n}"));
            }
        }
        s
    }
    fn key(&self) -> String {
        self.text().to_ascii_lowercase()
    }
    fn parent(&self) -> Option<Id> {
        (self.types.len() > 1).then(|| Id {
            types: self.types[..self.types.len() - 1].to_vec(),
            names: self.names[..self.names.len() - 1].to_vec(),
            ..self.clone()
        })
    }
    /// A top-level resource in the same resource group.
    fn sibling(&self, ty: &str, name: &str) -> Id {
        Id {
            types: vec![ty.into()],
            names: vec![name.into()],
            ..self.clone()
        }
    }
    fn child(&self, ty: &str, name: &str) -> Id {
        let mut c = self.clone();
        c.types.push(ty.into());
        c.names.push(name.into());
        c
    }
}

struct Res {
    id: Id,
    /// The example's description of the resource, when it has one.
    body: Option<Value>,
    /// False for the target of a Create: it must not exist before the request.
    create: bool,
}

fn ref_id<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get(field)?.get("id")?.as_str()
}

fn v4(s: &str) -> Option<Ipv4Addr> {
    s.split('/').next()?.trim().parse().ok()
}

fn nets(v: Option<&Value>) -> Vec<IpNet> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str()?.parse().ok())
        .collect()
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The smallest block of at most `len` bits holding every address.
fn block(addrs: &[Ipv4Addr], len: u8) -> Option<IpNet> {
    let first = *addrs.first()?;
    let mut l = len;
    loop {
        let b = Ipv4Net::new(first, l).ok()?.trunc();
        if addrs.iter().all(|a| b.contains(a)) || l <= 8 {
            return Some(IpNet::V4(b));
        }
        l -= 1;
    }
}

/// An IP configuration of a NIC the harness makes up.
#[derive(Clone)]
struct NicConfig {
    name: String,
    public_ip: Option<String>,
    /// A static address.
    address: Option<String>,
}

impl NicConfig {
    fn new(name: &str, address: Option<String>) -> Self {
        NicConfig {
            name: name.into(),
            public_ip: None,
            address,
        }
    }
}

#[derive(Default)]
struct World {
    loc: String,
    res: BTreeMap<String, Res>,
    groups: BTreeMap<String, String>,
    /// Subnet key → addresses the example shows inside it.
    ip_hints: BTreeMap<String, Vec<Ipv4Addr>>,
    /// VNet key → address space the example implies.
    space_hints: BTreeMap<String, Vec<IpNet>>,
    community: BTreeMap<String, String>,
    /// Subnet key → fixed prefix or prefix length.
    subnet_prefix: BTreeMap<String, IpNet>,
    subnet_len: BTreeMap<String, u8>,
    subnet_route_table: BTreeMap<String, String>,
    extra_routes: BTreeMap<String, Vec<Value>>,
    /// Gateway key → NAT rule name → mode.
    nat_rules: BTreeMap<String, BTreeMap<String, &'static str>>,
    /// NIC key → IP configurations (name, public IP, static address).
    nic_configs: BTreeMap<String, Vec<NicConfig>>,
    nic_subnet: BTreeMap<String, String>,
    shared_key: BTreeMap<String, String>,
    /// Prefixes the example shows: invented ones avoid them.
    seen: Vec<IpNet>,
    used: Vec<IpNet>,
    placeholders: u8,
    /// VNets first created with half of their space (peering sync).
    half_space: BTreeSet<String>,
    sync_peering: Option<Step>,
    notes: Vec<String>,
}

impl World {
    fn need(&mut self, id: &str) {
        let Some(i) = Id::parse(id) else { return };
        self.groups
            .entry(i.group().to_ascii_lowercase())
            .or_insert_with(|| i.group());
        if i.types.is_empty() {
            return;
        }
        let kind = i.kind();
        let parent = i.parent();
        match kind.as_str() {
            "virtualnetworkgateways/natrules" => {
                let gw = parent.expect("child");
                self.need(&gw.text());
                self.nat_rules
                    .entry(gw.key())
                    .or_default()
                    .entry(i.name().to_string())
                    .or_insert("EgressSnat");
            }
            "networkinterfaces/ipconfigurations" => {
                let nic = parent.expect("child");
                self.need(&nic.text());
                let cfgs = self.nic_configs.entry(nic.key()).or_default();
                if !cfgs.iter().any(|c| c.name.eq_ignore_ascii_case(i.name())) {
                    cfgs.push(NicConfig::new(i.name(), None));
                }
            }
            k if MODELLED.contains(&k) => {
                if let Some(p) = parent {
                    self.need(&p.text());
                }
                self.res.entry(i.key()).or_insert(Res {
                    id: i,
                    body: None,
                    create: true,
                });
            }
            _ => {}
        }
    }

    /// The example describes resource `id` as `body`.
    fn describe(&mut self, id: &str, body: &Value, create: bool) {
        self.need(id);
        let Some(i) = Id::parse(id) else { return };
        if let Some(r) = self.res.get_mut(&i.key()) {
            if r.body.is_none() {
                r.body = Some(body.clone());
            }
            r.create &= create;
        }
        self.scan_refs(&i, body);
    }

    fn scan_refs(&mut self, owner: &Id, v: &Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match k.as_str() {
                        f if REF_FIELDS.contains(&f) => {
                            if let Some(id) = x.get("id").and_then(Value::as_str) {
                                let embedded = x
                                    .get("properties")
                                    .and_then(Value::as_object)
                                    .is_some_and(|p| !p.is_empty());
                                if embedded {
                                    self.describe(id, x, true);
                                } else {
                                    self.need(id);
                                }
                            }
                        }
                        "ingressNatRules" | "egressNatRules" => {
                            let mode = if k == "ingressNatRules" {
                                "IngressSnat"
                            } else {
                                "EgressSnat"
                            };
                            for r in x.as_array().into_iter().flatten() {
                                if let Some(id) = r.get("id").and_then(Value::as_str) {
                                    self.need(id);
                                    if let (Some(i), Some(gw)) =
                                        (Id::parse(id), Id::parse(id).and_then(|i| i.parent()))
                                    {
                                        self.nat_rules
                                            .entry(gw.key())
                                            .or_default()
                                            .insert(i.name().to_string(), mode);
                                    }
                                }
                            }
                        }
                        // A public IP's back-reference to the NIC configuration using it.
                        "ipConfiguration" if owner.kind() == "publicipaddresses" => {
                            if let Some(i) = x.get("id").and_then(Value::as_str).and_then(Id::parse)
                            {
                                if i.kind() == "networkinterfaces/ipconfigurations" {
                                    self.need(&i.text());
                                    let nic = i.parent().expect("child").key();
                                    for c in self.nic_configs.entry(nic).or_default() {
                                        if c.name.eq_ignore_ascii_case(i.name()) {
                                            c.public_ip = Some(owner.text());
                                        }
                                    }
                                }
                            }
                        }
                        // Back-references of subnets (IP configurations in them): outputs.
                        "ipConfigurations" if owner.kind().starts_with("virtualnetworks") => {}
                        _ => self.scan_refs(owner, x),
                    }
                }
            }
            Value::Array(a) => {
                for x in a {
                    self.scan_refs(owner, x);
                }
            }
            _ => {}
        }
    }

    fn hint_ip(&mut self, subnet: &str, ip: &str) {
        if let (Some(s), Some(a)) = (Id::parse(subnet), v4(ip)) {
            let h = self.ip_hints.entry(s.key()).or_default();
            if !h.contains(&a) {
                h.push(a);
            }
        }
    }

    /// Addresses and spaces the example shows, wherever they are.
    fn scan_hints(&mut self, v: &Value) {
        if let Some(p) = v.get("properties").filter(|p| p.is_object()) {
            if let (Some(s), Some(ip)) = (
                ref_id(p, "subnet"),
                p.get("privateIPAddress").and_then(Value::as_str),
            ) {
                self.hint_ip(s, ip);
            }
            let gw_subnet = p
                .get("ipConfigurations")
                .and_then(|c| c.get(0))
                .and_then(|c| c.get("properties"))
                .and_then(|c| ref_id(c, "subnet"));
            if let (Some(s), true) = (gw_subnet, p.get("bgpSettings").is_some()) {
                let s = s.to_string();
                let bgp = p["bgpSettings"]
                    .get("bgpPeeringAddress")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                for a in bgp.split(',').chain(
                    p.get("inboundDnsForwardingEndpoint")
                        .and_then(Value::as_str),
                ) {
                    self.hint_ip(&s, a);
                }
            }
            if let Some(r) = ref_id(p, "remoteVirtualNetwork").and_then(Id::parse) {
                let space = nets(
                    p.get("remoteVirtualNetworkAddressSpace")
                        .and_then(|s| s.get("addressPrefixes")),
                );
                let space = if space.is_empty() {
                    nets(
                        p.get("remoteAddressSpace")
                            .and_then(|s| s.get("addressPrefixes")),
                    )
                } else {
                    space
                };
                if !space.is_empty() {
                    self.space_hints.entry(r.key()).or_insert(space);
                }
                if let Some(c) = p
                    .get("remoteBgpCommunities")
                    .and_then(|c| c.get("virtualNetworkCommunity"))
                    .and_then(Value::as_str)
                {
                    self.community
                        .entry(r.key())
                        .or_insert_with(|| c.to_string());
                }
            }
        }
        match v {
            Value::Object(m) => m.values().for_each(|x| self.scan_hints(x)),
            Value::Array(a) => a.iter().for_each(|x| self.scan_hints(x)),
            Value::String(s) => {
                if let Ok(n) = s.parse::<IpNet>() {
                    if n.prefix_len() >= 12 {
                        self.seen.push(n);
                    }
                } else if let Some(a) = v4(s).filter(|_| !s.contains('/')) {
                    self.seen.push(IpNet::V4(Ipv4Net::new(a, 32).expect("/32")));
                }
            }
            _ => {}
        }
    }

    /// Hints only one operation's example implies.
    fn op_hints(&mut self, op: &Op, params: &Value, ok: Option<&Value>, request: Option<&Value>) {
        let Some(target) = op.target(params).and_then(|t| Id::parse(&t)) else {
            return;
        };
        match op.id {
            "NetworkInterfaces_GetEffectiveRouteTable" => {
                let local: Vec<IpNet> = ok
                    .and_then(|b| b.get("value"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|r| r.get("nextHopType").and_then(Value::as_str) == Some("VnetLocal"))
                    .flat_map(|r| nets(r.get("addressPrefix")))
                    .collect();
                let vnet = target.sibling("virtualNetworks", &format!("{}-vnet", target.name()));
                let subnet = vnet.child("subnets", "default");
                if let Some(first) = local.first() {
                    self.subnet_prefix.insert(subnet.key(), *first);
                    self.space_hints.insert(vnet.key(), local.clone());
                }
                self.nic_subnet.insert(target.key(), subnet.text());
                self.need(&subnet.text());
            }
            "VirtualNetworks_CheckIPAddressAvailability" => {
                let ip = params
                    .get("ipAddress")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let subnet = target.child("subnets", "default");
                self.hint_ip(&subnet.text(), &ip);
                self.need(&subnet.text());
                if ok.and_then(|b| b.get("available")).and_then(Value::as_bool) == Some(false) {
                    let nic = target.sibling("networkInterfaces", "address-holder-nic");
                    self.need(&nic.text());
                    self.nic_subnet.insert(nic.key(), subnet.text());
                    self.nic_configs
                        .insert(nic.key(), vec![NicConfig::new("ipconfig1", Some(ip))]);
                }
            }
            "VirtualNetworks_ListUsage" => {
                for u in ok
                    .and_then(|b| b.get("value"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let Some(s) = u.get("id").and_then(Value::as_str).and_then(Id::parse) else {
                        continue;
                    };
                    self.need(&s.text());
                    // Azure counts usable addresses: the block size less the five it reserves.
                    if let Some(limit) = u.get("limit").and_then(Value::as_f64).filter(|l| *l > 0.0)
                    {
                        if let Some(len) = (0..=29u8)
                            .rev()
                            .find(|l| (1u64 << (32 - l)) as f64 - 5.0 >= limit)
                        {
                            self.subnet_len.insert(s.key(), len);
                        }
                    }
                    let used = u
                        .get("currentValue")
                        .and_then(Value::as_f64)
                        .unwrap_or(0.0)
                        .max(0.0) as usize;
                    for n in 1..=used {
                        let nic =
                            target.sibling("networkInterfaces", &format!("{}-nic{n}", s.name()));
                        self.need(&nic.text());
                        self.nic_subnet.insert(nic.key(), s.text());
                    }
                }
            }
            "NetworkWatchers_GetNextHop" => {
                let Some(req) = request else { return };
                let Some(nic) = req
                    .get("targetNicResourceId")
                    .and_then(Value::as_str)
                    .and_then(Id::parse)
                else {
                    return;
                };
                let src = req
                    .get("sourceIPAddress")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let dst = req
                    .get("destinationIPAddress")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let subnet = nic
                    .sibling("virtualNetworks", &format!("{}-vnet", nic.name()))
                    .child("subnets", "default");
                self.hint_ip(&subnet.text(), &src);
                self.hint_ip(&subnet.text(), &dst);
                self.need(&nic.text());
                self.nic_subnet.insert(nic.key(), subnet.text());
                self.nic_configs
                    .insert(nic.key(), vec![NicConfig::new("ipconfig1", Some(src))]);
                let hop = ok
                    .and_then(|b| b.get("nextHopType"))
                    .and_then(Value::as_str)
                    .unwrap_or("VnetLocal");
                if let Some(rt) = ok
                    .and_then(|b| b.get("routeTableId"))
                    .and_then(Value::as_str)
                    .and_then(Id::parse)
                    .filter(|r| r.kind() == "routetables")
                {
                    self.need(&rt.text());
                    self.subnet_route_table.insert(subnet.key(), rt.text());
                    let mut p = json!({"addressPrefix": format!("{dst}/32"), "nextHopType": hop});
                    if hop.starts_with("VirtualAppliance") {
                        p["nextHopIpAddress"] = ok
                            .and_then(|b| b.get("nextHopIpAddress"))
                            .cloned()
                            .unwrap_or(Value::Null);
                    }
                    self.extra_routes
                        .entry(rt.key())
                        .or_default()
                        .push(json!({"name": "to-destination", "properties": p}));
                }
            }
            "VirtualNetworkGatewayConnections_GetSharedKey" => {
                if let Some(k) = ok.and_then(|b| b.get("value")).and_then(Value::as_str) {
                    self.shared_key.insert(target.key(), k.to_string());
                }
            }
            "VirtualNetworkPeerings_CreateOrUpdate"
                if params.get("syncRemoteAddressSpace").and_then(Value::as_str) == Some("true") =>
            {
                let Some(body) = request else { return };
                if let Some(remote) = body
                    .get("properties")
                    .and_then(|p| ref_id(p, "remoteVirtualNetwork"))
                    .and_then(Id::parse)
                {
                    self.half_space.insert(remote.key());
                }
                self.sync_peering = Some(Step {
                    method: "PUT",
                    path: target.text(),
                    body: body.clone(),
                    wait: false,
                });
            }
            _ => {}
        }
    }

    /// Gives undescribed resources what they need to exist, until nothing new is needed.
    fn expand(&mut self) {
        loop {
            let before = self.res.len();
            let generic: Vec<Id> = self
                .res
                .values()
                .filter(|r| r.body.is_none() && r.create)
                .map(|r| r.id.clone())
                .collect();
            for id in generic {
                match id.kind().as_str() {
                    "virtualnetworkgateways" => {
                        self.need(
                            &id.sibling("virtualNetworks", &format!("{}-vnet", id.name()))
                                .child("subnets", "GatewaySubnet")
                                .text(),
                        );
                        self.need(
                            &id.sibling("publicIPAddresses", &format!("{}-pip", id.name()))
                                .text(),
                        );
                    }
                    "connections" => {
                        self.need(
                            &id.sibling("virtualNetworkGateways", &format!("{}-gw", id.name()))
                                .text(),
                        );
                        self.need(
                            &id.sibling("localNetworkGateways", &format!("{}-lng", id.name()))
                                .text(),
                        );
                    }
                    "networkinterfaces" => {
                        let subnet = self
                            .nic_subnet
                            .entry(id.key())
                            .or_insert_with(|| {
                                id.sibling("virtualNetworks", &format!("{}-vnet", id.name()))
                                    .child("subnets", "default")
                                    .text()
                            })
                            .clone();
                        self.need(&subnet);
                        let pips: Vec<String> = self
                            .nic_configs
                            .get(&id.key())
                            .into_iter()
                            .flatten()
                            .filter_map(|c| c.public_ip.clone())
                            .collect();
                        for p in pips {
                            self.need(&p);
                        }
                    }
                    "virtualnetworks/virtualnetworkpeerings" => {
                        self.need(&Self::generic_remote(&id).text());
                    }
                    _ => {}
                }
            }
            if self.res.len() == before {
                return;
            }
        }
    }

    fn generic_remote(peering: &Id) -> Id {
        peering.sibling(
            "virtualNetworks",
            &format!("{}-remote-vnet", peering.name()),
        )
    }

    fn free_space(&mut self, base: [u8; 2], len: u8) -> IpNet {
        for i in 0..=55u8 {
            let n = if len == 16 {
                IpNet::V4(Ipv4Net::new(Ipv4Addr::new(base[0], base[1] + i, 0, 0), 16).expect("/16"))
            } else {
                IpNet::V4(
                    Ipv4Net::new(Ipv4Addr::new(base[0], base[1], 200 + i, 0), len).expect("/24"),
                )
            };
            if !self.seen.iter().chain(&self.used).any(|s| overlaps(s, &n)) {
                self.used.push(n);
                return n;
            }
        }
        panic!("no free invented prefix left");
    }

    fn placeholders(&mut self, v: &mut Value) {
        match v {
            Value::String(s) if s == "x.x.x.x" => {
                self.placeholders += 1;
                *s = format!("198.51.100.{}", self.placeholders);
            }
            Value::Object(m) => m.values_mut().for_each(|x| self.placeholders(x)),
            Value::Array(a) => a.iter_mut().for_each(|x| self.placeholders(x)),
            _ => {}
        }
    }

    fn body_of(&mut self, r: &Res) -> Option<Value> {
        let mut b = r.body.clone()?;
        self.placeholders(&mut b);
        if b.get("location").is_none() && r.id.types.len() == 1 {
            b["location"] = json!(self.loc);
        }
        Some(b)
    }

    fn children(&self, parent: &Id, kind: &str) -> Vec<&Res> {
        let pk = parent.key();
        self.res
            .values()
            .filter(|r| r.id.kind() == kind && r.id.parent().is_some_and(|p| p.key() == pk))
            .collect()
    }

    fn vnet_body(&mut self, r: &Res) -> (Value, Option<Value>) {
        let key = r.id.key();
        let mut body = self
            .body_of(r)
            .unwrap_or_else(|| json!({"location": self.loc}));
        let mut props: Map<String, Value> = body
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        // (name, properties, emitted)
        let mut subs: Vec<(String, Map<String, Value>, bool)> = props
            .remove("subnets")
            .and_then(|s| s.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|s| {
                Some((
                    s.get("name")?.as_str()?.to_string(),
                    s.get("properties")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default(),
                    true,
                ))
            })
            .collect();
        props.remove("virtualNetworkPeerings");
        let declared: Vec<(String, Option<Value>, bool)> = self
            .children(&r.id, "virtualnetworks/subnets")
            .iter()
            .map(|s| (s.id.name().to_string(), s.body.clone(), s.create))
            .collect();
        for (name, b, create) in declared {
            match subs.iter_mut().find(|s| s.0.eq_ignore_ascii_case(&name)) {
                Some(s) => s.2 &= create,
                None => {
                    let p = b
                        .and_then(|b| b.get("properties").and_then(Value::as_object).cloned())
                        .unwrap_or_default();
                    subs.push((name, p, create));
                }
            }
        }
        let described = nets(
            props
                .get("addressSpace")
                .and_then(|s| s.get("addressPrefixes")),
        );
        let mut space = if described.is_empty() {
            self.space_hints.get(&key).cloned().unwrap_or_default()
        } else {
            described
        };
        // Place the subnets whose prefixes the example gives or implies.
        let mut placed: Vec<Option<Vec<IpNet>>> = Vec::new();
        let mut lens: Vec<u8> = Vec::new();
        for (name, p, _) in &subs {
            let skey = r.id.child("subnets", name).key();
            let gateway = name.eq_ignore_ascii_case("GatewaySubnet");
            let mut want: Vec<IpNet> = p
                .get("addressPrefix")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .into_iter()
                .collect();
            want.extend(nets(p.get("addressPrefixes")));
            if want.is_empty() {
                if let Some(f) = self.subnet_prefix.get(&skey) {
                    want.push(*f);
                } else if let Some(b) = self
                    .ip_hints
                    .get(&skey)
                    .and_then(|h| block(h, if gateway { 27 } else { 24 }))
                {
                    want.push(b);
                }
            }
            let len = want.first().map_or_else(
                || {
                    self.subnet_len
                        .get(&skey)
                        .copied()
                        .unwrap_or(if gateway { 27 } else { 24 })
                },
                |w| w.prefix_len(),
            );
            lens.push(len);
            let clash = want
                .iter()
                .any(|w| placed.iter().flatten().flatten().any(|o| overlaps(o, w)));
            if clash {
                self.notes.push(format!(
                    "subnet {name} of {}: the example's prefix {} overlaps a sibling subnet's (Azure refuses that); the harness gives it a free /{len}",
                    r.id.name(),
                    want.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(", ")
                ));
                want.clear();
            }
            placed.push((!want.is_empty()).then_some(want));
        }
        if space.is_empty() {
            for w in placed.iter().flatten().flatten() {
                let s = if w.prefix_len() > 16 {
                    IpNet::new(w.network(), 16).expect("/16").trunc()
                } else {
                    *w
                };
                if !space
                    .iter()
                    .any(|x| x.contains(&s.network()) && x.prefix_len() <= s.prefix_len())
                {
                    space.push(s);
                }
            }
        }
        if space.is_empty() {
            space.push(self.free_space([10, 200], 16));
        }
        // Invent prefixes for the others, inside the space (widening it when full).
        for i in 0..subs.len() {
            if placed[i].is_some() {
                continue;
            }
            let taken: Vec<IpNet> = placed.iter().flatten().flatten().copied().collect();
            let free = |space: &[IpNet]| {
                space
                    .iter()
                    .filter_map(|s| match s {
                        IpNet::V4(s4) if s4.prefix_len() <= lens[i] => s4
                            .subnets(lens[i])
                            .ok()?
                            .map(IpNet::V4)
                            .find(|c| !taken.iter().any(|t| overlaps(t, c))),
                        _ => None,
                    })
                    .next()
            };
            let got = match free(&space) {
                Some(n) => n,
                None => {
                    let extra = self.free_space([10, 200], 16);
                    space.push(extra);
                    free(&space).expect("a fresh /16 has room")
                }
            };
            placed[i] = Some(vec![got]);
        }
        let mut out = Vec::new();
        for ((name, mut p, emit), pl) in subs.into_iter().zip(placed) {
            if !emit {
                continue;
            }
            let pl = pl.expect("placed");
            if p.contains_key("addressPrefixes") && !p.contains_key("addressPrefix") {
                p.insert(
                    "addressPrefixes".into(),
                    json!(pl.iter().map(|n| n.to_string()).collect::<Vec<_>>()),
                );
            } else {
                p.insert("addressPrefix".into(), json!(pl[0].to_string()));
            }
            if let Some(rt) = self
                .subnet_route_table
                .get(&r.id.child("subnets", &name).key())
            {
                p.insert("routeTable".into(), json!({"id": rt}));
            }
            out.push(json!({"name": name, "properties": p}));
        }
        props.insert("subnets".into(), Value::Array(out));
        if let Some(c) = self.community.get(&key) {
            props.insert(
                "bgpCommunities".into(),
                json!({"virtualNetworkCommunity": c}),
            );
        }
        let full = space.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        props.insert("addressSpace".into(), json!({"addressPrefixes": full}));
        body["properties"] = Value::Object(props);
        if self.half_space.contains(&key) {
            let mut first = body.clone();
            let halves: Vec<String> = space
                .iter()
                .map(|n| {
                    if n.prefix_len() < n.max_prefix_len() {
                        n.subnets(n.prefix_len() + 1)
                            .expect("half")
                            .next()
                            .expect("half")
                            .to_string()
                    } else {
                        n.to_string()
                    }
                })
                .collect();
            first["properties"]["addressSpace"]["addressPrefixes"] = json!(halves);
            return (first, Some(body));
        }
        (body, None)
    }

    fn gateway_body(&mut self, r: &Res) -> Value {
        let mut body = self.body_of(r).unwrap_or_else(|| {
            let subnet = r.id.sibling("virtualNetworks", &format!("{}-vnet", r.id.name())).child("subnets", "GatewaySubnet");
            let pip = r.id.sibling("publicIPAddresses", &format!("{}-pip", r.id.name()));
            json!({"location": self.loc, "properties": {
                "gatewayType": "Vpn", "vpnType": "RouteBased", "sku": {"name": "VpnGw1", "tier": "VpnGw1"},
                "ipConfigurations": [{"name": "default", "properties": {"subnet": {"id": subnet.text()}, "publicIPAddress": {"id": pip.text()}}}]}})
        });
        for (name, mode) in self.nat_rules.get(&r.id.key()).cloned().unwrap_or_default() {
            let rules = body["properties"]
                .as_object_mut()
                .expect("properties")
                .entry("natRules")
                .or_insert(json!([]));
            if !rules.as_array().into_iter().flatten().any(|x| {
                x.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(&name))
            }) {
                rules.as_array_mut().expect("natRules array").push(json!({"name": name, "properties": {
                    "type": "Static", "mode": mode,
                    "internalMappings": [{"addressSpace": "192.0.2.0/26"}], "externalMappings": [{"addressSpace": "192.0.2.64/26"}]}}));
            }
        }
        body
    }

    fn nic_body(&mut self, r: &Res) -> Value {
        if let Some(mut b) = self.body_of(r) {
            // Azure keeps all IP configurations of a NIC in one VNet: drop the others.
            let vnet_of = |c: &Value| {
                c.get("properties")
                    .and_then(|p| ref_id(p, "subnet"))
                    .and_then(Id::parse)
                    .and_then(|s| s.parent())
                    .map(|v| v.key())
            };
            if let Some(cfgs) = b
                .get_mut("properties")
                .and_then(|p| p.get_mut("ipConfigurations"))
                .and_then(Value::as_array_mut)
            {
                let first = cfgs.first().and_then(vnet_of);
                let before = cfgs.len();
                cfgs.retain(|c| vnet_of(c) == first || vnet_of(c).is_none());
                if cfgs.len() != before {
                    self.notes.push(format!(
                        "NIC {}: the example puts its IP configurations in different VNets (Azure refuses that); the harness creates only those in the first one's VNet",
                        r.id.name()
                    ));
                }
            }
            return b;
        }
        let subnet = self
            .nic_subnet
            .get(&r.id.key())
            .cloned()
            .unwrap_or_default();
        let cfgs = self
            .nic_configs
            .get(&r.id.key())
            .cloned()
            .unwrap_or_else(|| vec![NicConfig::new("ipconfig1", None)]);
        let cfgs: Vec<Value> = cfgs
            .into_iter()
            .map(|c| {
                let mut p = json!({"subnet": {"id": subnet}});
                if let Some(pip) = c.public_ip {
                    p["publicIPAddress"] = json!({"id": pip});
                }
                if let Some(ip) = c.address {
                    p["privateIPAllocationMethod"] = json!("Static");
                    p["privateIPAddress"] = json!(ip);
                }
                json!({"name": c.name, "properties": p})
            })
            .collect();
        json!({"location": self.loc, "properties": {"ipConfigurations": cfgs}})
    }

    fn build(mut self) -> (Vec<Step>, Vec<String>) {
        let mut steps: Vec<Step> = self
            .groups
            .values()
            .map(|g| Step {
                method: "PUT",
                path: g.clone(),
                body: json!({"location": "westus"}),
                wait: false,
            })
            .collect();
        let mut widen = Vec::new();
        let keys: Vec<String> = self.res.keys().cloned().collect();
        for kind in ORDER {
            for k in &keys {
                let r = &self.res[k];
                if r.id.kind() != kind || !r.create {
                    continue;
                }
                let r = Res {
                    id: r.id.clone(),
                    body: r.body.clone(),
                    create: true,
                };
                let path = r.id.text();
                let wait = matches!(
                    kind,
                    "virtualnetworkgateways" | "localnetworkgateways" | "connections"
                );
                let body = match kind {
                    "virtualnetworks" => {
                        let (first, full) = self.vnet_body(&r);
                        if let Some(full) = full {
                            widen.push(Step { method: "PUT", path: path.clone(), body: full, wait: false });
                        }
                        first
                    }
                    "virtualnetworkgateways" => self.gateway_body(&r),
                    "networkinterfaces" => self.nic_body(&r),
                    "virtualnetworks/virtualnetworkpeerings" => self
                        .body_of(&r)
                        .unwrap_or_else(|| json!({"properties": {"remoteVirtualNetwork": {"id": Self::generic_remote(&r.id).text()}}})),
                    "routetables" => {
                        let mut b = self.body_of(&r).unwrap_or_else(|| json!({"location": self.loc, "properties": {}}));
                        let mut routes: Vec<Value> = b["properties"].get("routes").and_then(Value::as_array).cloned().unwrap_or_default();
                        let declared: Vec<(String, Option<Value>, bool)> =
                            self.children(&r.id, "routetables/routes").iter().map(|c| (c.id.name().to_string(), c.body.clone(), c.create)).collect();
                        for (i, (name, rb, create)) in declared.into_iter().enumerate() {
                            if !create || routes.iter().any(|x| x.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(&name))) {
                                continue;
                            }
                            let p = rb.and_then(|b| b.get("properties").cloned()).unwrap_or_else(|| json!({"addressPrefix": format!("10.250.{i}.0/24"), "nextHopType": "VnetLocal"}));
                            routes.push(json!({"name": name, "properties": p}));
                        }
                        routes.extend(self.extra_routes.get(k).cloned().unwrap_or_default());
                        b["properties"]["routes"] = Value::Array(routes);
                        b
                    }
                    "localnetworkgateways" => self.body_of(&r).unwrap_or_else(|| {
                        let space = self.free_space([192, 168], 24);
                        self.placeholders += 1;
                        json!({"location": self.loc, "properties": {
                            "gatewayIpAddress": format!("198.51.100.{}", self.placeholders),
                            "localNetworkAddressSpace": {"addressPrefixes": [space.to_string()]}}})
                    }),
                    "connections" => {
                        let mut b = self.body_of(&r).unwrap_or_else(|| {
                            json!({"location": self.loc, "properties": {"connectionType": "IPsec",
                                "virtualNetworkGateway1": {"id": r.id.sibling("virtualNetworkGateways", &format!("{}-gw", r.id.name())).text()},
                                "localNetworkGateway2": {"id": r.id.sibling("localNetworkGateways", &format!("{}-lng", r.id.name())).text()}}})
                        });
                        if let Some(k) = self.shared_key.get(&r.id.key()) {
                            b["properties"]["sharedKey"] = json!(k);
                        }
                        b
                    }
                    "publicipaddresses" => self
                        .body_of(&r)
                        .unwrap_or_else(|| json!({"location": self.loc, "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}})),
                    _ => self.body_of(&r).unwrap_or_else(|| json!({"location": self.loc})),
                };
                steps.push(Step {
                    method: "PUT",
                    path,
                    body,
                    wait,
                });
            }
        }
        steps.extend(self.sync_peering.take());
        steps.extend(widen);
        (steps, self.notes)
    }
}

/// The prerequisites of an example and its request body.
pub fn setup(op: &Op, ex: &Value) -> Setup {
    let params = &ex["parameters"];
    let responses = &ex["responses"];
    let ok = responses.get("200").and_then(|r| r.get("body"));
    let mut request = op.body.and_then(|b| params.get(b)).cloned();
    let loc = request
        .as_ref()
        .and_then(|b| b.get("location"))
        .or_else(|| params.get("location"))
        .and_then(Value::as_str)
        .unwrap_or("westus");
    let mut w = World {
        loc: loc.to_string(),
        ..Default::default()
    };
    if let Some(b) = request.as_mut() {
        w.placeholders(b);
    }
    w.scan_hints(params);
    w.scan_hints(responses);
    if let (Some(s), Some(g)) = (
        params.get("subscriptionId").and_then(Value::as_str),
        params.get("resourceGroupName").and_then(Value::as_str),
    ) {
        w.need(&format!("/subscriptions/{s}/resourceGroups/{g}"));
    }
    // Every resource group an id names exists.
    fn groups(w: &mut World, v: &Value) {
        match v {
            Value::String(s) => {
                if let Some(i) = Id::parse(s).or_else(|| {
                    let p: Vec<&str> = s.splitn(6, '/').collect();
                    (p.len() >= 5)
                        .then(|| Id::parse(&p[..5].join("/")))
                        .flatten()
                }) {
                    w.groups
                        .entry(i.group().to_ascii_lowercase())
                        .or_insert_with(|| i.group());
                }
            }
            Value::Object(m) => m.values().for_each(|x| groups(w, x)),
            Value::Array(a) => a.iter().for_each(|x| groups(w, x)),
            _ => {}
        }
    }
    groups(&mut w, ex);
    let target = op.target(params);
    match op.kind {
        OpKind::Create => {
            if let (Some(t), Some(b)) = (&target, &request) {
                w.describe(t, b, false);
            }
        }
        OpKind::List => {
            if let Some(t) = &target {
                w.need(t);
            }
            let items = ok
                .and_then(|b| b.get("value"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for it in items {
                if let Some(id) = it.get("id").and_then(Value::as_str) {
                    w.describe(id, &it, true);
                }
            }
        }
        _ => {
            if let Some(t) = &target {
                let describes = ok
                    .and_then(|b| b.get("id"))
                    .and_then(Value::as_str)
                    .is_some_and(|id| id.eq_ignore_ascii_case(t));
                match (describes, ok) {
                    (true, Some(b)) => {
                        let mut b = b.clone();
                        if op.kind == OpKind::UpdateTags {
                            if let Some(o) = b.as_object_mut() {
                                o.remove("tags");
                            }
                        }
                        w.describe(t, &b, true);
                    }
                    _ => w.need(t),
                }
            }
        }
    }
    if let (Some(t), Some(b)) = (target.as_ref().and_then(|t| Id::parse(t)), &request) {
        if op.kind != OpKind::Create {
            w.scan_refs(&t, b);
        }
    }
    w.op_hints(op, params, ok, request.as_ref());
    w.expand();
    let (steps, notes) = w.build();
    Setup {
        steps,
        notes,
        body: request,
    }
}
