//! The secured server as `vnet serve` runs it: HTTPS with the data directory's CA, tokens from
//! the token endpoint, ARM's 401/403 answers, and cross-subscription peering rights.

use api::identity_routes::{secure_router, Identity};
use api::routes::AppOptions;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const API: &str = "2025-07-01";

struct Secure {
    base: String,
    app: Arc<api::routes::App>,
    client: reqwest::blocking::Client,
    identity: Arc<Identity>,
    creds: Value,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn form(pairs: &[(&str, &str)]) -> String {
    let esc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", esc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl Secure {
    fn start() -> Secure {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let opts = AppOptions {
            scheme: "https".into(),
            provision_delay: Duration::from_millis(50),
            ..Default::default()
        };
        let config = model::Config {
            public_ip_pools: vec!["198.18.0.0/24".parse().unwrap()],
        };
        let app = api::open_app(dir.path(), config, opts).unwrap();
        let (identity, boot) = Identity::open(dir.path(), true).unwrap();
        assert!(boot.created);
        let identity = Arc::new(identity);
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let tls = api::tls::setup(dir.path(), addr, &api::tls::TlsSource::SelfSigned).unwrap();
        let router = secure_router(app.clone(), identity.clone());
        rt.spawn(async move {
            let l = api::tls::TlsListener::new(listener, tls.config).unwrap();
            axum::serve(l, router).await.unwrap()
        });
        let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
        let client = reqwest::blocking::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let creds: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("credentials.json")).unwrap(),
        )
        .unwrap();
        Secure {
            base: format!("https://{addr}"),
            app,
            client,
            identity,
            creds,
            _rt: rt,
            _dir: dir,
        }
    }

    fn token_for(&self, tenant: &str, client: &str, secret: &str) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}/{tenant}/oauth2/v2.0/token", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client),
                ("client_secret", secret),
                ("scope", "https://management.azure.com/.default"),
            ]))
            .send()
            .unwrap();
        (r.status().as_u16(), r.json().unwrap())
    }

    fn token(&self, c: &Value) -> String {
        let (s, b) = self.token_for(
            c["tenantId"].as_str().unwrap(),
            c["clientId"].as_str().unwrap(),
            c["clientSecret"].as_str().unwrap(),
        );
        assert_eq!(s, 200, "{b}");
        b["access_token"].as_str().unwrap().to_string()
    }

    fn call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut rb = self.client.request(
            method.parse().unwrap(),
            format!("{}{path}{sep}api-version={API}", self.base),
        );
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().unwrap();
        let s = r.status().as_u16();
        let t = r.text().unwrap();
        (s, serde_json::from_str(&t).unwrap_or(Value::Null))
    }

    fn ok(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Value {
        let (s, b) = self.call(Some(token), method, path, body);
        assert!(s < 300, "{method} {path} -> {s} {b}");
        b
    }

    /// A new principal in the operator's tenant, with the given role at `scope`.
    fn principal(&self, op: &str, role: &str, scopes: &[&str]) -> Value {
        let tenant = self.creds["tenantId"].as_str().unwrap();
        let app = uuid::Uuid::new_v4().to_string();
        let p = self.ok(
            op,
            "PUT",
            &format!("/providers/Vnet.Identity/tenants/{tenant}/servicePrincipals/{app}"),
            Some(json!({"displayName": "t"})),
        );
        for scope in scopes {
            let name = uuid::Uuid::new_v4();
            let roles: Value = self.ok(op, "GET", &format!("{scope}/providers/Microsoft.Authorization/roleDefinitions?$filter=roleName%20eq%20'{}'", role.replace(' ', "%20")), None);
            let def = roles["value"][0]["id"].as_str().unwrap().to_string();
            self.ok(
                op,
                "PUT",
                &format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
                Some(
                    json!({"properties": {"roleDefinitionId": def, "principalId": p["objectId"]}}),
                ),
            );
        }
        json!({"tenantId": tenant, "clientId": app, "clientSecret": p["password"]})
    }
}

fn vnet(prefix: &str) -> Value {
    json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": [prefix]}}})
}

