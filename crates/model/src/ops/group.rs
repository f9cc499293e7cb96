//! Resource groups: created with a location; deleting one deletes everything it holds.

use super::{network, DeleteSet};
use crate::ctx::Ctx;
use crate::doc;
use crate::error::{ArmError, ArmResult};
use crate::id::{group_prefix, Kind, ResourceId};
use crate::state::Tx;
use serde_json::{json, Value};

pub fn put(tx: &mut Tx, _ctx: &mut Ctx, id: &ResourceId, body: Value) -> ArmResult<()> {
    let existing = tx.get(&id.key()).cloned();
    let loc = match (doc::get_str(&body, "location"), existing.as_ref()) {
        (Some(l), _) => super::normalize_location(l),
        (None, Some(e)) => doc::get_str(e, "location").unwrap_or("").to_string(),
        (None, None) => {
            return Err(ArmError::bad(
                "LocationRequired",
                "The location property is required for this definition.",
            ))
        }
    };
    if let Some(old) = existing.as_ref().and_then(|e| doc::get_str(e, "location")) {
        if old != loc {
            return Err(ArmError::new(
                409,
                "InvalidResourceGroupLocation",
                format!(
                    "Invalid resource group location '{loc}'. The Resource group already exists in location '{old}'."
                ),
            ));
        }
    }
    let mut d = json!({
        "id": id.to_id(),
        "name": id.resource_group,
        "type": Kind::ResourceGroup.type_name(),
        "location": loc,
        "properties": {"provisioningState": "Succeeded"},
    });
    if let Some(t) = body.get("tags") {
        d["tags"] = t.clone();
    }
    if let Some(m) = body.get("managedBy") {
        d["managedBy"] = m.clone();
    }
    tx.put(id.key(), d);
    Ok(())
}

/// Deletes the group and all it holds. Resources used from outside the group block the delete
/// (nothing is deleted then); peerings from outside that point into the group go Disconnected.
pub fn delete(tx: &mut Tx, ctx: &mut Ctx, id: &ResourceId) -> ArmResult<()> {
    let prefix = group_prefix(&id.subscription, &id.resource_group);
    let members: DeleteSet = tx.scan_keys(&prefix).into_iter().collect();
    let mut all = members.clone();
    all.insert(id.key());
    for k in &members {
        let Some(rid) = tx.get(k).and_then(doc::doc_id) else {
            continue;
        };
        let code = match rid.kind {
            Kind::Subnet => "InUseSubnetCannotBeDeleted",
            Kind::RouteTable => "InUseRouteTableCannotBeDeleted",
            Kind::PublicIp => "PublicIPAddressCannotBeDeleted",
            Kind::LocalNetworkGateway => "InUseLocalNetworkGatewayCannotBeDeleted",
            Kind::VirtualNetworkGateway => "InUseVirtualNetworkGatewayCannotBeDeleted",
            _ => continue,
        };
        super::in_use_check(tx, &rid, code, &all)?;
    }
    for k in &members {
        if let Some(rid) = tx.get(k).and_then(doc::doc_id) {
            if rid.kind == Kind::VirtualNetwork {
                network::delete_vnet(tx, ctx, &rid, &all)?;
            }
        }
    }
    for k in &members {
        tx.delete(k);
    }
    tx.delete(&id.key());
    Ok(())
}
