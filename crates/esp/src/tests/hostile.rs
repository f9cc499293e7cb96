//! Tampering, malformed packets, padding and next header errors, configuration errors.

use std::time::Instant;

use super::{config, counter_iv, ipv4_packet, keys, pair, pair_with, transport, SPI};
use crate::{
    ConfigError, EncrAlg, EspSuite, InboundSa, IntegAlg, KeyError, OpenError, Opened, OutboundSa,
    ReplayError, SaConfig, SaKeys, SuiteError,
};

fn sealed(tx: &mut OutboundSa, inner: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; tx.sealed_len(inner.len())];
    tx.seal(Instant::now(), inner, 4, &mut out).unwrap();
    out
}

/// Any single bit flip anywhere (SPI, sequence number, IV, ciphertext, ICV) is refused, and
/// none of the refused packets disturbs the SA.
#[test]
fn every_single_bit_flip_is_rejected() {
    for suite in EspSuite::all() {
        for esn in [false, true] {
            let (mut tx, mut rx) = pair(suite, esn, Instant::now());
            let pkt = sealed(&mut tx, &ipv4_packet(37, 0x11));
            for bit in 0..pkt.len() * 8 {
                let mut bad = pkt.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                let r = rx.open(Instant::now(), &mut bad);
                match (bit / 8, r) {
                    (0..=3, Err(OpenError::WrongSpi(_))) => {}
                    // A flipped sequence number may land on 0 or far ahead, else fails the ICV.
                    (4..=7, Err(OpenError::AuthFailed | OpenError::Replay(_))) => {}
                    (8.., Err(OpenError::AuthFailed)) => {}
                    (byte, r) => panic!("{suite} esn={esn} byte {byte} bit {bit}: {r:?}"),
                }
            }
            assert_eq!(rx.replay_window().top(), 0);
            assert_eq!(rx.stats().packets, 0);
            let mut good = pkt.clone();
            assert!(matches!(
                rx.open(Instant::now(), &mut good),
                Ok(Opened::Packet { seq: 1, .. })
            ));
        }
    }
}

#[test]
fn truncated_packets_are_rejected() {
    for suite in EspSuite::all() {
        let (mut tx, mut rx) = pair(suite, false, Instant::now());
        let pkt = sealed(&mut tx, &ipv4_packet(20, 2));
        for len in 0..pkt.len() {
            let mut p = pkt[..len].to_vec();
            let r = rx.open(Instant::now(), &mut p);
            assert!(
                matches!(
                    r,
                    Err(OpenError::Truncated | OpenError::BadLength | OpenError::AuthFailed)
                ),
                "{suite} len {len}: {r:?}"
            );
        }
        // Too short for this suite even with a valid SPI.
        let min = suite.header_len() + suite.block_len() + suite.icv_len();
        let mut p = pkt[..min - 1].to_vec();
        assert_eq!(rx.open(Instant::now(), &mut p), Err(OpenError::Truncated));
    }
}

#[test]
fn length_not_a_block_multiple() {
    for suite in EspSuite::all() {
        let (mut tx, mut rx) = pair(suite, false, Instant::now());
        let mut pkt = sealed(&mut tx, &ipv4_packet(40, 2));
        for extra in 1..suite.block_len() {
            let mut p = pkt.clone();
            p.extend(std::iter::repeat_n(0u8, extra));
            assert_eq!(
                rx.open(Instant::now(), &mut p),
                Err(OpenError::BadLength),
                "{suite} +{extra}"
            );
        }
        assert!(rx.open(Instant::now(), &mut pkt).is_ok());
    }
}

#[test]
fn wrong_spi_and_zero_sequence() {
    let (mut tx, mut rx) = pair(EspSuite::AES_GCM_128, false, Instant::now());
    let pkt = sealed(&mut tx, &ipv4_packet(40, 2));
    let mut p = pkt.clone();
    p[..4].copy_from_slice(&0xdead_beefu32.to_be_bytes());
    assert_eq!(
        rx.open(Instant::now(), &mut p),
        Err(OpenError::WrongSpi(0xdead_beef))
    );
    let mut p = pkt.clone();
    p[4..8].copy_from_slice(&[0; 4]);
    assert_eq!(
        rx.open(Instant::now(), &mut p),
        Err(OpenError::Replay(ReplayError::Zero))
    );
}

