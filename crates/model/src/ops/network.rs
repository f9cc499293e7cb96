//! Virtual networks and subnets: address spaces, subnet placement and overlap, full-replace
//! PUT of the subnet list, and the in-use rules for deletion.

use super::{child, in_use_check, peering, require_parent, tracked, DeleteSet};
use crate::cidr;
use crate::ctx::Ctx;
use crate::doc::{self, props, props_mut};
use crate::error::{ArmError, ArmResult};
use crate::id::{Kind, ResourceId};
use crate::limits;
use crate::state::{Tracked, Tx};
use ipnet::IpNet;
use serde_json::{json, Value};

/// Validates an address space: at least one canonical prefix, none forbidden, none overlapping
/// (sorted neighbour check, O(n log n)), at most [`limits::PREFIXES_PER_SPACE`].
fn check_space(space: &[IpNet], vnet: &str) -> ArmResult<()> {
    if space.is_empty() {
        return Err(ArmError::bad(
            "InvalidAddressSpace",
            format!("Virtual network {vnet} must have at least one address prefix in its address space."),
        ));
    }
    for a in space {
        if let Some(why) = cidr::forbidden_in_vnet(a) {
            return Err(ArmError::bad(
                "InvalidAddressSpace",
                format!("Address prefix {a} of virtual network {vnet} overlaps a {why} range that cannot be used in a virtual network."),
            ));
        }
    }
    if let Some((i, j)) = cidr::find_overlap(space) {
        return Err(ArmError::bad(
            "VnetAddressSpaceOverlapsWithItself",
            format!(
                "Address prefixes {} and {} of virtual network {vnet} overlap.",
                space[i], space[j]
            ),
        ));
    }
    Ok(())
}

