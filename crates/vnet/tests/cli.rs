//! End-to-end: a real `vnet serve` on a free port with a fresh data directory, driven only
//! through the `vnet` command line, the way a user would: over HTTPS with the CA and the
//! operator credentials the server made in its data directory (`VNET_DATA_DIR`), and once over
//! `--insecure-http`.

use serde_json::Value;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_vnet");

/// Client settings a developer's shell might carry; every test run starts without them.
const CLIENT_ENV: &[&str] = &[
    "VNET_SERVER",
    "VNET_SUBSCRIPTION",
    "VNET_DATA_DIR",
    "VNET_CA_CERT",
    "VNET_CREDENTIALS",
    "VNET_TENANT_ID",
    "VNET_CLIENT_ID",
    "VNET_CLIENT_SECRET",
    "RUST_LOG",
];

/// A running `vnet serve`; killed when dropped, also when the test panics. Its log is printed
/// if the test failed.
struct Server {
    child: Child,
    url: String,
    log: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// The default server: HTTPS with bearer tokens.
    fn start() -> Server {
        Server::start_with(&[])
    }

    fn start_with(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let port = free_port();
        let log = dir.path().join("server.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(BIN);
        for var in CLIENT_ENV {
            cmd.env_remove(var);
        }
        let child = cmd
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(&data)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("start vnet serve");
        let scheme = if extra.contains(&"--insecure-http") {
            "http"
        } else {
            "https"
        };
        let mut server = Server {
            child,
            url: format!("{scheme}://127.0.0.1:{port}"),
            log,
            data,
            _dir: dir,
        };
        server.wait_ready();
        server
    }

    /// Ready once the banner is out: it follows the TLS setup that writes `ca.pem`, so a
    /// client started afterwards finds everything it needs.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("poll server") {
                panic!(
                    "vnet serve exited early with {status}:\n{}",
                    self.log_text()
                );
            }
            if self.log_text().contains("vnet API listening on") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "vnet serve did not come up within 30 s:\n{}",
            self.log_text()
        );
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `vnet LINE` with only this server's settings in the environment (arguments split at
    /// whitespace, as in a shell without quotes).
    fn command(&self, line: &str) -> Command {
        let mut cmd = Command::new(BIN);
        for var in CLIENT_ENV {
            cmd.env_remove(var);
        }
        cmd.args(line.split_whitespace())
            .env("VNET_SERVER", &self.url)
            .env("VNET_DATA_DIR", &self.data)
            .current_dir(self.data.parent().expect("temp dir"));
        cmd
    }

    /// Runs `vnet LINE` against this server, signed in as its operator.
    fn run(&self, line: &str) -> Output {
        self.command(line).output().expect("run vnet")
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, line: &str) -> String {
        let out = self.run(line);
        assert!(
            out.status.success(),
            "vnet {line} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs a command that must succeed and print JSON.
    fn json(&self, line: &str) -> Value {
        let text = self.ok(line);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("vnet {line}: not JSON ({e}):\n{text}"))
    }

    /// Runs a command that must fail; returns its stderr.
    fn fails(&self, line: &str) -> String {
        expect_failure(line, self.run(line))
    }
}

fn expect_failure(line: &str, out: Output) -> String {
    assert!(
        !out.status.success(),
        "vnet {line} should have failed but printed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        out.stdout.is_empty(),
        "a failed command prints nothing on stdout"
    );
    String::from_utf8(out.stderr).expect("utf-8 errors")
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- vnet serve log ---\n{}", self.log_text());
        }
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}

