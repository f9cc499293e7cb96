//! `vnet network vnet ...`: virtual networks (and the `subnet` / `peering` subtrees).

use super::{delete, list, list_url, peering, put, show, subnet, update};
use crate::cli::args::{Named, NamedDelete, OptionalGroup};
use crate::cli::body;
use crate::cli::error::CliError;
use crate::cli::group::location_or_group;
use crate::cli::http::Wait;
use crate::cli::ids::{self, kind};
use crate::cli::output::Reply;
use crate::cli::table::{Cell, Column, TableStyle};
use crate::cli::Ctx;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

#[derive(Debug, Subcommand)]
pub enum VnetCommand {
    /// Create (or replace) a virtual network, optionally with one subnet.
    Create(CreateArgs),
    /// Change a virtual network's address space.
    Update(UpdateArgs),
    /// Show a virtual network.
    Show(Named),
    /// List virtual networks.
    List(OptionalGroup),
    /// Delete a virtual network.
    Delete(NamedDelete),
    /// Check whether a private IP address is free, and list free ones near it.
    CheckIpAddress(CheckIpArgs),
    /// Subnets of a virtual network.
    #[command(subcommand)]
    Subnet(subnet::SubnetCommand),
    /// Peerings between virtual networks.
    #[command(subcommand)]
    Peering(peering::PeeringCommand),
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub target: Named,
    /// Location; defaults to the resource group's.
    #[arg(short = 'l', long)]
    pub location: Option<String>,
    /// Address prefixes of the address space.
    #[arg(long, visible_alias = "address-prefix", num_args = 1.., default_value = "10.0.0.0/16", value_name = "PREFIX")]
    pub address_prefixes: Vec<String>,
    /// Name of a subnet to create with the network.
    #[arg(long)]
    pub subnet_name: Option<String>,
    /// Prefixes of that subnet (default 10.0.0.0/24).
    #[arg(long, num_args = 1.., requires = "subnet_name", value_name = "PREFIX")]
    pub subnet_prefixes: Vec<String>,
    /// Do not wait for the operation to finish.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Clone, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub target: Named,
    /// New address prefixes (replace the current address space).
    #[arg(long, visible_alias = "address-prefix", num_args = 1.., value_name = "PREFIX")]
    pub address_prefixes: Option<Vec<String>>,
    /// Do not wait for the operation to finish.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CheckIpArgs {
    #[command(flatten)]
    pub target: Named,
    /// The private IP address to check.
    #[arg(long, value_name = "IP")]
    pub ip_address: std::net::IpAddr,
}

static COLUMNS: &[Column] = &[
    Column::new("Name", "/name"),
    Column::new("ResourceGroup", "/resourceGroup"),
    Column::new("Location", "/location"),
    Column::with("NumSubnets", "/subnets", Cell::Count),
    Column::new("Prefixes", "/addressSpace/addressPrefixes"),
    Column::new("ProvisioningState", "/provisioningState"),
];
const TABLE: TableStyle = TableStyle::columns(COLUMNS);

