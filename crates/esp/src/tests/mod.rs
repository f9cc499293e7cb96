//! Tests of the whole crate: published vectors, round trips, hostile input, properties.

mod corpus;
mod hostile;
mod lifetime;
mod props;
mod replay;
mod roundtrip;
mod udp;
mod vectors;

use std::time::Instant;

use crate::{EspSuite, InboundSa, IvSource, Mode, OutboundSa, SaConfig, SaKeys};

/// Bytes from hex, ignoring white space.
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// A deterministic IV source (a counter), standing in for the caller's CSPRNG.
pub(crate) fn counter_iv() -> Box<dyn IvSource + Send> {
    let mut c = 0u8;
    Box::new(move |iv: &mut [u8]| {
        for b in iv {
            c = c.wrapping_add(0x3b);
            *b = c;
        }
    })
}

pub(crate) fn keys(suite: EspSuite, seed: u8) -> SaKeys {
    let km: Vec<u8> = (0..suite.keymat_len())
        .map(|i| (i as u8).wrapping_mul(7) ^ seed)
        .collect();
    SaKeys::from_keymat(suite, &km).unwrap()
}

pub(crate) const SPI: u32 = 0x1234_5678;

pub(crate) fn config(suite: EspSuite, esn: bool) -> SaConfig {
    let mut c = SaConfig::new(SPI, keys(suite, 0x42));
    c.esn = esn;
    c.allow_null_encryption = true;
    c
}

/// Outbound and inbound SA with the same keys.
pub(crate) fn pair_with(c: SaConfig, now: Instant) -> (OutboundSa, InboundSa) {
    let tx = OutboundSa::new(c.clone(), now, Some(counter_iv())).unwrap();
    let rx = InboundSa::new(c, now).unwrap();
    (tx, rx)
}

pub(crate) fn pair(suite: EspSuite, esn: bool, now: Instant) -> (OutboundSa, InboundSa) {
    pair_with(config(suite, esn), now)
}

/// An IPv4-looking inner packet of `len` octets (`len` >= 1).
pub(crate) fn ipv4_packet(len: usize, fill: u8) -> Vec<u8> {
    let mut p = vec![fill; len];
    p[0] = 0x45;
    p
}

#[allow(dead_code)]
pub(crate) fn transport(mut c: SaConfig) -> SaConfig {
    c.mode = Mode::Transport;
    c
}
