//! Reading stored documents: typed accessors over `serde_json::Value` so the rules read like
//! Azure's documentation rather than like JSON plumbing.

use crate::cidr;
use crate::error::{ArmError, ArmResult};
use crate::id::ResourceId;
use ipnet::IpNet;
use serde_json::{json, Map, Value};

pub fn props(doc: &Value) -> &Value {
    doc.get("properties").unwrap_or(&Value::Null)
}

pub fn props_mut(doc: &mut Value) -> &mut Map<String, Value> {
    if !doc.get("properties").is_some_and(Value::is_object) {
        doc["properties"] = json!({});
    }
    doc["properties"]
        .as_object_mut()
        .expect("properties object")
}

pub fn get_bool(v: &Value, name: &str, default: bool) -> bool {
    v.get(name).and_then(Value::as_bool).unwrap_or(default)
}

pub fn get_str<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

/// The `id` of a reference field (`{"id": …}` or an embedded resource).
pub fn ref_id<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name)
        .and_then(|r| r.get("id"))
        .and_then(Value::as_str)
}

pub fn ref_key(v: &Value, name: &str) -> Option<String> {
    ref_id(v, name).map(|s| s.to_ascii_lowercase())
}

/// The strings of an array field.
pub fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Parses the prefixes of an `{addressPrefixes: [...]}` object found at `v`.
pub fn prefixes_at(v: &Value, what: &str) -> ArmResult<Vec<IpNet>> {
    strs(v.get("addressPrefixes").unwrap_or(&Value::Null))
        .iter()
        .map(|s| cidr::parse_prefix(s, what))
        .collect()
}

/// Prefixes already validated when stored: parse leniently.
pub fn stored_prefixes(v: &Value) -> Vec<IpNet> {
    strs(v.get("addressPrefixes").unwrap_or(&Value::Null))
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The address space of a stored VNet.
pub fn vnet_space(vnet: &Value) -> Vec<IpNet> {
    stored_prefixes(props(vnet).get("addressSpace").unwrap_or(&Value::Null))
}

/// The prefixes of a stored subnet (`addressPrefix` or `addressPrefixes`).
pub fn subnet_prefixes(subnet: &Value) -> Vec<IpNet> {
    let p = props(subnet);
    if let Some(s) = get_str(p, "addressPrefix") {
        return s.parse().ok().into_iter().collect();
    }
    stored_prefixes(p)
}

pub fn prefix_strings(p: &[IpNet]) -> Value {
    Value::Array(p.iter().map(|n| Value::String(n.to_string())).collect())
}

/// The parsed id of a stored document.
pub fn doc_id(doc: &Value) -> Option<ResourceId> {
    get_str(doc, "id").and_then(|s| ResourceId::parse(s).ok())
}

pub fn name(doc: &Value) -> &str {
    get_str(doc, "name").unwrap_or("")
}

/// The id string of a stored document.
pub fn id_str(doc: &Value) -> &str {
    get_str(doc, "id").unwrap_or("")
}

/// Private bookkeeping stored beside the ARM fields, never rendered.
pub fn private(doc: &Value) -> &Value {
    doc.get("_vnet").unwrap_or(&Value::Null)
}

pub fn private_mut(doc: &mut Value) -> &mut Map<String, Value> {
    if !doc.get("_vnet").is_some_and(Value::is_object) {
        doc["_vnet"] = json!({});
    }
    doc["_vnet"].as_object_mut().expect("_vnet object")
}

/// An enum-valued field: `value` matched case-insensitively against `allowed`, returned in
/// Azure's spelling; otherwise a 400 with `code` naming the field (`what`) and the choices.
pub fn one_of(
    value: &str,
    allowed: &[&'static str],
    code: &str,
    what: &str,
) -> ArmResult<&'static str> {
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(value))
        .copied()
        .ok_or_else(|| {
            ArmError::bad(
                code,
                format!(
                    "{what} {value} is not valid; it must be one of {}.",
                    allowed.join(", ")
                ),
            )
        })
}
