//! Network interfaces and IP address management.
//!
//! Dynamic addresses are the lowest free ones after the five Azure reserves; static ones must
//! lie in the subnet, not be reserved and not be taken. Addresses live in the NIC (and gateway)
//! documents, so deleting the resource releases them, and since writes are serialised an
//! address can never be handed out twice.

use super::resolve;
use crate::cidr;
use crate::ctx::Ctx;
use crate::doc::{self, props, props_mut};
use crate::error::{ArmError, ArmResult};
use crate::id::{Kind, ResourceId};
use crate::limits;
use crate::state::{Tracked, Tx};
use ipnet::IpNet;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

/// Addresses allocated in a subnet (by NICs and gateways), except those of `except` (the
/// resource being rewritten).
pub fn taken_addresses(tx: &Tx, subnet_key: &str, except: Option<&str>) -> BTreeSet<IpAddr> {
    let mut out = BTreeSet::new();
    for r in tx.referrers(subnet_key) {
        if Some(r.as_str()) == except {
            continue;
        }
        let Some(d) = tx.get(&r) else { continue };
        for c in props(d)
            .get("ipConfigurations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let cp = props(c);
            if doc::ref_key(cp, "subnet").as_deref() != Some(subnet_key) {
                continue;
            }
            if let Some(a) = doc::get_str(cp, "privateIPAddress").and_then(|s| s.parse().ok()) {
                out.insert(a);
            }
        }
    }
    out
}

/// The lowest free address of the subnet prefixes of the given family.
pub fn allocate(prefixes: &[IpNet], v6: bool, taken: &BTreeSet<IpAddr>) -> Option<IpAddr> {
    allocate_from(prefixes, v6, taken, &mut Vec::new())
}

/// The lowest free address, searching prefix `i` from `hints[i]` up (missing hints are 0).
/// Taken addresses are walked in order alongside the candidate, so one search costs the
/// number of taken addresses it passes, not a lookup per probe; and since the free set only
/// shrinks during one request, the hints let the next search start where this one stopped.
fn allocate_from(
    prefixes: &[IpNet],
    v6: bool,
    taken: &BTreeSet<IpAddr>,
    hints: &mut Vec<u128>,
) -> Option<IpAddr> {
    hints.resize(hints.len().max(prefixes.len()), 0);
    for (i, p) in prefixes.iter().enumerate() {
        if p.network().is_ipv6() != v6 {
            continue;
        }
        let (mut a, last) = (cidr::first_usable(p).max(hints[i]), cidr::last_usable(p));
        if a <= last {
            for t in taken.range(cidr::from_u128(a, v6)..=cidr::from_u128(last, v6)) {
                if cidr::to_u128(*t) != a {
                    break;
                }
                a += 1;
            }
        }
        hints[i] = a;
        if a <= last {
            return Some(cidr::from_u128(a, v6));
        }
    }
    None
}

fn subnet_full(subnet_id: &str) -> ArmError {
    ArmError::bad(
        "SubnetIsFull",
        format!("Subnet {subnet_id} has no more free IP addresses for a dynamic allocation."),
    )
}

/// Checks a requested static address against the subnet.
pub fn check_static(
    ip: &str,
    prefixes: &[IpNet],
    taken: &BTreeSet<IpAddr>,
    subnet_id: &str,
    owner: &str,
) -> ArmResult<IpAddr> {
    let a: IpAddr = ip.parse().map_err(|_| {
        ArmError::bad(
            "InvalidPrivateIPAddress",
            format!("Private IP address {ip} of {owner} is not a valid IP address."),
        )
    })?;
    let Some(p) = prefixes.iter().find(|p| p.contains(&a)) else {
        return Err(ArmError::bad(
            "PrivateIPAddressNotInSubnet",
            format!("IP configuration {owner} references the private IP address {ip} which is not within the address range of subnet {subnet_id}."),
        ));
    };
    if cidr::is_reserved(p, a) {
        return Err(ArmError::bad(
            "PrivateIPAddressInReservedRange",
            format!("Private IP address {ip} of {owner} is one of the addresses Azure reserves in subnet {subnet_id} (the network address, .1 to .3 and the broadcast address)."),
        ));
    }
    if taken.contains(&a) {
        return Err(ArmError::bad(
            "PrivateIPAddressInUse",
            format!("IP configuration {owner} is using the private IP address {ip} which is already allocated to another resource in subnet {subnet_id}."),
        ));
    }
    Ok(a)
}

