//! Shared keys and RADIUS secrets at rest (issue 9, item 10).
//!
//! The attacker holds a copy of the data directory (a backup, a stolen disk, a world-readable
//! file) and searches every byte of every file for a connection's shared key — the current
//! one, one that was changed, one of a deleted connection — in plain text and base64. None
//! may be there: documents are stored without their write-only fields, which are sealed
//! (AES-256-GCM, `secrets.key`) under a key without history; old values are overwritten.

mod common;
use common::*;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

fn b64(data: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// The forms an attacker would search for: plain, base64, base64url (the base64 forms cut
/// to whole 4-character groups, so an encoding at another byte offset is still found by the
/// plain search of the same bytes; the key's own alignment is what matters here).
fn forms(secret: &str) -> Vec<String> {
    const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let s = secret.as_bytes();
    let mut v = vec![secret.to_string()];
    for a in [STD, URL] {
        let e = b64(s, a, false);
        v.push(e[..e.len() / 4 * 4].to_string());
    }
    v
}

fn all_files(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            all_files(&p, out);
        } else if p.is_file() {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
}

fn assert_absent(dir: &Path, secret: &str, when: &str) {
    let mut files = vec![];
    all_files(dir, &mut files);
    assert!(files.iter().any(|(n, _)| n.ends_with("vnet.db")));
    for (name, bytes) in &files {
        for f in forms(secret) {
            assert!(
                !bytes.windows(f.len()).any(|w| w == f.as_bytes()),
                "{when}: {f:?} (a form of the secret) is in {name}"
            );
        }
    }
}

/// A server on the app, for the HTTP checks after a restart.
fn serve(app: Arc<api::routes::App>) -> (tokio::runtime::Runtime, String) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = api::router(app);
    rt.spawn(async move { axum::serve(listener, router).await.unwrap() });
    (rt, base)
}

fn setup(s: &Server) {
    s.rg("net");
    s.vnet("net", "hub", &["10.0.0.0/16"]);
    s.subnet("net", "hub", "GatewaySubnet", "10.0.255.0/27");
    s.gateway("net", "hub", "hub-gw", json!({}));
    let (st, b) = s.put(&net("net", "localNetworkGateways/onprem"), json!({"location": "westeurope", "properties": {"gatewayIpAddress": "198.18.10.1", "localNetworkAddressSpace": {"addressPrefixes": ["192.168.0.0/16"]}}}));
    assert_eq!(st, 201, "{b}");
    s.wait_succeeded(&net("net", "localNetworkGateways/onprem"));
}

fn connection(s: &Server, name: &str, key: &str) {
    let (st, c) = s.put(
        &net("net", &format!("connections/{name}")),
        json!({"location": "westeurope", "properties": {
        "connectionType": "IPsec", "sharedKey": key,
        "virtualNetworkGateway1": {"id": id("net", "virtualNetworkGateways/hub-gw")},
        "localNetworkGateway2": {"id": id("net", "localNetworkGateways/onprem")}}}),
    );
    assert!(st == 201 || st == 200, "{c}");
    s.wait_succeeded(&net("net", &format!("connections/{name}")));
}

