//! `vnet network local-gateway ...`: local network gateways, the on-premises end of a
//! site-to-site VPN (its public address and the prefixes behind it).

use super::{delete, list, put, show};
use crate::cli::args::{Named, NamedDelete, RequiredGroup};
use crate::cli::error::CliError;
use crate::cli::group::location_or_group;
use crate::cli::http::Wait;
use crate::cli::ids::kind;
use crate::cli::output::Reply;
use crate::cli::table::{Column, TableStyle};
use crate::cli::Ctx;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};
use std::net::IpAddr;

#[derive(Debug, Subcommand)]
pub enum LocalGatewayCommand {
    /// Create (or replace) a local network gateway.
    Create(CreateArgs),
    /// Show a local network gateway.
    Show(Named),
    /// List the local network gateways of a resource group.
    List(RequiredGroup),
    /// Delete a local network gateway.
    Delete(NamedDelete),
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub target: Named,
    /// Location; defaults to the resource group's.
    #[arg(short = 'l', long)]
    pub location: Option<String>,
    /// Public IP address of the on-premises VPN device.
    #[arg(long, value_name = "IP")]
    pub gateway_ip_address: IpAddr,
    /// Prefixes reachable behind the device.
    #[arg(long, num_args = 1.., value_name = "PREFIX")]
    pub local_address_prefixes: Vec<String>,
    /// The device's BGP autonomous system number.
    #[arg(long)]
    pub asn: Option<u32>,
    /// The device's BGP peering address (with --asn).
    #[arg(long, requires = "asn", value_name = "IP")]
    pub bgp_peering_address: Option<String>,
    /// Do not wait for the operation to finish.
    #[arg(long)]
    pub no_wait: bool,
}

static COLUMNS: &[Column] = &[
    Column::new("Name", "/name"),
    Column::new("ResourceGroup", "/resourceGroup"),
    Column::new("Location", "/location"),
    Column::new("GatewayIpAddress", "/gatewayIpAddress"),
    Column::new(
        "AddressPrefixes",
        "/localNetworkAddressSpace/addressPrefixes",
    ),
    Column::new("ProvisioningState", "/provisioningState"),
];
const TABLE: TableStyle = TableStyle::columns(COLUMNS);

pub fn run(ctx: &Ctx, cmd: LocalGatewayCommand) -> Result<Reply, CliError> {
    match cmd {
        LocalGatewayCommand::Create(args) => {
            let Named {
                resource_group,
                name,
            } = &args.target;
            let location = location_or_group(ctx, resource_group, args.location.as_deref())?;
            let body = create_body(&location, &args);
            let id = ctx.scope(resource_group).id(kind::LOCAL_GATEWAYS, name);
            put(ctx, &id, &body, Wait::from_no_wait(args.no_wait), TABLE)
        }
        LocalGatewayCommand::Show(t) => show(ctx, &lng_id(ctx, &t), TABLE),
        LocalGatewayCommand::List(g) => list(
            ctx,
            &ctx.scope(&g.resource_group).list_url(kind::LOCAL_GATEWAYS),
            TABLE,
        ),
        LocalGatewayCommand::Delete(d) => delete(ctx, &lng_id(ctx, &d.target), d.no_wait),
    }
}

fn lng_id(ctx: &Ctx, t: &Named) -> String {
    ctx.scope(&t.resource_group)
        .id(kind::LOCAL_GATEWAYS, &t.name)
}

/// The PUT body of `local-gateway create`.
fn create_body(location: &str, args: &CreateArgs) -> Value {
    let mut props = Map::new();
    props.insert(
        "gatewayIpAddress".into(),
        json!(args.gateway_ip_address.to_string()),
    );
    props.insert(
        "localNetworkAddressSpace".into(),
        json!({ "addressPrefixes": args.local_address_prefixes }),
    );
    if let Some(asn) = args.asn {
        let mut bgp = Map::new();
        bgp.insert("asn".into(), json!(asn));
        if let Some(addr) = &args.bgp_peering_address {
            bgp.insert("bgpPeeringAddress".into(), json!(addr));
        }
        props.insert("bgpSettings".into(), Value::Object(bgp));
    }
    json!({ "location": location, "properties": props })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::testing::{ctx, group, reply, run_line};

    #[test]
    fn create_body_in_wire_shape() {
        let (ctx, fake) = ctx(vec![
            reply(200, group("rg1", "westus")),
            reply(
                201,
                json!({"name": "onprem", "properties": {"provisioningState": "Succeeded"}}),
            ),
        ]);
        run_line(
            &ctx,
            "network local-gateway create -g rg1 -n onprem --gateway-ip-address 198.51.100.10 --local-address-prefixes 192.168.0.0/16 172.20.0.0/16 --asn 65050 --bgp-peering-address 192.168.255.1",
        )
        .unwrap();
        assert_eq!(
            fake.requests()[1].body,
            Some(json!({
                "location": "westus",
                "properties": {
                    "gatewayIpAddress": "198.51.100.10",
                    "localNetworkAddressSpace": {"addressPrefixes": ["192.168.0.0/16", "172.20.0.0/16"]},
                    "bgpSettings": {"asn": 65050, "bgpPeeringAddress": "192.168.255.1"}
                }
            }))
        );
    }

    #[test]
    fn table() {
        let (ctx, _fake) = ctx(vec![reply(
            200,
            json!({"value": [{
            "id": "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network/localNetworkGateways/onprem",
            "name": "onprem", "location": "westus",
            "properties": {"gatewayIpAddress": "198.51.100.10",
                           "localNetworkAddressSpace": {"addressPrefixes": ["192.168.0.0/16"]},
                           "provisioningState": "Succeeded"}}]}),
        )]);
        let out = run_line(&ctx, "network local-gateway list -g rg1 -o table").unwrap();
        assert_eq!(
            out.lines().nth(2).unwrap(),
            "onprem  rg1              westus      198.51.100.10       192.168.0.0/16     Succeeded"
        );
    }
}
