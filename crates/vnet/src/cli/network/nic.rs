//! `vnet network nic ...`: network interfaces, and their effective route table.

use super::{delete, list, list_url, put, show};
use crate::cli::args::{parse_bool, Named, NamedDelete, OptionalGroup};
use crate::cli::body;
use crate::cli::error::CliError;
use crate::cli::group::location_or_group;
use crate::cli::http::Wait;
use crate::cli::ids::{self, kind, Scope};
use crate::cli::output::Reply;
use crate::cli::table::{Cell, Column, TableStyle};
use crate::cli::Ctx;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};
use std::net::IpAddr;

#[derive(Debug, Subcommand)]
pub enum NicCommand {
    /// Create (or replace) a network interface in a subnet.
    Create(CreateArgs),
    /// Show a network interface.
    Show(Named),
    /// List network interfaces.
    List(OptionalGroup),
    /// Delete a network interface.
    Delete(NamedDelete),
    /// Show the routes in effect for a network interface.
    ShowEffectiveRouteTable(Named),
    /// Attach the NIC to an existing network namespace (a container's) on the server's host.
    Attach(crate::cli::vm::NicAttachArgs),
    /// Detach the NIC from its namespace (the interface disappears there).
    Detach(Named),
    /// Capture the NIC's packets (both directions) into a pcap file.
    Capture(crate::cli::vm::NicCaptureArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub target: Named,
    /// Location; defaults to the resource group's.
    #[arg(short = 'l', long)]
    pub location: Option<String>,
    /// The subnet's virtual network (needed when --subnet is a name).
    #[arg(long)]
    pub vnet_name: Option<String>,
    /// The subnet (name, with --vnet-name, or id).
    #[arg(long, value_name = "NAME|ID")]
    pub subnet: String,
    /// A static private IP address; without it the address is allocated dynamically.
    #[arg(long, value_name = "IP")]
    pub private_ip_address: Option<IpAddr>,
    /// Let the NIC send and receive traffic not addressed to it (for appliances).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool, value_name = "BOOL")]
    pub ip_forwarding: Option<bool>,
    /// A public IP address (name or id) to attach.
    #[arg(long, value_name = "NAME|ID")]
    pub public_ip_address: Option<String>,
    /// Do not wait for the operation to finish.
    #[arg(long)]
    pub no_wait: bool,
}

static COLUMNS: &[Column] = &[
    Column::new("Name", "/name"),
    Column::new("ResourceGroup", "/resourceGroup"),
    Column::new("Location", "/location"),
    Column::new("PrivateIP", "/ipConfigurations/0/privateIPAddress"),
    Column::new(
        "Allocation",
        "/ipConfigurations/0/privateIPAllocationMethod",
    ),
    Column::with("Subnet", "/ipConfigurations/0/subnet", Cell::Name),
    Column::new("IPForwarding", "/enableIPForwarding"),
    Column::new("ProvisioningState", "/provisioningState"),
];
const TABLE: TableStyle = TableStyle::columns(COLUMNS);

/// az's `show-effective-route-table -o table` columns, rows from the `value` array.
static ROUTE_COLUMNS: &[Column] = &[
    Column::new("Source", "/source"),
    Column::new("State", "/state"),
    Column::with("Address Prefix", "/addressPrefix", Cell::Spaced),
    Column::new("Next Hop Type", "/nextHopType"),
    Column::with("Next Hop IP", "/nextHopIpAddress", Cell::Spaced),
];
const ROUTE_TABLE: TableStyle = TableStyle::Columns {
    rows: Some("/value"),
    columns: ROUTE_COLUMNS,
};

pub fn run(ctx: &Ctx, cmd: NicCommand) -> Result<Reply, CliError> {
    match cmd {
        NicCommand::Create(args) => {
            let Named {
                resource_group,
                name,
            } = &args.target;
            let scope = ctx.scope(resource_group);
            let subnet = scope.resolve_subnet(args.vnet_name.as_deref(), &args.subnet)?;
            let location = location_or_group(ctx, resource_group, args.location.as_deref())?;
            let body = create_body(&scope, &location, &subnet, &args);
            put(
                ctx,
                &scope.id(kind::NETWORK_INTERFACES, name),
                &body,
                Wait::from_no_wait(args.no_wait),
                TABLE,
            )
        }
        NicCommand::Show(t) => show(ctx, &nic_id(ctx, &t), TABLE),
        NicCommand::List(g) => list(
            ctx,
            &list_url(ctx, g.resource_group.as_deref(), kind::NETWORK_INTERFACES),
            TABLE,
        ),
        NicCommand::Delete(d) => delete(ctx, &nic_id(ctx, &d.target), d.no_wait),
        NicCommand::Attach(a) => crate::cli::vm::nic_attach(ctx, a),
        NicCommand::Detach(t) => crate::cli::vm::nic_detach(ctx, t),
        NicCommand::Capture(a) => crate::cli::vm::nic_capture(ctx, a),
        NicCommand::ShowEffectiveRouteTable(t) => {
            let url = ids::network_url(&format!("{}/effectiveRouteTable", nic_id(ctx, &t)));
            let value = ctx.client.post(&url, None, Wait::Yes)?;
            Ok(Reply::value(value, ROUTE_TABLE))
        }
    }
}

fn nic_id(ctx: &Ctx, t: &Named) -> String {
    ctx.scope(&t.resource_group)
        .id(kind::NETWORK_INTERFACES, &t.name)
}

/// The PUT body of `nic create`: one primary IP configuration named `ipconfig1`, as az does.
fn create_body(scope: &Scope, location: &str, subnet_id: &str, args: &CreateArgs) -> Value {
    let mut ip = Map::new();
    ip.insert("subnet".into(), body::reference(subnet_id));
    match args.private_ip_address {
        Some(addr) => {
            ip.insert("privateIPAllocationMethod".into(), json!("Static"));
            ip.insert("privateIPAddress".into(), json!(addr.to_string()));
        }
        None => {
            ip.insert("privateIPAllocationMethod".into(), json!("Dynamic"));
        }
    }
    if let Some(pip) = &args.public_ip_address {
        ip.insert(
            "publicIPAddress".into(),
            body::reference(&scope.resolve(kind::PUBLIC_IPS, pip)),
        );
    }
    json!({
        "location": location,
        "properties": {
            "enableIPForwarding": args.ip_forwarding.unwrap_or(false),
            "ipConfigurations": [{ "name": "ipconfig1", "properties": ip }]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::http::Method;
    use crate::cli::testing::{ctx, group, reply, reply_with, run_line};

    const SUBNET: &str = "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/hub/subnets/app";
    const NIC: &str =
        "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network/networkInterfaces/nic1";

    fn nic_wire(ip: &str, method: &str) -> Value {
        json!({
            "id": NIC, "name": "nic1", "location": "westus", "type": "Microsoft.Network/networkInterfaces",
            "properties": {
                "provisioningState": "Succeeded", "enableIPForwarding": false,
                "ipConfigurations": [{"id": format!("{NIC}/ipConfigurations/ipconfig1"), "name": "ipconfig1",
                    "properties": {"privateIPAddress": ip, "privateIPAllocationMethod": method,
                                   "subnet": {"id": SUBNET}, "primary": true}}]
            }
        })
    }

    #[test]
    fn create_static() {
        let (ctx, fake) = ctx(vec![
            reply(200, group("rg1", "westus")),
            reply(201, nic_wire("10.0.1.10", "Static")),
        ]);
        run_line(
            &ctx,
            "network nic create -g rg1 -n nic1 --vnet-name hub --subnet app --private-ip-address 10.0.1.10 --ip-forwarding",
        )
        .unwrap();
        let req = &fake.requests()[1];
        assert_eq!(
            req.url,
            format!("http://vnet.test:7380{NIC}?api-version=2025-07-01")
        );
        assert_eq!(
            req.body,
            Some(json!({
                "location": "westus",
                "properties": {
                    "enableIPForwarding": true,
                    "ipConfigurations": [{"name": "ipconfig1", "properties": {
                        "subnet": {"id": SUBNET},
                        "privateIPAllocationMethod": "Static",
                        "privateIPAddress": "10.0.1.10"
                    }}]
                }
            }))
        );
    }

    #[test]
    fn create_dynamic_with_subnet_id_and_public_ip() {
        let (ctx, fake) = ctx(vec![reply(201, nic_wire("10.0.1.4", "Dynamic"))]);
        run_line(
            &ctx,
            &format!("network nic create -g rg1 -n nic1 -l westus --subnet {SUBNET} --public-ip-address pip1"),
        )
        .unwrap();
        let body = fake.requests()[0].body.clone().unwrap();
        let ip = &body["properties"]["ipConfigurations"][0]["properties"];
        assert_eq!(ip["privateIPAllocationMethod"], "Dynamic");
        assert!(ip.get("privateIPAddress").is_none());
        assert_eq!(
            ip["publicIPAddress"]["id"],
            "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/pip1"
        );
        assert_eq!(body["properties"]["enableIPForwarding"], false);
    }

    #[test]
    fn subnet_name_without_vnet_is_refused_before_sending() {
        let (ctx, fake) = ctx(vec![]);
        let err = run_line(&ctx, "network nic create -g rg1 -n nic1 --subnet app").unwrap_err();
        assert_eq!(err.code, "ValidationError");
        assert!(fake.requests().is_empty());
    }

    #[test]
    fn nic_table() {
        let (ctx, _fake) = ctx(vec![reply(
            200,
            json!({"value": [nic_wire("10.0.1.4", "Dynamic")]}),
        )]);
        let out = run_line(&ctx, "network nic list -g rg1 -o table").unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "Name    ResourceGroup    Location    PrivateIP    Allocation    Subnet    IPForwarding    ProvisioningState"
        );
        assert_eq!(
            lines[2],
            "nic1    rg1              westus      10.0.1.4     Dynamic       app       False           Succeeded"
        );
    }

    fn routes() -> Value {
        json!({"value": [
            {"source": "Default", "state": "Active", "addressPrefix": ["10.0.0.0/16"], "nextHopType": "VnetLocal", "nextHopIpAddress": []},
            {"source": "Default", "state": "Active", "addressPrefix": ["10.1.0.0/16"], "nextHopType": "VNetPeering", "nextHopIpAddress": []},
            {"source": "User", "state": "Active", "addressPrefix": ["0.0.0.0/0"], "nextHopType": "VirtualAppliance", "nextHopIpAddress": ["10.0.2.4"]}
        ]})
    }

    #[test]
    fn effective_routes_poll_location_and_print_as_az_table() {
        let (ctx, fake) = ctx(vec![
            reply_with(202, &[("Location", "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network/networkInterfaces/nic1/operationResults/1?api-version=2025-07-01")], None),
            reply(200, routes()),
        ]);
        let out = run_line(
            &ctx,
            "network nic show-effective-route-table -g rg1 -n nic1 -o table",
        )
        .unwrap();
        let req = &fake.requests()[0];
        assert_eq!(req.method, Method::Post);
        assert_eq!(
            req.url,
            format!("http://vnet.test:7380{NIC}/effectiveRouteTable?api-version=2025-07-01")
        );
        assert_eq!(
            out,
            "Source    State    Address Prefix    Next Hop Type     Next Hop IP\n\
             --------  -------  ----------------  ----------------  -------------\n\
             Default   Active   10.0.0.0/16       VnetLocal\n\
             Default   Active   10.1.0.0/16       VNetPeering\n\
             User      Active   0.0.0.0/0         VirtualAppliance  10.0.2.4\n"
        );
    }

    #[test]
    fn effective_routes_json_is_the_result_object() {
        let (ctx, _fake) = ctx(vec![reply(200, routes())]);
        let out = run_line(
            &ctx,
            "network nic show-effective-route-table -g rg1 -n nic1",
        )
        .unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["value"][2]["nextHopIpAddress"], json!(["10.0.2.4"]));
    }
}
