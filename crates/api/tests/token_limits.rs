//! The token endpoint under a guessing attack (issue 9, item 6): failed sign-ins are throttled
//! per source with a 429 in AAD's shape and a `Retry-After`, while the operator signing in
//! from another source is not slowed.
//!
//! The server is the secured router on plain HTTP, listening on 127.0.0.1 *and* ::1, so that
//! two real TCP sources exist on one machine (127.0.0.0/8 and ::1 are different sources to
//! the limiter). The harness serves with `into_make_service_with_connect_info`, which puts the
//! peer address where the production accept loop puts it.

use api::identity_routes::{secure_router, Identity};
use api::ratelimit::{Budget, TokenLimits};
use api::routes::AppOptions;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

struct Srv {
    v4: String,
    v6: String,
    client: reqwest::blocking::Client,
    identity: Arc<Identity>,
    tenant: String,
    op_id: String,
    op_secret: String,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

/// Small budgets so the test runs in seconds: 3 failures per client and source, 10 per
/// source, one regained per second.
fn limits() -> TokenLimits {
    let b = |burst| Budget {
        burst,
        period: Duration::from_secs(1),
    };
    TokenLimits {
        per_source: b(10),
        per_client_source: b(3),
        per_client: b(50),
        recent: Duration::from_secs(60),
        max_entries: 256,
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

impl Srv {
    fn start() -> Srv {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = model::Config {
            public_ip_pools: vec!["198.18.0.0/24".parse().unwrap()],
        };
        let app = api::open_app(dir.path(), config, AppOptions::default()).unwrap();
        let (identity, _) = Identity::open(dir.path(), true).unwrap();
        let identity = Arc::new(identity.with_token_limits(limits()));
        let router = secure_router(app, identity.clone());
        let mut bases = Vec::new();
        for listen in ["127.0.0.1:0", "[::1]:0"] {
            let l = rt
                .block_on(tokio::net::TcpListener::bind(listen))
                .unwrap_or_else(|e| panic!("this test needs {listen} (loopback): {e}"));
            let addr = l.local_addr().unwrap();
            bases.push(format!("http://{addr}"));
            let svc = router
                .clone()
                .into_make_service_with_connect_info::<SocketAddr>();
            rt.spawn(async move { axum::serve(l, svc).await.unwrap() });
        }
        let creds: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("credentials.json")).unwrap(),
        )
        .unwrap();
        let s = |k: &str| creds[k].as_str().unwrap().to_string();
        Srv {
            v6: bases.pop().unwrap(),
            v4: bases.pop().unwrap(),
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            identity,
            tenant: s("tenantId"),
            op_id: s("clientId"),
            op_secret: s("clientSecret"),
            _rt: rt,
            _dir: dir,
        }
    }

    /// POSTs the v2 token endpoint at `base`; returns status, Retry-After, body.
    fn token_at(
        &self,
        base: &str,
        path: &str,
        body: String,
        extra: &[(&str, &str)],
    ) -> (u16, Option<u64>, Value) {
        let mut rb = self
            .client
            .post(format!("{base}/{}/{path}", self.tenant))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        for (k, v) in extra {
            rb = rb.header(*k, *v);
        }
        let r = rb.send().unwrap();
        let status = r.status().as_u16();
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse().unwrap());
        (status, retry, r.json().unwrap())
    }

    fn v2(&self, base: &str, client: &str, secret: &str) -> (u16, Option<u64>, Value) {
        self.token_at(
            base,
            "oauth2/v2.0/token",
            form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client),
                ("client_secret", secret),
                ("scope", "https://management.azure.com/.default"),
            ]),
            &[],
        )
    }
}

fn assert_throttled(r: &(u16, Option<u64>, Value)) -> u64 {
    assert_eq!(r.0, 429, "expected 429, got {} {}", r.0, r.2);
    assert_eq!(r.2["error"], "temporarily_unavailable", "{}", r.2);
    assert_eq!(r.2["error_codes"][0], 50053, "{}", r.2);
    assert!(r.2.get("access_token").is_none());
    let secs = r.1.expect("a 429 carries Retry-After");
    assert!((1..=3).contains(&secs), "Retry-After {secs}");
    secs
}

