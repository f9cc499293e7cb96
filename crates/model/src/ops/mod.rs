//! Writes: create-or-replace, delete and tag updates for every resource kind, with Azure's
//! checks. Each operation stages its changes in a [`Tx`]; nothing is applied unless the whole
//! operation succeeds, so a refused request changes nothing.

mod gateway;
mod group;
mod network;
mod nic;
pub(crate) mod peering;
mod public_ip;
mod routing;

use crate::ctx::Ctx;
use crate::doc::{self, props_mut};
use crate::error::{ArmError, ArmResult};
use crate::id::{self, Kind, ResourceId};
use crate::schema;
use crate::schemas;
use crate::state::Tx;
use serde_json::{json, Value};

pub use gateway::{reset_shared_key, set_shared_key, shared_key};
pub use nic::taken_addresses;

/// Options of a PUT that are not part of the body.
#[derive(Debug, Default, Clone)]
pub struct PutOptions {
    /// `syncRemoteAddressSpace=true` on a peering PUT.
    pub sync_remote_address_space: bool,
}

/// A PUT body checked against its kind's schema, before any state is read: the one cleaned
/// document that both the authorizer ([`Prepared::links`]) and the write ([`put_prepared`])
/// read. Preparing needs no lock, so an expensive body is parsed outside the writer's.
#[derive(Debug, Clone)]
pub struct Prepared {
    id: ResourceId,
    doc: Value,
}

impl Prepared {
    pub fn id(&self) -> &ResourceId {
        &self.id
    }

    /// The cleaned document: members in the schema's spelling, read-only fields dropped.
    pub fn doc(&self) -> &Value {
        &self.doc
    }

    /// The resources this write links to and the action each link needs
    /// ([`crate::links`]).
    pub fn links(&self) -> Vec<crate::links::Linked> {
        crate::links::linked(self.id.kind, &self.id.to_id(), &self.doc)
    }
}

/// Checks what can be checked of a PUT without the state: the subscription and name in the
/// path, and the body against the kind's schema.
pub fn prepare(id: &ResourceId, body: &Value) -> ArmResult<Prepared> {
    id::check_subscription(&id.subscription)?;
    id::check_name(id.kind, id.leaf())?;
    if !body.is_object() {
        return Err(ArmError::invalid_format(
            "The request body must be a JSON object.",
        ));
    }
    Ok(Prepared {
        id: id.clone(),
        doc: schema::clean(body, schemas::of(id.kind), "")?,
    })
}

/// Creates or replaces the resource `id` with `body`. Returns true when it was created.
pub fn put(
    tx: &mut Tx,
    ctx: &mut Ctx,
    id: &ResourceId,
    body: &Value,
    opts: &PutOptions,
) -> ArmResult<bool> {
    put_prepared(tx, ctx, &prepare(id, body)?, opts)
}

/// Creates or replaces a prepared resource. Returns true when it was created.
pub fn put_prepared(
    tx: &mut Tx,
    ctx: &mut Ctx,
    prepared: &Prepared,
    opts: &PutOptions,
) -> ArmResult<bool> {
    let id = &prepared.id;
    let cleaned = prepared.doc.clone();
    if id.kind != Kind::ResourceGroup {
        require_group(tx, id)?;
    }
    let created = !tx.exists(&id.key());
    match id.kind {
        Kind::ResourceGroup => group::put(tx, ctx, id, cleaned)?,
        Kind::VirtualNetwork => network::put_vnet(tx, ctx, id, cleaned)?,
        Kind::Subnet => network::put_subnet(tx, ctx, id, cleaned)?,
        Kind::Peering => peering::put(tx, ctx, id, cleaned, opts)?,
        Kind::NetworkInterface => nic::put(tx, ctx, id, cleaned)?,
        Kind::RouteTable => routing::put_table(tx, ctx, id, cleaned)?,
        Kind::Route => routing::put_route(tx, ctx, id, cleaned)?,
        Kind::PublicIp => public_ip::put(tx, ctx, id, cleaned)?,
        Kind::VirtualNetworkGateway => gateway::put_gateway(tx, ctx, id, cleaned)?,
        Kind::LocalNetworkGateway => gateway::put_local(tx, ctx, id, cleaned)?,
        Kind::Connection => gateway::put_connection(tx, ctx, id, cleaned)?,
        Kind::NetworkWatcher => {
            let existing = tx.get(&id.key()).cloned();
            let mut d = tracked(ctx, id, &cleaned, existing.as_ref())?;
            props_mut(&mut d).insert("provisioningState".into(), json!("Succeeded"));
            tx.put(id.key(), d);
        }
    }
    Ok(created)
}

