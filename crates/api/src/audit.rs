//! Request ids, the audit log and the access log, around every request `vnet serve` answers.
//!
//! - Every answer carries `x-ms-request-id` (new for each request) and
//!   `x-ms-correlation-request-id` (the client's, when it sent a well-formed one, else new), and
//!   echoes a well-formed `x-ms-client-request-id`, as ARM does; clients quote these when they
//!   report a problem, and the logs below carry the same ids.
//! - **Audit** (`tracing` target `vnet::audit`, info level, and optionally `--audit-log FILE` as
//!   JSON lines, mode 0600): one line per write request (PUT, PATCH, DELETE, POST) with the
//!   principal, the operation (the ARM action, e.g. `Microsoft.Network/virtualNetworks/write`),
//!   the resource id (the request path), the status, the duration and the ids.
//! - **Access** (`vnet::access`, debug level): one line per request of any method.
//!
//! Neither ever holds a secret: no bodies, no headers but the ids, no query strings (token
//! requests carry none anyway, but ARM list continuation and future endpoints might), and ids
//! from the client are kept only when they are short and made of safe characters, so they cannot
//! forge log lines.
//!
//! The request body is read here, whole and within the connection's body deadline (slow uploads
//! get 408 and the connection closes), before the router sees it.

use crate::http;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Method, Request};
use axum::response::Response;
use http_body_util::BodyExt;
use model::ArmError;
use serde::Serialize;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use tower::ServiceExt;

/// Who the gate authenticated for a request: an empty slot put in the request's extensions,
/// filled by [`crate::identity_routes`] once the bearer token is verified, read when the audit
/// line is written.
#[derive(Clone, Default)]
pub struct Who(Arc<OnceLock<WhoIds>>);

#[derive(Debug, Clone)]
struct WhoIds {
    app_id: String,
    object_id: String,
    tenant_id: String,
}

impl Who {
    pub fn set(&self, p: &crate::auth::Principal) {
        let _ = self.0.set(WhoIds {
            app_id: p.app_id.clone(),
            object_id: p.object_id.clone(),
            tenant_id: p.tenant_id.clone(),
        });
    }
}

/// One audit line (the same fields in the log and in the file).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub time: String,
    /// `appId` of the authenticated principal; `anonymous` when the server requires no token
    /// (`--insecure-http`), `unauthenticated` when it does and none valid was sent.
    pub principal: String,
    pub object_id: Option<String>,
    pub tenant_id: Option<String>,
    pub method: String,
    /// The ARM action (`Microsoft.Network/virtualNetworks/write`), or `oauth2/token` for the
    /// token endpoint.
    pub operation: String,
    /// The request path (never its query string).
    pub resource_id: String,
    pub status: u16,
    pub duration_ms: f64,
    pub request_id: String,
    pub correlation_request_id: String,
    pub client_request_id: Option<String>,
    pub peer: Option<String>,
}

/// What the request layer needs: whether tokens are required (for the principal of
/// unauthenticated requests) and the audit file.
pub struct Audit {
    require_auth: bool,
    file: Option<Mutex<std::fs::File>>,
}

impl Audit {
    /// `file`: append JSON lines there (made mode 0600; an existing file is set to 0600).
    pub fn new(require_auth: bool, file: Option<&Path>) -> std::io::Result<Audit> {
        let file = match file {
            None => None,
            Some(p) => {
                use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
                let f = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(0o600)
                    .open(p)?;
                f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
                Some(Mutex::new(f))
            }
        };
        Ok(Audit { require_auth, file })
    }

    /// Reads the body (within `body_deadline`), runs `router`, sets the id headers, and logs.
    pub async fn handle<B>(
        &self,
        req: Request<B>,
        router: axum::Router,
        body_deadline: Option<tokio::time::Instant>,
    ) -> Response
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<crate::BoxError>,
    {
        let start = Instant::now();
        let (mut parts, body) = req.into_parts();
        let request_id = uuid::Uuid::new_v4().to_string();
        let client_request_id = client_id(&parts.headers, "x-ms-client-request-id");
        let correlation = client_id(&parts.headers, "x-ms-correlation-request-id")
            .unwrap_or_else(|| request_id.clone());
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let who = Who::default();
        parts.extensions.insert(who.clone());
        let method = parts.method.clone();
        let path = parts.uri.path().to_string();

        let mut resp = match read_body(body, body_deadline).await {
            Ok(bytes) => {
                let req = Request::from_parts(parts, Body::from(bytes));
                match router.oneshot(req).await {
                    Ok(r) => r,
                    Err(e) => match e {},
                }
            }
            Err(r) => r,
        };
        let h = resp.headers_mut();
        for (name, v) in [
            ("x-ms-request-id", Some(&request_id)),
            ("x-ms-correlation-request-id", Some(&correlation)),
            ("x-ms-client-request-id", client_request_id.as_ref()),
        ] {
            if let Some(v) = v.and_then(|v| HeaderValue::from_str(v).ok()) {
                h.insert(name, v);
            }
        }
        let status = resp.status().as_u16();
        let duration_ms = start.elapsed().as_secs_f64() * 1000.0;
        tracing::debug!(
            target: "vnet::access",
            method = %method, path = %path, status, duration_ms,
            request_id = %request_id,
            peer = %peer.map(|p| p.to_string()).unwrap_or_default(),
            "request"
        );
        if is_write(&method) {
            let ids = who.0.get();
            let principal = match ids {
                Some(w) => w.app_id.clone(),
                None if self.require_auth => "unauthenticated".into(),
                None => "anonymous".into(),
            };
            let rec = AuditRecord {
                time: crate::engine::now_rfc3339(),
                principal,
                object_id: ids.map(|w| w.object_id.clone()),
                tenant_id: ids.map(|w| w.tenant_id.clone()),
                operation: operation(&method, &path),
                method: method.to_string(),
                resource_id: path,
                status,
                duration_ms: (duration_ms * 1000.0).round() / 1000.0,
                request_id,
                correlation_request_id: correlation,
                client_request_id,
                peer: peer.map(|p| p.to_string()),
            };
            self.write(&rec);
        }
        resp
    }

