//! Whole conversations between two engines in memory: a virtual clock, a network that can
//! lose, duplicate and reorder datagrams with a seeded generator.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ike::{
    ts, ChildSa, Config, Error, Event, Identity, Ike, Kind, ProposalSpec, Role, SeededRng, State,
};

const A: &str = "198.18.0.1:500";
const B: &str = "198.18.0.2:500";

struct Net {
    rng: SeededRng,
    loss: u64,    // per mille
    reorder: u64, // per mille
    queue: Vec<(Instant, usize, ike::Transmit)>,
    delivered: usize,
    log: Vec<(usize, Vec<u8>)>,
}

impl Net {
    fn new(seed: u64, loss: u64, reorder: u64) -> Net {
        Net {
            rng: SeededRng::new(seed),
            loss,
            reorder,
            queue: Vec::new(),
            delivered: 0,
            log: Vec::new(),
        }
    }
}

struct Peer {
    ike: Ike,
    events: Vec<Event>,
}

struct Sim {
    now: Instant,
    p: [Peer; 2],
    net: Net,
    /// Drop everything sent by this side (peer gone).
    mute: [bool; 2],
}

fn cfg(role: Role, ike_p: &str, esp_p: &str, psk: &[u8]) -> Config {
    let (l, r) = match role {
        Role::Initiator => ("10.1.0.0/16", "10.2.0.0/16"),
        Role::Responder => ("10.2.0.0/16", "10.1.0.0/16"),
    };
    Config {
        ike_proposals: ProposalSpec::parse_list(Kind::Ike, ike_p).unwrap(),
        esp_proposals: ProposalSpec::parse_list(Kind::Esp, esp_p).unwrap(),
        local_ts: vec![ts::parse_cidr(l).unwrap()],
        remote_ts: vec![ts::parse_cidr(r).unwrap()],
        ..Config::new(
            role,
            Identity::Fqdn(
                if role == Role::Initiator {
                    "a.vnet"
                } else {
                    "b.vnet"
                }
                .into(),
            ),
            psk.to_vec(),
        )
    }
}

impl Sim {
    fn new(ci: Config, cr: Config, seed: u64) -> Sim {
        let now = Instant::now();
        let a: SocketAddr = A.parse().unwrap();
        let b: SocketAddr = B.parse().unwrap();
        let i = Ike::new(ci, a, b, Box::new(SeededRng::new(seed)), now);
        let r = Ike::new(cr, b, a, Box::new(SeededRng::new(seed ^ 0xdead_beef)), now);
        Sim {
            now,
            p: [
                Peer {
                    ike: i,
                    events: vec![],
                },
                Peer {
                    ike: r,
                    events: vec![],
                },
            ],
            net: Net::new(seed, 0, 0),
            mute: [false, false],
        }
    }

    fn collect(&mut self) {
        for (k, peer) in self.p.iter_mut().enumerate() {
            while let Some(t) = peer.ike.poll_transmit() {
                if self.mute[k] {
                    continue;
                }
                self.net.log.push((k, t.payload.clone()));
                let roll = self.net.rng.next_u64() % 1000;
                if roll < self.net.loss {
                    continue;
                }
                let delay = if self.net.rng.next_u64() % 1000 < self.net.reorder {
                    Duration::from_millis(30 + self.net.rng.next_u64() % 200)
                } else {
                    Duration::from_millis(10)
                };
                self.net.queue.push((self.now + delay, 1 - k, t));
            }
            while let Some(e) = peer.ike.poll_event() {
                peer.events.push(e);
            }
        }
    }

