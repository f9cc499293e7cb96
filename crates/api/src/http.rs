//! HTTP plumbing shared by the handlers: responses in ARM's shape, query parsing, api-version
//! checks, body decoding with a size limit.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use model::ArmError;
use serde_json::Value;
use std::collections::HashMap;

/// Largest request body accepted (ARM's own limit is 4 MB).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

pub fn json_response(status: u16, body: &Value, headers: &[(String, String)]) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::try_from(k.as_str()),
            HeaderValue::from_str(v),
        ) {
            h.insert(k, v);
        }
    }
    r
}

pub fn empty(status: u16, headers: &[(String, String)]) -> Response {
    let mut r = StatusCode::from_u16(status)
        .unwrap_or(StatusCode::OK)
        .into_response();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::try_from(k.as_str()),
            HeaderValue::from_str(v),
        ) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

pub fn error(e: &ArmError) -> Response {
    let mut r = json_response(e.status, &e.to_json(), &[]);
    r.headers_mut()
        .insert("x-ms-failure-cause", HeaderValue::from_static("gateway"));
    r
}

/// Query parameters, keys lower-cased (ARM matches them case-insensitively).
pub fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for pair in q.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        m.insert(percent_decode(k).to_ascii_lowercase(), percent_decode(v));
    }
    m
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks `api-version`: present and well formed (`YYYY-MM-DD` with an optional `-preview`).
pub fn check_api_version(q: &HashMap<String, String>) -> Result<String, ArmError> {
    let Some(v) = q.get("api-version") else {
        return Err(ArmError::bad(
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    };
    let date = v.strip_suffix("-preview").unwrap_or(v);
    let ok = date.len() == 10
        && date.chars().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        })
        && ("2015-01-01"..="2026-12-31").contains(&date);
    if !ok {
        return Err(ArmError::bad(
            "InvalidApiVersionParameter",
            format!("The api-version '{v}' is invalid. The supported versions are dated 2015-01-01 to 2026-12-31, for example '2025-07-01' and '2026-03-01'."),
        ));
    }
    Ok(v.clone())
}

/// Parses a JSON request body (empty means `{}` where `empty_ok`).
pub fn parse_body(bytes: &[u8], empty_ok: bool) -> Result<Value, ArmError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        if empty_ok {
            return Ok(Value::Object(Default::default()));
        }
        return Err(ArmError::invalid_format(
            "The request content was invalid and could not be deserialized: the body is empty.",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = serde::Deserialize::deserialize(&mut de)
        .and_then(|Strict(v)| de.end().map(|_| v))
        .map_err(|e| {
            ArmError::invalid_format(format!(
                "The request content was invalid and could not be deserialized: {e}."
            ))
        })?;
    Ok(v)
}

/// A JSON value whose objects name no member twice, in any letter case. ARM reads members
/// case-insensitively; a body with `"properties"` and `"Properties"` (or the same member
/// twice) could be read two ways by two readers, so it is refused before anything reads it.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        let mut seen = std::collections::HashSet::new();
        while let Some(k) = map.next_key::<String>()? {
            if !seen.insert(k.to_ascii_lowercase()) {
                return Err(serde::de::Error::custom(format!(
                    "member '{k}' appears more than once in an object (member names are case-insensitive)"
                )));
            }
            let Strict(v) = map.next_value()?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

/// The scheme and authority of the URLs we hand back: the configured public URL. Only a router
/// embedded without one (in-process tests) falls back to the request's `Host`, which a client
/// controls and `vnet serve` therefore never uses.
pub fn base_url(public: Option<&str>, headers: &HeaderMap, scheme: &str) -> String {
    if let Some(p) = public {
        return p.trim_end_matches('/').to_string();
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions() {
        let q = |v: &str| parse_query(Some(&format!("api-version={v}")));
        assert!(check_api_version(&q("2025-07-01")).is_ok());
        assert!(check_api_version(&q("2024-01-01-preview")).is_ok());
        assert_eq!(
            check_api_version(&q("banana")).unwrap_err().code,
            "InvalidApiVersionParameter"
        );
        assert_eq!(
            check_api_version(&parse_query(None)).unwrap_err().code,
            "MissingApiVersionParameter"
        );
    }

    #[test]
    fn bodies_naming_a_member_twice_are_refused() {
        for body in [
            r#"{"properties": {}, "Properties": {}}"#,
            r#"{"properties": {}, "properties": {}}"#,
            r#"{"a": [{"id": "x", "ID": "y"}]}"#,
            r#"{"a": {"b": {"c": 1, "C": 2}}}"#,
        ] {
            let e = parse_body(body.as_bytes(), false).unwrap_err();
            assert_eq!(e.code, "InvalidRequestFormat", "{body}");
            assert!(e.message.contains("more than once"), "{}", e.message);
        }
        let v = parse_body(
            br#"{"a": [1, 2.5, "s", null, true, {"b": {}}], "c": -3}"#,
            false,
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": [1, 2.5, "s", null, true, {"b": {}}], "c": -3})
        );
        assert!(parse_body(b"{} trailing", false).is_err());
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("a%20b%2Fc"), "a b/c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