/// Deletes `id`. Returns false when there was nothing to delete.
pub fn delete(tx: &mut Tx, ctx: &mut Ctx, id: &ResourceId) -> ArmResult<bool> {
    if !tx.exists(&id.key()) {
        if id.kind != Kind::ResourceGroup {
            require_group(tx, id)?;
        }
        return Ok(false);
    }
    match id.kind {
        Kind::ResourceGroup => group::delete(tx, ctx, id)?,
        Kind::VirtualNetwork => network::delete_vnet(tx, ctx, id, &Default::default())?,
        Kind::Subnet => network::delete_subnet(tx, id, &Default::default())?,
        Kind::Peering => peering::delete(tx, ctx, id)?,
        Kind::RouteTable => routing::delete_table(tx, id, &Default::default())?,
        Kind::PublicIp => in_use_check(
            tx,
            id,
            "PublicIPAddressCannotBeDeleted",
            &Default::default(),
        )
        .map(|_| tx.delete(&id.key()))?,
        Kind::VirtualNetworkGateway => gateway::delete_gateway(tx, id, &Default::default())?,
        Kind::LocalNetworkGateway => {
            in_use_check(
                tx,
                id,
                "InUseLocalNetworkGatewayCannotBeDeleted",
                &Default::default(),
            )?;
            tx.delete(&id.key())
        }
        Kind::NetworkInterface | Kind::Route | Kind::Connection | Kind::NetworkWatcher => {
            tx.delete(&id.key())
        }
    }
    Ok(true)
}

/// `PATCH` with `{"tags": {...}}`: replaces the tags of a tracked resource.
pub fn patch_tags(tx: &mut Tx, ctx: &mut Ctx, id: &ResourceId, body: &Value) -> ArmResult<()> {
    let cleaned = schema::clean(body, &schemas::TAGS_ONLY, "")?;
    let mut d = tx.get(&id.key()).cloned().ok_or_else(|| not_found(id))?;
    if let Some(t) = cleaned.get("tags") {
        d["tags"] = t.clone();
    }
    if id.kind != Kind::ResourceGroup {
        d["etag"] = json!(ctx.etag());
    }
    tx.put(id.key(), d);
    Ok(())
}

/// Marks an asynchronously provisioned resource (gateway, local gateway, connection) as done.
pub fn finish_provisioning(tx: &mut Tx, key: &str) {
    if let Some(mut d) = tx.get(key).cloned() {
        if doc::get_str(doc::props(&d), "provisioningState") == Some("Updating") {
            props_mut(&mut d).insert("provisioningState".into(), json!("Succeeded"));
            // Its inline children (a gateway's IP configurations and NAT rules) finish with it.
            for children in ["ipConfigurations", "natRules"] {
                if let Some(cs) = d["properties"]
                    .get_mut(children)
                    .and_then(Value::as_array_mut)
                {
                    for c in cs {
                        c["properties"]["provisioningState"] = json!("Succeeded");
                    }
                }
            }
            tx.put(key.to_string(), d);
        }
    }
}

/// 404 for a missing resource, in ARM's words.
pub fn not_found(id: &ResourceId) -> ArmError {
    if id.kind == Kind::ResourceGroup {
        return group_not_found(&id.resource_group);
    }
    let (ty, name) = match id.parent() {
        Some(p) => (id.kind.type_name(), format!("{}/{}", p.name, id.leaf())),
        None => (id.kind.type_name(), id.name.clone()),
    };
    ArmError::not_found(ty, &name, &id.resource_group)
}

pub fn group_not_found(rg: &str) -> ArmError {
    ArmError::new(
        404,
        "ResourceGroupNotFound",
        format!("Resource group '{rg}' could not be found."),
    )
}

/// The resource group of `id` must exist (404 `ResourceGroupNotFound`).
pub fn require_group(tx: &Tx, id: &ResourceId) -> ArmResult<()> {
    if tx.exists(&id.group_id().key()) {
        Ok(())
    } else {
        Err(group_not_found(&id.resource_group))
    }
}

/// The parent of a child resource must exist (404 `ParentResourceNotFound`).
pub fn require_parent(tx: &Tx, id: &ResourceId) -> ArmResult<Value> {
    let p = id.parent().expect("child resource");
    tx.get(&p.key()).cloned().ok_or_else(|| {
        ArmError::new(
            404,
            "ParentResourceNotFound",
            format!(
                "Can not perform requested operation on nested resource. Parent resource '{}' not found.",
                p.name
            ),
        )
    })
}

/// Keys being deleted together (a VNet with its subnets, a resource group): references from
/// inside the set do not block the deletion.
pub type DeleteSet = std::collections::BTreeSet<String>;

