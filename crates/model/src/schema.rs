//! A small declarative schema for request bodies.
//!
//! ARM bodies carry many fields vnet stores and echoes without acting on them. Declaring each
//! resource's fields once lets one function refuse unknown or wrongly typed fields (with the
//! JSON path in the message), drop read-only fields that clients echo back from a GET, and
//! strip write-only secrets (`sharedKey`, `radiusServerSecret`) from every response.
//!
//! The cleaned value is the one document every later step reads: the model writes it and the
//! authorizer takes its linked scopes from it ([`crate::links`]). So cleaning refuses what two
//! readers could read two ways: a member given twice in different letter cases
//! (`"properties"` and `"Properties"`), or a reference whose `id` is spelled twice.

use crate::error::{ArmError, ArmResult};
use serde_json::{Map, Value};

/// A JSON type.
#[derive(Debug)]
pub enum Ty {
    Bool,
    Str,
    Int,
    Num,
    /// An object with exactly these fields.
    Obj(&'static [F]),
    Arr(&'static Ty),
    /// An object of string values with free keys (tags).
    StrMap,
    /// Anything (free-form objects vnet stores without looking inside).
    Any,
    /// A reference to another resource, `{"id": "…"}`: linking to it needs `Link::action` on
    /// the referenced resource (Azure's linked authorization). Only `id` is kept: clients that
    /// send the whole referenced resource (SDK models fetched with a GET) have the rest
    /// ignored, as Azure stores references by id.
    Ref(&'static Link),
}

/// What a reference field lets the writer do to the resource it names.
#[derive(Debug)]
pub struct Link {
    /// The RBAC action the writer needs on the referenced resource, e.g.
    /// `Microsoft.Network/virtualNetworks/subnets/join/action`.
    pub action: &'static str,
}

/// Who may write a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acc {
    /// Read and written by clients.
    Rw,
    /// Computed by vnet: ignored in requests.
    Ro,
    /// Written by clients, never returned.
    Wo,
}

/// A named field.
#[derive(Debug)]
pub struct F {
    pub name: &'static str,
    pub ty: Ty,
    pub acc: Acc,
}

pub const fn rw(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        acc: Acc::Rw,
    }
}
pub const fn ro(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        acc: Acc::Ro,
    }
}
pub const fn wo(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        acc: Acc::Wo,
    }
}

pub const STRS: Ty = Ty::Arr(&Ty::Str);

