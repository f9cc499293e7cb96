//! Virtual networks and subnets: address spaces, subnet placement and overlap, full-replace
//! PUT of the subnet list, and the in-use rules for deletion.

use super::{child, in_use_check, peering, require_parent, tracked, DeleteSet};
use crate::cidr::{self, overlaps};
use crate::ctx::Ctx;
use crate::doc::{self, props, props_mut};
use crate::error::{ArmError, ArmResult};
use crate::id::{Kind, ResourceId};
use crate::state::Tx;
use ipnet::IpNet;
use serde_json::{json, Value};

/// Validates an address space: at least one canonical prefix, none forbidden, none overlapping.
fn check_space(space: &[IpNet], vnet: &str) -> ArmResult<()> {
    if space.is_empty() {
        return Err(ArmError::bad(
            "InvalidAddressSpace",
            format!("Virtual network {vnet} must have at least one address prefix in its address space."),
        ));
    }
    for (i, a) in space.iter().enumerate() {
        if let Some(why) = cidr::forbidden_in_vnet(a) {
            return Err(ArmError::bad(
                "InvalidAddressSpace",
                format!("Address prefix {a} of virtual network {vnet} overlaps a {why} range that cannot be used in a virtual network."),
            ));
        }
        for b in &space[i + 1..] {
            if overlaps(a, b) {
                return Err(ArmError::bad(
                    "VnetAddressSpaceOverlapsWithItself",
                    format!("Address prefixes {a} and {b} of virtual network {vnet} overlap."),
                ));
            }
        }
    }
    Ok(())
}

