//! Round trips for every suite, ESN across 2^32, replay behaviour of an SA.

use std::time::Instant;

use super::{config, ipv4_packet, pair, pair_with, transport, SPI};
use crate::{
    EspSuite, InboundSa, OpenError, Opened, OutboundSa, ReplayError, SaConfig, SealError,
    NEXT_HEADER_DUMMY, NEXT_HEADER_IPV4, NEXT_HEADER_IPV6,
};

fn seal(tx: &mut OutboundSa, inner: &[u8], nh: u8) -> Vec<u8> {
    let mut out = vec![0u8; tx.sealed_len(inner.len()) + 7];
    let n = tx.seal(Instant::now(), inner, nh, &mut out).unwrap();
    assert_eq!(n, tx.sealed_len(inner.len()));
    out.truncate(n);
    out
}

fn open(rx: &mut InboundSa, pkt: &[u8]) -> Result<(u8, Vec<u8>, u64), OpenError> {
    let mut buf = pkt.to_vec();
    match rx.open(Instant::now(), &mut buf)? {
        Opened::Packet {
            next_header,
            payload,
            seq,
        } => Ok((next_header, buf[payload].to_vec(), seq)),
        Opened::Dummy { seq } => Ok((NEXT_HEADER_DUMMY, Vec::new(), seq)),
    }
}

#[test]
fn every_suite_round_trips() {
    let sizes = [1usize, 2, 3, 13, 14, 15, 16, 17, 31, 64, 1400, 9000];
    let mut suites = 0;
    for suite in EspSuite::all() {
        suites += 1;
        for esn in [false, true] {
            let (mut tx, mut rx) = pair(suite, esn, Instant::now());
            for (i, &len) in sizes.iter().enumerate() {
                let inner = ipv4_packet(len, i as u8);
                let pkt = seal(&mut tx, &inner, NEXT_HEADER_IPV4);
                assert_eq!(pkt.len(), suite.sealed_len(len));
                assert_eq!(
                    (pkt.len() - suite.header_len() - suite.icv_len()) % suite.block_len(),
                    0
                );
                assert_eq!(&pkt[..4], &SPI.to_be_bytes());
                assert_eq!(&pkt[4..8], &(i as u32 + 1).to_be_bytes());
                if !suite.is_null_encryption() && len >= 17 {
                    assert!(
                        !pkt.windows(16).any(|w| w == &inner[1..17]),
                        "{suite}: plaintext visible"
                    );
                }
                let (nh, payload, seq) = open(&mut rx, &pkt).unwrap();
                assert_eq!((nh, seq), (NEXT_HEADER_IPV4, i as u64 + 1), "{suite}");
                assert_eq!(payload, inner, "{suite} len {len}");
            }
            let mut v6 = vec![0u8; 40];
            v6[0] = 0x60;
            let pkt = seal(&mut tx, &v6, NEXT_HEADER_IPV6);
            assert_eq!(open(&mut rx, &pkt).unwrap().1, v6);
            assert_eq!(tx.stats().packets, sizes.len() as u64 + 1);
            assert_eq!(rx.stats(), tx.stats());
        }
    }
    assert_eq!(suites, 15);
}

#[test]
fn empty_payload_in_transport_mode() {
    for suite in EspSuite::all() {
        let (mut tx, mut rx) = pair_with(transport(config(suite, false)), Instant::now());
        let pkt = seal(&mut tx, &[], 17);
        assert_eq!(open(&mut rx, &pkt).unwrap(), (17, Vec::new(), 1));
    }
}

