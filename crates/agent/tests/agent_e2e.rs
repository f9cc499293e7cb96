//! The agent with real namespaces, TUN devices and kernel traffic (ping), driven by tables
//! compiled from in-memory states. Runs as root with /dev/net/tun; skips otherwise.

use agent::Agent;
use plan::testkit::{self, World};
use plan::Binding;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

static N: AtomicUsize = AtomicUsize::new(0);

fn skip() -> bool {
    if let Err(why) = agent::dataplane_supported() {
        eprintln!("SKIPPED: data-plane test needs root and /dev/net/tun: {why}");
        return true;
    }
    false
}

/// Unique namespace names for one test, deleted on drop even if the test fails.
struct Names {
    prefix: String,
    agent: Option<std::sync::Arc<Agent>>,
}

impl Names {
    fn new() -> Names {
        Names {
            prefix: format!(
                "vnt{}x{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ),
            agent: None,
        }
    }
    fn ns(&self, vm: &str) -> String {
        format!("{}{vm}", self.prefix)
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        if let Some(a) = self.agent.take() {
            a.shutdown();
            a.delete_managed_namespaces();
        }
        if let Ok(rd) = std::fs::read_dir("/run/netns") {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().to_string();
                if n.starts_with(&self.prefix) {
                    let _ = agent::sys::delete_named_netns(&n);
                }
            }
        }
    }
}

/// One ping with a `wait_s` timeout: answered or not.
fn ping_once(ns: &str, dst: &str, wait_s: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-c", "1", "-W", wait_s, dst])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Answered within three tries (a loaded machine must not fail a working path).
fn ping(ns: &str, dst: &str) -> bool {
    (0..3).any(|_| ping_once(ns, dst, "2"))
}

/// One unanswered ping: a refused path never answers by chance.
fn no_ping(ns: &str, dst: &str) -> bool {
    !ping_once(ns, dst, "1")
}

fn bindings(names: &Names, vms: &[&str]) -> BTreeMap<String, Binding> {
    vms.iter()
        .map(|v| {
            (
                testkit::key(&testkit::nic_id(v)),
                Binding {
                    netns: names.ns(v),
                    managed: true,
                    ifname: None,
                    mtu: None,
                },
            )
        })
        .collect()
}

#[test]
fn ping_within_across_peering_and_isolation() {
    if skip() {
        return;
    }
    let mut names = Names::new();
    let mut w = World::new();
    w.vnet("a", &["10.1.0.0/16", "fd00:1::/48"]).unwrap();
    w.subnet("a", "s1", &["10.1.1.0/24", "fd00:1:0:1::/64"], None)
        .unwrap();
    w.subnet("a", "s2", &["10.1.2.0/24"], None).unwrap();
    w.vnet("b", &["10.2.0.0/16", "fd00:2::/48"]).unwrap();
    w.subnet("b", "s1", &["10.2.1.0/24", "fd00:2:0:1::/64"], None)
        .unwrap();
    w.nic(
        "a1",
        "a",
        "s1",
        Some("10.1.1.4"),
        Some("fd00:1:0:1::4"),
        false,
    )
    .unwrap();
    w.nic("a2", "a", "s2", Some("10.1.2.4"), None, false)
        .unwrap();
    w.nic(
        "b1",
        "b",
        "s1",
        Some("10.2.1.4"),
        Some("fd00:2:0:1::4"),
        false,
    )
    .unwrap();
    let agent = Agent::start().unwrap();
    names.agent = Some(agent.clone());
    let b = bindings(&names, &["a1", "a2", "b1"]);
    let errs = agent.install(plan::compile(&w.st, &b, 1));
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(agent.applied_generation(), 1);
    let a1 = names.ns("a1");
    assert!(ping(&a1, "10.1.2.4"), "across subnets");
    assert!(no_ping(&a1, "10.2.1.4"), "unpeered");
    w.link("a", "b", true, false).unwrap();
    w.link("b", "a", true, false).unwrap();
    agent.install(plan::compile(&w.st, &b, 2));
    assert!(ping(&a1, "10.2.1.4"), "across the peering");
    assert!(ping(&a1, "fd00:2:0:1::4"), "IPv6 across the peering");
    // Idempotent: installing the same tables again keeps the devices.
    let errs = agent.install(plan::compile(&w.st, &b, 3));
    assert!(errs.is_empty(), "{errs:?}");
    assert!(ping(&a1, "10.2.1.4"));
    w.unlink("a", "b").unwrap();
    agent.install(plan::compile(&w.st, &b, 4));
    assert!(no_ping(&a1, "10.2.1.4"), "peering deleted");
    let st = agent.status();
    let s = st.iter().find(|s| s.name == "a1").unwrap();
    assert!(s.attached);
    assert!(s.counters.out_packets >= 4, "{s:?}");
    assert!(
        s.counters.drops.get("routeNone").copied().unwrap_or(0) >= 1,
        "{s:?}"
    );
    // Unbinding removes the device and the managed namespace.
    let mut b2 = b.clone();
    b2.remove(&testkit::key(&testkit::nic_id("b1")));
    agent.install(plan::compile(&w.st, &b2, 5));
    assert!(!std::path::Path::new(&format!("/run/netns/{}", names.ns("b1"))).exists());
}
