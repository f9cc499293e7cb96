//! End to end: the API server with its in-process agent, real network namespaces as VMs,
//! real kernel traffic (ping, TCP, UDP) between them. Runs as root with /dev/net/tun (CI does);
//! skips with a printed reason otherwise. Namespaces are named `vnt<pid>x<n><vm>` and are
//! deleted when a test ends, even when it fails.

use serde_json::{json, Value};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const API: &str = "2025-07-01";
const SUB: &str = "00000000-0000-0000-0000-0000000000e2";
static N: AtomicUsize = AtomicUsize::new(0);

fn skip() -> bool {
    if let Err(why) = agent::dataplane_supported() {
        eprintln!("SKIPPED: data-plane end-to-end test needs root and /dev/net/tun: {why}");
        return true;
    }
    false
}

struct Server {
    rt: Option<tokio::runtime::Runtime>,
    app: Option<Arc<api::routes::App>>,
    base: String,
}

impl Server {
    fn start(dir: &std::path::Path) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = model::Config {
            public_ip_pools: vec!["198.18.0.0/24".parse().unwrap()],
        };
        let app = api::open_app(dir, config, Default::default()).unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let router = api::router(app.clone());
        let a2 = app.clone();
        rt.block_on(async move {
            api::dataplane::start(&a2);
        });
        rt.spawn(async move { axum::serve(listener, router).await.unwrap() });
        Server {
            rt: Some(rt),
            app: Some(app),
            base: format!("http://{addr}"),
        }
    }
    fn stop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
        if let Some(app) = self.app.take() {
            if let Some(a) = app.dataplane.get().and_then(|d| d.agent().cloned()) {
                a.shutdown();
            }
        }
    }
}

/// One test's world: a server, a resource group, namespaces with a unique prefix.
struct Lab {
    srv: Server,
    dir: tempfile::TempDir,
    client: reqwest::blocking::Client,
    prefix: String,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.srv.stop();
        if let Ok(rd) = std::fs::read_dir("/run/netns") {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().to_string();
                if n.starts_with(&self.prefix) {
                    let _ = agent::sys::delete_named_netns(&n);
                    let _ = std::fs::remove_file(
                        std::path::Path::new(agent::owner::OWNERS_DIR).join(&n),
                    );
                }
            }
        }
    }
}

fn rg_id() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg")
}
fn net(rest: &str) -> String {
    format!("{}/providers/Microsoft.Network/{rest}", rg_id())
}