#[test]
fn shared_keys_changed_or_deleted_leave_no_trace_and_survive_restart_while_they_exist() {
    let s = Server::start();
    setup(&s);
    let first = "FirstKey-9c1e7b2a44d0";
    let second = "SecondKey-0d3f8e61a7b5";
    let third = "ThirdKeyViaPut-5a6b7c8d9e0f";
    connection(&s, "c1", first);
    assert_absent(s.dir.path(), first, "stored");
    // Changed through the shared-key operation.
    let (st, b) = s.put(
        &net("net", "connections/c1/sharedkey"),
        json!({"value": second}),
    );
    assert_eq!(st, 200, "{b}");
    assert_absent(s.dir.path(), first, "after the change");
    assert_absent(s.dir.path(), second, "current key");
    // Changed again through a PUT of the connection itself.
    connection(&s, "c1", third);
    assert_absent(s.dir.path(), second, "after the PUT");
    assert_absent(s.dir.path(), third, "current key after PUT");
    assert_eq!(
        s.ok_get(&net("net", "connections/c1/sharedkey"))["value"],
        third
    );

    // Restart: the key is still there, and still only sealed.
    let Server { dir, app, _rt, .. } = s;
    drop(_rt);
    drop(app);
    let config = model::Config {
        public_ip_pools: vec!["198.18.0.0/24".parse().unwrap()],
    };
    let app = api::open_app(dir.path(), config.clone(), Default::default()).unwrap();
    let (rt, base) = serve(app.clone());
    let c = reqwest::blocking::Client::new();
    let url = |p: &str| format!("{base}{p}?api-version={API}");
    let k: serde_json::Value = c
        .get(url(&net("net", "connections/c1/sharedkey")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(k["value"], third, "the key survives a restart");
    let body = c
        .get(url(&net("net", "connections/c1")))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!body.contains(third), "write-only: {body}");

    // Deleted with its connection.
    let r = c.delete(url(&net("net", "connections/c1"))).send().unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let t0 = std::time::Instant::now();
    while c
        .get(url(&net("net", "connections/c1")))
        .send()
        .unwrap()
        .status()
        != 404
    {
        assert!(t0.elapsed().as_secs() < 10, "delete never finished");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for k in [first, second, third] {
        assert_absent(dir.path(), k, "after the delete");
    }
    assert!(app
        .engine
        .store()
        .get(&api::secrets::secret_key(
            &net("net", "connections/c1").to_ascii_lowercase()
        ))
        .unwrap()
        .is_none());
    drop(rt);
    drop(app);
    // Reopening does not bring it back.
    let app = api::open_app(dir.path(), config, Default::default()).unwrap();
    assert!(app.engine.read(|st| st.len()) > 0);
    for k in [first, second, third] {
        assert_absent(dir.path(), k, "after the reopen");
    }
}

#[test]
fn radius_secrets_are_sealed_and_a_wrong_key_file_is_refused() {
    let s = Server::start();
    s.rg("net");
    s.vnet("net", "hub", &["10.0.0.0/16"]);
    s.subnet("net", "hub", "GatewaySubnet", "10.0.255.0/27");
    let secret = "RadiusSecret-3e2d1c0b9a";
    let server_secret = "RadiusServer2-8f7e6d5c4b";
    s.gateway(
        "net",
        "hub",
        "gw",
        json!({"vpnClientConfiguration": {"vpnClientAddressPool": {"addressPrefixes": ["172.16.0.0/24"]},
            "radiusServerAddress": "10.9.0.1", "radiusServerSecret": secret,
            "radiusServers": [{"radiusServerAddress": "10.9.0.2", "radiusServerScore": 1, "radiusServerSecret": server_secret}]}}),
    );
    assert_absent(s.dir.path(), secret, "radius secret");
    assert_absent(s.dir.path(), server_secret, "radius server secret");
    let key = |app: &api::routes::App| {
        app.engine.read(|st| {
            st.get(&net("net", "virtualNetworkGateways/gw").to_ascii_lowercase())
                .map(|d| {
                    d["properties"]["vpnClientConfiguration"]["radiusServers"][0]
                        ["radiusServerSecret"]
                        .clone()
                })
        })
    };
    let Server { dir, app, _rt, .. } = s;
    drop(_rt);
    drop(app);
    let app = api::open_app(dir.path(), Default::default(), Default::default()).unwrap();
    assert_eq!(
        key(&app),
        Some(json!(server_secret)),
        "kept across a restart"
    );
    drop(app);
    // A replaced secrets.key (another directory's, or an attacker's) opens nothing: the
    // server refuses to start rather than run with secrets it cannot read.
    let kf = dir.path().join(api::secrets::KEY_FILE);
    std::fs::write(&kf, [7u8; 32]).unwrap();
    let err = api::open_app(dir.path(), Default::default(), Default::default())
        .err()
        .expect("a wrong key must be refused")
        .to_string();
    assert!(err.contains("cannot decrypt"), "{err}");
    assert!(
        !err.contains(secret) && !err.contains(server_secret),
        "{err}"
    );
}

/// A data directory of an older vnet: the shared key inline in the document, and in the
/// change feed. Opening it moves the key beside the document, sealed, and compacts the history
/// that held it, so the attacker's byte search finds nothing from then on.
#[test]
fn inline_secrets_of_an_older_version_are_moved_and_their_history_dropped() {
    let s = Server::start();
    setup(&s);
    let key = "LegacyInlineKey-1a2b3c4d5e";
    connection(&s, "old", "placeholder-key-000");
    let state_key = net("net", "connections/old").to_ascii_lowercase();
    let store = s.app.engine.store().clone();
    let res = format!("res/{state_key}");
    let mut doc: serde_json::Value =
        serde_json::from_str(&store.get(&res).unwrap().unwrap()).unwrap();
    doc["properties"]["sharedKey"] = json!(key);
    // What an older version wrote: the key inside the document (so also in its event).
    store
        .commit(&[
            store::Op::Put {
                key: res.clone(),
                value: doc.to_string(),
            },
            store::Op::Delete {
                key: api::secrets::secret_key(&state_key),
            },
        ])
        .unwrap();
    assert!(store
        .events_since(0, 10_000)
        .unwrap()
        .iter()
        .any(|e| e.value.as_deref().is_some_and(|v| v.contains(key))));
    drop(store);
    let Server { dir, app, _rt, .. } = s;
    drop(_rt);
    drop(app);

    let app = api::open_app(dir.path(), Default::default(), Default::default()).unwrap();
    let in_memory = app.engine.read(|st| st.get(&state_key).cloned()).unwrap();
    assert_eq!(in_memory["properties"]["sharedKey"], key, "still usable");
    let store = app.engine.store();
    assert!(!store.get(&res).unwrap().unwrap().contains(key));
    let e = store.events_since(0, 1).unwrap_err();
    assert!(
        e.needs_resync(),
        "the history holding the key was kept: {e}"
    );
    drop(app);
    assert_absent(dir.path(), key, "after the migration");
}
