//! `vnet network route-table ...`: route tables and (under `route`) their user-defined routes.

use super::{delete, list, list_url, put, show, update};
use crate::cli::args::{parse_bool, Named, NamedDelete, OptionalGroup};
use crate::cli::body;
use crate::cli::error::CliError;
use crate::cli::group::location_or_group;
use crate::cli::http::Wait;
use crate::cli::ids::{self, kind};
use crate::cli::output::Reply;
use crate::cli::table::{Cell, Column, TableStyle};
use crate::cli::Ctx;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};

#[derive(Debug, Subcommand)]
pub enum RouteTableCommand {
    /// Create (or replace) a route table.
    Create(CreateArgs),
    /// Change a route table's options.
    Update(UpdateArgs),
    /// Show a route table.
    Show(Named),
    /// List route tables.
    List(OptionalGroup),
    /// Delete a route table.
    Delete(NamedDelete),
    /// Routes of a route table.
    #[command(subcommand)]
    Route(RouteCommand),
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub target: Named,
    /// Location; defaults to the resource group's.
    #[arg(short = 'l', long)]
    pub location: Option<String>,
    /// Keep routes learned by gateways (BGP and local network gateways) out of the subnets.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool, value_name = "BOOL")]
    pub disable_bgp_route_propagation: Option<bool>,
    /// Do not wait for the operation to finish.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Clone, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub target: Named,
    /// Keep routes learned by gateways out of the subnets.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool, value_name = "BOOL")]
    pub disable_bgp_route_propagation: Option<bool>,
    /// Do not wait for the operation to finish.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// Create (or replace) a route.
    Create(RouteCreateArgs),
    /// Show a route.
    Show(RouteName),
    /// List the routes of a route table.
    List(TableName),
    /// Delete a route.
    Delete(RouteDeleteArgs),
}

#[derive(Debug, Clone, Args)]
pub struct TableName {
    /// Resource group name.
    #[arg(short = 'g', long = "resource-group")]
    pub resource_group: String,
    /// Route table name.
    #[arg(long)]
    pub route_table_name: String,
}

#[derive(Debug, Clone, Args)]
pub struct RouteName {
    #[command(flatten)]
    pub table: TableName,
    /// Route name.
    #[arg(short = 'n', long)]
    pub name: String,
}

impl RouteName {
    fn id(&self, ctx: &Ctx) -> String {
        let table = ctx
            .scope(&self.table.resource_group)
            .id(kind::ROUTE_TABLES, &self.table.route_table_name);
        ids::child(&table, kind::ROUTES, &self.name)
    }
}

/// `RouteNextHopType` values a user-defined route may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NextHopType {
    #[value(name = "VirtualNetworkGateway")]
    VirtualNetworkGateway,
    #[value(name = "VnetLocal")]
    VnetLocal,
    #[value(name = "Internet")]
    Internet,
    #[value(name = "VirtualAppliance")]
    VirtualAppliance,
    #[value(name = "None")]
    None,
}

