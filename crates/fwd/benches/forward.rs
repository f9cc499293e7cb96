//! Forwarder decisions per second on one core (pure: no IO), for a small topology: two peered
//! VNets with a few subnets and NICs, UDP packets of 1400 bytes across the peering.
//! `cargo bench -p fwd --bench forward`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use plan::testkit::{self, World};
use plan::Binding;
use std::collections::BTreeMap;

fn world() -> (World, BTreeMap<String, Binding>) {
    let mut w = World::new();
    let mut b = BTreeMap::new();
    for (v, o) in [("a", 1), ("b", 2)] {
        w.vnet(v, &[&format!("10.{o}.0.0/16")]).unwrap();
        for s in 1..=4 {
            w.subnet(v, &format!("s{s}"), &[&format!("10.{o}.{s}.0/24")], None)
                .unwrap();
            for h in 4..8 {
                let n = format!("{v}{s}-{h}");
                w.nic(
                    &n,
                    v,
                    &format!("s{s}"),
                    Some(&format!("10.{o}.{s}.{h}")),
                    None,
                    false,
                )
                .unwrap();
                b.insert(
                    testkit::key(&testkit::nic_id(&n)),
                    Binding {
                        netns: n.clone(),
                        managed: false,
                        ifname: None,
                        mtu: None,
                    },
                );
            }
        }
    }
    w.link("a", "b", true, false).unwrap();
    w.link("b", "a", true, false).unwrap();
    (w, b)
}

fn bench(c: &mut Criterion) {
    let (w, b) = world();
    let t = plan::compile(&w.st, &b, 1);
    let ingress = t
        .nic_by_key(&testkit::key(&testkit::nic_id("a1-4")))
        .unwrap();
    let mut pkt = vec![0u8; 1400];
    pkt[0] = 0x45;
    pkt[2..4].copy_from_slice(&1400u16.to_be_bytes());
    pkt[6] = 0x40;
    pkt[9] = 17;
    pkt[12..16].copy_from_slice(&[10, 1, 1, 4]);
    pkt[16..20].copy_from_slice(&[10, 2, 3, 6]);
    let mut reply = [0u8; fwd::REPLY_BUF];
    let mut g = c.benchmark_group("forward");
    g.throughput(Throughput::Elements(1));
    g.bench_function("v4_udp_across_peering", |bch| {
        bch.iter(|| {
            pkt[8] = 64;
            let v = fwd::process(&t, ingress, std::hint::black_box(&mut pkt), 0, &mut reply);
            std::hint::black_box(v)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