fn type_name(t: &Ty) -> &'static str {
    match t {
        Ty::Bool => "Boolean",
        Ty::Str => "String",
        Ty::Int => "Integer",
        Ty::Num => "Number",
        Ty::Obj(_) | Ty::StrMap | Ty::Ref(_) => "Object",
        Ty::Arr(_) => "Array",
        Ty::Any => "Any",
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Checks `v` against `ty` and returns the cleaned value: read-only fields and nulls dropped,
/// field names in the schema's spelling.
pub fn clean(v: &Value, ty: &Ty, path: &str) -> ArmResult<Value> {
    let wrong = || {
        ArmError::invalid_format(format!(
            "Cannot parse the request: the value at path '{path}' must be of type {}.",
            type_name(ty)
        ))
        .with_target(path.to_string())
    };
    match ty {
        Ty::Bool => v.is_boolean().then(|| v.clone()).ok_or_else(wrong),
        Ty::Str => v.is_string().then(|| v.clone()).ok_or_else(wrong),
        Ty::Int => (v.is_i64() || v.is_u64())
            .then(|| v.clone())
            .ok_or_else(wrong),
        Ty::Num => v.is_number().then(|| v.clone()).ok_or_else(wrong),
        Ty::Any => Ok(v.clone()),
        Ty::StrMap => {
            let m = v.as_object().ok_or_else(wrong)?;
            for (k, x) in m {
                if !x.is_string() {
                    return Err(ArmError::invalid_format(format!(
                        "Cannot parse the request: the value at path '{}' must be of type String.",
                        join(path, k)
                    )));
                }
            }
            Ok(v.clone())
        }
        Ty::Arr(inner) => {
            let a = v.as_array().ok_or_else(wrong)?;
            let mut out = Vec::with_capacity(a.len());
            for (i, x) in a.iter().enumerate() {
                out.push(clean(x, inner, &format!("{path}[{i}]"))?);
            }
            Ok(Value::Array(out))
        }
        Ty::Ref(_) => {
            let m = v.as_object().ok_or_else(wrong)?;
            refuse_case_twins(m, path)?;
            let mut out = Map::new();
            if let Some((_, id)) = m.iter().find(|(k, _)| k.eq_ignore_ascii_case("id")) {
                if !id.is_null() {
                    let p = join(path, "id");
                    out.insert("id".into(), clean(id, &Ty::Str, &p)?);
                }
            }
            Ok(Value::Object(out))
        }
        Ty::Obj(fields) => {
            let m = v.as_object().ok_or_else(wrong)?;
            refuse_case_twins(m, path)?;
            let mut out = Map::new();
            for (k, x) in m {
                let f = fields
                    .iter()
                    .find(|f| f.name.eq_ignore_ascii_case(k))
                    .ok_or_else(|| {
                        ArmError::invalid_format(format!(
                            "Cannot parse the request: could not find member '{k}' at path '{path}'."
                        ))
                        .with_target(join(path, k))
                    })?;
                if x.is_null() || f.acc == Acc::Ro {
                    continue;
                }
                out.insert(f.name.to_string(), clean(x, &f.ty, &join(path, f.name))?);
            }
            Ok(Value::Object(out))
        }
    }
}

/// Refuses an object that names one member twice in different letter cases: members match
/// case-insensitively, so which of the two counts would be a guess.
fn refuse_case_twins(m: &Map<String, Value>, path: &str) -> ArmResult<()> {
    if m.len() < 2 {
        return Ok(());
    }
    let mut seen: Vec<String> = m.keys().map(|k| k.to_ascii_lowercase()).collect();
    seen.sort_unstable();
    if let Some(w) = seen.windows(2).find(|w| w[0] == w[1]) {
        let name = m
            .keys()
            .find(|k| k.eq_ignore_ascii_case(&w[0]))
            .cloned()
            .unwrap_or_default();
        return Err(ArmError::invalid_format(format!(
            "Cannot parse the request: member '{name}' appears more than once at path '{path}' (member names are case-insensitive)."
        ))
        .with_target(join(path, &name)));
    }
    Ok(())
}

/// Removes write-only fields (secrets) from a value shaped by `ty`.
pub fn strip_secrets(v: &mut Value, ty: &Ty) {
    match (ty, v) {
        (Ty::Obj(fields), Value::Object(m)) => {
            for f in fields.iter() {
                if f.acc == Acc::Wo {
                    m.remove(f.name);
                } else if let Some(x) = m.get_mut(f.name) {
                    strip_secrets(x, &f.ty);
                }
            }
        }
        (Ty::Arr(inner), Value::Array(a)) => {
            for x in a {
                strip_secrets(x, inner);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T: Ty = Ty::Obj(&[
        rw("a", Ty::Int),
        ro("b", Ty::Str),
        wo("secret", Ty::Str),
        rw("list", Ty::Arr(&Ty::Obj(&[rw("x", Ty::Bool)]))),
    ]);

    #[test]
    fn cleans_and_refuses() {
        let v = clean(
            &json!({"A": 1, "b": "ignored", "secret": "s", "list": [{"x": true}], "list2": null}),
            &T,
            "",
        );
        assert!(v.is_err(), "unknown member list2 refused even when null");
        let v = clean(
            &json!({"A": 1, "b": "ignored", "secret": "s", "list": [{"x": true}]}),
            &T,
            "",
        )
        .unwrap();
        assert_eq!(v, json!({"a": 1, "secret": "s", "list": [{"x": true}]}));
        let e = clean(&json!({"a": 1, "A": 2}), &T, "").unwrap_err();
        assert!(e.message.contains("more than once"), "{}", e.message);
        let e = clean(&json!({"list": [{"x": "yes"}]}), &T, "properties").unwrap_err();
        assert!(e.message.contains("properties.list[0].x"), "{}", e.message);
        assert!(clean(&json!({"a": "1"}), &T, "").is_err());
        let mut r = json!({"a": 1, "secret": "s"});
        strip_secrets(&mut r, &T);
        assert_eq!(r, json!({"a": 1}));
    }
}
