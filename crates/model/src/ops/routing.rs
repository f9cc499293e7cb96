//! Route tables and user-defined routes.

use super::{child, require_parent, DeleteSet};
use crate::cidr;
use crate::ctx::Ctx;
use crate::doc::{self, props, props_mut};
use crate::error::{ArmError, ArmResult};
use crate::id::{Kind, ResourceId};
use crate::state::Tx;
use serde_json::{json, Value};

/// Next-hop types a user route may name.
pub const NEXT_HOP_TYPES: [&str; 6] = [
    "VirtualNetworkGateway",
    "VnetLocal",
    "Internet",
    "VirtualAppliance",
    "None",
    "VirtualApplianceEcmp",
];

/// Routes per table (Azure's limit).
pub const MAX_ROUTES: usize = crate::limits::ROUTES_PER_TABLE;

/// Validates a route's properties and returns them in canonical form.
fn check_route(name: &str, p: &Value) -> ArmResult<Value> {
    let prefix = doc::get_str(p, "addressPrefix").ok_or_else(|| {
        ArmError::bad(
            "InvalidRequestFormat",
            format!("Route {name} must have an addressPrefix."),
        )
    })?;
    // A service tag (letters first) is stored as given; otherwise a canonical CIDR.
    let prefix = if prefix.starts_with(|c: char| c.is_ascii_alphabetic()) && !prefix.contains(':') {
        prefix.to_string()
    } else {
        cidr::parse_prefix(prefix, &format!("route {name}"))?.to_string()
    };
    let hop = doc::get_str(p, "nextHopType").ok_or_else(|| {
        ArmError::bad(
            "InvalidRequestFormat",
            format!("Route {name} must have a nextHopType."),
        )
    })?;
    let Some(hop) = NEXT_HOP_TYPES.iter().find(|h| h.eq_ignore_ascii_case(hop)) else {
        return Err(ArmError::bad(
            "InvalidNextHopType",
            format!(
                "Route {name} has next hop type {hop}; it must be one of {}.",
                NEXT_HOP_TYPES.join(", ")
            ),
        ));
    };
    let ip = doc::get_str(p, "nextHopIpAddress").filter(|s| !s.is_empty());
    let appliance = hop.starts_with("VirtualAppliance");
    let mut out = p.clone();
    out["addressPrefix"] = json!(prefix);
    out["nextHopType"] = json!(hop);
    match (appliance, ip) {
        (true, None) => {
            return Err(ArmError::bad(
                "NextHopIpAddressRequired",
                format!("Route {name} has next hop type {hop} and must specify nextHopIpAddress."),
            ))
        }
        (true, Some(ip)) => {
            let a: std::net::IpAddr = ip.parse().map_err(|_| {
                ArmError::bad("InvalidNextHopIpAddress", format!("Next hop IP address {ip} of route {name} is not a valid IP address."))
            })?;
            out["nextHopIpAddress"] = json!(a.to_string());
        }
        (false, Some(ip)) => {
            return Err(ArmError::bad(
                "NextHopIpAddressNotAllowed",
                format!("Route {name} has next hop type {hop}; nextHopIpAddress {ip} is only allowed with VirtualAppliance."),
            ))
        }
        (false, None) => {
            if let Some(o) = out.as_object_mut() {
                o.remove("nextHopIpAddress");
            }
        }
    }
    out["hasBgpOverride"] = json!(false);
    out["provisioningState"] = json!("Succeeded");
    Ok(out)
}

