//! VNet peering: the link state machine (Initiated → Connected → Disconnected), overlap checks
//! including VNets already peered with the remote, gateway transit constraints, and address
//! space sync.
//!
//! Each link stores its own `peeringState`; every write that changes one side of a pair updates
//! the other side in the same transaction, so the pair is always consistent.

use super::{child, require_parent, PutOptions};
use crate::cidr;
use crate::ctx::Ctx;
use crate::doc::{self, props, props_mut};
use crate::error::{ArmError, ArmResult};
use crate::id::{Kind, ResourceId};
use crate::limits;
use crate::state::Tx;
use serde_json::{json, Value};

pub const INITIATED: &str = "Initiated";
pub const CONNECTED: &str = "Connected";
pub const DISCONNECTED: &str = "Disconnected";

pub fn state_of(link: &Value) -> &str {
    doc::get_str(props(link), "peeringState").unwrap_or(INITIATED)
}

/// The reverse link of `local → remote`: the peering in `remote` whose remote is `local`.
pub fn reverse(tx: &Tx, local_vnet_key: &str, remote_vnet_key: &str) -> Option<(String, Value)> {
    tx.scan_refs(&format!("{remote_vnet_key}/virtualnetworkpeerings/"))
        .into_iter()
        .find(|(_, l)| {
            doc::ref_key(props(l), "remoteVirtualNetwork").as_deref() == Some(local_vnet_key)
        })
        .map(|(k, l)| (k.to_string(), l.clone()))
}

/// The VPN gateway deployed in a VNet, if any (key, document).
pub fn vnet_gateway(tx: &Tx, vnet_key: &str) -> Option<(String, Value)> {
    let gw_subnet = format!("{vnet_key}/subnets/gatewaysubnet");
    tx.referrers(&gw_subnet).into_iter().find_map(|k| {
        let d = tx.get(&k)?;
        (doc::doc_id(d)?.kind == Kind::VirtualNetworkGateway).then(|| (k.clone(), d.clone()))
    })
}

pub fn mark_disconnected(tx: &mut Tx, link_key: &str) {
    if let Some(mut l) = tx.get(link_key).cloned() {
        if state_of(&l) != DISCONNECTED {
            props_mut(&mut l).insert("peeringState".into(), json!(DISCONNECTED));
            tx.put(link_key.to_string(), l);
        }
    }
}

fn overlap_err(code: &str, msg: String) -> ArmError {
    ArmError::bad(code, msg)
}