impl NextHopType {
    fn wire(self) -> &'static str {
        match self {
            NextHopType::VirtualNetworkGateway => "VirtualNetworkGateway",
            NextHopType::VnetLocal => "VnetLocal",
            NextHopType::Internet => "Internet",
            NextHopType::VirtualAppliance => "VirtualAppliance",
            NextHopType::None => "None",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct RouteCreateArgs {
    #[command(flatten)]
    pub target: RouteName,
    /// Destination prefix (CIDR).
    #[arg(long, value_name = "PREFIX")]
    pub address_prefix: String,
    /// Where matching traffic goes.
    #[arg(long, value_enum, ignore_case = true)]
    pub next_hop_type: NextHopType,
    /// The appliance's IP (with --next-hop-type VirtualAppliance).
    #[arg(long, value_name = "IP")]
    pub next_hop_ip_address: Option<String>,
    /// Do not wait for the operation to finish.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RouteDeleteArgs {
    #[command(flatten)]
    pub target: RouteName,
    /// Do not wait for the operation to finish.
    #[arg(long)]
    pub no_wait: bool,
}

static COLUMNS: &[Column] = &[
    Column::new("Name", "/name"),
    Column::new("ResourceGroup", "/resourceGroup"),
    Column::new("Location", "/location"),
    Column::new("DisableBgpRoutePropagation", "/disableBgpRoutePropagation"),
    Column::with("Routes", "/routes", Cell::Count),
    Column::with("Subnets", "/subnets", Cell::Count),
    Column::new("ProvisioningState", "/provisioningState"),
];
const TABLE: TableStyle = TableStyle::columns(COLUMNS);

static ROUTE_COLUMNS: &[Column] = &[
    Column::new("Name", "/name"),
    Column::new("ResourceGroup", "/resourceGroup"),
    Column::new("AddressPrefix", "/addressPrefix"),
    Column::new("NextHopType", "/nextHopType"),
    Column::new("NextHopIpAddress", "/nextHopIpAddress"),
    Column::new("ProvisioningState", "/provisioningState"),
];
const ROUTE_TABLE: TableStyle = TableStyle::columns(ROUTE_COLUMNS);

pub fn run(ctx: &Ctx, cmd: RouteTableCommand) -> Result<Reply, CliError> {
    match cmd {
        RouteTableCommand::Create(args) => {
            let Named {
                resource_group,
                name,
            } = &args.target;
            let location = location_or_group(ctx, resource_group, args.location.as_deref())?;
            let body = json!({
                "location": location,
                "properties": {
                    "disableBgpRoutePropagation": args.disable_bgp_route_propagation.unwrap_or(false)
                }
            });
            let id = ctx.scope(resource_group).id(kind::ROUTE_TABLES, name);
            put(ctx, &id, &body, Wait::from_no_wait(args.no_wait), TABLE)
        }
        RouteTableCommand::Update(args) => {
            let id = table_id(ctx, &args.target);
            update(ctx, &id, Wait::from_no_wait(args.no_wait), TABLE, |rt| {
                if let Some(disable) = args.disable_bgp_route_propagation {
                    body::properties_mut(rt)
                        .insert("disableBgpRoutePropagation".into(), json!(disable));
                }
            })
        }
        RouteTableCommand::Show(t) => show(ctx, &table_id(ctx, &t), TABLE),
        RouteTableCommand::List(g) => list(
            ctx,
            &list_url(ctx, g.resource_group.as_deref(), kind::ROUTE_TABLES),
            TABLE,
        ),
        RouteTableCommand::Delete(d) => delete(ctx, &table_id(ctx, &d.target), d.no_wait),
        RouteTableCommand::Route(cmd) => run_route(ctx, cmd),
    }
}

fn table_id(ctx: &Ctx, t: &Named) -> String {
    ctx.scope(&t.resource_group).id(kind::ROUTE_TABLES, &t.name)
}

fn run_route(ctx: &Ctx, cmd: RouteCommand) -> Result<Reply, CliError> {
    match cmd {
        RouteCommand::Create(args) => {
            let body = route_body(&args);
            put(
                ctx,
                &args.target.id(ctx),
                &body,
                Wait::from_no_wait(args.no_wait),
                ROUTE_TABLE,
            )
        }
        RouteCommand::Show(target) => show(ctx, &target.id(ctx), ROUTE_TABLE),
        RouteCommand::List(table) => {
            let id = ctx
                .scope(&table.resource_group)
                .id(kind::ROUTE_TABLES, &table.route_table_name);
            list(
                ctx,
                &ids::network_url(&ids::collection(&id, kind::ROUTES)),
                ROUTE_TABLE,
            )
        }
        RouteCommand::Delete(args) => delete(ctx, &args.target.id(ctx), args.no_wait),
    }
}

/// The PUT body of `route create`.
fn route_body(args: &RouteCreateArgs) -> Value {
    let mut props = Map::new();
    props.insert("addressPrefix".into(), json!(args.address_prefix));
    props.insert("nextHopType".into(), json!(args.next_hop_type.wire()));
    if let Some(ip) = &args.next_hop_ip_address {
        props.insert("nextHopIpAddress".into(), json!(ip));
    }
    json!({ "properties": props })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::http::Method;
    use crate::cli::testing::{ctx, group, reply, run_line};

    const RT: &str =
        "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network/routeTables/rt1";

    fn route_wire() -> Value {
        json!({"id": format!("{RT}/routes/default"), "name": "default",
               "properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance",
                              "nextHopIpAddress": "10.0.2.4", "provisioningState": "Succeeded"}})
    }

    #[test]
    fn create_table_with_propagation_disabled() {
        let (ctx, fake) = ctx(vec![
            reply(200, group("rg1", "westus")),
            reply(
                201,
                json!({"id": RT, "name": "rt1", "location": "westus", "properties": {}}),
            ),
        ]);
        run_line(
            &ctx,
            "network route-table create -g rg1 -n rt1 --disable-bgp-route-propagation",
        )
        .unwrap();
        assert_eq!(
            fake.requests()[1].body,
            Some(json!({"location": "westus", "properties": {"disableBgpRoutePropagation": true}}))
        );
    }

    #[test]
    fn create_route_normalises_the_next_hop_type() {
        let (ctx, fake) = ctx(vec![reply(201, route_wire())]);
        run_line(
            &ctx,
            "network route-table route create -g rg1 --route-table-name rt1 -n default --address-prefix 0.0.0.0/0 --next-hop-type virtualappliance --next-hop-ip-address 10.0.2.4",
        )
        .unwrap();
        let req = &fake.requests()[0];
        assert_eq!(req.method, Method::Put);
        assert_eq!(
            req.url,
            format!("http://vnet.test:7380{RT}/routes/default?api-version=2025-07-01")
        );
        assert_eq!(
            req.body,
            Some(
                json!({"properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.0.2.4"}})
            )
        );
    }

    #[test]
    fn route_list_table() {
        let (ctx, fake) = ctx(vec![reply(200, json!({"value": [route_wire()]}))]);
        let out = run_line(
            &ctx,
            "network route-table route list -g rg1 --route-table-name rt1 -o table",
        )
        .unwrap();
        assert_eq!(
            fake.requests()[0].url,
            format!("http://vnet.test:7380{RT}/routes?api-version=2025-07-01")
        );
        assert_eq!(
            out.lines().nth(2).unwrap(),
            "default  rg1              0.0.0.0/0        VirtualAppliance  10.0.2.4            Succeeded"
        );
    }

    #[test]
    fn update_toggles_propagation() {
        let wire = json!({"id": RT, "name": "rt1", "location": "westus",
                          "properties": {"disableBgpRoutePropagation": false, "routes": [route_wire()]}});
        let (ctx, fake) = ctx(vec![reply(200, wire.clone()), reply(200, wire)]);
        run_line(
            &ctx,
            "network route-table update -g rg1 -n rt1 --disable-bgp-route-propagation true",
        )
        .unwrap();
        let body = fake.requests()[1].body.clone().unwrap();
        assert_eq!(body["properties"]["disableBgpRoutePropagation"], true);
        assert_eq!(body["properties"]["routes"][0]["name"], "default");
    }
}