/// Authentic packets (valid ICV) with a broken trailer, built with `seal_raw`.
#[test]
fn padding_and_next_header_errors() {
    for suite in EspSuite::all() {
        let b = suite.block_len();
        let (mut tx, mut rx) = pair(suite, false, Instant::now());
        let mut open_raw = |body: &[u8]| {
            let mut out = vec![0u8; suite.max_overhead() + body.len()];
            let n = tx.seal_raw(body, &mut out).unwrap();
            rx.open(Instant::now(), &mut out[..n])
        };
        let payload = ipv4_packet(2 * b - 2 - 3, 0x77);
        let with_trailer = |pad: &[u8], pad_len: u8, nh: u8| {
            let mut v = payload.clone();
            v.extend_from_slice(pad);
            v.push(pad_len);
            v.push(nh);
            assert_eq!(v.len() % b, 0);
            v
        };
        // Good: padding 1, 2, 3.
        assert!(matches!(
            open_raw(&with_trailer(&[1, 2, 3], 3, 4)),
            Ok(Opened::Packet { .. })
        ));
        // Padding bytes not monotonic.
        for pad in [[1u8, 3, 2], [0, 0, 0], [2, 3, 4], [1, 2, 4]] {
            assert_eq!(
                open_raw(&with_trailer(&pad, 3, 4)),
                Err(OpenError::BadPadding),
                "{suite} {pad:?}"
            );
        }
        // Pad length beyond the encrypted part.
        let body_len = payload.len() + 5;
        for pad_len in [body_len as u8 - 1, body_len as u8, 255] {
            assert_eq!(
                open_raw(&with_trailer(&[1, 2, 3], pad_len, 4)),
                Err(OpenError::BadPadding),
                "{suite} pad_len {pad_len}"
            );
        }
        // Pad length covering everything but the trailer: a valid, empty dummy.
        let mut all_pad: Vec<u8> = (1..=(body_len - 2) as u8).collect();
        all_pad.push((body_len - 2) as u8);
        all_pad.push(59);
        assert!(matches!(open_raw(&all_pad), Ok(Opened::Dummy { .. })));
        // ... but not a valid IPv4 packet in tunnel mode.
        *all_pad.last_mut().unwrap() = 4;
        assert_eq!(open_raw(&all_pad), Err(OpenError::NextHeaderNotAllowed(4)));
        // Next header not allowed in tunnel mode, or not matching the payload.
        for nh in [0u8, 1, 6, 17, 50, 255] {
            assert_eq!(
                open_raw(&with_trailer(&[1, 2, 3], 3, nh)),
                Err(OpenError::NextHeaderNotAllowed(nh)),
                "{suite} nh {nh}"
            );
        }
        assert_eq!(
            open_raw(&with_trailer(&[1, 2, 3], 3, 41)),
            Err(OpenError::NextHeaderNotAllowed(41)),
            "IPv4 payload with next header IPv6"
        );
        // All of these were authentic: each used up its sequence number.
        let top = rx.replay_window().top();
        assert!(top >= 12, "{top}");
    }
}

#[test]
fn transport_mode_accepts_any_next_header() {
    let (mut tx, mut rx) = pair_with(
        transport(config(EspSuite::AES_GCM_128, false)),
        Instant::now(),
    );
    for nh in [0u8, 1, 6, 17, 255] {
        let mut out = [0u8; 128];
        let n = tx.seal(Instant::now(), b"payload", nh, &mut out).unwrap();
        match rx.open(Instant::now(), &mut out[..n]).unwrap() {
            Opened::Packet {
                next_header,
                payload,
                ..
            } => {
                assert_eq!(next_header, nh);
                assert_eq!(&out[payload], b"payload");
            }
            Opened::Dummy { .. } => panic!(),
        }
    }
}

#[test]
fn configuration_errors() {
    let now = Instant::now();
    let gcm = config(EspSuite::AES_GCM_128, false);
    for spi in [0u32, 1, 255] {
        let mut c = gcm.clone();
        c.spi = spi;
        assert_eq!(
            OutboundSa::new(c.clone(), now, None).err(),
            Some(ConfigError::ReservedSpi(spi))
        );
        assert_eq!(
            InboundSa::new(c, now).err(),
            Some(ConfigError::ReservedSpi(spi))
        );
    }
    let null = EspSuite::new(EncrAlg::Null, Some(IntegAlg::HmacSha256_128)).unwrap();
    let c = SaConfig::new(SPI, keys(null, 1));
    assert_eq!(
        InboundSa::new(c.clone(), now).err(),
        Some(ConfigError::NullEncryptionNotAllowed)
    );
    assert_eq!(
        OutboundSa::new(c, now, None).err(),
        Some(ConfigError::NullEncryptionNotAllowed)
    );
    let cbc = EspSuite::new(EncrAlg::AesCbc256, Some(IntegAlg::HmacSha512_256)).unwrap();
    assert_eq!(
        OutboundSa::new(SaConfig::new(SPI, keys(cbc, 1)), now, None).err(),
        Some(ConfigError::IvSourceRequired)
    );
    assert!(OutboundSa::new(SaConfig::new(SPI, keys(cbc, 1)), now, Some(counter_iv())).is_ok());
    for w in [0u32, 32, 100, 1000, 1 << 17] {
        let mut c = gcm.clone();
        c.replay_window = w;
        assert_eq!(
            InboundSa::new(c, now).err(),
            Some(ConfigError::BadReplayWindow(w))
        );
    }
    for w in [64u32, 1024, 4096, 65536] {
        let mut c = gcm.clone();
        c.replay_window = w;
        assert_eq!(InboundSa::new(c, now).unwrap().replay_window().size(), w);
    }
}

