//! The binding API refuses a managed binding to a namespace this server did not make (issue
//! 9, item 12) and stores nothing. Needs root and /dev/net/tun (the data plane); skips with a
//! printed reason otherwise. Namespaces are named `vnt<pid>own…` and deleted by a guard even
//! when the test fails.

mod common;

use common::*;
use serde_json::json;

fn skip() -> Option<&'static str> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { geteuid() } != 0 {
        return Some("not running as root");
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing");
    }
    None
}

extern "C" {
    fn geteuid() -> u32;
}

struct NsGuard(String);

impl Drop for NsGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .output();
        let _ = std::fs::remove_file(format!("/run/vnet/netns-owners/{}", self.0));
    }
}

fn ip(args: &[&str]) -> std::process::Output {
    std::process::Command::new("ip")
        .args(args)
        .output()
        .unwrap()
}

fn has_canary(ns: &str) -> bool {
    let o = ip(&["-n", ns, "link", "show", "dev", "lo"]);
    o.status.success() && String::from_utf8_lossy(&o.stdout).contains("alias vnet-test-canary")
}

#[test]
fn a_managed_binding_to_a_namespace_vnet_did_not_make_is_refused_and_stores_nothing() {
    if let Some(why) = skip() {
        eprintln!("SKIPPED: needs root and /dev/net/tun: {why}");
        return;
    }
    let s = Server::start();
    s._rt.block_on(async {
        api::dataplane::start(&s.app);
    });
    assert_eq!(s.ok_get("/vnet/v1/dataplane")["enabled"], true);
    s.rg("rg");
    s.vnet("rg", "v", &["10.81.0.0/16"]);
    s.subnet("rg", "v", "s1", "10.81.1.0/24");
    let (st, b) = s.nic("rg", "n1", "v", "s1", None);
    assert!(st == 200 || st == 201, "{b}");
    let nic = id("rg", "networkInterfaces/n1");
    let binding = format!("/vnet/v1/bindings{nic}");

    let ns = format!("vnt{}own", std::process::id());
    let _g = NsGuard(ns.clone());
    assert!(ip(&["netns", "add", &ns]).status.success());
    assert!(ip(&[
        "-n",
        &ns,
        "link",
        "set",
        "dev",
        "lo",
        "alias",
        "vnet-test-canary"
    ])
    .status
    .success());
    let rev = || s.app.engine.store().revision().unwrap();
    let before = rev();

    // Attack: a managed binding (what `vnet vm create` sends) naming a namespace another
    // tool made. The old agent adopted it and deleted it with the binding.
    let r = s.put(&binding, json!({"netns": ns, "managed": true}));
    let msg = s.refused(r, 409, "NetworkNamespaceNotOwned");
    assert!(msg.contains("not created by vnet"), "{msg}");
    assert_eq!(rev(), before, "nothing stored");
    assert_eq!(s.get(&binding).0, 404);
    assert!(has_canary(&ns));

    // Variants: names that are not entries of /run/netns ("/run/netns/.." is /run).
    for bad in ["..", "."] {
        let r = s.put(&binding, json!({"netns": bad, "managed": true}));
        s.refused(r, 400, "InvalidBinding");
    }
    assert_eq!(rev(), before, "nothing stored");
    assert!(std::path::Path::new("/run/netns").is_dir());

    // Attaching a NIC to someone's namespace on purpose (unmanaged, `nic attach`) stays
    // allowed, and detaching never deletes that namespace.
    let r = s.put(&binding, json!({"netns": ns, "managed": false}));
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["attached"], true, "{}", r.1);
    let (st, _) = s.delete(&binding);
    assert_eq!(st, 200);
    assert!(
        has_canary(&ns),
        "an unmanaged namespace survives its binding"
    );
    // And a managed binding to it is still refused after that.
    let r = s.put(&binding, json!({"netns": ns, "managed": true}));
    s.refused(r, 409, "NetworkNamespaceNotOwned");
    if let Some(a) = s.app.dataplane.get().and_then(|d| d.agent().cloned()) {
        a.shutdown();
    }
}