impl Lab {
    fn new() -> Option<Lab> {
        if skip() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let srv = Server::start(dir.path());
        let lab = Lab {
            srv,
            dir,
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            prefix: format!(
                "vnt{}x{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ),
        };
        lab.put(&rg_id(), json!({"location": "westeurope"}));
        Some(lab)
    }
    fn restart(&mut self) {
        self.srv.stop();
        self.srv = Server::start(self.dir.path());
    }
    fn url(&self, path: &str) -> String {
        format!("{}{path}?api-version={API}", self.srv.base)
    }
    fn send(&self, rb: reqwest::blocking::RequestBuilder) -> (u16, Value) {
        let r = rb.send().unwrap();
        let s = r.status().as_u16();
        let t = r.text().unwrap();
        (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
    }
    fn put(&self, path: &str, body: Value) -> Value {
        let (s, b) = self.send(self.client.put(self.url(path)).json(&body));
        assert!(s == 200 || s == 201, "PUT {path} -> {s} {b}");
        b
    }
    fn delete(&self, path: &str) {
        let (s, b) = self.send(self.client.delete(self.url(path)));
        assert!(s < 300, "DELETE {path} -> {s} {b}");
    }
    fn vnet(&self, name: &str, space: &[&str], subnets: &[(&str, &[&str])]) {
        self.put(&net(&format!("virtualNetworks/{name}")), json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": space}}}));
        for (s, p) in subnets {
            self.put(
                &net(&format!("virtualNetworks/{name}/subnets/{s}")),
                json!({"properties": {"addressPrefixes": p}}),
            );
        }
    }
    fn subnet_rt(&self, vnet: &str, s: &str, prefixes: &[&str], table: &str) {
        self.put(
            &net(&format!("virtualNetworks/{vnet}/subnets/{s}")),
            json!({"properties": {"addressPrefixes": prefixes, "routeTable": {"id": net(&format!("routeTables/{table}"))}}}),
        );
    }
    fn link(&self, a: &str, b: &str, props: Value) {
        let mut p = json!({"remoteVirtualNetwork": {"id": net(&format!("virtualNetworks/{b}"))}, "allowVirtualNetworkAccess": true});
        for (k, v) in props.as_object().unwrap() {
            p[k] = v.clone();
        }
        self.put(
            &net(&format!(
                "virtualNetworks/{a}/virtualNetworkPeerings/{a}-{b}"
            )),
            json!({"properties": p}),
        );
    }
    fn unlink(&self, a: &str, b: &str) {
        self.delete(&net(&format!(
            "virtualNetworks/{a}/virtualNetworkPeerings/{a}-{b}"
        )));
    }
    /// A NIC (static addresses) and its VM namespace.
    fn vm(
        &self,
        name: &str,
        vnet: &str,
        subnet: &str,
        ip: &str,
        ip6: Option<&str>,
        forwarding: bool,
    ) {
        self.nic(name, vnet, subnet, ip, ip6, forwarding);
        self.bind(name, None);
    }
    fn nic(
        &self,
        name: &str,
        vnet: &str,
        subnet: &str,
        ip: &str,
        ip6: Option<&str>,
        forwarding: bool,
    ) {
        let sid = net(&format!("virtualNetworks/{vnet}/subnets/{subnet}"));
        let mut cfgs = vec![
            json!({"name": "ipconfig1", "properties": {"subnet": {"id": sid}, "privateIPAddress": ip, "privateIPAllocationMethod": "Static"}}),
        ];
        if let Some(ip6) = ip6 {
            cfgs.push(json!({"name": "ipconfig6", "properties": {"subnet": {"id": sid}, "privateIPAddressVersion": "IPv6", "privateIPAddress": ip6, "privateIPAllocationMethod": "Static"}}));
        }
        self.put(&net(&format!("networkInterfaces/{name}")), json!({"location": "westeurope", "properties": {"enableIPForwarding": forwarding, "ipConfigurations": cfgs}}));
    }
    fn bind(&self, name: &str, mtu: Option<u16>) {
        let nic = net(&format!("networkInterfaces/{name}"));
        let mut body = json!({"netns": self.ns(name), "managed": true});
        if let Some(m) = mtu {
            body["mtu"] = json!(m);
        }
        let (s, b) = self.send(
            self.client
                .put(format!("{}/vnet/v1/bindings{nic}", self.srv.base))
                .json(&body),
        );
        assert_eq!(s, 200, "bind {name}: {b}");
        assert_eq!(b["attached"], json!(true), "bind {name}: {b}");
    }
    fn ns(&self, vm: &str) -> String {
        format!("{}{vm}", self.prefix)
    }
    fn dataplane(&self) -> Value {
        self.send(
            self.client
                .get(format!("{}/vnet/v1/dataplane", self.srv.base)),
        )
        .1
    }
    /// Waits until the agent acknowledged the current store revision; returns how long it took.
    fn settle(&self) -> Duration {
        let t = Instant::now();
        loop {
            let d = self.dataplane();
            if d["appliedGeneration"].as_u64().unwrap() >= d["storeRevision"].as_u64().unwrap() {
                return t.elapsed();
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "agent did not catch up: {d}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    fn counters(&self, vm: &str) -> Value {
        let nic = net(&format!("networkInterfaces/{vm}"));
        self.send(
            self.client
                .get(format!("{}/vnet/v1/nics{nic}", self.srv.base)),
        )
        .1["counters"]
            .clone()
    }
    fn sh(&self, vm: &str, cmd: &str) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(vm), "sh", "-c", cmd])
            .output()
            .unwrap()
    }
    /// Whether `vm` gets an answer from `dst`: up to three single pings (the first answer
    /// ends it), so that a loaded machine does not fail a path that works.
    fn ping(&self, vm: &str, dst: &str) -> bool {
        self.settle();
        (0..3).any(|_| {
            self.sh(vm, &format!("ping -c 1 -W 2 {dst}"))
                .status
                .success()
        })
    }
    /// Whether one ping from `vm` to `dst` goes unanswered (1 s): for paths that must not
    /// work — a refused path never answers by chance, so one try is enough.
    fn no_ping(&self, vm: &str, dst: &str) -> bool {
        self.settle();
        !self
            .sh(vm, &format!("ping -c 1 -W 1 {dst}"))
            .status
            .success()
    }
    /// A TCP or UDP echo through python3: server in `to`, client in `from`.
    fn echo(&self, from: &str, to: &str, dst: &str, udp: bool) -> bool {
        self.settle();
        let fam = if dst.contains(':') {
            "AF_INET6"
        } else {
            "AF_INET"
        };
        let any = if dst.contains(':') { "::" } else { "0.0.0.0" };
        let server = if udp {
            format!("import socket;s=socket.socket(socket.{fam},socket.SOCK_DGRAM);s.bind(('{any}',7007));s.settimeout(5);d,a=s.recvfrom(100);s.sendto(d,a)")
        } else {
            format!("import socket;s=socket.socket(socket.{fam});s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('{any}',7007));s.listen(1);s.settimeout(5);c,a=s.accept();c.sendall(c.recv(100))")
        };
        let mut srv = Command::new("ip")
            .args(["netns", "exec", &self.ns(to), "python3", "-c", &server])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let client = if udp {
            format!("import socket;s=socket.socket(socket.{fam},socket.SOCK_DGRAM);s.settimeout(2);s.sendto(b'hello',('{dst}',7007));print(s.recvfrom(100)[0].decode())")
        } else {
            format!("import socket;s=socket.socket(socket.{fam});s.settimeout(2);s.connect(('{dst}',7007));s.sendall(b'hello');print(s.recv(100).decode())")
        };
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(from), "python3", "-c", &client])
            .output()
            .unwrap();
        let _ = srv.kill();
        let _ = srv.wait();
        String::from_utf8_lossy(&out.stdout).trim() == "hello"
    }
}

