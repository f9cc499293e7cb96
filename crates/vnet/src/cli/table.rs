//! `-o table`: per-resource column sets and the plain-text layout `az` prints.
//!
//! The layout is python-tabulate's "simple" format as knack (az's output layer) uses it:
//! a header row, a row of dashes per column, cells left-aligned and separated by two spaces,
//! each column at least two characters wider than its header, trailing blanks trimmed,
//! booleans spelled `True`/`False`. Columns read the *shaped* value (see `output.rs`), so
//! they name fields the way the JSON output shows them.

use super::ids;
use serde_json::Value;

/// How one cell is drawn from a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// The value itself; arrays are joined with ", ".
    Value,
    /// Arrays joined with a single space (az's effective-route table does this).
    Spaced,
    /// The number of elements of an array (0 when absent).
    Count,
    /// The last segment of an id (a reference shown by its name).
    Name,
}

/// One column: its header, where its value is (a JSON pointer), and how to draw it.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub header: &'static str,
    pub pointer: &'static str,
    pub cell: Cell,
}

impl Column {
    pub const fn new(header: &'static str, pointer: &'static str) -> Self {
        Column {
            header,
            pointer,
            cell: Cell::Value,
        }
    }

    pub const fn with(header: &'static str, pointer: &'static str, cell: Cell) -> Self {
        Column {
            header,
            pointer,
            cell,
        }
    }

    fn draw(&self, row: &Value) -> String {
        let value = row.pointer(self.pointer).unwrap_or(&Value::Null);
        match self.cell {
            Cell::Value => scalar_or_joined(value, ", "),
            Cell::Spaced => scalar_or_joined(value, " "),
            Cell::Count => value.as_array().map_or(0, Vec::len).to_string(),
            Cell::Name => value
                .as_str()
                .or_else(|| value.get("id").and_then(Value::as_str))
                .map(|id| ids::name_of(id).to_owned())
                .unwrap_or_default(),
        }
    }
}

/// What `-o table` shows for a command's result.
#[derive(Debug, Clone, Copy)]
pub enum TableStyle {
    /// Fixed columns, one row per element (for a list) or a single row (for one resource).
    /// With `rows`, the rows are the array at that pointer instead (`{"value": [...]}` bodies).
    Columns {
        rows: Option<&'static str>,
        columns: &'static [Column],
    },
    /// az's fallback: every scalar top-level field except id, type and etag.
    Auto,
}

impl TableStyle {
    pub const fn columns(columns: &'static [Column]) -> Self {
        TableStyle::Columns {
            rows: None,
            columns,
        }
    }

    /// Lays `value` (already shaped) out as a table.
    pub fn render(&self, value: &Value) -> String {
        match *self {
            TableStyle::Columns { rows, columns } => {
                let items = match rows {
                    Some(pointer) => value
                        .pointer(pointer)
                        .and_then(Value::as_array)
                        .map(|a| a.iter().collect())
                        .unwrap_or_default(),
                    None => as_rows(value),
                };
                let headers: Vec<&str> = columns.iter().map(|c| c.header).collect();
                let cells: Vec<Vec<String>> = items
                    .iter()
                    .map(|item| columns.iter().map(|c| c.draw(item)).collect())
                    .collect();
                layout(&headers, &cells)
            }
            TableStyle::Auto => auto(value),
        }
    }
}

