//! VPN gateways, local network gateways and connections.
//!
//! Gateways, local gateways and connections provision asynchronously, as in Azure: the PUT
//! answers with `provisioningState: Updating` and the server finishes the work moments later.

use super::nic::{allocate, taken_addresses};
use super::peering::vnet_gateway;
use super::{in_use_check, resolve, DeleteSet};
use crate::cidr;
use crate::ctx::Ctx;
use crate::doc::{self, props, props_mut};
use crate::error::{ArmError, ArmResult};
use crate::id::{Kind, ResourceId};
use crate::state::Tx;
use serde_json::{json, Value};

pub const SKUS: [&str; 16] = [
    "Basic",
    "Standard",
    "HighPerformance",
    "UltraPerformance",
    "VpnGw1",
    "VpnGw2",
    "VpnGw3",
    "VpnGw4",
    "VpnGw5",
    "VpnGw1AZ",
    "VpnGw2AZ",
    "VpnGw3AZ",
    "VpnGw4AZ",
    "VpnGw5AZ",
    "ErGw1AZ",
    "ErGwScale",
];

/// ASNs Azure forbids on BGP speakers (Azure's own and IANA-reserved); `allow_azure_default`
/// lets 65515 through for the gateway itself.
fn check_asn(asn: i64, allow_azure_default: bool, owner: &str) -> ArmResult<()> {
    let reserved = matches!(asn, 8074 | 8075 | 12076 | 65517..=65520 | 23456 | 64496..=64511 | 65535..=65551)
        || (asn == 65515 && !allow_azure_default)
        || asn <= 0
        || asn >= 4_294_967_295;
    if reserved {
        return Err(ArmError::bad(
            "InvalidBgpAsn",
            format!("ASN {asn} of {owner} is reserved by Azure or IANA and cannot be used."),
        ));
    }
    Ok(())
}

fn check_bgp(p: &Value, owner: &str, gateway: bool) -> ArmResult<()> {
    if let Some(b) = p.get("bgpSettings") {
        if let Some(asn) = b.get("asn").and_then(Value::as_i64) {
            check_asn(asn, gateway, owner)?;
        }
        if let Some(a) = doc::get_str(b, "bgpPeeringAddress") {
            if !a.is_empty() && a.parse::<std::net::IpAddr>().is_err() {
                return Err(ArmError::bad(
                    "InvalidBgpPeeringAddress",
                    format!("BGP peering address {a} of {owner} is not a valid IP address."),
                ));
            }
        }
    }
    Ok(())
}

