//! The stateless COOKIE front end (RFC 7296 §2.6) in front of responder sessions, with the
//! initiator engine on the other side.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ike::wire::{self, notify, Payload};
use ike::{
    ts, Config, CookieConfig, CookieGate, Identity, Ike, Kind, ProposalSpec, Role, SeededRng,
    State, Transmit, Verdict,
};

const A: &str = "198.18.0.1:500";
const B: &str = "198.18.0.2:500";

fn cfg(role: Role) -> Config {
    let (l, r) = match role {
        Role::Initiator => ("10.1.0.0/16", "10.2.0.0/16"),
        Role::Responder => ("10.2.0.0/16", "10.1.0.0/16"),
    };
    Config {
        ike_proposals: ProposalSpec::parse_list(Kind::Ike, "aes128gcm16-prfsha256-x25519").unwrap(),
        esp_proposals: ProposalSpec::parse_list(Kind::Esp, "aes128gcm16").unwrap(),
        local_ts: vec![ts::parse_cidr(l).unwrap()],
        remote_ts: vec![ts::parse_cidr(r).unwrap()],
        ..Config::new(
            role,
            Identity::Fqdn(format!("{role:?}.vnet")),
            b"k".to_vec(),
        )
    }
}

/// A responder host: the gate, then one session per (peer, SPIi).
struct Server {
    gate: CookieGate,
    sessions: HashMap<(SocketAddr, u64), Ike>,
    seed: u64,
    /// Every answer the gate sent.
    gate_replies: Vec<Vec<u8>>,
}

impl Server {
    fn new(threshold: usize, now: Instant) -> Server {
        let c = CookieConfig {
            threshold,
            rotate_every: Duration::from_secs(60),
            grace: Duration::from_secs(5),
        };
        Server {
            gate: CookieGate::new(c, Box::new(SeededRng::new(77)), now),
            sessions: HashMap::new(),
            seed: 1,
            gate_replies: Vec::new(),
        }
    }

    fn receive(
        &mut self,
        now: Instant,
        src: SocketAddr,
        dst: SocketAddr,
        d: &[u8],
    ) -> Vec<Transmit> {
        let spi_i = d
            .get(..8)
            .map_or(0, |x| u64::from_be_bytes(x.try_into().unwrap()));
        if let Some(s) = self.sessions.get_mut(&(src, spi_i)) {
            s.handle_datagram(now, src, dst, d);
        } else {
            match self.gate.handle(now, src, dst, d) {
                Verdict::Accept => {
                    self.seed += 1;
                    let mut s = Ike::new(
                        cfg(Role::Responder),
                        dst,
                        src,
                        Box::new(SeededRng::new(self.seed)),
                        now,
                    );
                    s.handle_datagram(now, src, dst, d);
                    self.sessions.insert((src, spi_i), s);
                }
                Verdict::Reply(t) => {
                    self.gate_replies.push(t.payload.clone());
                    return vec![t];
                }
                Verdict::Drop => {}
            }
        }
        let mut out = Vec::new();
        for s in self.sessions.values_mut() {
            while let Some(t) = s.poll_transmit() {
                out.push(t);
            }
            while let Some(e) = s.poll_event() {
                if matches!(e, ike::Event::IkeSaUp { .. } | ike::Event::Closed { .. }) {
                    self.gate.half_open_done();
                }
            }
        }
        out
    }
}

/// Runs an initiator against the server without loss until quiet.
fn converse(i: &mut Ike, srv: &mut Server, now: &mut Instant) {
    let a: SocketAddr = A.parse().unwrap();
    for _ in 0..100 {
        let mut moved = false;
        while let Some(t) = i.poll_transmit() {
            moved = true;
            for back in srv.receive(*now, a, t.dst, &t.payload) {
                i.handle_datagram(*now, back.src, back.dst, &back.payload);
            }
        }
        if !moved {
            return;
        }
        *now += Duration::from_millis(10);
    }
}

fn initiator(now: Instant, seed: u64) -> Ike {
    let mut i = Ike::new(
        cfg(Role::Initiator),
        A.parse().unwrap(),
        B.parse().unwrap(),
        Box::new(SeededRng::new(seed)),
        now,
    );
    i.connect(now);
    i
}

fn cookie_of(reply: &[u8]) -> Vec<u8> {
    let m = wire::parse_message(reply).unwrap();
    assert_eq!(m.header.spi_r, 0, "a stateless answer has no SPIr");
    assert_eq!(m.payloads.len(), 1);
    wire::find_notify(&m.payloads, notify::COOKIE)
        .expect("COOKIE")
        .data
        .clone()
}

