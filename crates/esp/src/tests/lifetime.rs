//! Soft and hard lifetimes, in time, bytes and packets, with `now` passed in.

use std::time::{Duration, Instant};

use super::{config, ipv4_packet, pair_with};
use crate::{
    EspSuite, InboundSa, Lifetime, LimitKind, Limits, OpenError, OutboundSa, SaEvent, SealError,
};

fn with_lifetime(lifetime: Lifetime, t0: Instant) -> (OutboundSa, InboundSa) {
    let mut c = config(EspSuite::AES_GCM_128, false);
    c.lifetime = lifetime;
    pair_with(c, t0)
}

fn seal_at(tx: &mut OutboundSa, now: Instant, len: usize) -> Result<Vec<u8>, SealError> {
    let inner = ipv4_packet(len, 1);
    let mut out = vec![0u8; tx.sealed_len(len)];
    tx.seal(now, &inner, 4, &mut out).map(|_| out)
}

#[test]
fn time_limits() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let life = Lifetime {
        soft: Limits {
            time: Some(s(100)),
            ..Limits::default()
        },
        hard: Limits {
            time: Some(s(120)),
            ..Limits::default()
        },
    };
    let (mut tx, mut rx) = with_lifetime(life, t0);
    assert_eq!(tx.poll_timeout(), Some(t0 + s(100)));
    let p = seal_at(&mut tx, t0 + s(99), 10).unwrap();
    assert_eq!(tx.poll_event(), None);
    // Soft limit reached by the timer: rekey, keep working.
    tx.handle_timeout(t0 + s(100));
    assert_eq!(tx.poll_event(), Some(SaEvent::RekeyNeeded(LimitKind::Time)));
    assert_eq!(tx.poll_event(), None);
    assert_eq!(tx.poll_timeout(), Some(t0 + s(120)));
    let p2 = seal_at(&mut tx, t0 + s(119), 10).unwrap();
    // Inbound learns of the soft limit through open itself.
    let mut b = p.clone();
    assert!(rx.open(t0 + s(101), &mut b).is_ok());
    assert_eq!(rx.poll_event(), Some(SaEvent::RekeyNeeded(LimitKind::Time)));
    // Hard limit: both refuse.
    assert_eq!(
        seal_at(&mut tx, t0 + s(120), 10),
        Err(SealError::Expired(LimitKind::Time))
    );
    assert_eq!(tx.poll_event(), Some(SaEvent::Expired(LimitKind::Time)));
    assert_eq!(tx.poll_event(), None);
    assert_eq!(tx.poll_timeout(), None);
    let mut b = p2.clone();
    assert_eq!(
        rx.open(t0 + s(121), &mut b),
        Err(OpenError::Expired(LimitKind::Time))
    );
    assert_eq!(rx.poll_event(), Some(SaEvent::Expired(LimitKind::Time)));
    assert!(tx.is_expired() && rx.is_expired());
}

#[test]
fn hard_time_without_soft_reports_only_expiry() {
    let t0 = Instant::now();
    let life = Lifetime {
        hard: Limits {
            time: Some(Duration::from_secs(5)),
            ..Limits::default()
        },
        ..Lifetime::default()
    };
    let (mut tx, _) = with_lifetime(life, t0);
    assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    tx.handle_timeout(t0 + Duration::from_secs(6));
    assert_eq!(tx.poll_event(), Some(SaEvent::Expired(LimitKind::Time)));
    assert_eq!(tx.poll_event(), None);
}

#[test]
fn packet_limits() {
    let t0 = Instant::now();
    let life = Lifetime {
        soft: Limits {
            packets: Some(3),
            ..Limits::default()
        },
        hard: Limits {
            packets: Some(5),
            ..Limits::default()
        },
    };
    let (mut tx, mut rx) = with_lifetime(life, t0);
    let mut pkts = Vec::new();
    for i in 1..=5u64 {
        pkts.push(seal_at(&mut tx, t0, 20).unwrap());
        let ev = tx.poll_event();
        match i {
            3 => assert_eq!(ev, Some(SaEvent::RekeyNeeded(LimitKind::Packets))),
            5 => assert_eq!(ev, Some(SaEvent::Expired(LimitKind::Packets))),
            _ => assert_eq!(ev, None, "packet {i}"),
        }
    }
    assert_eq!(
        seal_at(&mut tx, t0, 20),
        Err(SealError::Expired(LimitKind::Packets))
    );
    assert_eq!(tx.stats().packets, 5);
    for (i, p) in pkts.iter().enumerate() {
        let mut b = p.clone();
        assert!(rx.open(t0, &mut b).is_ok(), "{i}");
    }
    assert_eq!(
        rx.poll_event(),
        Some(SaEvent::RekeyNeeded(LimitKind::Packets))
    );
    assert_eq!(rx.poll_event(), Some(SaEvent::Expired(LimitKind::Packets)));
    // A sixth packet from anywhere is refused before any processing.
    let mut b = pkts[0].clone();
    assert_eq!(
        rx.open(t0, &mut b),
        Err(OpenError::Expired(LimitKind::Packets))
    );
}

#[test]
fn byte_limits() {
    let t0 = Instant::now();
    let life = Lifetime {
        soft: Limits {
            bytes: Some(250),
            ..Limits::default()
        },
        hard: Limits {
            bytes: Some(400),
            ..Limits::default()
        },
    };
    let (mut tx, mut rx) = with_lifetime(life, t0);
    // 100-octet inner packets: soft after the third (300 >= 250), hard after the fourth.
    let mut pkts = Vec::new();
    for _ in 0..4 {
        pkts.push(seal_at(&mut tx, t0, 100).unwrap());
    }
    assert_eq!(tx.stats().bytes, 400);
    assert_eq!(
        seal_at(&mut tx, t0, 1),
        Err(SealError::Expired(LimitKind::Bytes))
    );
    assert_eq!(
        tx.poll_event(),
        Some(SaEvent::RekeyNeeded(LimitKind::Bytes))
    );
    assert_eq!(tx.poll_event(), Some(SaEvent::Expired(LimitKind::Bytes)));
    for p in &pkts[..3] {
        let mut b = p.clone();
        rx.open(t0, &mut b).unwrap();
    }
    assert_eq!(
        rx.poll_event(),
        Some(SaEvent::RekeyNeeded(LimitKind::Bytes))
    );
    assert_eq!(rx.poll_event(), None);
    let mut b = pkts[3].clone();
    rx.open(t0, &mut b).unwrap();
    assert_eq!(rx.poll_event(), Some(SaEvent::Expired(LimitKind::Bytes)));
    assert_eq!(rx.stats().bytes, 400);
}

/// Refused and forged packets do not count toward the inbound limits.
#[test]
fn only_accepted_packets_count() {
    let t0 = Instant::now();
    let life = Lifetime {
        hard: Limits {
            packets: Some(1),
            ..Limits::default()
        },
        ..Lifetime::default()
    };
    let (mut tx, mut rx) = with_lifetime(life, t0);
    let p = seal_at(&mut tx, t0, 50).unwrap();
    for _ in 0..10 {
        let mut bad = p.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(rx.open(t0, &mut bad), Err(OpenError::AuthFailed));
    }
    assert!(!rx.is_expired());
    let mut b = p.clone();
    assert!(rx.open(t0, &mut b).is_ok());
    assert!(rx.is_expired());
}