    /// Runs until nothing is in flight and no timer is due before `until`.
    fn run_until(&mut self, until: Instant) {
        for _ in 0..100_000 {
            self.collect();
            let next_net = self.net.queue.iter().map(|q| q.0).min();
            let next_timer = self.p.iter().filter_map(|p| p.ike.poll_timeout()).min();
            let next = match (next_net, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => return,
            };
            if next > until {
                self.now = until;
                return;
            }
            self.now = self.now.max(next);
            // Deliver everything due, in the order of arrival time.
            self.net.queue.sort_by_key(|q| q.0);
            while let Some(pos) = self.net.queue.iter().position(|q| q.0 <= self.now) {
                let (_, to, t) = self.net.queue.remove(pos);
                self.net.delivered += 1;
                self.p[to]
                    .ike
                    .handle_datagram(self.now, t.src, t.dst, &t.payload);
                self.collect();
            }
            for p in &mut self.p {
                if p.ike.poll_timeout().is_some_and(|t| t <= self.now) {
                    p.ike.handle_timeout(self.now);
                }
            }
        }
        panic!("simulation did not settle");
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    fn children(&self, k: usize) -> Vec<ChildSa> {
        self.p[k].ike.child_sas().cloned().collect()
    }

    fn failures(&self, k: usize) -> Vec<&Error> {
        self.p[k]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Failed(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    fn child_ups(&self, k: usize) -> usize {
        self.p[k]
            .events
            .iter()
            .filter(|e| matches!(e, Event::ChildSaUp(_)))
            .count()
    }
}

fn assert_pairs(s: &Sim) {
    let a = s.children(0);
    let b = s.children(1);
    assert_eq!(a.len(), b.len(), "child SA count differs");
    assert!(!a.is_empty());
    for x in &a {
        let y = b
            .iter()
            .find(|y| y.spi_in == x.spi_out)
            .expect("peer has the matching SA");
        assert_eq!(y.spi_out, x.spi_in);
        assert_eq!(&x.keys_out[..], &y.keys_in[..]);
        assert_eq!(&x.keys_in[..], &y.keys_out[..]);
        assert_eq!(x.suite, y.suite);
        assert_eq!(x.local_ts, y.remote_ts);
        assert_eq!(x.remote_ts, y.local_ts);
        assert_eq!(x.keys_in.len(), x.suite.child_keymat_len());
    }
}

fn establish(ike_p: &str, esp_p: &str, seed: u64) -> Sim {
    let mut s = Sim::new(
        cfg(Role::Initiator, ike_p, esp_p, b"secret"),
        cfg(Role::Responder, ike_p, esp_p, b"secret"),
        seed,
    );
    s.p[0].ike.connect(s.now);
    s.run_for(Duration::from_secs(5));
    assert_eq!(
        s.p[0].ike.state(),
        State::Established,
        "{:?}",
        s.p[0].events
    );
    assert_eq!(
        s.p[1].ike.state(),
        State::Established,
        "{:?}",
        s.p[1].events
    );
    assert_pairs(&s);
    s
}

#[test]
fn handshake_every_suite() {
    for (i, (ike_p, esp_p)) in [
        ("aes256gcm16-prfsha256-ecp256", "aes256gcm16"),
        ("aes128gcm16-prfsha256-x25519", "aes128gcm16"),
        ("aes256-sha256-modp2048", "aes256-sha256"),
        ("aes256-sha1-modp1024", "aes256-sha1"),
        ("chacha20poly1305-prfsha512-ecp384", "chacha20poly1305"),
        ("aes128-sha384-x25519", "aes128-sha512"),
    ]
    .iter()
    .enumerate()
    {
        let s = establish(ike_p, esp_p, i as u64 + 1);
        let (_, _, suite) = s.p[0].ike.ike_sa().unwrap();
        assert_eq!(suite.to_string(), *ike_p);
        assert_eq!(s.children(0)[0].suite.to_string(), *esp_p);
        assert!(s.failures(0).is_empty() && s.failures(1).is_empty());
    }
}

#[test]
fn same_seed_same_bytes() {
    let a = establish("aes128gcm16-prfsha256-x25519", "aes128gcm16", 42);
    let b = establish("aes128gcm16-prfsha256-x25519", "aes128gcm16", 42);
    assert_eq!(a.net.log, b.net.log);
}

#[test]
fn ordered_selection_responder_preference() {
    let mut s = Sim::new(
        cfg(
            Role::Initiator,
            "aes128-sha1-modp1024,aes256gcm16-prfsha256-ecp256",
            "aes128-sha1,aes256gcm16",
            b"k",
        ),
        cfg(
            Role::Responder,
            "aes256gcm16-prfsha256-ecp256,aes128-sha1-modp1024",
            "aes256gcm16,aes128-sha1",
            b"k",
        ),
        7,
    );
    s.p[0].ike.connect(s.now);
    s.run_for(Duration::from_secs(10));
    // The responder prefers its first proposal: the initiator's KE (modp1024) does not fit,
    // so INVALID_KE_PAYLOAD makes the initiator retry with ecp256.
    assert_eq!(
        s.p[0].ike.ike_sa().unwrap().2.to_string(),
        "aes256gcm16-prfsha256-ecp256"
    );
    assert_eq!(s.children(0)[0].suite.to_string(), "aes256gcm16");
    assert_pairs(&s);
}

#[test]
fn invalid_ke_retry() {
    let mut s = Sim::new(
        cfg(
            Role::Initiator,
            "aes128gcm16-prfsha256-ecp256-x25519",
            "aes128gcm16",
            b"k",
        ),
        cfg(
            Role::Responder,
            "aes128gcm16-prfsha256-x25519",
            "aes128gcm16",
            b"k",
        ),
        8,
    );
    s.p[0].ike.connect(s.now);
    s.run_for(Duration::from_secs(10));
    assert_eq!(
        s.p[0].ike.ike_sa().unwrap().2.dh,
        Some(ike::DhGroup::Curve25519)
    );
    assert_pairs(&s);
    // The responder kept no state for the first attempt: exactly one IKE_SA_INIT answered
    // with an SA.
    assert!(s.failures(1).is_empty());
}

#[test]
fn cookie_under_load() {
    let mut r = cfg(
        Role::Responder,
        "aes128gcm16-prfsha256-x25519",
        "aes128gcm16",
        b"k",
    );
    r.require_cookie = true;
    let mut s = Sim::new(
        cfg(
            Role::Initiator,
            "aes128gcm16-prfsha256-x25519",
            "aes128gcm16",
            b"k",
        ),
        r,
        9,
    );
    s.p[0].ike.connect(s.now);
    s.collect();
    // The first answer is a bare COOKIE notify with no SPIr.
    s.run_for(Duration::from_secs(5));
    let first_answer = &s.net.log.iter().find(|(k, _)| *k == 1).unwrap().1;
    let m = ike::wire::parse_message(first_answer).unwrap();
    assert_eq!(m.header.spi_r, 0);
    assert!(ike::wire::find_notify(&m.payloads, ike::wire::notify::COOKIE).is_some());
    assert_pairs(&s);
}

#[test]
fn wrong_psk_refused_on_both_sides() {
    let mut s = Sim::new(
        cfg(
            Role::Initiator,
            "aes256gcm16-prfsha256-ecp256",
            "aes256gcm16",
            b"right",
        ),
        cfg(
            Role::Responder,
            "aes256gcm16-prfsha256-ecp256",
            "aes256gcm16",
            b"wrong",
        ),
        10,
    );
    s.p[0].ike.connect(s.now);
    s.run_for(Duration::from_secs(60));
    assert!(s.p[0].ike.is_closed() && s.p[1].ike.is_closed());
    assert_eq!(s.child_ups(0) + s.child_ups(1), 0);
    assert!(matches!(s.failures(1)[0], Error::AuthenticationFailed(_)));
    assert_eq!(
        s.failures(0)[0],
        &Error::PeerRefused {
            exchange: ike::wire::exchange::IKE_AUTH,
            notify: ike::wire::notify::AUTHENTICATION_FAILED
        }
    );
    assert!(s.failures(0)[0]
        .to_string()
        .contains("AUTHENTICATION_FAILED"));
}

#[test]
fn no_proposal_chosen_ike_and_esp_and_ts_unacceptable() {
    // IKE.
    let mut s = Sim::new(
        cfg(Role::Initiator, "aes256-sha1-modp1024", "aes256gcm16", b"k"),
        cfg(
            Role::Responder,
            "aes256gcm16-prfsha256-ecp256",
            "aes256gcm16",
            b"k",
        ),
        11,
    );
    s.p[0].ike.connect(s.now);
    s.run_for(Duration::from_secs(60));
    assert!(s.p[0].ike.is_closed());
    assert_eq!(s.failures(1)[0], &Error::NoProposalChosen { ike: true });
    assert!(s.failures(0)[0].to_string().contains("NO_PROPOSAL_CHOSEN"));

    // ESP: the IKE SA comes up, the Child SA fails, the initiator deletes the IKE SA.
    let mut s = Sim::new(
        cfg(
            Role::Initiator,
            "aes256gcm16-prfsha256-ecp256",
            "aes128-sha1",
            b"k",
        ),
        cfg(
            Role::Responder,
            "aes256gcm16-prfsha256-ecp256",
            "aes256gcm16",
            b"k",
        ),
        12,
    );
    s.p[0].ike.connect(s.now);
    s.run_for(Duration::from_secs(60));
    assert_eq!(s.failures(1)[0], &Error::NoProposalChosen { ike: false });
    assert!(s.failures(0)[0].to_string().contains("NO_PROPOSAL_CHOSEN"));
    assert!(s.p[0].ike.is_closed() && s.p[1].ike.is_closed());
    assert_eq!(s.child_ups(0) + s.child_ups(1), 0);

    // Selectors that do not overlap.
    let mut r = cfg(
        Role::Responder,
        "aes256gcm16-prfsha256-ecp256",
        "aes256gcm16",
        b"k",
    );
    r.remote_ts = vec![ts::parse_cidr("192.168.0.0/24").unwrap()];
    let mut s = Sim::new(
        cfg(
            Role::Initiator,
            "aes256gcm16-prfsha256-ecp256",
            "aes256gcm16",
            b"k",
        ),
        r,
        13,
    );
    s.p[0].ike.connect(s.now);
    s.run_for(Duration::from_secs(60));
    assert_eq!(s.failures(1)[0], &Error::TsUnacceptable);
    assert!(s.failures(0)[0].to_string().contains("TS_UNACCEPTABLE"));
    assert_eq!(s.child_ups(0) + s.child_ups(1), 0);
}

#[test]
fn narrowing() {
    let mut i = cfg(
        Role::Initiator,
        "aes128gcm16-prfsha256-x25519",
        "aes128gcm16",
        b"k",
    );
    i.local_ts = vec![ts::parse_cidr("10.0.0.0/8").unwrap()];
    i.remote_ts = vec![ts::parse_cidr("0.0.0.0/0").unwrap()];
    let mut s = Sim::new(
        i,
        cfg(
            Role::Responder,
            "aes128gcm16-prfsha256-x25519",
            "aes128gcm16",
            b"k",
        ),
        14,
    );
    s.p[0].ike.connect(s.now);
    s.run_for(Duration::from_secs(5));
    let c = &s.children(0)[0];
    assert_eq!(ts::display(&c.local_ts[0]), "10.1.0.0/16");
    assert_eq!(ts::display(&c.remote_ts[0]), "10.2.0.0/16");
    assert_pairs(&s);
}

#[test]
fn loss_and_reordering_still_converge() {
    for seed in 0..12u64 {
        let mut s = Sim::new(
            cfg(
                Role::Initiator,
                "aes128gcm16-prfsha256-x25519",
                "aes128gcm16",
                b"k",
            ),
            cfg(
                Role::Responder,
                "aes128gcm16-prfsha256-x25519",
                "aes128gcm16",
                b"k",
            ),
            100 + seed,
        );
        s.net.loss = 250;
        s.net.reorder = 300;
        s.p[0].ike.connect(s.now);
        s.run_for(Duration::from_secs(200));
        if s.p[0].ike.state() != State::Established {
            // Five retransmissions can all be lost at 25%; then both sides must say so.
            assert!(s.p[0].ike.is_closed(), "seed {seed}: {:?}", s.p[0].events);
            continue;
        }
        // Rekey under loss too.
        let spi = s.children(0)[0].spi_in;
        s.p[0].ike.rekey_child(s.now, spi);
        s.run_for(Duration::from_secs(200));
        if s.p[0].ike.state() == State::Established && s.p[1].ike.state() == State::Established {
            assert_pairs(&s);
        }
    }
}

#[test]
fn retransmission_backoff_then_dead() {
    let mut s = Sim::new(
        cfg(
            Role::Initiator,
            "aes128gcm16-prfsha256-x25519",
            "aes128gcm16",
            b"k",
        ),
        cfg(
            Role::Responder,
            "aes128gcm16-prfsha256-x25519",
            "aes128gcm16",
            b"k",
        ),
        15,
    );
    s.mute[1] = true;
    let t0 = s.now;
    s.p[0].ike.connect(s.now);
    s.run_for(Duration::from_secs(600));
    assert!(s.p[0].ike.is_closed());
    let sent = s.net.log.iter().filter(|(k, _)| *k == 0).count();
    assert_eq!(sent, 6); // first try + 5 retransmissions
    assert_eq!(
        s.failures(0)[0],
        &Error::Timeout {
            exchange: ike::wire::exchange::IKE_SA_INIT
        }
    );
    // 2 + 4 + 8 + 16 + 32 + 64 s.
    assert!(s.now - t0 >= Duration::from_secs(126));
}

#[test]
fn child_rekey_with_and_without_pfs() {
    for esp in [
        "aes256gcm16",
        "aes256gcm16-ecp256",
        "aes256-sha256-modp2048",
    ] {
        let mut s = establish("aes256gcm16-prfsha256-ecp256", esp, 16);
        let old = s.children(0)[0].clone();
        s.p[0].ike.rekey_child(s.now, old.spi_in);
        s.run_for(Duration::from_secs(5));
        let now = s.children(0);
        assert_eq!(now.len(), 1, "{esp}: {:?}", s.p[0].events);
        assert_ne!(now[0].spi_in, old.spi_in);
        assert_ne!(&now[0].keys_in[..], &old.keys_in[..]);
        assert_eq!(now[0].rekey_of, Some(old.spi_in));
        assert_eq!(
            now[0].suite.dh.is_some(),
            esp.contains("ecp") || esp.contains("modp")
        );
        assert_pairs(&s);
        // The responder rekeys back.
        let spi = s.children(1)[0].spi_in;
        s.p[1].ike.rekey_child(s.now, spi);
        s.run_for(Duration::from_secs(5));
        assert_eq!(s.children(1).len(), 1);
        assert_pairs(&s);
    }
}

#[test]
fn pfs_invalid_ke_on_rekey() {
    let mut i = cfg(
        Role::Initiator,
        "aes256gcm16-prfsha256-ecp256",
        "aes256gcm16-ecp256-x25519",
        b"k",
    );
    i.esp_proposals = ProposalSpec::parse_list(Kind::Esp, "aes256gcm16-ecp256-x25519").unwrap();
    let r = cfg(
        Role::Responder,
        "aes256gcm16-prfsha256-ecp256",
        "aes256gcm16-x25519",
        b"k",
    );
    let mut s = Sim::new(i, r, 17);
    s.p[0].ike.connect(s.now);
    s.run_for(Duration::from_secs(5));
    let spi = s.children(0)[0].spi_in;
    s.p[0].ike.rekey_child(s.now, spi);
    s.run_for(Duration::from_secs(5));
    assert_eq!(s.children(0)[0].suite.dh, Some(ike::DhGroup::Curve25519));
    assert_pairs(&s);
}

#[test]
fn simultaneous_child_rekey_collision() {
    for seed in 20..30 {
        let mut s = establish("aes128gcm16-prfsha256-x25519", "aes128gcm16", seed);
        let a = s.children(0)[0].spi_in;
        let b = s.children(1)[0].spi_in;
        s.p[0].ike.rekey_child(s.now, a);
        s.p[1].ike.rekey_child(s.now, b);
        s.run_for(Duration::from_secs(10));
        assert_eq!(s.children(0).len(), 1, "seed {seed}: {:?}", s.p[0].events);
        assert_pairs(&s);
        assert_ne!(s.children(0)[0].spi_in, a);
    }
}

#[test]
fn ike_rekey_keeps_children_and_works_after() {
    let mut s = establish("aes256-sha256-modp2048", "aes256-sha256", 31);
    let (si, sr, _) = s.p[0].ike.ike_sa().unwrap();
    let child = s.children(0)[0].spi_in;
    s.p[0].ike.rekey_ike(s.now);
    s.run_for(Duration::from_secs(5));
    let (ni, nr, _) = s.p[0].ike.ike_sa().unwrap();
    assert_ne!((si, sr), (ni, nr));
    assert_eq!(s.p[1].ike.ike_sa().unwrap().0, ni);
    assert_eq!(s.children(0)[0].spi_in, child);
    // The new IKE SA carries a Child SA rekey and a liveness check; roles in the new SA are
    // the rekey initiator's.
    s.p[1].ike.rekey_child(s.now, s.children(1)[0].spi_in);
    s.run_for(Duration::from_secs(5));
    assert_pairs(&s);
    s.p[1].ike.rekey_ike(s.now);
    s.run_for(Duration::from_secs(5));
    s.p[0].ike.send_dpd(s.now);
    s.run_for(Duration::from_secs(5));
    assert_eq!(s.p[0].ike.state(), State::Established);
    assert_eq!(s.p[1].ike.state(), State::Established);
    assert_eq!(
        s.p[0].ike.ike_sa().unwrap().0,
        s.p[1].ike.ike_sa().unwrap().0
    );
    assert!(
        s.failures(0).is_empty() && s.failures(1).is_empty(),
        "{:?} {:?}",
        s.p[0].events,
        s.p[1].events
    );
}

#[test]
fn simultaneous_ike_rekey() {
    let mut s = establish("aes128gcm16-prfsha256-x25519", "aes128gcm16", 33);
    s.p[0].ike.rekey_ike(s.now);
    s.p[1].ike.rekey_ike(s.now);
    s.run_for(Duration::from_secs(30));
    assert_eq!(
        s.p[0].ike.ike_sa().unwrap().0,
        s.p[1].ike.ike_sa().unwrap().0
    );
    assert_eq!(
        s.p[0].ike.ike_sa().unwrap().1,
        s.p[1].ike.ike_sa().unwrap().1
    );
    assert_pairs(&s);
}

#[test]
fn scheduled_rekeys_under_traffic_of_liveness_checks() {
    let mut i = cfg(
        Role::Initiator,
        "aes128gcm16-prfsha256-x25519",
        "aes128gcm16-x25519",
        b"k",
    );
    i.child_rekey = Some(Duration::from_secs(60));
    i.ike_rekey = Some(Duration::from_secs(150));
    i.dpd = Some(Duration::from_secs(20));
    let mut r = cfg(
        Role::Responder,
        "aes128gcm16-prfsha256-x25519",
        "aes128gcm16-x25519",
        b"k",
    );
    r.child_rekey = Some(Duration::from_secs(70));
    r.dpd = Some(Duration::from_secs(25));
    let mut s = Sim::new(i, r, 40);
    s.net.loss = 50;
    s.net.reorder = 100;
    s.p[0].ike.connect(s.now);
    s.run_for(Duration::from_secs(600));
    assert_eq!(
        s.p[0].ike.state(),
        State::Established,
        "{:?}",
        s.p[0].events
    );
    assert_eq!(s.p[1].ike.state(), State::Established);
    assert!(s.child_ups(0) >= 8, "{}", s.child_ups(0));
    assert_pairs(&s);
}

#[test]
fn dead_peer_detection() {
    let mut i = cfg(
        Role::Initiator,
        "aes128gcm16-prfsha256-x25519",
        "aes128gcm16",
        b"k",
    );
    i.dpd = Some(Duration::from_secs(10));
    let mut s = Sim::new(
        i,
        cfg(
            Role::Responder,
            "aes128gcm16-prfsha256-x25519",
            "aes128gcm16",
            b"k",
        ),
        50,
    );
    s.p[0].ike.connect(s.now);
    s.run_for(Duration::from_secs(30));
    assert_eq!(s.p[0].ike.state(), State::Established);
    s.mute[1] = true;
    s.run_for(Duration::from_secs(600));
    assert!(s.p[0].ike.is_closed());
    let closed = s.p[0].events.iter().find_map(|e| match e {
        Event::Closed { reason } => Some(reason.clone()),
        _ => None,
    });
    assert!(closed.unwrap().contains("dead peer"));
    assert!(s.p[0]
        .events
        .iter()
        .any(|e| matches!(e, Event::ChildSaDown { .. })));
}

#[test]
fn delete_child_and_ike() {
    let mut s = establish("aes128gcm16-prfsha256-x25519", "aes128gcm16", 60);
    let spi = s.children(0)[0].spi_in;
    s.p[0].ike.delete_child(s.now, spi);
    s.run_for(Duration::from_secs(5));
    assert!(s.children(0).is_empty() && s.children(1).is_empty());
    s.p[1].ike.close_connection(s.now);
    s.run_for(Duration::from_secs(5));
    assert!(s.p[0].ike.is_closed() && s.p[1].ike.is_closed());
}

#[test]
fn fragmentation_of_large_messages() {
    let mut i = cfg(
        Role::Initiator,
        "aes256-sha256-modp2048",
        "aes256-sha256",
        b"k",
    );
    // Many selectors make IKE_AUTH large; a small limit forces fragments.
    i.local_ts = (0..40)
        .map(|n| ts::parse_cidr(&format!("10.1.{n}.0/24")).unwrap())
        .collect();
    i.max_message = 300;
    let mut r = cfg(
        Role::Responder,
        "aes256-sha256-modp2048",
        "aes256-sha256",
        b"k",
    );
    r.max_message = 300;
    let mut s = Sim::new(i, r, 70);
    s.net.reorder = 500;
    s.p[0].ike.connect(s.now);
    s.run_for(Duration::from_secs(10));
    assert_pairs(&s);
    assert_eq!(s.children(1)[0].remote_ts.len(), 40);
    let frags = s
        .net
        .log
        .iter()
        .filter(|(_, m)| {
            ike::wire::parse_message(m)
                .is_ok_and(|m| m.encrypted.is_some_and(|e| e.fragment.is_some()))
        })
        .count();
    assert!(frags >= 4, "{frags}");
    assert!(s
        .net
        .log
        .iter()
        .filter(|(_, m)| ike::wire::parse_message(m).is_ok_and(|m| m.encrypted.is_some()))
        .all(|(_, m)| m.len() <= 300));
}

#[test]
fn nat_traversal_moves_to_4500() {
    let mut i = cfg(
        Role::Initiator,
        "aes128gcm16-prfsha256-x25519",
        "aes128gcm16",
        b"k",
    );
    i.force_encap = true;
    let mut s = Sim::new(
        i,
        cfg(
            Role::Responder,
            "aes128gcm16-prfsha256-x25519",
            "aes128gcm16",
            b"k",
        ),
        80,
    );
    s.p[0].ike.connect(s.now);
    s.run_for(Duration::from_secs(5));
    assert_pairs(&s);
    let c = &s.children(0)[0];
    assert!(c.encap);
    assert_eq!(c.remote.port(), 4500);
    assert!(s.children(1)[0].encap);
    assert_eq!(s.children(1)[0].local.port(), 4500);
    // Everything after IKE_SA_INIT carries the non-ESP marker.
    assert!(s.net.log[2..].iter().all(|(_, m)| m[..4] == [0, 0, 0, 0]));
}

#[test]
fn hostile_datagrams_never_panic_or_disturb() {
    let mut s = establish("aes128gcm16-prfsha256-x25519", "aes128gcm16", 90);
    let mut rng = SeededRng::new(5);
    let sample: Vec<Vec<u8>> = s.net.log.iter().map(|x| x.1.clone()).collect();
    let a: SocketAddr = A.parse().unwrap();
    let b: SocketAddr = B.parse().unwrap();
    for n in 0..20_000u64 {
        let base = &sample[(n as usize) % sample.len()];
        let mut m = base.clone();
        let flips = 1 + rng.next_u64() % 4;
        for _ in 0..flips {
            let at = (rng.next_u64() as usize) % m.len();
            m[at] ^= 1 << (rng.next_u64() % 8);
        }
        if n % 7 == 0 {
            m.truncate((rng.next_u64() as usize) % m.len());
        }
        s.p[1].ike.handle_datagram(s.now, a, b, &m);
        s.p[0].ike.handle_datagram(s.now, b, a, &m);
    }
    // Whatever was answered, the SAs still work: a rekey goes through.
    s.collect();
    s.net.queue.clear();
    s.p[0].events.clear();
    s.p[1].events.clear();
    let spi = s.children(0)[0].spi_in;
    s.p[0].ike.rekey_child(s.now, spi);
    s.run_for(Duration::from_secs(5));
    assert_eq!(s.p[0].ike.state(), State::Established);
    assert_pairs(&s);
}

// ---------------------------------------------------------------------------------------
// Simultaneous IKE SA rekeys (RFC 7296 §2.8.2), checked against the wire: the rekey
// exchanges on the old IKE SA are decrypted with its keys to learn the four nonces and the
// SPIs of both new IKE SAs, and the outcome is judged from those alone.

/// One CREATE_CHILD_SA exchange rekeying the IKE SA, as seen on the wire.
#[derive(Clone, Debug)]
struct RekeyExchange {
    /// The peer (0 or 1) that sent the request.
    initiator: usize,
    ni: Vec<u8>,
    spi_i: u64,
    /// Responder's nonce and SPI, if it answered with a new SA (not with an error notify).
    nr: Option<(Vec<u8>, u64)>,
}

impl RekeyExchange {
    fn spis(&self) -> Option<(u64, u64)> {
        self.nr.as_ref().map(|(_, r)| (self.spi_i, *r))
    }
    fn lower_nonce(&self) -> Option<&[u8]> {
        self.nr
            .as_ref()
            .map(|(nr, _)| self.ni.as_slice().min(nr.as_slice()))
    }
}

/// What the old IKE SA's traffic after `from` tells about the rekey and the deletes.
#[derive(Clone, Debug)]
struct RekeyWire {
    old: (u64, u64),
    exchanges: Vec<RekeyExchange>,
    /// INFORMATIONAL requests (deletes; nothing else runs meanwhile): (SPIs, sender).
    informational: Vec<((u64, u64), usize)>,
}

fn read_rekey_wire(s: &Sim, from: usize, old_keys: &OldKeys) -> RekeyWire {
    use ike::wire::{self, exchange, Payload};
    let mut reqs: Vec<(usize, u32, Vec<u8>, u64)> = Vec::new();
    /// (sender, message ID, the new SA's responder nonce and SPI).
    type Resp = (usize, u32, Option<(Vec<u8>, u64)>);
    let mut resps: Vec<Resp> = Vec::new();
    let mut informational = Vec::new();
    for (sender, bytes) in &s.net.log[from..] {
        let Ok(m) = wire::parse_message(bytes) else {
            continue;
        };
        let h = m.header;
        let spis = (h.spi_i, h.spi_r);
        if h.exchange == exchange::INFORMATIONAL && !h.is_response() {
            if !informational.contains(&(spis, *sender)) {
                informational.push((spis, *sender));
            }
            continue;
        }
        if spis != old_keys.spis || h.exchange != exchange::CREATE_CHILD_SA {
            continue;
        }
        let enc = m.encrypted.expect("encrypted");
        assert!(enc.fragment.is_none());
        let cipher = if h.is_initiator() {
            &old_keys.i
        } else {
            &old_keys.r
        };
        let plain = cipher
            .open(bytes, enc.body)
            .expect("old IKE SA keys open it");
        let p = wire::parse_payloads(enc.first, &plain).unwrap();
        let nonce = p.iter().find_map(|x| match x {
            Payload::Nonce(n) => Some(n.clone()),
            _ => None,
        });
        let spi = p.iter().find_map(|x| match x {
            Payload::Sa(props) => Some(u64::from_be_bytes(props[0].spi[..].try_into().unwrap())),
            _ => None,
        });
        if h.is_response() {
            let new = nonce.zip(spi);
            if !resps.iter().any(|r| r.0 == *sender && r.1 == h.message_id) {
                resps.push((*sender, h.message_id, new));
            }
        } else if !reqs.iter().any(|r| r.0 == *sender && r.1 == h.message_id) {
            reqs.push((*sender, h.message_id, nonce.unwrap(), spi.unwrap()));
        }
    }
    let exchanges = reqs
        .into_iter()
        .map(|(k, id, ni, spi_i)| RekeyExchange {
            initiator: k,
            ni,
            spi_i,
            nr: resps
                .iter()
                .find(|r| r.0 == 1 - k && r.1 == id)
                .and_then(|r| r.2.clone()),
        })
        .collect();
    RekeyWire {
        old: old_keys.spis,
        exchanges,
        informational,
    }
}

struct OldKeys {
    spis: (u64, u64),
    i: ike::crypto::SkCipher,
    r: ike::crypto::SkCipher,
}

fn old_keys(s: &Sim) -> OldKeys {
    let (si, sr, suite, k) = s.p[0].ike.ike_keys_for_debug().unwrap();
    OldKeys {
        spis: (si, sr),
        i: ike::crypto::SkCipher::new(&suite, k[0], k[2]).unwrap(),
        r: ike::crypto::SkCipher::new(&suite, k[1], k[3]).unwrap(),
    }
}

/// The end state of both peers that the check looks at.
#[derive(Clone, Debug, PartialEq)]
struct RekeyEnd {
    /// Every IKE SA each peer still holds.
    held: [Vec<(u64, u64)>; 2],
    /// Child SAs (inbound SPIs) before and after, per peer.
    children_before: [Vec<u32>; 2],
    children_after: [Vec<u32>; 2],
    child_downs: usize,
}

/// RFC 7296 §2.8.2 as a judgement over the wire and the end state. Returns which case it
/// was: true for a real collision (both exchanges created an IKE SA).
fn check_ike_rekey(w: &RekeyWire, end: &RekeyEnd) -> Result<bool, String> {
    if w.exchanges.len() != 2 {
        return Err(format!("expected two rekey requests: {:?}", w.exchanges));
    }
    let done: Vec<&RekeyExchange> = w.exchanges.iter().filter(|e| e.nr.is_some()).collect();
    let (survivor, redundant) = match done.as_slice() {
        [one] => ((*one).clone(), None),
        [a, b] => {
            // The new IKE SA whose exchange holds the lowest of the four nonces goes.
            if a.lower_nonce() < b.lower_nonce() {
                ((*b).clone(), Some((*a).clone()))
            } else {
                ((*a).clone(), Some((*b).clone()))
            }
        }
        _ => return Err(format!("no rekey exchange completed: {:?}", w.exchanges)),
    };
    let keep = survivor.spis().unwrap();
    for k in 0..2 {
        if end.held[k] != vec![keep] {
            return Err(format!(
                "peer {k} holds {:x?}, the surviving IKE SA is {keep:x?}",
                end.held[k]
            ));
        }
        if end.children_before[k] != end.children_after[k] {
            return Err(format!("peer {k}: Child SAs changed"));
        }
    }
    if end.child_downs != 0 {
        return Err("a Child SA went down".into());
    }
    // The old IKE SA is deleted by the initiator of the surviving one, and nobody else.
    for (spis, sender) in &w.informational {
        if *spis == w.old && *sender != survivor.initiator {
            return Err(format!("peer {sender} deleted the old IKE SA but lost"));
        }
    }
    if let Some(r) = &redundant {
        let rs = r.spis().unwrap();
        for (spis, sender) in &w.informational {
            if *spis == rs && *sender != r.initiator {
                return Err(format!(
                    "the redundant IKE SA was deleted by peer {sender}, not its initiator"
                ));
            }
            if *spis == keep {
                return Err("the surviving IKE SA got a delete".into());
            }
        }
    }
    Ok(redundant.is_some())
}

/// Both peers rekey the IKE SA at the same instant; returns the wire view and end state.
fn simultaneous_ike_rekey_run(seed: u64, loss: u64, reorder: u64) -> (Sim, RekeyWire, RekeyEnd) {
    let mut ci = cfg(
        Role::Initiator,
        "aes128gcm16-prfsha256-x25519",
        "aes128gcm16",
        b"k",
    );
    let mut cr = cfg(
        Role::Responder,
        "aes128gcm16-prfsha256-x25519",
        "aes128gcm16",
        b"k",
    );
    ci.retransmit_tries = 8;
    cr.retransmit_tries = 8;
    let mut s = Sim::new(ci, cr, seed);
    s.p[0].ike.connect(s.now);
    s.run_for(Duration::from_secs(5));
    assert_pairs(&s);
    let before = [0, 1].map(|k| {
        let mut v: Vec<u32> = s.children(k).iter().map(|c| c.spi_in).collect();
        v.sort();
        v
    });
    let keys = old_keys(&s);
    let from = s.net.log.len();
    let events_from = [s.p[0].events.len(), s.p[1].events.len()];
    s.net.loss = loss;
    s.net.reorder = reorder;
    s.p[0].ike.rekey_ike(s.now);
    s.p[1].ike.rekey_ike(s.now);
    // Long enough for retransmissions and for a redundant SA's delete wait to expire.
    s.run_for(Duration::from_secs(900));
    s.net.loss = 0;
    s.net.reorder = 0;
    let w = read_rekey_wire(&s, from, &keys);
    let end = RekeyEnd {
        held: [s.p[0].ike.ike_sa_spis(), s.p[1].ike.ike_sa_spis()],
        children_before: before,
        children_after: [0, 1].map(|k| {
            let mut v: Vec<u32> = s.children(k).iter().map(|c| c.spi_in).collect();
            v.sort();
            v
        }),
        child_downs: (0..2)
            .map(|k| {
                s.p[k].events[events_from[k]..]
                    .iter()
                    .filter(|e| matches!(e, Event::ChildSaDown { .. }))
                    .count()
            })
            .sum(),
    };
    (s, w, end)
}

#[test]
fn simultaneous_ike_rekey_follows_lowest_nonce_rule_over_many_seeds() {
    let mut collisions = 0;
    let mut one_sided = 0;
    let mut redundant_deleted_by_initiator = 0;
    for seed in 0..160u64 {
        let (loss, reorder) = match seed % 4 {
            0 => (0, 0),
            1 => (0, 400),
            2 => (150, 0),
            _ => (150, 400),
        };
        let (mut s, w, end) = simultaneous_ike_rekey_run(1000 + seed, loss, reorder);
        let both = check_ike_rekey(&w, &end).unwrap_or_else(|e| {
            panic!(
                "seed {seed} loss {loss} reorder {reorder}: {e}\n{w:x?}\nA {:?}\nB {:?}",
                s.p[0].events, s.p[1].events
            )
        });
        if both {
            collisions += 1;
            let done: Vec<&RekeyExchange> = w.exchanges.iter().filter(|e| e.nr.is_some()).collect();
            let red = if done[0].lower_nonce() < done[1].lower_nonce() {
                done[0]
            } else {
                done[1]
            };
            let rs = red.spis().unwrap();
            if w.informational
                .iter()
                .any(|(spis, k)| *spis == rs && *k == red.initiator)
            {
                redundant_deleted_by_initiator += 1;
            } else {
                // Only when the initiator never saw its answer (lost) and adopted the
                // peer's SA on the old SA's delete (RFC 7296 §2.25.2).
                assert!(
                    loss > 0,
                    "seed {seed}: redundant SA never deleted by its initiator"
                );
            }
        } else {
            one_sided += 1;
        }
        // Identical keys on both sides, and the survivor carries on.
        let ka = s.p[0].ike.ike_keys_for_debug().unwrap();
        let kb = s.p[1].ike.ike_keys_for_debug().unwrap();
        assert_eq!((ka.0, ka.1), (kb.0, kb.1));
        assert_eq!(ka.3, kb.3, "seed {seed}: IKE SA keys differ");
        assert!(
            s.failures(0).is_empty() && s.failures(1).is_empty(),
            "seed {seed}"
        );
        let spi = s.children(1)[0].spi_in;
        s.p[1].ike.rekey_child(s.now, spi);
        s.run_for(Duration::from_secs(10));
        s.p[0].ike.send_dpd(s.now);
        s.run_for(Duration::from_secs(10));
        assert_eq!(s.p[0].ike.state(), State::Established, "seed {seed}");
        assert_eq!(s.p[1].ike.state(), State::Established, "seed {seed}");
        assert_pairs(&s);
        assert!(
            s.failures(0).is_empty() && s.failures(1).is_empty(),
            "seed {seed}"
        );
    }
    // Both shapes of the race happened, most of them real collisions.
    assert!(
        collisions >= 80,
        "{collisions} collisions, {one_sided} one-sided"
    );
    assert!(
        one_sided >= 1,
        "{collisions} collisions, {one_sided} one-sided"
    );
    assert!(redundant_deleted_by_initiator >= collisions * 3 / 4);
}

#[test]
fn ike_rekey_check_rejects_outcomes_that_break_the_rule() {
    // Find a real collision, then show the judgement fails if either peer kept the other
    // new SA, if the peers differ, or if the nonce order had been the other way round.
    let (_, w, end) = (0..40u64)
        .map(|seed| simultaneous_ike_rekey_run(2000 + seed, 0, 0))
        .find(|(_, w, e)| check_ike_rekey(w, e) == Ok(true))
        .expect("a real collision");
    let done: Vec<&RekeyExchange> = w.exchanges.iter().filter(|e| e.nr.is_some()).collect();
    let kept = end.held[0][0];
    let other = done
        .iter()
        .map(|e| e.spis().unwrap())
        .find(|s| *s != kept)
        .unwrap();
    // Both keep the redundant SA.
    let mut bad = end.clone();
    bad.held = [vec![other], vec![other]];
    assert!(check_ike_rekey(&w, &bad).is_err());
    // Each keeps a different SA.
    let mut bad = end.clone();
    bad.held = [vec![kept], vec![other]];
    assert!(check_ike_rekey(&w, &bad).is_err());
    // One keeps both.
    let mut bad = end.clone();
    bad.held[1].push(other);
    assert!(check_ike_rekey(&w, &bad).is_err());
    // Swapping the nonces of the two exchanges makes the real outcome wrong.
    let mut swapped = w.clone();
    let (a, b) = (swapped.exchanges[0].clone(), swapped.exchanges[1].clone());
    swapped.exchanges[0].ni = b.ni.clone();
    swapped.exchanges[0].nr.as_mut().unwrap().0 = b.nr.clone().unwrap().0;
    swapped.exchanges[1].ni = a.ni.clone();
    swapped.exchanges[1].nr.as_mut().unwrap().0 = a.nr.clone().unwrap().0;
    assert!(check_ike_rekey(&swapped, &end).is_err());
    // The old behaviour (one side refuses with TEMPORARY_FAILURE) is not a completed
    // collision: with the refused exchange's answer missing, a redundant SA is unexplained.
    let mut refused = w.clone();
    refused.exchanges[0].nr = None;
    refused.exchanges[1].nr = None;
    assert!(check_ike_rekey(&refused, &end).is_err());
    assert_eq!(check_ike_rekey(&w, &end), Ok(true));
}

// ---------------------------------------------------------------------------------------
// Certificates (RFC 7296 §2.15, RFC 7427): point-to-site clients and gateways prove who they
// are with an ECDSA certificate instead of a pre-shared key.

mod certs {
    use super::*;
    use ike::cert::{LocalCert, TrustAnchors};
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use std::sync::Arc;

    pub const NOW: u64 = 1_800_000_000;

    fn at(secs: u64) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(secs as i64).unwrap()
    }

    pub struct Ca {
        pub der: Vec<u8>,
        issuer: Issuer<'static, KeyPair>,
    }

    pub fn ca(cn: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.not_before = at(NOW - 86_400);
        p.not_after = at(NOW + 365 * 86_400);
        let der = p.self_signed(&key).unwrap().der().to_vec();
        Ca {
            der,
            issuer: Issuer::new(p, key),
        }
    }

    pub fn leaf(ca: &Ca, cn: &str) -> Arc<LocalCert> {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec![format!("{cn}.vnet")]).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.not_before = at(NOW - 3600);
        p.not_after = at(NOW + 30 * 86_400);
        let der = p.signed_by(&key, &ca.issuer).unwrap().der().to_vec();
        Arc::new(LocalCert::new(vec![der], &key.serialize_der()).unwrap())
    }

    /// A config that signs with `cert` (if any), trusts `ca` for the peer (if any), and
    /// believes the wall clock says `unix`.
    pub fn cert_cfg(
        role: Role,
        cert: Option<Arc<LocalCert>>,
        ca: Option<&Ca>,
        unix: u64,
    ) -> Config {
        let mut c = cfg(role, "aes256gcm16-prfsha256-ecp256", "aes256gcm16", b"psk");
        if let Some(cert) = &cert {
            c.local_id = cert.identity();
        }
        c.cert = cert;
        c.trust = ca.map(|ca| Arc::new(TrustAnchors::new(vec![ca.der.clone()]).unwrap()));
        c.unix_time = Some((Instant::now(), unix));
        c
    }

    pub fn run(ci: Config, cr: Config) -> Sim {
        let mut s = Sim::new(ci, cr, 77);
        s.p[0].ike.connect(s.now);
        s.run_for(Duration::from_secs(60));
        s
    }
}

#[test]
fn certificates_on_both_sides() {
    let ca = certs::ca("vnet P2S root");
    let client = certs::leaf(&ca, "client1");
    let gateway = certs::leaf(&ca, "gateway");
    let s = certs::run(
        certs::cert_cfg(Role::Initiator, Some(client.clone()), Some(&ca), certs::NOW),
        certs::cert_cfg(
            Role::Responder,
            Some(gateway.clone()),
            Some(&ca),
            certs::NOW,
        ),
    );
    assert_eq!(
        s.p[0].ike.state(),
        State::Established,
        "{:?}",
        s.p[0].events
    );
    assert_eq!(
        s.p[1].ike.state(),
        State::Established,
        "{:?}",
        s.p[1].events
    );
    assert_pairs(&s);
    // Each side learned the other's certificate subject as its identity.
    let ids = |k: usize| -> Vec<Identity> {
        s.p[k]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::IkeSaUp { remote_id, .. } => remote_id.clone(),
                _ => None,
            })
            .collect()
    };
    assert_eq!(ids(0), vec![gateway.identity()]);
    assert_eq!(ids(1), vec![client.identity()]);
    // The IKE_AUTH messages carried CERT payloads (the chain) and CERTREQ.
    assert!(s.net.log.len() >= 4);
}