pub fn put_gateway(tx: &mut Tx, ctx: &mut Ctx, id: &ResourceId, body: Value) -> ArmResult<()> {
    let gid = id.to_id();
    let super::Draft {
        key,
        existing,
        doc: mut d,
        props: p,
    } = super::draft(tx, ctx, id, &body)?;
    let gtype = doc::get_str(&p, "gatewayType").unwrap_or("Vpn");
    if !gtype.eq_ignore_ascii_case("Vpn") {
        return Err(ArmError::bad(
            "UnsupportedGatewayType",
            format!("Gateway {gid} has gatewayType {gtype}; vnet supports only Vpn gateways."),
        ));
    }
    let vpn_type = doc::one_of(
        doc::get_str(&p, "vpnType").unwrap_or("RouteBased"),
        &["RouteBased", "PolicyBased"],
        "InvalidVpnType",
        &format!("vpnType of gateway {gid}"),
    )?;
    if let Some(e) = &existing {
        let old = doc::get_str(props(e), "vpnType").unwrap_or("RouteBased");
        if old != vpn_type {
            return Err(ArmError::bad(
                "VpnTypeCannotBeChanged",
                format!("The vpnType of gateway {gid} cannot be changed from {old} to {vpn_type}; delete and re-create the gateway."),
            ));
        }
    }
    let sku_name = p
        .get("sku")
        .and_then(|s| doc::get_str(s, "name"))
        .ok_or_else(|| {
            ArmError::bad(
                "InvalidGatewaySku",
                format!("Gateway {gid} must specify sku.name."),
            )
        })?;
    let Some(sku) = SKUS
        .iter()
        .find(|s| s.eq_ignore_ascii_case(sku_name))
        .copied()
    else {
        return Err(ArmError::bad(
            "InvalidGatewaySku",
            format!(
                "Gateway SKU {sku_name} is not valid; use one of {}.",
                SKUS.join(", ")
            ),
        ));
    };
    if sku.starts_with("ErGw") {
        return Err(ArmError::bad(
            "InvalidGatewaySku",
            format!("SKU {sku} is an ExpressRoute SKU and cannot be used by a VPN gateway."),
        ));
    }
    let active_active = doc::get_bool(&p, "activeActive", false);
    let enable_bgp = doc::get_bool(&p, "enableBgp", false);
    if sku == "Basic" && (active_active || enable_bgp) {
        return Err(ArmError::bad(
            "BasicSkuNotSupportedFeature",
            format!(
                "Gateway {gid} uses the Basic SKU, which supports neither active-active nor BGP."
            ),
        ));
    }
    let configs: Vec<Value> = p
        .get("ipConfigurations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let want = if active_active { 2 } else { 1 };
    if configs.len() != want {
        return Err(ArmError::bad(
            "InvalidNumberOfIpConfigurations",
            format!(
                "Gateway {gid} has {} IP configurations; an {} gateway needs exactly {want}.",
                configs.len(),
                if active_active {
                    "active-active"
                } else {
                    "active-standby"
                }
            ),
        ));
    }
    check_bgp(&p, &gid, true)?;
    let mut vnet_key: Option<String> = None;
    let mut new_configs = Vec::new();
    let mut first_ip: Option<String> = None;
    let mut mine = std::collections::BTreeSet::new();
    for (i, c) in configs.iter().enumerate() {
        let cname = doc::get_str(c, "name")
            .unwrap_or(if i == 0 { "default" } else { "ActiveActive" })
            .to_string();
        let owner = format!("{gid}/ipConfigurations/{cname}");
        let cp = props(c);
        let sref = doc::ref_id(cp, "subnet").ok_or_else(|| {
            ArmError::bad("InvalidGatewaySubnet", format!("IP configuration {owner} must reference the GatewaySubnet of a virtual network."))
        })?;
        let (sid, subnet) = resolve(tx, sref, Kind::Subnet, &owner)?;
        if sid.leaf() != "GatewaySubnet" {
            return Err(ArmError::bad(
                "InvalidGatewaySubnet",
                format!("IP configuration {owner} references subnet {}; a virtual network gateway must be deployed in a subnet named exactly GatewaySubnet.", sid.to_id()),
            ));
        }
        let prefixes = doc::subnet_prefixes(&subnet);
        if !prefixes
            .iter()
            .any(|n| n.network().is_ipv4() && n.prefix_len() <= 29)
        {
            return Err(ArmError::bad(
                "GatewaySubnetTooSmall",
                format!(
                    "GatewaySubnet {} must be /29 or larger (/27 recommended).",
                    sid.to_id()
                ),
            ));
        }
        let vk = sid.parent().expect("vnet").key();
        if vnet_key.get_or_insert(vk.clone()) != &vk {
            return Err(ArmError::bad(
                "InvalidGatewaySubnet",
                format!("All IP configurations of gateway {gid} must use the same GatewaySubnet."),
            ));
        }
        let pref = doc::ref_id(cp, "publicIPAddress").ok_or_else(|| {
            ArmError::bad(
                "PublicIPAddressRequired",
                format!("IP configuration {owner} must reference a public IP address."),
            )
        })?;
        let (pid, _) = resolve(tx, pref, Kind::PublicIp, &owner)?;
        let users: Vec<String> = tx
            .referrers(&pid.key())
            .into_iter()
            .filter(|u| u != &key)
            .collect();
        if let Some(u) = users.first() {
            return Err(ArmError::bad(
                "PublicIPAddressInUse",
                format!(
                    "Public IP address {} is already associated with {u}.",
                    pid.to_id()
                ),
            ));
        }
        if new_configs
            .iter()
            .any(|x: &Value| doc::ref_key(props(x), "publicIPAddress") == Some(pid.key()))
        {
            return Err(ArmError::bad(
                "PublicIPAddressInUse",
                format!("Each IP configuration of gateway {gid} needs its own public IP address."),
            ));
        }
        // The gateway takes a private address of GatewaySubnet, kept across updates.
        let mut taken = taken_addresses(tx, &sid.key(), Some(&key));
        taken.extend(mine.iter().copied());
        let kept = existing.as_ref().and_then(|e| {
            props(e)
                .get("ipConfigurations")
                .and_then(Value::as_array)
                .and_then(|a| {
                    a.iter()
                        .find(|o| {
                            doc::name(o) == cname
                                && doc::ref_key(props(o), "subnet") == Some(sid.key())
                        })
                        .and_then(|o| {
                            doc::get_str(props(o), "privateIPAddress").and_then(|s| s.parse().ok())
                        })
                })
        });
        let ip = match kept {
            Some(a) => a,
            None => allocate(&prefixes, false, &taken).ok_or_else(|| {
                ArmError::bad(
                    "SubnetIsFull",
                    format!(
                        "GatewaySubnet {} has no free address for gateway {gid}.",
                        sid.to_id()
                    ),
                )
            })?,
        };
        mine.insert(ip);
        first_ip.get_or_insert(ip.to_string());
        new_configs.push(json!({
            "name": cname,
            "id": owner,
            "etag": d["etag"].clone(),
            "type": "Microsoft.Network/virtualNetworkGateways/ipConfigurations",
            "properties": {
                "privateIPAllocationMethod": "Dynamic",
                "privateIPAddress": ip.to_string(),
                "subnet": {"id": sid.to_id()},
                "publicIPAddress": {"id": pid.to_id()},
                "provisioningState": "Updating",
            }
        }));
    }
    let vk = vnet_key.expect("one ip configuration");
    if let Some((other, _)) = vnet_gateway(tx, &vk) {
        if other != key {
            return Err(ArmError::bad(
                "VnetAlreadyHasVpnGateway",
                format!("Virtual network {} already has VPN gateway {other}; only one VPN gateway is allowed per virtual network.", vk),
            ));
        }
    }
    for (_, l) in tx.scan(&format!("{vk}/virtualnetworkpeerings/")) {
        if doc::get_bool(props(&l), "useRemoteGateways", false) {
            return Err(ArmError::bad(
                "VnetUsingRemoteGatewayCannotHaveGateway",
                format!("A gateway cannot be created in virtual network {vk} because its peering {} uses remote gateways.", doc::id_str(&l)),
            ));
        }
    }
    let vnet = tx.get(&vk).cloned().unwrap_or(Value::Null);
    if let Some(vpn) = p.get("vpnClientConfiguration") {
        check_vpn_client(tx, vpn, &gid, vpn_type, sku, &vnet, &vk)?;
    }
    let nat_rules = nat_rules(&p, &gid, &d["etag"])?;
    let pm = props_mut(&mut d);
    pm.insert("ipConfigurations".into(), Value::Array(new_configs));
    pm.insert("natRules".into(), nat_rules);
    pm.insert("gatewayType".into(), json!("Vpn"));
    pm.insert("vpnType".into(), json!(vpn_type));
    pm.insert(
        "sku".into(),
        json!({"name": sku, "tier": sku, "capacity": 2}),
    );
    pm.insert("activeActive".into(), json!(active_active));
    pm.insert("enableBgp".into(), json!(enable_bgp));
    pm.entry("vpnGatewayGeneration")
        .or_insert(json!(if sku == "Basic" {
            "None"
        } else {
            "Generation1"
        }));
    for f in [
        "enablePrivateIpAddress",
        "enableBgpRouteTranslationForNat",
        "disableIPSecReplayProtection",
        "allowVirtualWanTraffic",
        "allowRemoteVnetTraffic",
    ] {
        pm.entry(f).or_insert(json!(false));
    }
    let bgp = pm.entry("bgpSettings").or_insert(json!({}));
    if bgp.get("asn").is_none() {
        bgp["asn"] = json!(65515);
    }
    if bgp.get("bgpPeeringAddress").is_none() {
        bgp["bgpPeeringAddress"] = json!(first_ip.clone().unwrap_or_default());
    }
    if bgp.get("peerWeight").is_none() {
        bgp["peerWeight"] = json!(0);
    }
    pm.insert("provisioningState".into(), json!("Updating"));
    tx.put(key, d);
    Ok(())
}

/// NAT rules given inline become child resources of the gateway: each gets its id, the
/// gateway's etag, its type and a provisioning state that follows the gateway's.
fn nat_rules(p: &Value, gid: &str, etag: &Value) -> ArmResult<Value> {
    let mut out: Vec<Value> = Vec::new();
    // Names seen so far, lower-cased: a set, so that a body with many rules costs linear time.
    let mut seen = std::collections::HashSet::new();
    for r in p
        .get("natRules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = doc::get_str(r, "name").unwrap_or_default();
        crate::id::check_name(Kind::VirtualNetworkGateway, name)?;
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(ArmError::bad(
                "InvalidRequestFormat",
                format!("NAT rule {name} appears more than once in gateway {gid}."),
            ));
        }
        let mut rp = props(r).clone();
        if !rp.is_object() {
            rp = json!({});
        }
        rp["provisioningState"] = json!("Updating");
        out.push(json!({
            "name": name,
            "id": format!("{gid}/natRules/{name}"),
            "etag": etag,
            "type": "Microsoft.Network/virtualNetworkGateways/natRules",
            "properties": rp,
        }));
    }
    Ok(Value::Array(out))
}

