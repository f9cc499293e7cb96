//! The forwarder against a reference model written straight from the rules and the stored
//! documents (not from the compiled tables), on random topologies and packets.

use super::*;
use model::doc::{self, props};
use model::State;
use plan::testkit::{self, World};
use plan::Binding;
use proptest::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub fn v4_packet(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, len: usize, df: bool) -> Vec<u8> {
    let len = len.max(28);
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[6] = if df { 0x40 } else { 0 };
    p[8] = ttl;
    p[9] = 17;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = icmp::checksum(0, &p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&4000u16.to_be_bytes());
    p[22..24].copy_from_slice(&5000u16.to_be_bytes());
    p[24..26].copy_from_slice(&((len - 20) as u16).to_be_bytes());
    p
}

pub fn v6_packet(src: Ipv6Addr, dst: Ipv6Addr, hops: u8, len: usize) -> Vec<u8> {
    let len = len.max(48);
    let mut p = vec![0u8; len];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
    p[6] = 17;
    p[7] = hops;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p
}

struct NicDoc {
    key: String,
    vnet: String,
    addrs: Vec<IpAddr>,
    forwarding: bool,
}

fn nic_docs(st: &State) -> Vec<NicDoc> {
    let mut out = Vec::new();
    for (k, d) in st.scan("/subscriptions/") {
        if !k.contains("/networkinterfaces/") {
            continue;
        }
        let p = props(d);
        let cfgs = p["ipConfigurations"].as_array().unwrap();
        let sk = doc::ref_key(props(&cfgs[0]), "subnet").unwrap();
        let vnet = sk[..sk.find("/subnets/").unwrap()].to_string();
        out.push(NicDoc {
            key: k.clone(),
            vnet,
            addrs: cfgs
                .iter()
                .filter_map(|c| {
                    doc::get_str(props(c), "privateIPAddress").and_then(|s| s.parse().ok())
                })
                .collect(),
            forwarding: doc::get_bool(p, "enableIPForwarding", false),
        })
    }
    out
}

#[derive(Debug, PartialEq, Eq)]
enum Exp {
    Forward(String),
    Drop(DropReason),
}

fn space_of(st: &State, vnet: &str) -> Vec<ipnet::IpNet> {
    st.get(vnet).map(doc::vnet_space).unwrap_or_default()
}

/// Connected link from `vnet` to a VNet whose space contains `a`: (remote, access, forwarded).
fn peer_for(st: &State, vnet: &str, a: IpAddr) -> Option<(String, bool, bool)> {
    for (_, l) in st.scan(&format!("{vnet}/virtualnetworkpeerings/")) {
        let lp = props(l);
        if doc::get_str(lp, "peeringState") != Some("Connected") {
            continue;
        }
        let remote = doc::ref_key(lp, "remoteVirtualNetwork").unwrap();
        if !space_of(st, &remote).iter().any(|n| n.contains(&a)) {
            continue;
        }
        let rev = st
            .scan(&format!("{remote}/virtualnetworkpeerings/"))
            .find(|(_, r)| doc::ref_key(props(r), "remoteVirtualNetwork").as_deref() == Some(vnet))
            .map(|(_, r)| r.clone());
        let (access, fwd) = match &rev {
            Some(r) if doc::get_str(props(r), "peeringState") == Some("Connected") => (
                doc::get_bool(lp, "allowVirtualNetworkAccess", true)
                    && doc::get_bool(props(r), "allowVirtualNetworkAccess", true),
                doc::get_bool(props(r), "allowForwardedTraffic", false),
            ),
            _ => (false, false),
        };
        return Some((remote, access, fwd));
    }
    None
}