#[test]
fn a_certificate_on_one_side_a_psk_on_the_other() {
    let ca = certs::ca("vnet P2S root");
    let client = certs::leaf(&ca, "client1");
    let mut gw = certs::cert_cfg(Role::Responder, None, Some(&ca), certs::NOW);
    gw.psk = zeroize::Zeroizing::new(b"psk".to_vec());
    let s = certs::run(
        certs::cert_cfg(Role::Initiator, Some(client), None, certs::NOW),
        gw,
    );
    assert_eq!(
        s.p[0].ike.state(),
        State::Established,
        "{:?}",
        s.p[0].events
    );
    assert_pairs(&s);
}

#[test]
fn untrusted_expired_or_missing_certificates_are_refused() {
    let ca = certs::ca("vnet P2S root");
    let rogue = certs::ca("someone else");
    let gateway = certs::leaf(&ca, "gateway");
    for (what, client, clock, responder_trusts) in [
        (
            "untrusted CA",
            certs::leaf(&rogue, "client1"),
            certs::NOW,
            Some(&ca),
        ),
        (
            "expired",
            certs::leaf(&ca, "client1"),
            certs::NOW + 60 * 86_400,
            Some(&ca),
        ),
        (
            "certificate where a PSK is configured",
            certs::leaf(&ca, "client1"),
            certs::NOW,
            None,
        ),
    ] {
        let s = certs::run(
            certs::cert_cfg(Role::Initiator, Some(client), Some(&ca), certs::NOW),
            certs::cert_cfg(
                Role::Responder,
                Some(gateway.clone()),
                responder_trusts,
                clock,
            ),
        );
        assert!(s.p[0].ike.is_closed() && s.p[1].ike.is_closed(), "{what}");
        assert_eq!(s.child_ups(0) + s.child_ups(1), 0, "{what}");
        let f = s.failures(1);
        assert!(
            matches!(f[0], Error::AuthenticationFailed(_)),
            "{what}: {f:?}"
        );
        assert_eq!(
            s.failures(0)[0],
            &Error::PeerRefused {
                exchange: ike::wire::exchange::IKE_AUTH,
                notify: ike::wire::notify::AUTHENTICATION_FAILED
            },
            "{what}"
        );
    }
}