    fn write(&self, r: &AuditRecord) {
        tracing::info!(
            target: "vnet::audit",
            principal = %r.principal,
            object_id = %r.object_id.as_deref().unwrap_or(""),
            tenant_id = %r.tenant_id.as_deref().unwrap_or(""),
            operation = %r.operation,
            resource_id = %r.resource_id,
            status = r.status,
            duration_ms = r.duration_ms,
            request_id = %r.request_id,
            correlation_request_id = %r.correlation_request_id,
            client_request_id = %r.client_request_id.as_deref().unwrap_or(""),
            peer = %r.peer.as_deref().unwrap_or(""),
            "{} {}", r.method, r.operation
        );
        if let Some(f) = &self.file {
            let mut line = serde_json::to_string(r).unwrap_or_default();
            line.push('\n');
            let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = f.write_all(line.as_bytes()) {
                tracing::warn!(error = %e, "cannot write the audit log");
            }
        }
    }
}

fn is_write(m: &Method) -> bool {
    matches!(
        *m,
        Method::PUT | Method::PATCH | Method::DELETE | Method::POST
    )
}

/// The operation a write request performs, named as role definitions name actions.
pub fn operation(method: &Method, path: &str) -> String {
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(http::percent_decode)
        .collect();
    if segs.len() >= 2 && segs[1].eq_ignore_ascii_case("oauth2") {
        return "oauth2/token".into();
    }
    crate::auth::required_action(method.as_str(), &segs).0
}

/// A client-supplied id, kept only if it is short and made of characters that cannot break a
/// log line or a header (GUIDs and the like).
fn client_id(h: &HeaderMap, name: &str) -> Option<String> {
    let v = h.get(name)?.to_str().ok()?.trim();
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:{}()".contains(&b));
    ok.then(|| v.to_string())
}

/// The whole body, at most [`http::MAX_BODY`] bytes, before `deadline`.
async fn read_body<B>(body: B, deadline: Option<tokio::time::Instant>) -> Result<Bytes, Response>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    let collect = http_body_util::Limited::new(body, http::MAX_BODY).collect();
    let r = match deadline {
        Some(d) => match tokio::time::timeout_at(d, collect).await {
            Ok(r) => r,
            Err(_) => {
                return Err(close(http::error(&ArmError::new(
                    408,
                    "RequestTimeout",
                    "The request body was not received in time.",
                ))))
            }
        },
        None => collect.await,
    };
    match r {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(close(http::error(&ArmError::new(
                413,
                "RequestEntityTooLarge",
                format!(
                    "The request body is larger than the {} bytes vnet accepts.",
                    http::MAX_BODY
                ),
            ))))
        }
        Err(_) => Err(close(http::error(&ArmError::invalid_format(
            "The request body could not be read.",
        )))),
    }
}

/// Ends the connection after this answer (the rest of the body is not read).
fn close(mut r: Response) -> Response {
    r.headers_mut()
        .insert("connection", HeaderValue::from_static("close"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_arm_actions() {
        let op = |m: Method, p: &str| operation(&m, p);
        assert_eq!(
            op(
                Method::PUT,
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v"
            ),
            "Microsoft.Network/virtualNetworks/write"
        );
        assert_eq!(
            op(Method::DELETE, "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v/subnets/a"),
            "Microsoft.Network/virtualNetworks/subnets/delete"
        );
        assert_eq!(
            op(Method::PUT, "/subscriptions/s/resourcegroups/g"),
            "Microsoft.Resources/subscriptions/resourcegroups/write"
        );
        assert_eq!(op(Method::POST, "/t1/oauth2/v2.0/token"), "oauth2/token");
    }

    #[test]
    fn client_ids_that_could_forge_lines_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-ms-client-request-id",
            HeaderValue::from_static("abc-123"),
        );
        assert_eq!(
            client_id(&h, "x-ms-client-request-id").as_deref(),
            Some("abc-123")
        );
        for bad in ["a b", "x\" principal=\"admin", "a=b", &"x".repeat(129)] {
            h.insert(
                "x-ms-client-request-id",
                HeaderValue::from_str(bad).unwrap(),
            );
            assert_eq!(client_id(&h, "x-ms-client-request-id"), None, "{bad}");
        }
    }
}
