//! `vnet vm` only deletes what it made (issue 9, item 12), against real `vnet serve`s (plain
//! HTTP on loopback, ephemeral ports) and real namespaces. Runs as root with /dev/net/tun;
//! skips with a printed reason otherwise. Every namespace is named `vm-own<pid>…`; a guard
//! kills the servers and deletes those namespaces and their owner records even when a test
//! fails.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_vnet");
const OWNERS: &str = "/run/vnet/netns-owners";

fn skip() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { geteuid() } != 0 {
        return Some("not running as root".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing".into());
    }
    None
}

extern "C" {
    fn geteuid() -> u32;
}

/// Servers and namespaces of one test, removed on drop.
struct Guard {
    servers: Vec<(Child, String)>,
    namespaces: Vec<String>,
    dirs: Vec<tempfile::TempDir>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for (s, _) in &mut self.servers {
            let _ = s.kill();
            let _ = s.wait();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            let _ = std::fs::remove_file(format!("/run/netns/{ns}"));
            let _ = std::fs::remove_file(format!("{OWNERS}/{ns}"));
        }
    }
}

fn ip(args: &[&str]) -> Output {
    Command::new("ip").args(args).output().unwrap()
}

fn ip_ok(args: &[&str]) {
    let o = ip(args);
    assert!(
        o.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A namespace made by someone else, its loopback given an alias to prove it is the same
/// namespace afterwards.
fn foreign_netns(ns: &str) {
    ip_ok(&["netns", "add", ns]);
    ip_ok(&[
        "-n",
        ns,
        "link",
        "set",
        "dev",
        "lo",
        "alias",
        "vnet-test-canary",
    ]);
}

fn has_canary(ns: &str) -> bool {
    let o = ip(&["-n", ns, "link", "show", "dev", "lo"]);
    o.status.success() && String::from_utf8_lossy(&o.stdout).contains("alias vnet-test-canary")
}

impl Guard {
    fn new(pid_tag: &str, names: &[&str]) -> Guard {
        Guard {
            servers: vec![],
            namespaces: names.iter().map(|n| format!("vm-{pid_tag}{n}")).collect(),
            dirs: vec![],
        }
    }

    /// Starts `vnet serve` on `data_dir` at an ephemeral port; returns its index.
    fn serve(&mut self, data_dir: &Path) -> usize {
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--insecure-http",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                data_dir.to_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        // Logs share stdout; the banner line names the URL.
        let mut url = None;
        for _ in 0..50 {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if let Some(rest) = line.strip_prefix("vnet API listening on ") {
                url = Some(rest.trim().trim_end_matches('/').to_string());
                break;
            }
        }
        let url = url.expect("vnet serve printed no banner");
        // Keep draining the banner so the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        self.servers.push((child, url));
        self.servers.len() - 1
    }

    fn new_server(&mut self) -> usize {
        let d = tempfile::tempdir().unwrap();
        let i = self.serve(d.path());
        self.dirs.push(d);
        i
    }

    fn stop(&mut self, i: usize) {
        let s = &mut self.servers[i].0;
        let _ = s.kill();
        let _ = s.wait();
    }

    fn vnet(&self, i: usize, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(["--server", &self.servers[i].1])
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, i: usize, args: &[&str]) -> String {
        let o = self.vnet(i, args);
        assert!(
            o.status.success(),
            "vnet {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// A refused command: returns its error output.
    fn refused(&self, i: usize, args: &[&str]) -> String {
        let o = self.vnet(i, args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!o.status.success(), "vnet {args:?} should fail: {text}");
        text
    }

    fn network(&self, i: usize, prefix: &str) {
        self.ok(i, &["group", "create", "-n", "rg", "-l", "westeurope"]);
        self.ok(
            i,
            &[
                "network",
                "vnet",
                "create",
                "-g",
                "rg",
                "-n",
                "v",
                "--address-prefixes",
                &format!("{prefix}.0.0/16"),
                "--subnet-name",
                "s1",
                "--subnet-prefixes",
                &format!("{prefix}.1.0/24"),
            ],
        );
    }

    fn nic_exists(&self, i: usize, vm: &str) -> bool {
        self.vnet(
            i,
            &[
                "network",
                "nic",
                "show",
                "-g",
                "rg",
                "-n",
                &format!("{vm}VMNic"),
            ],
        )
        .status
        .success()
    }
}

#[test]
fn a_foreign_namespace_is_neither_adopted_nor_deleted() {
    if let Some(why) = skip() {
        eprintln!("SKIPPED: needs root and /dev/net/tun: {why}");
        return;
    }
    let tag = format!("own{}", std::process::id());
    let mut g = Guard::new(&tag, &["f", "e"]);
    let (f, e) = (format!("{tag}f"), format!("{tag}e"));
    let (ns_f, ns_e) = (format!("vm-{f}"), format!("vm-{e}"));
    let a = g.new_server();
    g.network(a, "10.79");

    // Attack: a namespace made by `ip netns add` (another tool's workload) under the name
    // `vm create` would use. Before the fix the agent adopted it and `vm delete` removed it.
    foreign_netns(&ns_f);
    let err = g.refused(
        a,
        &[
            "vm", "create", &f, "-g", "rg", "--vnet", "v", "--subnet", "s1",
        ],
    );
    assert!(
        err.contains("NetworkNamespaceNotOwned") && err.contains("not created by vnet"),
        "{err}"
    );
    assert!(
        has_canary(&ns_f),
        "the foreign namespace survives, untouched"
    );
    assert!(
        !Path::new(&format!("{OWNERS}/{ns_f}")).exists(),
        "no owner record for it"
    );
    assert!(!g.nic_exists(a, &f), "the failed create left no NIC behind");
    // `vm delete` of that name refuses and does not touch it either.
    let err = g.refused(a, &["vm", "delete", &f, "-g", "rg"]);
    assert!(err.contains("VmNotFound"), "{err}");
    assert!(has_canary(&ns_f));

    // Variant: a plain file (not a namespace) at the path is not taken over either.
    std::fs::create_dir_all("/run/netns").unwrap();
    std::fs::write(format!("/run/netns/{ns_e}"), b"").unwrap();
    let err = g.refused(
        a,
        &[
            "vm", "create", &e, "-g", "rg", "--vnet", "v", "--subnet", "s1",
        ],
    );
    assert!(err.contains("not created by vnet"), "{err}");
    assert!(Path::new(&format!("/run/netns/{ns_e}")).exists());
    assert!(!g.nic_exists(a, &e));
}

#[test]
fn a_second_servers_failed_create_leaves_the_first_servers_vm() {
    if let Some(why) = skip() {
        eprintln!("SKIPPED: needs root and /dev/net/tun: {why}");
        return;
    }
    let tag = format!("own{}", std::process::id());
    let mut g = Guard::new(&tag, &["x"]);
    let x = format!("{tag}x");
    let ns = format!("vm-{x}");
    let dir_a = tempfile::tempdir().unwrap();
    let a = g.serve(dir_a.path());
    let b = g.new_server();
    g.network(a, "10.80");
    g.network(b, "10.80");
    let create = [
        "vm", "create", &x, "-g", "rg", "--vnet", "v", "--subnet", "s1",
    ];
    let out = g.ok(a, &create);
    assert!(out.contains("\"attached\": true"), "{out}");
    let record = std::fs::read_to_string(format!("{OWNERS}/{ns}")).unwrap_or_default();

    // Attack: the same VM name on a second server (another data dir). Before the fix it
    // adopted A's namespace, failed (eth0 taken), and its cleanup deleted A's namespace.
    let err = g.refused(b, &create);
    assert!(
        !g.nic_exists(b, &x),
        "B's failed create removed only its own NIC"
    );
    let addr = g.ok(
        a,
        &[
            "vm", "exec", &x, "--", "ip", "-o", "-4", "addr", "show", "dev", "eth0",
        ],
    );
    assert!(addr.contains("10.80.1.4/24"), "A's VM intact: {addr}");
    assert!(g.ok(a, &["vm", "list"]).contains("\"attached\": true"));
    assert!(err.contains("belongs to another vnet server"), "{err}");
    assert!(
        record.contains("instance=") && record.contains("ino="),
        "{record}"
    );
    // B cannot delete it either.
    g.refused(b, &["vm", "delete", &x, "-g", "rg"]);
    assert!(Path::new(&format!("/run/netns/{ns}")).exists());
    assert_eq!(
        std::fs::read_to_string(format!("{OWNERS}/{ns}")).unwrap(),
        record
    );

    // A restarted on its data dir is the same owner: it re-attaches its own namespace.
    g.stop(a);
    let a2 = g.serve(dir_a.path());
    let mut attached = false;
    for _ in 0..100 {
        if g.vnet(a2, &["vm", "list"]).status.success()
            && g.ok(a2, &["vm", "list"]).contains("\"attached\": true")
        {
            attached = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(attached, "{}", g.ok(a2, &["vm", "list"]));

    // Variant: someone replaces A's namespace with their own under the same name. A's
    // `vm delete` removes A's NIC but leaves the replacement alone.
    ip_ok(&["netns", "del", &ns]);
    foreign_netns(&ns);
    g.ok(a2, &["vm", "delete", &x, "-g", "rg"]);
    assert!(!g.nic_exists(a2, &x));
    assert!(has_canary(&ns), "the replacement namespace survives");
    assert!(
        !Path::new(&format!("{OWNERS}/{ns}")).exists(),
        "A dropped its stale record"
    );
}
