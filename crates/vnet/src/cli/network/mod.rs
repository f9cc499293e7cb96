//! `vnet network ...`: one module per Microsoft.Network resource type, each owning its
//! subcommands, request bodies and table columns.

mod local_gateway;
mod nic;
mod peering;
mod public_ip;
mod route_table;
mod subnet;
mod vnet;
mod vnet_gateway;
mod vpn_connection;
mod watcher;

use super::body;
use super::error::CliError;
use super::http::Wait;
use super::ids;
use super::output::Reply;
use super::table::TableStyle;
use super::Ctx;
use clap::Subcommand;
use serde_json::Value;

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Virtual networks, their subnets and peerings.
    #[command(subcommand)]
    Vnet(vnet::VnetCommand),
    /// Network interfaces.
    #[command(subcommand)]
    Nic(nic::NicCommand),
    /// Route tables and their routes.
    #[command(subcommand, name = "route-table")]
    RouteTable(route_table::RouteTableCommand),
    /// Public IP addresses.
    #[command(subcommand, name = "public-ip")]
    PublicIp(public_ip::PublicIpCommand),
    /// Virtual network (VPN) gateways.
    #[command(subcommand, name = "vnet-gateway")]
    VnetGateway(vnet_gateway::VnetGatewayCommand),
    /// Local network gateways: the on-premises side of a site-to-site VPN.
    #[command(subcommand, name = "local-gateway")]
    LocalGateway(local_gateway::LocalGatewayCommand),
    /// VPN connections between gateways.
    #[command(subcommand, name = "vpn-connection")]
    VpnConnection(vpn_connection::VpnConnectionCommand),
    /// Network diagnostics.
    #[command(subcommand)]
    Watcher(watcher::WatcherCommand),
}

pub fn run(ctx: &Ctx, cmd: NetworkCommand) -> Result<Reply, CliError> {
    match cmd {
        NetworkCommand::Vnet(cmd) => vnet::run(ctx, cmd),
        NetworkCommand::Nic(cmd) => nic::run(ctx, cmd),
        NetworkCommand::RouteTable(cmd) => route_table::run(ctx, cmd),
        NetworkCommand::PublicIp(cmd) => public_ip::run(ctx, cmd),
        NetworkCommand::VnetGateway(cmd) => vnet_gateway::run(ctx, cmd),
        NetworkCommand::LocalGateway(cmd) => local_gateway::run(ctx, cmd),
        NetworkCommand::VpnConnection(cmd) => vpn_connection::run(ctx, cmd),
        NetworkCommand::Watcher(cmd) => watcher::run(ctx, cmd),
    }
}

/// GET one resource by id.
fn show(ctx: &Ctx, id: &str, table: TableStyle) -> Result<Reply, CliError> {
    let value = ctx.client.get(&ids::network_url(id))?;
    Ok(Reply::value(Some(value), table))
}

/// PUT a body to an id and print the result.
fn put(
    ctx: &Ctx,
    id: &str,
    body: &Value,
    wait: Wait,
    table: TableStyle,
) -> Result<Reply, CliError> {
    let value = ctx.client.put(&ids::network_url(id), body, wait)?;
    Ok(Reply::value(value, table))
}

/// DELETE an id; nothing is printed.
fn delete(ctx: &Ctx, id: &str, no_wait: bool) -> Result<Reply, CliError> {
    ctx.client
        .delete(&ids::network_url(id), Wait::from_no_wait(no_wait))?;
    Ok(Reply::none())
}

/// List a collection URL.
fn list(ctx: &Ctx, url: &str, table: TableStyle) -> Result<Reply, CliError> {
    Ok(Reply::list(ctx.client.list(url)?, table))
}

/// A top-level collection: one group's, or the subscription's with no `-g`.
fn list_url(ctx: &Ctx, resource_group: Option<&str>, kind: &str) -> String {
    match resource_group {
        Some(rg) => ctx.scope(rg).list_url(kind),
        None => ids::list_all_url(&ctx.subscription, kind),
    }
}

/// az's generic update: GET, let `change` edit the body (wire shape, read-only fields already
/// removed), PUT it back.
fn update(
    ctx: &Ctx,
    id: &str,
    wait: Wait,
    table: TableStyle,
    change: impl FnOnce(&mut Value),
) -> Result<Reply, CliError> {
    let url = ids::network_url(id);
    let mut resource = body::for_update(ctx.client.get(&url)?);
    change(&mut resource);
    Ok(Reply::value(ctx.client.put(&url, &resource, wait)?, table))
}