#[test]
fn seal_in_place_matches_seal() {
    for suite in [EspSuite::AES_GCM_128, EspSuite::CHACHA20_POLY1305] {
        let (mut a, _) = pair(suite, false, Instant::now());
        let (mut b, mut rx) = pair(suite, false, Instant::now());
        let inner = ipv4_packet(100, 9);
        let p1 = seal(&mut a, &inner, 4);
        let mut buf = vec![0u8; 256];
        let hdr = b.header_len();
        buf[hdr..hdr + inner.len()].copy_from_slice(&inner);
        let n = b
            .seal_in_place(Instant::now(), &mut buf, inner.len(), 4)
            .unwrap();
        assert_eq!(&buf[..n], &p1[..]);
        assert_eq!(open(&mut rx, &buf[..n]).unwrap().1, inner);
    }
}

#[test]
fn buffer_too_small_consumes_nothing() {
    let (mut tx, mut rx) = pair(EspSuite::AES_GCM_256, false, Instant::now());
    let inner = ipv4_packet(100, 1);
    let needed = tx.sealed_len(100);
    let mut out = vec![0u8; needed - 1];
    assert_eq!(
        tx.seal(Instant::now(), &inner, 4, &mut out),
        Err(SealError::BufferTooSmall { needed })
    );
    assert_eq!(tx.last_seq(), 0);
    let pkt = seal(&mut tx, &inner, 4);
    assert_eq!(open(&mut rx, &pkt).unwrap().2, 1);
}

#[test]
fn tunnel_mode_checks_next_header_on_seal() {
    let (mut tx, _) = pair(EspSuite::AES_GCM_128, false, Instant::now());
    let mut out = [0u8; 256];
    let v4 = ipv4_packet(20, 0);
    assert_eq!(
        tx.seal(Instant::now(), &v4, 6, &mut out),
        Err(SealError::NextHeaderNotAllowed(6))
    );
    assert_eq!(
        tx.seal(Instant::now(), &v4, NEXT_HEADER_IPV6, &mut out),
        Err(SealError::NextHeaderNotAllowed(NEXT_HEADER_IPV6))
    );
    assert_eq!(
        tx.seal(Instant::now(), &[], NEXT_HEADER_IPV4, &mut out),
        Err(SealError::NextHeaderNotAllowed(NEXT_HEADER_IPV4))
    );
    assert_eq!(tx.last_seq(), 0, "refused packets use no sequence number");
}

#[test]
fn dummy_packets_are_a_distinct_verdict() {
    for suite in EspSuite::all() {
        let (mut tx, mut rx) = pair(suite, false, Instant::now());
        let pkt = seal(&mut tx, &[0xa5; 33], NEXT_HEADER_DUMMY);
        let mut buf = pkt.clone();
        assert_eq!(
            rx.open(Instant::now(), &mut buf),
            Ok(Opened::Dummy { seq: 1 })
        );
        // Authenticated and counted, so a replay of it is refused.
        let mut buf = pkt;
        assert_eq!(
            rx.open(Instant::now(), &mut buf),
            Err(OpenError::Replay(ReplayError::Duplicate))
        );
        assert_eq!(rx.stats().packets, 1);
        // An empty dummy too.
        let pkt = seal(&mut tx, &[], NEXT_HEADER_DUMMY);
        assert_eq!(open(&mut rx, &pkt).unwrap().2, 2);
    }
}

/// ESN: the sender crosses 2^32; the receiver infers the high bits, which are never sent.
#[test]
fn esn_across_the_2_pow_32_boundary() {
    for suite in EspSuite::all() {
        let (mut tx, mut rx) = pair(suite, true, Instant::now());
        let start = (1u64 << 32) - 5;
        tx.set_next_seq(start);
        let pkts: Vec<(u64, Vec<u8>, Vec<u8>)> = (0..10)
            .map(|i| {
                let inner = ipv4_packet(40 + i, i as u8);
                (start + i as u64, seal(&mut tx, &inner, 4), inner)
            })
            .collect();
        for (seq, p, _) in &pkts {
            assert_eq!(&p[4..8], &(*seq as u32).to_be_bytes(), "low 32 bits only");
        }
        // The receiver starts empty, gets its first packet near the end of subspace 0, then
        // crosses 2^32 with reordering.
        let order = [0usize, 2, 1, 4, 3, 6, 5, 9, 7, 8];
        for &i in &order {
            let (seq, p, inner) = &pkts[i];
            let (nh, payload, got) =
                open(&mut rx, p).unwrap_or_else(|e| panic!("{suite} {i}: {e:?}"));
            assert_eq!((nh, got), (4, *seq), "{suite}");
            assert_eq!(&payload, inner);
        }
        assert_eq!(rx.replay_window().top(), start + 9);
        // Every one of them is now a duplicate.
        for (_, p, _) in &pkts {
            assert_eq!(
                open(&mut rx, p),
                Err(OpenError::Replay(ReplayError::Duplicate))
            );
        }
    }
}

