//! `vnet network vnet subnet ...`: subnets, managed as child resources (so that creating one
//! never rewrites the VNet's other subnets).

use super::{delete, list, put, show, update};
use crate::cli::body;
use crate::cli::error::CliError;
use crate::cli::http::Wait;
use crate::cli::ids::{self, kind, Scope};
use crate::cli::output::Reply;
use crate::cli::table::{Cell, Column, TableStyle};
use crate::cli::Ctx;
use clap::{Args, Subcommand};
use serde_json::{Map, Value};

#[derive(Debug, Subcommand)]
pub enum SubnetCommand {
    /// Create (or replace) a subnet.
    Create(CreateArgs),
    /// Change a subnet's prefixes or route table.
    Update(UpdateArgs),
    /// Show a subnet.
    Show(SubnetName),
    /// List the subnets of a virtual network.
    List(VnetName),
    /// Delete a subnet.
    Delete(DeleteArgs),
}

/// `-g RG --vnet-name VNET`.
#[derive(Debug, Clone, Args)]
pub struct VnetName {
    /// Resource group name.
    #[arg(short = 'g', long = "resource-group")]
    pub resource_group: String,
    /// Virtual network name.
    #[arg(long)]
    pub vnet_name: String,
}

/// `-g RG --vnet-name VNET -n SUBNET`.
#[derive(Debug, Clone, Args)]
pub struct SubnetName {
    #[command(flatten)]
    pub vnet: VnetName,
    /// Subnet name.
    #[arg(short = 'n', long)]
    pub name: String,
}

impl SubnetName {
    fn id(&self, ctx: &Ctx) -> String {
        let scope = ctx.scope(&self.vnet.resource_group);
        ids::child(
            &scope.id(kind::VIRTUAL_NETWORKS, &self.vnet.vnet_name),
            kind::SUBNETS,
            &self.name,
        )
    }
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub target: SubnetName,
    /// Address prefixes of the subnet.
    #[arg(long, visible_alias = "address-prefix", num_args = 1.., required = true, value_name = "PREFIX")]
    pub address_prefixes: Vec<String>,
    /// Route table (name or id) to associate.
    #[arg(long, value_name = "NAME|ID")]
    pub route_table: Option<String>,
    /// Do not wait for the operation to finish.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Clone, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub target: SubnetName,
    /// New address prefixes.
    #[arg(long, visible_alias = "address-prefix", num_args = 1.., value_name = "PREFIX")]
    pub address_prefixes: Option<Vec<String>>,
    /// Route table (name or id) to associate; "" removes the association.
    #[arg(long, value_name = "NAME|ID")]
    pub route_table: Option<String>,
    /// Do not wait for the operation to finish.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub target: SubnetName,
    /// Do not wait for the operation to finish.
    #[arg(long)]
    pub no_wait: bool,
}

static COLUMNS: &[Column] = &[
    Column::new("Name", "/name"),
    Column::new("ResourceGroup", "/resourceGroup"),
    Column::new("AddressPrefix", "/addressPrefix"),
    Column::new("AddressPrefixes", "/addressPrefixes"),
    Column::with("RouteTable", "/routeTable", Cell::Name),
    Column::new("ProvisioningState", "/provisioningState"),
];
const TABLE: TableStyle = TableStyle::columns(COLUMNS);

pub fn run(ctx: &Ctx, cmd: SubnetCommand) -> Result<Reply, CliError> {
    match cmd {
        SubnetCommand::Create(args) => {
            let scope = ctx.scope(&args.target.vnet.resource_group);
            let body = create_body(&scope, &args.address_prefixes, args.route_table.as_deref());
            put(
                ctx,
                &args.target.id(ctx),
                &body,
                Wait::from_no_wait(args.no_wait),
                TABLE,
            )
        }
        SubnetCommand::Update(args) => {
            let scope = ctx.scope(&args.target.vnet.resource_group);
            let route_table = args
                .route_table
                .as_deref()
                .map(|rt| (!rt.is_empty()).then(|| scope.resolve(kind::ROUTE_TABLES, rt)));
            update(
                ctx,
                &args.target.id(ctx),
                Wait::from_no_wait(args.no_wait),
                TABLE,
                |subnet| {
                    let props = body::properties_mut(subnet);
                    if let Some(prefixes) = &args.address_prefixes {
                        body::set_prefixes(props, prefixes);
                    }
                    match route_table {
                        Some(Some(id)) => {
                            props.insert("routeTable".into(), body::reference(&id));
                        }
                        Some(None) => {
                            props.remove("routeTable");
                        }
                        None => {}
                    }
                },
            )
        }
        SubnetCommand::Show(target) => show(ctx, &target.id(ctx), TABLE),
        SubnetCommand::List(vnet) => {
            let scope = ctx.scope(&vnet.resource_group);
            let vnet_id = scope.id(kind::VIRTUAL_NETWORKS, &vnet.vnet_name);
            list(
                ctx,
                &ids::network_url(&ids::collection(&vnet_id, kind::SUBNETS)),
                TABLE,
            )
        }
        SubnetCommand::Delete(args) => delete(ctx, &args.target.id(ctx), args.no_wait),
    }
}