#[allow(clippy::too_many_arguments)]
fn reference(
    st: &State,
    bound: &BTreeMap<String, u16>,
    ingress: &str,
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    len: usize,
) -> Exp {
    let nics = nic_docs(st);
    let me = nics.iter().find(|n| n.key == ingress).unwrap();
    let is_mc = match dst {
        IpAddr::V4(a) => a.is_multicast() || a.is_broadcast(),
        IpAddr::V6(a) => a.is_multicast(),
    };
    if is_mc {
        return Exp::Drop(DropReason::Multicast);
    }
    if !me.forwarding && !me.addrs.contains(&src) {
        return Exp::Drop(DropReason::Spoofed);
    }
    let routes = model::routes::effective_routes(st, ingress).unwrap();
    let best = routes
        .iter()
        .filter(|r| r.active)
        .filter_map(|r| r.net().map(|n| (n, r)))
        .filter(|(n, _)| n.contains(&dst))
        .max_by_key(|(n, _)| n.prefix_len());
    let Some((_, r)) = best else {
        return Exp::Drop(DropReason::NoRoute);
    };
    let owner =
        |vnet: &str, a: IpAddr| nics.iter().find(|n| n.vnet == vnet && n.addrs.contains(&a));
    let own_space = space_of(st, &me.vnet);
    let check_peer = |access: bool, fwd: bool| -> Option<DropReason> {
        if !access {
            return Some(DropReason::PeeringAccess);
        }
        if !fwd && !own_space.iter().any(|n| n.contains(&src)) {
            return Some(DropReason::ForwardedTraffic);
        }
        None
    };
    let target = match r.next_hop_type.as_str() {
        "VnetLocal" => match owner(&me.vnet, dst) {
            Some(n) => n,
            None => return Exp::Drop(DropReason::NoSuchHost),
        },
        "VNetPeering" => {
            let (remote, access, fwd) = peer_for(st, &me.vnet, dst).unwrap();
            let Some(n) = owner(&remote, dst) else {
                return Exp::Drop(DropReason::NoSuchHost);
            };
            if let Some(r) = check_peer(access, fwd) {
                return Exp::Drop(r);
            }
            n
        }
        "VirtualAppliance" => {
            let ip: IpAddr = r.next_hop_ips[0].parse().unwrap();
            if own_space.iter().any(|n| n.contains(&ip)) {
                match owner(&me.vnet, ip) {
                    Some(n) => n,
                    None => return Exp::Drop(DropReason::ApplianceUnreachable),
                }
            } else {
                let Some((remote, access, fwd)) = peer_for(st, &me.vnet, ip) else {
                    return Exp::Drop(DropReason::ApplianceUnreachable);
                };
                let Some(n) = owner(&remote, ip) else {
                    return Exp::Drop(DropReason::ApplianceUnreachable);
                };
                if let Some(r) = check_peer(access, fwd) {
                    return Exp::Drop(r);
                }
                n
            }
        }
        "None" => return Exp::Drop(DropReason::RouteNone),
        "VirtualNetworkGateway" => return Exp::Drop(DropReason::Gateway),
        _ => return Exp::Drop(DropReason::NoRoute),
    };
    if !target.forwarding && !target.addrs.contains(&dst) {
        return Exp::Drop(DropReason::NotForwarding);
    }
    let Some(&mtu) = bound.get(&target.key) else {
        return Exp::Drop(DropReason::Unbound);
    };
    if ttl <= 1 {
        return Exp::Drop(DropReason::TtlExceeded);
    }
    if len > usize::from(mtu) {
        return Exp::Drop(DropReason::TooBig);
    }
    Exp::Forward(target.key.clone())
}

fn run(t: &HostTables, ingress: &str, pkt: &mut [u8]) -> Exp {
    let i = t.nic_by_key(ingress).unwrap();
    let mut reply = [0u8; REPLY_BUF];
    match process(t, i, pkt, 0, &mut reply) {
        Verdict::Forward(n) | Verdict::Fragment { nic: n, .. } => {
            Exp::Forward(t.nics[n as usize].key.clone())
        }
        Verdict::Reply { reason, .. } | Verdict::Drop(reason) => Exp::Drop(reason),
    }
}

