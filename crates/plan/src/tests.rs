use super::testkit::{self, World};
use super::*;
use proptest::prelude::*;

fn two_vnets() -> World {
    let mut w = World::new();
    w.vnet("a", &["10.1.0.0/16"]).unwrap();
    w.subnet("a", "s1", &["10.1.1.0/24"], None).unwrap();
    w.subnet("a", "s2", &["10.1.2.0/24"], None).unwrap();
    w.vnet("b", &["10.2.0.0/16"]).unwrap();
    w.subnet("b", "s1", &["10.2.1.0/24"], None).unwrap();
    w.nic("a1", "a", "s1", Some("10.1.1.4"), None, false)
        .unwrap();
    w.nic("a2", "a", "s2", Some("10.1.2.4"), None, false)
        .unwrap();
    w.nic("b1", "b", "s1", Some("10.2.1.4"), None, false)
        .unwrap();
    w
}

fn action(t: &HostTables, nic: &str, dst: &str) -> Option<Action> {
    let n = &t.nics[t.nic_by_key(&testkit::key(&testkit::nic_id(nic))).unwrap() as usize];
    t.route_tables[n.routes as usize]
        .lpm
        .lookup(dst.parse().unwrap())
        .map(|(_, a)| *a)
}

#[test]
fn local_and_peering_actions() {
    let mut w = two_vnets();
    let t = compile(&w.st, &BTreeMap::new(), 1);
    assert_eq!(t.nics.len(), 3);
    assert_eq!(action(&t, "a1", "10.1.2.4"), Some(Action::Local));
    assert_eq!(
        action(&t, "a1", "10.2.1.4"),
        Some(Action::Drop(DropReason::RouteNone)),
        "10/8 reserved: None"
    );
    w.link("a", "b", true, false).unwrap();
    let t = compile(&w.st, &BTreeMap::new(), 2);
    assert_eq!(
        action(&t, "a1", "10.2.1.4"),
        Some(Action::Drop(DropReason::RouteNone)),
        "Initiated: no route"
    );
    w.link("b", "a", true, true).unwrap();
    let t = compile(&w.st, &BTreeMap::new(), 3);
    let b = t
        .vnets
        .iter()
        .position(|v| v.key == testkit::key(&testkit::vnet_id("b")))
        .unwrap() as VnetIdx;
    assert_eq!(
        action(&t, "a1", "10.2.1.4"),
        Some(Action::Peer(PeerHop {
            vnet: b,
            access: true,
            forwarded: true
        }))
    );
    let a = t
        .vnets
        .iter()
        .position(|v| v.key == testkit::key(&testkit::vnet_id("a")))
        .unwrap() as VnetIdx;
    assert_eq!(
        action(&t, "b1", "10.1.1.4"),
        Some(Action::Peer(PeerHop {
            vnet: a,
            access: true,
            forwarded: false
        }))
    );
    w.link("b", "a", false, true).unwrap();
    let t = compile(&w.st, &BTreeMap::new(), 4);
    assert_eq!(
        action(&t, "a1", "10.2.1.4"),
        Some(Action::Peer(PeerHop {
            vnet: b,
            access: false,
            forwarded: true
        }))
    );
}

#[test]
fn appliance_and_none_routes() {
    let mut w = two_vnets();
    w.nic("nva", "a", "s2", Some("10.1.2.10"), None, true)
        .unwrap();
    w.route_table("rt").unwrap();
    w.route(
        "rt",
        "to-s2",
        "10.1.2.0/24",
        "VirtualAppliance",
        Some("10.1.2.10"),
    )
    .unwrap();
    w.route("rt", "blackhole", "10.1.3.0/24", "None", None)
        .unwrap();
    w.subnet("a", "s1", &["10.1.1.0/24"], Some("rt")).unwrap();
    let t = compile(&w.st, &BTreeMap::new(), 1);
    let nva = t
        .nic_by_key(&testkit::key(&testkit::nic_id("nva")))
        .unwrap();
    assert_eq!(
        action(&t, "a1", "10.1.2.4"),
        Some(Action::Appliance {
            nic: nva,
            peer: None
        })
    );
    assert_eq!(
        action(&t, "a1", "10.1.3.9"),
        Some(Action::Drop(DropReason::RouteNone))
    );
    assert_eq!(
        action(&t, "a2", "10.1.1.4"),
        Some(Action::Local),
        "the other subnet has no table"
    );
    assert!(t.nics[nva as usize].ip_forwarding);
}