/// Liveness checks are for a quiet peer: while authentic ESP arrives (reported with
/// `note_inbound_esp`) none is sent; once it stops and the peer is gone, DPD still finds out.
#[test]
fn no_liveness_checks_while_esp_arrives() {
    let mut i = cfg(
        Role::Initiator,
        "aes128gcm16-prfsha256-x25519",
        "aes128gcm16",
        b"k",
    );
    i.dpd = Some(Duration::from_secs(10));
    let mut s = Sim::new(
        i,
        cfg(
            Role::Responder,
            "aes128gcm16-prfsha256-x25519",
            "aes128gcm16",
            b"k",
        ),
        51,
    );
    s.p[0].ike.connect(s.now);
    s.run_for(Duration::from_secs(2));
    assert_eq!(s.p[0].ike.state(), State::Established);
    let sent_before = s.net.log.iter().filter(|(k, _)| *k == 0).count();
    // 60 s of "ESP" from the responder, one packet a second: no IKE message from us.
    for _ in 0..60 {
        let now = s.now;
        s.p[0].ike.note_inbound_esp(now);
        s.run_for(Duration::from_secs(1));
    }
    let sent = s.net.log.iter().filter(|(k, _)| *k == 0).count();
    assert_eq!(
        sent, sent_before,
        "a liveness check was sent while ESP arrived"
    );
    // The peer goes away: DPD notices.
    s.mute[1] = true;
    s.run_for(Duration::from_secs(600));
    assert!(s.p[0].ike.is_closed());
}