pub fn put_table(tx: &mut Tx, ctx: &mut Ctx, id: &ResourceId, body: Value) -> ArmResult<()> {
    let super::Draft {
        key,
        existing,
        doc: mut d,
        props: p,
    } = super::draft(tx, ctx, id, &body)?;
    if existing.is_none() {
        let location = doc::get_str(&d, "location").unwrap_or("").to_string();
        let slot = crate::state::Tracked {
            kind: Kind::RouteTable,
            subscription: id.subscription.to_ascii_lowercase(),
            location: location.clone(),
        };
        if tx.tracked_count(&slot) >= crate::limits::ROUTE_TABLES_PER_REGION {
            return Err(crate::limits::region_limit(
                "RouteTableCountLimitReached",
                crate::limits::ROUTE_TABLES_PER_REGION,
                "route tables",
                &location,
            ));
        }
    }
    let routes: Vec<Value> = p
        .get("routes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if routes.len() > MAX_ROUTES {
        return Err(ArmError::bad(
            "RouteTableRouteLimitExceeded",
            format!(
                "Route table {} has {} routes; at most {MAX_ROUTES} are allowed.",
                id.to_id(),
                routes.len()
            ),
        ));
    }
    let pm = props_mut(&mut d);
    pm.remove("routes");
    pm.remove("subnets");
    pm.entry("disableBgpRoutePropagation")
        .or_insert(json!(false));
    tx.put(key.clone(), d);
    let mut keep = DeleteSet::new();
    for r in &routes {
        let name = doc::get_str(r, "name").ok_or_else(|| {
            ArmError::bad("InvalidRequestFormat", "Every route must have a name.")
        })?;
        crate::id::check_name(Kind::Route, name)?;
        let rid = ResourceId::child_of(id, Kind::Route, name);
        if !keep.insert(rid.key()) {
            return Err(ArmError::bad(
                "InvalidRequestFormat",
                format!("Route {name} appears more than once."),
            ));
        }
        put_route(tx, ctx, &rid, r.clone())?;
    }
    for k in tx.scan_keys(&format!("{key}/routes/")) {
        if !keep.contains(&k) {
            tx.delete(&k);
        }
    }
    Ok(())
}

pub fn put_route(tx: &mut Tx, ctx: &mut Ctx, id: &ResourceId, body: Value) -> ArmResult<()> {
    require_parent(tx, id)?;
    let table_key = id.parent().expect("table").key();
    let count = tx.count(&format!("{table_key}/routes/"));
    if !tx.exists(&id.key()) && count >= MAX_ROUTES {
        return Err(ArmError::bad(
            "RouteTableRouteLimitExceeded",
            format!(
                "Route table {} already has {MAX_ROUTES} routes.",
                id.parent().expect("table").to_id()
            ),
        ));
    }
    let p = check_route(id.leaf(), props(&body))?;
    let mut d = child(ctx, id, &json!({"properties": p}));
    props_mut(&mut d).insert("provisioningState".into(), json!("Succeeded"));
    tx.put(id.key(), d);
    Ok(())
}

pub fn delete_table(tx: &mut Tx, id: &ResourceId, deleting: &DeleteSet) -> ArmResult<()> {
    super::in_use_check(tx, id, "InUseRouteTableCannotBeDeleted", deleting)?;
    let key = id.key();
    for (k, _) in tx.scan(&format!("{key}/routes/")) {
        tx.delete(&k);
    }
    tx.delete(&key);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_rules() {
        assert_eq!(
            check_route(
                "r",
                &json!({"addressPrefix": "10.0.0.0/8", "nextHopType": "VirtualAppliance"})
            )
            .unwrap_err()
            .code,
            "NextHopIpAddressRequired"
        );
        assert_eq!(
            check_route("r", &json!({"addressPrefix": "10.0.0.0/8", "nextHopType": "None", "nextHopIpAddress": "1.2.3.4"})).unwrap_err().code,
            "NextHopIpAddressNotAllowed"
        );
        assert_eq!(
            check_route(
                "r",
                &json!({"addressPrefix": "10.0.0.1/8", "nextHopType": "None"})
            )
            .unwrap_err()
            .code,
            "InvalidCIDRNotation"
        );
        assert_eq!(
            check_route(
                "r",
                &json!({"addressPrefix": "10.0.0.0/8", "nextHopType": "VNetPeering"})
            )
            .unwrap_err()
            .code,
            "InvalidNextHopType"
        );
        let ok = check_route("r", &json!({"addressPrefix": "10.0.0.0/8", "nextHopType": "virtualappliance", "nextHopIpAddress": "10.1.0.4"})).unwrap();
        assert_eq!(ok["nextHopType"], "VirtualAppliance");
    }
}