/// An IKE_SA_INIT request as the initiator sends it, carrying `cookie` first.
fn with_cookie(request: &[u8], cookie: Option<Vec<u8>>) -> Vec<u8> {
    let m = wire::parse_message(request).unwrap();
    let mut p: Vec<Payload> = m
        .payloads
        .into_iter()
        .filter(|x| !matches!(x, Payload::Notify(n) if n.ty == notify::COOKIE))
        .collect();
    if let Some(c) = cookie {
        p.insert(0, Payload::Notify(wire::Notify::new(notify::COOKIE, c)));
    }
    wire::emit_plain(m.header, &p)
}

#[test]
fn below_threshold_no_cookie() {
    let mut now = Instant::now();
    let mut srv = Server::new(2, now);
    let mut i = initiator(now, 1);
    converse(&mut i, &mut srv, &mut now);
    assert_eq!(i.state(), State::Established);
    assert!(srv.gate_replies.is_empty());
    assert_eq!(srv.sessions.len(), 1);
    // Established: no longer half-open.
    assert_eq!(srv.gate.half_open(), 0);
    // A second and a third peer while one is half-open: still under the threshold of 2
    // for the second.
    srv.gate.set_half_open(1);
    let mut j = initiator(now, 2);
    converse(&mut j, &mut srv, &mut now);
    assert_eq!(j.state(), State::Established);
    assert!(srv.gate_replies.is_empty());
}

#[test]
fn above_threshold_cookie_demanded_then_initiator_succeeds() {
    let mut now = Instant::now();
    let mut srv = Server::new(2, now);
    srv.gate.set_half_open(2);
    let mut i = initiator(now, 3);
    converse(&mut i, &mut srv, &mut now);
    assert_eq!(i.state(), State::Established);
    assert_eq!(srv.gate_replies.len(), 1, "exactly one cookie round trip");
    let c = cookie_of(&srv.gate_replies[0]);
    assert_eq!(c.len(), 33);
    assert_eq!(srv.sessions.len(), 1);
    let s = srv.sessions.values().next().unwrap();
    assert_eq!(s.state(), State::Established);
    assert_eq!(i.ike_sa().unwrap().0, s.ike_sa().unwrap().0);
    assert_eq!(i.child_sas().count(), 1);
}

#[test]
fn half_open_counted_from_admitted_sessions() {
    let mut now = Instant::now();
    let mut srv = Server::new(1, now);
    let (a, b): (SocketAddr, SocketAddr) = (A.parse().unwrap(), B.parse().unwrap());
    // One initiator sends IKE_SA_INIT and goes away: one half-open SA.
    let mut gone = initiator(now, 4);
    let t = gone.poll_transmit().unwrap();
    srv.receive(now, a, b, &t.payload);
    assert_eq!(srv.gate.half_open(), 1);
    assert!(srv.gate.under_load());
    // The next one must bring a cookie.
    let mut i = initiator(now, 5);
    converse(&mut i, &mut srv, &mut now);
    assert_eq!(i.state(), State::Established);
    assert_eq!(srv.gate_replies.len(), 1);
}

#[test]
fn forged_and_misbound_cookies_refused_without_state() {
    let mut now = Instant::now();
    let mut srv = Server::new(0, now);
    let (a, b): (SocketAddr, SocketAddr) = (A.parse().unwrap(), B.parse().unwrap());
    let mut i = initiator(now, 6);
    let req = i.poll_transmit().unwrap().payload;
    let out = srv.receive(now, a, b, &req);
    let good = cookie_of(&out[0].payload);
    let before = srv.gate.half_open();

    let refuse = |srv: &mut Server, src: SocketAddr, d: &[u8]| {
        let out = srv.receive(now, src, b, d);
        assert_eq!(out.len(), 1, "answered statelessly");
        assert!(srv.sessions.is_empty(), "no session created");
        cookie_of(&out[0].payload)
    };
    // Forged: right length and version, wrong hash.
    let mut forged = good.clone();
    forged[5] ^= 1;
    let fresh = refuse(&mut srv, a, &with_cookie(&req, Some(forged)));
    assert_eq!(fresh, good, "the answer is a fresh cookie for this request");
    // Truncated, empty, unknown version.
    let mut short = good.clone();
    short.truncate(20);
    refuse(&mut srv, a, &with_cookie(&req, Some(short)));
    refuse(&mut srv, a, &with_cookie(&req, Some(vec![])));
    let mut ver = good.clone();
    ver[0] = ver[0].wrapping_add(7);
    refuse(&mut srv, a, &with_cookie(&req, Some(ver)));
    // The right cookie from another address, or for another SPIi or nonce.
    refuse(
        &mut srv,
        "198.18.0.9:500".parse().unwrap(),
        &with_cookie(&req, Some(good.clone())),
    );
    let mut other_spi = with_cookie(&req, Some(good.clone()));
    other_spi[3] ^= 1;
    refuse(&mut srv, a, &other_spi);
    let mut j = initiator(now, 7);
    let other_req = j.poll_transmit().unwrap().payload;
    refuse(&mut srv, a, &with_cookie(&other_req, Some(good.clone())));
    // Not first: the RFC puts COOKIE first.
    let m = wire::parse_message(&req).unwrap();
    let mut p = m.payloads.clone();
    p.push(Payload::Notify(wire::Notify::new(
        notify::COOKIE,
        good.clone(),
    )));
    refuse(&mut srv, a, &wire::emit_plain(m.header, &p));
    assert_eq!(srv.gate.half_open(), before);
    // Junk and responses are dropped without an answer.
    assert!(srv.receive(now, a, b, &[1, 2, 3]).is_empty());
    assert!(srv.receive(now, a, b, &out[0].payload).is_empty());
    // The genuine cookie is accepted.
    srv.receive(now, a, b, &with_cookie(&req, Some(good)));
    assert_eq!(srv.sessions.len(), 1);
    let _ = &mut now;
}

