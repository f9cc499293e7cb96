//! Public IP addresses, allocated from the operator's pools (`vnet serve --public-ip-pool`).

use super::tracked;
use crate::ctx::Ctx;
use crate::doc::{self, props, props_mut};
use crate::error::{ArmError, ArmResult};
use crate::id::ResourceId;
use crate::state::Tx;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Public addresses in use, from the index of public IP resources (not a scan of every
/// document of every subscription).
fn allocated(tx: &Tx) -> BTreeSet<IpAddr> {
    tx.tracked_of_kind(crate::id::Kind::PublicIp)
        .iter()
        .filter_map(|k| tx.get(k))
        .filter_map(|d| doc::get_str(props(d), "ipAddress").and_then(|s| s.parse().ok()))
        .collect()
}

pub fn put(tx: &mut Tx, ctx: &mut Ctx, id: &ResourceId, body: Value) -> ArmResult<()> {
    let key = id.key();
    let existing = tx.get(&key).cloned();
    let mut d = tracked(ctx, id, &body, existing.as_ref())?;
    let sku = body
        .get("sku")
        .and_then(|s| doc::get_str(s, "name"))
        .unwrap_or("Basic");
    let sku = match sku.to_ascii_lowercase().as_str() {
        "basic" => "Basic",
        "standard" => "Standard",
        other => {
            return Err(ArmError::bad(
                "InvalidPublicIpSku",
                format!("Public IP SKU {other} is not supported; use Basic or Standard."),
            ))
        }
    };
    let p = props(&body);
    let default_method = if sku == "Standard" {
        "Static"
    } else {
        "Dynamic"
    };
    let method = doc::one_of(
        doc::get_str(p, "publicIPAllocationMethod").unwrap_or(default_method),
        &["Static", "Dynamic"],
        "InvalidRequestFormat",
        "publicIPAllocationMethod",
    )?;
    if sku == "Standard" && method == "Dynamic" {
        return Err(ArmError::bad(
            "StandardSkuPublicIPAddressesMustBeStatic",
            format!("Standard sku publicIp {} must be static.", id.to_id()),
        ));
    }
    let v6 =
        doc::get_str(p, "publicIPAddressVersion").is_some_and(|v| v.eq_ignore_ascii_case("IPv6"));
    let old_ip = existing
        .as_ref()
        .and_then(|e| doc::get_str(props(e), "ipAddress").map(String::from));
    let ip = match old_ip {
        Some(ip) => ip,
        None => {
            let taken = allocated(tx);
            let mut found = None;
            for pool in ctx
                .config
                .public_ip_pools
                .iter()
                .filter(|p| p.network().is_ipv6() == v6)
            {
                found = pool.hosts().find(|h| !taken.contains(h));
                if found.is_some() {
                    break;
                }
            }
            found
                .ok_or_else(|| {
                    ArmError::bad(
                        "PublicIPAddressPoolExhausted",
                        format!("No free {} public IP address is left in the pools configured for this vnet server (vnet serve --public-ip-pool).", if v6 { "IPv6" } else { "IPv4" }),
                    )
                })?
                .to_string()
        }
    };
    d["sku"] = json!({"name": sku, "tier": body.get("sku").and_then(|s| doc::get_str(s, "tier")).unwrap_or("Regional")});
    if let Some(z) = body.get("zones") {
        d["zones"] = z.clone();
    }
    let pm = props_mut(&mut d);
    pm.insert("publicIPAllocationMethod".into(), json!(method));
    pm.insert(
        "publicIPAddressVersion".into(),
        json!(if v6 { "IPv6" } else { "IPv4" }),
    );
    pm.entry("idleTimeoutInMinutes").or_insert(json!(4));
    pm.insert("ipAddress".into(), json!(ip));
    tx.put(key, d);
    Ok(())
}