/// Refuses to delete `id` while documents outside `deleting` reference it.
pub fn in_use_check(tx: &Tx, id: &ResourceId, code: &str, deleting: &DeleteSet) -> ArmResult<()> {
    let users: Vec<String> = tx
        .referrers(&id.key())
        .into_iter()
        .filter(|r| !deleting.contains(r))
        // Peerings pointing at a VNet never block its deletion: they go Disconnected.
        .filter(|r| !r.contains("/virtualnetworkpeerings/"))
        .collect();
    if let Some(u) = users.first() {
        let user_id = tx.get(u).map(doc::id_str).unwrap_or(u).to_string();
        return Err(ArmError::bad(
            code,
            format!(
                "{} {} is in use by {} and cannot be deleted. In order to delete it, delete all the resources that use it first.",
                id.kind.type_name(),
                id.to_id(),
                user_id
            ),
        ));
    }
    Ok(())
}

/// Normalises an Azure location ("Central US" → "centralus").
pub fn normalize_location(l: &str) -> String {
    l.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The start of every tracked-resource PUT: its key, the stored document if any, the new
/// envelope built from the body (see [`tracked`]) and the body's properties.
pub(crate) struct Draft {
    pub key: String,
    pub existing: Option<Value>,
    pub doc: Value,
    pub props: Value,
}

pub(crate) fn draft(tx: &Tx, ctx: &mut Ctx, id: &ResourceId, body: &Value) -> ArmResult<Draft> {
    let key = id.key();
    let existing = tx.get(&key).cloned();
    let doc = tracked(ctx, id, body, existing.as_ref())?;
    let props = doc::props(body).clone();
    Ok(Draft {
        key,
        existing,
        doc,
        props,
    })
}

/// Builds the envelope of a tracked resource: id, name, type, location, tags, etag, and the
/// resourceGuid (kept across updates). Refuses a missing location or a location change.
pub fn tracked(
    ctx: &mut Ctx,
    id: &ResourceId,
    body: &Value,
    existing: Option<&Value>,
) -> ArmResult<Value> {
    let loc = match doc::get_str(body, "location") {
        Some(l) if !l.trim().is_empty() => normalize_location(l),
        _ => match existing.and_then(|e| doc::get_str(e, "location")) {
            Some(l) => l.to_string(),
            None => {
                return Err(ArmError::bad(
                    "LocationRequired",
                    "The location property is required for this definition.",
                ))
            }
        },
    };
    if let Some(old) = existing.and_then(|e| doc::get_str(e, "location")) {
        if old != loc {
            return Err(ArmError::bad(
                "InvalidResourceLocation",
                format!(
                    "The resource '{}' already exists in location '{old}' in resource group '{}'. A resource with the same name cannot be created in location '{loc}'. Please select a new resource name.",
                    id.leaf(),
                    id.resource_group
                ),
            ));
        }
    }
    let mut d = json!({
        "name": id.leaf(),
        "id": id.to_id(),
        "etag": ctx.etag(),
        "type": id.kind.type_name(),
        "location": loc,
    });
    if let Some(t) = body.get("tags") {
        d["tags"] = t.clone();
    }
    // Envelope fields the kind's schema admits (a gateway's managed identity, an edge zone).
    for f in ["identity", "extendedLocation"] {
        if let Some(v) = body.get(f) {
            d[f] = v.clone();
        }
    }
    let mut p = body.get("properties").cloned().unwrap_or_else(|| json!({}));
    let guid = existing
        .and_then(|e| doc::get_str(doc::props(e), "resourceGuid").map(String::from))
        .unwrap_or_else(|| ctx.guid());
    p["provisioningState"] = json!("Succeeded");
    p["resourceGuid"] = json!(guid);
    d["properties"] = p;
    Ok(d)
}

/// Builds the envelope of a child resource (subnet, peering, route).
pub fn child(ctx: &mut Ctx, id: &ResourceId, body: &Value) -> Value {
    let mut p = body.get("properties").cloned().unwrap_or_else(|| json!({}));
    p["provisioningState"] = json!("Succeeded");
    json!({
        "name": id.leaf(),
        "id": id.to_id(),
        "etag": ctx.etag(),
        "type": id.kind.type_name(),
        "properties": p,
    })
}

/// Resolves a reference to a resource of `kind` that must exist; `what` names the field.
pub fn resolve(tx: &Tx, reference: &str, kind: Kind, what: &str) -> ArmResult<(ResourceId, Value)> {
    let bad = || {
        ArmError::bad(
            "InvalidResourceReference",
            format!("Resource {reference} referenced by {what} was not found."),
        )
    };
    let rid = ResourceId::parse(reference).map_err(|_| bad())?;
    if rid.kind != kind {
        return Err(ArmError::bad(
            "InvalidResourceReference",
            format!(
                "{what} must reference a resource of type {}; got {reference}.",
                kind.type_name()
            ),
        ));
    }
    let d = tx.get(&rid.key()).cloned().ok_or_else(bad)?;
    Ok((rid, d))
}

pub use gateway::gateway_vnet as gateway_vnet_of;
pub mod peering_api {
    //! Peering state names and helpers used by readers of the model.
    pub use super::peering::{reverse, state_of, sync_level, CONNECTED, DISCONNECTED, INITIATED};
}
