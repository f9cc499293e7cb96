//! `vnet vm create/exec/delete` and `vnet network nic capture` against a real `vnet serve`
//! (plain HTTP on loopback), with real namespaces. Runs as root with /dev/net/tun; skips with a
//! printed reason otherwise. VM names carry the test's pid, so their namespaces (`vm-NAME`) are
//! unique; a guard deletes them even when the test fails.

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_vnet");

fn skip() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        return Some("not running as root".into());
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing".into());
    }
    None
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

struct Guard {
    server: Child,
    vms: Vec<String>,
    _dir: tempfile::TempDir,
    url: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        for v in &self.vms {
            let _ = Command::new("ip")
                .args(["netns", "del", &format!("vm-{v}")])
                .output();
        }
    }
}

impl Guard {
    fn vnet(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(["--server", &self.url])
            .args(args)
            .output()
            .unwrap()
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.vnet(args);
        assert!(
            o.status.success(),
            "vnet {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }
}

#[test]
fn vm_create_exec_capture_delete() {
    if let Some(why) = skip() {
        eprintln!("SKIPPED: vnet vm test needs root and /dev/net/tun: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = 20000 + (std::process::id() % 20000) as u16;
    let url = format!("http://127.0.0.1:{port}");
    let server = Command::new(BIN)
        .args([
            "serve",
            "--insecure-http",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            dir.path().to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = std::process::id();
    let (a, b) = (format!("t{pid}a"), format!("t{pid}b"));
    let g = Guard {
        server,
        vms: vec![a.clone(), b.clone()],
        _dir: dir,
        url,
    };
    for _ in 0..100 {
        if g.vnet(&["group", "list"]).status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    g.ok(&["group", "create", "-n", "rg", "-l", "westeurope"]);
    g.ok(&[
        "network",
        "vnet",
        "create",
        "-g",
        "rg",
        "-n",
        "v",
        "--address-prefixes",
        "10.77.0.0/16",
        "--subnet-name",
        "s1",
        "--subnet-prefixes",
        "10.77.1.0/24",
    ]);
    let out = g.ok(&[
        "vm", "create", &a, "-g", "rg", "--vnet", "v", "--subnet", "s1",
    ]);
    assert!(
        out.contains("10.77.1.4") && out.contains("\"attached\": true"),
        "{out}"
    );
    g.ok(&[
        "vm",
        "create",
        &b,
        "-g",
        "rg",
        "--vnet",
        "v",
        "--subnet",
        "s1",
        "--private-ip",
        "10.77.1.50",
    ]);
    let addr = g.ok(&[
        "vm", "exec", &a, "--", "ip", "-o", "-4", "addr", "show", "dev", "eth0",
    ]);
    assert!(addr.contains("10.77.1.4/24"), "{addr}");
    let route = g.ok(&["vm", "exec", &a, "--", "ip", "route", "show", "default"]);
    assert!(route.contains("default dev eth0"), "{route}");
    g.ok(&[
        "vm",
        "exec",
        &a,
        "--",
        "ping",
        "-c",
        "2",
        "-W",
        "1",
        "10.77.1.50",
    ]);

    // Capture while pinging; tshark reads the file.
    let pcap = g._dir.path().join("a.pcap");
    let nic = format!("{a}VMNic");
    let pinger = Command::new(BIN)
        .args([
            "vm",
            "exec",
            &a,
            "--",
            "ping",
            "-c",
            "4",
            "-i",
            "0.2",
            "10.77.1.50",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    g.ok(&[
        "network",
        "nic",
        "capture",
        "-g",
        "rg",
        "-n",
        &nic,
        "--duration",
        "1.5",
        "-w",
        pcap.to_str().unwrap(),
    ]);
    let _ = pinger.wait_with_output();
    let t = Command::new("tshark")
        .args(["-r", pcap.to_str().unwrap()])
        .output()
        .expect("tshark");
    let text = String::from_utf8_lossy(&t.stdout);
    assert!(
        text.contains("Echo (ping) request") && text.contains("Echo (ping) reply"),
        "{text}"
    );

    g.ok(&["vm", "delete", &b, "-g", "rg"]);
    assert!(
        !std::path::Path::new(&format!("/run/netns/vm-{b}")).exists(),
        "namespace deleted with the VM"
    );
    assert!(!g
        .vnet(&[
            "vm",
            "exec",
            &a,
            "--",
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            "10.77.1.50"
        ])
        .status
        .success());
    g.ok(&["vm", "delete", &a, "-g", "rg"]);
}
