//! `vnet network vnet-gateway ...`: virtual network gateways (VPN).
//!
//! As in az, the gateway is placed in the VNet's `GatewaySubnet`, gets one IP configuration per
//! public IP (two make it active-active), and `--asn` turns BGP on. Creation is slow in Azure
//! (and asynchronous in vnet), hence `--no-wait`.

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
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};

#[derive(Debug, Subcommand)]
pub enum VnetGatewayCommand {
    /// Create (or replace) a virtual network gateway.
    Create(Box<CreateArgs>),
    /// Show a virtual network gateway.
    Show(Named),
    /// List the virtual network gateways of a resource group.
    List(RequiredGroup),
    /// Delete a virtual network gateway.
    Delete(NamedDelete),
    /// List the routes the gateway has learned (from BGP peers and local network gateways).
    ListLearnedRoutes(Named),
    /// List the routes the gateway advertises to a BGP peer.
    ListAdvertisedRoutes(PeerArgs),
    /// Show the state of the gateway's BGP sessions.
    ListBgpPeerStatus(OptionalPeerArgs),
}

#[derive(Debug, Clone, Args)]
pub struct PeerArgs {
    #[command(flatten)]
    pub target: Named,
    /// The BGP peer's IP address.
    #[arg(long, value_name = "IP")]
    pub peer: String,
}

