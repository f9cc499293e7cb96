//! `vnet network vpn-connection ...`: gateway connections (site-to-site to a local network
//! gateway, or VNet-to-VNet between two gateways), and their pre-shared key.
//!
//! The shared key is write-only on the connection itself (never echoed by GET), so it has its
//! own `shared-key show/update/reset` commands on `…/connections/{name}/sharedkey`.

use super::{delete, list, put, show};
use crate::cli::args::{Named, NamedDelete, RequiredGroup};
use crate::cli::body;
use crate::cli::error::CliError;
use crate::cli::group::location_or_group;
use crate::cli::http::Wait;
use crate::cli::ids::{self, kind, Scope};
use crate::cli::output::Reply;
use crate::cli::table::{Column, TableStyle};
use crate::cli::Ctx;
use clap::{ArgGroup, Args, Subcommand};
use serde_json::{json, Map, Value};

#[derive(Debug, Subcommand)]
pub enum VpnConnectionCommand {
    /// Create (or replace) a VPN connection.
    Create(CreateArgs),
    /// Show a VPN connection.
    Show(Named),
    /// List the VPN connections of a resource group.
    List(RequiredGroup),
    /// Delete a VPN connection.
    Delete(NamedDelete),
    /// The connection's IPsec pre-shared key.
    #[command(subcommand, name = "shared-key")]
    SharedKey(SharedKeyCommand),
}