#[test]
fn subnets_peering_lifecycle_and_no_transit() {
    let Some(lab) = Lab::new() else { return };
    lab.vnet(
        "a",
        &["10.1.0.0/16", "fd00:1::/48"],
        &[
            ("s1", &["10.1.1.0/24", "fd00:1:0:1::/64"]),
            ("s2", &["10.1.2.0/24"]),
        ],
    );
    lab.vnet(
        "b",
        &["10.2.0.0/16", "fd00:2::/48"],
        &[("s1", &["10.2.1.0/24", "fd00:2:0:1::/64"])],
    );
    lab.vnet("c", &["10.3.0.0/16"], &[("s1", &["10.3.1.0/24"])]);
    lab.vm("a1", "a", "s1", "10.1.1.4", Some("fd00:1:0:1::4"), false);
    lab.vm("a3", "a", "s1", "10.1.1.5", Some("fd00:1:0:1::5"), false);
    lab.vm("a2", "a", "s2", "10.1.2.4", None, false);
    lab.vm("b1", "b", "s1", "10.2.1.4", Some("fd00:2:0:1::4"), false);
    lab.vm("c1", "c", "s1", "10.3.1.4", None, false);

    // Within a subnet and across subnets: ICMP, TCP, UDP, IPv4 and IPv6.
    assert!(lab.ping("a1", "10.1.1.5"), "within a subnet");
    assert!(lab.ping("a1", "fd00:1:0:1::5"), "IPv6 within a subnet");
    assert!(lab.ping("a1", "10.1.2.4"), "across subnets");
    assert!(
        lab.echo("a1", "a2", "10.1.2.4", false),
        "TCP across subnets"
    );
    assert!(lab.echo("a1", "a2", "10.1.2.4", true), "UDP across subnets");
    // A new MTU re-creates a1's device; its counters carry on from where they were.
    let before = lab.counters("a1")["packetsOut"].as_u64().unwrap();
    assert!(before > 0);
    lab.bind("a1", Some(1400));
    let mtu = lab.sh("a1", "cat /sys/class/net/eth0/mtu");
    assert_eq!(String::from_utf8_lossy(&mtu.stdout).trim(), "1400");
    assert!(lab.counters("a1")["packetsOut"].as_u64().unwrap() >= before);
    assert!(
        lab.ping("a1", "10.1.2.4"),
        "after the device was re-created"
    );
    assert!(lab.counters("a1")["packetsOut"].as_u64().unwrap() > before);
    assert!(
        lab.echo("a1", "a3", "fd00:1:0:1::5", false),
        "TCP over IPv6"
    );

    // Unpeered, then Initiated: nothing crosses.
    assert!(lab.no_ping("a1", "10.2.1.4"), "unpeered");
    lab.link("a", "b", json!({}));
    assert!(lab.no_ping("a1", "10.2.1.4"), "Initiated peering");
    lab.link("b", "a", json!({}));
    assert!(lab.ping("a1", "10.2.1.4"), "Connected peering");
    assert!(lab.ping("b1", "10.1.2.4"), "the other way, another subnet");
    assert!(lab.ping("a1", "fd00:2:0:1::4"), "IPv6 across the peering");
    assert!(
        lab.echo("a1", "b1", "10.2.1.4", false),
        "TCP across the peering"
    );
    assert!(
        lab.echo("b1", "a1", "10.1.1.4", true),
        "UDP across the peering"
    );

    // allowVirtualNetworkAccess=false on one link blocks both directions.
    lab.link("b", "a", json!({"allowVirtualNetworkAccess": false}));
    assert!(
        lab.no_ping("a1", "10.2.1.4"),
        "access disabled on the remote link"
    );
    assert!(
        lab.no_ping("b1", "10.1.1.4"),
        "access disabled on the local link"
    );
    lab.link("b", "a", json!({"allowVirtualNetworkAccess": true}));
    assert!(lab.ping("a1", "10.2.1.4"), "access enabled again");

    // A – B – C: B reaches C, A never does.
    lab.link("b", "c", json!({}));
    lab.link("c", "b", json!({}));
    assert!(lab.ping("b1", "10.3.1.4"), "B to C");
    assert!(lab.no_ping("a1", "10.3.1.4"), "no transit from A to C");
    assert!(lab.no_ping("c1", "10.1.1.4"), "no transit from C to A");

    // Deleting the peering stops the traffic.
    lab.unlink("a", "b");
    assert!(lab.no_ping("a1", "10.2.1.4"), "peering deleted");
    let c = lab.counters("a1");
    assert!(c["packetsOut"].as_u64().unwrap() > 10, "{c}");
    assert!(c["drops"]["routeNone"].as_u64().unwrap() >= 1, "{c}");
}