// ---------------------------------------------------------------------------------------
// Configuration payload (RFC 7296 §3.15): a remote-access client gets its inner address from
// the gateway's pool.

struct TestPool {
    free: std::sync::Mutex<Vec<std::net::Ipv4Addr>>,
    released: std::sync::Mutex<Vec<std::net::Ipv4Addr>>,
}

impl ike::cp::AddressPool for TestPool {
    fn assign(&self, _peer: &Identity) -> Option<std::net::Ipv4Addr> {
        self.free.lock().unwrap().pop()
    }
    fn release(&self, addr: std::net::Ipv4Addr) {
        self.released.lock().unwrap().push(addr);
    }
}

fn vip_sim(pool: std::sync::Arc<TestPool>) -> Sim {
    let mut i = cfg(
        Role::Initiator,
        "aes256gcm16-prfsha256-ecp256",
        "aes256gcm16",
        b"k",
    );
    i.request_vip = true;
    i.local_ts = vec![ts::parse_cidr("0.0.0.0/0").unwrap()];
    let mut r = cfg(
        Role::Responder,
        "aes256gcm16-prfsha256-ecp256",
        "aes256gcm16",
        b"k",
    );
    r.remote_ts = vec![ts::parse_cidr("10.9.0.0/24").unwrap()];
    r.vip_pool = Some(pool);
    r.vip_dns = vec!["10.2.0.53".parse().unwrap()];
    let mut s = Sim::new(i, r, 61);
    s.p[0].ike.connect(s.now);
    s.run_for(Duration::from_secs(20));
    s
}

