//! Issue 9 item 7: the Host header is not trusted. Every URL the server hands out — cloud
//! metadata, OpenID configuration, token issuers, Bearer challenges, `Azure-AsyncOperation` and
//! `Location` — names the configured public URL (or the one derived from the bound address),
//! whatever `Host` a client sends; an attacker who could make a client follow its Host (a
//! poisoned cache or proxy) would otherwise redirect polling and sign-in to its own server.

mod serving;

use serde_json::{json, Value};
use serving::Running;

const API: &str = "2025-07-01";
const EVIL: &str = "evil.example";

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

/// Checks every URL-bearing answer with `Host: evil.example`; `public` is what they must name.
fn urls_name(srv: &Running, public: &str) {
    let c = srv.client();
    let base = srv.base();
    let creds = srv.creds();
    let tenant = creds["tenantId"].as_str().unwrap();
    let sub = creds["subscriptionId"].as_str().unwrap();

    let md: Value = c
        .get(format!("{base}/metadata/endpoints?api-version=2022-09-01"))
        .header("host", EVIL)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(md["resourceManager"], format!("{public}/"), "{md}");
    assert_eq!(md["authentication"]["loginEndpoint"], format!("{public}/"));
    assert!(!md.to_string().contains(EVIL), "{md}");

    let oidc: Value = c
        .get(format!(
            "{base}/{tenant}/v2.0/.well-known/openid-configuration"
        ))
        .header("host", EVIL)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(oidc["issuer"], format!("{public}/{tenant}/v2.0"));
    assert!(!oidc.to_string().contains(EVIL), "{oidc}");

    // A token asked for under the evil Host: its issuer is the public URL, and it still works.
    let tok: Value = c
        .post(format!("{base}/{tenant}/oauth2/v2.0/token"))
        .header("host", EVIL)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "client_credentials"),
            ("client_id", creds["clientId"].as_str().unwrap()),
            ("client_secret", creds["clientSecret"].as_str().unwrap()),
            ("scope", "https://management.azure.com/.default"),
        ]))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = tok["access_token"].as_str().expect("a token").to_string();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&api::auth::b64url_decode(payload).unwrap()).unwrap();
    assert_eq!(claims["iss"], format!("{public}/{tenant}/v2.0"));

    // The Bearer challenge of a 401 names the public authority.
    let r = c
        .get(format!(
            "{base}/subscriptions/{sub}/resourcegroups?api-version={API}"
        ))
        .header("host", EVIL)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.contains(&format!("authorization_uri=\"{public}/common\"")),
        "{challenge}"
    );

    // Long-running operations: Azure-AsyncOperation and Location.
    let put = |path: &str, body: Value| {
        c.put(format!("{base}{path}?api-version={API}"))
            .header("host", EVIL)
            .bearer_auth(&token)
            .json(&body)
            .send()
            .unwrap()
    };
    let rg = format!("/subscriptions/{sub}/resourceGroups/urls");
    assert_eq!(
        put(&rg, json!({"location": "westeurope"}))
            .status()
            .as_u16(),
        201
    );
    let r = put(
        &format!("{rg}/providers/Microsoft.Network/localNetworkGateways/onprem"),
        json!({"location": "westeurope", "properties": {"gatewayIpAddress": "203.0.113.9",
               "localNetworkAddressSpace": {"addressPrefixes": ["172.16.0.0/16"]}}}),
    );
    assert_eq!(r.status().as_u16(), 201);
    for h in ["azure-asyncoperation", "location"] {
        let url = r.headers()[h].to_str().unwrap();
        assert!(
            url.starts_with(&format!("{public}/subscriptions/{sub}/")),
            "{h}: {url}"
        );
    }
}

#[test]
fn derived_public_url_is_the_bound_address() {
    let srv = Running::start(|c| c.insecure_http = false);
    let public = format!("https://{}", srv.addr);
    urls_name(&srv, &public);
}

#[test]
fn configured_public_url_is_used_everywhere() {
    let srv = Running::start(|c| {
        c.insecure_http = false;
        c.public_url = Some("https://vnet.example:8443/".into());
    });
    urls_name(&srv, "https://vnet.example:8443");
}

#[test]
fn malformed_public_urls_are_refused_at_start() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for bad in [
        "vnet.example",
        "ftp://vnet.example",
        "https://",
        "https://vnet.example/prefix",
        "https://vnet.example?x=1",
        "https://user@vnet.example",
        "https://vnet.example/#f",
        "https://vnet.example\r\nX-Injected: 1",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = api::ServeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().into(),
            insecure_http: true,
            public_url: Some(bad.into()),
            ..Default::default()
        };
        let err = rt
            .block_on(api::serve_until(cfg, |_| {}, async { "test" }))
            .expect_err(bad);
        assert!(err.to_string().contains("--public-url"), "{bad}: {err}");
        assert!(
            !dir.path().join("vnet.db").exists(),
            "{bad}: refused before anything was made"
        );
    }
}
