//! What a command prints: `-o json` (default) or `-o table`, shaped the way `az` shows results.
//!
//! `az` does not print ARM's wire shape. Its SDK models flatten every `properties` object into
//! its parent (`peeringState`, not `properties.peeringState`), it adds `resourceGroup` to every
//! object that has an `id`, and knack prints JSON with sorted keys and two-space indents. Users
//! (and their scripts) know that shape, so the CLI reproduces it. Request bodies, by contrast,
//! are always built in the wire shape.

use super::ids;
use super::table::TableStyle;
use clap::ValueEnum;
use serde_json::{Map, Value};

/// `-o json|table`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Json,
    Table,
}

/// A command's result: a value to print (none for deletes and `--no-wait`), how to lay it out
/// as a table, and whether to flatten `properties` (az does for every Microsoft.Network model,
/// but not for resource groups, whose `properties` it prints as they are).
#[derive(Debug, Clone)]
pub struct Reply {
    pub value: Option<Value>,
    pub table: TableStyle,
    pub flatten: bool,
}

impl Reply {
    pub fn none() -> Self {
        Reply::value(None, TableStyle::Auto)
    }

    pub fn value(value: Option<Value>, table: TableStyle) -> Self {
        Reply {
            value,
            table,
            flatten: true,
        }
    }

    /// A list result: printed as a JSON array, even when empty.
    pub fn list(items: Vec<Value>, table: TableStyle) -> Self {
        Reply::value(Some(Value::Array(items)), table)
    }

    /// Keep `properties` nested (resource groups).
    pub fn unflattened(mut self) -> Self {
        self.flatten = false;
        self
    }

    /// The text to print on stdout (empty when there is nothing to show).
    pub fn render(self, format: OutputFormat) -> String {
        let Some(value) = self.value else {
            return String::new();
        };
        let shaped = if self.flatten { az_shape(value) } else { value };
        match format {
            OutputFormat::Json => render_json(&shaped),
            OutputFormat::Table => self.table.render(&shaped),
        }
    }
}

/// The az view of an ARM value: `properties` flattened into their parents and `resourceGroup`
/// added next to every resource `id` (one with a provider part; az skips group and
/// subscription ids), at every depth.
///
/// A field of the parent wins over a same-named field inside `properties` (none of the
/// Microsoft.Network types has such a clash; the rule only keeps the function total).
pub fn az_shape(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(az_shape).collect()),
        Value::Object(mut map) => {
            let properties = match map.remove("properties") {
                Some(Value::Object(p)) => Some(p),
                Some(other) => {
                    map.insert("properties".to_owned(), other);
                    None
                }
                None => None,
            };
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(k, az_shape(v));
            }
            for (k, v) in properties.into_iter().flatten() {
                if !out.contains_key(&k) {
                    out.insert(k, az_shape(v));
                }
            }
            let has_group = out.keys().any(|k| k.eq_ignore_ascii_case("resourceGroup"));
            if !has_group {
                if let Some(group) = out
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|id| id.split('/').count() > 8)
                    .and_then(ids::resource_group_of)
                {
                    let group = group.to_owned();
                    out.insert("resourceGroup".to_owned(), Value::String(group));
                }
            }
            Value::Object(out)
        }
        other => other,
    }
}

/// Pretty JSON with sorted keys and a final newline, as `az -o json` prints.
pub fn render_json(value: &Value) -> String {
    let sorted = sort_keys(value.clone());
    let mut text = serde_json::to_string_pretty(&sorted).unwrap_or_else(|_| sorted.to_string());
    text.push('\n');
    text
}

/// The same value with every object's keys in ascending order (the workspace builds serde_json
/// with `preserve_order`, so the order must be imposed explicitly).
fn sort_keys(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn properties_are_flattened_at_every_depth() {
        let wire = json!({
            "id": "/subscriptions/s/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/hub",
            "name": "hub",
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                "subnets": [{
                    "id": "/subscriptions/s/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/hub/subnets/a",
                    "name": "a",
                    "properties": {"addressPrefix": "10.0.0.0/24", "provisioningState": "Succeeded"}
                }],
                "provisioningState": "Succeeded"
            }
        });
        let shaped = az_shape(wire);
        assert_eq!(shaped["addressSpace"]["addressPrefixes"][0], "10.0.0.0/16");
        assert_eq!(shaped["provisioningState"], "Succeeded");
        assert_eq!(shaped["resourceGroup"], "rg1");
        assert_eq!(shaped["subnets"][0]["addressPrefix"], "10.0.0.0/24");
        assert_eq!(shaped["subnets"][0]["resourceGroup"], "rg1");
        assert!(shaped.get("properties").is_none());
    }

    #[test]
    fn references_get_their_resource_group() {
        let shaped = az_shape(json!({
            "properties": {"remoteVirtualNetwork": {"id": "/subscriptions/s/resourceGroups/other/providers/Microsoft.Network/virtualNetworks/x"}}
        }));
        assert_eq!(shaped["remoteVirtualNetwork"]["resourceGroup"], "other");
    }

    #[test]
    fn parent_fields_win_and_non_object_properties_stay() {
        let shaped = az_shape(json!({"name": "outer", "properties": {"name": "inner", "x": 1}}));
        assert_eq!(shaped, json!({"name": "outer", "x": 1}));
        let shaped = az_shape(json!({"properties": "text"}));
        assert_eq!(shaped, json!({"properties": "text"}));
    }

    #[test]
    fn json_is_sorted_and_indented_by_two() {
        let text = render_json(&json!({"b": 1, "a": {"d": [true], "c": null}}));
        assert_eq!(
            text,
            "{\n  \"a\": {\n    \"c\": null,\n    \"d\": [\n      true\n    ]\n  },\n  \"b\": 1\n}\n"
        );
    }

    #[test]
    fn group_ids_get_no_resource_group() {
        let shaped = az_shape(json!({"id": "/subscriptions/s/resourceGroups/rg1", "name": "rg1"}));
        assert!(shaped.get("resourceGroup").is_none());
    }

    #[test]
    fn unflattened_replies_keep_properties() {
        let value = json!({"name": "rg1", "properties": {"provisioningState": "Succeeded"}});
        let text = Reply::value(Some(value), TableStyle::Auto)
            .unflattened()
            .render(OutputFormat::Json);
        assert!(text.contains("\"properties\": {"), "{text}");
    }

    #[test]
    fn nothing_to_print_is_empty() {
        assert_eq!(Reply::none().render(OutputFormat::Json), "");
        assert_eq!(
            Reply::list(vec![], TableStyle::Auto).render(OutputFormat::Json),
            "[]\n"
        );
    }
}
