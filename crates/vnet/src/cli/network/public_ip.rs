//! `vnet network public-ip ...`: public IP addresses (allocated by the server from its
//! `--public-ip-pool` ranges), used by VPN gateways and NICs.

use super::{delete, list, list_url, put, show};
use crate::cli::args::{Named, NamedDelete, OptionalGroup};
use crate::cli::error::CliError;
use crate::cli::group::location_or_group;
use crate::cli::http::Wait;
use crate::cli::ids::kind;
use crate::cli::output::Reply;
use crate::cli::table::{Column, TableStyle};
use crate::cli::Ctx;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};

#[derive(Debug, Subcommand)]
pub enum PublicIpCommand {
    /// Create (or replace) a public IP address.
    Create(CreateArgs),
    /// Show a public IP address.
    Show(Named),
    /// List public IP addresses.
    List(OptionalGroup),
    /// Delete a public IP address.
    Delete(NamedDelete),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Sku {
    #[value(name = "Basic")]
    Basic,
    #[value(name = "Standard")]
    Standard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AllocationMethod {
    #[value(name = "Static")]
    Static,
    #[value(name = "Dynamic")]
    Dynamic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IpVersion {
    #[value(name = "IPv4")]
    IPv4,
    #[value(name = "IPv6")]
    IPv6,
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub target: Named,
    /// Location; defaults to the resource group's.
    #[arg(short = 'l', long)]
    pub location: Option<String>,
    /// SKU.
    #[arg(long, value_enum, ignore_case = true, default_value = "Standard")]
    pub sku: Sku,
    /// Allocation method (default: Static for Standard, Dynamic for Basic).
    #[arg(long, value_enum, ignore_case = true)]
    pub allocation_method: Option<AllocationMethod>,
    /// IP version.
    #[arg(long, value_enum, ignore_case = true, default_value = "IPv4")]
    pub version: IpVersion,
    /// Do not wait for the operation to finish.
    #[arg(long)]
    pub no_wait: bool,
}

static COLUMNS: &[Column] = &[
    Column::new("Name", "/name"),
    Column::new("ResourceGroup", "/resourceGroup"),
    Column::new("Location", "/location"),
    Column::new("Address", "/ipAddress"),
    Column::new("AllocationMethod", "/publicIPAllocationMethod"),
    Column::new("Sku", "/sku/name"),
    Column::new("ProvisioningState", "/provisioningState"),
];
const TABLE: TableStyle = TableStyle::columns(COLUMNS);

pub fn run(ctx: &Ctx, cmd: PublicIpCommand) -> Result<Reply, CliError> {
    match cmd {
        PublicIpCommand::Create(args) => {
            let Named {
                resource_group,
                name,
            } = &args.target;
            let location = location_or_group(ctx, resource_group, args.location.as_deref())?;
            let body = create_body(&location, &args);
            let id = ctx.scope(resource_group).id(kind::PUBLIC_IPS, name);
            put(ctx, &id, &body, Wait::from_no_wait(args.no_wait), TABLE)
        }
        PublicIpCommand::Show(t) => show(ctx, &ip_id(ctx, &t), TABLE),
        PublicIpCommand::List(g) => list(
            ctx,
            &list_url(ctx, g.resource_group.as_deref(), kind::PUBLIC_IPS),
            TABLE,
        ),
        PublicIpCommand::Delete(d) => delete(ctx, &ip_id(ctx, &d.target), d.no_wait),
    }
}

fn ip_id(ctx: &Ctx, t: &Named) -> String {
    ctx.scope(&t.resource_group).id(kind::PUBLIC_IPS, &t.name)
}

/// The PUT body of `public-ip create`.
fn create_body(location: &str, args: &CreateArgs) -> Value {
    let (sku, default_method) = match args.sku {
        Sku::Basic => ("Basic", AllocationMethod::Dynamic),
        Sku::Standard => ("Standard", AllocationMethod::Static),
    };
    let method = match args.allocation_method.unwrap_or(default_method) {
        AllocationMethod::Static => "Static",
        AllocationMethod::Dynamic => "Dynamic",
    };
    let version = match args.version {
        IpVersion::IPv4 => "IPv4",
        IpVersion::IPv6 => "IPv6",
    };
    json!({
        "location": location,
        "sku": { "name": sku },
        "properties": {
            "publicIPAllocationMethod": method,
            "publicIPAddressVersion": version
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::testing::{ctx, reply, run_line};

    fn pip_wire() -> Value {
        json!({"id": "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/gw-ip",
               "name": "gw-ip", "location": "westus", "sku": {"name": "Standard", "tier": "Regional"},
               "properties": {"ipAddress": "203.0.113.7", "publicIPAllocationMethod": "Static", "provisioningState": "Succeeded"}})
    }

    #[test]
    fn create_defaults_to_standard_static_ipv4() {
        let (ctx, fake) = ctx(vec![reply(201, pip_wire())]);
        run_line(&ctx, "network public-ip create -g rg1 -n gw-ip -l westus").unwrap();
        assert_eq!(
            fake.requests()[0].body,
            Some(json!({"location": "westus", "sku": {"name": "Standard"},
                        "properties": {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4"}}))
        );
    }

    #[test]
    fn basic_defaults_to_dynamic() {
        let (ctx, fake) = ctx(vec![reply(201, pip_wire())]);
        run_line(
            &ctx,
            "network public-ip create -g rg1 -n gw-ip -l westus --sku basic",
        )
        .unwrap();
        let body = fake.requests()[0].body.clone().unwrap();
        assert_eq!(body["sku"]["name"], "Basic");
        assert_eq!(body["properties"]["publicIPAllocationMethod"], "Dynamic");
    }

    #[test]
    fn table_shows_the_address() {
        let (ctx, _fake) = ctx(vec![reply(200, pip_wire())]);
        let out = run_line(&ctx, "network public-ip show -g rg1 -n gw-ip -o table").unwrap();
        assert_eq!(
            out.lines().nth(2).unwrap(),
            "gw-ip   rg1              westus      203.0.113.7  Static              Standard  Succeeded"
        );
    }
}