#[test]
fn suites_and_ikev2_ids() {
    assert_eq!(
        EspSuite::new(EncrAlg::AesGcm128, Some(IntegAlg::HmacSha256_128)),
        Err(SuiteError::AeadWithIntegrity)
    );
    assert_eq!(
        EspSuite::new(EncrAlg::AesCbc128, None),
        Err(SuiteError::IntegrityRequired)
    );
    assert_eq!(
        EspSuite::new(EncrAlg::Null, None),
        Err(SuiteError::IntegrityRequired)
    );
    assert_eq!(
        EspSuite::from_ikev2(20, Some(256), None),
        Ok(EspSuite::AES_GCM_256)
    );
    assert_eq!(
        EspSuite::from_ikev2(20, Some(128), Some(0)),
        Ok(EspSuite::AES_GCM_128)
    );
    assert_eq!(
        EspSuite::from_ikev2(28, None, None),
        Ok(EspSuite::CHACHA20_POLY1305)
    );
    assert_eq!(
        EspSuite::from_ikev2(12, Some(256), Some(12)),
        EspSuite::new(EncrAlg::AesCbc256, Some(IntegAlg::HmacSha256_128))
    );
    assert_eq!(
        EspSuite::from_ikev2(11, None, Some(2)),
        EspSuite::new(EncrAlg::Null, Some(IntegAlg::HmacSha1_96))
    );
    assert_eq!(
        EspSuite::from_ikev2(20, Some(192), None),
        Err(SuiteError::UnsupportedEncryption {
            id: 20,
            key_bits: Some(192)
        })
    );
    assert_eq!(
        EspSuite::from_ikev2(12, Some(128), Some(5)),
        Err(SuiteError::UnsupportedIntegrity { id: 5 })
    );
    for s in EspSuite::all() {
        assert_eq!(
            EspSuite::from_ikev2(
                s.encr().ikev2_id(),
                s.encr().ikev2_key_bits(),
                s.integ().map(|i| i.ikev2_id())
            ),
            Ok(s)
        );
    }
    // Documented KEYMAT lengths.
    assert_eq!(EspSuite::AES_GCM_128.keymat_len(), 20);
    assert_eq!(EspSuite::AES_GCM_256.keymat_len(), 36);
    assert_eq!(EspSuite::CHACHA20_POLY1305.keymat_len(), 36);
    let cbc = EspSuite::new(EncrAlg::AesCbc128, Some(IntegAlg::HmacSha1_96)).unwrap();
    assert_eq!(
        (cbc.encr_key_len(), cbc.integ_key_len(), cbc.icv_len()),
        (16, 20, 12)
    );
    assert_eq!(cbc.to_string(), "aes128-sha1");
}

#[test]
fn keys_lengths_order_and_redaction() {
    let suite = EspSuite::new(EncrAlg::AesCbc256, Some(IntegAlg::HmacSha384_192)).unwrap();
    assert_eq!(
        SaKeys::from_keymat(suite, &[0; 79]).err(),
        Some(KeyError::KeymatLength {
            expected: 80,
            got: 79
        })
    );
    assert_eq!(
        SaKeys::new(suite, &[0; 16], &[0; 48]).err(),
        Some(KeyError::EncrKeyLength {
            expected: 32,
            got: 16
        })
    );
    assert_eq!(
        SaKeys::new(suite, &[0; 32], &[0; 32]).err(),
        Some(KeyError::IntegKeyLength {
            expected: 48,
            got: 32
        })
    );
    // RFC 7296 §2.17: encryption key then integrity key; initiator->responder first.
    let keymat: Vec<u8> = (0..160u8).collect();
    let (i2r, r2i) = SaKeys::split_child_keymat(suite, &keymat).unwrap();
    assert_eq!(i2r.cipher_key(), &keymat[..32]);
    assert_eq!(i2r.integ_key(), &keymat[32..80]);
    assert_eq!(r2i.cipher_key(), &keymat[80..112]);
    assert_eq!(r2i.integ_key(), &keymat[112..160]);
    let gcm = SaKeys::from_keymat(EspSuite::AES_GCM_128, &keymat[..20]).unwrap();
    assert_eq!(gcm.cipher_key(), &keymat[..16]);
    assert_eq!(gcm.salt(), &keymat[16..20]);

    // Debug never shows key bytes.
    let secret = [0xabu8; 36];
    let k = SaKeys::from_keymat(EspSuite::CHACHA20_POLY1305, &secret).unwrap();
    for text in [
        format!("{k:?}"),
        format!("{k:#?}"),
        format!("{:?}", SaConfig::new(SPI, k.clone())),
    ] {
        assert!(text.contains("redacted"), "{text}");
        assert!(!text.to_lowercase().contains("ab, ab"), "{text}");
        assert!(!text.contains("171"), "{text}");
        assert!(!text.to_lowercase().contains("abab"), "{text}");
    }
    let (tx, rx) = pair(EspSuite::CHACHA20_POLY1305, false, Instant::now());
    for text in [format!("{tx:?}"), format!("{rx:?}")] {
        assert!(text.contains("0x12345678"), "{text}");
    }
}