fn binding(mtu: u16) -> Binding {
    Binding {
        netns: "x".into(),
        managed: false,
        ifname: None,
        mtu: Some(mtu),
    }
}

fn bind_all(w: &World) -> BTreeMap<String, Binding> {
    nic_docs(&w.st)
        .into_iter()
        .map(|n| (n.key, binding(1500)))
        .collect()
}

fn k(n: &str) -> String {
    testkit::key(&testkit::nic_id(n))
}

fn ip4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

use plan::testkit::chain;

#[test]
fn within_across_and_isolation() {
    let w = chain();
    let t = plan::compile(&w.st, &bind_all(&w), 1);
    let f = |from: &str, s: &str, d: &str| {
        run(&t, &k(from), &mut v4_packet(ip4(s), ip4(d), 64, 100, true))
    };
    assert_eq!(
        f("a1", "10.1.1.4", "10.1.2.4"),
        Exp::Forward(k("a2")),
        "across subnets"
    );
    assert_eq!(
        f("a1", "10.1.1.4", "10.2.1.4"),
        Exp::Forward(k("b1")),
        "across the peering"
    );
    assert_eq!(
        f("b1", "10.2.1.4", "10.1.1.4"),
        Exp::Forward(k("a1")),
        "the way back"
    );
    assert_eq!(
        f("a1", "10.1.1.4", "10.3.1.4"),
        Exp::Drop(DropReason::RouteNone),
        "not transitive"
    );
    assert_eq!(
        f("d1", "10.1.1.4", "10.1.2.4"),
        Exp::Forward(k("d2")),
        "overlapping VNet keeps to itself"
    );
    assert_eq!(
        f("a1", "10.1.1.5", "10.1.2.4"),
        Exp::Drop(DropReason::Spoofed)
    );
    assert_eq!(
        f("a1", "10.1.1.4", "10.1.2.9"),
        Exp::Drop(DropReason::NoSuchHost)
    );
    assert_eq!(
        f("a1", "10.1.1.4", "224.0.0.251"),
        Exp::Drop(DropReason::Multicast)
    );
    assert_eq!(
        f("a1", "10.1.1.4", "8.8.8.8"),
        Exp::Drop(DropReason::NoRoute)
    );
}

#[test]
fn ttl_is_decremented_and_checksum_stays_valid() {
    let w = chain();
    let t = plan::compile(&w.st, &bind_all(&w), 1);
    let mut p = v4_packet(ip4("10.1.1.4"), ip4("10.2.1.4"), 64, 100, true);
    assert_eq!(run(&t, &k("a1"), &mut p), Exp::Forward(k("b1")));
    assert_eq!(p[8], 63);
    assert_eq!(icmp::checksum(0, &p[..20]), 0, "header checksum verifies");
}