fn as_rows(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn scalar_or_joined(value: &Value, sep: &str) -> String {
    match value {
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(sep),
        other => scalar(other),
    }
}

/// A scalar as Python would print it (az is Python): `True`, `False`, numbers, strings as is.
fn scalar(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// az's automatic table: scalar fields in sorted key order, minus id/type/etag, header
/// capitalised.
fn auto(value: &Value) -> String {
    let items = as_rows(value);
    let mut headers: Vec<String> = Vec::new();
    let mut keyed_rows: Vec<Vec<(String, String)>> = Vec::new();
    for item in items {
        let mut row = Vec::new();
        match item {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                for (k, v) in entries {
                    if ["id", "type", "etag"].contains(&k.as_str())
                        || v.is_null()
                        || v.is_array()
                        || v.is_object()
                    {
                        continue;
                    }
                    row.push((capitalize(k), scalar(v)));
                }
            }
            other => row.push(("Result".to_owned(), scalar(other))),
        }
        for (h, _) in &row {
            if !headers.contains(h) {
                headers.push(h.clone());
            }
        }
        keyed_rows.push(row);
    }
    let cells: Vec<Vec<String>> = keyed_rows
        .into_iter()
        .map(|row| {
            headers
                .iter()
                .map(|h| {
                    row.iter()
                        .find(|(k, _)| k == h)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                })
                .collect()
        })
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    layout(&headers, &cells)
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The text: header, dashes, rows. Nothing at all for no rows or no columns.
pub fn layout(headers: &[&str], rows: &[Vec<String>]) -> String {
    if headers.is_empty() || rows.is_empty() {
        return String::new();
    }
    let width = |s: &str| s.chars().count();
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| width(c)))
                .max()
                .unwrap_or(0)
                .max(width(h) + 2)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(width(c)))))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = String::new();
    out.push_str(&line(headers.to_vec()));
    out.push('\n');
    let dashes: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&dashes.join("  "));
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn layout_matches_tabulate_simple() {
        let text = layout(
            &["Name", "ResourceGroup", "Prefixes"],
            &[
                vec!["hub".into(), "rg1".into(), "10.0.0.0/16".into()],
                vec!["spoke-long-name".into(), "rg1".into(), "".into()],
            ],
        );
        assert_eq!(
            text,
            "Name             ResourceGroup    Prefixes\n\
             ---------------  ---------------  -----------\n\
             hub              rg1              10.0.0.0/16\n\
             spoke-long-name  rg1\n"
        );
    }

    #[test]
    fn empty_lists_print_nothing() {
        static COLS: &[Column] = &[Column::new("Name", "/name")];
        assert_eq!(TableStyle::columns(COLS).render(&json!([])), "");
    }

    #[test]
    fn cells_draw_values_counts_names_and_booleans() {
        static COLS: &[Column] = &[
            Column::new("Name", "/name"),
            Column::with("NumSubnets", "/subnets", Cell::Count),
            Column::new("Prefixes", "/addressSpace/addressPrefixes"),
            Column::with("RemoteVnet", "/remoteVirtualNetwork", Cell::Name),
            Column::new("Transit", "/allowGatewayTransit"),
            Column::new("Missing", "/nope"),
        ];
        let v = json!({
            "name": "hub",
            "subnets": [{}, {}],
            "addressSpace": {"addressPrefixes": ["10.0.0.0/16", "10.1.0.0/16"]},
            "remoteVirtualNetwork": {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/spoke"},
            "allowGatewayTransit": false
        });
        let text = TableStyle::columns(COLS).render(&v);
        let row = text.lines().nth(2).unwrap();
        assert_eq!(
            row,
            "hub     2             10.0.0.0/16, 10.1.0.0/16  spoke         False"
        );
    }

    #[test]
    fn rows_from_a_value_array() {
        static COLS: &[Column] = &[
            Column::new("Source", "/source"),
            Column::with("Address Prefix", "/addressPrefix", Cell::Spaced),
        ];
        let style = TableStyle::Columns {
            rows: Some("/value"),
            columns: COLS,
        };
        let text =
            style.render(&json!({"value": [{"source": "Default", "addressPrefix": ["a", "b"]}]}));
        assert_eq!(
            text,
            "Source    Address Prefix\n--------  ----------------\nDefault   a b\n"
        );
    }

    #[test]
    fn auto_table_skips_ids_and_structures() {
        let text = TableStyle::Auto.render(&json!({
            "id": "/x", "etag": "e", "type": "t",
            "nextHopIpAddress": "10.0.0.4", "nextHopType": "VirtualAppliance",
            "routeTableId": "/rt", "nested": {"a": 1}, "list": [1], "none": null
        }));
        assert_eq!(
            text,
            "NextHopIpAddress    NextHopType       RouteTableId\n\
             ------------------  ----------------  --------------\n\
             10.0.0.4            VirtualAppliance  /rt\n"
        );
    }

    #[test]
    fn auto_table_of_a_list_unions_the_keys() {
        let text = TableStyle::Auto.render(&json!([{"a": 1}, {"b": true}]));
        assert_eq!(text, "A    B\n---  ----\n1\n     True\n");
    }
}