fn check_vpn_client(
    tx: &Tx,
    vpn: &Value,
    gid: &str,
    vpn_type: &str,
    sku: &str,
    vnet: &Value,
    vnet_key: &str,
) -> ArmResult<()> {
    if vpn_type != "RouteBased" {
        return Err(ArmError::bad(
            "PointToSiteRequiresRouteBasedGateway",
            format!("Gateway {gid} is PolicyBased; point-to-site configuration requires a RouteBased gateway."),
        ));
    }
    let protocols = doc::strs(vpn.get("vpnClientProtocols").unwrap_or(&Value::Null));
    if sku == "Basic"
        && protocols
            .iter()
            .any(|p| p.eq_ignore_ascii_case("IkeV2") || p.eq_ignore_ascii_case("OpenVPN"))
    {
        return Err(ArmError::bad(
            "BasicSkuNotSupportedFeature",
            format!(
                "Gateway {gid} uses the Basic SKU, which supports only SSTP for point-to-site."
            ),
        ));
    }
    for p in &protocols {
        if !["IkeV2", "SSTP", "OpenVPN"]
            .iter()
            .any(|x| x.eq_ignore_ascii_case(p))
        {
            return Err(ArmError::bad(
                "InvalidVpnClientProtocol",
                format!("VPN client protocol {p} of gateway {gid} must be IkeV2, SSTP or OpenVPN."),
            ));
        }
    }
    super::network::check_prefix_count(
        vpn.get("vpnClientAddressPool"),
        "vpnClientAddressPool",
        &format!("Gateway {gid}"),
        crate::limits::PREFIXES_PER_SPACE,
    )?;
    let pool = doc::prefixes_at(
        vpn.get("vpnClientAddressPool").unwrap_or(&Value::Null),
        "vpnClientAddressPool",
    )?;
    let mut others = doc::vnet_space(vnet);
    for (_, l) in tx.scan(&format!("{vnet_key}/virtualnetworkpeerings/")) {
        others.extend(doc::stored_prefixes(
            props(&l).get("remoteAddressSpace").unwrap_or(&Value::Null),
        ));
    }
    let ov = cidr::overlapping(&pool, &others);
    if !ov.is_empty() {
        return Err(ArmError::bad(
            "VpnClientAddressPoolOverlapsVirtualNetwork",
            format!("The VPN client address pool of gateway {gid} overlaps the address space of its virtual network or of a peered virtual network: {}.", ov.join(", ")),
        ));
    }
    let roots = vpn
        .get("vpnClientRootCertificates")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let revoked = vpn
        .get("vpnClientRevokedCertificates")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if roots > 20 || revoked > 300 {
        return Err(ArmError::bad(
            "VpnClientCertificateLimitExceeded",
            format!("Gateway {gid} has {roots} root and {revoked} revoked certificates; the limits are 20 and 300."),
        ));
    }
    Ok(())
}

