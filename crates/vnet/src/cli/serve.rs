//! `vnet serve`: the API server, store, planner and local agent in one process.
//!
//! The server itself lives in the `api` crate; this command only turns flags into its
//! configuration, sets up logging and runs it on a multi-threaded tokio runtime.

use super::error::CliError;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// Revisions of change-feed history the store keeps (older ones are compacted at start
    /// and every minute; a follower further behind re-reads a snapshot).
    #[arg(long, default_value_t = api::compaction::DEFAULT_HISTORY_REVISIONS, value_name = "N")]
    pub history_revisions: u64,
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
    runtime
        .block_on(api::serve(args.config()))
        .map_err(|e| CliError::new("ServeFailed", e.to_string()))
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