/// The number of strings in an `{addressPrefixes: [...]}` object, refused over `limit` before
/// anything is parsed.
pub(crate) fn check_prefix_count(
    v: Option<&Value>,
    what: &str,
    owner: &str,
    limit: usize,
) -> ArmResult<()> {
    let n = v
        .and_then(|v| v.get("addressPrefixes"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if n > limit {
        return Err(limits::prefix_limit(what, owner, n, limit));
    }
    Ok(())
}

/// Refuses a new VNet beyond Azure's per-subscription-per-region count.
fn check_vnet_count(tx: &Tx, id: &ResourceId, location: &str) -> ArmResult<()> {
    let slot = Tracked {
        kind: Kind::VirtualNetwork,
        subscription: id.subscription.to_ascii_lowercase(),
        location: location.to_string(),
    };
    if tx.tracked_count(&slot) >= limits::VNETS_PER_REGION {
        return Err(limits::region_limit(
            "VirtualNetworkCountLimitReached",
            limits::VNETS_PER_REGION,
            "virtual networks",
            location,
        ));
    }
    Ok(())
}

/// A listed subnet of a VNet PUT, validated on its own, before the checks among siblings.
struct Listed {
    id: ResourceId,
    body: Value,
    prefixes: Vec<IpNet>,
}

pub fn put_vnet(tx: &mut Tx, ctx: &mut Ctx, id: &ResourceId, mut body: Value) -> ArmResult<()> {
    let key = id.key();
    let existing = tx.get(&key).cloned();
    // The child lists are moved out of the body (never copied): they become documents of
    // their own, and the VNet document does not hold them.
    let (listed, links) = {
        let pm = props_mut(&mut body);
        (pm.remove("subnets"), pm.remove("virtualNetworkPeerings"))
    };
    let listed: Vec<Value> = match listed {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    let p = props(&body);
    check_prefix_count(
        p.get("addressSpace"),
        "the address space",
        &format!("Virtual network {}", id.to_id()),
        limits::PREFIXES_PER_SPACE,
    )?;
    let space = doc::prefixes_at(
        p.get("addressSpace").unwrap_or(&Value::Null),
        "address space",
    )?;
    check_space(&space, &id.to_id())?;
    limits::check_dns_servers(p, "dhcpOptions", &format!("Virtual network {}", id.to_id()))?;
    if listed.len() > limits::SUBNETS_PER_VNET {
        return Err(limits::count_limit(
            "SubnetCountLimitReached",
            &format!("Virtual network {}", id.to_id()),
            "subnets",
            listed.len(),
            limits::SUBNETS_PER_VNET,
        ));
    }

    let mut d = tracked(ctx, id, &body, existing.as_ref())?;
    if existing.is_none() {
        check_vnet_count(tx, id, doc::get_str(&d, "location").unwrap_or(""))?;
    }
    let pm = props_mut(&mut d);
    pm.insert(
        "addressSpace".into(),
        json!({"addressPrefixes": doc::prefix_strings(&space)}),
    );
    if let Some(bgp) = pm.get_mut("bgpCommunities") {
        bgp["regionalCommunity"] = json!("12076:50004");
    }
    // A changed address space must not collide with peered VNets.
    if existing.is_some() {
        for (_, link) in tx.scan_refs(&format!("{key}/virtualnetworkpeerings/")) {
            let Some(rk) = doc::ref_key(props(link), "remoteVirtualNetwork") else {
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
    for k in tx.scan_keys(&format!("{key}/subnets/")) {
        if !keep.contains(&k) {
            let sid = ResourceId::parse(tx.get(&k).map(doc::id_str).unwrap_or(&k))?;
            delete_subnet(tx, &sid, &Default::default())?;
        }
    }
    // Each listed subnet on its own (prefixes, inside the new space), then all of them against
    // each other at once: the subnets left after this PUT are exactly the listed ones, so the
    // sibling check is one sorted sweep over their prefixes instead of one scan per subnet.
    let space_index = cidr::Disjoint::new(&space);
    let mut subnets = Vec::with_capacity(listed.len());
    for s in listed {
        let sid = ResourceId::child_of(
            id,
            Kind::Subnet,
            doc::get_str(&s, "name").unwrap_or_default(),
        );
        let prefixes = subnet_request_prefixes(props(&s), sid.leaf(), &id.name)?;
        check_in_space(sid.leaf(), &prefixes, &space_index, id)?;
        subnets.push(Listed {
            id: sid,
            body: s,
            prefixes,
        });
    }
    let all: Vec<IpNet> = subnets
        .iter()
        .flat_map(|l| l.prefixes.iter().copied())
        .collect();
    let owner: Vec<usize> = subnets
        .iter()
        .enumerate()
        .flat_map(|(i, l)| std::iter::repeat_n(i, l.prefixes.len()))
        .collect();
    if let Some((_, j)) = cidr::find_overlap(&all) {
        return Err(sibling_overlap(subnets[owner[j]].id.leaf(), &id.name));
    }
    for l in subnets {
        write_subnet(tx, ctx, &l.id, l.body, l.prefixes)?;
    }
    // Peerings listed inline are created or updated; unlisted peerings are left alone.
    if let Some(Value::Array(links)) = links {
        for l in links {
            let name = doc::get_str(&l, "name")
                .ok_or_else(|| {
                    ArmError::bad(
                        "InvalidRequestFormat",
                        "Every peering in properties.virtualNetworkPeerings must have a name.",
                    )
                })?
                .to_string();
            let lid = ResourceId::child_of(id, Kind::Peering, &name);
            crate::id::check_name(Kind::Peering, &name)?;
            peering::put(tx, ctx, &lid, l, &Default::default())?;
        }
    }
    Ok(())
}

fn sibling_overlap(name: &str, vnet: &str) -> ArmError {
    ArmError::bad(
        "NetcfgSubnetRangesOverlap",
        format!(
            "Subnet '{name}' is not valid because its IP address range overlaps with that of an existing subnet in virtual network '{vnet}'."
        ),
    )
}

fn outside_vnet(name: &str, vnet: &ResourceId) -> ArmError {
    ArmError::bad(
        "NetcfgSubnetRangeOutsideVnet",
        format!(
            "Subnet '{name}' is not valid because its IP address range is outside the IP address range of virtual network '{}'.",
            vnet.name
        ),
    )
}

/// Every prefix of subnet `name` must lie in one block of the (validated, disjoint) space.
fn check_in_space(
    name: &str,
    prefixes: &[IpNet],
    space: &cidr::Disjoint,
    vnet: &ResourceId,
) -> ArmResult<()> {
    if prefixes.iter().all(|p| space.contains(p)) {
        Ok(())
    } else {
        Err(outside_vnet(name, vnet))
    }
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
    if raw.len() > limits::PREFIXES_PER_SUBNET {
        return Err(limits::prefix_limit(
            "addressPrefixes",
            &format!("Subnet '{name}' of virtual network '{vnet}'"),
            raw.len(),
            limits::PREFIXES_PER_SUBNET,
        ));
    }
    let mut out = Vec::with_capacity(raw.len());
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
        out.push(n);
    }
    if cidr::find_overlap(&out).is_some() {
        return Err(ArmError::bad(
            "NetcfgSubnetRangesOverlap",
            format!("Subnet '{name}' lists overlapping prefixes in virtual network '{vnet}'."),
        ));
    }
    Ok(out)
}

pub fn put_subnet(tx: &mut Tx, ctx: &mut Ctx, id: &ResourceId, body: Value) -> ArmResult<()> {
    let vnet = require_parent(tx, id)?;
    let key = id.key();
    let name = id.leaf().to_string();
    let prefixes = subnet_request_prefixes(props(&body), &name, &id.name)?;
    let space = cidr::Disjoint::new(&doc::vnet_space(&vnet));
    check_in_space(&name, &prefixes, &space, id)?;
    let vkey = id.parent().expect("parent").key();
    let siblings = tx.scan_refs(&format!("{vkey}/subnets/"));
    if !tx.exists(&key) && siblings.len() >= limits::SUBNETS_PER_VNET {
        return Err(limits::count_limit(
            "SubnetCountLimitReached",
            &format!("Virtual network {}", doc::id_str(&vnet)),
            "subnets",
            siblings.len() + 1,
            limits::SUBNETS_PER_VNET,
        ));
    }
    // No overlap with sibling subnets: one sorted sweep over their prefixes.
    let theirs: Vec<IpNet> = siblings
        .iter()
        .filter(|(k, _)| *k != key)
        .flat_map(|(_, s)| doc::subnet_prefixes(s))
        .collect();
    if cidr::any_overlap(&prefixes, &theirs) {
        return Err(sibling_overlap(&name, &id.name));
    }
    write_subnet(tx, ctx, id, body, prefixes)
}

/// Stages a subnet whose prefixes were validated (canonical, inside the space, clear of its
/// siblings): the in-use rule for a changed range, the route table, the defaults.
fn write_subnet(
    tx: &mut Tx,
    ctx: &mut Ctx,
    id: &ResourceId,
    body: Value,
    prefixes: Vec<IpNet>,
) -> ArmResult<()> {
    let key = id.key();
    let name = id.leaf().to_string();
    let p = props(&body);
    let mut d = child(ctx, id, &body);
    d_with(&mut d, &prefixes, p);
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
    if let Some(rt) = doc::ref_id(p, "routeTable") {
        let (_, t) = super::resolve(tx, rt, Kind::RouteTable, &format!("subnet {name}"))?;
        props_mut(&mut d).insert("routeTable".into(), json!({"id": doc::id_str(&t)}));
    }
    if let Some(nsg) = doc::ref_id(p, "networkSecurityGroup") {
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
fn d_with(d: &mut Value, prefixes: &[IpNet], p: &Value) {
    let pm = props_mut(d);
    if p.get("addressPrefix").is_some() {
        pm.insert("addressPrefix".into(), json!(prefixes[0].to_string()));
    } else {
        pm.insert("addressPrefixes".into(), doc::prefix_strings(prefixes));
    }
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
