//! `vnet network watcher ...`: Network Watcher diagnostics.
//!
//! vnet has NICs but no VMs, so `--vm` and `--nic` both name the NIC whose routes decide. Like
//! az, the request goes to the region's watcher, `NetworkWatcher_{location}`, where location is
//! the NIC's (read first, which also reports a missing NIC plainly); unlike Azure, whose
//! watchers live in `NetworkWatcherRG`, the watcher is addressed in the command's `-g`.

use crate::cli::error::CliError;
use crate::cli::http::Wait;
use crate::cli::ids::{self, kind};
use crate::cli::output::Reply;
use crate::cli::table::TableStyle;
use crate::cli::Ctx;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::net::IpAddr;

#[derive(Debug, Subcommand)]
pub enum WatcherCommand {
    /// Show where a packet from a NIC would go next.
    ShowNextHop(NextHopArgs),
}

#[derive(Debug, Clone, Args)]
pub struct NextHopArgs {
    /// Resource group name.
    #[arg(short = 'g', long = "resource-group")]
    pub resource_group: String,
    /// The NIC (name or id) the packet leaves from.
    #[arg(long = "nic", visible_alias = "vm", value_name = "NAME|ID")]
    pub nic: String,
    /// Source IP address of the packet.
    #[arg(long, value_name = "IP")]
    pub source_ip: IpAddr,
    /// Destination IP address of the packet.
    #[arg(long, value_name = "IP")]
    pub dest_ip: IpAddr,
}

pub fn run(ctx: &Ctx, cmd: WatcherCommand) -> Result<Reply, CliError> {
    match cmd {
        WatcherCommand::ShowNextHop(args) => {
            let scope = ctx.scope(&args.resource_group);
            let nic_id = scope.resolve(kind::NETWORK_INTERFACES, &args.nic);
            let nic = ctx.client.get(&ids::network_url(&nic_id))?;
            let location = nic.get("location").and_then(Value::as_str).ok_or_else(|| {
                CliError::bad_response(format!("network interface {nic_id} has no location"))
            })?;
            let watcher = scope.id(
                kind::NETWORK_WATCHERS,
                &format!("NetworkWatcher_{location}"),
            );
            let body = json!({
                "targetResourceId": nic_id,
                "sourceIPAddress": args.source_ip.to_string(),
                "destinationIPAddress": args.dest_ip.to_string(),
                "targetNicResourceId": nic_id,
            });
            let url = ids::network_url(&format!("{watcher}/nextHop"));
            let value = ctx.client.post(&url, Some(&body), Wait::Yes)?;
            Ok(Reply::value(value, TableStyle::Auto))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::http::Method;
    use crate::cli::testing::{ctx, reply, reply_with, run_line};

    const RG: &str = "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network";

    #[test]
    fn next_hop_goes_to_the_regional_watcher() {
        let result = json!({"nextHopType": "VnetLocal", "nextHopIpAddress": "", "routeTableId": "System Route"});
        let (ctx, fake) = ctx(vec![
            reply(
                200,
                json!({"id": format!("{RG}/networkInterfaces/nic1"), "name": "nic1", "location": "westus"}),
            ),
            reply_with(
                202,
                &[("Location", "/subscriptions/sub1/op/2")],
                Some(result.clone()),
            ),
            reply(200, result),
        ]);
        let out = run_line(
            &ctx,
            "network watcher show-next-hop -g rg1 --vm nic1 --source-ip 10.0.1.4 --dest-ip 10.1.1.4 -o table",
        )
        .unwrap();
        let post = &fake.requests()[1];
        assert_eq!(post.method, Method::Post);
        assert_eq!(
            post.url,
            format!("http://vnet.test:7380{RG}/networkWatchers/NetworkWatcher_westus/nextHop?api-version=2025-07-01")
        );
        assert_eq!(
            post.body,
            Some(json!({
                "targetResourceId": format!("{RG}/networkInterfaces/nic1"),
                "sourceIPAddress": "10.0.1.4",
                "destinationIPAddress": "10.1.1.4",
                "targetNicResourceId": format!("{RG}/networkInterfaces/nic1")
            }))
        );
        assert_eq!(
            out,
            "NextHopIpAddress    NextHopType    RouteTableId\n\
             ------------------  -------------  --------------\n\
             \x20                   VnetLocal      System Route\n"
        );
    }

    #[test]
    fn missing_nic_is_reported_without_posting() {
        let (ctx, fake) = ctx(vec![reply(
            404,
            json!({"error": {"code": "ResourceNotFound", "message": "The Resource 'Microsoft.Network/networkInterfaces/nope' under resource group 'rg1' was not found."}}),
        )]);
        let err = run_line(&ctx, "network watcher show-next-hop -g rg1 --nic nope --source-ip 10.0.0.4 --dest-ip 8.8.8.8")
            .unwrap_err();
        assert_eq!(err.code, "ResourceNotFound");
        assert_eq!(fake.requests().len(), 1);
    }
}
