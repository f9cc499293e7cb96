//! vnet's ARM-compatible HTTP API: the server that holds the desired state (in an embedded
//! store) and answers Azure's REST calls for virtual networks, peerings, NICs, route tables,
//! public IPs, VPN gateways, local network gateways and connections.

pub mod dataplane;
pub mod engine;
pub mod http;
pub mod openapi;
pub mod routes;

use axum::body::Body;
use axum::extract::State;
use axum::http::Request;
use axum::response::Response;
use engine::Engine;
use routes::{App, AppOptions, Req};
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
}

/// The router of an app: every request goes to the ARM dispatcher.
pub fn router(app: Arc<App>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(app)
}

async fn handle(State(app): State<Arc<App>>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, http::MAX_BODY).await {
        Ok(b) => b.to_vec(),
        Err(_) => {
            return http::error(&model::ArmError::new(
                413,
                "RequestEntityTooLarge",
                format!("The request body is larger than the {} bytes vnet accepts.", http::MAX_BODY),
            ))
        }
    };
    let r = Req {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: http::parse_query(parts.uri.query()),
        headers: parts.headers,
        body,
    };
    app.handle(r).await
}

/// Opens the store in `data_dir` and builds the app (no listening yet).
pub fn open_app(data_dir: &std::path::Path, config: model::Config, opts: AppOptions) -> Result<Arc<App>, BoxError> {
    std::fs::create_dir_all(data_dir)?;
    let store = store::SqliteStore::open(&data_dir.join("vnet.db"))?;
    let engine = Engine::open(Arc::new(store), config)?;
    let app = Arc::new(App { engine: Arc::new(engine), opts, dataplane: Default::default() });
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

/// Runs the all-in-one server until interrupted.
pub async fn serve(cfg: ServeConfig) -> Result<(), BoxError> {
    let mut pools = cfg.public_ip_pools.clone();
    if pools.is_empty() {
        // RFC 2544's benchmarking range: never routed on the internet, safe for a local lab.
        pools.push(DEFAULT_PUBLIC_IP_POOL.parse().expect("constant prefix"));
    }
    let config = model::Config { public_ip_pools: pools };
    let app = open_app(&cfg.data_dir, config, AppOptions::default())?;
    resume(&app).await;
    dataplane::start(&app);
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, data_dir = %cfg.data_dir.display(), "vnet API listening");
    axum::serve(listener, router(app))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
