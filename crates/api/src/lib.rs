//! vnet's ARM-compatible HTTP API: the server that holds the desired state (in an embedded
//! store) and answers Azure's REST calls for virtual networks, peerings, NICs, route tables,
//! public IPs, VPN gateways, local network gateways and connections.

pub mod auth;
pub mod compaction;
pub mod datadir;
pub mod dataplane;
pub mod engine;
pub mod http;
pub mod identity_routes;
pub mod openapi;
pub mod routes;
pub mod secrets;
pub mod tls;

use engine::Engine;
use routes::{App, AppOptions};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What `vnet serve` is told on its command line.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub public_ip_pools: Vec<ipnet::IpNet>,
    /// Plain HTTP and no bearer tokens: local development only, refused unless `listen` is a
    /// loopback address (`vnet serve --insecure-http`).
    pub insecure_http: bool,
    /// Where the HTTPS certificate comes from (`--tls-cert/--tls-key`, or made in the data dir).
    pub tls: tls::TlsSource,
    /// Development mode: print the operator principal's client secret at start.
    pub dev: bool,
    /// Revisions of change-feed history each store keeps (`--history-revisions`).
    pub history_revisions: u64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7380)),
            data_dir: PathBuf::from("./vnet-data"),
            public_ip_pools: vec![],
            insecure_http: false,
            tls: tls::TlsSource::SelfSigned,
            dev: false,
            history_revisions: compaction::DEFAULT_HISTORY_REVISIONS,
        }
    }
}

/// The router of an app without authentication (in-process tests, `--insecure-http`): the
/// identity endpoints (metadata, tokens, tenants, role assignments) and the ARM dispatcher, with
/// no bearer token required. `serve` uses [`identity_routes::secure_router`] with the data
/// directory's identity instead.
pub fn router(app: Arc<App>) -> axum::Router {
    identity_routes::secure_router(app, Arc::new(identity_routes::Identity::unauthenticated()))
}

/// Opens the store in `data_dir` and builds the app (no listening yet).
pub fn open_app(
    data_dir: &std::path::Path,
    config: model::Config,
    opts: AppOptions,
) -> Result<Arc<App>, BoxError> {
    std::fs::create_dir_all(data_dir)?;
    let store = store::SqliteStore::open(&data_dir.join("vnet.db"))?;
    let sealer = secrets::Sealer::load_or_create(data_dir)?;
    let engine = Engine::open_sealed(Arc::new(store), config, sealer)?;
    let app = Arc::new(App {
        engine: Arc::new(engine),
        opts,
        dataplane: Default::default(),
    });
    Ok(app)
}

/// Finishes provisioning that a previous run left in progress.
pub async fn resume(app: &Arc<App>) {
    for op in app.engine.pending_operations() {
        if let Some(k) = op.resource_key.clone() {
            app.finish(k, op.id.clone()).await;
        }
    }
}

/// The public IP pool used when the operator configures none.
pub const DEFAULT_PUBLIC_IP_POOL: &str = "198.18.0.0/15";

/// Runs the all-in-one server until interrupted: HTTPS with bearer tokens (see
/// [`identity_routes`]), or plain HTTP without tokens on loopback with `insecure_http`.
pub async fn serve(cfg: ServeConfig) -> Result<(), BoxError> {
    if cfg.insecure_http && !cfg.listen.ip().is_loopback() {
        return Err(format!(
            "--insecure-http serves without TLS or tokens and is only allowed on a loopback address, not {}",
            cfg.listen
        )
        .into());
    }
    let mut pools = cfg.public_ip_pools.clone();
    if pools.is_empty() {
        // RFC 2544's benchmarking range: never routed on the internet, safe for a local lab.
        pools.push(DEFAULT_PUBLIC_IP_POOL.parse().expect("constant prefix"));
    }
    let config = model::Config {
        public_ip_pools: pools,
    };
    let scheme = if cfg.insecure_http { "http" } else { "https" };
    let opts = AppOptions {
        scheme: scheme.into(),
        ..AppOptions::default()
    };
    // Before any store is opened: one server per data directory, and its files private.
    let data_dir = datadir::DataDir::lock(&cfg.data_dir)?;
    let app = open_app(&cfg.data_dir, config, opts)?;
    let (identity, boot) = identity_routes::Identity::open(&cfg.data_dir, !cfg.insecure_http)?;
    let stores: Vec<(&'static str, Arc<dyn store::Store>)> = vec![
        ("vnet.db", app.engine.store().clone()),
        ("identity.db", identity.dir.store().clone()),
    ];
    // At start, before anything follows the change feed, then on a schedule.
    compaction::compact_all(&stores, cfg.history_revisions);
    compaction::spawn(stores, cfg.history_revisions, compaction::INTERVAL);
    resume(&app).await;
    dataplane::start(&app);
    let router = identity_routes::secure_router(app, Arc::new(identity));
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    let local = listener.local_addr()?;
    let tls_setup = if cfg.insecure_http {
        None
    } else {
        Some(tls::setup(&cfg.data_dir, local, &cfg.tls)?)
    };
    // TLS and the identity made their files: check the modes once more.
    data_dir.secure()?;
    print_banner(&cfg, local, scheme, &boot, tls_setup.as_ref());
    tracing::info!(listen = %local, data_dir = %cfg.data_dir.display(), %scheme, "vnet API listening");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match tls_setup {
        Some(t) => {
            axum::serve(tls::TlsListener::new(listener, t.config)?, router)
                .with_graceful_shutdown(shutdown)
                .await?;
        }
        None => {
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await?
        }
    }
    drop(data_dir);
    Ok(())
}

/// What a user needs to reach the server: its URL, the CA to trust, and who to sign in as.
fn print_banner(
    cfg: &ServeConfig,
    local: SocketAddr,
    scheme: &str,
    boot: &auth::Bootstrap,
    tls: Option<&tls::TlsSetup>,
) {
    use std::io::Write;
    let host = if local.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        local.ip().to_string()
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let mut out = String::new();
    out.push_str(&format!(
        "vnet API listening on {scheme}://{host}:{}/\n",
        local.port()
    ));
    match tls {
        Some(t) => match &t.ca_file {
            Some(ca) => out.push_str(&format!(
                "  TLS: certificate for {} issued by the CA in {} (trust that file)\n",
                t.names.join(", "),
                ca.display()
            )),
            None => out.push_str("  TLS: the operator's certificate\n"),
        },
        None => out.push_str(
            "  WARNING: --insecure-http: no TLS and no authentication (local development only)\n",
        ),
    }
    if boot.created {
        out.push_str("  first start: made a tenant, the default subscription and an operator principal (Owner at /)\n");
    }
    out.push_str(&format!(
        "  tenant: {}\n  subscription: {}\n  operator client id: {}\n",
        boot.tenant_id, boot.subscription_id, boot.client_id
    ));
    if let Some(f) = &boot.credentials_file {
        out.push_str(&format!("  operator credentials: {}\n", f.display()));
        if cfg.dev {
            let secret = std::fs::read_to_string(f)
                .ok()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                .and_then(|v| v["clientSecret"].as_str().map(String::from));
            if let Some(s) = secret {
                out.push_str(&format!("  operator client secret (--dev): {s}\n"));
            }
        }
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(out.as_bytes())
        .and_then(|_| stdout.flush());
}