#[test]
fn guessing_the_operators_secret_is_throttled_for_that_source_only() {
    let s = Srv::start();
    let op = s.op_id.clone();
    // Attack: wrong secrets for the operator's client id from 127.0.0.1, alternating the
    // client id's letter case (the directory looks ids up case-insensitively; a limiter keyed
    // on the raw spelling would give each spelling a fresh budget).
    let spellings = [op.to_ascii_uppercase(), op.clone(), op.to_ascii_uppercase()];
    for (i, id) in spellings.iter().enumerate() {
        let r = s.v2(&s.v4, id, &format!("guess-{i}"));
        assert_eq!(r.0, 401, "guess {i}: {}", r.2);
        assert_eq!(r.2["error"], "invalid_client");
    }
    let r = s.v2(&s.v4, &op, "guess-3");
    let wait = assert_throttled(&r);
    assert!(
        !r.2["error_description"]
            .as_str()
            .unwrap()
            .contains("guess-3"),
        "the refusal never echoes the secret"
    );
    // While throttled, even the right secret from that source is refused: a 200 there would
    // tell a guesser which guess was right, i.e. no throttle at all.
    assert_throttled(&s.v2(&s.v4, &op, &s.op_secret));
    // Variants that must not buy a fresh budget: HTTP Basic instead of the form, the v1
    // endpoint, and a forged X-Forwarded-For (the source is the TCP peer, never a header).
    let basic = format!(
        "Basic {}",
        b64(format!("{}:{}", op.to_ascii_lowercase(), "guess-4").as_bytes())
    );
    assert_throttled(&s.token_at(
        &s.v4,
        "oauth2/v2.0/token",
        form(&[
            ("grant_type", "client_credentials"),
            ("scope", "https://management.azure.com/.default"),
        ]),
        &[("authorization", &basic)],
    ));
    assert_throttled(&s.token_at(
        &s.v4,
        "oauth2/token",
        form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &op),
            ("client_secret", "guess-5"),
            ("resource", "https://management.azure.com/"),
        ]),
        &[],
    ));
    assert_throttled(&s.token_at(
        &s.v4,
        "oauth2/v2.0/token",
        form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &op),
            ("client_secret", "guess-6"),
            ("scope", "https://management.azure.com/.default"),
        ]),
        &[
            ("x-forwarded-for", "203.0.113.5"),
            ("x-real-ip", "203.0.113.5"),
        ],
    ));
    // The operator from another source (::1) signs in at once, several times (successes are
    // never counted).
    for _ in 0..5 {
        let r = s.v2(&s.v6, &op, &s.op_secret);
        assert_eq!(r.0, 200, "operator from ::1: {}", r.2);
        assert!(r.2["access_token"].as_str().is_some());
    }
    // After the window the attacked source recovers: the operator's right secret from
    // 127.0.0.1 works again, and clears that source's failures for the operator.
    std::thread::sleep(Duration::from_secs(wait) + Duration::from_millis(100));
    let r = s.v2(&s.v4, &op, &s.op_secret);
    assert_eq!(r.0, 200, "after Retry-After: {}", r.2);
    for i in 0..3 {
        assert_eq!(s.v2(&s.v4, &op, &format!("again-{i}")).0, 401);
    }
    assert_throttled(&s.v2(&s.v4, &op, "again-3"));
}

#[test]
fn rotating_bogus_client_ids_is_stopped_by_the_source_budget_and_stores_nothing() {
    let s = Srv::start();
    // Attack: a new (nonexistent) client id for every request from one source, so no
    // per-client budget ever fills.
    let mut codes = Vec::new();
    let t0 = std::time::Instant::now();
    for i in 0..1000 {
        let r = s.v2(&s.v4, &format!("00000000-0000-0000-0000-{i:012}"), "x");
        codes.push(r.0);
        if r.0 == 429 {
            assert_throttled(&r);
        }
    }
    // 10 answered (400 unauthorized_client: unknown client), then refused; the source regains
    // one failure per second, so at most one more answer per second the loop ran.
    let secs = t0.elapsed().as_secs();
    assert!(codes[..10].iter().all(|c| *c == 400), "{:?}", &codes[..12]);
    assert_eq!(codes[10], 429);
    let answered = codes.iter().filter(|c| **c == 400).count() as u64;
    assert!(answered <= 10 + secs + 1, "{answered} answered in {secs} s");
    assert!(codes.iter().all(|c| *c == 400 || *c == 429));
    // Unknown ids are charged to the source only: the limiter holds one entry, not 1000.
    let sizes = s.identity.token_limiter.sizes();
    assert_eq!(
        (sizes.sources, sizes.pairs, sizes.clients),
        (1, 0, 0),
        "{sizes:?}"
    );
    // The operator from another source is unaffected.
    assert_eq!(s.v2(&s.v6, &s.op_id, &s.op_secret).0, 200);
}

fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