#[test]
fn icmp_errors() {
    let w = chain();
    let mut b = bind_all(&w);
    b.insert(k("a2"), binding(1280));
    let t = plan::compile(&w.st, &b, 1);
    let a1 = t.nic_by_key(&k("a1")).unwrap();
    let mut reply = [0u8; REPLY_BUF];
    // TTL 1 → time exceeded from the subnet gateway.
    let mut p = v4_packet(ip4("10.1.1.4"), ip4("10.1.2.4"), 1, 100, true);
    let Verdict::Reply { reason, len } = process(&t, a1, &mut p, 0, &mut reply) else {
        panic!()
    };
    assert_eq!(reason, DropReason::TtlExceeded);
    let r = &reply[..len];
    assert_eq!((r[9], r[20], r[21]), (1, 11, 0));
    assert_eq!(&r[12..16], &[10, 1, 1, 1]);
    assert_eq!(&r[16..20], &[10, 1, 1, 4]);
    assert_eq!(icmp::checksum(0, &r[..20]), 0);
    assert_eq!(icmp::checksum(0, &r[20..]), 0);
    assert_eq!(&r[28..48], &p[..20], "quotes the original header");
    // Too big for a2 (MTU 1280), DF set → fragmentation needed with the MTU.
    let mut p = v4_packet(ip4("10.1.1.4"), ip4("10.1.2.4"), 64, 1400, true);
    let Verdict::Reply { reason, len } = process(&t, a1, &mut p, 0, &mut reply) else {
        panic!()
    };
    assert_eq!(reason, DropReason::TooBig);
    assert_eq!(
        (
            reply[20],
            reply[21],
            u16::from_be_bytes([reply[26], reply[27]])
        ),
        (3, 4, 1280)
    );
    assert!(len <= 576);
    // A GSO super-packet whose segments fit passes.
    let mut p = v4_packet(ip4("10.1.1.4"), ip4("10.1.2.4"), 64, 30000, true);
    assert_eq!(
        process(&t, a1, &mut p, 1200, &mut reply),
        Verdict::Forward(t.nic_by_key(&k("a2")).unwrap())
    );
    // IPv6: hop limit and packet too big.
    let s6: Ipv6Addr = "fd00:1:0:1::4".parse().unwrap();
    let d6: Ipv6Addr = "fd00:2:0:1::4".parse().unwrap();
    let mut p = v6_packet(s6, d6, 64, 200);
    assert_eq!(run(&t, &k("a1"), &mut p), Exp::Forward(k("b1")));
    assert_eq!(p[7], 63);
    let mut p = v6_packet(s6, d6, 1, 200);
    let Verdict::Reply { len, .. } = process(&t, a1, &mut p, 0, &mut reply) else {
        panic!()
    };
    assert_eq!(reply[40], 3);
    let mut sum = 0u32;
    for c in reply[8..40].chunks_exact(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    sum += (len as u32 - 40) + 58;
    assert_eq!(
        icmp::checksum(sum, &reply[40..len]),
        0,
        "ICMPv6 checksum verifies"
    );
    let a1v6: Ipv6Addr = "fd00:1:0:1::1".parse().unwrap();
    assert_eq!(&reply[8..24], &a1v6.octets());
    // No error about an error.
    let mut p = v4_packet(ip4("10.1.1.4"), ip4("10.1.2.4"), 1, 100, true);
    p[9] = 1;
    p[20] = 3;
    assert_eq!(
        process(&t, a1, &mut p, 0, &mut reply),
        Verdict::Drop(DropReason::TtlExceeded)
    );
}

#[test]
fn peering_flags_and_appliances() {
    let mut w = chain();
    // NVA in b (b2, forwarding); a routes c's space through it; c routes a's space through it.
    w.nic("b2", "b", "s2", Some("10.2.2.4"), None, true)
        .unwrap();
    w.route_table("rta").unwrap();
    w.route(
        "rta",
        "to-c",
        "10.3.0.0/16",
        "VirtualAppliance",
        Some("10.2.2.4"),
    )
    .unwrap();
    w.subnet("a", "s1", &["10.1.1.0/24", "fd00:1:0:1::/64"], Some("rta"))
        .unwrap();
    let t = plan::compile(&w.st, &bind_all(&w), 1);
    let f = |t: &HostTables, from: &str, s: &str, d: &str| {
        run(t, &k(from), &mut v4_packet(ip4(s), ip4(d), 64, 100, true))
    };
    assert_eq!(
        f(&t, "a1", "10.1.1.4", "10.3.1.4"),
        Exp::Forward(k("b2")),
        "to the appliance"
    );
    // The appliance forwards a's packet to c: forwarded traffic, c's link does not allow it.
    assert_eq!(
        f(&t, "b2", "10.1.1.4", "10.3.1.4"),
        Exp::Drop(DropReason::ForwardedTraffic)
    );
    w.link("c", "b", true, true).unwrap();
    let t = plan::compile(&w.st, &bind_all(&w), 2);
    assert_eq!(f(&t, "b2", "10.1.1.4", "10.3.1.4"), Exp::Forward(k("c1")));
    // A NIC without forwarding may not send for others, nor receive for others.
    assert_eq!(
        f(&t, "b1", "10.1.1.4", "10.3.1.4"),
        Exp::Drop(DropReason::Spoofed)
    );
    w.nic("b2", "b", "s2", Some("10.2.2.4"), None, false)
        .unwrap();
    let t = plan::compile(&w.st, &bind_all(&w), 3);
    assert_eq!(
        f(&t, "a1", "10.1.1.4", "10.3.1.4"),
        Exp::Drop(DropReason::NotForwarding)
    );
    // allowVirtualNetworkAccess=false on one side blocks both directions.
    w.link("b", "a", false, false).unwrap();
    let t = plan::compile(&w.st, &bind_all(&w), 4);
    assert_eq!(
        f(&t, "a1", "10.1.1.4", "10.2.1.4"),
        Exp::Drop(DropReason::PeeringAccess)
    );
    assert_eq!(
        f(&t, "b1", "10.2.1.4", "10.1.1.4"),
        Exp::Drop(DropReason::PeeringAccess)
    );
    // Deleting one link: the other is Disconnected, no route either way.
    w.unlink("a", "b").unwrap();
    let t = plan::compile(&w.st, &bind_all(&w), 5);
    assert_eq!(
        f(&t, "b1", "10.2.1.4", "10.1.1.4"),
        Exp::Drop(DropReason::RouteNone)
    );
}

#[derive(Debug, Clone)]
struct Topo {
    c_overlaps_a: bool,
    forwarding: [bool; 6],
    links: Vec<(usize, usize, bool, bool)>,
    routes: Vec<(usize, u8, u8, usize)>,
    bound: [Option<u16>; 6],
}

fn arb_topo() -> impl Strategy<Value = Topo> {
    (
        any::<bool>(),
        proptest::array::uniform6(any::<bool>()),
        proptest::collection::vec((0usize..3, 0usize..3, any::<bool>(), any::<bool>()), 0..6),
        proptest::collection::vec((0usize..3, 0u8..5, 0u8..4, 0usize..6), 0..5),
        proptest::array::uniform6(proptest::option::weighted(0.85, 1280u16..=1500)),
    )
        .prop_map(|(c_overlaps_a, forwarding, links, routes, bound)| Topo {
            c_overlaps_a,
            forwarding,
            links,
            routes,
            bound,
        })
}

const NAMES: [&str; 3] = ["a", "b", "c"];

fn octet(t: &Topo, v: usize) -> u8 {
    if v == 2 && t.c_overlaps_a {
        1
    } else {
        v as u8 + 1
    }
}

fn build(
    t: &Topo,
) -> (
    World,
    BTreeMap<String, Binding>,
    BTreeMap<String, u16>,
    Vec<Ipv4Addr>,
) {
    let mut w = World::new();
    for v in 0..3 {
        w.route_table(&format!("rt{v}")).unwrap();
    }
    let mut ips = Vec::new();
    for (v, name) in NAMES.iter().enumerate() {
        let o = octet(t, v);
        w.vnet(name, &[&format!("10.{o}.0.0/16")]).unwrap();
        w.subnet(
            name,
            "s1",
            &[&format!("10.{o}.1.0/24")],
            Some(&format!("rt{v}")),
        )
        .unwrap();
        w.subnet(name, "s2", &[&format!("10.{o}.2.0/24")], None)
            .unwrap();
        for s in 1..=2 {
            let ip = format!("10.{o}.{s}.4");
            w.nic(
                &format!("{name}{s}"),
                name,
                &format!("s{s}"),
                Some(&ip),
                None,
                t.forwarding[v * 2 + s - 1],
            )
            .unwrap();
            ips.push(ip4(&ip));
        }
    }
    for &(x, y, access, fwd) in &t.links {
        if x != y {
            let _ = w.link(NAMES[x], NAMES[y], access, fwd);
        }
    }
    let hops = [
        "None",
        "VirtualAppliance",
        "VnetLocal",
        "Internet",
        "VirtualAppliance",
    ];
    for (i, &(v, h, p, nva)) in t.routes.iter().enumerate() {
        let prefix = match p {
            0 => format!("10.{}.0.0/16", octet(t, (v + 1) % 3)),
            1 => format!("10.{}.2.0/24", octet(t, v)),
            2 => "10.0.0.0/8".to_string(),
            _ => format!("10.{}.2.4/32", octet(t, (v + 2) % 3)),
        };
        let hop = hops[h as usize];
        let ip = ips[nva].to_string();
        let _ = w.route(
            &format!("rt{v}"),
            &format!("r{i}"),
            &prefix,
            hop,
            (hop == "VirtualAppliance").then_some(ip.as_str()),
        );
    }
    let mut b = BTreeMap::new();
    let mut mtus = BTreeMap::new();
    for (i, n) in ["a1", "a2", "b1", "b2", "c1", "c2"].iter().enumerate() {
        if let Some(m) = t.bound[i] {
            b.insert(k(n), binding(m));
            mtus.insert(k(n), m);
        }
    }
    (w, b, mtus, ips)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn same_verdict_as_the_reference_model(
        topo in arb_topo(),
        packets in proptest::collection::vec((0usize..6, 0usize..9, 0usize..11, prop_oneof![Just(1u8), Just(2u8), Just(64u8)], 28usize..1600), 1..24),
    ) {
        let (w, b, mtus, ips) = build(&topo);
        let t = plan::compile(&w.st, &b, 1);
        let names = ["a1", "a2", "b1", "b2", "c1", "c2"];
        let mut pool = ips.clone();
        pool.extend([ip4("10.9.9.9"), ip4("10.1.1.99"), ip4("10.2.3.1"), ip4("224.0.0.5"), ip4("192.168.7.7")]);
        for (n, s, d, ttl, len) in packets {
            let src = pool[s % pool.len()];
            let dst = pool[d % pool.len()];
            let ingress = k(names[n]);
            let want = reference(&w.st, &mtus, &ingress, IpAddr::V4(src), IpAddr::V4(dst), ttl, len);
            let got = run(&t, &ingress, &mut v4_packet(src, dst, ttl, len, true));
            prop_assert_eq!(got, want, "from {} {} -> {} ttl {} len {}", names[n], src, dst, ttl, len);
        }
    }
}

#[test]
fn state_json_is_unchanged_by_compiling() {
    let w = chain();
    let before: Vec<(String, Value)> =
        w.st.scan("/")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    let _ = plan::compile(&w.st, &bind_all(&w), 1);
    let after: Vec<(String, Value)> =
        w.st.scan("/")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    assert_eq!(before, after);
}

/// Reassembles IPv4 fragments by offset (RFC 815 style, holes not allowed); returns the
/// payload and whether the last fragment kept MF.
fn reassemble(frags: &[Vec<u8>]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut last_mf = false;
    for f in frags {
        let hl = usize::from(f[0] & 0xf) * 4;
        let word = u16::from_be_bytes([f[6], f[7]]);
        let off = usize::from(word & 0x1fff) * 8;
        assert_eq!(off, out.len(), "fragments in order, without holes");
        out.extend_from_slice(&f[hl..]);
        last_mf = word & 0x2000 != 0;
    }
    (out, last_mf)
}

fn fragments(pkt: &[u8], mtu: u16) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; usize::from(mtu)];
    let mut off = 0;
    let mut v = Vec::new();
    while let Some((len, next)) = frag::v4_fragment(pkt, mtu, off, &mut buf) {
        v.push(buf[..len].to_vec());
        off = next;
    }
    v
}