pub fn put(tx: &mut Tx, ctx: &mut Ctx, id: &ResourceId, body: Value) -> ArmResult<()> {
    let super::Draft {
        key,
        existing,
        doc: mut d,
        props: p,
    } = super::draft(tx, ctx, id, &body)?;
    let configs: Vec<Value> = p
        .get("ipConfigurations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if configs.is_empty() {
        return Err(ArmError::bad(
            "NetworkInterfaceMustHaveAtLeastOneIpConfiguration",
            format!(
                "Network interface {} must have at least one IP configuration.",
                id.to_id()
            ),
        ));
    }
    if configs.len() > limits::IP_CONFIGS_PER_NIC {
        return Err(limits::count_limit(
            "IpConfigurationCountLimitReached",
            &format!("Network interface {}", id.to_id()),
            "IP configurations",
            configs.len(),
            limits::IP_CONFIGS_PER_NIC,
        ));
    }
    limits::check_dns_servers(
        &p,
        "dnsSettings",
        &format!("Network interface {}", id.to_id()),
    )?;
    if existing.is_none() {
        let location = doc::get_str(&d, "location").unwrap_or("").to_string();
        let slot = Tracked {
            kind: Kind::NetworkInterface,
            subscription: id.subscription.to_ascii_lowercase(),
            location: location.clone(),
        };
        if tx.tracked_count(&slot) >= limits::NICS_PER_REGION {
            return Err(limits::region_limit(
                "NetworkInterfaceCountLimitReached",
                limits::NICS_PER_REGION,
                "network interfaces",
                &location,
            ));
        }
    }
    let old_configs: Vec<Value> = existing
        .as_ref()
        .and_then(|e| {
            props(e)
                .get("ipConfigurations")
                .and_then(Value::as_array)
                .cloned()
        })
        .unwrap_or_default();
    let primary_subnet = configs
        .iter()
        .find_map(|c| doc::ref_id(props(c), "subnet").map(String::from));
    let Some(primary_subnet) = primary_subnet else {
        return Err(ArmError::bad(
            "InvalidRequestFormat",
            format!(
                "The IP configurations of network interface {} must reference a subnet.",
                id.to_id()
            ),
        ));
    };
    let explicit_primary = configs
        .iter()
        .filter(|c| doc::get_bool(props(c), "primary", false))
        .count();
    if explicit_primary > 1 {
        return Err(ArmError::bad(
            "OnlyOnePrimaryIpConfigurationAllowed",
            format!(
                "Network interface {} can have only one primary IP configuration.",
                id.to_id()
            ),
        ));
    }
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    let mut vnet_key: Option<String> = None;
    // Per subnet: the addresses taken by others plus those handed out by this request so far
    // (gathered once per subnet, not once per configuration), and the lowest address a dynamic
    // allocation can still find free (the free set only shrinks within one request).
    let mut pools: HashMap<String, (BTreeSet<IpAddr>, Vec<u128>)> = HashMap::new();
    let old_by_name: HashMap<String, &Value> = old_configs
        .iter()
        .map(|o| (doc::name(o).to_ascii_lowercase(), o))
        .collect();
    for (i, c) in configs.iter().enumerate() {
        let cname = doc::get_str(c, "name")
            .unwrap_or(if i == 0 { "ipconfig1" } else { "" })
            .to_string();
        if cname.is_empty() {
            return Err(ArmError::bad(
                "InvalidRequestFormat",
                "Every IP configuration must have a name.",
            ));
        }
        crate::id::check_name(Kind::NetworkInterface, &cname)?;
        if !names.insert(cname.to_ascii_lowercase()) {
            return Err(ArmError::bad(
                "InvalidRequestFormat",
                format!("IP configuration name {cname} is used more than once."),
            ));
        }
        let cp = props(c).clone();
        let subnet_ref = doc::ref_id(&cp, "subnet")
            .unwrap_or(&primary_subnet)
            .to_string();
        let owner = format!("{}/ipConfigurations/{cname}", id.to_id());
        let (sid, subnet) = resolve(tx, &subnet_ref, Kind::Subnet, &owner)?;
        if sid.leaf().eq_ignore_ascii_case("GatewaySubnet") {
            return Err(ArmError::bad(
                "GatewaySubnet",
                format!("IP configuration {owner} cannot reference GatewaySubnet {}: only virtual network gateways may be deployed there.", sid.to_id()),
            ));
        }
        let vk = sid.parent().expect("vnet").key();
        if vnet_key.get_or_insert(vk.clone()) != &vk {
            return Err(ArmError::bad(
                "IpConfigurationsOfNicMustBeInSameVnet",
                format!("All IP configurations of network interface {} must reference subnets of the same virtual network.", id.to_id()),
            ));
        }
        let v6 = doc::get_str(&cp, "privateIPAddressVersion") == Some("IPv6");
        let prefixes = doc::subnet_prefixes(&subnet);
        let (taken, hint) = pools
            .entry(sid.key())
            .or_insert_with(|| (taken_addresses(tx, &sid.key(), Some(&key)), Vec::new()));
        let requested = doc::get_str(&cp, "privateIPAddress");
        let default_method = if requested.is_some() {
            "Static"
        } else {
            "Dynamic"
        };
        let method = doc::one_of(
            doc::get_str(&cp, "privateIPAllocationMethod").unwrap_or(default_method),
            &["Static", "Dynamic"],
            "InvalidRequestFormat",
            &format!("privateIPAllocationMethod of {owner}"),
        )?;
        let old = old_by_name.get(&cname.to_ascii_lowercase()).copied();
        let addr = match (method, requested) {
            ("Static", None) => {
                return Err(ArmError::bad(
                    "PrivateIPAddressIsRequiredForStaticAllocation",
                    format!("IP configuration {owner} has allocation method Static but no privateIPAddress."),
                ))
            }
            ("Static", Some(ip)) => {
                let a = check_static(ip, &prefixes, taken, &sid.to_id(), &owner)?;
                if a.is_ipv6() != v6 {
                    return Err(ArmError::bad(
                        "InvalidPrivateIPAddress",
                        format!(
                            "Private IP address {ip} of {owner} does not match privateIPAddressVersion {}.",
                            if v6 { "IPv6" } else { "IPv4" }
                        ),
                    ));
                }
                a
            }
            _ => {
                // A dynamic address is kept across updates while the subnet stays the same.
                let kept = old.and_then(|o| {
                    let op = props(o);
                    (doc::ref_key(op, "subnet").as_deref() == Some(sid.key().as_str()))
                        .then(|| doc::get_str(op, "privateIPAddress").and_then(|s| s.parse::<IpAddr>().ok()))
                        .flatten()
                        .filter(|a| a.is_ipv6() == v6 && !taken.contains(a) && prefixes.iter().any(|p| p.contains(a)))
                });
                match kept {
                    Some(a) => a,
                    None => {
                        allocate_from(&prefixes, v6, taken, hint)
                            .ok_or_else(|| subnet_full(&sid.to_id()))?
                    }
                }
            }
        };
        taken.insert(addr);
        let primary = if explicit_primary == 1 {
            doc::get_bool(&cp, "primary", false)
        } else {
            i == 0
        };
        let mut np = cp.clone();
        np["privateIPAddress"] = json!(addr.to_string());
        np["privateIPAllocationMethod"] = json!(method);
        np["privateIPAddressVersion"] = json!(if v6 { "IPv6" } else { "IPv4" });
        np["subnet"] = json!({"id": doc::id_str(&subnet)});
        np["primary"] = json!(primary);
        np["provisioningState"] = json!("Succeeded");
        if let Some(pip) = doc::ref_id(&cp, "publicIPAddress") {
            let (pid, _) = resolve(tx, pip, Kind::PublicIp, &owner)?;
            let users: Vec<String> = tx
                .referrers(&pid.key())
                .into_iter()
                .filter(|u| u != &key)
                .collect();
            if !users.is_empty() {
                return Err(ArmError::bad(
                    "PublicIPAddressInUse",
                    format!(
                        "Public IP address {} is already associated with {}.",
                        pid.to_id(),
                        users[0]
                    ),
                ));
            }
            np["publicIPAddress"] = json!({"id": pid.to_id()});
        }
        out.push(json!({
            "name": cname,
            "id": owner,
            "etag": d["etag"].clone(),
            "type": "Microsoft.Network/networkInterfaces/ipConfigurations",
            "properties": np,
        }));
    }
    let guid = doc::get_str(props(&d), "resourceGuid")
        .unwrap_or("")
        .to_string();
    let pm = props_mut(&mut d);
    pm.insert("ipConfigurations".into(), Value::Array(out));
    pm.entry("enableIPForwarding").or_insert(json!(false));
    pm.entry("enableAcceleratedNetworking")
        .or_insert(json!(false));
    pm.entry("disableTcpStateTracking").or_insert(json!(false));
    let dns = pm.entry("dnsSettings").or_insert(json!({}));
    if dns.get("dnsServers").is_none() {
        dns["dnsServers"] = json!([]);
    }
    dns["appliedDnsServers"] = dns["dnsServers"].clone();
    pm.insert("macAddress".into(), json!(mac_from(&guid)));
    pm.insert("vnetEncryptionSupported".into(), json!(false));
    pm.entry("nicType").or_insert(json!("Standard"));
    tx.put(key, d);
    Ok(())
}