#[test]
fn overlapping_spoofing_udr_none_mtu_and_ttl() {
    let Some(lab) = Lab::new() else { return };
    lab.vnet(
        "x",
        &["10.5.0.0/16"],
        &[("s1", &["10.5.1.0/24"]), ("s2", &["10.5.2.0/24"])],
    );
    lab.vnet("y", &["10.5.0.0/16"], &[("s1", &["10.5.1.0/24"])]);
    lab.vm("x1", "x", "s1", "10.5.1.4", None, false);
    lab.vm("x2", "x", "s1", "10.5.1.5", None, false);
    lab.nic("x3", "x", "s2", "10.5.2.4", None, false);
    lab.bind("x3", Some(1280));
    lab.vm("y1", "y", "s1", "10.5.1.4", None, false);

    // Overlapping unpeered VNets work side by side and never exchange a packet.
    assert!(lab.ping("x1", "10.5.1.5"));
    let before = lab.counters("x2")["packetsIn"].as_u64().unwrap();
    assert!(lab.no_ping("y1", "10.5.1.5"), "no x2 in y");
    assert_eq!(
        lab.counters("x2")["packetsIn"].as_u64().unwrap(),
        before,
        "x2 received nothing from y"
    );
    assert!(lab.counters("y1")["drops"]["noSuchHost"].as_u64().unwrap() >= 1);

    // A spoofed source is dropped.
    assert!(lab
        .sh("x1", "ip addr add 10.5.1.99/32 dev eth0")
        .status
        .success());
    assert!(
        !lab.sh("x1", "ping -c 1 -W 1 -I 10.5.1.99 10.5.1.5")
            .status
            .success(),
        "spoofed source"
    );
    assert!(
        lab.counters("x1")["drops"]["spoofedSource"]
            .as_u64()
            .unwrap()
            >= 1
    );

    // Without DF the hop fragments as a router does: 1328 bytes for MTU 1280; and with -s 2000
    // x1 (MTU 1500) sends a 1500-byte first fragment that the hop fragments again.
    let before = lab.counters("x3")["packetsIn"].as_u64().unwrap();
    for size in [1300, 2000, 4000] {
        let o = lab.sh(
            "x1",
            &format!("ping -c 2 -i 0.2 -W 1 -M dont -s {size} 10.5.2.4"),
        );
        assert!(
            o.status.success(),
            "non-DF ping of {size} bytes through the 1280-byte hop: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    // x1 (MTU 1500, no path MTU learned yet) sends 1 + 2 + 3 packets per round: 1328 bytes;
    // 1500 + 548; 1500 + 1500 + 1068. The hop splits each one above 1280 in two: 2 + 3 + 5
    // reach x3 per round, 20 in all. (Had x1 fragmented at 1280 itself — a learned path MTU —
    // x3 would count 2 + 2 + 4 per round, 16.)
    let after = lab.counters("x3")["packetsIn"].as_u64().unwrap();
    assert!(
        after >= before + 2 * (2 + 3 + 5),
        "x3 received fragments: {before} -> {after}"
    );
    // UDP without DF whose checksum the sender left to offload: completed before the hop
    // fragments it (1428 bytes), the receiver reassembles and checks it.
    let server = "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('0.0.0.0',7008));s.settimeout(5);d,a=s.recvfrom(9000);s.sendto(str(len(d)).encode()+b' '+str(sum(d)).encode(),a)";
    let mut srv = Command::new("ip")
        .args(["netns", "exec", &lab.ns("x3"), "python3", "-c", server])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let client = "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.setsockopt(socket.IPPROTO_IP,10,0);s.settimeout(3);d=bytes(i%251 for i in range(1400));s.sendto(d,('10.5.2.4',7008));print(s.recvfrom(100)[0].decode(), sum(d))";
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.ns("x1"), "python3", "-c", client])
        .output()
        .unwrap();
    let _ = srv.kill();
    let _ = srv.wait();
    let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let want_sum: u32 = (0..1400u32).map(|i| i % 251).sum();
    assert_eq!(
        got,
        format!("1400 {want_sum} {want_sum}"),
        "UDP 1400 bytes, no DF, through the 1280-byte hop: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Packet too big for the hop's MTU: ICMP fragmentation needed with the MTU (after this x1's
    // kernel remembers the path MTU, which is why the non-DF cases run first).
    let o = lab.sh(
        "x1",
        "ping -c 1 -W 1 -M do -s 1400 10.5.2.4; ping -c 1 -W 1 -s 1000 10.5.2.4",
    );
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(
        text.contains("mtu = 1280") || text.contains("Frag needed"),
        "{text}"
    );
    assert!(o.status.success(), "a packet that fits passes: {text}");
    // TTL: time exceeded.
    let o = lab.sh("x1", "ping -c 1 -W 1 -t 1 10.5.2.4");
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        text.contains("Time to live exceeded") && text.contains("10.5.1.1"),
        "{text}"
    );

    // UDR None drops.
    lab.put(
        &net("routeTables/rt"),
        json!({"location": "westeurope", "properties": {}}),
    );
    lab.put(
        &net("routeTables/rt/routes/blackhole"),
        json!({"properties": {"addressPrefix": "10.5.2.0/24", "nextHopType": "None"}}),
    );
    assert!(lab.ping("x1", "10.5.2.4"));
    lab.subnet_rt("x", "s1", &["10.5.1.0/24"], "rt");
    assert!(lab.no_ping("x1", "10.5.2.4"), "UDR None");
    assert!(lab.counters("x1")["drops"]["routeNone"].as_u64().unwrap() >= 1);
}

