//! The command line: the top-level tree, the options every client command shares, and small
//! argument types reused by the resource modules (which define their own subcommands).

use super::group::GroupCommand;
use super::network::NetworkCommand;
use super::output::OutputFormat;
use super::serve::ServeArgs;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

pub const DEFAULT_SERVER: &str = "https://127.0.0.1:7380";
pub const DEFAULT_SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000000";

/// vnet: self-hosted Azure-style virtual networking.
///
/// `vnet serve` runs the server; every other command is a client of it, shaped after
/// `az network`.
#[derive(Debug, Parser)]
#[command(name = "vnet", version)]
pub struct Cli {
    #[command(flatten)]
    pub client: ClientOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every client command. They are global so that they can follow the subcommand,
/// as `az ... -o table` users type them.
#[derive(Debug, Clone, Args)]
pub struct ClientOpts {
    /// URL of the vnet server.
    #[arg(long, env = "VNET_SERVER", default_value = DEFAULT_SERVER, global = true, help_heading = "Global Options")]
    pub server: String,
    /// Subscription id used in resource ids.
    #[arg(long, env = "VNET_SUBSCRIPTION", default_value = DEFAULT_SUBSCRIPTION, global = true, help_heading = "Global Options")]
    pub subscription: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Json, global = true, help_heading = "Global Options")]
    pub output: OutputFormat,
    /// CA certificate(s) to trust for the server (PEM); default: the server's ca.pem in
    /// $VNET_DATA_DIR or ./vnet-data, if present.
    #[arg(
        long,
        env = "VNET_CA_CERT",
        global = true,
        help_heading = "Global Options",
        value_name = "FILE"
    )]
    pub ca_cert: Option<PathBuf>,
    /// Service principal credentials (JSON with tenantId, clientId, clientSecret); default:
    /// VNET_TENANT_ID/VNET_CLIENT_ID/VNET_CLIENT_SECRET, else credentials.json in
    /// $VNET_DATA_DIR or ./vnet-data, if present.
    #[arg(
        long,
        env = "VNET_CREDENTIALS",
        global = true,
        help_heading = "Global Options",
        value_name = "FILE"
    )]
    pub credentials: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server (store, planner and local agent) in this process.
    Serve(ServeArgs),
    /// Manage resource groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Manage virtual networks, NICs, route tables, gateways and diagnostics.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Workloads: a NIC and the network namespace it is attached to (`vm create/exec/delete`).
    #[command(subcommand)]
    Vm(super::vm::VmCommand),
    /// Standalone IKEv2/IPsec tunnels (`vnet ipsec up`).
    #[command(subcommand)]
    Ipsec(super::ipsec::IpsecCommand),
}

/// `-g RG -n NAME`: a top-level resource.
#[derive(Debug, Clone, Args)]
pub struct Named {
    /// Resource group name.
    #[arg(short = 'g', long = "resource-group")]
    pub resource_group: String,
    /// Resource name.
    #[arg(short = 'n', long)]
    pub name: String,
}

/// `-g RG -n NAME [--no-wait]`: deleting a top-level resource.
#[derive(Debug, Clone, Args)]
pub struct NamedDelete {
    #[command(flatten)]
    pub target: Named,
    /// Do not wait for the operation to finish.
    #[arg(long)]
    pub no_wait: bool,
}

/// `[-g RG]`: a list over one resource group, or over the whole subscription.
#[derive(Debug, Clone, Args)]
pub struct OptionalGroup {
    /// Resource group name; without it, the whole subscription.
    #[arg(short = 'g', long = "resource-group")]
    pub resource_group: Option<String>,
}

/// `-g RG`: a list over one resource group.
#[derive(Debug, Clone, Args)]
pub struct RequiredGroup {
    /// Resource group name.
    #[arg(short = 'g', long = "resource-group")]
    pub resource_group: String,
}

/// Parses az's boolean values (`true`/`false`, any case; `yes`/`no`/`1`/`0` too).
///
/// Flags such as `--allow-forwarded-traffic` are "three-state" in az: absent, bare (true), or
/// followed by a value. The resource modules declare them with
/// `num_args = 0..=1, default_missing_value = "true"` and this parser.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(format!("expected true or false, got {value:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("True"), Ok(true));
        assert_eq!(parse_bool("no"), Ok(false));
        assert!(parse_bool("maybe").is_err());
    }

    #[test]
    fn global_options_may_follow_the_subcommand() {
        let cli = Cli::try_parse_from([
            "vnet",
            "network",
            "vnet",
            "list",
            "-o",
            "table",
            "--server",
            "http://h:1",
        ])
        .unwrap();
        assert_eq!(cli.client.output, OutputFormat::Table);
        assert_eq!(cli.client.server, "http://h:1");
    }
}
