//! Pieces of request bodies in ARM's wire shape: references, prefixes, and the
//! read-modify-write cycle behind every `update`.
//!
//! `update` commands work as `az`'s generic update does: GET the resource, change the fields
//! the flags name, PUT the whole thing back. A PUT replaces the writable view (an omitted subnet
//! list deletes the subnets), so the body must start from the current state, never from the
//! flags alone. Read-only fields are dropped on the way, as the SDK serializer does, so that the
//! server never has to guess whether an echoed `provisioningState` means anything.

use serde_json::{json, Map, Value};

/// `{"id": "..."}`: how one resource points at another.
pub fn reference(id: &str) -> Value {
    json!({ "id": id })
}

/// Sets a subnet's prefixes as az does: `addressPrefix` for one, `addressPrefixes` for several
/// (the other field is removed so the two never disagree).
pub fn set_prefixes(properties: &mut Map<String, Value>, prefixes: &[String]) {
    if let [single] = prefixes {
        properties.remove("addressPrefixes");
        properties.insert("addressPrefix".into(), json!(single));
    } else {
        properties.remove("addressPrefix");
        properties.insert("addressPrefixes".into(), json!(prefixes));
    }
}

/// The `properties` object of a resource body, created if missing.
pub fn properties_mut(resource: &mut Value) -> &mut Map<String, Value> {
    if !resource.is_object() {
        *resource = json!({});
    }
    let map = resource.as_object_mut().expect("made an object above");
    let entry = map
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut().expect("made an object above")
}

/// Fields that are read-only on every Microsoft.Network type.
const READ_ONLY: &[&str] = &["etag", "provisioningState", "resourceGuid"];

/// A GET body made fit to PUT back: read-only fields removed at every depth.
pub fn for_update(mut resource: Value) -> Value {
    strip(&mut resource);
    resource
}

fn strip(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !READ_ONLY.contains(&k.as_str()));
            map.values_mut().for_each(strip);
        }
        Value::Array(items) => items.iter_mut().for_each(strip),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_prefix_is_address_prefix() {
        let mut p = Map::new();
        p.insert("addressPrefixes".into(), json!(["x"]));
        set_prefixes(&mut p, &["10.0.0.0/24".into()]);
        assert_eq!(Value::Object(p), json!({"addressPrefix": "10.0.0.0/24"}));
    }

    #[test]
    fn several_prefixes_are_address_prefixes() {
        let mut p = Map::new();
        p.insert("addressPrefix".into(), json!("x"));
        set_prefixes(&mut p, &["10.0.0.0/24".into(), "10.0.1.0/24".into()]);
        assert_eq!(
            Value::Object(p),
            json!({"addressPrefixes": ["10.0.0.0/24", "10.0.1.0/24"]})
        );
    }

    #[test]
    fn read_only_fields_are_dropped_everywhere() {
        let got = for_update(json!({
            "name": "hub", "etag": "W/\"1\"",
            "properties": {
                "provisioningState": "Succeeded", "resourceGuid": "g",
                "subnets": [{"name": "a", "etag": "e", "properties": {"addressPrefix": "p", "provisioningState": "Succeeded"}}]
            }
        }));
        assert_eq!(
            got,
            json!({"name": "hub", "properties": {"subnets": [{"name": "a", "properties": {"addressPrefix": "p"}}]}})
        );
    }

    #[test]
    fn properties_are_created_on_demand() {
        let mut v = json!({"name": "x"});
        properties_mut(&mut v).insert("a".into(), json!(1));
        assert_eq!(v, json!({"name": "x", "properties": {"a": 1}}));
    }
}
