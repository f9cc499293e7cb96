//! Fuzz entry points, shared by `fuzz/fuzz_targets/*` (cargo fuzz) and the tests that replay
//! the committed corpus. Packets reach the forwarder from workloads we do not trust — and a
//! root user in a workload can also choose the virtio-net header (`PACKET_VNET_HDR`), so the
//! GSO size and checksum offsets are fuzzed too. A panic here would stop a forwarding worker.

use crate::{frag, process, Verdict, REPLY_BUF};
use plan::testkit;
use plan::{Binding, HostTables};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// A topology exercising every verdict: a ⟷ b peered (b also with c), d overlapping a and
/// unpeered, an appliance NIC with IP forwarding behind a VirtualAppliance route, a None
/// route, IPv4 and IPv6 addresses, and one NIC with a 1280-byte MTU (frag-needed,
/// fragmentation, packet-too-big).
pub fn tables() -> &'static HostTables {
    static T: OnceLock<HostTables> = OnceLock::new();
    T.get_or_init(|| {
        let mut w = testkit::chain();
        w.route_table("rt").expect("route table");
        w.route("rt", "none", "10.4.0.0/16", "None", None)
            .expect("route");
        w.route(
            "rt",
            "nva",
            "10.3.0.0/16",
            "VirtualAppliance",
            Some("10.1.2.5"),
        )
        .expect("route");
        w.subnet("a", "s1", &["10.1.1.0/24", "fd00:1:0:1::/64"], Some("rt"))
            .expect("subnet");
        w.nic("nva", "a", "s2", Some("10.1.2.5"), None, true)
            .expect("nic");
        // b lets forwarded traffic in from a and c.
        for (a, b) in [("b", "a"), ("b", "c")] {
            w.link(a, b, true, true).expect("peering");
        }
        let mut bindings = BTreeMap::new();
        for n in ["a1", "a2", "b1", "b2", "c1", "c2", "d1", "d2", "nva"] {
            let mtu = if n == "b2" { 1280 } else { 1500 };
            bindings.insert(
                testkit::key(&testkit::nic_id(n)),
                Binding {
                    netns: format!("ns-{n}"),
                    managed: false,
                    ifname: None,
                    mtu: Some(mtu),
                },
            );
        }
        plan::compile(&w.st, &bindings, 1)
    })
}

/// Input layout: `[ingress, gso_lo, gso_hi, csum_start_lo, csum_start_hi, csum_off, packet…]`.
/// Runs [`process`] and then what the agent does with the verdict (checksum completion and
/// fragmentation), checking the invariants the agent relies on.
pub fn process_target(data: &[u8]) {
    let t = tables();
    let Some((head, body)) = data.split_first_chunk::<6>() else {
        return;
    };
    let n = t.nics.len();
    let ingress = (usize::from(head[0]) % n) as u32;
    let gso = u16::from_le_bytes([head[1], head[2]]);
    let csum_start = usize::from(u16::from_le_bytes([head[3], head[4]]));
    let csum_off = usize::from(head[5]);
    let mut pkt = body.to_vec();
    let mut reply = vec![0u8; REPLY_BUF];
    match process(t, ingress, &mut pkt, gso, &mut reply) {
        Verdict::Forward(to) => assert!((to as usize) < n, "forward to a NIC that exists"),
        Verdict::Reply { len, .. } => {
            assert!(len <= REPLY_BUF, "reply fits its buffer");
            // The reply goes back to the sender: it must itself be a well-formed packet
            // that the forwarder can parse without panicking.
            let mut again = reply[..len].to_vec();
            let _ = process(t, ingress, &mut again, 0, &mut reply);
        }
        Verdict::Fragment { nic, mtu } => {
            assert!((nic as usize) < n);
            let _ = frag::complete_checksum(&mut pkt, csum_start, csum_off);
            let mut out = vec![0u8; usize::from(u16::MAX)];
            let mut off = 0;
            let mut count = 0;
            while let Some((len, next)) = frag::v4_fragment(&pkt, mtu, off, &mut out) {
                assert!(len <= usize::from(mtu), "fragment within the MTU");
                assert!(next > off, "fragmentation makes progress");
                off = next;
                count += 1;
                assert!(count <= 65_536 / 8, "bounded number of fragments");
            }
        }
        Verdict::Drop(_) => {}
    }
    // The checksum completion is reachable with offsets the workload chose.
    let _ = frag::complete_checksum(&mut pkt, csum_start, csum_off);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays every file of `fuzz/corpus/process` (seeds and what the fuzzer kept).
    #[test]
    fn process_corpus() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/process");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = e.unwrap().path();
            if path.is_file() {
                process_target(&std::fs::read(&path).unwrap());
                n += 1;
            }
        }
        assert!(n >= 50, "corpus of {} has {n} files", dir.display());
    }

    /// The topology really produces every kind of verdict, so the fuzzer explores them all.
    #[test]
    fn every_verdict_is_reachable() {
        let t = tables();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/process");
        let mut kinds = std::collections::BTreeSet::new();
        for e in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(e.unwrap().path()).unwrap();
            if data.len() < 6 {
                continue;
            }
            let ingress = (usize::from(data[0]) % t.nics.len()) as u32;
            let gso = u16::from_le_bytes([data[1], data[2]]);
            let mut pkt = data[6..].to_vec();
            let mut reply = vec![0u8; REPLY_BUF];
            kinds.insert(match process(t, ingress, &mut pkt, gso, &mut reply) {
                Verdict::Forward(_) => "forward",
                Verdict::Fragment { .. } => "fragment",
                Verdict::Reply { .. } => "reply",
                Verdict::Drop(_) => "drop",
            });
        }
        assert_eq!(kinds.len(), 4, "{kinds:?}");
    }
}
