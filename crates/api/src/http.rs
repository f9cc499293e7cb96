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
    serde_json::from_slice(bytes).map_err(|e| {
        ArmError::invalid_format(format!(
            "The request content was invalid and could not be deserialized: {e}."
        ))
    })
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
    fn decoding() {
        assert_eq!(percent_decode("a%20b%2Fc"), "a b/c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
