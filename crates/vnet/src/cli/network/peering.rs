//! `vnet network vnet peering ...`: VNet peering links.
//!
//! A peering is one directed link; it becomes `Connected` once the remote VNet has the link
//! back. `update` and `sync` re-send the link's *writable* fields only (the subset Azure's own
//! sync example sends): the address-space snapshots, `peeringState` and `peeringSyncLevel` are
//! the server's to compute, and echoing stale ones back would make a sync ambiguous.

use super::{delete, list, put, show};
use crate::cli::args::parse_bool;
use crate::cli::body;
use crate::cli::error::CliError;
use crate::cli::http::Wait;
use crate::cli::ids::{self, kind, Scope};
use crate::cli::output::Reply;
use crate::cli::table::{Cell, Column, TableStyle};
use crate::cli::Ctx;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

#[derive(Debug, Subcommand)]
pub enum PeeringCommand {
    /// Create (or replace) a peering from a virtual network to another.
    Create(CreateArgs),
    /// Change a peering's options.
    Update(UpdateArgs),
    /// Show a peering.
    Show(PeeringName),
    /// List the peerings of a virtual network.
    List(VnetName),
    /// Delete a peering (the remote side becomes Disconnected).
    Delete(DeleteArgs),
    /// Take in the remote virtual network's current address space.
    Sync(SyncArgs),
}

#[derive(Debug, Clone, Args)]
pub struct VnetName {
    /// Resource group name.
    #[arg(short = 'g', long = "resource-group")]
    pub resource_group: String,
    /// Name of the local virtual network.
    #[arg(long)]
    pub vnet_name: String,
}

#[derive(Debug, Clone, Args)]
pub struct PeeringName {
    #[command(flatten)]
    pub vnet: VnetName,
    /// Peering name.
    #[arg(short = 'n', long)]
    pub name: String,
}

impl PeeringName {
    fn id(&self, ctx: &Ctx) -> String {
        let vnet = ctx
            .scope(&self.vnet.resource_group)
            .id(kind::VIRTUAL_NETWORKS, &self.vnet.vnet_name);
        ids::child(&vnet, kind::PEERINGS, &self.name)
    }
}

/// The four link options, each "three-state" as in az: absent, bare (true), or `true|false`.
#[derive(Debug, Clone, Default, Args)]
pub struct LinkOptions {
    /// Let the local VNet reach the remote one (default true on create).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool, value_name = "BOOL")]
    pub allow_vnet_access: Option<bool>,
    /// Accept traffic forwarded from outside the remote VNet.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool, value_name = "BOOL")]
    pub allow_forwarded_traffic: Option<bool>,
    /// Let the remote VNet use this VNet's gateway.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool, value_name = "BOOL")]
    pub allow_gateway_transit: Option<bool>,
    /// Use the remote VNet's gateway.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool, value_name = "BOOL")]
    pub use_remote_gateways: Option<bool>,
}