#[test]
fn non_df_packets_are_fragmented_and_reassemble() {
    let w = chain();
    let mut b = bind_all(&w);
    b.insert(k("a2"), binding(1280));
    let t = plan::compile(&w.st, &b, 1);
    let a1 = t.nic_by_key(&k("a1")).unwrap();
    let a2 = t.nic_by_key(&k("a2")).unwrap();
    let mut reply = [0u8; REPLY_BUF];
    // Without DF: fragment for a2's MTU, TTL decremented first.
    let mut p = v4_packet(ip4("10.1.1.4"), ip4("10.1.2.4"), 64, 3001, false);
    for (i, x) in p[28..].iter_mut().enumerate() {
        *x = (i * 7 + 3) as u8;
    }
    assert_eq!(
        process(&t, a1, &mut p, 0, &mut reply),
        Verdict::Fragment { nic: a2, mtu: 1280 }
    );
    assert_eq!(p[8], 63);
    assert_eq!(icmp::checksum(0, &p[..20]), 0);
    for mtu in [1280u16, 576, 68] {
        let fr = fragments(&p, mtu);
        assert!(fr.len() >= 3, "mtu {mtu}: {} fragments", fr.len());
        for (i, f) in fr.iter().enumerate() {
            assert!(f.len() <= usize::from(mtu));
            assert_eq!(usize::from(u16::from_be_bytes([f[2], f[3]])), f.len());
            assert_eq!(icmp::checksum(0, &f[..20]), 0, "header checksum");
            assert_eq!(f[6] & 0x40, 0, "no DF");
            assert_eq!(&f[8..10], &p[8..10], "TTL and protocol");
            assert_eq!(&f[4..6], &p[4..6], "identification");
            assert_eq!(&f[12..20], &p[12..20], "addresses");
            if i + 1 < fr.len() {
                assert_eq!((f.len() - 20) % 8, 0, "payload a multiple of 8");
            }
        }
        let (payload, mf) = reassemble(&fr);
        assert_eq!(payload, &p[20..], "mtu {mtu}");
        assert!(!mf);
    }
    // Too small an MTU for any payload: nothing.
    assert_eq!(frag::v4_fragment(&p, 24, 0, &mut [0u8; 64]), None);
    // With DF: fragmentation needed, as before.
    let mut p = v4_packet(ip4("10.1.1.4"), ip4("10.1.2.4"), 64, 3001, true);
    assert!(matches!(
        process(&t, a1, &mut p, 0, &mut reply),
        Verdict::Reply {
            reason: DropReason::TooBig,
            ..
        }
    ));
    // A non-DF packet that fits is forwarded whole.
    let mut p = v4_packet(ip4("10.1.1.4"), ip4("10.1.2.4"), 64, 1280, false);
    assert_eq!(process(&t, a1, &mut p, 0, &mut reply), Verdict::Forward(a2));
}

