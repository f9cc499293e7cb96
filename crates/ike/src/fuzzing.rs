//! Entry points shared by the cargo-fuzz targets and the corpus replay test.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::proposal::{Kind, ProposalSpec};
use crate::session::{Config, Identity, Ike, Role};
use crate::{ts, wire, SeededRng};

/// Parses arbitrary octets as an IKE message and, if it has an SK payload, its plaintext
/// as a payload chain; emits what parsed and parses it again. Must never panic.
pub fn parse_target(data: &[u8]) {
    if let Ok(m) = wire::parse_message(data) {
        let again = wire::emit_plain(m.header, &m.payloads);
        let reparsed = wire::parse_message(&again).expect("emitted message parses");
        assert_eq!(reparsed.payloads, m.payloads);
        if let Some(e) = m.encrypted {
            let _ = wire::parse_payloads(e.first, &data[e.body..]);
        }
    }
    if let Some((&first, rest)) = data.split_first() {
        if let Ok(p) = wire::parse_payloads(first, rest) {
            let mut out = Vec::new();
            wire::emit_payloads(&p, wire::payload_type::NONE, &mut out);
            assert_eq!(wire::parse_payloads(first, &out).expect("re-parse"), p);
        }
    }
}

/// Feeds arbitrary octets to a responder engine (and to one that has a half-open SA) as
/// datagrams. Must never panic.
pub fn engine_target(data: &[u8]) {
    let now = Instant::now();
    let a: SocketAddr = "198.18.0.1:500".parse().expect("addr");
    let b: SocketAddr = "198.18.0.2:500".parse().expect("addr");
    let cfg = |role| Config {
        ike_proposals: ProposalSpec::parse_list(
            Kind::Ike,
            "aes128gcm16-prfsha256-x25519,aes256-sha256-modp1024",
        )
        .expect("proposal"),
        esp_proposals: ProposalSpec::parse_list(Kind::Esp, "aes128gcm16").expect("proposal"),
        local_ts: vec![ts::parse_cidr("10.1.0.0/16").expect("cidr")],
        remote_ts: vec![ts::parse_cidr("10.2.0.0/16").expect("cidr")],
        ..Config::new(role, Identity::Fqdn("fuzz".into()), b"fuzz".to_vec())
    };
    let mut r = Ike::new(cfg(Role::Responder), b, a, Box::new(SeededRng::new(1)), now);
    for chunk in data.split(|&x| x == 0xfe) {
        r.handle_datagram(now, a, b, chunk);
        while r.poll_transmit().is_some() {}
        while r.poll_event().is_some() {}
    }
    // A responder that has answered a real IKE_SA_INIT, then gets the fuzz input.
    let mut i = Ike::new(cfg(Role::Initiator), a, b, Box::new(SeededRng::new(2)), now);
    let mut r = Ike::new(cfg(Role::Responder), b, a, Box::new(SeededRng::new(3)), now);
    i.connect(now);
    if let Some(t) = i.poll_transmit() {
        r.handle_datagram(now, t.src, t.dst, &t.payload);
    }
    while r.poll_transmit().is_some() {}
    r.handle_datagram(now + Duration::from_millis(1), a, b, data);
    while r.poll_transmit().is_some() {}
    while r.poll_event().is_some() {}
}
