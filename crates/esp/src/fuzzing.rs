//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the corpus replay test. Not
//! part of the API. Each function must never panic on any input, and asserts the invariants
//! it can check.

use std::time::Instant;

use crate::sa::{InboundSa, Mode, OpenError, Opened, OutboundSa, SaConfig};
use crate::suite::EspSuite;
use crate::udp::{self, Demux};
use crate::SaKeys;

/// SPI of the fuzzing SAs.
pub const SPI: u32 = 0x0c0f_fee0;

fn suite(index: u8) -> EspSuite {
    let all: Vec<EspSuite> = EspSuite::all().collect();
    all[usize::from(index) % all.len()]
}

fn config(suite: EspSuite, esn: bool, mode: Mode) -> SaConfig {
    let keymat: Vec<u8> = (0..suite.keymat_len()).map(|i| i as u8 ^ 0x5a).collect();
    let mut c = SaConfig::new(
        SPI,
        SaKeys::from_keymat(suite, &keymat).expect("key length"),
    );
    c.esn = esn;
    c.mode = mode;
    c.allow_null_encryption = true;
    c
}

fn pair(selector: u8) -> (OutboundSa, InboundSa) {
    let s = suite(selector & 0x0f);
    let esn = selector & 0x10 != 0;
    let mode = if selector & 0x80 != 0 {
        Mode::Transport
    } else {
        Mode::Tunnel
    };
    let now = Instant::now();
    let mut counter = 0u8;
    let iv = move |b: &mut [u8]| {
        for x in b {
            counter = counter.wrapping_add(1);
            *x = counter;
        }
    };
    let tx = OutboundSa::new(config(s, esn, mode), now, Some(Box::new(iv))).expect("outbound");
    let rx = InboundSa::new(config(s, esn, mode), now).expect("inbound");
    (tx, rx)
}

fn check_opened(r: &Result<Opened, OpenError>, len: usize) {
    if let Ok(Opened::Packet { payload, .. }) = r {
        assert!(payload.start <= payload.end && payload.end <= len);
    }
}

/// `data[0]` selects the suite (low 4 bits), ESN (0x10) and transport mode (0x80).
/// - 0x40 clear: `data[1..]` is a hostile packet for `open` (0x20: its SPI is patched to the
///   SA's so that the fuzzer gets past the SPI check).
/// - 0x40 set, 0x20 clear: `data[1..]` is an arbitrary encrypted part, sealed with a valid ICV;
///   `open` must then fail only on padding or next header, and refuse the packet a second time.
/// - 0x40 and 0x20 set: `data[2..]` is sealed with next header `data[1]`; if sealing succeeds
///   opening must give it back.
pub fn open_target(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (mut tx, mut rx) = pair(selector);
    let now = Instant::now();
    match (selector & 0x40 != 0, selector & 0x20 != 0) {
        (false, patch) => {
            let mut pkt = rest.to_vec();
            if patch && pkt.len() >= 4 {
                pkt[..4].copy_from_slice(&SPI.to_be_bytes());
            }
            let len = pkt.len();
            let r = rx.open(now, &mut pkt);
            check_opened(&r, len);
        }
        (true, false) => {
            let b = tx.suite().block_len();
            let body_len = rest.len() / b * b;
            if body_len == 0 {
                return;
            }
            let mut pkt = vec![0u8; tx.suite().max_overhead() + body_len];
            let n = tx.seal_raw(&rest[..body_len], &mut pkt).expect("seal_raw");
            let sealed = pkt[..n].to_vec();
            let r = rx.open(now, &mut pkt[..n]);
            check_opened(&r, n);
            match r {
                Ok(_) | Err(OpenError::BadPadding) | Err(OpenError::NextHeaderNotAllowed(_)) => {}
                Err(e) => panic!("authentic packet refused: {e:?}"),
            }
            let mut again = sealed;
            let r2 = rx.open(now, &mut again);
            assert!(
                matches!(r2, Err(OpenError::Replay(_))),
                "replay accepted: {r2:?}"
            );
        }
        (true, true) => {
            let Some((&nh, inner)) = rest.split_first() else {
                return;
            };
            let mut pkt = vec![0u8; tx.sealed_len(inner.len())];
            let Ok(n) = tx.seal(now, inner, nh, &mut pkt) else {
                return;
            };
            assert_eq!(n, pkt.len());
            match rx.open(now, &mut pkt) {
                Ok(Opened::Packet {
                    next_header,
                    payload,
                    ..
                }) => {
                    assert_eq!(next_header, nh);
                    assert_eq!(&pkt[payload], inner);
                }
                Ok(Opened::Dummy { .. }) => assert_eq!(nh, crate::NEXT_HEADER_DUMMY),
                Err(e) => panic!("round trip failed: {e:?}"),
            }
        }
    }
}