#[test]
fn the_gateway_hands_out_an_inner_address() {
    let pool = std::sync::Arc::new(TestPool {
        free: std::sync::Mutex::new(vec!["10.9.0.7".parse().unwrap()]),
        released: Default::default(),
    });
    let mut s = vip_sim(pool.clone());
    assert_eq!(
        s.p[0].ike.state(),
        State::Established,
        "{:?}",
        s.p[0].events
    );
    assert_pairs(&s);
    let got: Vec<_> = s.p[0]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::VirtualIp {
                addr,
                dns,
                ours: true,
            } => Some((*addr, dns.clone())),
            _ => None,
        })
        .collect();
    let vip: std::net::Ipv4Addr = "10.9.0.7".parse().unwrap();
    assert_eq!(got, vec![(vip, vec!["10.2.0.53".parse().unwrap()])]);
    // The Child SA is narrowed to the inner address on the client's side.
    let c = &s.children(0)[0];
    assert_eq!(c.local_ts, vec![ts::parse_cidr("10.9.0.7/32").unwrap()]);
    assert_eq!(s.children(1)[0].remote_ts, c.local_ts);
    // A child rekey keeps it; closing the IKE SA gives the address back to the pool.
    s.p[0].ike.rekey_child(s.now, c.spi_in);
    s.run_for(Duration::from_secs(10));
    assert!(s
        .children(1)
        .iter()
        .all(|c| c.remote_ts == vec![ts::parse_cidr("10.9.0.7/32").unwrap()]));
    s.p[0].ike.close_connection(s.now);
    s.run_for(Duration::from_secs(10));
    assert!(s.p[1].ike.is_closed());
    assert_eq!(*pool.released.lock().unwrap(), vec![vip]);
}

#[test]
fn an_exhausted_pool_refuses_the_child_sa() {
    let pool = std::sync::Arc::new(TestPool {
        free: Default::default(),
        released: Default::default(),
    });
    let s = vip_sim(pool);
    assert_eq!(s.child_ups(0) + s.child_ups(1), 0);
    assert!(
        s.failures(0)
            .iter()
            .any(|e| e.to_string().contains("INTERNAL_ADDRESS_FAILURE")
                || e.to_string().contains("no inner address")),
        "{:?}",
        s.p[0].events
    );
}
