//! Seal and seal+open throughput per suite at 1400-octet inner packets.
//!
//! `cargo bench -p esp --bench esp -- --measurement-time 3 --warm-up-time 1`
//! Criterion prints MB/s (10^6 octets of inner packet per second); packets/s = 10^9 / (ns per
//! iteration).

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::{aead, cipher, hmac, iv};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use esp::{
    BufferedIvSource, EncrAlg, EspSuite, InboundSa, IntegAlg, IvSource, OutboundSa, SaConfig,
    SaKeys, NEXT_HEADER_IPV4,
};

const INNER: usize = 1400;

fn suites() -> Vec<EspSuite> {
    let cbc = |e, i| EspSuite::new(e, Some(i)).unwrap();
    vec![
        EspSuite::AES_GCM_128,
        EspSuite::AES_GCM_256,
        EspSuite::CHACHA20_POLY1305,
        cbc(EncrAlg::AesCbc128, IntegAlg::HmacSha256_128),
        cbc(EncrAlg::AesCbc256, IntegAlg::HmacSha256_128),
        cbc(EncrAlg::AesCbc256, IntegAlg::HmacSha512_256),
        cbc(EncrAlg::AesCbc128, IntegAlg::HmacSha1_96),
        cbc(EncrAlg::Null, IntegAlg::HmacSha256_128),
    ]
}

/// CBC IVs from aws-lc's CSPRNG, drawn 4 KiB at a time, as a gateway would supply them.
fn rng_iv() -> Box<dyn IvSource + Send> {
    Box::new(BufferedIvSource::new(|b: &mut [u8]| {
        aws_lc_rs::rand::fill(b).expect("rng")
    }))
}

fn sa_pair(suite: EspSuite, now: Instant) -> (OutboundSa, InboundSa) {
    let keymat: Vec<u8> = (0..suite.keymat_len()).map(|i| i as u8).collect();
    let mut c = SaConfig::new(0x1000, SaKeys::from_keymat(suite, &keymat).unwrap());
    c.esn = true;
    c.allow_null_encryption = true;
    let tx = OutboundSa::new(c.clone(), now, Some(rng_iv())).unwrap();
    let rx = InboundSa::new(c, now).unwrap();
    (tx, rx)
}

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    let mut inner = vec![0x5au8; INNER];
    inner[0] = 0x45;
    let mut g = c.benchmark_group("esp1400");
    g.throughput(Throughput::BytesDecimal(INNER as u64));
    for suite in suites() {
        let name = suite.to_string();
        let (mut tx, _) = sa_pair(suite, now);
        let mut out = vec![0u8; tx.sealed_len(INNER)];
        g.bench_function(BenchmarkId::new("seal", &name), |b| {
            b.iter(|| {
                tx.seal(now, black_box(&inner), NEXT_HEADER_IPV4, &mut out)
                    .unwrap()
            })
        });
        let (mut tx, mut rx) = sa_pair(suite, now);
        g.bench_function(BenchmarkId::new("seal+open", &name), |b| {
            b.iter(|| {
                let n = tx
                    .seal(now, black_box(&inner), NEXT_HEADER_IPV4, &mut out)
                    .unwrap();
                black_box(rx.open(now, &mut out[..n]).unwrap())
            })
        });
    }
    g.finish();

    // The same work done directly with aws-lc-rs, without ESP framing: the ceiling the engine
    // is measured against (1404 octets = 1400 payload + pad length + next header).
    let mut g = c.benchmark_group("raw-aws-lc-1400");
    g.throughput(Throughput::BytesDecimal(INNER as u64));
    let mut buf = vec![0x5au8; INNER + 4];
    for (name, alg) in [
        ("aes128gcm16", &aead::AES_128_GCM),
        ("aes256gcm16", &aead::AES_256_GCM),
        ("chacha20poly1305", &aead::CHACHA20_POLY1305),
    ] {
        let key =
            aead::LessSafeKey::new(aead::UnboundKey::new(alg, &vec![7u8; alg.key_len()]).unwrap());
        let mut ctr = 0u64;
        g.bench_function(BenchmarkId::new("aead-seal", name), |b| {
            b.iter(|| {
                ctr += 1;
                let mut n = [0u8; 12];
                n[4..].copy_from_slice(&ctr.to_be_bytes());
                key.seal_in_place_separate_tag(
                    aead::Nonce::assume_unique_for_key(n),
                    aead::Aad::from(&[0u8; 8]),
                    &mut buf[..INNER + 4],
                )
                .unwrap()
            })
        });
    }
    let enc = cipher::EncryptingKey::cbc(
        cipher::UnboundCipherKey::new(&cipher::AES_128, &[7u8; 16]).unwrap(),
    )
    .unwrap();
    let mac = hmac::Key::new(hmac::HMAC_SHA256, &[9u8; 32]);
    let mut buf = vec![0x5au8; INNER + 16];
    g.bench_function(BenchmarkId::new("cbc-hmac", "aes128-sha256"), |b| {
        b.iter(|| {
            let ctx = cipher::EncryptionContext::Iv128(iv::FixedLength::from([3u8; 16]));
            enc.less_safe_encrypt(&mut buf[..INNER + 8], ctx).unwrap();
            hmac::sign(&mac, &buf[..INNER + 8])
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