pub fn put(
    tx: &mut Tx,
    ctx: &mut Ctx,
    id: &ResourceId,
    body: Value,
    opts: &PutOptions,
) -> ArmResult<()> {
    let local = require_parent(tx, id)?;
    let key = id.key();
    let local_key = id.parent().expect("parent").key();
    let local_id = doc::id_str(&local).to_string();
    let link_id = id.to_id();
    let existing = tx.get(&key).cloned();
    let p = props(&body).clone();

    let remote_ref = doc::ref_id(&p, "remoteVirtualNetwork").ok_or_else(|| {
        ArmError::bad(
            "InvalidRequestFormat",
            format!("Peering {link_id} must reference a remote virtual network in properties.remoteVirtualNetwork.id."),
        )
    })?;
    let (remote_rid, remote) = super::resolve(
        tx,
        remote_ref,
        Kind::VirtualNetwork,
        &format!("peering {link_id}"),
    )?;
    let remote_key = remote_rid.key();
    let remote_id = doc::id_str(&remote).to_string();
    if remote_key == local_key {
        return Err(ArmError::bad(
            "CannotPeerVirtualNetworkWithItself",
            format!("Peering {link_id} cannot reference its own virtual network {local_id}."),
        ));
    }
    if let Some(e) = &existing {
        if doc::ref_key(props(e), "remoteVirtualNetwork").as_deref() != Some(remote_key.as_str()) {
            return Err(ArmError::bad(
                "CannotChangeRemoteVirtualNetworkOfPeering",
                format!("The remote virtual network of peering {link_id} cannot be changed. Delete the peering and create a new one."),
            ));
        }
    }
    let local_links = tx.scan_refs(&format!("{local_key}/virtualnetworkpeerings/"));
    if existing.is_none() && local_links.len() >= limits::PEERINGS_PER_VNET {
        return Err(limits::count_limit(
            "VirtualNetworkPeeringCountLimitReached",
            &format!("Virtual network {local_id}"),
            "peerings",
            local_links.len() + 1,
            limits::PEERINGS_PER_VNET,
        ));
    }
    // One peering per remote VNet.
    for (k, l) in &local_links {
        if *k != key
            && doc::ref_key(props(l), "remoteVirtualNetwork").as_deref()
                == Some(remote_key.as_str())
        {
            return Err(ArmError::bad(
                "AnotherPeeringAlreadyReferencesRemoteVnet",
                format!(
                    "Peering {link_id} references remote virtual network {remote_id} which is already referenced by peering {}. Peering already references remote virtual network. Cannot add another peering referencing the same remote virtual network.",
                    doc::id_str(l)
                ),
            ));
        }
    }
    drop(local_links);
    let rev = reverse(tx, &local_key, &remote_key);
    if let Some((_, r)) = &rev {
        if state_of(r) == DISCONNECTED {
            return Err(ArmError::bad(
                "RemotePeeringIsDisconnected",
                format!(
                    "Cannot create or update peering {link_id} because remote peering {} referencing parent virtual network {local_id} is in Disconnected state. Update or re-create the remote peering to get it back to Initiated state. Peering gets Disconnected when remote vnet or remote peering is deleted and re-created.",
                    doc::id_str(r)
                ),
            ));
        }
    }
    // Overlap: the two spaces, then the local space against VNets already peered with the remote.
    let local_space = doc::vnet_space(&local);
    let remote_space = doc::vnet_space(&remote);
    let ov = cidr::overlapping(&local_space, &remote_space);
    if !ov.is_empty() {
        return Err(overlap_err(
            "VnetAddressSpacesOverlap",
            format!(
                "Cannot create or update peering {link_id}. Virtual networks {local_id} and {remote_id} cannot be peered because their address spaces overlap. Overlapping address prefixes: {}",
                ov.join(", ")
            ),
        ));
    }
    // Both directions: the local space against VNets already peered with the remote (Azure's
    // documented check), and the remote space against VNets already peered with the local one
    // (otherwise the local VNet would route one prefix to two peers). The message keeps
    // Azure's wording with "first" being the VNet that overlaps.
    let checks = [
        (&remote_key, &local_key, &local_space, &local_id, &remote_id),
        (
            &local_key,
            &remote_key,
            &remote_space,
            &remote_id,
            &local_id,
        ),
    ];
    for (peered_with, other, space, first, second) in checks {
        for (_, l) in tx.scan_refs(&format!("{peered_with}/virtualnetworkpeerings/")) {
            let Some(ck) = doc::ref_key(props(l), "remoteVirtualNetwork") else {
                continue;
            };
            if &ck == other || state_of(l) == DISCONNECTED {
                continue;
            }
            let Some(c) = tx.get(&ck) else { continue };
            let ov = cidr::overlapping(space, &doc::vnet_space(c));
            if !ov.is_empty() {
                return Err(overlap_err(
                    "VnetAddressSpaceOverlapsWithAlreadyPeeredVnet",
                    format!(
                        "Cannot create or update peering {link_id}. Virtual networks {first} and {second} cannot be peered because address space of the first virtual network overlaps with address space of virtual network {} already peered with the second virtual network. Overlapping address prefixes: {}. For more information please refer to https://aka.ms/VnetPeeringInfo",
                        doc::id_str(c),
                        ov.join(", ")
                    ),
                ));
            }
        }
    }

    let allow_transit = doc::get_bool(&p, "allowGatewayTransit", false);
    let use_remote = doc::get_bool(&p, "useRemoteGateways", false);
    if use_remote {
        if vnet_gateway(tx, &local_key).is_some() {
            return Err(ArmError::bad(
                "VirtualNetworkWithGatewayCannotUseRemoteGateways",
                format!("Peering {link_id} cannot have UseRemoteGateways flag set to true because virtual network {local_id} already has a gateway."),
            ));
        }
        let Some((_, gw)) = vnet_gateway(tx, &remote_key) else {
            return Err(ArmError::bad(
                "RemoteVnetHasNoGateways",
                format!("Peering {link_id} cannot have UseRemoteGateway flag set to true because remote virtual network {remote_id} referenced by the peering does not have any gateways."),
            ));
        };
        if doc::get_str(props(&gw).get("sku").unwrap_or(&Value::Null), "name") == Some("Basic") {
            return Err(ArmError::bad(
                "GatewayTransitNotSupportedForBasicSku",
                format!("Peering {link_id} cannot use remote gateways: gateway {} of {remote_id} has the Basic SKU, which does not support gateway transit.", doc::id_str(&gw)),
            ));
        }
        if !doc::get_bool(&p, "doNotVerifyRemoteGateways", false)
            && doc::get_str(props(&gw), "provisioningState") != Some("Succeeded")
        {
            return Err(ArmError::bad(
                "ReferencedResourceNotProvisioned",
                format!("Cannot proceed with peering {link_id}: remote gateway {} is not in Succeeded state. Set doNotVerifyRemoteGateways to skip this check.", doc::id_str(&gw)),
            ));
        }
        for (k, l) in tx.scan_refs(&format!("{local_key}/virtualnetworkpeerings/")) {
            if k != key && doc::get_bool(props(l), "useRemoteGateways", false) {
                return Err(ArmError::bad(
                    "OnlyOnePeeringCanUseRemoteGateways",
                    format!("Peering {link_id} cannot have UseRemoteGateways flag set to true because peering {} of the same virtual network already uses remote gateways. Only one peering can have this flag set to true.", doc::id_str(l)),
                ));
            }
        }
        if let Some((_, r)) = &rev {
            if !doc::get_bool(props(r), "allowGatewayTransit", false) {
                return Err(ArmError::bad(
                    "RemotePeeringDoesNotAllowGatewayTransit",
                    format!("Peering {link_id} cannot have UseRemoteGateways flag set to true because remote peering {} does not allow gateway transit (allowGatewayTransit is false).", doc::id_str(r)),
                ));
            }
        }
    }
    if !allow_transit {
        if let Some((_, r)) = &rev {
            if doc::get_bool(props(r), "useRemoteGateways", false) {
                return Err(ArmError::bad(
                    "PeeringGatewayTransitInUse",
                    format!("Peering {link_id} must keep allowGatewayTransit set to true because remote peering {} uses the gateways of this virtual network.", doc::id_str(r)),
                ));
            }
        }
    }

    // Build the link.
    let mut d = child(ctx, id, &body);
    let pm = props_mut(&mut d);
    pm.insert("remoteVirtualNetwork".into(), json!({"id": remote_id}));
    for (f, def) in [
        ("allowVirtualNetworkAccess", true),
        ("allowForwardedTraffic", false),
        ("allowGatewayTransit", false),
        ("useRemoteGateways", false),
        ("doNotVerifyRemoteGateways", false),
        ("peerCompleteVnets", true),
        ("enableOnlyIPv6Peering", false),
    ] {
        pm.insert(f.into(), json!(doc::get_bool(&p, f, def)));
    }
    let remote_guid = doc::get_str(props(&remote), "resourceGuid")
        .unwrap_or("")
        .to_string();
    let fresh = match &existing {
        None => true,
        Some(e) => {
            state_of(e) == DISCONNECTED
                || doc::get_str(doc::private(e), "remoteGuid") != Some(&remote_guid)
        }
    };
    let remote_space_v = doc::prefix_strings(&remote_space);
    if fresh || opts.sync_remote_address_space {
        pm.insert(
            "remoteAddressSpace".into(),
            json!({"addressPrefixes": remote_space_v}),
        );
    } else if let Some(e) = &existing {
        pm.insert(
            "remoteAddressSpace".into(),
            props(e)
                .get("remoteAddressSpace")
                .cloned()
                .unwrap_or(json!({})),
        );
    }
    if let Some(bgp) = props(&remote).get("bgpCommunities") {
        pm.insert("remoteBgpCommunities".into(), bgp.clone());
    }
    let local_snapshot = match &existing {
        Some(e) if !fresh => doc::private(e)
            .get("localAddressSpace")
            .cloned()
            .unwrap_or(json!([])),
        _ => doc::prefix_strings(&local_space),
    };
    let state = match &rev {
        Some(_) => CONNECTED,
        None => INITIATED,
    };
    pm.insert("peeringState".into(), json!(state));
    let guid = existing
        .as_ref()
        .and_then(|e| doc::get_str(props(e), "resourceGuid").map(String::from))
        .unwrap_or_else(|| ctx.guid());
    props_mut(&mut d).insert("resourceGuid".into(), json!(guid));
    let pr = doc::private_mut(&mut d);
    pr.insert("remoteGuid".into(), json!(remote_guid));
    pr.insert("localAddressSpace".into(), local_snapshot);
    tx.put(key, d);

    if let Some((rk, mut r)) = rev {
        props_mut(&mut r).insert("peeringState".into(), json!(CONNECTED));
        if opts.sync_remote_address_space {
            // The remote link's view of its own (local) space is what we just synced.
            doc::private_mut(&mut r).insert("localAddressSpace".into(), remote_space_v);
        }
        tx.put(rk, r);
    }
    Ok(())
}