#[test]
fn tokens_and_arm_refusals() {
    let s = Secure::start();
    let sub = s.creds["subscriptionId"].as_str().unwrap().to_string();
    // Public: metadata and OpenID configuration.
    let (st, md) = s.call(None, "GET", "/metadata/endpoints", None);
    assert_eq!(st, 200);
    assert_eq!(md["resourceManager"], format!("{}/", s.base));
    // No token, a bad token, an expired one, one for another audience.
    let (st, b) = s.call(None, "GET", "/subscriptions", None);
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (401, Some("AuthenticationFailed"))
    );
    let (st, b) = s.call(Some("x.y.z"), "GET", "/subscriptions", None);
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (401, Some("InvalidAuthenticationToken"))
    );
    let p = s
        .identity
        .dir
        .principal(s.creds["clientId"].as_str().unwrap())
        .unwrap();
    let now = api::auth::now_unix();
    let claims = |aud: &str, exp: i64| json!({"aud": aud, "exp": exp, "nbf": now - 7200, "iat": now - 7200, "appid": p.app_id, "oid": p.object_id, "tid": p.tenant_id});
    let expired = s
        .identity
        .signer
        .sign(&claims("https://management.azure.com", now - 3600));
    let (st, b) = s.call(Some(&expired), "GET", "/subscriptions", None);
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (401, Some("ExpiredAuthenticationToken"))
    );
    let other = s
        .identity
        .signer
        .sign(&claims("https://vault.azure.net", now + 3600));
    let (st, b) = s.call(Some(&other), "GET", "/subscriptions", None);
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (401, Some("InvalidAuthenticationTokenAudience"))
    );
    // A wrong secret at the token endpoint.
    let (st, b) = s.token_for(&p.tenant_id, &p.app_id, "not-the-secret");
    assert_eq!((st, b["error"].as_str()), (401, Some("invalid_client")));
    // The operator works; the subscription list names its tenant.
    let op = s.token(&s.creds);
    let subs = s.ok(&op, "GET", "/subscriptions", None);
    assert_eq!(subs["value"][0]["tenantId"], s.creds["tenantId"]);
    s.ok(
        &op,
        "PUT",
        &format!("/subscriptions/{sub}/resourcegroups/g"),
        Some(json!({"location": "westeurope"})),
    );
    // Location headers of long-running operations are https URLs.
    let r = s
        .client
        .put(format!("{}/subscriptions/{sub}/resourceGroups/g/providers/Microsoft.Network/localNetworkGateways/l?api-version={API}", s.base))
        .bearer_auth(&op)
        .json(&json!({"location": "westeurope", "properties": {"gatewayIpAddress": "198.51.100.1", "localNetworkAddressSpace": {"addressPrefixes": ["192.168.0.0/16"]}}}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(r.headers()["azure-asyncoperation"]
        .to_str()
        .unwrap()
        .starts_with("https://"));
    // A Reader reads but may not write; a stranger may do neither.
    let reader = s.principal(&op, "Reader", &[&format!("/subscriptions/{sub}")]);
    let rt = s.token(&reader);
    s.ok(
        &rt,
        "GET",
        &format!("/subscriptions/{sub}/resourcegroups/g"),
        None,
    );
    let (st, b) = s.call(
        Some(&rt),
        "PUT",
        &format!("/subscriptions/{sub}/resourcegroups/h"),
        Some(json!({"location": "westeurope"})),
    );
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (403, Some("AuthorizationFailed")),
        "{b}"
    );
    let stranger = s.principal(&op, "Reader", &[]);
    let (st, _) = s.call(
        Some(&s.token(&stranger)),
        "GET",
        &format!("/subscriptions/{sub}/resourcegroups/g"),
        None,
    );
    assert_eq!(st, 403);
    // Unknown subscriptions.
    let (st, b) = s.call(
        Some(&op),
        "GET",
        "/subscriptions/0000dead-0000-0000-0000-000000000000/resourcegroups",
        None,
    );
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (404, Some("SubscriptionNotFound"))
    );
}

#[test]
fn cross_subscription_peering_needs_peer_rights_on_the_remote() {
    let s = Secure::start();
    let op = s.token(&s.creds);
    let a = s.creds["subscriptionId"].as_str().unwrap().to_string();
    let b = uuid::Uuid::new_v4().to_string();
    let created = s.ok(
        &op,
        "PUT",
        &format!("/subscriptions/{b}"),
        Some(json!({"displayName": "B"})),
    );
    assert_eq!(created["tenantId"], s.creds["tenantId"]);
    for (sub, rg, v, p) in [
        (&a, "ga", "va", "10.1.0.0/16"),
        (&b, "gb", "vb", "10.2.0.0/16"),
    ] {
        s.ok(
            &op,
            "PUT",
            &format!("/subscriptions/{sub}/resourcegroups/{rg}"),
            Some(json!({"location": "westeurope"})),
        );
        s.ok(&op, "PUT", &format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks/{v}"), Some(vnet(p)));
    }
    let va = format!(
        "/subscriptions/{a}/resourceGroups/ga/providers/Microsoft.Network/virtualNetworks/va"
    );
    let vb = format!(
        "/subscriptions/{b}/resourceGroups/gb/providers/Microsoft.Network/virtualNetworks/vb"
    );
    let link = |remote: &str| json!({"properties": {"remoteVirtualNetwork": {"id": remote}, "allowVirtualNetworkAccess": true}});
    // Network Contributor on A's group only: no peer/action on vb.
    let team = s.principal(
        &op,
        "Network Contributor",
        &[&format!("/subscriptions/{a}/resourceGroups/ga")],
    );
    let t = s.token(&team);
    let (st, e) = s.call(
        Some(&t),
        "PUT",
        &format!("{va}/virtualNetworkPeerings/a-b"),
        Some(link(&vb)),
    );
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (403, Some("LinkedAuthorizationFailed")),
        "{e}"
    );
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Microsoft.Network/virtualNetworks/peer/action"));
    // Granted on vb: the link is made.
    let name = uuid::Uuid::new_v4();
    let p = s
        .identity
        .dir
        .principal(team["clientId"].as_str().unwrap())
        .unwrap();
    s.ok(
        &op,
        "PUT",
        &format!("{vb}/providers/Microsoft.Authorization/roleAssignments/{name}"),
        Some(json!({"properties": {"roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/4d97b98b-1d4f-4787-a291-c67834d212e7", "principalId": p.object_id}})),
    );
    let l = s.ok(
        &t,
        "PUT",
        &format!("{va}/virtualNetworkPeerings/a-b"),
        Some(link(&vb)),
    );
    assert_eq!(l["properties"]["peeringState"], "Initiated");
    let l = s.ok(
        &op,
        "PUT",
        &format!("{vb}/virtualNetworkPeerings/b-a"),
        Some(link(&va)),
    );
    assert_eq!(l["properties"]["peeringState"], "Connected");
    let l = s.ok(&t, "GET", &format!("{va}/virtualNetworkPeerings/a-b"), None);
    assert_eq!(l["properties"]["peeringState"], "Connected");
}