/// Without ESN the same sender stops at 2^32 - 1 instead of wrapping.
#[test]
fn sequence_number_never_wraps() {
    for esn in [false, true] {
        let (mut tx, mut rx) = pair(EspSuite::AES_GCM_128, esn, Instant::now());
        let last = if esn { u64::MAX } else { u64::from(u32::MAX) };
        tx.set_next_seq(last - 1);
        rx.replay_window_mut().reset_to(last - 2);
        let inner = ipv4_packet(30, 3);
        let p1 = seal(&mut tx, &inner, 4);
        let p2 = seal(&mut tx, &inner, 4);
        assert_eq!(open(&mut rx, &p1).unwrap().2, last - 1);
        assert_eq!(open(&mut rx, &p2).unwrap().2, last);
        let mut out = [0u8; 256];
        assert_eq!(
            tx.seal(Instant::now(), &inner, 4, &mut out),
            Err(SealError::Expired(crate::LimitKind::SequenceNumber))
        );
        assert_eq!(tx.last_seq(), last);
        assert!(tx.is_expired());
        assert_eq!(
            tx.poll_event(),
            Some(crate::SaEvent::RekeyNeeded(
                crate::LimitKind::SequenceNumber
            ))
        );
        assert_eq!(
            tx.poll_event(),
            Some(crate::SaEvent::Expired(crate::LimitKind::SequenceNumber))
        );
        assert_eq!(tx.poll_event(), None);
    }
}

#[test]
fn rekey_requested_before_the_sequence_space_ends() {
    let (mut tx, _) = pair(EspSuite::AES_GCM_128, false, Instant::now());
    let soft = u64::from(u32::MAX) - u64::from(u32::MAX) / 16;
    tx.set_next_seq(soft - 1);
    let inner = ipv4_packet(30, 3);
    seal(&mut tx, &inner, 4);
    assert_eq!(tx.poll_event(), None);
    seal(&mut tx, &inner, 4);
    assert_eq!(
        tx.poll_event(),
        Some(crate::SaEvent::RekeyNeeded(
            crate::LimitKind::SequenceNumber
        ))
    );
    assert_eq!(tx.poll_event(), None);
    assert!(!tx.is_expired());
}

/// The high 32 bits of an extended sequence number are covered by the ICV: a receiver that
/// infers other high bits (here: its window is in another subspace) fails authentication.
#[test]
fn esn_high_bits_are_authenticated() {
    for suite in EspSuite::all() {
        let (mut tx, mut rx) = pair(suite, true, Instant::now());
        tx.set_next_seq((1u64 << 32) + 7);
        let p = seal(&mut tx, &ipv4_packet(50, 1), 4);
        // Fresh receiver: infers high bits 0 for low bits 7.
        assert_eq!(open(&mut rx, &p), Err(OpenError::AuthFailed), "{suite}");
        assert_eq!(
            rx.replay_window().top(),
            0,
            "forgeries do not move the window"
        );
        rx.replay_window_mut().reset_to(1u64 << 32);
        assert_eq!(open(&mut rx, &p).unwrap().2, (1u64 << 32) + 7);
    }
}