pub fn delete(tx: &mut Tx, _ctx: &mut Ctx, id: &ResourceId) -> ArmResult<()> {
    let key = id.key();
    let link = tx.get(&key).cloned().unwrap_or(Value::Null);
    let local_key = id.parent().expect("parent").key();
    if let Some(remote_key) = doc::ref_key(props(&link), "remoteVirtualNetwork") {
        if let Some((rk, r)) = reverse(tx, &local_key, &remote_key) {
            if state_of(&r) == CONNECTED {
                mark_disconnected(tx, &rk);
            }
        }
    }
    tx.delete(&key);
    Ok(())
}

/// `peeringSyncLevel` of a link, from the snapshots it holds and the current spaces.
pub fn sync_level(
    tx_get: &dyn Fn(&str) -> Option<Value>,
    link: &Value,
    local_vnet: &Value,
) -> &'static str {
    let local_now = doc::vnet_space(local_vnet);
    let local_snap: Vec<ipnet::IpNet> = doc::strs(
        doc::private(link)
            .get("localAddressSpace")
            .unwrap_or(&Value::Null),
    )
    .iter()
    .filter_map(|s| s.parse().ok())
    .collect();
    let remote_snap = doc::stored_prefixes(
        props(link)
            .get("remoteAddressSpace")
            .unwrap_or(&Value::Null),
    );
    let remote_now = doc::ref_key(props(link), "remoteVirtualNetwork")
        .and_then(|k| tx_get(&k))
        .map(|r| doc::vnet_space(&r))
        .unwrap_or_else(|| remote_snap.clone());
    let local_out = sorted(&local_now) != sorted(&local_snap);
    let remote_out = sorted(&remote_now) != sorted(&remote_snap);
    match (local_out, remote_out) {
        (false, false) => "FullyInSync",
        (true, false) => "RemoteNotInSync",
        (false, true) => "LocalNotInSync",
        (true, true) => "LocalAndRemoteNotInSync",
    }
}

fn sorted(v: &[ipnet::IpNet]) -> Vec<ipnet::IpNet> {
    let mut v = v.to_vec();
    v.sort();
    v
}