#[test]
fn fragmenting_a_fragment_with_options() {
    // 28-byte header: a non-copied option (0x44, timestamp-like) and a copied one (0x94,
    // router alert): later fragments carry only the copied one.
    let payload: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    let mut p = vec![0u8; 28 + payload.len()];
    p[0] = 0x47; // IHL 7: 28 bytes
    let n = p.len() as u16;
    p[2..4].copy_from_slice(&n.to_be_bytes());
    p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    // A fragment itself: MF set, offset 100 (800 bytes).
    p[6..8].copy_from_slice(&(0x2000u16 | 100).to_be_bytes());
    p[8] = 9;
    p[9] = 17;
    p[12..16].copy_from_slice(&[10, 0, 0, 1]);
    p[16..20].copy_from_slice(&[10, 0, 0, 2]);
    p[20..24].copy_from_slice(&[0x44, 4, 5, 0]); // not copied
    p[24..28].copy_from_slice(&[0x94, 4, 0, 0]); // copied
    let c = icmp::checksum(0, &p[..28]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    let n = p.len();
    p[28..n].copy_from_slice(&payload);
    let fr = fragments(&p, 600);
    assert_eq!(
        usize::from(fr[0][0] & 0xf) * 4,
        28,
        "first keeps every option"
    );
    assert_eq!(&fr[0][20..28], &p[20..28]);
    for f in &fr[1..] {
        assert_eq!(
            usize::from(f[0] & 0xf) * 4,
            24,
            "later ones keep copied options"
        );
        assert_eq!(&f[20..24], &[0x94, 4, 0, 0]);
    }
    for f in &fr {
        let hl = usize::from(f[0] & 0xf) * 4;
        assert_eq!(icmp::checksum(0, &f[..hl]), 0);
    }
    let first_off = u16::from_be_bytes([fr[0][6], fr[0][7]]) & 0x1fff;
    assert_eq!(first_off, 100);
    // Offsets relative to the original fragment's.
    let shifted: Vec<Vec<u8>> = fr
        .iter()
        .map(|f| {
            let mut f = f.clone();
            let w = u16::from_be_bytes([f[6], f[7]]);
            f[6..8].copy_from_slice(&((w & 0xe000) | ((w & 0x1fff) - 100)).to_be_bytes());
            f
        })
        .collect();
    let (got, mf) = reassemble(&shifted);
    assert_eq!(got, payload);
    assert!(mf, "the last piece of a non-last fragment keeps MF");
}

#[test]
fn offloaded_checksum_is_completed() {
    let mut p = v4_packet(ip4("10.1.1.4"), ip4("10.1.2.4"), 64, 1000, false);
    for (i, x) in p[28..].iter_mut().enumerate() {
        *x = i as u8;
    }
    // UDP pseudo-header sum in the checksum field, as a sender with checksum offload leaves it.
    let mut sum = 0u32;
    for c in p[12..20].chunks_exact(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    sum += 17 + 980;
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[26..28].copy_from_slice(&(sum as u16).to_be_bytes());
    assert!(frag::complete_checksum(&mut p, 20, 6));
    // Verify: pseudo-header + UDP datagram sums to all ones.
    let mut s = 0u32;
    for c in p[12..20].chunks_exact(2) {
        s += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    s += 17 + 980;
    assert_eq!(icmp::checksum(s, &p[20..]), 0);
    assert!(!frag::complete_checksum(&mut p, 999, 6));
}

/// Offsets from a forged virtio-net header (found by fuzzing): completing the "checksum"
/// at offset 2 once overwrote the total length, a header-only packet came out, and the
/// fragmenting loop never ended — a workload could stop a forwarding worker.
#[test]
fn forged_checksum_offsets_never_touch_the_ip_header() {
    let mut p = v4_packet(ip4("10.1.1.4"), ip4("10.1.2.4"), 64, 1400, false);
    let before = p.clone();
    for (start, off) in [
        (0, 2),
        (2, 0),
        (0, 10),
        (19, 0),
        (18, 1),
        (0, 0),
        (20, usize::MAX),
    ] {
        assert!(
            !frag::complete_checksum(&mut p, start, off),
            "{start}+{off}"
        );
        assert_eq!(p, before, "{start}+{off} wrote");
    }
    let total = p.len();
    assert!(!frag::complete_checksum(&mut p, total, 0), "past the end");
    assert!(
        !frag::complete_checksum(&mut p, 20, total - 21),
        "field straddles the end"
    );
    assert!(
        frag::complete_checksum(&mut p, 20, total - 22),
        "last two bytes"
    );
    // A header-only packet yields no fragment, so `while let` loops end.
    let mut hdr_only = before[..20].to_vec();
    hdr_only[2..4].copy_from_slice(&20u16.to_be_bytes());
    let mut out = [0u8; 1500];
    assert_eq!(frag::v4_fragment(&hdr_only, 1280, 0, &mut out), None);
}