pub fn put_vnet(tx: &mut Tx, ctx: &mut Ctx, id: &ResourceId, body: Value) -> ArmResult<()> {
    let key = id.key();
    let existing = tx.get(&key).cloned();
    let p = props(&body).clone();
    let space = doc::prefixes_at(
        p.get("addressSpace").unwrap_or(&Value::Null),
        "address space",
    )?;
    check_space(&space, &id.to_id())?;

    let mut d = tracked(ctx, id, &body, existing.as_ref())?;
    let pm = props_mut(&mut d);
    pm.remove("subnets");
    pm.remove("virtualNetworkPeerings");
    pm.insert(
        "addressSpace".into(),
        json!({"addressPrefixes": doc::prefix_strings(&space)}),
    );
    if let Some(bgp) = pm.get_mut("bgpCommunities") {
        bgp["regionalCommunity"] = json!("12076:50004");
    }
    // A changed address space must not collide with peered VNets.
    if existing.is_some() {
        for (_, link) in tx.scan(&format!("{key}/virtualnetworkpeerings/")) {
            let Some(rk) = doc::ref_key(props(&link), "remoteVirtualNetwork") else {
                continue;
            };
            if let Some(remote) = tx.get(&rk) {
                let ov = cidr::overlapping(&space, &doc::vnet_space(remote));
                if !ov.is_empty() {
                    return Err(ArmError::bad(
                        "VnetAddressSpacesOverlap",
                        format!(
                            "Cannot update virtual network {}. Its address space would overlap with peered virtual network {}. Overlapping address prefixes: {}",
                            id.to_id(),
                            doc::id_str(remote),
                            ov.join(", ")
                        ),
                    ));
                }
            }
        }
        if let Some(e) = &existing {
            d["_vnet"] = doc::private(e).clone();
        }
    }
    tx.put(key.clone(), d);

    // Full replace of the subnet list: listed subnets are created or updated, others deleted.
    let listed: Vec<Value> = p
        .get("subnets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut keep = DeleteSet::new();
    for s in &listed {
        let name = doc::get_str(s, "name").ok_or_else(|| {
            ArmError::bad(
                "InvalidRequestFormat",
                "Every subnet in properties.subnets must have a name.",
            )
        })?;
        crate::id::check_name(Kind::Subnet, name)?;
        let sid = ResourceId::child_of(id, Kind::Subnet, name);
        if !keep.insert(sid.key()) {
            return Err(ArmError::bad(
                "InvalidRequestFormat",
                format!("Subnet {name} appears more than once in properties.subnets."),
            ));
        }
    }
    for (k, _) in tx.scan(&format!("{key}/subnets/")) {
        if !keep.contains(&k) {
            let sid = ResourceId::parse(tx.get(&k).map(doc::id_str).unwrap_or(&k))?;
            delete_subnet(tx, &sid, &Default::default())?;
        }
    }
    for s in &listed {
        let sid = ResourceId::child_of(
            id,
            Kind::Subnet,
            doc::get_str(s, "name").unwrap_or_default(),
        );
        put_subnet(tx, ctx, &sid, s.clone())?;
    }
    // Subnets not mentioned were deleted above; those kept must still fit the new space.
    for (_, s) in tx.scan(&format!("{key}/subnets/")) {
        check_subnet_in_space(&s, &space, id)?;
    }
    // Peerings listed inline are created or updated; unlisted peerings are left alone.
    if let Some(links) = p.get("virtualNetworkPeerings").and_then(Value::as_array) {
        for l in links {
            let name = doc::get_str(l, "name").ok_or_else(|| {
                ArmError::bad(
                    "InvalidRequestFormat",
                    "Every peering in properties.virtualNetworkPeerings must have a name.",
                )
            })?;
            let lid = ResourceId::child_of(id, Kind::Peering, name);
            crate::id::check_name(Kind::Peering, name)?;
            peering::put(tx, ctx, &lid, l.clone(), &Default::default())?;
        }
    }
    Ok(())
}

fn check_subnet_in_space(s: &Value, space: &[IpNet], vnet: &ResourceId) -> ArmResult<()> {
    for sp in doc::subnet_prefixes(s) {
        if !space.iter().any(|v| v.contains(&sp)) {
            return Err(ArmError::bad(
                "NetcfgSubnetRangeOutsideVnet",
                format!(
                    "Subnet '{}' is not valid because its IP address range is outside the IP address range of virtual network '{}'.",
                    doc::name(s),
                    vnet.name
                ),
            ));
        }
    }
    Ok(())
}

/// The prefixes of a subnet request: `addressPrefix` or `addressPrefixes`, canonical, sized as
/// Azure requires (IPv4 /29 or larger, IPv6 exactly /64).
fn subnet_request_prefixes(p: &Value, name: &str, vnet: &str) -> ArmResult<Vec<IpNet>> {
    let one = doc::get_str(p, "addressPrefix");
    let many = p.get("addressPrefixes").map(doc::strs);
    let raw: Vec<String> = match (one, many) {
        (Some(_), Some(m)) if !m.is_empty() => {
            return Err(ArmError::bad(
                "InvalidRequestFormat",
                format!("Subnet '{name}' specifies both addressPrefix and addressPrefixes; use one of them."),
            ))
        }
        (Some(s), _) => vec![s.to_string()],
        (None, Some(m)) if !m.is_empty() => m,
        _ => {
            return Err(ArmError::bad(
                "NetcfgInvalidSubnet",
                format!("Subnet '{name}' is not valid in virtual network '{vnet}': it has no address prefix."),
            ))
        }
    };
    let mut out = Vec::new();
    for s in raw {
        let n = cidr::parse_prefix(&s, &format!("subnet '{name}'"))?;
        let ok = match n {
            IpNet::V4(v) => v.prefix_len() <= 29,
            IpNet::V6(v) => v.prefix_len() == 64,
        };
        if !ok {
            return Err(ArmError::bad(
                "NetcfgInvalidSubnet",
                format!(
                    "Subnet '{name}' is not valid in virtual network '{vnet}': prefix {n} is too small or of the wrong length (IPv4 subnets must be /29 or larger, IPv6 subnets exactly /64)."
                ),
            ));
        }
        if out.iter().any(|o| overlaps(o, &n)) {
            return Err(ArmError::bad(
                "NetcfgSubnetRangesOverlap",
                format!("Subnet '{name}' lists overlapping prefixes in virtual network '{vnet}'."),
            ));
        }
        out.push(n);
    }
    Ok(out)
}

pub fn put_subnet(tx: &mut Tx, ctx: &mut Ctx, id: &ResourceId, body: Value) -> ArmResult<()> {
    let vnet = require_parent(tx, id)?;
    let key = id.key();
    let name = id.leaf().to_string();
    let p = props(&body).clone();
    let prefixes = subnet_request_prefixes(&p, &name, &id.name)?;
    let space = doc::vnet_space(&vnet);
    let mut d = child(ctx, id, &body);
    check_subnet_in_space(&d_with(&mut d, &prefixes, &p), &space, id)?;
    // No overlap with sibling subnets.
    let vkey = id.parent().expect("parent").key();
    for (k, s) in tx.scan(&format!("{vkey}/subnets/")) {
        if k == key {
            continue;
        }
        let theirs = doc::subnet_prefixes(&s);
        if prefixes
            .iter()
            .any(|a| theirs.iter().any(|b| overlaps(a, b)))
        {
            return Err(ArmError::bad(
                "NetcfgSubnetRangesOverlap",
                format!(
                    "Subnet '{name}' is not valid because its IP address range overlaps with that of an existing subnet in virtual network '{}'.",
                    id.name
                ),
            ));
        }
    }
    // A subnet in use keeps its range: every address handed out must stay inside it.
    if let Some(old) = tx.get(&key) {
        if doc::subnet_prefixes(old) != prefixes {
            let taken = super::taken_addresses(tx, &key, None);
            if let Some(a) = taken
                .iter()
                .find(|a| !prefixes.iter().any(|p| p.contains(*a)))
            {
                return Err(ArmError::bad(
                    "InUseSubnetCannotBeUpdated",
                    format!(
                        "Subnet {name} is in use (address {a} is allocated) and its address range cannot be changed to exclude it. See aka.ms/deletesubnet."
                    ),
                ));
            }
        }
    }
    // The route table must exist.
    if let Some(rt) = doc::ref_id(&p, "routeTable") {
        let (_, t) = super::resolve(tx, rt, Kind::RouteTable, &format!("subnet {name}"))?;
        props_mut(&mut d).insert("routeTable".into(), json!({"id": doc::id_str(&t)}));
    }
    if let Some(nsg) = doc::ref_id(&p, "networkSecurityGroup") {
        props_mut(&mut d).insert("networkSecurityGroup".into(), json!({"id": nsg}));
    }
    let pm = props_mut(&mut d);
    pm.entry("privateEndpointNetworkPolicies")
        .or_insert(json!("Disabled"));
    pm.entry("privateLinkServiceNetworkPolicies")
        .or_insert(json!("Enabled"));
    tx.put(key, d);
    Ok(())
}

/// Writes the canonical prefixes into the subnet document (keeping the field the client used).
fn d_with(d: &mut Value, prefixes: &[IpNet], p: &Value) -> Value {
    let pm = props_mut(d);
    if p.get("addressPrefix").is_some() {
        pm.insert("addressPrefix".into(), json!(prefixes[0].to_string()));
    } else {
        pm.insert("addressPrefixes".into(), doc::prefix_strings(prefixes));
    }
    d.clone()
}

pub fn delete_subnet(tx: &mut Tx, id: &ResourceId, deleting: &DeleteSet) -> ArmResult<()> {
    let users: Vec<String> = tx
        .referrers(&id.key())
        .into_iter()
        .filter(|r| !deleting.contains(r))
        .collect();
    if let Some(u) = users.first() {
        let d = tx.get(u).cloned().unwrap_or(Value::Null);
        let what = match doc::doc_id(&d).map(|r| r.kind) {
            Some(Kind::VirtualNetworkGateway) => {
                format!("{}/ipConfigurations/default", doc::id_str(&d))
            }
            _ => format!(
                "{}/ipConfigurations/{}",
                doc::id_str(&d),
                first_ipconfig_on(&d, &id.key())
            ),
        };
        return Err(ArmError::bad(
            "InUseSubnetCannotBeDeleted",
            format!(
                "Subnet {} is in use by {what} and cannot be deleted. In order to delete the subnet, delete all the resources within the subnet. See aka.ms/deletesubnet.",
                id.leaf()
            ),
        ));
    }
    tx.delete(&id.key());
    Ok(())
}

fn first_ipconfig_on(d: &Value, subnet_key: &str) -> String {
    props(d)
        .get("ipConfigurations")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .find(|c| doc::ref_key(props(c), "subnet").as_deref() == Some(subnet_key))
                .map(|c| doc::name(c).to_string())
        })
        .unwrap_or_else(|| "ipconfig1".into())
}