pub fn delete_gateway(tx: &mut Tx, id: &ResourceId, deleting: &DeleteSet) -> ArmResult<()> {
    in_use_check(
        tx,
        id,
        "InUseVirtualNetworkGatewayCannotBeDeleted",
        deleting,
    )?;
    let d = tx.get(&id.key()).cloned().unwrap_or(Value::Null);
    if let Some(vk) = props(&d)
        .get("ipConfigurations")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|c| ResourceId::parse(doc::ref_id(props(c), "subnet")?).ok())
        .and_then(|s| s.parent())
        .map(|v| v.key())
    {
        // Spokes that use this gateway through peering keep it from being deleted.
        for (_, l) in tx.scan(&format!("{vk}/virtualnetworkpeerings/")) {
            let Some(rk) = doc::ref_key(props(&l), "remoteVirtualNetwork") else {
                continue;
            };
            if let Some((_, r)) = super::peering::reverse(tx, &vk, &rk) {
                if doc::get_bool(props(&r), "useRemoteGateways", false) {
                    return Err(ArmError::bad(
                        "InUseVirtualNetworkGatewayCannotBeDeleted",
                        format!("Gateway {} cannot be deleted because peering {} uses it through useRemoteGateways. Update that peering first.", id.to_id(), doc::id_str(&r)),
                    ));
                }
            }
        }
    }
    tx.delete(&id.key());
    Ok(())
}

