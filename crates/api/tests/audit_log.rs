//! Issue 9 item 11: one audit line per write request, an access line per request, request ids
//! on every answer, and never a secret. The log is captured twice: the `tracing` output (one
//! global subscriber, so this binary holds this one test) and the `--audit-log` JSON file.
//!
//! Secrets tried: the operator's client secret (token request body), its bearer token
//! (Authorization header), a connection's `sharedKey` (PUT body), a secret in a query string,
//! and a forged client request id that tries to add a field to the line.

mod serving;

use serde_json::{json, Value};
use serving::Running;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const API: &str = "2025-07-01";
const SHARED_KEY: &str = "Audit-Shared-Key-7f3a9c1e";
const QUERY_SECRET: &str = "query-secret-5b2d";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let v: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[test]
fn write_requests_are_audited_without_secrets() {
    let captured = Captured::default();
    let w = captured.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish(),
    )
    .unwrap();
    let logs = tempfile::tempdir().unwrap();
    let audit_file = logs.path().join("audit.jsonl");
    let af = audit_file.clone();
    let srv = Running::start(move |c| {
        c.insecure_http = false;
        c.audit_log = Some(af);
    });
    let c = srv.client();
    let base = srv.base();
    let creds = srv.creds();
    let tenant = creds["tenantId"].as_str().unwrap();
    let sub = creds["subscriptionId"].as_str().unwrap();
    let secret = creds["clientSecret"].as_str().unwrap();
    let tok: Value = c
        .post(format!("{base}/{tenant}/oauth2/v2.0/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "client_credentials"),
            ("client_id", creds["clientId"].as_str().unwrap()),
            ("client_secret", secret),
            ("scope", "https://management.azure.com/.default"),
        ]))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = tok["access_token"].as_str().unwrap().to_string();
    let call = |method: &str, path: &str, body: Option<Value>, client_id: Option<&str>| {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut rb = c
            .request(
                method.parse().unwrap(),
                format!("{base}{path}{sep}api-version={API}"),
            )
            .bearer_auth(&token);
        if let Some(id) = client_id {
            rb = rb.header("x-ms-client-request-id", id);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send().unwrap()
    };
    let wait = |path: &str| {
        let t = Instant::now();
        loop {
            let b: Value = call("GET", path, None, None).json().unwrap();
            if b["properties"]["provisioningState"] == "Succeeded" {
                return;
            }
            assert!(t.elapsed() < Duration::from_secs(20), "{path}: {b}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    let rg = format!("/subscriptions/{sub}/resourceGroups/audited");
    let r = call(
        "PUT",
        &rg,
        Some(json!({"location": "westeurope"})),
        Some("my-req-1"),
    );
    assert_eq!(r.status().as_u16(), 201);
    let h = |n: &str| r.headers()[n].to_str().unwrap().to_string();
    let request_id = h("x-ms-request-id");
    assert!(uuid::Uuid::parse_str(&request_id).is_ok(), "{request_id}");
    assert!(uuid::Uuid::parse_str(&h("x-ms-correlation-request-id")).is_ok());
    assert_eq!(h("x-ms-client-request-id"), "my-req-1");
    // A client id made to look like another field is not taken (nor echoed).
    let r = call("GET", &rg, None, Some("x principal=admin"));
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("x-ms-client-request-id").is_none());
    let read_id = r.headers()["x-ms-request-id"].to_str().unwrap().to_string();
    assert_ne!(read_id, request_id, "a new id per request");

    // A VPN connection with a shared key.
    let net = format!("{rg}/providers/Microsoft.Network");
    call(
        "PUT",
        &format!("{net}/virtualNetworks/hub"),
        Some(json!({"location": "westeurope", "properties": {
        "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
        "subnets": [{"name": "GatewaySubnet", "properties": {"addressPrefix": "10.0.255.0/27"}}]}})),
        None,
    );
    call(
        "PUT",
        &format!("{net}/publicIPAddresses/gw-pip"),
        Some(json!({"location": "westeurope", "sku": {"name": "Standard"}})),
        None,
    );
    let r = call(
        "PUT",
        &format!("{net}/virtualNetworkGateways/gw"),
        Some(json!({"location": "westeurope", "properties": {
        "gatewayType": "Vpn", "vpnType": "RouteBased", "sku": {"name": "VpnGw1", "tier": "VpnGw1"},
        "ipConfigurations": [{"name": "default", "properties": {
            "subnet": {"id": format!("{net}/virtualNetworks/hub/subnets/GatewaySubnet")},
            "publicIPAddress": {"id": format!("{net}/publicIPAddresses/gw-pip")}}}]}})),
        None,
    );
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().unwrap());
    let r = call(
        "PUT",
        &format!("{net}/localNetworkGateways/onprem"),
        Some(json!({"location": "westeurope", "properties": {
        "gatewayIpAddress": "203.0.113.9", "localNetworkAddressSpace": {"addressPrefixes": ["172.16.0.0/16"]}}})),
        None,
    );
    assert_eq!(r.status().as_u16(), 201);
    wait(&format!("{net}/virtualNetworkGateways/gw"));
    wait(&format!("{net}/localNetworkGateways/onprem"));
    let conn = format!("{net}/connections/c1");
    let r = call(
        "PUT",
        &conn,
        Some(json!({"location": "westeurope", "properties": {
        "connectionType": "IPsec", "sharedKey": SHARED_KEY,
        "virtualNetworkGateway1": {"id": format!("{net}/virtualNetworkGateways/gw")},
        "localNetworkGateway2": {"id": format!("{net}/localNetworkGateways/onprem")}}})),
        None,
    );
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().unwrap());
    let conn_request_id = r.headers()["x-ms-request-id"].to_str().unwrap().to_string();
    // A secret in a query string of a write (refused or not, it must not be logged).
    let r = call(
        "DELETE",
        &format!("{rg}/providers/Microsoft.Network/routeTables/none?token={QUERY_SECRET}"),
        None,
        None,
    );
    assert!(
        r.status().is_success() || r.status().as_u16() == 404,
        "{}",
        r.status()
    );
    // An unauthenticated write.
    let r = c
        .put(format!("{base}{rg}?api-version={API}"))
        .json(&json!({"location": "westeurope"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let anon_request_id = r.headers()["x-ms-request-id"].to_str().unwrap().to_string();
    drop(srv);

    // The file: JSON lines, mode 0600, the right fields.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&audit_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "audit log mode {mode:o}");
    let text = std::fs::read_to_string(&audit_file).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let line = |id: &str| -> Value {
        let found: Vec<&Value> = lines.iter().filter(|l| l["requestId"] == id).collect();
        assert_eq!(found.len(), 1, "one line for {id}:\n{text}");
        found[0].clone()
    };
    let l = line(&request_id);
    assert_eq!(l["principal"], creds["clientId"]);
    assert!(l["objectId"].as_str().is_some_and(|s| !s.is_empty()), "{l}");
    assert_eq!(l["tenantId"], tenant);
    assert_eq!(l["method"], "PUT");
    assert_eq!(
        l["operation"],
        "Microsoft.Resources/subscriptions/resourceGroups/write"
    );
    assert_eq!(l["resourceId"], rg);
    assert_eq!(l["status"], 201);
    assert_eq!(l["clientRequestId"], "my-req-1");
    assert!(l["durationMs"].as_f64().is_some_and(|d| d >= 0.0), "{l}");
    assert!(
        l["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:")),
        "{l}"
    );
    let l = line(&conn_request_id);
    assert_eq!(l["operation"], "Microsoft.Network/connections/write");
    assert_eq!(l["status"], 201);
    let l = line(&anon_request_id);
    assert_eq!(l["principal"], "unauthenticated");
    assert_eq!(l["status"], 401);
    // Reads are not audited; the token request (a POST) is, as a sign-in.
    assert!(lines.iter().all(|l| l["requestId"] != read_id));
    assert!(lines
        .iter()
        .any(|l| l["operation"] == "oauth2/token" && l["status"] == 200));

    // The tracing output: an audit line at info, access lines at debug, with the same ids.
    let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let audit_line = out
        .lines()
        .find(|l| l.contains("vnet::audit") && l.contains(&request_id))
        .unwrap_or_else(|| panic!("no audit line for {request_id}:\n{out}"));
    assert!(audit_line.contains(" INFO "), "{audit_line}");
    assert!(
        audit_line.contains("operation=Microsoft.Resources/subscriptions/resourceGroups/write"),
        "{audit_line}"
    );
    assert!(audit_line.contains("status=201"), "{audit_line}");
    let access = out
        .lines()
        .find(|l| l.contains("vnet::access") && l.contains(&read_id))
        .unwrap_or_else(|| panic!("no access line for the GET {read_id}"));
    assert!(
        access.contains("DEBUG") && access.contains("method=GET"),
        "{access}"
    );

    for (what, s) in [
        ("client secret", secret),
        ("bearer token", token.as_str()),
        ("shared key", SHARED_KEY),
        ("query secret", QUERY_SECRET),
    ] {
        assert!(!text.contains(s), "the audit file holds the {what}");
        assert!(!out.contains(s), "the log holds the {what}");
    }
    assert!(!text.contains("principal=admin") && !out.contains("principal=admin"));
}
