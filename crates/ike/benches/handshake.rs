//! IKE_SA_INIT + IKE_AUTH (with the first Child SA) exchanges per second, both ends on one
//! core, in memory. Compare with /work/shared/bench/results/strongswan-ike-rate.txt.

use std::net::SocketAddr;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ike::{ts, Config, Identity, Ike, Kind, ProposalSpec, Role, SeededRng, State};

fn handshake(ike_p: &str, seed: u64) {
    let now = Instant::now();
    let a: SocketAddr = "198.18.0.1:500".parse().unwrap();
    let b: SocketAddr = "198.18.0.2:500".parse().unwrap();
    let cfg = |role, l: &str, r: &str| Config {
        ike_proposals: ProposalSpec::parse_list(Kind::Ike, ike_p).unwrap(),
        esp_proposals: ProposalSpec::parse_list(Kind::Esp, "aes128gcm16").unwrap(),
        local_ts: vec![ts::parse_cidr(l).unwrap()],
        remote_ts: vec![ts::parse_cidr(r).unwrap()],
        ..Config::new(role, Identity::Fqdn("bench".into()), b"psk".to_vec())
    };
    let mut i = Ike::new(
        cfg(Role::Initiator, "10.1.0.0/16", "10.2.0.0/16"),
        a,
        b,
        Box::new(SeededRng::new(seed)),
        now,
    );
    let mut r = Ike::new(
        cfg(Role::Responder, "10.2.0.0/16", "10.1.0.0/16"),
        b,
        a,
        Box::new(SeededRng::new(!seed)),
        now,
    );
    i.connect(now);
    for _ in 0..8 {
        while let Some(t) = i.poll_transmit() {
            r.handle_datagram(now, t.src, t.dst, &t.payload);
        }
        while let Some(t) = r.poll_transmit() {
            i.handle_datagram(now, t.src, t.dst, &t.payload);
        }
    }
    assert_eq!(i.state(), State::Established);
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("ike_sa_init+ike_auth");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    for p in [
        "aes128gcm16-prfsha256-ecp256",
        "aes128gcm16-prfsha256-x25519",
        "aes128gcm16-prfsha256-modp2048",
    ] {
        let mut seed = 0u64;
        g.bench_function(p, |bch| {
            bch.iter(|| {
                seed += 1;
                handshake(p, seed)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