pub fn put_local(tx: &mut Tx, ctx: &mut Ctx, id: &ResourceId, body: Value) -> ArmResult<()> {
    let gid = id.to_id();
    let super::Draft {
        key,
        existing: _,
        doc: mut d,
        props: p,
    } = super::draft(tx, ctx, id, &body)?;
    let ip = doc::get_str(&p, "gatewayIpAddress").filter(|s| !s.is_empty());
    let fqdn = doc::get_str(&p, "fqdn").filter(|s| !s.is_empty());
    if ip.is_none() && fqdn.is_none() {
        return Err(ArmError::bad(
            "LocalNetworkGatewayMustHaveIpAddressOrFqdn",
            format!("Local network gateway {gid} must specify gatewayIpAddress or fqdn."),
        ));
    }
    if let Some(ip) = ip {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(ArmError::bad("InvalidGatewayIpAddress", format!("gatewayIpAddress {ip} of local network gateway {gid} is not a valid IP address.")));
        }
    }
    super::network::check_prefix_count(
        p.get("localNetworkAddressSpace"),
        "localNetworkAddressSpace",
        &format!("Local network gateway {gid}"),
        crate::limits::PREFIXES_PER_SPACE,
    )?;
    let space = doc::prefixes_at(
        p.get("localNetworkAddressSpace").unwrap_or(&Value::Null),
        "localNetworkAddressSpace",
    )?;
    check_bgp(&p, &gid, false)?;
    let pm = props_mut(&mut d);
    pm.insert(
        "localNetworkAddressSpace".into(),
        json!({"addressPrefixes": doc::prefix_strings(&space)}),
    );
    pm.insert("provisioningState".into(), json!("Updating"));
    tx.put(key, d);
    Ok(())
}

const IKE_ENC: [&str; 7] = [
    "DES",
    "DES3",
    "AES128",
    "AES192",
    "AES256",
    "GCMAES256",
    "GCMAES128",
];
const IKE_INT: [&str; 6] = ["MD5", "SHA1", "SHA256", "SHA384", "GCMAES256", "GCMAES128"];
const DH: [&str; 8] = [
    "None",
    "DHGroup1",
    "DHGroup2",
    "DHGroup14",
    "DHGroup2048",
    "ECP256",
    "ECP384",
    "DHGroup24",
];
const ESP_ENC: [&str; 9] = [
    "None",
    "DES",
    "DES3",
    "AES128",
    "AES192",
    "AES256",
    "GCMAES128",
    "GCMAES192",
    "GCMAES256",
];
const ESP_INT: [&str; 6] = [
    "MD5",
    "SHA1",
    "SHA256",
    "GCMAES128",
    "GCMAES192",
    "GCMAES256",
];
const PFS: [&str; 9] = [
    "None", "PFS1", "PFS2", "PFS2048", "ECP256", "ECP384", "PFS24", "PFS14", "PFSMM",
];

/// Checks a custom IPsec/IKE policy: all eight fields, known values, GCM pairing, lifetimes.
pub fn check_ipsec_policy(pol: &Value, owner: &str) -> ArmResult<Value> {
    let fields: [(&str, &[&str]); 6] = [
        ("ipsecEncryption", &ESP_ENC),
        ("ipsecIntegrity", &ESP_INT),
        ("ikeEncryption", &IKE_ENC),
        ("ikeIntegrity", &IKE_INT),
        ("dhGroup", &DH),
        ("pfsGroup", &PFS),
    ];
    let mut out = pol.clone();
    let missing: Vec<&str> = ["saLifeTimeSeconds", "saDataSizeKilobytes"]
        .into_iter()
        .chain(fields.iter().map(|(f, _)| *f))
        .filter(|f| pol.get(*f).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(ArmError::bad(
            "IpsecPolicyIncomplete",
            format!("The IPsec policy of {owner} must specify all algorithms and parameters for both IKE (Main Mode) and IPsec (Quick Mode); missing: {}.", missing.join(", ")),
        ));
    }
    for (f, allowed) in fields {
        let v = doc::get_str(pol, f).unwrap_or("");
        let Some(c) = allowed.iter().find(|a| a.eq_ignore_ascii_case(v)) else {
            return Err(ArmError::bad(
                "InvalidIpsecPolicy",
                format!(
                    "{f} {v} of the IPsec policy of {owner} is not valid; allowed: {}.",
                    allowed.join(", ")
                ),
            ));
        };
        out[f] = json!(c);
    }
    let (enc, int) = (
        out["ipsecEncryption"].as_str().unwrap_or(""),
        out["ipsecIntegrity"].as_str().unwrap_or(""),
    );
    if (enc.starts_with("GCM") || int.starts_with("GCM")) && enc != int {
        return Err(ArmError::bad(
            "IpsecEncryptionAndIntegrityMismatch",
            format!("The IPsec policy of {owner} uses {enc} with {int}: with a GCMAES algorithm, ipsecEncryption and ipsecIntegrity must be the same GCMAES algorithm."),
        ));
    }
    let (ike_enc, ike_int) = (
        out["ikeEncryption"].as_str().unwrap_or(""),
        out["ikeIntegrity"].as_str().unwrap_or(""),
    );
    if ike_int.starts_with("GCM") && ike_enc != ike_int {
        return Err(ArmError::bad(
            "IpsecEncryptionAndIntegrityMismatch",
            format!("The IPsec policy of {owner} uses ikeIntegrity {ike_int} with ikeEncryption {ike_enc}: a GCMAES integrity needs the same GCMAES encryption."),
        ));
    }
    let life = pol["saLifeTimeSeconds"].as_i64().unwrap_or(0);
    if !(300..=172_799).contains(&life) {
        return Err(ArmError::bad(
            "InvalidIpsecPolicy",
            format!("saLifeTimeSeconds {life} of {owner} must be between 300 and 172799."),
        ));
    }
    let kb = pol["saDataSizeKilobytes"].as_i64().unwrap_or(0);
    if !(1024..=2_147_483_647).contains(&kb) && kb != 0 {
        return Err(ArmError::bad("InvalidIpsecPolicy", format!("saDataSizeKilobytes {kb} of {owner} must be 0 (unlimited) or between 1024 and 2147483647.")));
    }
    Ok(out)
}