pub fn run(ctx: &Ctx, cmd: VnetCommand) -> Result<Reply, CliError> {
    match cmd {
        VnetCommand::Create(args) => {
            let Named {
                resource_group,
                name,
            } = &args.target;
            let location = location_or_group(ctx, resource_group, args.location.as_deref())?;
            let subnet = args.subnet_name.as_deref().map(|s| {
                let prefixes = if args.subnet_prefixes.is_empty() {
                    vec!["10.0.0.0/24".to_owned()]
                } else {
                    args.subnet_prefixes.clone()
                };
                (s, prefixes)
            });
            let body = create_body(&location, &args.address_prefixes, subnet);
            let id = ctx.scope(resource_group).id(kind::VIRTUAL_NETWORKS, name);
            put(ctx, &id, &body, Wait::from_no_wait(args.no_wait), TABLE)
        }
        VnetCommand::Update(args) => {
            let id = ctx
                .scope(&args.target.resource_group)
                .id(kind::VIRTUAL_NETWORKS, &args.target.name);
            update(ctx, &id, Wait::from_no_wait(args.no_wait), TABLE, |vnet| {
                if let Some(prefixes) = args.address_prefixes {
                    body::properties_mut(vnet).insert(
                        "addressSpace".into(),
                        json!({ "addressPrefixes": prefixes }),
                    );
                }
            })
        }
        VnetCommand::Show(t) => {
            let id = ctx
                .scope(&t.resource_group)
                .id(kind::VIRTUAL_NETWORKS, &t.name);
            show(ctx, &id, TABLE)
        }
        VnetCommand::List(g) => list(
            ctx,
            &list_url(ctx, g.resource_group.as_deref(), kind::VIRTUAL_NETWORKS),
            TABLE,
        ),
        VnetCommand::Delete(d) => {
            let id = ctx
                .scope(&d.target.resource_group)
                .id(kind::VIRTUAL_NETWORKS, &d.target.name);
            delete(ctx, &id, d.no_wait)
        }
        VnetCommand::CheckIpAddress(args) => {
            let id = ctx
                .scope(&args.target.resource_group)
                .id(kind::VIRTUAL_NETWORKS, &args.target.name);
            let url = format!(
                "{}&ipAddress={}",
                ids::network_url(&format!("{id}/CheckIPAddressAvailability")),
                args.ip_address
            );
            Ok(Reply::value(Some(ctx.client.get(&url)?), TableStyle::Auto))
        }
        VnetCommand::Subnet(cmd) => subnet::run(ctx, cmd),
        VnetCommand::Peering(cmd) => peering::run(ctx, cmd),
    }
}

