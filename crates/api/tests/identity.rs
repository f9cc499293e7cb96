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
        let router = secure_router(app, identity.clone());
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
        (403, Some("AuthorizationFailed")),
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