impl LinkOptions {
    /// Writes the options that were given into a peering's properties.
    fn apply(&self, props: &mut Map<String, Value>) {
        let fields = [
            ("allowVirtualNetworkAccess", self.allow_vnet_access),
            ("allowForwardedTraffic", self.allow_forwarded_traffic),
            ("allowGatewayTransit", self.allow_gateway_transit),
            ("useRemoteGateways", self.use_remote_gateways),
        ];
        for (field, value) in fields {
            if let Some(v) = value {
                props.insert(field.into(), json!(v));
            }
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub target: PeeringName,
    /// The remote virtual network (name in the same group, or id).
    #[arg(long, value_name = "NAME|ID")]
    pub remote_vnet: String,
    #[command(flatten)]
    pub options: LinkOptions,
    /// Do not wait for the operation to finish.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Clone, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub target: PeeringName,
    #[command(flatten)]
    pub options: LinkOptions,
    /// Do not wait for the operation to finish.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub target: PeeringName,
    /// Do not wait for the operation to finish.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub target: PeeringName,
    /// Do not wait for the operation to finish.
    #[arg(long)]
    pub no_wait: bool,
}

static COLUMNS: &[Column] = &[
    Column::new("Name", "/name"),
    Column::new("ResourceGroup", "/resourceGroup"),
    Column::with("RemoteVnet", "/remoteVirtualNetwork", Cell::Name),
    Column::new("PeeringState", "/peeringState"),
    Column::new("PeeringSyncLevel", "/peeringSyncLevel"),
    Column::new("AllowGatewayTransit", "/allowGatewayTransit"),
    Column::new("UseRemoteGateways", "/useRemoteGateways"),
    Column::new("ProvisioningState", "/provisioningState"),
];
const TABLE: TableStyle = TableStyle::columns(COLUMNS);

/// The properties a client may set on a peering (2025-07-01).
const WRITABLE: &[&str] = &[
    "allowVirtualNetworkAccess",
    "allowForwardedTraffic",
    "allowGatewayTransit",
    "useRemoteGateways",
    "remoteVirtualNetwork",
    "doNotVerifyRemoteGateways",
    "peerCompleteVnets",
    "enableOnlyIPv6Peering",
    "localSubnetNames",
    "remoteSubnetNames",
];

pub fn run(ctx: &Ctx, cmd: PeeringCommand) -> Result<Reply, CliError> {
    match cmd {
        PeeringCommand::Create(args) => {
            let scope = ctx.scope(&args.target.vnet.resource_group);
            let body = create_body(&scope, &args.remote_vnet, &args.options);
            put(
                ctx,
                &args.target.id(ctx),
                &body,
                Wait::from_no_wait(args.no_wait),
                TABLE,
            )
        }
        PeeringCommand::Update(args) => {
            let url = ids::network_url(&args.target.id(ctx));
            let mut body = writable(&ctx.client.get(&url)?);
            args.options.apply(body::properties_mut(&mut body));
            let value = ctx
                .client
                .put(&url, &body, Wait::from_no_wait(args.no_wait))?;
            Ok(Reply::value(value, TABLE))
        }
        PeeringCommand::Show(target) => show(ctx, &target.id(ctx), TABLE),
        PeeringCommand::List(vnet) => {
            let vnet_id = ctx
                .scope(&vnet.resource_group)
                .id(kind::VIRTUAL_NETWORKS, &vnet.vnet_name);
            list(
                ctx,
                &ids::network_url(&ids::collection(&vnet_id, kind::PEERINGS)),
                TABLE,
            )
        }
        PeeringCommand::Delete(args) => delete(ctx, &args.target.id(ctx), args.no_wait),
        PeeringCommand::Sync(args) => {
            let url = ids::network_url(&args.target.id(ctx));
            let body = writable(&ctx.client.get(&url)?);
            let sync_url = format!("{url}&syncRemoteAddressSpace=true");
            let value =
                ctx.client
                    .put_at(&sync_url, &url, &body, Wait::from_no_wait(args.no_wait))?;
            Ok(Reply::value(value, TABLE))
        }
    }
}

/// The PUT body of `peering create`: az's defaults are access allowed, everything else off.
fn create_body(scope: &Scope, remote_vnet: &str, options: &LinkOptions) -> Value {
    let mut props = Map::new();
    props.insert(
        "remoteVirtualNetwork".into(),
        body::reference(&scope.resolve(kind::VIRTUAL_NETWORKS, remote_vnet)),
    );
    let defaults = LinkOptions {
        allow_vnet_access: Some(options.allow_vnet_access.unwrap_or(true)),
        allow_forwarded_traffic: Some(options.allow_forwarded_traffic.unwrap_or(false)),
        allow_gateway_transit: Some(options.allow_gateway_transit.unwrap_or(false)),
        use_remote_gateways: Some(options.use_remote_gateways.unwrap_or(false)),
    };
    defaults.apply(&mut props);
    json!({ "properties": props })
}

/// A peering as read, cut down to what a client may send back.
fn writable(peering: &Value) -> Value {
    let props: Map<String, Value> = peering
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| {
            p.iter()
                .filter(|(k, _)| WRITABLE.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    json!({ "properties": props })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::http::Method;
    use crate::cli::testing::{ctx, reply, reply_with, run_line};

    const HUB: &str =
        "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/hub";
    const SPOKE: &str =
        "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/spoke";

    fn peering_wire(state: &str) -> Value {
        json!({
            "id": format!("{HUB}/virtualNetworkPeerings/hub-to-spoke"), "name": "hub-to-spoke", "etag": "W/\"3\"",
            "properties": {
                "allowVirtualNetworkAccess": true, "allowForwardedTraffic": false,
                "allowGatewayTransit": true, "useRemoteGateways": false,
                "remoteVirtualNetwork": {"id": SPOKE},
                "remoteAddressSpace": {"addressPrefixes": ["10.1.0.0/16"]},
                "remoteVirtualNetworkAddressSpace": {"addressPrefixes": ["10.1.0.0/16", "10.2.0.0/16"]},
                "peeringState": state, "peeringSyncLevel": "LocalNotInSync",
                "provisioningState": "Succeeded"
            }
        })
    }

    #[test]
    fn create_sends_all_four_flags_with_az_defaults() {
        let (ctx, fake) = ctx(vec![reply(201, peering_wire("Initiated"))]);
        run_line(
            &ctx,
            "network vnet peering create -g rg1 --vnet-name hub -n hub-to-spoke --remote-vnet spoke --allow-gateway-transit",
        )
        .unwrap();
        let req = &fake.requests()[0];
        assert_eq!(
            req.url,
            format!("http://vnet.test:7380{HUB}/virtualNetworkPeerings/hub-to-spoke?api-version=2025-07-01")
        );
        assert_eq!(
            req.body,
            Some(json!({"properties": {
                "remoteVirtualNetwork": {"id": SPOKE},
                "allowVirtualNetworkAccess": true,
                "allowForwardedTraffic": false,
                "allowGatewayTransit": true,
                "useRemoteGateways": false
            }}))
        );
    }

    #[test]
    fn three_state_flags_take_values() {
        let (ctx, fake) = ctx(vec![reply(201, peering_wire("Initiated"))]);
        run_line(
            &ctx,
            "network vnet peering create -g rg1 --vnet-name hub -n p --remote-vnet /subscriptions/other/resourceGroups/x/providers/Microsoft.Network/virtualNetworks/far --allow-vnet-access false --allow-forwarded-traffic True --use-remote-gateways",
        )
        .unwrap();
        let props = fake.requests()[0].body.clone().unwrap()["properties"].clone();
        assert_eq!(props["allowVirtualNetworkAccess"], false);
        assert_eq!(props["allowForwardedTraffic"], true);
        assert_eq!(props["useRemoteGateways"], true);
        assert_eq!(
            props["remoteVirtualNetwork"]["id"],
            "/subscriptions/other/resourceGroups/x/providers/Microsoft.Network/virtualNetworks/far"
        );
    }

    #[test]
    fn update_sends_writable_fields_only() {
        let (ctx, fake) = ctx(vec![
            reply(200, peering_wire("Connected")),
            reply(200, peering_wire("Connected")),
        ]);
        run_line(
            &ctx,
            "network vnet peering update -g rg1 --vnet-name hub -n hub-to-spoke --allow-forwarded-traffic",
        )
        .unwrap();
        let put = &fake.requests()[1];
        assert_eq!(put.method, Method::Put);
        assert_eq!(
            put.body,
            Some(json!({"properties": {
                "allowVirtualNetworkAccess": true, "allowForwardedTraffic": true,
                "allowGatewayTransit": true, "useRemoteGateways": false,
                "remoteVirtualNetwork": {"id": SPOKE}
            }}))
        );
    }

    #[test]
    fn sync_puts_back_with_the_query_flag_and_reads_the_plain_url() {
        let op = "/subscriptions/sub1/providers/Microsoft.Network/locations/westus/operations/1";
        let (ctx, fake) = ctx(vec![
            reply(200, peering_wire("Connected")),
            reply_with(
                200,
                &[("Azure-AsyncOperation", op)],
                Some(peering_wire("Connected")),
            ),
            reply(200, json!({"status": "Succeeded"})),
            reply(200, peering_wire("Connected")),
        ]);
        let out = run_line(
            &ctx,
            "network vnet peering sync -g rg1 --vnet-name hub -n hub-to-spoke",
        )
        .unwrap();
        let reqs = fake.requests();
        let base = format!(
            "http://vnet.test:7380{HUB}/virtualNetworkPeerings/hub-to-spoke?api-version=2025-07-01"
        );
        assert_eq!(reqs[1].url, format!("{base}&syncRemoteAddressSpace=true"));
        assert_eq!(reqs[1].method, Method::Put);
        assert!(reqs[1].body.as_ref().unwrap()["properties"]
            .get("peeringState")
            .is_none());
        assert_eq!(reqs[3].url, base);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["peeringState"], "Connected");
    }

    #[test]
    fn overlap_refusal_is_the_error() {
        let (ctx, _fake) = ctx(vec![reply(
            400,
            json!({"error": {"code": "VnetAddressSpacesOverlap", "message": "Cannot create or update peering p. Virtual networks a and b cannot be peered because their address spaces overlap. Overlapping address prefixes: 10.0.0.0/16", "details": []}}),
        )]);
        let err = run_line(
            &ctx,
            "network vnet peering create -g rg1 --vnet-name hub -n p --remote-vnet clash",
        )
        .unwrap_err();
        assert!(err
            .to_string()
            .starts_with("VnetAddressSpacesOverlap: Cannot create or update peering p."));
    }

    #[test]
    fn list_table() {
        let (ctx, fake) = ctx(vec![reply(
            200,
            json!({"value": [peering_wire("Connected")]}),
        )]);
        let out = run_line(
            &ctx,
            "network vnet peering list -g rg1 --vnet-name hub -o table",
        )
        .unwrap();
        assert_eq!(
            fake.requests()[0].url,
            format!("http://vnet.test:7380{HUB}/virtualNetworkPeerings?api-version=2025-07-01")
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "Name          ResourceGroup    RemoteVnet    PeeringState    PeeringSyncLevel    AllowGatewayTransit    UseRemoteGateways    ProvisioningState"
        );
        assert_eq!(
            lines[2],
            "hub-to-spoke  rg1              spoke         Connected       LocalNotInSync      True                   False                Succeeded"
        );
    }
}