/// A stable MAC address in Azure's 00-0D-3A OUI, derived from the NIC's resourceGuid.
fn mac_from(guid: &str) -> String {
    let h: Vec<u8> = guid.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    let hex = |i: usize| {
        h.get(i)
            .map(|b| (*b as char).to_ascii_uppercase())
            .unwrap_or('0')
    };
    format!(
        "00-0D-3A-{}{}-{}{}-{}{}",
        hex(0),
        hex(1),
        hex(2),
        hex(3),
        hex(4),
        hex(5)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_is_lowest_free_after_reserved() {
        let p: Vec<IpNet> = vec!["10.0.0.0/29".parse().unwrap()];
        let mut taken = BTreeSet::new();
        let a = allocate(&p, false, &taken).unwrap();
        assert_eq!(a.to_string(), "10.0.0.4");
        taken.insert(a);
        assert_eq!(allocate(&p, false, &taken).unwrap().to_string(), "10.0.0.5");
        taken.insert("10.0.0.5".parse().unwrap());
        taken.insert("10.0.0.6".parse().unwrap());
        assert_eq!(
            allocate(&p, false, &taken),
            None,
            "/29 has exactly 3 usable"
        );
    }

    #[test]
    fn static_checks() {
        let p: Vec<IpNet> = vec!["10.0.0.0/24".parse().unwrap()];
        let taken: BTreeSet<IpAddr> = ["10.0.0.9".parse().unwrap()].into();
        assert_eq!(
            check_static("10.0.1.4", &p, &taken, "s", "o")
                .unwrap_err()
                .code,
            "PrivateIPAddressNotInSubnet"
        );
        assert_eq!(
            check_static("10.0.0.3", &p, &taken, "s", "o")
                .unwrap_err()
                .code,
            "PrivateIPAddressInReservedRange"
        );
        assert_eq!(
            check_static("10.0.0.255", &p, &taken, "s", "o")
                .unwrap_err()
                .code,
            "PrivateIPAddressInReservedRange"
        );
        assert_eq!(
            check_static("10.0.0.9", &p, &taken, "s", "o")
                .unwrap_err()
                .code,
            "PrivateIPAddressInUse"
        );
        assert_eq!(
            check_static("nope", &p, &taken, "s", "o").unwrap_err().code,
            "InvalidPrivateIPAddress"
        );
        assert!(check_static("10.0.0.10", &p, &taken, "s", "o").is_ok());
    }
}
