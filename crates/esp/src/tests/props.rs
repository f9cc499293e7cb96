//! Property tests: the anti-replay verdicts against a simple reference model.

use std::collections::HashSet;
use std::time::Instant;

use proptest::prelude::*;

use super::{config, ipv4_packet, pair_with};
use crate::replay::ReplayWindow;
use crate::{EspSuite, OpenError, Opened, SaConfig};

/// The reference: accept a sequence number unless it is 0, already accepted, or at least
/// `size` below the highest accepted one.
struct Model {
    seen: HashSet<u64>,
    highest: u64,
    size: u64,
}

impl Model {
    fn new(size: u32) -> Self {
        Model {
            seen: HashSet::new(),
            highest: 0,
            size: u64::from(size),
        }
    }

    fn offer(&mut self, seq: u64) -> bool {
        if seq == 0 || self.seen.contains(&seq) || self.too_old(seq) {
            return false;
        }
        self.seen.insert(seq);
        self.highest = self.highest.max(seq);
        true
    }

    fn too_old(&self, seq: u64) -> bool {
        self.highest.saturating_sub(seq) >= self.size
    }
}

fn window_size() -> impl Strategy<Value = u32> {
    prop_oneof![Just(64u32), Just(128), Just(1024), Just(4096)]
}

/// Sequence numbers as a walk that mostly moves forward, sometimes jumps back within or
/// beyond the window, and repeats.
fn walk(base: u64, steps: Vec<(u8, u16)>, size: u32) -> Vec<u64> {
    let mut cur = base;
    let mut out = Vec::with_capacity(steps.len());
    for (kind, amount) in steps {
        let a = u64::from(amount);
        cur = match kind % 8 {
            0..=3 => cur.saturating_add(1 + a % 8),
            4 => cur.saturating_add(a),
            5 => cur.saturating_sub(a % u64::from(size)),
            6 => cur.saturating_sub(a % (3 * u64::from(size))),
            _ => cur, // duplicate
        };
        out.push(cur);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The bitmap window gives the model's verdicts for any order of 64-bit numbers.
    #[test]
    fn window_matches_model(
        size in window_size(),
        base in prop_oneof![Just(0u64), 0u64..1 << 40, Just((1u64 << 32) - 3000)],
        steps in prop::collection::vec((any::<u8>(), any::<u16>()), 1..400),
    ) {
        let mut w = ReplayWindow::new(size).unwrap();
        let mut m = Model::new(size);
        for seq in walk(base, steps, size) {
            let ok = w.check(seq).is_ok();
            if ok {
                w.commit(seq);
            }
            prop_assert_eq!(ok, m.offer(seq), "seq {}", seq);
            prop_assert_eq!(w.top(), m.highest);
        }
    }

    /// With ESN the receiver sees only the low 32 bits. A wrongly inferred high half would
    /// fail the ICV (the packet authenticates only with its true number), so the verdict is
    /// "inferred correctly and accepted by the window"; it must equal the model's for walks
    /// around the 2^32 boundary.
    #[test]
    fn esn_inference_matches_model(
        size in window_size(),
        base in prop_oneof![Just((1u64 << 32) - 2000), Just((5u64 << 32) - 1), 1u64..1 << 36],
        steps in prop::collection::vec((any::<u8>(), any::<u16>()), 1..400),
    ) {
        // The receiver has accepted `base` already: an SA's first packet carries 1, so its window
        // cannot start beyond 2^32 empty.
        let mut w = ReplayWindow::new(size).unwrap();
        let mut m = Model::new(size);
        w.commit(base);
        m.offer(base);
        for seq in walk(base, steps, size) {
            let inferred = w.infer_esn(seq as u32);
            let ok = inferred == Some(seq) && w.check(seq).is_ok();
            if ok {
                w.commit(seq);
            }
            prop_assert_eq!(ok, m.offer(seq), "seq {:#x} inferred {:?}", seq, inferred);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Real SAs: random packets, delivered in a random order with duplicates and losses;
    /// `open` accepts exactly what the model accepts, and returns the right payloads.
    #[test]
    fn sa_open_matches_model(
        suite_index in 0usize..15,
        esn in any::<bool>(),
        small_window in any::<bool>(),
        lens in prop::collection::vec(1usize..300, 1..120),
        deliveries in prop::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 1..300),
    ) {
        let suite = EspSuite::all().nth(suite_index).unwrap();
        let mut c: SaConfig = config(suite, esn);
        c.replay_window = if small_window { 64 } else { 1024 };
        let (mut tx, mut rx) = pair_with(c.clone(), Instant::now());
        let inners: Vec<Vec<u8>> = lens.iter().enumerate()
            .map(|(i, &l)| ipv4_packet(l, i as u8))
            .collect();
        let pkts: Vec<Vec<u8>> = inners.iter().map(|inner| {
            let mut out = vec![0u8; tx.sealed_len(inner.len())];
            tx.seal(Instant::now(), inner, 4, &mut out).unwrap();
            out
        }).collect();
        let mut m = Model::new(c.replay_window);
        // Mostly deliver in order with local shuffles; `jump` picks any packet (far reorder,
        // duplicates).
        let mut next = 0usize;
        for (idx, jump) in deliveries {
            let i = if jump { idx.index(pkts.len()) } else {
                let i = (next + idx.index(4)).min(pkts.len() - 1);
                next = (next + 1).min(pkts.len() - 1);
                i
            };
            let seq = i as u64 + 1;
            let mut buf = pkts[i].clone();
            let r = rx.open(Instant::now(), &mut buf);
            let too_old = m.too_old(seq);
            let expect = m.offer(seq);
            match r {
                Ok(Opened::Packet { payload, seq: got, .. }) => {
                    prop_assert!(expect, "accepted {} which the model refuses", seq);
                    prop_assert_eq!(got, seq);
                    prop_assert_eq!(&buf[payload], &inners[i][..]);
                }
                Ok(Opened::Dummy { .. }) => prop_assert!(false, "dummy"),
                Err(OpenError::Replay(_)) => prop_assert!(!expect, "refused {}", seq),
                // With ESN a packet left of the window gets the next subspace's high bits
                // (RFC 4303 Appendix A2.2) and so fails the ICV instead.
                Err(OpenError::AuthFailed) if esn && too_old => {}
                Err(e) => prop_assert!(false, "unexpected {:?}", e),
            }
        }
        prop_assert_eq!(rx.stats().packets, m.seen.len() as u64);
    }
}