#[test]
fn insecure_http_only_on_loopback() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = api::ServeConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        data_dir: dir.path().into(),
        insecure_http: true,
        ..Default::default()
    };
    let err = rt.block_on(api::serve(cfg)).unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
}

impl Secure {
    fn revision(&self) -> u64 {
        self.app.engine.store().revision().unwrap()
    }

    /// Asserts a refusal with `code` that moved nothing in the store; returns the message.
    fn refused(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Value,
        status: u16,
        code: &str,
    ) -> String {
        let before = self.revision();
        let (st, e) = self.call(Some(token), method, path, Some(body.clone()));
        assert_eq!(
            (st, e["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {path} {body} -> {e}"
        );
        assert_eq!(
            self.revision(),
            before,
            "a refused {method} {path} changed the store"
        );
        e["error"]["message"].as_str().unwrap_or("").to_string()
    }

    fn raw_put(&self, token: &str, path: &str, body: &str) -> (u16, Value) {
        let r = self
            .client
            .put(format!("{}{path}?api-version={API}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        let st = r.status().as_u16();
        (st, r.json().unwrap_or(Value::Null))
    }
}

/// Two groups: `mine` where the team is Network Contributor, `theirs` where it has no rights;
/// `theirs` holds everything one could link to.
struct Linking {
    s: Secure,
    op: String,
    team: String,
    team_principal: Value,
    mine: String,
    theirs: String,
}

fn linking() -> Linking {
    let s = Secure::start();
    let op = s.token(&s.creds);
    let sub = s.creds["subscriptionId"].as_str().unwrap().to_string();
    let g = |rg: &str| format!("/subscriptions/{sub}/resourceGroups/{rg}");
    let (mine, theirs) = (g("mine"), g("theirs"));
    for rg in [&mine, &theirs] {
        s.ok(&op, "PUT", rg, Some(json!({"location": "westeurope"})));
    }
    let n = "providers/Microsoft.Network";
    s.ok(&op, "PUT", &format!("{mine}/{n}/virtualNetworks/va"), Some(json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}, "subnets": [{"name": "s", "properties": {"addressPrefix": "10.1.0.0/24"}}, {"name": "GatewaySubnet", "properties": {"addressPrefix": "10.1.255.0/27"}}]}})));
    s.ok(&op, "PUT", &format!("{theirs}/{n}/virtualNetworks/vb"), Some(json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.2.0.0/16"]}, "subnets": [{"name": "s", "properties": {"addressPrefix": "10.2.0.0/24"}}, {"name": "GatewaySubnet", "properties": {"addressPrefix": "10.2.255.0/27"}}]}})));
    s.ok(
        &op,
        "PUT",
        &format!("{theirs}/{n}/routeTables/rt"),
        Some(json!({"location": "westeurope"})),
    );
    for ip in ["pip", "gwpip"] {
        s.ok(&op, "PUT", &format!("{theirs}/{n}/publicIPAddresses/{ip}"), Some(json!({"location": "westeurope", "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}})));
    }
    s.ok(&op, "PUT", &format!("{mine}/{n}/publicIPAddresses/mypip"), Some(json!({"location": "westeurope", "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}})));
    s.ok(&op, "PUT", &format!("{theirs}/{n}/localNetworkGateways/lgw"), Some(json!({"location": "westeurope", "properties": {"gatewayIpAddress": "198.18.9.1", "localNetworkAddressSpace": {"addressPrefixes": ["192.168.0.0/16"]}}})));
    let gw = |vnet: &str, ip: &str| {
        json!({"location": "westeurope", "properties": {"gatewayType": "Vpn", "vpnType": "RouteBased", "sku": {"name": "VpnGw1", "tier": "VpnGw1"},
        "ipConfigurations": [{"name": "c", "properties": {"subnet": {"id": format!("{vnet}/subnets/GatewaySubnet")}, "publicIPAddress": {"id": ip}}}]}})
    };
    s.ok(
        &op,
        "PUT",
        &format!("{theirs}/{n}/virtualNetworkGateways/gwb"),
        Some(gw(
            &format!("{theirs}/{n}/virtualNetworks/vb"),
            &format!("{theirs}/{n}/publicIPAddresses/gwpip"),
        )),
    );
    // Provisioning finishes in the background: wait, so that revisions only move by request.
    for _ in 0..200 {
        let g = s.ok(
            &op,
            "GET",
            &format!("{theirs}/{n}/virtualNetworkGateways/gwb"),
            None,
        );
        if g["properties"]["provisioningState"] == "Succeeded" {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let team_principal = s.principal(&op, "Network Contributor", &[&mine]);
    let team = s.token(&team_principal);
    Linking {
        s,
        op,
        team,
        team_principal,
        mine,
        theirs,
    }
}

/// Item 1 of the hardening issue: the attack that found it — the body's member spelled in
/// another letter case — and its variants. Every one is refused, and nothing is written.
#[test]
fn authorization_reads_the_document_the_model_writes() {
    let l = linking();
    let (s, t) = (&l.s, &l.team);
    let n = "providers/Microsoft.Network";
    let vb = format!("{}/{n}/virtualNetworks/vb", l.theirs);
    let peering = format!(
        "{}/{n}/virtualNetworks/va/virtualNetworkPeerings/a-b",
        l.mine
    );
    for body in [
        json!({"Properties": {"remoteVirtualNetwork": {"id": vb}}}),
        json!({"PROPERTIES": {"RemoteVirtualNetwork": {"id": vb}}}),
        json!({"properties": {"remotevirtualnetwork": {"id": vb}}}),
        json!({"properties": {"remoteVirtualNetwork": {"ID": vb}}}),
        json!({"properties": {"remoteVirtualNetwork": {"Id": vb.to_uppercase()}}}),
        json!({"properties": {"remoteVirtualNetwork": {"id": format!("{vb}/")}}}),
        json!({"properties": {"remoteVirtualNetwork": {"id": vb, "name": "va"}}}),
    ] {
        let m = s.refused(t, "PUT", &peering, body, 403, "LinkedAuthorizationFailed");
        assert!(
            m.contains("Microsoft.Network/virtualNetworks/peer/action"),
            "{m}"
        );
    }
    // The same member twice (in any case): refused as ambiguous before anyone reads it.
    let before = s.revision();
    for raw in [
        format!(
            r#"{{"properties": {{"remoteVirtualNetwork": {{"id": "{}/{n}/virtualNetworks/va"}}}}, "Properties": {{"remoteVirtualNetwork": {{"id": "{vb}"}}}}}}"#,
            l.mine
        ),
        format!(
            r#"{{"properties": {{"remoteVirtualNetwork": {{"id": "{vb}"}}}}, "properties": {{}}}}"#
        ),
        format!(
            r#"{{"properties": {{"remoteVirtualNetwork": {{"id": "{}/{n}/virtualNetworks/va", "ID": "{vb}"}}}}}}"#,
            l.mine
        ),
    ] {
        let (st, e) = s.raw_put(t, &peering, &raw);
        assert_eq!(
            (st, e["error"]["code"].as_str()),
            (400, Some("InvalidRequestFormat")),
            "{raw} -> {e}"
        );
    }
    assert_eq!(s.revision(), before);
    // The VNet's own PUT with an inline peering is the same link.
    s.refused(
        t,
        "PUT",
        &format!("{}/{n}/virtualNetworks/va", l.mine),
        json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]},
            "subnets": [{"name": "s", "properties": {"addressPrefix": "10.1.0.0/24"}}, {"name": "GatewaySubnet", "properties": {"addressPrefix": "10.1.255.0/27"}}],
            "virtualNetworkPeerings": [{"name": "a-b", "Properties": {"remoteVirtualNetwork": {"id": vb}}}]}}),
        403,
        "LinkedAuthorizationFailed",
    );
}

/// Item 2: every reference a write can make needs Azure's linked action on its target.
#[test]
fn linked_authorization_on_every_reference() {
    let l = linking();
    let (s, t) = (&l.s, &l.team);
    let n = "providers/Microsoft.Network";
    let (mine, theirs) = (&l.mine, &l.theirs);
    let their_subnet = format!("{theirs}/{n}/virtualNetworks/vb/subnets/s");
    let my_subnet = format!("{mine}/{n}/virtualNetworks/va/subnets/s");
    let nic = |cfg: Value| json!({"location": "westeurope", "properties": {"ipConfigurations": [{"name": "c", "properties": cfg}]}});
    let cases: Vec<(&str, String, Value, &str)> = vec![
        (
            "NIC joining another group's subnet",
            format!("{mine}/{n}/networkInterfaces/n1"),
            nic(json!({"subnet": {"id": their_subnet}})),
            "Microsoft.Network/virtualNetworks/subnets/join/action",
        ),
        (
            "NIC taking another group's public IP",
            format!("{mine}/{n}/networkInterfaces/n2"),
            nic(
                json!({"subnet": {"id": my_subnet}, "publicIPAddress": {"id": format!("{theirs}/{n}/publicIPAddresses/pip")}}),
            ),
            "Microsoft.Network/publicIPAddresses/join/action",
        ),
        (
            "subnet using another group's route table",
            format!("{mine}/{n}/virtualNetworks/va/subnets/s2"),
            json!({"properties": {"addressPrefix": "10.1.2.0/24", "routeTable": {"id": format!("{theirs}/{n}/routeTables/rt")}}}),
            "Microsoft.Network/routeTables/join/action",
        ),
        (
            "gateway in another group's GatewaySubnet",
            format!("{mine}/{n}/virtualNetworkGateways/gwa"),
            json!({"location": "westeurope", "properties": {"gatewayType": "Vpn", "vpnType": "RouteBased", "sku": {"name": "VpnGw1", "tier": "VpnGw1"},
                "ipConfigurations": [{"name": "c", "properties": {"subnet": {"id": format!("{theirs}/{n}/virtualNetworks/vb/subnets/GatewaySubnet")}, "publicIPAddress": {"id": format!("{mine}/{n}/publicIPAddresses/mypip")}}}]}}),
            "Microsoft.Network/virtualNetworks/subnets/join/action",
        ),
        (
            "gateway with another group's public IP",
            format!("{mine}/{n}/virtualNetworkGateways/gwa"),
            json!({"location": "westeurope", "properties": {"gatewayType": "Vpn", "vpnType": "RouteBased", "sku": {"name": "VpnGw1", "tier": "VpnGw1"},
                "ipConfigurations": [{"name": "c", "properties": {"subnet": {"id": format!("{mine}/{n}/virtualNetworks/va/subnets/GatewaySubnet")}, "publicIPAddress": {"id": format!("{theirs}/{n}/publicIPAddresses/pip")}}}]}}),
            "Microsoft.Network/publicIPAddresses/join/action",
        ),
        (
            "connection through another group's gateway",
            format!("{mine}/{n}/connections/c1"),
            json!({"location": "westeurope", "properties": {"connectionType": "IPsec", "sharedKey": "abc", "virtualNetworkGateway1": {"id": format!("{theirs}/{n}/virtualNetworkGateways/gwb")}, "localNetworkGateway2": {"id": format!("{theirs}/{n}/localNetworkGateways/lgw")}}}),
            "Microsoft.Network/virtualNetworkGateways/join/action",
        ),
        (
            "connection to another group's local gateway",
            format!("{mine}/{n}/connections/c2"),
            json!({"location": "westeurope", "properties": {"connectionType": "IPsec", "sharedKey": "abc", "virtualNetworkGateway1": {"id": format!("{theirs}/{n}/virtualNetworkGateways/gwb")}, "localNetworkGateway2": {"id": format!("{theirs}/{n}/localNetworkGateways/lgw")}}}),
            "Microsoft.Network/localNetworkGateways/join/action",
        ),
        // Free-form fields vnet stores without reading still may not point into other scopes:
        // they would count as references ("in use") and block the owner's deletes.
        (
            "a reference hidden in a free-form field",
            format!("{mine}/{n}/virtualNetworks/va/subnets/s3"),
            json!({"properties": {"addressPrefix": "10.1.3.0/24", "applicationGatewayIPConfigurations": [{"properties": {"subnet": {"id": their_subnet}}}]}}),
            "Microsoft.Network/virtualNetworks/subnets/join/action",
        ),
        (
            "a reference in a string field",
            format!("{mine}/{n}/virtualNetworkGateways/gwa"),
            json!({"location": "westeurope", "properties": {"gatewayType": "Vpn", "vpnType": "RouteBased", "sku": {"name": "VpnGw1", "tier": "VpnGw1"}, "vNetExtendedLocationResourceId": their_subnet,
                "ipConfigurations": [{"name": "c", "properties": {"subnet": {"id": format!("{mine}/{n}/virtualNetworks/va/subnets/GatewaySubnet")}, "publicIPAddress": {"id": format!("{mine}/{n}/publicIPAddresses/mypip")}}}]}}),
            "Microsoft.Network/virtualNetworks/subnets/join/action",
        ),
        (
            "a resource group named as a scope",
            format!("{mine}/{n}/networkInterfaces/n3"),
            json!({"location": "westeurope", "properties": {"privateLinkService": {"id": theirs}, "ipConfigurations": [{"name": "c", "properties": {"subnet": {"id": my_subnet}}}]}}),
            "Microsoft.Resources/subscriptions/resourceGroups/join/action",
        ),
    ];
    for (what, path, body, action) in &cases {
        let m = s.refused(
            t,
            "PUT",
            path,
            body.clone(),
            403,
            "LinkedAuthorizationFailed",
        );
        assert!(m.contains(action), "{what}: {m}");
        assert!(
            m.contains(&l.team_principal["clientId"].as_str().unwrap().to_string()),
            "{what}: {m}"
        );
    }
    // With Network Contributor on the other group too, each link is made.
    let p = s
        .identity
        .dir
        .principal(l.team_principal["clientId"].as_str().unwrap())
        .unwrap();
    s.ok(&l.op, "PUT", &format!("{theirs}/providers/Microsoft.Authorization/roleAssignments/{}", uuid::Uuid::new_v4()),
        Some(json!({"properties": {"roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/4d97b98b-1d4f-4787-a291-c67834d212e7", "principalId": p.object_id}})));
    for (what, path, body, _) in &cases[..3] {
        let (st, b) = s.call(Some(t), "PUT", path, Some(body.clone()));
        assert!(st < 300, "{what}: {st} {b}");
    }
}

/// Item 3: an Owner at `/` of one tenant reaches nothing of another; the operator and every
/// tenant's last root Owner stay.
#[test]
fn tenants_are_walls() {
    let s = Secure::start();
    let op = s.token(&s.creds);
    let home = s.creds["tenantId"].as_str().unwrap().to_string();
    let sub_a = s.creds["subscriptionId"].as_str().unwrap().to_string();
    // The platform (the operator) makes tenant B; B's first Owner comes back once.
    let tb = uuid::Uuid::new_v4().to_string();
    let b = s.ok(
        &op,
        "PUT",
        &format!("/providers/Vnet.Identity/tenants/{tb}"),
        Some(json!({"displayName": "B"})),
    );
    let owner_b = b["owner"].clone();
    assert!(
        owner_b["clientSecret"]
            .as_str()
            .is_some_and(|x| x.len() >= 32),
        "{b}"
    );
    let tok_b = s.token(&owner_b);
    // B's Owner works in B: its own subscription (the platform hands it out), its directory.
    let sub_b = uuid::Uuid::new_v4().to_string();
    s.ok(
        &op,
        "PUT",
        &format!("/subscriptions/{sub_b}"),
        Some(json!({"displayName": "B", "tenantId": tb})),
    );
    s.ok(
        &tok_b,
        "PUT",
        &format!("/subscriptions/{sub_b}/resourcegroups/gb"),
        Some(json!({"location": "westeurope"})),
    );
    let minted = s.ok(
        &tok_b,
        "PUT",
        &format!(
            "/providers/Vnet.Identity/tenants/{tb}/servicePrincipals/{}",
            uuid::Uuid::new_v4()
        ),
        Some(json!({})),
    );
    // ... and nothing in the home tenant. The attack that found it: mint a principal in the
    // operator's tenant, make it Owner at `/`, delete the operator.
    let op_app = s.creds["clientId"].as_str().unwrap().to_string();
    let op_oid = s.identity.dir.principal(&op_app).unwrap().object_id;
    s.refused(
        &tok_b,
        "PUT",
        &format!(
            "/providers/Vnet.Identity/tenants/{home}/servicePrincipals/{}",
            uuid::Uuid::new_v4()
        ),
        json!({}),
        403,
        "AuthorizationFailed",
    );
    s.refused(
        &tok_b,
        "PUT",
        &format!(
            "/providers/Vnet.Identity/tenants/{}/servicePrincipals/{}",
            home.to_uppercase(),
            uuid::Uuid::new_v4()
        ),
        json!({}),
        403,
        "AuthorizationFailed",
    );
    let n = s.identity.dir.principals(&home).len();
    let (st, _) = s.call(
        Some(&tok_b),
        "DELETE",
        &format!("/providers/Vnet.Identity/tenants/{home}/servicePrincipals/{op_app}"),
        None,
    );
    assert_eq!(st, 403);
    assert_eq!(
        s.identity.dir.principals(&home).len(),
        n,
        "nothing deleted in the home tenant"
    );
    assert!(s.identity.dir.principal(&op_app).is_some());
    // Role assignments at `/` name only B's principals; A's are neither visible nor removable.
    let (st, e) = s.call(Some(&tok_b), "PUT", &format!("/providers/Microsoft.Authorization/roleAssignments/{}", uuid::Uuid::new_v4()),
        Some(json!({"properties": {"roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "principalId": op_oid}})));
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (400, Some("PrincipalNotFound")),
        "{e}"
    );
    let listed = s.ok(
        &tok_b,
        "GET",
        "/providers/Microsoft.Authorization/roleAssignments",
        None,
    );
    assert!(
        listed["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["properties"]["principalId"] != op_oid.as_str()),
        "{listed}"
    );
    let op_ra = s
        .identity
        .dir
        .assignments()
        .into_iter()
        .find(|a| a.principal_id == op_oid)
        .unwrap();
    let (st, _) = s.call(
        Some(&tok_b),
        "DELETE",
        &format!(
            "/providers/Microsoft.Authorization/roleAssignments/{}",
            op_ra.name
        ),
        None,
    );
    assert_eq!(st, 204, "another tenant's assignment is not there for B");
    assert!(s.identity.dir.assignment(&op_ra.name).is_some());
    // A's subscription and resources: out of B's reach (and of the links B could make).
    let (st, _) = s.call(
        Some(&tok_b),
        "GET",
        &format!("/subscriptions/{sub_a}/resourcegroups"),
        None,
    );
    assert!(st == 401 || st == 403, "{st}");
    s.ok(
        &op,
        "PUT",
        &format!("/subscriptions/{sub_a}/resourcegroups/ga"),
        Some(json!({"location": "westeurope"})),
    );
    s.ok(&op, "PUT", &format!("/subscriptions/{sub_a}/resourceGroups/ga/providers/Microsoft.Network/virtualNetworks/va"), Some(vnet("10.1.0.0/16")));
    s.ok(&tok_b, "PUT", &format!("/subscriptions/{sub_b}/resourceGroups/gb/providers/Microsoft.Network/virtualNetworks/vb"), Some(vnet("10.2.0.0/16")));
    s.refused(&tok_b, "PUT", &format!("/subscriptions/{sub_b}/resourceGroups/gb/providers/Microsoft.Network/virtualNetworks/vb/virtualNetworkPeerings/b-a"),
        json!({"properties": {"remoteVirtualNetwork": {"id": format!("/subscriptions/{sub_a}/resourceGroups/ga/providers/Microsoft.Network/virtualNetworks/va")}}}), 403, "LinkedAuthorizationFailed");
    // Nor the other way: the operator's root Owner holds nothing in B.
    let (st, _) = s.call(
        Some(&op),
        "GET",
        &format!("/subscriptions/{sub_b}/resourcegroups"),
        None,
    );
    assert!(st == 401 || st == 403, "{st}");
    s.refused(&op, "PUT", &format!("/subscriptions/{sub_a}/resourceGroups/ga/providers/Microsoft.Network/virtualNetworks/va/virtualNetworkPeerings/a-b"),
        json!({"properties": {"remoteVirtualNetwork": {"id": format!("/subscriptions/{sub_b}/resourceGroups/gb/providers/Microsoft.Network/virtualNetworks/vb")}}}), 403, "LinkedAuthorizationFailed");
    let (st, _) = s.call(
        Some(&op),
        "DELETE",
        &format!(
            "/providers/Vnet.Identity/tenants/{tb}/servicePrincipals/{}",
            minted["appId"]
                .as_str()
                .or(minted["clientId"].as_str())
                .unwrap_or("x")
        ),
        None,
    );
    assert_eq!(st, 403);
    // B cannot make tenants (the platform's), nor hand itself subscriptions of A's.
    s.refused(
        &tok_b,
        "PUT",
        &format!("/providers/Vnet.Identity/tenants/{}", uuid::Uuid::new_v4()),
        json!({}),
        403,
        "AuthorizationFailed",
    );
    let (st, _) = s.call(
        Some(&tok_b),
        "PUT",
        &format!("/subscriptions/{}", uuid::Uuid::new_v4()),
        Some(json!({"tenantId": home})),
    );
    assert_eq!(st, 403);
    // Lock-outs: the operator cannot be deleted (not even by itself), nor lose its last Owner
    // assignment; B's last root Owner cannot go either.
    let (st, e) = s.call(
        Some(&op),
        "DELETE",
        &format!("/providers/Vnet.Identity/tenants/{home}/servicePrincipals/{op_app}"),
        None,
    );
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (409, Some("OperatorPrincipalProtected")),
        "{e}"
    );
    let (st, e) = s.call(
        Some(&op),
        "DELETE",
        &format!(
            "/providers/Microsoft.Authorization/roleAssignments/{}",
            op_ra.name
        ),
        None,
    );
    assert_eq!(st, 409, "{e}");
    let b_ra = s
        .identity
        .dir
        .assignments()
        .into_iter()
        .find(|a| a.principal_id == owner_b["objectId"].as_str().unwrap())
        .unwrap();
    let (st, e) = s.call(
        Some(&tok_b),
        "DELETE",
        &format!(
            "/providers/Microsoft.Authorization/roleAssignments/{}",
            b_ra.name
        ),
        None,
    );
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (409, Some("LastOwnerOfTenant")),
        "{e}"
    );
    // Another home-tenant Owner cannot take the operator's principal over (new secret).
    let admin = s.principal(&op, "Owner", &["/"]);
    let tok_admin = s.token(&admin);
    let (st, e) = s.call(
        Some(&tok_admin),
        "PUT",
        &format!("/providers/Vnet.Identity/tenants/{home}/servicePrincipals/{op_app}"),
        Some(json!({"password": "attacker-chosen-secret-123"})),
    );
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (409, Some("OperatorPrincipalProtected")),
        "{e}"
    );
    let (st, e) = s.call(
        Some(&tok_admin),
        "DELETE",
        &format!("/providers/Vnet.Identity/tenants/{home}/servicePrincipals/{op_app}"),
        None,
    );
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (409, Some("OperatorPrincipalProtected")),
        "{e}"
    );
    // The operator still signs in.
    s.token(&s.creds);
}

/// vnet's host-level API (bindings to namespaces, captures) is the platform operator's; an
/// action naming another resource in its body (Network Watcher's next hop) needs read there.
#[test]
fn host_api_is_the_platforms_and_actions_check_their_targets() {
    let l = linking();
    let (s, t) = (&l.s, &l.team);
    let n = "providers/Microsoft.Network";
    // A tenant's Owner at `/` (not the platform's) and a group's Network Contributor: no host API.
    let tb = uuid::Uuid::new_v4().to_string();
    let b = s.ok(
        &l.op,
        "PUT",
        &format!("/providers/Vnet.Identity/tenants/{tb}"),
        Some(json!({})),
    );
    let tok_b = s.token(&b["owner"]);
    let nic_path = format!("{}/{n}/networkInterfaces/their-nic", l.theirs);
    s.ok(&l.op, "PUT", &nic_path, Some(json!({"location": "westeurope", "properties": {"ipConfigurations": [{"name": "c", "properties": {"subnet": {"id": format!("{}/{n}/virtualNetworks/vb/subnets/s", l.theirs)}}}]}})));
    for tok in [&tok_b, t] {
        for (m, p) in [
            ("GET", "/vnet/v1/dataplane".to_string()),
            ("GET", "/vnet/v1/bindings".to_string()),
            ("PUT", format!("/vnet/v1/bindings{nic_path}")),
        ] {
            let before = s.revision();
            let (st, e) = s.call(
                Some(tok),
                m,
                &p,
                Some(json!({"netns": "/proc/1/ns/net", "managed": false})),
            );
            assert_eq!(
                (st, e["error"]["code"].as_str()),
                (403, Some("AuthorizationFailed")),
                "{m} {p} {e}"
            );
            assert_eq!(s.revision(), before);
        }
    }
    let (st, b) = s.call(Some(&l.op), "GET", "/vnet/v1/dataplane", None);
    assert_eq!(st, 200, "the operator reads the data plane: {b}");
    // Next hop from a network watcher in my group about a NIC in theirs.
    s.ok(
        &l.op,
        "PUT",
        &format!("{}/{n}/networkWatchers/nw", l.mine),
        Some(json!({"location": "westeurope"})),
    );
    let body = json!({"targetResourceId": nic_path, "sourceIPAddress": "10.2.0.4", "destinationIPAddress": "10.2.0.5"});
    let m = s.refused(
        t,
        "POST",
        &format!("{}/{n}/networkWatchers/nw/nextHop", l.mine),
        body.clone(),
        403,
        "LinkedAuthorizationFailed",
    );
    assert!(
        m.contains("Microsoft.Network/networkInterfaces/read"),
        "{m}"
    );
    let (st, r) = s.call(
        Some(&l.op),
        "POST",
        &format!("{}/{n}/networkWatchers/nw/nextHop", l.mine),
        Some(body),
    );
    assert_eq!(st, 200, "{r}");
}

/// What a security review found after the walls went up, each tried again: a tenant taking
/// the operator's tenant id as its domain (the operator's sign-in then named that tenant), a
/// tenant PUT by domain writing the record it names, the operator demoted to an Owner off the
/// root, aliases listed across tenants, a tenant making its own subscriptions, and operation
/// ids polled through another subscription.
#[test]
fn tenant_names_aliases_subscriptions_and_operations_hold_the_wall() {
    let s = Secure::start();
    let op = s.token(&s.creds);
    let home = s.creds["tenantId"].as_str().unwrap().to_string();
    let sub = s.creds["subscriptionId"].as_str().unwrap().to_string();
    // "000-b" sorts before any GUID: lookups must not prefer it by order.
    let b = s.ok(
        &op,
        "PUT",
        "/providers/Vnet.Identity/tenants/000-b",
        Some(json!({"displayName": "B"})),
    );
    let tok_b = s.token(&b["owner"]);
    // A domain that is another tenant's id or domain: refused, and the operator still signs in.
    for d in [home.as_str(), &home.to_uppercase(), "vnet.local"] {
        let (st, e) = s.call(
            Some(&tok_b),
            "PUT",
            "/providers/Vnet.Identity/tenants/000-b",
            Some(json!({"defaultDomain": d})),
        );
        assert_eq!(
            (st, e["error"]["code"].as_str()),
            (409, Some("TenantDomainInUse")),
            "{d}: {e}"
        );
    }
    s.token(&s.creds);
    // A tenant is written by its id, never by a domain it names.
    s.ok(
        &tok_b,
        "PUT",
        "/providers/Vnet.Identity/tenants/000-b",
        Some(json!({"defaultDomain": "future-customer"})),
    );
    let n = s.identity.dir.tenants().len();
    let (st, e) = s.call(
        Some(&tok_b),
        "PUT",
        "/providers/Vnet.Identity/tenants/future-customer",
        Some(json!({"displayName": "squatted"})),
    );
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (400, Some("InvalidTenantId")),
        "{e}"
    );
    assert_eq!(s.identity.dir.tenants().len(), n);
    let (st, _) = s.call(
        Some(&tok_b),
        "PUT",
        &format!("/providers/Vnet.Identity/tenants/{home}"),
        Some(json!({"displayName": "pwned"})),
    );
    assert_eq!(st, 403);
    assert_eq!(s.identity.dir.tenant(&home).unwrap().display_name, "vnet");
    // The operator keeps Owner at the root itself, even when given Owner elsewhere.
    let admin = s.principal(&op, "Owner", &["/"]);
    let tok_admin = s.token(&admin);
    let op_oid = s
        .identity
        .dir
        .principal(s.creds["clientId"].as_str().unwrap())
        .unwrap()
        .object_id;
    let root = s
        .identity
        .dir
        .assignments()
        .into_iter()
        .find(|a| a.principal_id == op_oid)
        .unwrap();
    s.ok(&tok_admin, "PUT", &format!("/subscriptions/{sub}/resourceGroups/nothing-here/providers/Microsoft.Authorization/roleAssignments/{}", uuid::Uuid::new_v4()),
        Some(json!({"properties": {"roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "principalId": op_oid}})));
    let (st, e) = s.call(
        Some(&tok_admin),
        "DELETE",
        &format!(
            "/providers/Microsoft.Authorization/roleAssignments/{}",
            root.name
        ),
        None,
    );
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (409, Some("OperatorPrincipalProtected")),
        "{e}"
    );
    // Aliases: another tenant's are not listed or read; subscriptions are the platform's to make.
    s.ok(
        &op,
        "PUT",
        "/providers/Microsoft.Subscription/aliases/home-alias",
        Some(json!({"properties": {"displayName": "A"}})),
    );
    let l = s.ok(
        &tok_b,
        "GET",
        "/providers/Microsoft.Subscription/aliases",
        None,
    );
    assert!(!l.to_string().contains("home-alias"), "{l}");
    let (st, _) = s.call(
        Some(&tok_b),
        "GET",
        "/providers/Microsoft.Subscription/aliases/home-alias",
        None,
    );
    assert_eq!(st, 404);
    let subs = s.identity.dir.subscriptions().len();
    let (st, _) = s.call(
        Some(&tok_b),
        "PUT",
        &format!("/subscriptions/{}", uuid::Uuid::new_v4()),
        Some(json!({})),
    );
    assert_eq!(st, 403);
    let (st, _) = s.call(
        Some(&tok_b),
        "PUT",
        "/providers/Microsoft.Subscription/aliases/b-self-made",
        Some(json!({"properties": {"displayName": "mine"}})),
    );
    assert_eq!(st, 403);
    assert_eq!(s.identity.dir.subscriptions().len(), subs);
    // Operations: polled in their own subscription only, by someone who may read the resource.
    let sub_b = uuid::Uuid::new_v4().to_string();
    s.ok(
        &op,
        "PUT",
        &format!("/subscriptions/{sub_b}"),
        Some(json!({"tenantId": "000-b"})),
    );
    s.ok(
        &op,
        "PUT",
        &format!("/subscriptions/{sub}/resourcegroups/ga"),
        Some(json!({"location": "westeurope"})),
    );
    let r = s.client
        .put(format!("{}/subscriptions/{sub}/resourceGroups/ga/providers/Microsoft.Network/localNetworkGateways/lng?api-version={API}", s.base))
        .bearer_auth(&op)
        .json(&json!({"location": "westeurope", "properties": {"gatewayIpAddress": "198.18.9.9", "localNetworkAddressSpace": {"addressPrefixes": ["172.31.0.0/16"]}}}))
        .send()
        .unwrap();
    let loc = r
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let opid = loc
        .split('?')
        .next()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    for kind in ["operationResults", "operations"] {
        let (st, b) = s.call(Some(&tok_b), "GET", &format!("/subscriptions/{sub_b}/providers/Microsoft.Network/locations/westeurope/{kind}/{opid}"), None);
        assert_eq!(
            (st, b["error"]["code"].as_str()),
            (404, Some("OperationNotFound")),
            "{kind}: {b}"
        );
    }
    let (st, _) = s.call(Some(&op), "GET", &format!("/subscriptions/{sub}/providers/Microsoft.Network/locations/westeurope/operations/{opid}"), None);
    assert_eq!(st, 200);
}