#[test]
fn bindings_and_gateways() {
    let w = two_vnets();
    let mut b = BTreeMap::new();
    let k = testkit::key(&testkit::nic_id("a1"));
    b.insert(
        k.clone(),
        Binding {
            netns: "vm-a1".into(),
            managed: true,
            ifname: None,
            mtu: Some(1400),
        },
    );
    let t = compile(&w.st, &b, 7);
    let n = &t.nics[t.nic_by_key(&k).unwrap() as usize];
    assert_eq!(n.mtu, 1400);
    assert_eq!(n.gw4, "10.1.1.1".parse::<Ipv4Addr>().unwrap());
    assert_eq!(n.binding.as_ref().unwrap().ifname(), "eth0");
    assert_eq!(t.generation, 7);
    assert!(Binding {
        netns: "x/y".into(),
        managed: false,
        ifname: None,
        mtu: None
    }
    .validate()
    .is_err());
    // Names that resolve outside /run/netns (/run/netns/.. is /run) or cannot be paths.
    for bad in [".", "..", "a\0b"] {
        assert!(Binding {
            netns: bad.into(),
            managed: true,
            ifname: None,
            mtu: None
        }
        .validate()
        .is_err());
    }
    assert!(Binding {
        netns: "/proc/1/ns/net".into(),
        managed: false,
        ifname: Some("v0".into()),
        mtu: Some(1280)
    }
    .validate()
    .is_ok());
}

// The compiled route tables and the API's effective routes (Network Watcher next hop) agree
// for every destination, on random topologies.
fn next_hop_kind(a: &Action) -> &'static str {
    match a {
        Action::Local => "VnetLocal",
        Action::Peer(_) => "VNetPeering",
        Action::Appliance { .. } => "VirtualAppliance",
        Action::Drop(DropReason::RouteNone) => "None",
        Action::Drop(DropReason::Gateway) => "VirtualNetworkGateway",
        Action::Drop(DropReason::ApplianceUnreachable) => "VirtualAppliance",
        Action::Drop(_) => "Internet",
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn tables_agree_with_effective_routes(
        links in proptest::collection::vec((0usize..3, 0usize..3), 0..6),
        routes in proptest::collection::vec((0u8..3, 0u8..4, 8u8..=28, 0u8..3), 0..5),
        probes in proptest::collection::vec((0u8..4, 0u8..4, 0u8..255), 1..24),
    ) {
        let mut w = World::new();
        let names = ["a", "b", "c"];
        for (i, n) in names.iter().enumerate() {
            let sp = format!("10.{}.0.0/16", i + 1);
            w.vnet(n, &[sp.as_str()]).unwrap();
            let sn = format!("10.{}.1.0/24", i + 1);
            w.subnet(n, "s", &[sn.as_str()], Some("rt")).ok();
        }
        w.route_table("rt").unwrap();
        for (i, n) in names.iter().enumerate() {
            let sn = format!("10.{}.1.0/24", i + 1);
            w.subnet(n, "s", &[sn.as_str()], Some("rt")).unwrap();
            let ip = format!("10.{}.1.4", i + 1);
            w.nic(n, n, "s", Some(ip.as_str()), None, i == 1).unwrap();
        }
        for (x, y) in links {
            if x != y { let _ = w.link(names[x], names[y], true, false); }
        }
        let hops = ["None", "VirtualAppliance", "VnetLocal"];
        for (i, (h, o, len, nva)) in routes.iter().enumerate() {
            let prefix = ipnet::Ipv4Net::new(Ipv4Addr::new(10, *o, 1, 0), *len).unwrap().trunc().to_string();
            let ip = format!("10.{}.1.4", nva + 1);
            let nh = hops[*h as usize];
            let _ = w.route("rt", &format!("r{i}"), &prefix, nh, (nh == "VirtualAppliance").then_some(ip.as_str()));
        }
        let t = compile(&w.st, &BTreeMap::new(), 1);
        for (o, th, last) in probes {
            for n in names {
                let dst: IpAddr = IpAddr::V4(Ipv4Addr::new(10, o, th, last));
                let nk = testkit::key(&testkit::nic_id(n));
                let want = model::routes::next_hop(&w.st, &nk, dst).unwrap();
                let ni = t.nic_by_key(&nk).unwrap() as usize;
                let got = t.route_tables[t.nics[ni].routes as usize].lpm.lookup(dst).map(|(_, a)| next_hop_kind(a)).unwrap_or("None");
                prop_assert_eq!(got, want["nextHopType"].as_str().unwrap(), "nic {} dst {}", n, dst);
            }
        }
    }
}