fn check_shared_key(k: &str, owner: &str) -> ArmResult<()> {
    if k.is_empty() || k.len() > 128 || !k.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return Err(ArmError::bad(
            "InvalidSharedKey",
            format!("The shared key of {owner} must be 1 to 128 printable ASCII characters."),
        ));
    }
    Ok(())
}

pub fn put_connection(tx: &mut Tx, ctx: &mut Ctx, id: &ResourceId, body: Value) -> ArmResult<()> {
    let cid = id.to_id();
    let super::Draft {
        key,
        existing,
        doc: mut d,
        props: p,
    } = super::draft(tx, ctx, id, &body)?;
    let ctype = doc::get_str(&p, "connectionType").ok_or_else(|| {
        ArmError::bad(
            "InvalidRequestFormat",
            format!("Connection {cid} must specify connectionType (IPsec or Vnet2Vnet)."),
        )
    })?;
    let ctype = doc::one_of(
        ctype,
        &["IPsec", "Vnet2Vnet"],
        "UnsupportedConnectionType",
        &format!("Connection type of {cid} (vnet supports IPsec and Vnet2Vnet)"),
    )?;
    let g1 = doc::ref_id(&p, "virtualNetworkGateway1").ok_or_else(|| {
        ArmError::bad(
            "InvalidRequestFormat",
            format!("Connection {cid} must reference virtualNetworkGateway1."),
        )
    })?;
    let (g1id, gw1) = resolve(tx, g1, Kind::VirtualNetworkGateway, &cid)?;
    let gw1_vnet = gateway_vnet(&gw1)
        .and_then(|k| tx.get(&k).cloned())
        .unwrap_or(Value::Null);
    let pm_refs: (Option<Value>, Option<Value>) = match ctype {
        "IPsec" => {
            let l = doc::ref_id(&p, "localNetworkGateway2").ok_or_else(|| {
                ArmError::bad(
                    "InvalidRequestFormat",
                    format!("An IPsec connection ({cid}) must reference localNetworkGateway2."),
                )
            })?;
            let (lid, lng) = resolve(tx, l, Kind::LocalNetworkGateway, &cid)?;
            let ov = cidr::overlapping(
                &doc::stored_prefixes(
                    props(&lng)
                        .get("localNetworkAddressSpace")
                        .unwrap_or(&Value::Null),
                ),
                &doc::vnet_space(&gw1_vnet),
            );
            if !ov.is_empty() {
                return Err(ArmError::bad(
                    "LocalNetworkGatewayAddressSpaceOverlapsVirtualNetwork",
                    format!("The address space of local network gateway {} overlaps virtual network {}: {}.", lid.to_id(), doc::id_str(&gw1_vnet), ov.join(", ")),
                ));
            }
            (None, Some(json!({"id": lid.to_id(), "properties": {}})))
        }
        _ => {
            let g2 = doc::ref_id(&p, "virtualNetworkGateway2").ok_or_else(|| {
                ArmError::bad(
                    "InvalidRequestFormat",
                    format!(
                        "A Vnet2Vnet connection ({cid}) must reference virtualNetworkGateway2."
                    ),
                )
            })?;
            let (g2id, _) = resolve(tx, g2, Kind::VirtualNetworkGateway, &cid)?;
            if g2id.key() == g1id.key() {
                return Err(ArmError::bad(
                    "InvalidRequestFormat",
                    format!(
                        "Connection {cid} connects gateway {} with itself.",
                        g1id.to_id()
                    ),
                ));
            }
            (Some(json!({"id": g2id.to_id(), "properties": {}})), None)
        }
    };
    let sku = props(&gw1)
        .get("sku")
        .and_then(|s| doc::get_str(s, "name"))
        .unwrap_or("");
    let policies: Vec<Value> = p
        .get("ipsecPolicies")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if policies.len() > 1 {
        return Err(ArmError::bad(
            "TooManyIpsecPolicies",
            format!("Connection {cid} may have at most one IPsec policy."),
        ));
    }
    let mut checked = Vec::new();
    for pol in &policies {
        if sku == "Basic" {
            return Err(ArmError::bad(
                "BasicSkuNotSupportedFeature",
                format!(
                    "Custom IPsec policies are not supported on the Basic SKU of gateway {}.",
                    g1id.to_id()
                ),
            ));
        }
        checked.push(check_ipsec_policy(pol, &cid)?);
    }
    let dpd = p
        .get("dpdTimeoutSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(45);
    if !(9..=3600).contains(&dpd) {
        return Err(ArmError::bad(
            "InvalidDpdTimeout",
            format!("dpdTimeoutSeconds {dpd} of {cid} must be between 9 and 3600."),
        ));
    }
    let protocol = doc::one_of(
        doc::get_str(&p, "connectionProtocol").unwrap_or("IKEv2"),
        &["IKEv2", "IKEv1"],
        "InvalidRequestFormat",
        &format!("connectionProtocol of {cid}"),
    )?;
    let mode = doc::one_of(
        doc::get_str(&p, "connectionMode").unwrap_or("Default"),
        &["Default", "ResponderOnly", "InitiatorOnly"],
        "InvalidRequestFormat",
        &format!("connectionMode of {cid}"),
    )?;
    let key_given = doc::get_str(&p, "sharedKey").map(String::from);
    let shared = match key_given {
        Some(k) => {
            check_shared_key(&k, &cid)?;
            k
        }
        None => existing
            .as_ref()
            .and_then(|e| doc::get_str(props(e), "sharedKey").map(String::from))
            .unwrap_or_else(|| ctx.secret(32)),
    };
    let pm = props_mut(&mut d);
    pm.insert("connectionType".into(), json!(ctype));
    pm.insert(
        "virtualNetworkGateway1".into(),
        json!({"id": g1id.to_id(), "properties": {}}),
    );
    pm.remove("virtualNetworkGateway2");
    pm.remove("localNetworkGateway2");
    if let Some(g2) = pm_refs.0 {
        pm.insert("virtualNetworkGateway2".into(), g2);
    }
    if let Some(l2) = pm_refs.1 {
        pm.insert("localNetworkGateway2".into(), l2);
    }
    pm.insert("ipsecPolicies".into(), Value::Array(checked));
    pm.insert("dpdTimeoutSeconds".into(), json!(dpd));
    pm.insert("connectionProtocol".into(), json!(protocol));
    pm.insert("connectionMode".into(), json!(mode));
    pm.insert("sharedKey".into(), json!(shared));
    pm.entry("routingWeight").or_insert(json!(0));
    for f in [
        "enableBgp",
        "useLocalAzureIpAddress",
        "usePolicyBasedTrafficSelectors",
        "expressRouteGatewayBypass",
        "enablePrivateLinkFastPath",
    ] {
        pm.entry(f).or_insert(json!(false));
    }
    pm.entry("trafficSelectorPolicies").or_insert(json!([]));
    pm.insert("provisioningState".into(), json!("Updating"));
    tx.put(key, d);
    Ok(())
}

/// The VNet key a gateway document is deployed in.
pub fn gateway_vnet(gw: &Value) -> Option<String> {
    let c = props(gw).get("ipConfigurations")?.as_array()?.first()?;
    Some(
        ResourceId::parse(doc::ref_id(props(c), "subnet")?)
            .ok()?
            .parent()?
            .key(),
    )
}

/// The `ConnectionSharedKey` body. It is a `SubResource`, but the key has no ARM id of its own:
/// Azure answers `"id": ""`.
fn shared_key_body(value: &str) -> Value {
    json!({"id": "", "value": value})
}

/// `GET …/connections/{name}/sharedkey` → `{"id": "", "value": …}`.
pub fn shared_key(tx: &Tx, id: &ResourceId) -> ArmResult<Value> {
    let d = tx.get(&id.key()).ok_or_else(|| super::not_found(id))?;
    Ok(shared_key_body(
        doc::get_str(props(d), "sharedKey").unwrap_or(""),
    ))
}

/// `PUT …/sharedkey` with `{"value": …}`.
pub fn set_shared_key(
    tx: &mut Tx,
    ctx: &mut Ctx,
    id: &ResourceId,
    body: &Value,
) -> ArmResult<Value> {
    let mut d = tx
        .get(&id.key())
        .cloned()
        .ok_or_else(|| super::not_found(id))?;
    let obj = body
        .as_object()
        .ok_or_else(|| ArmError::invalid_format("The request body must be a JSON object."))?;
    if let Some(k) = obj
        .keys()
        .find(|k| !k.eq_ignore_ascii_case("value") && !k.eq_ignore_ascii_case("id"))
    {
        return Err(ArmError::invalid_format(format!(
            "Cannot parse the request: could not find member '{k}' at path ''."
        )));
    }
    let v = obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("value"))
        .and_then(|(_, v)| v.as_str())
        .ok_or_else(|| {
            ArmError::invalid_format("The shared key request must contain a string 'value'.")
        })?;
    check_shared_key(v, &id.to_id())?;
    props_mut(&mut d).insert("sharedKey".into(), json!(v));
    d["etag"] = json!(ctx.etag());
    tx.put(id.key(), d);
    Ok(shared_key_body(v))
}