#[test]
fn secret_rotation_accepts_previous_version_during_grace_only() {
    let t0 = Instant::now();
    let (a, b): (SocketAddr, SocketAddr) = (A.parse().unwrap(), B.parse().unwrap());
    let mut gate = CookieGate::new(
        CookieConfig {
            threshold: 0,
            rotate_every: Duration::from_secs(60),
            grace: Duration::from_secs(5),
        },
        Box::new(SeededRng::new(9)),
        t0,
    );
    let mut i = initiator(t0, 8);
    let req = i.poll_transmit().unwrap().payload;
    let Verdict::Reply(r) = gate.handle(t0, a, b, &req) else {
        panic!("cookie demanded");
    };
    let c0 = cookie_of(&r.payload);
    // Across the rotation, within grace: accepted.
    let t1 = t0 + Duration::from_secs(62);
    assert_eq!(gate.poll_timeout(), t0 + Duration::from_secs(60));
    assert_eq!(
        gate.handle(t1, a, b, &with_cookie(&req, Some(c0.clone()))),
        Verdict::Accept
    );
    // The current secret now has another version, and another cookie.
    let Verdict::Reply(r) = gate.handle(t1, a, b, &req) else {
        panic!("cookie demanded");
    };
    let c1 = cookie_of(&r.payload);
    assert_ne!(c1[0], c0[0]);
    assert_ne!(c1, c0);
    assert_eq!(
        gate.handle(t1, a, b, &with_cookie(&req, Some(c1.clone()))),
        Verdict::Accept
    );
    // After the grace period the old one is refused with a fresh cookie.
    let t2 = t0 + Duration::from_secs(66);
    match gate.handle(t2, a, b, &with_cookie(&req, Some(c0.clone()))) {
        Verdict::Reply(r) => assert_eq!(cookie_of(&r.payload), c1),
        v => panic!("stale cookie accepted: {v:?}"),
    }
    // Two rotations later neither is good.
    let t3 = t0 + Duration::from_secs(130);
    gate.handle_timeout(t3);
    for c in [c0, c1] {
        assert!(matches!(
            gate.handle(
                t3 + Duration::from_secs(10),
                a,
                b,
                &with_cookie(&req, Some(c))
            ),
            Verdict::Reply(_)
        ));
    }
}

#[test]
fn stateless_answer_on_port_4500_keeps_the_marker() {
    // On port 4500 the answer keeps the non-ESP marker.
    let t0 = Instant::now();
    let a: SocketAddr = "198.18.0.1:4500".parse().unwrap();
    let b: SocketAddr = "198.18.0.2:4500".parse().unwrap();
    let mut gate = CookieGate::new(
        CookieConfig {
            threshold: 0,
            ..CookieConfig::default()
        },
        Box::new(SeededRng::new(3)),
        t0,
    );
    let mut i = initiator(t0, 10);
    let mut req = vec![0, 0, 0, 0];
    req.extend_from_slice(&i.poll_transmit().unwrap().payload);
    let Verdict::Reply(r) = gate.handle(t0, a, b, &req) else {
        panic!("cookie demanded");
    };
    assert_eq!(&r.payload[..4], &[0, 0, 0, 0]);
    assert_eq!((r.src, r.dst), (b, a));
    cookie_of(&r.payload[4..]);
}
