//! vnet's ARM-compatible HTTP API: the server that holds the desired state (in an embedded
//! store) and answers Azure's REST calls for virtual networks, peerings, NICs, route tables,
//! public IPs, VPN gateways, local network gateways and connections.

pub mod audit;
pub mod auth;
pub mod compaction;
pub mod conn;
pub mod datadir;
pub mod dataplane;
pub mod engine;
pub mod http;
pub mod identity_routes;
pub mod openapi;
pub mod ratelimit;
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
    /// The URL clients reach the server by (`--public-url`), used for every URL the server
    /// hands out instead of the request's `Host`; `None`: derived from the listen address
    /// ([`public_url`]).
    pub public_url: Option<String>,
    /// Connection timeouts and cap ([`conn`]).
    pub limits: conn::ConnLimits,
    /// Also write the audit log to this file as JSON lines (`--audit-log`).
    pub audit_log: Option<PathBuf>,
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
            public_url: None,
            limits: conn::ConnLimits::default(),
            audit_log: None,
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

/// Runs the all-in-one server until SIGTERM or SIGINT (Ctrl-C): HTTPS with bearer tokens (see
/// [`identity_routes`]), or plain HTTP without tokens on loopback with `insecure_http`. Returns
/// normally after a clean shutdown, so everything the server holds is dropped in order.
pub async fn serve(cfg: ServeConfig) -> Result<(), BoxError> {
    serve_until(cfg, |_| {}, stop_signal()).await
}

/// [`serve`], telling `ready` the bound address once it accepts connections and stopping when
/// `shutdown` completes (tests run servers on port 0 and stop them this way).
pub async fn serve_until(
    cfg: ServeConfig,
    ready: impl FnOnce(SocketAddr) + Send,
    shutdown: impl std::future::Future<Output = &'static str> + Send,
) -> Result<(), BoxError> {
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
    // Before any store is opened or port bound: one server per data directory, its files private.
    let data_dir = datadir::DataDir::lock(&cfg.data_dir)?;
    let nofile = conn::raise_nofile_limit();
    let cap = conn::connection_cap(nofile, cfg.limits.max_connections);
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    let local = listener.local_addr()?;
    let public = public_url(cfg.public_url.as_deref(), local, scheme)?;
    let opts = AppOptions {
        scheme: scheme.into(),
        public_url: Some(public.clone()),
        ..AppOptions::default()
    };
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
    let audit = Arc::new(audit::Audit::new(
        identity.require_auth,
        cfg.audit_log.as_deref(),
    )?);
    let router = identity_routes::secure_router(app, Arc::new(identity));
    let tls_setup = if cfg.insecure_http {
        None
    } else {
        Some(tls::setup(&cfg.data_dir, local, &cfg.tls)?)
    };
    // TLS and the identity made their files: check the modes once more.
    data_dir.secure()?;
    print_banner(&cfg, local, scheme, &boot, tls_setup.as_ref());
    println!("  public URL: {public}/\n  connections: at most {cap} (descriptor limit {nofile})");
    tracing::info!(listen = %local, data_dir = %cfg.data_dir.display(), %scheme, public_url = %public, max_connections = cap, "vnet API listening");
    let acceptor = tls_setup.map(|t| tokio_rustls::TlsAcceptor::from(t.config));
    let (signal_tx, signal_rx) = tokio::sync::oneshot::channel();
    let shutdown = async move {
        let why = shutdown.await;
        println!("vnet API stopping ({why}): finishing requests in progress");
        tracing::info!(
            signal = why,
            "stopping: no new connections, finishing requests in progress"
        );
        let _ = signal_tx.send(why);
    };
    ready(local);
    let limits = cfg.limits.clone();
    let grace = limits.shutdown_grace;
    let summary = conn::run(listener, acceptor, router, audit, limits, cap, shutdown).await;
    let why = signal_rx.await.unwrap_or("shutdown");
    if summary.cut > 0 {
        tracing::warn!(
            cut = summary.cut,
            grace_secs = grace.as_secs_f64(),
            "connections still busy after the grace period were closed"
        );
    }
    tracing::info!(
        signal = why,
        connections = summary.open_at_shutdown,
        cut = summary.cut,
        "vnet API stopped"
    );
    println!(
        "vnet API stopped ({why}; {} connection(s) open at shutdown, {} cut after the {}s grace period)",
        summary.open_at_shutdown,
        summary.cut,
        grace.as_secs_f64()
    );
    // Released only now: the server is down.
    drop(data_dir);
    Ok(())
}

/// Completes on SIGTERM (service managers, `kill`) or SIGINT (Ctrl-C), naming it.
pub async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the server cleanly");
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}

/// The base of every URL the server hands out (`https://host:port`, no trailing slash): the
/// operator's `--public-url`, checked, or one made from the bound address. An unspecified
/// listen address (`0.0.0.0`, `::`) gives this machine's host name when it resolves (the
/// self-made certificate covers it, and remote clients can reach it), else 127.0.0.1.
pub fn public_url(
    given: Option<&str>,
    local: SocketAddr,
    scheme: &str,
) -> Result<String, BoxError> {
    if let Some(u) = given {
        return check_public_url(u);
    }
    let ip = local.ip();
    let host = if ip.is_unspecified() {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let valid = !name.is_empty()
            && name.len() < 254
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        let resolves = valid && {
            use std::net::ToSocketAddrs;
            (name.as_str(), local.port())
                .to_socket_addrs()
                .is_ok_and(|mut a| a.next().is_some())
        };
        if resolves {
            name
        } else {
            tracing::warn!("listening on {local}: URLs the server hands out name 127.0.0.1; set --public-url for remote clients");
            "127.0.0.1".into()
        }
    } else if ip.is_ipv6() {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    Ok(format!("{scheme}://{host}:{}", local.port()))
}

/// A public URL must be `http(s)://authority` with nothing after it but one `/`: a path would
/// be prepended to no route, and a query or fragment would corrupt every URL made from it.
fn check_public_url(u: &str) -> Result<String, BoxError> {
    let bad = |why: &str| -> BoxError { format!("--public-url {u:?}: {why}").into() };
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or_else(|| bad("must start with https:// or http://"))?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() {
        return Err(bad("names no host"));
    }
    let ok = authority
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b));
    if !ok {
        return Err(bad(
            "must be a scheme and host[:port] only (no path, query, user or fragment)",
        ));
    }
    Ok(u.trim_end_matches('/').to_string())
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