/// `POST …/sharedkey/reset` with `{"keyLength": n}`: a new random key of that length.
pub fn reset_shared_key(
    tx: &mut Tx,
    ctx: &mut Ctx,
    id: &ResourceId,
    body: &Value,
) -> ArmResult<Value> {
    let mut d = tx
        .get(&id.key())
        .cloned()
        .ok_or_else(|| super::not_found(id))?;
    let obj = body
        .as_object()
        .ok_or_else(|| ArmError::invalid_format("The request body must be a JSON object."))?;
    if let Some(k) = obj.keys().find(|k| !k.eq_ignore_ascii_case("keyLength")) {
        return Err(ArmError::invalid_format(format!(
            "Cannot parse the request: could not find member '{k}' at path ''."
        )));
    }
    let n = obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("keyLength"))
        .and_then(|(_, v)| v.as_i64())
        .ok_or_else(|| {
            ArmError::invalid_format("The reset request must contain an integer 'keyLength'.")
        })?;
    if !(1..=128).contains(&n) {
        return Err(ArmError::bad(
            "InvalidSharedKeyLength",
            format!("keyLength {n} must be between 1 and 128."),
        ));
    }
    let k = ctx.secret(n as usize);
    props_mut(&mut d).insert("sharedKey".into(), json!(k));
    d["etag"] = json!(ctx.etag());
    tx.put(id.key(), d);
    Ok(json!({"keyLength": n}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Value {
        json!({"saLifeTimeSeconds": 27000, "saDataSizeKilobytes": 102400000, "ipsecEncryption": "GCMAES256", "ipsecIntegrity": "GCMAES256", "ikeEncryption": "AES256", "ikeIntegrity": "SHA256", "dhGroup": "DHGroup14", "pfsGroup": "PFS2048"})
    }

    #[test]
    fn ipsec_policy_rules() {
        assert!(check_ipsec_policy(&policy(), "c").is_ok());
        let mut p = policy();
        p.as_object_mut().unwrap().remove("pfsGroup");
        assert_eq!(
            check_ipsec_policy(&p, "c").unwrap_err().code,
            "IpsecPolicyIncomplete"
        );
        let mut p = policy();
        p["ipsecIntegrity"] = json!("SHA256");
        assert_eq!(
            check_ipsec_policy(&p, "c").unwrap_err().code,
            "IpsecEncryptionAndIntegrityMismatch"
        );
        let mut p = policy();
        p["ipsecEncryption"] = json!("GCMAES128");
        assert_eq!(
            check_ipsec_policy(&p, "c").unwrap_err().code,
            "IpsecEncryptionAndIntegrityMismatch"
        );
        let mut p = policy();
        p["dhGroup"] = json!("DHGroup99");
        assert_eq!(
            check_ipsec_policy(&p, "c").unwrap_err().code,
            "InvalidIpsecPolicy"
        );
        let mut p = policy();
        p["saLifeTimeSeconds"] = json!(10);
        assert_eq!(
            check_ipsec_policy(&p, "c").unwrap_err().code,
            "InvalidIpsecPolicy"
        );
    }

    #[test]
    fn asns() {
        assert!(check_asn(65515, true, "g").is_ok());
        assert!(check_asn(65515, false, "l").is_err());
        assert!(check_asn(12076, false, "l").is_err());
        assert!(check_asn(65001, false, "l").is_ok());
    }
}
