//! Seals (or seals and opens) N packets of 1400 octets in a loop, for `perf stat`: the cycle
//! count per packet does not depend on what else runs on the machine, unlike wall time.
//!
//! `cargo run --release -p esp --example seal_loop -- aes128gcm16 seal 1000000`
//! `perf stat -e cycles,instructions target/release/examples/seal_loop aes256gcm16 both 1000000`
//! Modes: `seal`, `both` (seal then open), `raw` (the same crypto straight from aws-lc-rs).
//! A fourth argument `unbuffered` takes each CBC IV from its own CSPRNG call.

use std::time::Instant;

use aws_lc_rs::{aead, cipher, hmac, iv};

use esp::{EspSuite, InboundSa, OutboundSa, SaConfig, SaKeys};

fn suite(name: &str) -> EspSuite {
    EspSuite::all()
        .find(|s| s.to_string() == name)
        .unwrap_or_else(|| {
            let names: Vec<String> = EspSuite::all().map(|s| s.to_string()).collect();
            panic!("unknown suite {name}; one of {names:?}")
        })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let s = suite(args.get(1).map(String::as_str).unwrap_or("aes128gcm16"));
    let mode = args.get(2).map(String::as_str).unwrap_or("seal");
    let both = mode == "both";
    let n: u64 = args
        .get(3)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let keymat: Vec<u8> = (0..s.keymat_len()).map(|i| i as u8).collect();
    let mut c = SaConfig::new(0x1000, SaKeys::from_keymat(s, &keymat).unwrap());
    c.esn = true;
    c.allow_null_encryption = true;
    let now = Instant::now();
    // CBC IVs from aws-lc's CSPRNG, drawn 4 KiB at a time ("unbuffered": one call per packet).
    let fill = |b: &mut [u8]| aws_lc_rs::rand::fill(b).expect("rng");
    let iv: Box<dyn esp::IvSource + Send> = if args.get(4).map(String::as_str) == Some("unbuffered")
    {
        Box::new(fill)
    } else {
        Box::new(esp::BufferedIvSource::new(fill))
    };
    let mut tx = OutboundSa::new(c.clone(), now, Some(iv)).unwrap();
    let mut rx = InboundSa::new(c, now).unwrap();
    let mut inner = vec![0x5au8; 1400];
    inner[0] = 0x45;
    let mut out = vec![0u8; tx.sealed_len(inner.len())];
    if mode == "raw" {
        return raw(s, n);
    }
    let t = Instant::now();
    for _ in 0..n {
        let len = tx.seal(now, &inner, 4, &mut out).unwrap();
        if both {
            std::hint::black_box(rx.open(now, &mut out[..len]).unwrap());
        }
    }
    let ns = t.elapsed().as_nanos() as f64 / n as f64;
    println!(
        "{s} {}: {n} packets, {ns:.0} ns/packet wall, {:.0} MB/s",
        if both { "seal+open" } else { "seal" },
        1400.0 / ns * 1000.0
    );
}

/// The cryptographic work of one seal done directly with aws-lc-rs (no ESP framing, fixed IV):
/// AEAD over 1404 octets, or AES-CBC over 1408 octets then HMAC over 1432.
fn raw(s: EspSuite, n: u64) {
    let t = Instant::now();
    let mut buf = vec![0x5au8; 1500];
    if let Some(alg) = match s.encr() {
        esp::EncrAlg::AesGcm128 => Some(&aead::AES_128_GCM),
        esp::EncrAlg::AesGcm256 => Some(&aead::AES_256_GCM),
        esp::EncrAlg::ChaCha20Poly1305 => Some(&aead::CHACHA20_POLY1305),
        _ => None,
    } {
        let key =
            aead::LessSafeKey::new(aead::UnboundKey::new(alg, &vec![7u8; alg.key_len()]).unwrap());
        for i in 0..n {
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&i.to_be_bytes());
            let _ = std::hint::black_box(
                key.seal_in_place_separate_tag(
                    aead::Nonce::assume_unique_for_key(nonce),
                    aead::Aad::from(&[0u8; 8]),
                    &mut buf[..1404],
                )
                .unwrap(),
            );
        }
    } else {
        let integ = s.integ().unwrap();
        let alg = match integ {
            esp::IntegAlg::HmacSha1_96 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            esp::IntegAlg::HmacSha256_128 => hmac::HMAC_SHA256,
            esp::IntegAlg::HmacSha384_192 => hmac::HMAC_SHA384,
            esp::IntegAlg::HmacSha512_256 => hmac::HMAC_SHA512,
        };
        let mac = hmac::Key::new(alg, &vec![9u8; integ.key_len()]);
        let enc = match s.encr() {
            esp::EncrAlg::AesCbc128 => Some(&cipher::AES_128),
            esp::EncrAlg::AesCbc256 => Some(&cipher::AES_256),
            _ => None,
        }
        .map(|a| {
            let k = vec![7u8; s.encr().cipher_key_len()];
            cipher::EncryptingKey::cbc(cipher::UnboundCipherKey::new(a, &k).unwrap()).unwrap()
        });
        let body = if enc.is_some() { 1408 } else { 1404 };
        for _ in 0..n {
            if let Some(enc) = &enc {
                let ctx = cipher::EncryptionContext::Iv128(iv::FixedLength::from([3u8; 16]));
                enc.less_safe_encrypt(&mut buf[24..24 + body], ctx).unwrap();
            }
            std::hint::black_box(hmac::sign(&mac, &buf[..24 + body]));
        }
    }
    let ns = t.elapsed().as_nanos() as f64 / n as f64;
    println!("{s} raw aws-lc: {n} packets, {ns:.0} ns/packet wall");
}