/// ESN on one side only: the packets do not authenticate (sequence numbers > 0 in AAD/ICV
/// differ in length or content).
#[test]
fn esn_mismatch_fails_authentication() {
    for suite in EspSuite::all() {
        let now = Instant::now();
        let tx_cfg = config(suite, true);
        let mut rx_cfg: SaConfig = tx_cfg.clone();
        rx_cfg.esn = false;
        let mut tx = OutboundSa::new(tx_cfg, now, Some(super::counter_iv())).unwrap();
        let mut rx = InboundSa::new(rx_cfg, now).unwrap();
        let p = seal(&mut tx, &ipv4_packet(50, 1), 4);
        assert_eq!(open(&mut rx, &p), Err(OpenError::AuthFailed), "{suite}");
    }
}

#[test]
fn replay_window_on_an_sa() {
    let (mut tx, mut rx) = pair(EspSuite::AES_GCM_256, false, Instant::now());
    let w = rx.replay_window().size() as usize;
    assert!(w >= 1024);
    let inner = ipv4_packet(64, 0);
    let pkts: Vec<Vec<u8>> = (0..w + 100).map(|_| seal(&mut tx, &inner, 4)).collect();
    // Out of order within the window: accepted.
    for i in [4usize, 1, 0, 3, 2] {
        assert_eq!(open(&mut rx, &pkts[i]).unwrap().2, i as u64 + 1);
    }
    // Duplicate: refused, and the window is unchanged.
    assert_eq!(
        open(&mut rx, &pkts[2]),
        Err(OpenError::Replay(ReplayError::Duplicate))
    );
    // Jump ahead: the window slides.
    let far = w + 50;
    assert_eq!(open(&mut rx, &pkts[far]).unwrap().2, far as u64 + 1);
    assert_eq!(rx.replay_window().top(), far as u64 + 1);
    // Seq 51 is now exactly at the left edge (top - size + 1): still accepted.
    let left = far + 1 - w; // seq = far + 1 - w + 1
    assert_eq!(open(&mut rx, &pkts[left]).unwrap().2, left as u64 + 1);
    // One further left: too old.
    assert_eq!(
        open(&mut rx, &pkts[left - 1]),
        Err(OpenError::Replay(ReplayError::TooOld))
    );
    // Packets skipped inside the window are still accepted, once.
    assert_eq!(open(&mut rx, &pkts[far - 1]).unwrap().2, far as u64);
    assert_eq!(
        open(&mut rx, &pkts[far - 1]),
        Err(OpenError::Replay(ReplayError::Duplicate))
    );
    // Packets sealed but never received do not matter; later ones are fine.
    assert_eq!(open(&mut rx, &pkts[w + 99]).unwrap().2, w as u64 + 100);
}

#[test]
fn sas_are_send() {
    fn is_send<T: Send>() {}
    is_send::<OutboundSa>();
    is_send::<InboundSa>();
}

#[test]
fn buffered_iv_source_hands_out_each_byte_once() {
    use crate::{BufferedIvSource, IvSource};
    use std::cell::Cell;
    use std::rc::Rc;
    let calls = Rc::new(Cell::new(0u32));
    let c = calls.clone();
    let mut next = 0u8;
    let mut src = BufferedIvSource::new(move |b: &mut [u8]| {
        c.set(c.get() + 1);
        for x in b {
            next = next.wrapping_add(1);
            *x = next;
        }
    });
    let mut expected = 0u8;
    for _ in 0..300 {
        let mut iv = [0u8; 16];
        src.fill_iv(&mut iv);
        for b in iv {
            expected = expected.wrapping_add(1);
            assert_eq!(b, expected);
        }
    }
    assert_eq!(calls.get(), 2, "one generator call per 256 IVs");
    // Larger than the buffer: straight from the generator.
    let mut big = [0u8; 5000];
    src.fill_iv(&mut big);
    assert_eq!(calls.get(), 3);
}