#[derive(Debug, Clone, Args)]
pub struct OptionalPeerArgs {
    #[command(flatten)]
    pub target: Named,
    /// Only this BGP peer (IP address).
    #[arg(long, value_name = "IP")]
    pub peer: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GatewayType {
    #[value(name = "Vpn")]
    Vpn,
    #[value(name = "ExpressRoute")]
    ExpressRoute,
    #[value(name = "LocalGateway")]
    LocalGateway,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VpnType {
    #[value(name = "RouteBased")]
    RouteBased,
    #[value(name = "PolicyBased")]
    PolicyBased,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientProtocol {
    #[value(name = "IkeV2")]
    IkeV2,
    #[value(name = "SSTP")]
    Sstp,
    #[value(name = "OpenVPN")]
    OpenVpn,
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub target: Named,
    /// Location; defaults to the resource group's.
    #[arg(short = 'l', long)]
    pub location: Option<String>,
    /// The virtual network (name or id); the gateway goes into its GatewaySubnet.
    #[arg(long, value_name = "NAME|ID")]
    pub vnet: String,
    /// Public IP addresses (names or ids); two make the gateway active-active.
    #[arg(long, num_args = 1..=2, required = true, value_name = "NAME|ID")]
    pub public_ip_addresses: Vec<String>,
    /// Gateway type.
    #[arg(long, value_enum, ignore_case = true, default_value = "Vpn")]
    pub gateway_type: GatewayType,
    /// VPN routing type.
    #[arg(long, value_enum, ignore_case = true, default_value = "RouteBased")]
    pub vpn_type: VpnType,
    /// SKU (Basic, VpnGw1 ... VpnGw5, VpnGw1AZ ...).
    #[arg(long, default_value = "VpnGw1")]
    pub sku: String,
    /// BGP autonomous system number; enables BGP.
    #[arg(long)]
    pub asn: Option<u32>,
    /// BGP peering address (with --asn).
    #[arg(long, requires = "asn", value_name = "IP")]
    pub bgp_peering_address: Option<String>,
    /// Point-to-site client address pool.
    #[arg(long, visible_alias = "address-prefix", num_args = 1.., value_name = "PREFIX")]
    pub address_prefixes: Vec<String>,
    /// Point-to-site tunnel protocols (with --address-prefixes).
    #[arg(long, value_enum, ignore_case = true, num_args = 1.., requires = "address_prefixes")]
    pub client_protocol: Vec<ClientProtocol>,
    /// Name of a root certificate that point-to-site client certificates must chain to.
    #[arg(long, requires_all = ["address_prefixes", "root_cert_data"])]
    pub root_cert_name: Option<String>,
    /// That root certificate: a PEM/base64 file, or its base64 text.
    #[arg(long, requires = "root_cert_name", value_name = "FILE|BASE64")]
    pub root_cert_data: Option<String>,
    /// Do not wait for the gateway to be provisioned.
    #[arg(long)]
    pub no_wait: bool,
}

static COLUMNS: &[Column] = &[
    Column::new("Name", "/name"),
    Column::new("ResourceGroup", "/resourceGroup"),
    Column::new("Location", "/location"),
    Column::new("GatewayType", "/gatewayType"),
    Column::new("VpnType", "/vpnType"),
    Column::new("Sku", "/sku/name"),
    Column::new("ActiveActive", "/activeActive"),
    Column::new("EnableBgp", "/enableBgp"),
    Column::new("ProvisioningState", "/provisioningState"),
];
const TABLE: TableStyle = TableStyle::columns(COLUMNS);

/// az's table for learned and advertised routes (`GatewayRoute`), rows from `value`.
static ROUTE_COLUMNS: &[Column] = &[
    Column::new("Network", "/network"),
    Column::new("NextHop", "/nextHop"),
    Column::new("SourcePeer", "/sourcePeer"),
    Column::new("Origin", "/origin"),
    Column::new("AsPath", "/asPath"),
    Column::new("Weight", "/weight"),
];
const ROUTE_TABLE: TableStyle = TableStyle::Columns {
    rows: Some("/value"),
    columns: ROUTE_COLUMNS,
};

/// az's table for BGP peer status (`BgpPeerStatus`), rows from `value`.
static PEER_COLUMNS: &[Column] = &[
    Column::new("Neighbor", "/neighbor"),
    Column::new("ASN", "/asn"),
    Column::new("State", "/state"),
    Column::new("ConnectedDuration", "/connectedDuration"),
    Column::new("RoutesReceived", "/routesReceived"),
    Column::new("MessagesSent", "/messagesSent"),
    Column::new("MessagesReceived", "/messagesReceived"),
];
const PEER_TABLE: TableStyle = TableStyle::Columns {
    rows: Some("/value"),
    columns: PEER_COLUMNS,
};

pub fn run(ctx: &Ctx, cmd: VnetGatewayCommand) -> Result<Reply, CliError> {
    match cmd {
        VnetGatewayCommand::Create(args) => {
            let Named {
                resource_group,
                name,
            } = &args.target;
            let scope = ctx.scope(resource_group);
            let location = location_or_group(ctx, resource_group, args.location.as_deref())?;
            let root_cert = match (&args.root_cert_name, &args.root_cert_data) {
                (Some(name), Some(data)) => Some((name.as_str(), load_cert(data)?)),
                _ => None,
            };
            let body = create_body(&scope, &location, &args, root_cert);
            put(
                ctx,
                &scope.id(kind::VNET_GATEWAYS, name),
                &body,
                Wait::from_no_wait(args.no_wait),
                TABLE,
            )
        }
        VnetGatewayCommand::Show(t) => show(ctx, &gateway_id(ctx, &t), TABLE),
        VnetGatewayCommand::List(g) => list(
            ctx,
            &ctx.scope(&g.resource_group).list_url(kind::VNET_GATEWAYS),
            TABLE,
        ),
        VnetGatewayCommand::Delete(d) => delete(ctx, &gateway_id(ctx, &d.target), d.no_wait),
        VnetGatewayCommand::ListLearnedRoutes(t) => {
            action(ctx, &t, "getLearnedRoutes", None, ROUTE_TABLE)
        }
        VnetGatewayCommand::ListAdvertisedRoutes(a) => action(
            ctx,
            &a.target,
            "getAdvertisedRoutes",
            Some(&a.peer),
            ROUTE_TABLE,
        ),
        VnetGatewayCommand::ListBgpPeerStatus(a) => action(
            ctx,
            &a.target,
            "getBgpPeerStatus",
            a.peer.as_deref(),
            PEER_TABLE,
        ),
    }
}

/// A POST action on the gateway (long-running; the result comes with the final answer).
fn action(
    ctx: &Ctx,
    t: &Named,
    name: &str,
    peer: Option<&str>,
    table: TableStyle,
) -> Result<Reply, CliError> {
    let mut url = ids::network_url(&format!("{}/{name}", gateway_id(ctx, t)));
    if let Some(peer) = peer {
        url.push_str("&peer=");
        url.push_str(peer);
    }
    let value = ctx.client.post(&url, None, Wait::Yes)?;
    Ok(Reply::value(value, table))
}

fn gateway_id(ctx: &Ctx, t: &Named) -> String {
    ctx.scope(&t.resource_group)
        .id(kind::VNET_GATEWAYS, &t.name)
}

fn wire_name<T: ValueEnum>(value: T) -> String {
    value
        .to_possible_value()
        .map(|p| p.get_name().to_owned())
        .unwrap_or_default()
}

/// A root certificate's `publicCertData`: the base64 body of a PEM file (as az reads
/// `--root-cert-data`), or the argument itself when it names no file.
fn load_cert(data: &str) -> Result<String, CliError> {
    let path = std::path::Path::new(data);
    let text = if path.is_file() {
        std::fs::read_to_string(path).map_err(|e| {
            CliError::validation(format!("cannot read --root-cert-data {data}: {e}"))
        })?
    } else {
        data.to_owned()
    };
    let body: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    if body.is_empty() {
        return Err(CliError::validation(format!(
            "--root-cert-data {data} holds no certificate"
        )));
    }
    Ok(body)
}

/// The PUT body of `vnet-gateway create`.
fn create_body(
    scope: &Scope,
    location: &str,
    args: &CreateArgs,
    root_cert: Option<(&str, String)>,
) -> Value {
    let subnet = ids::child(
        &scope.resolve(kind::VIRTUAL_NETWORKS, &args.vnet),
        kind::SUBNETS,
        "GatewaySubnet",
    );
    let ip_configurations: Vec<Value> = args
        .public_ip_addresses
        .iter()
        .enumerate()
        .map(|(i, pip)| {
            json!({
                "name": format!("vnetGatewayConfig{i}"),
                "properties": {
                    "privateIPAllocationMethod": "Dynamic",
                    "subnet": body::reference(&subnet),
                    "publicIPAddress": body::reference(&scope.resolve(kind::PUBLIC_IPS, pip))
                }
            })
        })
        .collect();
    let mut props = Map::new();
    props.insert("ipConfigurations".into(), json!(ip_configurations));
    props.insert("gatewayType".into(), json!(wire_name(args.gateway_type)));
    props.insert("vpnType".into(), json!(wire_name(args.vpn_type)));
    props.insert("sku".into(), json!({ "name": args.sku, "tier": args.sku }));
    props.insert(
        "activeActive".into(),
        json!(args.public_ip_addresses.len() > 1),
    );
    props.insert("enableBgp".into(), json!(args.asn.is_some()));
    if let Some(asn) = args.asn {
        let mut bgp = Map::new();
        bgp.insert("asn".into(), json!(asn));
        if let Some(addr) = &args.bgp_peering_address {
            bgp.insert("bgpPeeringAddress".into(), json!(addr));
        }
        props.insert("bgpSettings".into(), Value::Object(bgp));
    }
    if !args.address_prefixes.is_empty() {
        let mut p2s = Map::new();
        p2s.insert(
            "vpnClientAddressPool".into(),
            json!({ "addressPrefixes": args.address_prefixes }),
        );
        if !args.client_protocol.is_empty() {
            let protocols: Vec<String> =
                args.client_protocol.iter().map(|p| wire_name(*p)).collect();
            p2s.insert("vpnClientProtocols".into(), json!(protocols));
        }
        if let Some((name, data)) = root_cert {
            p2s.insert(
                "vpnClientRootCertificates".into(),
                json!([{ "name": name, "properties": { "publicCertData": data } }]),
            );
        }
        props.insert("vpnClientConfiguration".into(), Value::Object(p2s));
    }
    json!({ "location": location, "properties": props })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::testing::{ctx, reply, reply_with, run_line};

    const RG: &str = "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network";

    #[test]
    fn create_builds_gateway_subnet_config_and_bgp() {
        let (ctx, fake) = ctx(vec![reply_with(
            201,
            &[("Azure-AsyncOperation", "/op/1")],
            Some(json!({"name": "gw"})),
        )]);
        let out = run_line(
            &ctx,
            "network vnet-gateway create -g rg1 -n gw -l westus --vnet hub --public-ip-addresses gw-ip --asn 65010 --address-prefixes 172.16.201.0/24 --client-protocol ikev2 --no-wait",
        )
        .unwrap();
        assert_eq!(out, "", "--no-wait prints nothing");
        assert_eq!(fake.requests().len(), 1);
        assert_eq!(
            fake.requests()[0].body,
            Some(json!({
                "location": "westus",
                "properties": {
                    "ipConfigurations": [{
                        "name": "vnetGatewayConfig0",
                        "properties": {
                            "privateIPAllocationMethod": "Dynamic",
                            "subnet": {"id": format!("{RG}/virtualNetworks/hub/subnets/GatewaySubnet")},
                            "publicIPAddress": {"id": format!("{RG}/publicIPAddresses/gw-ip")}
                        }
                    }],
                    "gatewayType": "Vpn",
                    "vpnType": "RouteBased",
                    "sku": {"name": "VpnGw1", "tier": "VpnGw1"},
                    "activeActive": false,
                    "enableBgp": true,
                    "bgpSettings": {"asn": 65010},
                    "vpnClientConfiguration": {
                        "vpnClientAddressPool": {"addressPrefixes": ["172.16.201.0/24"]},
                        "vpnClientProtocols": ["IkeV2"]
                    }
                }
            }))
        );
    }

    #[test]
    fn two_public_ips_make_it_active_active() {
        let (ctx, fake) = ctx(vec![reply(
            200,
            json!({"name": "gw", "properties": {"provisioningState": "Succeeded"}}),
        )]);
        run_line(
            &ctx,
            "network vnet-gateway create -g rg1 -n gw -l westus --vnet hub --public-ip-addresses ip1 ip2 --sku VpnGw2",
        )
        .unwrap();
        let props = fake.requests()[0].body.clone().unwrap()["properties"].clone();
        assert_eq!(props["activeActive"], true);
        assert_eq!(props["enableBgp"], false);
        assert_eq!(props["ipConfigurations"][1]["name"], "vnetGatewayConfig1");
        assert_eq!(props["sku"]["name"], "VpnGw2");
        assert!(props.get("bgpSettings").is_none());
        assert!(props.get("vpnClientConfiguration").is_none());
    }

    #[test]
    fn advertised_routes_ask_for_the_peer_and_print_az_columns() {
        let (ctx, fake) = ctx(vec![reply(
            200,
            json!({"value": [{"localAddress": "10.0.255.4", "network": "10.0.0.0/16", "nextHop": "10.0.255.4",
                              "origin": "Igp", "asPath": "65010", "weight": 0}]}),
        )]);
        let out = run_line(
            &ctx,
            "network vnet-gateway list-advertised-routes -g rg1 -n gw --peer 192.168.255.1 -o table",
        )
        .unwrap();
        assert_eq!(
            fake.requests()[0].url,
            format!("http://vnet.test:7380{RG}/virtualNetworkGateways/gw/getAdvertisedRoutes?api-version=2025-07-01&peer=192.168.255.1")
        );
        assert_eq!(
            out,
            "Network      NextHop     SourcePeer    Origin    AsPath    Weight\n\
             -----------  ----------  ------------  --------  --------  --------\n\
             10.0.0.0/16  10.0.255.4                Igp       65010     0\n"
        );
    }

    #[test]
    fn learned_routes_and_bgp_status_are_posts() {
        let (ctx, fake) = ctx(vec![
            reply(200, json!({"value": []})),
            reply(
                200,
                json!({"value": [{"neighbor": "192.168.255.1", "asn": 65050, "state": "Connected"}]}),
            ),
        ]);
        run_line(
            &ctx,
            "network vnet-gateway list-learned-routes -g rg1 -n gw",
        )
        .unwrap();
        let out = run_line(
            &ctx,
            "network vnet-gateway list-bgp-peer-status -g rg1 -n gw -o table",
        )
        .unwrap();
        let reqs = fake.requests();
        assert!(reqs
            .iter()
            .all(|r| r.method == crate::cli::http::Method::Post));
        assert!(reqs[0]
            .url
            .contains("/virtualNetworkGateways/gw/getLearnedRoutes?api-version="));
        assert!(reqs[1]
            .url
            .ends_with("/getBgpPeerStatus?api-version=2025-07-01"));
        assert!(
            out.lines()
                .nth(2)
                .unwrap()
                .starts_with("192.168.255.1  65050  Connected"),
            "{out}"
        );
    }

    #[test]
    fn root_certificate_from_a_pem_file() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("root.pem");
        std::fs::write(
            &pem,
            "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmg\nAwIBAgIU\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let (ctx, fake) = ctx(vec![reply(200, json!({"name": "gw"}))]);
        run_line(
            &ctx,
            &format!(
                "network vnet-gateway create -g rg1 -n gw -l westus --vnet hub --public-ip-addresses ip1 --address-prefixes 172.16.201.0/24 --root-cert-name P2SRoot --root-cert-data {}",
                pem.display()
            ),
        )
        .unwrap();
        let body = fake.requests()[0].body.clone().unwrap();
        assert_eq!(
            body["properties"]["vpnClientConfiguration"]["vpnClientRootCertificates"],
            json!([{"name": "P2SRoot", "properties": {"publicCertData": "MIIBszCCAVmgAwIBAgIU"}}])
        );
        assert_eq!(load_cert("MIIBinline").unwrap(), "MIIBinline");
        assert!(load_cert("-----BEGIN CERTIFICATE-----").is_err());
    }

    #[test]
    fn list_needs_a_group() {
        let (ctx, fake) = ctx(vec![reply(200, json!({"value": []}))]);
        let out = run_line(&ctx, "network vnet-gateway list -g rg1").unwrap();
        assert_eq!(out, "[]\n");
        assert_eq!(
            fake.requests()[0].url,
            format!("http://vnet.test:7380{RG}/virtualNetworkGateways?api-version=2025-07-01")
        );
    }
}