/// Deletes a VNet with its subnets and peerings. Links of other VNets that point at it go
/// Disconnected. `deleting` lists other keys deleted in the same operation.
pub fn delete_vnet(
    tx: &mut Tx,
    _ctx: &mut Ctx,
    id: &ResourceId,
    deleting: &DeleteSet,
) -> ArmResult<()> {
    let key = id.key();
    let subnets = tx.scan(&format!("{key}/subnets/"));
    let mut all: DeleteSet = deleting.clone();
    all.extend(subnets.iter().map(|(k, _)| k.clone()));
    for (k, s) in &subnets {
        let sid = ResourceId::parse(doc::id_str(s)).unwrap_or_else(|_| id.clone());
        let _ = k;
        delete_subnet(tx, &sid, &all)?;
    }
    in_use_check(tx, id, "InUseVirtualNetworkCannotBeDeleted", &all)?;
    for (k, _) in tx.scan(&format!("{key}/virtualnetworkpeerings/")) {
        tx.delete(&k);
    }
    // Every link elsewhere that points here loses its remote.
    for r in tx.referrers(&key) {
        if r.contains("/virtualnetworkpeerings/") && !all.contains(&r) {
            peering::mark_disconnected(tx, &r);
        }
    }
    tx.delete(&key);
    Ok(())
}