/// The PUT body of `vnet create`.
fn create_body(location: &str, prefixes: &[String], subnet: Option<(&str, Vec<String>)>) -> Value {
    let mut properties = Map::new();
    properties.insert(
        "addressSpace".into(),
        json!({ "addressPrefixes": prefixes }),
    );
    if let Some((name, prefixes)) = subnet {
        let mut subnet_props = Map::new();
        body::set_prefixes(&mut subnet_props, &prefixes);
        properties.insert(
            "subnets".into(),
            json!([{ "name": name, "properties": subnet_props }]),
        );
    }
    json!({ "location": location, "properties": properties })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::http::Method;
    use crate::cli::testing::{ctx, group, reply, reply_with, run_line};

    const HUB: &str =
        "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/hub";

    fn vnet_wire() -> Value {
        json!({
            "id": HUB, "name": "hub", "type": "Microsoft.Network/virtualNetworks", "location": "westus",
            "etag": "W/\"1\"",
            "properties": {
                "provisioningState": "Succeeded",
                "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                "subnets": [{"id": format!("{HUB}/subnets/default"), "name": "default", "etag": "W/\"1\"",
                             "properties": {"addressPrefix": "10.0.0.0/24", "provisioningState": "Succeeded"}}],
                "virtualNetworkPeerings": []
            }
        })
    }

    #[test]
    fn create_with_subnet_builds_the_wire_body() {
        let (ctx, fake) = ctx(vec![
            reply(200, group("rg1", "westus")),
            reply(201, vnet_wire()),
        ]);
        run_line(
            &ctx,
            "network vnet create -g rg1 -n hub --address-prefixes 10.0.0.0/16 10.1.0.0/16 --subnet-name default --subnet-prefixes 10.0.0.0/24",
        )
        .unwrap();
        let reqs = fake.requests();
        assert_eq!(reqs[1].method, Method::Put);
        assert_eq!(
            reqs[1].url,
            format!("http://vnet.test:7380{HUB}?api-version=2025-07-01")
        );
        assert_eq!(
            reqs[1].body,
            Some(json!({
                "location": "westus",
                "properties": {
                    "addressSpace": {"addressPrefixes": ["10.0.0.0/16", "10.1.0.0/16"]},
                    "subnets": [{"name": "default", "properties": {"addressPrefix": "10.0.0.0/24"}}]
                }
            }))
        );
    }

    #[test]
    fn create_defaults_like_az() {
        let body = create_body("westus", &["10.0.0.0/16".into()], None);
        assert_eq!(
            body,
            json!({"location": "westus", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}})
        );
        let (ctx, fake) = ctx(vec![reply(201, vnet_wire())]);
        run_line(
            &ctx,
            "network vnet create -g rg1 -n hub -l eastus --subnet-name s1",
        )
        .unwrap();
        assert_eq!(
            fake.requests()[0].body.as_ref().unwrap()["properties"]["subnets"][0],
            json!({"name": "s1", "properties": {"addressPrefix": "10.0.0.0/24"}})
        );
        assert_eq!(
            fake.requests()[0].body.as_ref().unwrap()["location"],
            "eastus"
        );
    }

    #[test]
    fn show_prints_the_az_shape() {
        let (ctx, _fake) = ctx(vec![reply(200, vnet_wire())]);
        let out = run_line(&ctx, "network vnet show -g rg1 -n hub").unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["addressSpace"]["addressPrefixes"], json!(["10.0.0.0/16"]));
        assert_eq!(v["subnets"][0]["addressPrefix"], "10.0.0.0/24");
        assert_eq!(v["resourceGroup"], "rg1");
    }

    #[test]
    fn update_keeps_subnets_and_drops_read_only_fields() {
        let (ctx, fake) = ctx(vec![reply(200, vnet_wire()), reply(200, vnet_wire())]);
        run_line(
            &ctx,
            "network vnet update -g rg1 -n hub --address-prefixes 10.0.0.0/16 10.9.0.0/16",
        )
        .unwrap();
        let put = &fake.requests()[1];
        assert_eq!(put.method, Method::Put);
        let body = put.body.as_ref().unwrap();
        assert_eq!(
            body["properties"]["addressSpace"]["addressPrefixes"],
            json!(["10.0.0.0/16", "10.9.0.0/16"])
        );
        assert_eq!(body["properties"]["subnets"][0]["name"], "default");
        assert!(body.get("etag").is_none());
        assert!(body["properties"].get("provisioningState").is_none());
    }

    #[test]
    fn list_without_group_is_subscription_wide_and_tables() {
        let (ctx, fake) = ctx(vec![reply(200, json!({"value": [vnet_wire()]}))]);
        let out = run_line(&ctx, "network vnet list -o table").unwrap();
        assert_eq!(
            fake.requests()[0].url,
            "http://vnet.test:7380/subscriptions/sub1/providers/Microsoft.Network/virtualNetworks?api-version=2025-07-01"
        );
        assert_eq!(
            out,
            "Name    ResourceGroup    Location    NumSubnets    Prefixes     ProvisioningState\n\
             ------  ---------------  ----------  ------------  -----------  -------------------\n\
             hub     rg1              westus      1             10.0.0.0/16  Succeeded\n"
        );
    }

    #[test]
    fn check_ip_address_is_a_get_with_the_address() {
        let (ctx, fake) = ctx(vec![reply(
            200,
            json!({"available": false, "availableIPAddresses": ["10.0.0.5", "10.0.0.6"]}),
        )]);
        let out = run_line(
            &ctx,
            "network vnet check-ip-address -g rg1 -n hub --ip-address 10.0.0.4 -o table",
        )
        .unwrap();
        assert_eq!(fake.requests()[0].method, Method::Get);
        assert_eq!(
            fake.requests()[0].url,
            format!("http://vnet.test:7380{HUB}/CheckIPAddressAvailability?api-version=2025-07-01&ipAddress=10.0.0.4")
        );
        assert_eq!(out, "Available\n-----------\nFalse\n");
    }

    #[test]
    fn delete_no_wait_sends_one_request() {
        let (ctx, fake) = ctx(vec![reply_with(202, &[("Location", "/op")], None)]);
        assert_eq!(
            run_line(&ctx, "network vnet delete -g rg1 -n hub --no-wait").unwrap(),
            ""
        );
        assert_eq!(fake.requests().len(), 1);
        assert_eq!(fake.requests()[0].method, Method::Delete);
    }
}