#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("remote").required(true).args(["local_gateway2", "vnet_gateway2"])))]
pub struct CreateArgs {
    #[command(flatten)]
    pub target: Named,
    /// Location; defaults to the resource group's.
    #[arg(short = 'l', long)]
    pub location: Option<String>,
    /// The Azure-side gateway (name or id).
    #[arg(long, value_name = "NAME|ID")]
    pub vnet_gateway1: String,
    /// The on-premises side: a local network gateway (site-to-site).
    #[arg(long, value_name = "NAME|ID")]
    pub local_gateway2: Option<String>,
    /// The other side: another VNet's gateway (VNet-to-VNet).
    #[arg(long, value_name = "NAME|ID")]
    pub vnet_gateway2: Option<String>,
    /// IPsec pre-shared key.
    #[arg(long)]
    pub shared_key: Option<String>,
    /// Exchange routes over BGP on this connection.
    #[arg(long)]
    pub enable_bgp: bool,
    /// Routing weight.
    #[arg(long)]
    pub routing_weight: Option<u32>,
    /// Do not wait for the operation to finish.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Subcommand)]
pub enum SharedKeyCommand {
    /// Show the pre-shared key.
    Show(ConnectionName),
    /// Set the pre-shared key.
    Update(SharedKeyUpdateArgs),
    /// Replace the pre-shared key by a random one of the given length.
    Reset(SharedKeyResetArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ConnectionName {
    /// Resource group name.
    #[arg(short = 'g', long = "resource-group")]
    pub resource_group: String,
    /// Connection name.
    #[arg(long)]
    pub connection_name: String,
}

impl ConnectionName {
    fn key_id(&self, ctx: &Ctx) -> String {
        let conn = ctx
            .scope(&self.resource_group)
            .id(kind::CONNECTIONS, &self.connection_name);
        format!("{conn}/sharedkey")
    }
}

#[derive(Debug, Clone, Args)]
pub struct SharedKeyUpdateArgs {
    #[command(flatten)]
    pub connection: ConnectionName,
    /// The new key.
    #[arg(long)]
    pub value: String,
    /// Do not wait for the operation to finish.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SharedKeyResetArgs {
    #[command(flatten)]
    pub connection: ConnectionName,
    /// Length of the new key (1-128).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=128))]
    pub key_length: u32,
    /// Do not wait for the operation to finish.
    #[arg(long)]
    pub no_wait: bool,
}

static COLUMNS: &[Column] = &[
    Column::new("Name", "/name"),
    Column::new("ResourceGroup", "/resourceGroup"),
    Column::new("Location", "/location"),
    Column::new("ConnectionType", "/connectionType"),
    Column::new("ConnectionStatus", "/connectionStatus"),
    Column::new("IngressBytes", "/ingressBytesTransferred"),
    Column::new("EgressBytes", "/egressBytesTransferred"),
    Column::new("ProvisioningState", "/provisioningState"),
];
const TABLE: TableStyle = TableStyle::columns(COLUMNS);

pub fn run(ctx: &Ctx, cmd: VpnConnectionCommand) -> Result<Reply, CliError> {
    match cmd {
        VpnConnectionCommand::Create(args) => {
            let Named {
                resource_group,
                name,
            } = &args.target;
            let scope = ctx.scope(resource_group);
            let location = location_or_group(ctx, resource_group, args.location.as_deref())?;
            let body = create_body(&scope, &location, &args);
            put(
                ctx,
                &scope.id(kind::CONNECTIONS, name),
                &body,
                Wait::from_no_wait(args.no_wait),
                TABLE,
            )
        }
        VpnConnectionCommand::Show(t) => show(ctx, &connection_id(ctx, &t), TABLE),
        VpnConnectionCommand::List(g) => list(
            ctx,
            &ctx.scope(&g.resource_group).list_url(kind::CONNECTIONS),
            TABLE,
        ),
        VpnConnectionCommand::Delete(d) => delete(ctx, &connection_id(ctx, &d.target), d.no_wait),
        VpnConnectionCommand::SharedKey(cmd) => run_shared_key(ctx, cmd),
    }
}

fn connection_id(ctx: &Ctx, t: &Named) -> String {
    ctx.scope(&t.resource_group).id(kind::CONNECTIONS, &t.name)
}

fn run_shared_key(ctx: &Ctx, cmd: SharedKeyCommand) -> Result<Reply, CliError> {
    match cmd {
        SharedKeyCommand::Show(c) => show(ctx, &c.key_id(ctx), TableStyle::Auto),
        SharedKeyCommand::Update(args) => put(
            ctx,
            &args.connection.key_id(ctx),
            &json!({ "value": args.value }),
            Wait::from_no_wait(args.no_wait),
            TableStyle::Auto,
        ),
        SharedKeyCommand::Reset(args) => {
            let url = ids::network_url(&format!("{}/reset", args.connection.key_id(ctx)));
            let value = ctx.client.post(
                &url,
                Some(&json!({ "keyLength": args.key_length })),
                Wait::from_no_wait(args.no_wait),
            )?;
            Ok(Reply::value(value, TableStyle::Auto))
        }
    }
}

/// The PUT body of `vpn-connection create`: IPsec to a local network gateway, or Vnet2Vnet.
fn create_body(scope: &Scope, location: &str, args: &CreateArgs) -> Value {
    let mut props = Map::new();
    props.insert(
        "virtualNetworkGateway1".into(),
        body::reference(&scope.resolve(kind::VNET_GATEWAYS, &args.vnet_gateway1)),
    );
    if let Some(lng) = &args.local_gateway2 {
        props.insert("connectionType".into(), json!("IPsec"));
        props.insert(
            "localNetworkGateway2".into(),
            body::reference(&scope.resolve(kind::LOCAL_GATEWAYS, lng)),
        );
    } else if let Some(gw2) = &args.vnet_gateway2 {
        props.insert("connectionType".into(), json!("Vnet2Vnet"));
        props.insert(
            "virtualNetworkGateway2".into(),
            body::reference(&scope.resolve(kind::VNET_GATEWAYS, gw2)),
        );
    }
    if let Some(key) = &args.shared_key {
        props.insert("sharedKey".into(), json!(key));
    }
    props.insert("enableBgp".into(), json!(args.enable_bgp));
    if let Some(weight) = args.routing_weight {
        props.insert("routingWeight".into(), json!(weight));
    }
    json!({ "location": location, "properties": props })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::http::Method;
    use crate::cli::testing::{ctx, reply, reply_with, run_line};

    const RG: &str = "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network";

    #[test]
    fn site_to_site_body() {
        let (ctx, fake) = ctx(vec![reply(
            201,
            json!({"name": "s2s", "properties": {"provisioningState": "Succeeded"}}),
        )]);
        run_line(
            &ctx,
            "network vpn-connection create -g rg1 -n s2s -l westus --vnet-gateway1 gw --local-gateway2 onprem --shared-key abc123",
        )
        .unwrap();
        assert_eq!(
            fake.requests()[0].body,
            Some(json!({
                "location": "westus",
                "properties": {
                    "virtualNetworkGateway1": {"id": format!("{RG}/virtualNetworkGateways/gw")},
                    "connectionType": "IPsec",
                    "localNetworkGateway2": {"id": format!("{RG}/localNetworkGateways/onprem")},
                    "sharedKey": "abc123",
                    "enableBgp": false
                }
            }))
        );
    }

    #[test]
    fn vnet_to_vnet_body() {
        let (ctx, fake) = ctx(vec![reply(201, json!({"name": "v2v"}))]);
        run_line(
            &ctx,
            "network vpn-connection create -g rg1 -n v2v -l westus --vnet-gateway1 gw --vnet-gateway2 gw2 --enable-bgp --routing-weight 10",
        )
        .unwrap();
        let props = fake.requests()[0].body.clone().unwrap()["properties"].clone();
        assert_eq!(props["connectionType"], "Vnet2Vnet");
        assert_eq!(
            props["virtualNetworkGateway2"]["id"],
            format!("{RG}/virtualNetworkGateways/gw2")
        );
        assert_eq!(props["enableBgp"], true);
        assert_eq!(props["routingWeight"], 10);
        assert!(props.get("sharedKey").is_none());
    }

    #[test]
    fn a_remote_side_is_required() {
        use crate::cli::args::Cli;
        use clap::Parser;
        let err = Cli::try_parse_from([
            "vnet",
            "network",
            "vpn-connection",
            "create",
            "-g",
            "rg1",
            "-n",
            "c",
            "--vnet-gateway1",
            "gw",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let err = Cli::try_parse_from([
            "vnet",
            "network",
            "vpn-connection",
            "create",
            "-g",
            "rg1",
            "-n",
            "c",
            "--vnet-gateway1",
            "gw",
            "--local-gateway2",
            "a",
            "--vnet-gateway2",
            "b",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn shared_key_show_update_reset() {
        let key_url =
            format!("http://vnet.test:7380{RG}/connections/s2s/sharedkey?api-version=2025-07-01");
        let (ctx, fake) = ctx(vec![
            reply(200, json!({"value": "abc123"})),
            reply(200, json!({"value": "new"})),
            reply_with(202, &[("Location", "/subscriptions/sub1/op/1")], None),
            reply(200, json!({"keyLength": 64})),
        ]);
        let out = run_line(
            &ctx,
            "network vpn-connection shared-key show -g rg1 --connection-name s2s -o table",
        )
        .unwrap();
        assert_eq!(out, "Value\n-------\nabc123\n");
        run_line(
            &ctx,
            "network vpn-connection shared-key update -g rg1 --connection-name s2s --value new",
        )
        .unwrap();
        let out = run_line(
            &ctx,
            "network vpn-connection shared-key reset -g rg1 --connection-name s2s --key-length 64",
        )
        .unwrap();
        assert_eq!(out, "{\n  \"keyLength\": 64\n}\n");
        let reqs = fake.requests();
        assert_eq!(reqs[0].url, key_url);
        assert_eq!(
            (reqs[1].method, reqs[1].url.as_str()),
            (Method::Put, key_url.as_str())
        );
        assert_eq!(reqs[1].body, Some(json!({"value": "new"})));
        assert_eq!(reqs[2].method, Method::Post);
        assert_eq!(
            reqs[2].url,
            format!(
                "http://vnet.test:7380{RG}/connections/s2s/sharedkey/reset?api-version=2025-07-01"
            )
        );
        assert_eq!(reqs[2].body, Some(json!({"keyLength": 64})));
    }

    #[test]
    fn key_length_is_bounded() {
        use crate::cli::args::Cli;
        use clap::Parser;
        assert!(Cli::try_parse_from([
            "vnet",
            "network",
            "vpn-connection",
            "shared-key",
            "reset",
            "-g",
            "r",
            "--connection-name",
            "c",
            "--key-length",
            "0",
        ])
        .is_err());
    }
}