/// The PUT body of `subnet create`.
fn create_body(scope: &Scope, prefixes: &[String], route_table: Option<&str>) -> Value {
    let mut props = Map::new();
    body::set_prefixes(&mut props, prefixes);
    if let Some(rt) = route_table {
        props.insert(
            "routeTable".into(),
            body::reference(&scope.resolve(kind::ROUTE_TABLES, rt)),
        );
    }
    serde_json::json!({ "properties": props })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::http::Method;
    use crate::cli::testing::{ctx, reply, run_args, run_line};
    use serde_json::json;

    const VNET: &str =
        "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/hub";

    fn subnet_wire() -> Value {
        json!({
            "id": format!("{VNET}/subnets/app"), "name": "app", "etag": "W/\"2\"",
            "properties": {
                "addressPrefix": "10.0.1.0/24", "provisioningState": "Succeeded",
                "routeTable": {"id": "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network/routeTables/rt1"},
                "ipConfigurations": [{"id": "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network/networkInterfaces/n/ipConfigurations/ipconfig1"}]
            }
        })
    }

    #[test]
    fn create_with_route_table_name() {
        let (ctx, fake) = ctx(vec![reply(201, subnet_wire())]);
        run_line(
            &ctx,
            "network vnet subnet create -g rg1 --vnet-name hub -n app --address-prefixes 10.0.1.0/24 --route-table rt1",
        )
        .unwrap();
        let req = &fake.requests()[0];
        assert_eq!(
            req.url,
            format!("http://vnet.test:7380{VNET}/subnets/app?api-version=2025-07-01")
        );
        assert_eq!(
            req.body,
            Some(json!({"properties": {
                "addressPrefix": "10.0.1.0/24",
                "routeTable": {"id": "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network/routeTables/rt1"}
            }}))
        );
    }

    #[test]
    fn create_with_two_prefixes_and_route_table_id() {
        let scope = Scope::new("sub1", "rg1");
        let body = create_body(
            &scope,
            &["10.0.1.0/24".into(), "10.0.2.0/24".into()],
            Some("/subscriptions/x/resourceGroups/y/providers/Microsoft.Network/routeTables/z"),
        );
        assert_eq!(
            body,
            json!({"properties": {
                "addressPrefixes": ["10.0.1.0/24", "10.0.2.0/24"],
                "routeTable": {"id": "/subscriptions/x/resourceGroups/y/providers/Microsoft.Network/routeTables/z"}
            }})
        );
    }

    #[test]
    fn update_with_empty_route_table_detaches_it() {
        let (ctx, fake) = ctx(vec![reply(200, subnet_wire()), reply(200, subnet_wire())]);
        run_args(
            &ctx,
            &[
                "network",
                "vnet",
                "subnet",
                "update",
                "-g",
                "rg1",
                "--vnet-name",
                "hub",
                "-n",
                "app",
                "--address-prefixes",
                "10.0.1.0/25",
                "--route-table",
                "",
            ],
        )
        .unwrap();
        let put = &fake.requests()[1];
        assert_eq!(put.method, Method::Put);
        let props = put.body.clone().unwrap()["properties"].clone();
        assert_eq!(props["addressPrefix"], "10.0.1.0/25");
        assert!(props.get("routeTable").is_none());
        assert!(props.get("provisioningState").is_none());
        assert_eq!(
            props["ipConfigurations"][0]["id"],
            subnet_wire()["properties"]["ipConfigurations"][0]["id"]
        );
    }

    #[test]
    fn list_and_table() {
        let (ctx, fake) = ctx(vec![reply(200, json!({"value": [subnet_wire()]}))]);
        let out = run_line(
            &ctx,
            "network vnet subnet list -g rg1 --vnet-name hub -o table",
        )
        .unwrap();
        assert_eq!(
            fake.requests()[0].url,
            format!("http://vnet.test:7380{VNET}/subnets?api-version=2025-07-01")
        );
        assert_eq!(
            out,
            "Name    ResourceGroup    AddressPrefix    AddressPrefixes    RouteTable    ProvisioningState\n\
             ------  ---------------  ---------------  -----------------  ------------  -------------------\n\
             app     rg1              10.0.1.0/24                         rt1           Succeeded\n"
        );
    }
}