/// `data` is a UDP datagram (header included) received on port 4500: unframe it, classify
/// the payload, and hand ESP packets to an SA (`data[0]` low bits choose its suite).
pub fn udp_demux_target(data: &[u8]) {
    let Ok((header, range)) = udp::unframe_udp(data) else {
        return;
    };
    assert!(range.end <= data.len() && usize::from(header.length) == range.end);
    let payload = &data[range];
    match udp::classify(payload) {
        Demux::Keepalive => assert_eq!(payload, &udp::NAT_KEEPALIVE[..]),
        Demux::Ike { message } => {
            assert_eq!(&payload[..4], &udp::NON_ESP_MARKER[..]);
            assert!(message.end <= payload.len());
            // Re-framing the IKE message gives the same payload back.
            let ike = &payload[message];
            let mut buf = vec![0u8; udp::UDP_HEADER_LEN + 4 + ike.len()];
            buf[12..].copy_from_slice(ike);
            if let Ok(n) = udp::frame_ike_in_udp(&mut buf, 4500, 4500, ike.len()) {
                assert_eq!(&buf[udp::UDP_HEADER_LEN..n], payload);
            }
        }
        Demux::Esp { spi } => {
            assert_ne!(spi, 0);
            let (_, mut rx) = pair(data.first().copied().unwrap_or(0) & 0x1f);
            let mut pkt = payload.to_vec();
            let len = pkt.len();
            let r = rx.open(Instant::now(), &mut pkt);
            check_opened(&r, len);
            if spi != SPI {
                assert_eq!(r, Err(OpenError::WrongSpi(spi)));
            }
        }
        Demux::Invalid(_) => assert!(payload.len() < 8),
    }
}

/// Seed inputs for both targets: for every suite (with and without ESN, both modes) a valid
/// sealed packet as a hostile-open input and inside a UDP datagram, plus keepalive and IKE
/// datagrams.
pub fn seed_inputs() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut open = Vec::new();
    let mut demux = Vec::new();
    let n = EspSuite::all().count() as u8;
    for s in 0..n {
        for flags in [0x00u8, 0x10, 0x80, 0x90] {
            let selector = s | flags;
            let (mut tx, _) = pair(selector);
            let inner = [0x45u8, 0, 0, 40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
            let mut pkt = vec![0u8; tx.sealed_len(inner.len())];
            if tx.seal(Instant::now(), &inner, 4, &mut pkt).is_err() {
                continue;
            }
            let mut o = vec![selector];
            o.extend_from_slice(&pkt);
            open.push(o);
            let mut raw = vec![selector | 0x40];
            raw.extend_from_slice(&inner);
            raw.extend_from_slice(&[1, 2, 2, 4]);
            open.push(raw);
            let mut rt = vec![selector | 0x60, 4];
            rt.extend_from_slice(&inner);
            open.push(rt);
            let mut d = vec![0u8; udp::UDP_HEADER_LEN + pkt.len()];
            d[udp::UDP_HEADER_LEN..].copy_from_slice(&pkt);
            udp::frame_esp_in_udp(&mut d, 4500, 4500, pkt.len()).expect("frame");
            // The demux target takes the SA's suite from the first octet (the source port's
            // high octet).
            d[0] = selector & 0x1f;
            demux.push(d);
        }
    }
    let mut keepalive = vec![0u8; 9];
    keepalive[8] = 0xff;
    udp::frame_esp_in_udp(&mut keepalive, 4500, 4500, 1).expect("frame");
    demux.push(keepalive);
    let mut ike = vec![0u8; 12 + 28];
    ike[12..].copy_from_slice(&[0x11; 28]);
    udp::frame_ike_in_udp(&mut ike, 500, 4500, 28).expect("frame");
    demux.push(ike);
    (open, demux)
}