#[test]
fn virtual_appliance_chain_needs_ip_forwarding() {
    let Some(lab) = Lab::new() else { return };
    lab.vnet("a", &["10.1.0.0/16"], &[("s1", &["10.1.1.0/24"])]);
    lab.vnet("hub", &["10.2.0.0/16"], &[("s1", &["10.2.1.0/24"])]);
    lab.vnet("c", &["10.3.0.0/16"], &[("s1", &["10.3.1.0/24"])]);
    lab.vm("a1", "a", "s1", "10.1.1.4", None, false);
    lab.vm("nva", "hub", "s1", "10.2.1.10", None, true);
    lab.vm("c1", "c", "s1", "10.3.1.4", None, false);
    // Spokes accept traffic the hub forwards.
    lab.link("a", "hub", json!({"allowForwardedTraffic": true}));
    lab.link("hub", "a", json!({}));
    lab.link("c", "hub", json!({"allowForwardedTraffic": true}));
    lab.link("hub", "c", json!({}));
    for (t, spoke, other) in [("rta", "a", "10.3.0.0/16"), ("rtc", "c", "10.1.0.0/16")] {
        lab.put(
            &net(&format!("routeTables/{t}")),
            json!({"location": "westeurope", "properties": {}}),
        );
        lab.put(
            &net(&format!("routeTables/{t}/routes/via-nva")),
            json!({"properties": {"addressPrefix": other, "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.2.1.10"}}),
        );
        let p = if spoke == "a" {
            "10.1.1.0/24"
        } else {
            "10.3.1.0/24"
        };
        lab.subnet_rt(spoke, "s1", &[p], t);
    }
    assert!(lab.sh("nva", "sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0").status.success());
    assert!(lab.ping("a1", "10.3.1.4"), "A to C through the appliance");
    assert!(
        lab.echo("a1", "c1", "10.3.1.4", false),
        "TCP through the appliance"
    );
    // The appliance's NIC without IP forwarding: packets not addressed to it are dropped.
    lab.nic("nva", "hub", "s1", "10.2.1.10", None, false);
    assert!(
        lab.no_ping("a1", "10.3.1.4"),
        "appliance without enableIPForwarding"
    );
    assert!(
        lab.counters("a1")["drops"]["ipForwardingDisabled"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

#[test]
fn deleting_a_peering_under_a_continuous_flow() {
    let Some(lab) = Lab::new() else { return };
    lab.vnet("a", &["10.1.0.0/16"], &[("s1", &["10.1.1.0/24"])]);
    lab.vnet("b", &["10.2.0.0/16"], &[("s1", &["10.2.1.0/24"])]);
    lab.vm("a1", "a", "s1", "10.1.1.4", None, false);
    lab.vm("b1", "b", "s1", "10.2.1.4", None, false);
    lab.link("a", "b", json!({}));
    lab.link("b", "a", json!({}));
    assert!(lab.ping("a1", "10.2.1.4"));
    // A continuous UDP flow a1 → b1 (about 2000 packets/s).
    let mut flow = Command::new("ip")
        .args(["netns", "exec", &lab.ns("a1"), "python3", "-c",
               "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nwhile True:\n  s.sendto(b'x'*100,('10.2.1.4',9))\n  time.sleep(0.0005)"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let flowing = lab.counters("b1")["packetsIn"].as_u64().unwrap();
    assert!(flowing > 100, "the flow reaches b1: {flowing}");
    let t = Instant::now();
    lab.unlink("b", "a");
    let took = lab.settle();
    let at_ack = lab.counters("b1")["packetsIn"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let later = lab.counters("b1")["packetsIn"].as_u64().unwrap();
    let _ = flow.kill();
    let _ = flow.wait();
    assert!(
        t.elapsed() < Duration::from_secs(1) + took,
        "in force within a second"
    );
    assert!(took < Duration::from_secs(1), "acknowledged in {took:?}");
    assert_eq!(at_ack, later, "not one packet after the ack");
    assert!(lab.counters("a1")["drops"]["routeNone"].as_u64().unwrap() > 10);
}

#[test]
fn restart_reattaches_without_duplicates_and_capture_writes_pcap() {
    let Some(mut lab) = Lab::new() else { return };
    lab.vnet("a", &["10.1.0.0/16"], &[("s1", &["10.1.1.0/24"])]);
    lab.vm("a1", "a", "s1", "10.1.1.4", None, false);
    lab.vm("a2", "a", "s1", "10.1.1.5", None, false);
    assert!(lab.ping("a1", "10.1.1.5"));
    lab.restart();
    lab.settle();
    assert!(lab.ping("a1", "10.1.1.5"), "after a restart");
    lab.restart();
    lab.settle();
    assert!(lab.ping("a1", "10.1.1.5"), "after a second restart");
    let links = lab.sh("a1", "ip -o link show");
    let links = String::from_utf8_lossy(&links.stdout).to_string();
    assert_eq!(links.lines().count(), 2, "lo and eth0 only: {links}");
    let addrs =
        String::from_utf8_lossy(&lab.sh("a1", "ip -o -4 addr show dev eth0").stdout).to_string();
    assert_eq!(addrs.lines().count(), 1, "{addrs}");

    // Capture while pinging; tshark reads the file.
    let nic = net("networkInterfaces/a1");
    let url = format!("{}/vnet/v1/capture{nic}?duration=1.5", lab.srv.base);
    let c = lab.client.clone();
    let h = std::thread::spawn(move || c.post(url).send().unwrap().bytes().unwrap().to_vec());
    std::thread::sleep(Duration::from_millis(300));
    lab.sh("a1", "ping -c 3 -i 0.2 10.1.1.5");
    let pcap = h.join().unwrap();
    let f = lab.dir.path().join("a1.pcap");
    std::fs::write(&f, &pcap).unwrap();
    let o = Command::new("tshark")
        .args(["-r", f.to_str().unwrap()])
        .output()
        .expect("tshark is installed");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(text.matches("Echo (ping) request").count() >= 3, "{text}");
    assert!(text.matches("Echo (ping) reply").count() >= 3, "{text}");

    // Unbinding deletes the VM's namespace.
    let (s, _) = lab.send(lab.client.delete(format!(
        "{}/vnet/v1/bindings{}",
        lab.srv.base,
        net("networkInterfaces/a2")
    )));
    assert_eq!(s, 200);
    assert!(!std::path::Path::new(&format!("/run/netns/{}", lab.ns("a2"))).exists());
}
