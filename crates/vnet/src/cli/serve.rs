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
    /// Directory of the embedded store.
    #[arg(long, default_value = "./vnet-data", value_name = "DIR")]
    pub data_dir: PathBuf,
    /// A range public IP addresses are allocated from (repeat for several).
    #[arg(long = "public-ip-pool", value_name = "CIDR")]
    pub public_ip_pools: Vec<ipnet::IpNet>,
}

impl ServeArgs {
    fn config(self) -> api::ServeConfig {
        api::ServeConfig {
            listen: self.listen,
            data_dir: self.data_dir,
            public_ip_pools: self.public_ip_pools,
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

    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["vnet", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(args.listen, "127.0.0.1:7380".parse().unwrap());
        assert_eq!(args.data_dir, PathBuf::from("./vnet-data"));
        assert!(args.public_ip_pools.is_empty());
    }

    #[test]
    fn pools_repeat_and_are_parsed() {
        let cli = Cli::try_parse_from([
            "vnet",
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
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        let config = args.config();
        assert_eq!(config.listen.port(), 8443);
        assert_eq!(config.public_ip_pools.len(), 2);
        assert_eq!(config.public_ip_pools[1].to_string(), "198.51.100.0/28");
        assert!(Cli::try_parse_from(["vnet", "serve", "--public-ip-pool", "nope"]).is_err());
    }
}