/// The rows of a `-o table` output, each as its non-empty cells joined by one space (columns
/// are separated by two or more spaces, and no cell here contains two).
fn table_rows(text: &str) -> Vec<String> {
    text.lines()
        .skip(2)
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Whether a `-o table` output has a row that starts with these cells.
fn has_row(text: &str, cells: &str) -> bool {
    table_rows(text)
        .iter()
        .any(|row| row == cells || row.starts_with(&format!("{cells} ")))
}

#[test]
fn hub_and_spoke() {
    let s = Server::start();

    let rg = s.json("group create -n rg1 -l westus");
    assert_eq!(rg["name"], "rg1");
    assert_eq!(rg["properties"]["provisioningState"], "Succeeded");

    // Two VNets; the hub gets its subnet at creation, the spoke through `subnet create`.
    let hub = s.json("network vnet create -g rg1 -n hub --address-prefixes 10.0.0.0/16 --subnet-name default --subnet-prefixes 10.0.0.0/24");
    assert_eq!(
        hub["location"], "westus",
        "location defaults to the group's"
    );
    assert_eq!(hub["addressSpace"]["addressPrefixes"][0], "10.0.0.0/16");
    assert_eq!(hub["subnets"][0]["name"], "default");
    assert_eq!(hub["resourceGroup"], "rg1");
    s.json("network vnet create -g rg1 -n spoke --address-prefixes 10.1.0.0/16");
    let subnet = s.json("network vnet subnet create -g rg1 --vnet-name spoke -n workload --address-prefixes 10.1.1.0/24");
    assert_eq!(subnet["addressPrefix"], "10.1.1.0/24");
    let subnets = s.json("network vnet subnet list -g rg1 --vnet-name spoke");
    assert_eq!(subnets.as_array().unwrap().len(), 1);

    let table = s.ok("network vnet list -g rg1 -o table");
    let rows = table_rows(&table);
    assert!(
        table.starts_with("Name    ResourceGroup    Location    NumSubnets    Prefixes"),
        "{table}"
    );
    assert_eq!(rows.len(), 2, "{table}");
    assert!(
        has_row(&table, "hub rg1 westus 1 10.0.0.0/16 Succeeded"),
        "{table}"
    );

    // Peering: one side is Initiated, both sides make it Connected.
    let there = s.json("network vnet peering create -g rg1 --vnet-name hub -n hub-to-spoke --remote-vnet spoke --allow-forwarded-traffic");
    assert_eq!(there["peeringState"], "Initiated");
    assert_eq!(there["allowVirtualNetworkAccess"], true);
    assert_eq!(there["allowForwardedTraffic"], true);
    let back = s.json(
        "network vnet peering create -g rg1 --vnet-name spoke -n spoke-to-hub --remote-vnet hub",
    );
    assert_eq!(back["peeringState"], "Connected");
    let there = s.json("network vnet peering show -g rg1 --vnet-name hub -n hub-to-spoke");
    assert_eq!(there["peeringState"], "Connected");
    assert_eq!(there["remoteVirtualNetwork"]["resourceGroup"], "rg1");
    let table = s.ok("network vnet peering list -g rg1 --vnet-name spoke -o table");
    assert!(has_row(&table, "spoke-to-hub rg1 hub Connected"), "{table}");

    // NICs: a static address and a dynamic one.
    let nic1 = s.json("network nic create -g rg1 -n hub-nic --vnet-name hub --subnet default --private-ip-address 10.0.0.10");
    assert_eq!(nic1["ipConfigurations"][0]["privateIPAddress"], "10.0.0.10");
    assert_eq!(
        nic1["ipConfigurations"][0]["privateIPAllocationMethod"],
        "Static"
    );
    let nic2 = s.json("network nic create -g rg1 -n spoke-nic --vnet-name spoke --subnet workload");
    assert_eq!(
        nic2["ipConfigurations"][0]["privateIPAllocationMethod"],
        "Dynamic"
    );
    let dynamic_ip = nic2["ipConfigurations"][0]["privateIPAddress"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(dynamic_ip.starts_with("10.1.1."), "{dynamic_ip}");
    let nics = s.ok("network nic list -g rg1 -o table");
    assert!(
        nics.contains("10.0.0.10") && nics.contains(&dynamic_ip),
        "{nics}"
    );

    // Effective routes of the hub NIC: its own space, the peer's space, the system routes.
    let routes = s.json("network nic show-effective-route-table -g rg1 -n hub-nic");
    let value = routes["value"].as_array().expect("value array");
    let find = |prefix: &str| {
        value
            .iter()
            .find(|r| r["addressPrefix"][0] == prefix)
            .unwrap_or_else(|| panic!("no route for {prefix} in {routes}"))
    };
    assert_eq!(find("10.0.0.0/16")["nextHopType"], "VnetLocal");
    assert_eq!(find("10.1.0.0/16")["nextHopType"], "VNetPeering");
    assert_eq!(find("0.0.0.0/0")["nextHopType"], "Internet");
    assert!(value
        .iter()
        .all(|r| r["source"] == "Default" && r["state"] == "Active"));

    let table = s.ok("network nic show-effective-route-table -g rg1 -n hub-nic -o table");
    let mut lines = table.lines();
    assert_eq!(
        lines.next(),
        Some("Source    State    Address Prefix    Next Hop Type    Next Hop IP")
    );
    assert_eq!(
        lines.next(),
        Some("--------  -------  ----------------  ---------------  -------------")
    );
    let rows = table_rows(&table);
    assert!(
        has_row(&table, "Default Active 10.1.0.0/16 VNetPeering"),
        "{table}"
    );
    assert_eq!(rows.len(), value.len());

    // Next hop from the hub NIC to the spoke NIC goes over the peering.
    let hop = s.json(&format!(
        "network watcher show-next-hop -g rg1 --vm hub-nic --source-ip 10.0.0.10 --dest-ip {dynamic_ip}"
    ));
    assert_eq!(hop["nextHopType"], "VNetPeering");

    // A third VNet overlapping the hub cannot be peered with it.
    s.json("network vnet create -g rg1 -n clash --address-prefixes 10.0.0.0/16");
    let err = s.fails(
        "network vnet peering create -g rg1 --vnet-name hub -n hub-to-clash --remote-vnet clash",
    );
    assert!(err.starts_with("VnetAddressSpacesOverlap: "), "{err}");
    assert!(err.contains("10.0.0.0/16"), "{err}");
    s.fails("network vnet peering show -g rg1 --vnet-name hub -n hub-to-clash");
}

#[test]
fn address_space_change_and_sync() {
    let s = Server::start();
    s.ok("group create -n rg -l eastus");
    s.ok("network vnet create -g rg -n a --address-prefixes 10.10.0.0/16");
    s.ok("network vnet create -g rg -n b --address-prefixes 10.20.0.0/16");
    s.ok("network vnet peering create -g rg --vnet-name a -n a-b --remote-vnet b");
    s.ok("network vnet peering create -g rg --vnet-name b -n b-a --remote-vnet a");

    let b = s.json("network vnet update -g rg -n b --address-prefixes 10.20.0.0/16 10.30.0.0/16");
    assert_eq!(
        b["addressSpace"]["addressPrefixes"],
        serde_json::json!(["10.20.0.0/16", "10.30.0.0/16"])
    );

    let a_b = s.json("network vnet peering show -g rg --vnet-name a -n a-b");
    assert_eq!(a_b["peeringSyncLevel"], "LocalNotInSync", "{a_b}");
    let a_b = s.json("network vnet peering sync -g rg --vnet-name a -n a-b");
    assert_eq!(a_b["peeringSyncLevel"], "FullyInSync", "{a_b}");
    assert_eq!(a_b["peeringState"], "Connected");
    assert_eq!(
        a_b["remoteAddressSpace"]["addressPrefixes"][1],
        "10.30.0.0/16"
    );

    // Options change without touching the link.
    let a_b =
        s.json("network vnet peering update -g rg --vnet-name a -n a-b --allow-vnet-access false");
    assert_eq!(a_b["allowVirtualNetworkAccess"], false);
    assert_eq!(a_b["peeringState"], "Connected");

    // Deleting one side leaves the other Disconnected.
    assert_eq!(
        s.ok("network vnet peering delete -g rg --vnet-name b -n b-a"),
        ""
    );
    let a_b = s.json("network vnet peering show -g rg --vnet-name a -n a-b");
    assert_eq!(a_b["peeringState"], "Disconnected");
}

#[test]
fn user_routes_and_vpn_gateway() {
    let s = Server::start();
    s.ok("group create -n net -l westeurope");
    s.ok("network vnet create -g net -n hub --address-prefixes 10.0.0.0/16 --subnet-name apps --subnet-prefixes 10.0.1.0/24");
    s.ok("network vnet subnet create -g net --vnet-name hub -n GatewaySubnet --address-prefixes 10.0.255.0/27");

    // A user route through an appliance shows up as the active default route.
    s.ok("network route-table create -g net -n rt");
    let route = s.json("network route-table route create -g net --route-table-name rt -n to-nva --address-prefix 0.0.0.0/0 --next-hop-type VirtualAppliance --next-hop-ip-address 10.0.1.100");
    assert_eq!(route["nextHopType"], "VirtualAppliance");
    let subnet =
        s.json("network vnet subnet update -g net --vnet-name hub -n apps --route-table rt");
    assert_eq!(
        subnet["routeTable"]["id"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next(),
        Some("rt")
    );
    s.ok("network nic create -g net -n app-nic --vnet-name hub --subnet apps --ip-forwarding");
    let table = s.ok("network nic show-effective-route-table -g net -n app-nic -o table");
    assert!(
        has_row(&table, "User Active 0.0.0.0/0 VirtualAppliance 10.0.1.100"),
        "{table}"
    );
    assert!(
        has_row(&table, "Default Invalid 0.0.0.0/0 Internet"),
        "{table}"
    );
    let routes = s.ok("network route-table route list -g net --route-table-name rt -o table");
    assert!(
        routes.contains("to-nva") && routes.contains("10.0.1.100"),
        "{routes}"
    );

    // A VPN gateway, created without waiting, then followed until provisioned.
    let pip = s.json("network public-ip create -g net -n gw-ip");
    assert!(pip["ipAddress"].is_string(), "{pip}");
    let out = s.ok("network vnet-gateway create -g net -n gw --vnet hub --public-ip-addresses gw-ip --asn 65010 --address-prefixes 172.16.201.0/24 --no-wait");
    assert_eq!(out, "", "--no-wait prints nothing");
    let deadline = Instant::now() + Duration::from_secs(30);
    let gw = loop {
        let gw = s.json("network vnet-gateway show -g net -n gw");
        if gw["provisioningState"] == "Succeeded" || Instant::now() > deadline {
            break gw;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(gw["provisioningState"], "Succeeded", "{gw}");
    assert_eq!(gw["enableBgp"], true);
    assert_eq!(
        gw["vpnClientConfiguration"]["vpnClientAddressPool"]["addressPrefixes"][0],
        "172.16.201.0/24"
    );

    // Site-to-site: local gateway, connection (waits for provisioning), shared key.
    let lng = s.json("network local-gateway create -g net -n onprem --gateway-ip-address 198.51.100.10 --local-address-prefixes 192.168.0.0/16");
    assert_eq!(
        lng["provisioningState"], "Succeeded",
        "the CLI waits for asynchronous provisioning"
    );
    let conn = s.json("network vpn-connection create -g net -n s2s --vnet-gateway1 gw --local-gateway2 onprem --shared-key abc123");
    assert_eq!(conn["provisioningState"], "Succeeded");
    assert_eq!(conn["connectionType"], "IPsec");
    assert!(conn.get("sharedKey").is_none(), "the key is write-only");
    assert_eq!(
        s.json("network vpn-connection shared-key show -g net --connection-name s2s")["value"],
        "abc123"
    );
    s.ok("network vpn-connection shared-key update -g net --connection-name s2s --value n3wk3y");
    assert_eq!(
        s.json("network vpn-connection shared-key show -g net --connection-name s2s")["value"],
        "n3wk3y"
    );
    s.ok("network vpn-connection shared-key reset -g net --connection-name s2s --key-length 40");
    let key = s.json("network vpn-connection shared-key show -g net --connection-name s2s");
    assert_ne!(key["value"], "n3wk3y");
    let table = s.ok("network vpn-connection list -g net -o table");
    assert!(has_row(&table, "s2s net westeurope IPsec"), "{table}");

    // Deleting waits for the operation; the resource is gone afterwards.
    assert_eq!(s.ok("network vpn-connection delete -g net -n s2s"), "");
    let err = s.fails("network vpn-connection show -g net -n s2s");
    assert!(err.starts_with("ResourceNotFound: "), "{err}");
    s.ok("group delete -n net --yes");
    let err = s.fails("group show -n net");
    assert!(err.starts_with("ResourceGroupNotFound: "), "{err}");
}

#[test]
fn errors_are_code_colon_message() {
    let s = Server::start();
    let err = s.fails("network vnet create -g missing -n v");
    assert!(err.starts_with("ResourceGroupNotFound: "), "{err}");
    let err = s.fails("network nic create -g missing -n n --subnet s");
    assert!(
        err.starts_with("ValidationError: --subnet s is a name"),
        "{err}"
    );

    // Nothing listens on a port that was just freed.
    let port = free_port();
    let line = format!("network vnet list --server http://127.0.0.1:{port}");
    let err = s.fails(&line);
    assert!(
        err.starts_with(&format!(
            "ServerUnreachable: the vnet server is not reachable at http://127.0.0.1:{port}"
        )),
        "{err}"
    );

    // Usage errors are clap's (exit status 2).
    let out = s.run("network vnet peering create -g rg");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sign_in_and_trust() {
    let s = Server::start();
    let ca = s.data.join("ca.pem");
    let creds = s.data.join("credentials.json");
    assert!(
        ca.is_file() && creds.is_file(),
        "the server made its CA and operator"
    );
    s.ok("group create -n rg -l westus");

    // Without the data directory: the CA and the credentials given explicitly.
    let elsewhere = |line: &str| {
        let mut cmd = s.command(line);
        cmd.env("VNET_DATA_DIR", s.data.join("nothing-here"));
        cmd
    };
    let line = format!(
        "group show -n rg --ca-cert {} --credentials {}",
        ca.display(),
        creds.display()
    );
    let out = elsewhere(&line).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Service principal credentials from the environment.
    let json: Value = serde_json::from_slice(&std::fs::read(&creds).unwrap()).unwrap();
    let line = format!("group show -n rg --ca-cert {}", ca.display());
    let out = elsewhere(&line)
        .env("VNET_TENANT_ID", json["tenantId"].as_str().unwrap())
        .env("VNET_CLIENT_ID", json["clientId"].as_str().unwrap())
        .env("VNET_CLIENT_SECRET", json["clientSecret"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A wrong secret is the token endpoint's refusal.
    let out = elsewhere(&line)
        .env("VNET_TENANT_ID", json["tenantId"].as_str().unwrap())
        .env("VNET_CLIENT_ID", json["clientId"].as_str().unwrap())
        .env("VNET_CLIENT_SECRET", "wrong")
        .output()
        .unwrap();
    let err = expect_failure(&line, out);
    assert!(
        err.starts_with("AuthenticationFailed: signing in as "),
        "{err}"
    );
    assert!(err.contains("invalid_client"), "{err}");

    // No credentials at all: the server's 401, with a hint.
    let err = expect_failure(&line, elsewhere(&line).output().unwrap());
    assert!(err.starts_with("AuthenticationFailed: "), "{err}");
    assert!(err.contains("no credentials found"), "{err}");

    // An untrusted server certificate.
    let line = format!("group show -n rg --credentials {}", creds.display());
    let err = expect_failure(&line, elsewhere(&line).output().unwrap());
    assert!(
        err.starts_with("TlsError: cannot make a secure connection to https://127.0.0.1:"),
        "{err}"
    );
}

#[test]
fn insecure_http_needs_no_sign_in() {
    let s = Server::start_with(&["--insecure-http"]);
    assert!(s.url.starts_with("http://"));
    s.ok("group create -n dev -l westus");
    let v = s.json("network vnet create -g dev -n v --address-prefixes 10.9.0.0/16");
    assert_eq!(v["provisioningState"], "Succeeded");
}
