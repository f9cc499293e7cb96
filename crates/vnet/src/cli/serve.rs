//! `vnet serve`: the API server, store, planner and local agent in one process.
//!
//! The server itself lives in the `api` crate; this command only turns flags into its
//! configuration, sets up logging and runs it on a multi-threaded tokio runtime.

use super::error::CliError;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port the ARM API listens on.
    #[arg(long, default_value = "127.0.0.1:7380", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// Directory of the store, the TLS certificates (ca.pem) and the operator's
    /// credentials.json; client commands on this machine read the last two from here.
    #[arg(
        long,
        env = "VNET_DATA_DIR",
        default_value = "./vnet-data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,
    /// A range public IP addresses are allocated from (repeat for several).
    #[arg(long = "public-ip-pool", value_name = "CIDR")]
    pub public_ip_pools: Vec<ipnet::IpNet>,
    /// Serve plain HTTP without tokens (local development; loopback addresses only).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub insecure_http: bool,
    /// Serve this certificate chain (PEM, leaf first) instead of one made in the data directory.
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Development mode: print the operator's client secret at start.
    #[arg(long)]
    pub dev: bool,
    /// The URL clients reach this server by (scheme://host[:port]), used in every URL the
    /// server hands out (Location, Azure-AsyncOperation, nextLink, cloud metadata, token
    /// issuers) instead of the request's Host header. Default: from --listen (this machine's
    /// host name for 0.0.0.0 / ::).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Seconds a client has to finish the TLS handshake.
    #[arg(long, default_value = "10", value_name = "SECS", value_parser = secs)]
    pub tls_handshake_timeout: Duration,
    /// Seconds a client has to send a whole request head (from the connection being ready, or
    /// from the first byte of a later request); slower clients are disconnected.
    #[arg(long, default_value = "10", value_name = "SECS", value_parser = secs)]
    pub header_timeout: Duration,
    /// Seconds a kept-alive connection may stay idle between requests.
    #[arg(long, default_value = "60", value_name = "SECS", value_parser = secs)]
    pub idle_timeout: Duration,
    /// Seconds a client has to send a whole request body (answered 408 otherwise).
    #[arg(long, default_value = "30", value_name = "SECS", value_parser = secs)]
    pub body_timeout: Duration,
    /// Most connections open at once (default: 3/4 of the descriptor limit left after a
    /// reserve, at most 10000). At the cap the longest-idle connections are closed to make room.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Seconds requests in progress may take to finish after SIGTERM or Ctrl-C.
    #[arg(long, default_value = "30", value_name = "SECS", value_parser = secs)]
    pub shutdown_grace: Duration,
    /// Also append the audit log (one JSON line per write request) to this file (mode 0600).
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Revisions of change-feed history the store keeps (older ones are compacted at start
    /// and every minute; a follower further behind re-reads a snapshot).
    #[arg(long, default_value_t = api::compaction::DEFAULT_HISTORY_REVISIONS, value_name = "N")]
    pub history_revisions: u64,
}

/// Seconds, fractions allowed (`0.5`); at least a millisecond, at most a day.
fn secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.001..=86400.0).contains(&v) {
        return Err(format!("{s} is outside 0.001 to 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(v))
}

impl ServeArgs {
    fn config(self) -> api::ServeConfig {
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => api::tls::TlsSource::Provided { cert, key },
            _ => api::tls::TlsSource::SelfSigned,
        };
        api::ServeConfig {
            listen: self.listen,
            data_dir: self.data_dir,
            public_ip_pools: self.public_ip_pools,
            insecure_http: self.insecure_http,
            tls,
            dev: self.dev,
            public_url: self.public_url,
            limits: api::conn::ConnLimits {
                tls_handshake_timeout: self.tls_handshake_timeout,
                header_timeout: self.header_timeout,
                idle_timeout: self.idle_timeout,
                body_timeout: self.body_timeout,
                max_connections: self.max_connections,
                shutdown_grace: self.shutdown_grace,
            },
            audit_log: self.audit_log,
            history_revisions: self.history_revisions,
        }
    }
}

pub fn run(args: ServeArgs) -> Result<(), CliError> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new("ServeFailed", format!("cannot start the runtime: {e}")))?;
    let r = runtime.block_on(api::serve(args.config()));
    // Background work (the data plane's blocking tasks) gets a moment, not a veto: the server
    // has already drained its requests.
    runtime.shutdown_timeout(Duration::from_secs(5));
    r.map_err(|e| CliError::new("ServeFailed", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once(&"vnet").chain(args))?;
        match cli.command {
            Command::Serve(args) => Ok(args),
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let args = parse(&["serve"]).unwrap();
        assert_eq!(args.listen, "127.0.0.1:7380".parse().unwrap());
        if std::env::var_os("VNET_DATA_DIR").is_none() {
            assert_eq!(args.data_dir, PathBuf::from("./vnet-data"));
        }
        assert!(args.public_ip_pools.is_empty());
        let config = args.config();
        assert!(!config.insecure_http && !config.dev);
        assert_eq!(config.tls, api::tls::TlsSource::SelfSigned);
        assert_eq!(config.limits, api::conn::ConnLimits::default());
        assert_eq!(config.public_url, None);
        assert_eq!(config.audit_log, None);
    }

    #[test]
    fn connection_limits_and_public_url() {
        let config = parse(&[
            "serve",
            "--header-timeout",
            "0.5",
            "--idle-timeout",
            "2",
            "--max-connections",
            "64",
            "--public-url",
            "https://vnet.example:8443",
        ])
        .unwrap()
        .config();
        assert_eq!(config.limits.header_timeout, Duration::from_millis(500));
        assert_eq!(config.limits.idle_timeout, Duration::from_secs(2));
        assert_eq!(config.limits.max_connections, Some(64));
        assert_eq!(
            config.public_url.as_deref(),
            Some("https://vnet.example:8443")
        );
        for bad in ["0", "-1", "soon", "1e9"] {
            assert!(parse(&["serve", "--header-timeout", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn pools_repeat_and_are_parsed() {
        let args = parse(&[
            "serve",
            "--listen",
            "0.0.0.0:8443",
            "--data-dir",
            "/tmp/x",
            "--public-ip-pool",
            "203.0.113.0/24",
            "--public-ip-pool",
            "198.51.100.0/28",
        ])
        .unwrap();
        let config = args.config();
        assert_eq!(config.listen.port(), 8443);
        assert_eq!(config.public_ip_pools.len(), 2);
        assert_eq!(config.public_ip_pools[1].to_string(), "198.51.100.0/28");
        assert!(parse(&["serve", "--public-ip-pool", "nope"]).is_err());
    }

    #[test]
    fn tls_files_come_in_pairs() {
        let config = parse(&["serve", "--tls-cert", "c.pem", "--tls-key", "k.pem"])
            .unwrap()
            .config();
        assert_eq!(
            config.tls,
            api::tls::TlsSource::Provided {
                cert: "c.pem".into(),
                key: "k.pem".into()
            }
        );
        assert!(parse(&["serve", "--tls-cert", "c.pem"]).is_err());
        assert!(parse(&[
            "serve",
            "--insecure-http",
            "--tls-cert",
            "c",
            "--tls-key",
            "k"
        ])
        .is_err());
        assert!(
            parse(&["serve", "--insecure-http", "--dev"])
                .unwrap()
                .config()
                .insecure_http
        );
    }
}
