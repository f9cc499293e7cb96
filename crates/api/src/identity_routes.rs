//! What real Azure clients need around the networking API: the AAD-like token service, cloud
//! metadata, tenants and subscriptions, role assignments, and the bearer-token check in front
//! of every ARM request.
//!
//! Public (no token):
//!
//! | path | what |
//! |---|---|
//! | `GET /metadata/endpoints` | cloud metadata for `az cloud register` / `ARM_CLOUD_METADATA_URL` |
//! | `GET /{tenant}/.well-known/openid-configuration`, `…/v2.0/.well-known/openid-configuration` | OpenID metadata (MSAL reads v2.0) |
//! | `GET /{tenant}/discovery/keys`, `…/discovery/v2.0/keys` | the JWKS of the token signing key |
//! | `POST /{tenant}/oauth2/token`, `…/oauth2/v2.0/token` | client-credentials tokens (v1 `resource`, v2 `scope`) |
//! | `GET /common/discovery/instance` | MSAL instance discovery |
//! | `GET /openapi.json` | the API description |
//!
//! With a token: `GET /tenants`, `GET /subscriptions`, `GET|PUT /subscriptions/{id}` (creating
//! one is the operator's), `PUT|GET /providers/Microsoft.Subscription/aliases/{name}`,
//! `{scope}/providers/Microsoft.Authorization/roleAssignments[/{name}]`,
//! `{scope}/providers/Microsoft.Authorization/roleDefinitions[/{id}]`, and vnet's own
//! directory management under `/providers/Vnet.Identity/tenants[/{id}[/servicePrincipals[/{appId}]]]`.
//! Everything else goes to the ARM dispatcher ([`crate::routes`]) once the token names a
//! principal whose role assignments allow the request's action at its scope.

use crate::auth::{
    self, Bootstrap, Directory, Principal, RoleAssignment, Signer, Subscription, Tenant, TokenError,
};
use crate::http::{self, json_response};
use crate::ratelimit::{retry_after_secs, TokenLimiter, TokenLimits};
use crate::routes::{App, LinkCheck, Req};
use crate::BoxError;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, Request};
use axum::response::Response;
use model::links::Linked;
use model::ArmError;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

/// The identity side of the server: the directory, the token signing key, and whether ARM
/// requests need a token at all.
pub struct Identity {
    pub dir: Arc<Directory>,
    pub signer: Arc<Signer>,
    /// `false` only for `vnet serve --insecure-http` (and tests): ARM requests pass unchecked.
    pub require_auth: bool,
    /// Failed sign-ins at the token endpoint, by source and client ([`crate::ratelimit`]).
    pub token_limiter: Arc<TokenLimiter>,
}

impl Identity {
    /// Opens `<data-dir>/identity.db` and the signing key, making the operator principal,
    /// tenant and default subscription at first start.
    pub fn open(data_dir: &Path, require_auth: bool) -> Result<(Identity, Bootstrap), BoxError> {
        std::fs::create_dir_all(data_dir)?;
        let store = store::SqliteStore::open(&data_dir.join("identity.db"))?;
        let dir = Directory::open(Arc::new(store))?;
        let boot = dir.bootstrap(data_dir)?;
        dir.set_operator(&boot.client_id);
        let signer = Signer::load_or_create(data_dir)?;
        Ok((
            Identity {
                dir: Arc::new(dir),
                signer: Arc::new(signer),
                require_auth,
                token_limiter: Arc::new(TokenLimiter::new(TokenLimits::default())),
            },
            boot,
        ))
    }

    /// No tokens required and an empty in-memory directory ([`crate::router`], tests).
    pub fn unauthenticated() -> Identity {
        Identity {
            dir: Arc::new(Directory::in_memory()),
            signer: Arc::new(Signer::ephemeral()),
            require_auth: false,
            token_limiter: Arc::new(TokenLimiter::new(TokenLimits::default())),
        }
    }

    /// The same identity with other token-endpoint budgets (tests, tuning).
    pub fn with_token_limits(mut self, limits: TokenLimits) -> Identity {
        self.token_limiter = Arc::new(TokenLimiter::new(limits));
        self
    }

    /// Signs an access token for a principal (what the token endpoint issues).
    pub fn issue_token(
        &self,
        p: &Principal,
        audience: &str,
        issuer: &str,
        v2: bool,
    ) -> (String, i64) {
        let now = auth::now_unix();
        let exp = now + auth::TOKEN_LIFETIME_SECS;
        let mut claims = json!({
            "aud": audience, "iss": issuer, "iat": now, "nbf": now, "exp": exp,
            "appid": p.app_id, "appidacr": "1", "idp": issuer, "idtyp": "app",
            "oid": p.object_id, "sub": p.object_id, "tid": p.tenant_id,
            "uti": auth::b64url(uuid::Uuid::new_v4().as_bytes()), "ver": if v2 { "2.0" } else { "1.0" },
        });
        if v2 {
            claims["azp"] = json!(p.app_id);
            claims["azpacr"] = json!("1");
        }
        (self.signer.sign(&claims), exp)
    }
}

struct Gate {
    app: Arc<App>,
    id: Arc<Identity>,
    scheme: String,
}

/// The server's router: identity endpoints, then token and role checks, then the ARM dispatcher.
pub fn secure_router(app: Arc<App>, identity: Arc<Identity>) -> axum::Router {
    let scheme = app.opts.scheme.clone();
    axum::Router::new()
        .fallback(gate)
        .with_state(Arc::new(Gate {
            app,
            id: identity,
            scheme,
        }))
}

/// The authenticated caller.
struct Caller {
    principal: Principal,
}

/// One request, decoded once.
struct Call {
    method: Method,
    path: String,
    segs: Vec<String>,
    low: Vec<String>,
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: Vec<u8>,
    base: String,
    /// The TCP peer, from the accept loop's `ConnectInfo` (unspecified when it is absent: all
    /// such requests then share one source for the token endpoint's throttle).
    peer: IpAddr,
}

async fn gate(State(g): State<Arc<Gate>>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, http::MAX_BODY).await {
        Ok(b) => b.to_vec(),
        Err(_) => {
            return http::error(&ArmError::new(
                413,
                "RequestEntityTooLarge",
                format!(
                    "The request body is larger than the {} bytes vnet accepts.",
                    http::MAX_BODY
                ),
            ))
        }
    };
    let path = parts.uri.path().to_string();
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(http::percent_decode)
        .collect();
    let low = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    // The audit line names the principal authenticated below.
    let audit_who = parts.extensions.get::<crate::audit::Who>().cloned();
    let c = Call {
        peer,
        method: parts.method,
        base: http::base_url(g.app.opts.public_url.as_deref(), &parts.headers, &g.scheme),
        path,
        segs,
        low,
        query: http::parse_query(parts.uri.query()),
        headers: parts.headers,
        body,
    };
    if let Some(r) = g.public(&c) {
        return r;
    }
    // The API description is public, like the metadata endpoints.
    let public_doc = c.low.len() == 1 && c.low[0] == "openapi.json";
    let caller = if g.id.require_auth && !public_doc {
        match g.authenticate(&c) {
            Ok(p) => {
                if let Some(w) = &audit_who {
                    w.set(&p);
                }
                Some(Caller { principal: p })
            }
            Err(r) => return r,
        }
    } else {
        None
    };
    match g.identity_arm(&c, caller.as_ref()) {
        Some(Ok(r)) => return r,
        Some(Err(e)) => return http::error(&e),
        None => {}
    }
    let mut filter = None;
    let mut links: Option<Arc<dyn LinkCheck>> = None;
    if let Some(who) = &caller {
        let (action, scope) = auth::required_action(c.method.as_str(), &c.segs);
        match g.authorize(&c, who, &action, &scope) {
            Ok(f) => filter = f,
            Err(r) => return r,
        }
        links = Some(Arc::new(PrincipalLinks {
            dir: g.id.dir.clone(),
            principal: who.principal.clone(),
            action,
            scope,
        }));
    }
    let r = g
        .app
        .handle(Req {
            method: c.method,
            path: c.path,
            query: c.query,
            headers: c.headers,
            body: c.body,
            links,
        })
        .await;
    match (filter, &caller) {
        (Some((action, scope)), Some(who)) => g.filter_list(r, who, &action, &scope).await,
        _ => r,
    }
}

/// Linked authorization for an authenticated principal: every resource a write links to needs
/// its link action there (`…/subnets/join/action`, `…/virtualNetworks/peer/action`, …), inside
/// the principal's own tenant, else 403 `LinkedAuthorizationFailed` naming each refused link.
struct PrincipalLinks {
    dir: Arc<Directory>,
    principal: Principal,
    /// The request's own action and scope, for the message.
    action: String,
    scope: String,
}

impl LinkCheck for PrincipalLinks {
    fn check(&self, links: &[Linked]) -> Result<(), ArmError> {
        let refused: Vec<&Linked> = links
            .iter()
            .filter(|l| {
                !self
                    .dir
                    .allowed(&self.principal.object_id, &l.action, &l.scope)
            })
            .collect();
        if refused.is_empty() {
            return Ok(());
        }
        let actions: Vec<&str> = refused.iter().map(|l| l.action.as_str()).collect();
        let scopes: Vec<&str> = refused.iter().map(|l| l.scope.as_str()).collect();
        Err(ArmError::new(
            403,
            "LinkedAuthorizationFailed",
            format!(
                "The client '{}' with object id '{}' has permission to perform action '{}' on scope '{}'; however, it does not have permission to perform action(s) '{}' on the linked scope(s) '{}' (respectively) or the linked scope(s) are invalid.",
                self.principal.app_id,
                self.principal.object_id,
                self.action,
                self.scope,
                actions.join(","),
                scopes.join(",")
            ),
        ))
    }
}

fn low_strs(c: &Call) -> Vec<&str> {
    c.low.iter().map(String::as_str).collect()
}

// ------------------------------------------------------------------ AAD-like errors

fn now_rfc3339() -> String {
    crate::engine::now_rfc3339()
}

/// An OAuth error in AAD's shape (`AADSTS…` codes).
fn oauth_error(status: u16, error: &str, code: u32, description: &str) -> Response {
    let trace = uuid::Uuid::new_v4().to_string();
    let corr = uuid::Uuid::new_v4().to_string();
    let ts = now_rfc3339();
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {corr} Timestamp: {ts}"),
        "error_codes": [code],
        "timestamp": ts,
        "trace_id": trace,
        "correlation_id": corr,
    });
    json_response(
        status,
        &body,
        &[("Cache-Control".into(), "no-store".into())],
    )
}

/// The token endpoint's 429: AAD's "locked out after too many failed sign-ins" code, in its
/// OAuth shape, with `Retry-After` in seconds (which MSAL and azure-identity honour).
fn too_many_failures(client_id: &str, wait: std::time::Duration) -> Response {
    let secs = retry_after_secs(wait);
    let client: String = client_id.chars().take(128).collect();
    let mut r = oauth_error(
        429,
        "temporarily_unavailable",
        50053,
        &format!("Too many failed sign-in attempts for application '{client}' from this address. Sign-in from this address is throttled; retry after {secs} seconds."),
    );
    r.headers_mut()
        .insert("retry-after", HeaderValue::from(secs));
    r
}

/// A 401 in ARM's shape, with the Bearer challenge naming the authority to use.
fn unauthorized(base: &str, tenant: Option<&str>, code: &str, message: String) -> Response {
    let mut r = http::error(&ArmError::new(401, code, message.clone()));
    let challenge = format!(
        "Bearer authorization_uri=\"{base}/{}\", error=\"invalid_token\", error_description=\"{}\"",
        tenant.unwrap_or("common"),
        message.replace('"', "'")
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert("www-authenticate", v);
    }
    r
}

fn authorization_failed(p: &Principal, action: &str, scope: &str) -> ArmError {
    ArmError::new(
        403,
        "AuthorizationFailed",
        format!(
            "The client '{}' with object id '{}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
            p.app_id, p.object_id
        ),
    )
}

fn subscription_not_found(s: &str) -> ArmError {
    ArmError::new(
        404,
        "SubscriptionNotFound",
        format!("The subscription '{s}' could not be found."),
    )
}

fn fmt_unix(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .map(|d| {
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                d.year(),
                d.month() as u8,
                d.day(),
                d.hour(),
                d.minute(),
                d.second()
            )
        })
        .unwrap_or_else(|| t.to_string())
}

// ------------------------------------------------------------------ JSON shapes

fn tenant_json(t: &Tenant) -> Value {
    json!({
        "id": format!("/tenants/{}", t.id), "tenantId": t.id, "tenantCategory": "Home", "countryCode": "US",
        "displayName": t.display_name, "domains": [t.default_domain], "defaultDomain": t.default_domain, "tenantType": "AAD",
    })
}

fn subscription_json(s: &Subscription) -> Value {
    json!({
        "id": format!("/subscriptions/{}", s.id), "authorizationSource": "RoleBased", "managedByTenants": [],
        "subscriptionId": s.id, "tenantId": s.tenant_id, "displayName": s.display_name, "state": "Enabled",
        "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "vnet", "spendingLimit": "Off"},
    })
}

fn alias_json(s: &Subscription) -> Value {
    let name = s.alias.clone().unwrap_or_default();
    json!({
        "id": format!("/providers/Microsoft.Subscription/aliases/{name}"), "name": name, "type": "Microsoft.Subscription/aliases",
        "properties": {"subscriptionId": s.id, "provisioningState": "Succeeded"},
    })
}

fn principal_json(p: &Principal) -> Value {
    json!({
        "id": format!("/providers/Vnet.Identity/tenants/{}/servicePrincipals/{}", p.tenant_id, p.app_id),
        "name": p.app_id, "type": "Vnet.Identity/tenants/servicePrincipals",
        "appId": p.app_id, "objectId": p.object_id, "tenantId": p.tenant_id, "displayName": p.display_name,
        "servicePrincipalType": "Application",
    })
}

fn vnet_tenant_json(t: &Tenant) -> Value {
    json!({"id": format!("/providers/Vnet.Identity/tenants/{}", t.id), "name": t.id, "type": "Vnet.Identity/tenants",
           "tenantId": t.id, "displayName": t.display_name, "defaultDomain": t.default_domain})
}

/// Cloud metadata in ARM's `/metadata/endpoints` shape.
pub fn cloud_metadata(base: &str) -> Value {
    let b = format!("{base}/");
    json!({
        "name": "vnet",
        "portal": b,
        "resourceManager": b,
        "authentication": {"loginEndpoint": b, "audiences": auth::AUDIENCES, "tenant": "common", "identityProvider": "AAD"},
        "gallery": b,
        "graph": format!("{base}/graph/"),
        "graphAudience": format!("{base}/graph/"),
        "microsoftGraphResourceId": format!("{base}/graph/"),
        "media": b,
        "batch": b,
        "sqlManagement": b,
        "vmImageAliasDoc": format!("{base}/vm-image-aliases.json"),
        "activeDirectoryDataLake": b,
        "appInsightsResourceId": b,
        "appInsightsTelemetryChannelResourceId": b,
        "attestationResourceId": b,
        "synapseAnalyticsResourceId": b,
        "logAnalyticsResourceId": b,
        "ossrDbmsResourceId": b,
        "suffixes": {
            "acrLoginServer": "azurecr.vnet.local", "azureDataLakeAnalyticsCatalogAndJob": "datalakeanalytics.vnet.local",
            "azureDataLakeStoreFileSystem": "datalakestore.vnet.local", "azureFrontDoorEndpointSuffix": "afd.vnet.local",
            "keyvaultDns": "vault.vnet.local", "mhsmDns": "managedhsm.vnet.local", "sqlServerHostname": "database.vnet.local",
            "storage": "core.vnet.local", "storageSyncEndpointSuffix": "afs.vnet.local", "synapseAnalytics": "dev.synapse.vnet.local",
            "attestationEndpoint": "attest.vnet.local",
        },
    })
}

fn is_guidish(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl Gate {
    // -------------------------------------------------------------- public endpoints

    fn public(&self, c: &Call) -> Option<Response> {
        let l = low_strs(c);
        let m = &c.method;
        let r = match l.as_slice() {
            ["metadata", "endpoints"] if m == Method::GET => {
                let md = cloud_metadata(&c.base);
                // 2019-05-01 answers the list of clouds; later versions the one cloud.
                let listed = c.query.get("api-version").is_some_and(|v| v.as_str() < "2020-06-01");
                json_response(200, &if listed { json!([md]) } else { md }, &[])
            }
            [_, "discovery", "instance"] | [_, "discovery", "v2.0", "instance"] if m == Method::GET => self.instance_discovery(c),
            [t, ".well-known", "openid-configuration"] if m == Method::GET => self.openid_config(c, &c.segs[0], t, false),
            [t, "v2.0", ".well-known", "openid-configuration"] if m == Method::GET => self.openid_config(c, &c.segs[0], t, true),
            [_, "discovery", "keys"] | [_, "discovery", "v2.0", "keys"] if m == Method::GET => json_response(200, &self.id.signer.jwks(), &[]),
            [_, "oauth2", "token"] if m == Method::POST => self.token(c, &c.segs[0], false),
            [_, "oauth2", "v2.0", "token"] if m == Method::POST => self.token(c, &c.segs[0], true),
            [first, "oauth2", ..] if !matches!(*first, "subscriptions" | "providers" | "tenants") => oauth_error(
                400,
                "unsupported_grant_type",
                70003,
                "vnet issues tokens only with the client credentials grant at the token endpoint.",
            ),
            _ => return None,
        };
        Some(r)
    }

    fn instance_discovery(&self, c: &Call) -> Response {
        let tenant = c
            .query
            .get("authorization_endpoint")
            .and_then(|u| u.split("://").nth(1))
            .and_then(|rest| rest.split('/').nth(1))
            .filter(|t| !t.is_empty())
            .unwrap_or("common")
            .to_string();
        let host = c
            .base
            .split("://")
            .nth(1)
            .unwrap_or("localhost")
            .to_string();
        json_response(
            200,
            &json!({
                "tenant_discovery_endpoint": format!("{}/{tenant}/v2.0/.well-known/openid-configuration", c.base),
                "api-version": "1.1",
                "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
            }),
            &[],
        )
    }

    /// The tenant a path names (id or domain), or the `{tenantid}` placeholder for
    /// `common`/`organizations`; `None` for an unknown tenant.
    fn path_tenant(&self, t: &str) -> Option<String> {
        if matches!(t, "common" | "organizations") {
            return Some("{tenantid}".into());
        }
        self.id.dir.tenant(t).map(|t| t.id)
    }

    fn openid_config(&self, c: &Call, raw: &str, t: &str, v2: bool) -> Response {
        let Some(tid) = self.path_tenant(t) else {
            return oauth_error(400, "invalid_tenant", 90002, &format!("Tenant '{raw}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."));
        };
        let b = &c.base;
        let (issuer, token, authorize, jwks) = if v2 {
            (
                format!("{b}/{tid}/v2.0"),
                format!("{b}/{tid}/oauth2/v2.0/token"),
                format!("{b}/{tid}/oauth2/v2.0/authorize"),
                format!("{b}/{tid}/discovery/v2.0/keys"),
            )
        } else {
            (
                format!("{b}/{tid}/"),
                format!("{b}/{tid}/oauth2/token"),
                format!("{b}/{tid}/oauth2/authorize"),
                format!("{b}/common/discovery/keys"),
            )
        };
        let host = b.split("://").nth(1).unwrap_or("localhost");
        json_response(
            200,
            &json!({
                "issuer": issuer,
                "token_endpoint": token,
                "authorization_endpoint": authorize,
                "jwks_uri": jwks,
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "grant_types_supported": ["client_credentials"],
                "response_types_supported": ["token"],
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "appid", "azp", "ver"],
                "request_uri_parameter_supported": false,
                "tenant_region_scope": null,
                "cloud_instance_name": host,
                "cloud_graph_host_name": host,
                "msgraph_host": host,
            }),
            &[],
        )
    }

    /// `POST /{tenant}/oauth2[/v2.0]/token`: the client credentials grant.
    fn token(&self, c: &Call, raw_tenant: &str, v2: bool) -> Response {
        let form = http::parse_query(Some(&String::from_utf8_lossy(&c.body)));
        let grant = form.get("grant_type").map(String::as_str).unwrap_or("");
        if grant != "client_credentials" {
            return oauth_error(400, "unsupported_grant_type", 70003, &format!("The app requested an unsupported grant type '{grant}'. vnet supports client_credentials."));
        }
        let Some(tenant) = self.id.dir.tenant(raw_tenant) else {
            return oauth_error(400, "invalid_request", 90002, &format!("Tenant '{raw_tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."));
        };
        // Client authentication: the form (client_secret_post) or HTTP Basic.
        let basic = c
            .headers
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| {
                h.strip_prefix("Basic ")
                    .or_else(|| h.strip_prefix("basic "))
            })
            .and_then(|b| auth::b64url_decode(b.trim()))
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once(':')
                    .map(|(u, p)| (http::percent_decode(u), http::percent_decode(p)))
            });
        let (client_id, secret) = match (form.get("client_id"), form.get("client_secret"), basic) {
            (_, _, Some((u, p))) => (u, p),
            (Some(u), Some(p), None) => (u.clone(), p.clone()),
            (Some(_), None, None) if form.contains_key("client_assertion") => {
                return oauth_error(401, "invalid_client", 7000218, "vnet accepts client secrets only; certificate credentials (client_assertion) are not supported.");
            }
            (Some(_), None, None) => {
                return oauth_error(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
            }
            _ => {
                return oauth_error(
                    400,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'client_id'.",
                )
            }
        };
        let resource = if v2 {
            let Some(scope) = form.get("scope") else {
                return oauth_error(
                    400,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'scope'.",
                );
            };
            let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
            match scopes.as_slice() {
                [one] if one.ends_with("/.default") => {
                    one[..one.len() - "/.default".len()].to_string()
                }
                _ => {
                    return oauth_error(400, "invalid_scope", 1002012, &format!("The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."));
                }
            }
        } else {
            match form.get("resource") {
                Some(r) => r.clone(),
                None => {
                    return oauth_error(
                        400,
                        "invalid_request",
                        900144,
                        "The request body must contain the following parameter: 'resource'.",
                    )
                }
            }
        };
        // Throttled before the secret is checked: a refused guess costs no PBKDF2 and tells
        // nothing about the secret. Only failures are counted (see `crate::ratelimit`).
        let limiter = &self.id.token_limiter;
        if let Err(wait) = limiter.check(&client_id, c.peer, std::time::Instant::now()) {
            return too_many_failures(&client_id, wait);
        }
        let p = match self.id.dir.authenticate(&tenant, &client_id, &secret) {
            Ok(p) => {
                limiter.succeeded(&client_id, c.peer);
                p
            }
            Err(auth::AuthnError::UnknownClient) => {
                limiter.failed(None, c.peer, std::time::Instant::now());
                return oauth_error(
                    400,
                    "unauthorized_client",
                    700016,
                    &format!("Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", tenant.display_name),
                );
            }
            Err(auth::AuthnError::BadSecret) => {
                limiter.failed(Some(&client_id), c.peer, std::time::Instant::now());
                return oauth_error(
                    401,
                    "invalid_client",
                    7000215,
                    &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."),
                );
            }
        };
        if !auth::audience_ok(&resource) {
            return oauth_error(
                400,
                "invalid_resource",
                500011,
                &format!("The resource principal named {resource} was not found in the tenant named {}. vnet issues tokens for its Resource Manager only: {}.", tenant.display_name, auth::AUDIENCES.join(", ")),
            );
        }
        let issuer = if v2 {
            format!("{}/{}/v2.0", c.base, tenant.id)
        } else {
            format!("{}/{}/", c.base, tenant.id)
        };
        let (token, exp) = self.id.issue_token(&p, &resource, &issuer, v2);
        let now = auth::now_unix();
        let body = if v2 {
            json!({"token_type": "Bearer", "expires_in": exp - now, "ext_expires_in": exp - now, "access_token": token})
        } else {
            json!({"token_type": "Bearer", "expires_in": (exp - now).to_string(), "ext_expires_in": (exp - now).to_string(),
                   "expires_on": exp.to_string(), "not_before": now.to_string(), "resource": resource, "access_token": token})
        };
        json_response(
            200,
            &body,
            &[
                ("Cache-Control".into(), "no-store".into()),
                ("Pragma".into(), "no-cache".into()),
            ],
        )
    }

    // -------------------------------------------------------------- authentication

    // The refusal is the response itself, sent once: boxing it would buy nothing.
    #[allow(clippy::result_large_err)]
    fn authenticate(&self, c: &Call) -> Result<Principal, Response> {
        let b = &c.base;
        let Some(h) = c.headers.get("authorization") else {
            return Err(unauthorized(
                b,
                None,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.".into(),
            ));
        };
        let h = h.to_str().unwrap_or("");
        let token = match h.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
                t.trim()
            }
            _ => {
                return Err(unauthorized(b, None, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is provided in an invalid format.".into()));
            }
        };
        let now = auth::now_unix();
        let claims = match self.id.signer.verify(token, now) {
            Ok(c) => c,
            Err(TokenError::Invalid(_)) => {
                return Err(unauthorized(
                    b,
                    None,
                    "InvalidAuthenticationToken",
                    "The access token is invalid.".into(),
                ))
            }
            Err(TokenError::Expired(exp)) => {
                return Err(unauthorized(
                    b,
                    None,
                    "ExpiredAuthenticationToken",
                    format!("The access token expiry UTC time '{}' is earlier than current UTC time '{}'.", fmt_unix(exp), fmt_unix(now)),
                ));
            }
            Err(TokenError::WrongAudience(aud)) => {
                let allowed: Vec<String> = auth::AUDIENCES
                    .iter()
                    .flat_map(|a| [format!("'{a}'"), format!("'{}'", a.trim_end_matches('/'))])
                    .collect();
                return Err(unauthorized(
                    b,
                    None,
                    "InvalidAuthenticationTokenAudience",
                    format!("The access token has been obtained for wrong audience or resource '{aud}'. It should exactly match with one of the allowed audiences {}.", allowed.join(",")),
                ));
            }
        };
        let tid = claims["tid"].as_str().unwrap_or("");
        match claims["appid"]
            .as_str()
            .or(claims["azp"].as_str())
            .and_then(|a| self.id.dir.principal(a))
        {
            Some(p)
                if p.tenant_id.eq_ignore_ascii_case(tid)
                    && claims["oid"].as_str() == Some(p.object_id.as_str()) =>
            {
                Ok(p)
            }
            _ => Err(unauthorized(
                b,
                Some(tid),
                "InvalidAuthenticationToken",
                "The access token is invalid: its principal no longer exists.".into(),
            )),
        }
    }

    /// A subscription the caller may use: it exists and belongs to the caller's tenant.
    // The refusal is the response itself, sent once: boxing it would buy nothing.
    #[allow(clippy::result_large_err)]
    fn caller_subscription(
        &self,
        c: &Call,
        who: &Caller,
        sub: &str,
    ) -> Result<Subscription, Response> {
        let s = self
            .id
            .dir
            .subscription(sub)
            .ok_or_else(|| http::error(&subscription_not_found(sub)))?;
        if !s.tenant_id.eq_ignore_ascii_case(&who.principal.tenant_id) {
            return Err(unauthorized(
                &c.base,
                Some(&s.tenant_id),
                "InvalidAuthenticationTokenTenant",
                format!(
                    "The access token is from the wrong issuer '{}/{}/'. It must match the tenant '{}/{}/' associated with this subscription. Please use the authority (URL) '{}/{}' to get the token.",
                    c.base, who.principal.tenant_id, c.base, s.tenant_id, c.base, s.tenant_id
                ),
            ));
        }
        Ok(s)
    }

    /// Role checks on a request bound for the ARM dispatcher.
    // The refusal is the response itself, sent once: boxing it would buy nothing.
    ///
    /// `Ok(Some((action, scope)))`: a list the caller may not read whole but has rights inside;
    /// the answer is to be filtered to the items it may read (as ARM lists resource groups and
    /// resources for principals with narrower roles).
    #[allow(clippy::result_large_err)]
    fn authorize(
        &self,
        c: &Call,
        who: &Caller,
        action: &str,
        scope: &str,
    ) -> Result<Option<(String, String)>, Response> {
        let l = low_strs(c);
        let p = &who.principal;
        // vnet's data-plane API binds NICs to namespaces and captures their packets on the
        // server's host: the platform's (the operator's tenant), at the root, never a tenant's.
        if l.first() == Some(&"vnet") {
            let verb = match c.method {
                Method::GET | Method::HEAD => "read",
                Method::DELETE => "delete",
                Method::POST => "action",
                _ => "write",
            };
            let action = format!("Vnet.Dataplane/{}/{verb}", l.get(2).unwrap_or(&""));
            if !self.id.dir.is_platform(p) || !self.id.dir.allowed(&p.object_id, &action, "/") {
                return Err(http::error(&authorization_failed(p, &action, "/")));
            }
            return Ok(None);
        }
        if l.first() == Some(&"subscriptions") && l.len() >= 2 {
            self.caller_subscription(c, who, &c.segs[1])?;
            let sub_scope = format!("/subscriptions/{}", c.segs[1]);
            // Operation status and results: anyone working in the subscription may poll them.
            if matches!(
                l.get(2..6),
                Some(["providers", "microsoft.network", "locations", _])
            ) && self.id.dir.has_any_access(&p.object_id, &sub_scope)
            {
                return Ok(None);
            }
        }
        if !self.id.dir.allowed(&p.object_id, action, scope) {
            if c.method == Method::GET && self.id.dir.has_access_below(&p.object_id, scope) {
                return Ok(Some((action.to_string(), scope.to_string())));
            }
            return Err(http::error(&authorization_failed(p, action, scope)));
        }
        Ok(None)
    }

    /// Keeps the items of a list answer that the caller may read; anything but a list is
    /// refused, since the caller's rights lie below the requested scope.
    async fn filter_list(&self, r: Response, who: &Caller, action: &str, scope: &str) -> Response {
        let refused = || http::error(&authorization_failed(&who.principal, action, scope));
        if r.status() != axum::http::StatusCode::OK {
            return if r.status().is_success() {
                refused()
            } else {
                r
            };
        }
        let Ok(bytes) = axum::body::to_bytes(r.into_body(), usize::MAX).await else {
            return refused();
        };
        let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
            return refused();
        };
        let Some(items) = v.get_mut("value").and_then(Value::as_array_mut) else {
            return refused();
        };
        let oid = &who.principal.object_id;
        items.retain(|it| {
            it["id"]
                .as_str()
                .is_some_and(|id| self.id.dir.allowed(oid, action, id))
        });
        json_response(200, &v, &[])
    }

    fn check(&self, who: Option<&Caller>, action: &str, scope: &str) -> Result<(), ArmError> {
        match who {
            Some(w) if !self.id.dir.allowed(&w.principal.object_id, action, scope) => {
                Err(authorization_failed(&w.principal, action, scope))
            }
            _ => Ok(()),
        }
    }

    // -------------------------------------------------------------- ARM identity endpoints

    /// Tenants, subscriptions, aliases, role assignments and definitions, directory management.
    fn identity_arm(&self, c: &Call, who: Option<&Caller>) -> Option<Result<Response, ArmError>> {
        let l = low_strs(c);
        let m = &c.method;
        // Role assignments and definitions at any scope.
        if let Some(i) = l.iter().position(|s| *s == "microsoft.authorization") {
            if i >= 1
                && l[i - 1] == "providers"
                && matches!(
                    l.get(i + 1),
                    Some(&"roleassignments") | Some(&"roledefinitions")
                )
            {
                return Some(self.authorization(c, who, i - 1));
            }
        }
        let r = match l.as_slice() {
            ["tenants"] if m == Method::GET => {
                let ts: Vec<Value> = self
                    .id
                    .dir
                    .tenants()
                    .iter()
                    .filter(|t| who.is_none_or(|w| w.principal.tenant_id == t.id))
                    .map(tenant_json)
                    .collect();
                Ok(json_response(200, &json!({"value": ts}), &[]))
            }
            // Without authentication the dispatcher lists the subscriptions that hold groups.
            ["subscriptions"] if m == Method::GET && who.is_none() => return None,
            ["subscriptions"] if m == Method::GET => {
                let subs: Vec<Value> = self
                    .id
                    .dir
                    .subscriptions()
                    .iter()
                    .filter(|s| {
                        who.is_none_or(|w| {
                            w.principal.tenant_id == s.tenant_id
                                && self.id.dir.has_any_access(
                                    &w.principal.object_id,
                                    &format!("/subscriptions/{}", s.id),
                                )
                        })
                    })
                    .map(subscription_json)
                    .collect();
                Ok(json_response(200, &json!({"value": subs}), &[]))
            }
            ["subscriptions", _] if m == Method::GET => {
                match self.id.dir.subscription(&c.segs[1]) {
                    Some(s) => match who {
                        Some(w)
                            if !s.tenant_id.eq_ignore_ascii_case(&w.principal.tenant_id)
                                || !self.id.dir.has_any_access(
                                    &w.principal.object_id,
                                    &format!("/subscriptions/{}", s.id),
                                ) =>
                        {
                            Err(authorization_failed(
                                &w.principal,
                                "Microsoft.Resources/subscriptions/read",
                                &format!("/subscriptions/{}", s.id),
                            ))
                        }
                        _ => Ok(json_response(200, &subscription_json(&s), &[])),
                    },
                    None if who.is_none() => return None,
                    None => Err(subscription_not_found(&c.segs[1])),
                }
            }
            ["subscriptions", _] if m == Method::PUT => {
                self.put_subscription(c, who, &c.segs[1], None)
            }
            ["providers", "microsoft.subscription", "aliases"] if m == Method::GET => {
                let v: Vec<Value> = self
                    .id
                    .dir
                    .subscriptions()
                    .iter()
                    .filter(|s| s.alias.is_some() && self.visible(who, s))
                    .map(alias_json)
                    .collect();
                self.check(who, "Microsoft.Subscription/aliases/read", "/")
                    .map(|_| json_response(200, &json!({"value": v}), &[]))
            }
            ["providers", "microsoft.subscription", "aliases", _] if m == Method::GET => {
                let name = &c.segs[3];
                self.check(who, "Microsoft.Subscription/aliases/read", "/")
                    .and_then(|_| {
                        self.id
                            .dir
                            .subscriptions()
                            .into_iter()
                            .find(|s| {
                                s.alias
                                    .as_deref()
                                    .is_some_and(|a| a.eq_ignore_ascii_case(name))
                                    && self.visible(who, s)
                            })
                            .map(|s| json_response(200, &alias_json(&s), &[]))
                            .ok_or_else(|| {
                                ArmError::new(
                                    404,
                                    "ResourceNotFound",
                                    format!("The alias '{name}' was not found."),
                                )
                            })
                    })
            }
            ["providers", "microsoft.subscription", "aliases", _] if m == Method::PUT => {
                let name = c.segs[3].clone();
                let body = match http::parse_body(&c.body, true) {
                    Ok(b) => b,
                    Err(e) => return Some(Err(e)),
                };
                let existing = self.id.dir.subscriptions().into_iter().find(|s| {
                    s.alias
                        .as_deref()
                        .is_some_and(|a| a.eq_ignore_ascii_case(&name))
                });
                let id = existing
                    .map(|s| s.id)
                    .or_else(|| {
                        body.pointer("/properties/subscriptionId")
                            .and_then(Value::as_str)
                            .map(String::from)
                    })
                    .unwrap_or_else(auth::new_guid);
                self.check(who, "Microsoft.Subscription/aliases/write", "/")
                    .and_then(|_| {
                        let display = body
                            .pointer("/properties/displayName")
                            .and_then(Value::as_str)
                            .unwrap_or(&name)
                            .to_string();
                        let tenant = body
                            .pointer("/properties/additionalProperties/subscriptionTenantId")
                            .and_then(Value::as_str)
                            .map(String::from);
                        self.put_subscription(c, who, &id, Some((name.clone(), display, tenant)))
                            .map(|_| {
                                let s = self.id.dir.subscription(&id).expect("just written");
                                json_response(201, &alias_json(&s), &[])
                            })
                    })
            }
            ["providers", "vnet.identity", "tenants"] if m == Method::GET => self
                .check(
                    who,
                    "Vnet.Identity/tenants/read",
                    "/providers/Vnet.Identity/tenants",
                )
                .map(|_| {
                    // The platform made every tenant and lists them; anyone else sees its own.
                    let all = who.is_none_or(|w| self.id.dir.is_platform(&w.principal));
                    let v: Vec<Value> = self
                        .id
                        .dir
                        .tenants()
                        .iter()
                        .filter(|t| {
                            all || who
                                .is_some_and(|w| w.principal.tenant_id.eq_ignore_ascii_case(&t.id))
                        })
                        .map(vnet_tenant_json)
                        .collect();
                    json_response(200, &json!({"value": v}), &[])
                }),
            ["providers", "vnet.identity", "tenants", _] => self.vnet_tenant(c, who),
            ["providers", "vnet.identity", "tenants", _, "serviceprincipals"]
                if m == Method::GET =>
            {
                let scope = format!("/providers/Vnet.Identity/tenants/{}", c.segs[3]);
                self.check(who, "Vnet.Identity/tenants/servicePrincipals/read", &scope)
                    .and_then(|_| {
                        let t = self
                            .id
                            .dir
                            .tenant(&c.segs[3])
                            .ok_or_else(|| tenant_not_found(&c.segs[3]))?;
                        let v: Vec<Value> = self
                            .id
                            .dir
                            .principals(&t.id)
                            .iter()
                            .map(principal_json)
                            .collect();
                        Ok(json_response(200, &json!({"value": v}), &[]))
                    })
            }
            ["providers", "vnet.identity", "tenants", _, "serviceprincipals", _] => {
                self.vnet_principal(c, who)
            }
            _ => return None,
        };
        Some(r)
    }

    /// Whether the caller may see subscription `s`: of its tenant, with some role in it.
    fn visible(&self, who: Option<&Caller>, s: &Subscription) -> bool {
        who.is_none_or(|w| {
            w.principal.tenant_id.eq_ignore_ascii_case(&s.tenant_id)
                && self
                    .id
                    .dir
                    .has_any_access(&w.principal.object_id, &format!("/subscriptions/{}", s.id))
        })
    }

    /// `PUT /subscriptions/{id}` (and aliases): the operator creates or renames a subscription.
    fn put_subscription(
        &self,
        c: &Call,
        who: Option<&Caller>,
        id: &str,
        alias: Option<(String, String, Option<String>)>,
    ) -> Result<Response, ArmError> {
        model::id::check_subscription(id)?;
        let existing = self.id.dir.subscription(id);
        // Creating a subscription is the operator's (root scope); renaming, its owners'.
        let scope = if existing.is_some() {
            format!("/subscriptions/{id}")
        } else {
            "/".to_string()
        };
        self.check(who, "Microsoft.Resources/subscriptions/write", &scope)?;
        let body = http::parse_body(&c.body, true)?;
        let caller_tenant = who.map(|w| w.principal.tenant_id.clone());
        let (alias_name, alias_display, alias_tenant) = match alias {
            Some((n, d, t)) => (Some(n), Some(d), t),
            None => (None, None, None),
        };
        let tenant_req = alias_tenant
            .or_else(|| {
                body.get("tenantId")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .or_else(|| {
                body.pointer("/properties/tenantId")
                    .and_then(Value::as_str)
                    .map(String::from)
            });
        let tenant_id = match (&existing, tenant_req) {
            (Some(e), Some(t)) if !t.eq_ignore_ascii_case(&e.tenant_id) => {
                return Err(ArmError::bad("InvalidTenant", format!("Subscription '{id}' belongs to tenant '{}'; vnet does not move subscriptions between tenants.", e.tenant_id)));
            }
            (Some(e), _) => e.tenant_id.clone(),
            (None, Some(t)) => self
                .id
                .dir
                .tenant(&t)
                .map(|t| t.id)
                .ok_or_else(|| tenant_not_found(&t))?,
            (None, None) => caller_tenant
                .or_else(|| self.id.dir.tenants().first().map(|t| t.id.clone()))
                .ok_or_else(|| tenant_not_found("(none)"))?,
        };
        if let Some(w) = who {
            // Subscriptions are handed out by the platform; a tenant's owners rename theirs.
            let foreign = !tenant_id.eq_ignore_ascii_case(&w.principal.tenant_id);
            let creates = existing.is_none();
            if (foreign || creates)
                && (existing.is_some() || !self.id.dir.is_platform(&w.principal))
            {
                return Err(authorization_failed(
                    &w.principal,
                    "Microsoft.Resources/subscriptions/write",
                    &format!("/subscriptions/{id}"),
                ));
            }
        }
        let display = alias_display
            .or_else(|| {
                body.get("displayName")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .or_else(|| {
                body.pointer("/properties/displayName")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .or_else(|| existing.as_ref().map(|e| e.display_name.clone()))
            .unwrap_or_else(|| format!("subscription {id}"));
        let s = Subscription {
            id: id.to_ascii_lowercase(),
            tenant_id,
            display_name: display,
            alias: alias_name.or_else(|| existing.as_ref().and_then(|e| e.alias.clone())),
        };
        self.id.dir.put_subscription(s.clone()).map_err(internal)?;
        Ok(json_response(
            if existing.is_some() { 200 } else { 201 },
            &subscription_json(&s),
            &[],
        ))
    }

    fn vnet_tenant(&self, c: &Call, who: Option<&Caller>) -> Result<Response, ArmError> {
        let raw = &c.segs[3];
        let scope = format!("/providers/Vnet.Identity/tenants/{raw}");
        match c.method {
            Method::GET => {
                self.check(who, "Vnet.Identity/tenants/read", &scope)?;
                let t = self
                    .id
                    .dir
                    .tenant(raw)
                    .ok_or_else(|| tenant_not_found(raw))?;
                Ok(json_response(200, &vnet_tenant_json(&t), &[]))
            }
            Method::PUT => {
                let existing = self.id.dir.tenant(raw);
                if existing.is_some() {
                    self.check(who, "Vnet.Identity/tenants/write", &scope)?;
                } else {
                    // A new tenant is the platform's to make (its operator's tenant, at its
                    // root); the maker gets no role inside it: the answer carries the new
                    // tenant's first Owner, once.
                    self.check(who, "Vnet.Identity/tenants/write", "/")?;
                    if let Some(w) = who.filter(|w| !self.id.dir.is_platform(&w.principal)) {
                        return Err(authorization_failed(
                            &w.principal,
                            "Vnet.Identity/tenants/write",
                            &scope,
                        ));
                    }
                }
                if !is_guidish(raw) {
                    return Err(ArmError::bad(
                        "InvalidTenantId",
                        format!("'{raw}' is not a valid tenant id (letters, digits and '-')."),
                    ));
                }
                if existing
                    .as_ref()
                    .is_some_and(|e| !e.id.eq_ignore_ascii_case(raw))
                {
                    return Err(ArmError::bad(
                        "InvalidTenantId",
                        format!("'{raw}' is a tenant's domain; a tenant is written by its id."),
                    ));
                }
                let body = http::parse_body(&c.body, true)?;
                let t = Tenant {
                    id: raw.to_ascii_lowercase(),
                    display_name: body
                        .get("displayName")
                        .and_then(Value::as_str)
                        .map(String::from)
                        .or(existing.as_ref().map(|e| e.display_name.clone()))
                        .unwrap_or_else(|| raw.clone()),
                    default_domain: body
                        .get("defaultDomain")
                        .and_then(Value::as_str)
                        .map(String::from)
                        .or(existing.as_ref().map(|e| e.default_domain.clone()))
                        .unwrap_or_else(|| format!("{}.vnet.local", raw.to_ascii_lowercase())),
                };
                if existing.is_some() {
                    self.id.dir.put_tenant(t.clone()).map_err(dir_error)?;
                    return Ok(json_response(200, &vnet_tenant_json(&t), &[]));
                }
                let secret = auth::new_secret();
                let admin = Principal {
                    app_id: auth::new_guid(),
                    object_id: auth::new_guid(),
                    tenant_id: t.id.clone(),
                    display_name: format!("{} owner", t.display_name),
                    secret_hash: auth::hash_secret(&secret),
                };
                let owner = RoleAssignment {
                    name: auth::new_guid(),
                    scope: "/".into(),
                    role: auth::ROLES[0].id.into(),
                    principal_id: admin.object_id.clone(),
                };
                self.id
                    .dir
                    .put_tenant_with_owner(t.clone(), admin.clone(), owner)
                    .map_err(dir_error)?;
                let mut out = vnet_tenant_json(&t);
                out["owner"] = json!({"tenantId": t.id, "clientId": admin.app_id, "objectId": admin.object_id, "clientSecret": secret});
                Ok(json_response(
                    201,
                    &out,
                    &[("Cache-Control".into(), "no-store".into())],
                ))
            }
            _ => Err(method_not_allowed(&c.method)),
        }
    }

    fn vnet_principal(&self, c: &Call, who: Option<&Caller>) -> Result<Response, ArmError> {
        let (traw, app) = (&c.segs[3], &c.segs[5]);
        let scope = format!("/providers/Vnet.Identity/tenants/{traw}/servicePrincipals/{app}");
        let tenant = || {
            self.id
                .dir
                .tenant(traw)
                .ok_or_else(|| tenant_not_found(traw))
        };
        let not_found = || {
            ArmError::new(
                404,
                "ServicePrincipalNotFound",
                format!("Service principal '{app}' was not found in tenant '{traw}'."),
            )
        };
        match c.method {
            Method::GET => {
                self.check(who, "Vnet.Identity/tenants/servicePrincipals/read", &scope)?;
                let t = tenant()?;
                let p = self
                    .id
                    .dir
                    .principal(app)
                    .filter(|p| p.tenant_id == t.id)
                    .ok_or_else(not_found)?;
                Ok(json_response(200, &principal_json(&p), &[]))
            }
            Method::DELETE => {
                self.check(
                    who,
                    "Vnet.Identity/tenants/servicePrincipals/delete",
                    &scope,
                )?;
                let t = tenant()?;
                match self.id.dir.principal(app).filter(|p| p.tenant_id == t.id) {
                    Some(_) => {
                        self.id.dir.delete_principal(app).map_err(dir_error)?;
                        Ok(http::empty(200, &[]))
                    }
                    None => Ok(http::empty(204, &[])),
                }
            }
            Method::PUT => {
                self.check(who, "Vnet.Identity/tenants/servicePrincipals/write", &scope)?;
                let t = tenant()?;
                if !is_guidish(app) {
                    return Err(ArmError::bad("InvalidClientId", format!("'{app}' is not a valid client id (letters, digits and '-', at most 64).")));
                }
                let body = http::parse_body(&c.body, true)?;
                let existing = self.id.dir.principal(app);
                if let (Some(e), Some(w)) = (&existing, who) {
                    if self.id.dir.is_operator(e) && !self.id.dir.is_operator(&w.principal) {
                        return Err(ArmError::new(
                            409,
                            "OperatorPrincipalProtected",
                            format!(
                                "The operator principal '{app}' can only be changed by itself."
                            ),
                        ));
                    }
                }
                if let Some(e) = &existing {
                    if e.tenant_id != t.id {
                        return Err(ArmError::new(
                            409,
                            "ClientIdInUse",
                            format!("Client id '{app}' is already used in another tenant."),
                        ));
                    }
                }
                let given = body
                    .get("password")
                    .or_else(|| body.get("clientSecret"))
                    .and_then(Value::as_str)
                    .map(String::from);
                if given.as_deref().is_some_and(|s| s.len() < 16) {
                    return Err(ArmError::bad(
                        "WeakClientSecret",
                        "A client secret must be at least 16 characters long.",
                    ));
                }
                // A new principal without a secret gets one, shown once in this answer.
                let generated = match (&given, &existing) {
                    (None, None) => Some(auth::new_secret()),
                    _ => None,
                };
                let hash = match given.as_deref().or(generated.as_deref()) {
                    Some(s) => auth::hash_secret(s),
                    None => existing
                        .as_ref()
                        .map(|e| e.secret_hash.clone())
                        .unwrap_or_default(),
                };
                let p = Principal {
                    app_id: app.to_ascii_lowercase(),
                    object_id: existing
                        .as_ref()
                        .map(|e| e.object_id.clone())
                        .unwrap_or_else(auth::new_guid),
                    tenant_id: t.id.clone(),
                    display_name: body
                        .get("displayName")
                        .and_then(Value::as_str)
                        .map(String::from)
                        .or(existing.as_ref().map(|e| e.display_name.clone()))
                        .unwrap_or_else(|| app.clone()),
                    secret_hash: hash,
                };
                self.id.dir.put_principal(p.clone()).map_err(internal)?;
                let mut out = principal_json(&p);
                if let Some(s) = generated {
                    out["password"] = json!(s);
                }
                Ok(json_response(
                    if existing.is_some() { 200 } else { 201 },
                    &out,
                    &[("Cache-Control".into(), "no-store".into())],
                ))
            }
            _ => Err(method_not_allowed(&c.method)),
        }
    }

    /// `{scope}/providers/Microsoft.Authorization/roleAssignments|roleDefinitions[/{name}]`;
    /// `pi` is the index of that `providers` segment.
    fn authorization(
        &self,
        c: &Call,
        who: Option<&Caller>,
        pi: usize,
    ) -> Result<Response, ArmError> {
        let scope = if pi == 0 {
            "/".to_string()
        } else {
            format!("/{}", c.segs[..pi].join("/"))
        };
        if let (Some(w), Some(sub)) = (who, auth::scope_subscription(&scope)) {
            let s = self
                .id
                .dir
                .subscription(&sub)
                .ok_or_else(|| subscription_not_found(&sub))?;
            if !s.tenant_id.eq_ignore_ascii_case(&w.principal.tenant_id) {
                return Err(authorization_failed(
                    &w.principal,
                    "Microsoft.Authorization/roleAssignments/read",
                    &scope,
                ));
            }
        }
        let kind = c.low[pi + 2].as_str();
        let name = c.segs.get(pi + 3).cloned();
        if c.segs.len() > pi + 4 {
            return Err(not_found_route(&c.path));
        }
        if kind == "roledefinitions" {
            if c.method != Method::GET {
                return Err(ArmError::new(405, "MethodNotAllowed", "vnet has only Azure's built-in roles; custom role definitions cannot be written."));
            }
            return match name {
                Some(n) => auth::role_by_id(&n)
                    .map(|r| json_response(200, &r.to_json(&scope), &[]))
                    .ok_or_else(|| {
                        ArmError::new(
                            404,
                            "RoleDefinitionDoesNotExist",
                            format!("The specified role definition with ID '{n}' does not exist."),
                        )
                    }),
                None => {
                    let filter = c.query.get("$filter").cloned().unwrap_or_default();
                    let wanted = filter_value(&filter, "roleName");
                    let v: Vec<Value> = auth::ROLES
                        .iter()
                        .filter(|r| {
                            wanted
                                .as_deref()
                                .is_none_or(|w| r.name.eq_ignore_ascii_case(w))
                        })
                        .map(|r| r.to_json(&scope))
                        .collect();
                    Ok(json_response(200, &json!({"value": v}), &[]))
                }
            };
        }
        let principal_type = |oid: &str| {
            if self.id.dir.principal_by_object_id(oid).is_some() {
                "ServicePrincipal"
            } else {
                "Unknown"
            }
        };
        // The tenant wall: a caller sees and changes only the assignments of principals of
        // its own tenant, whatever the scope says (`/` is every tenant's root).
        let own_tenant = |oid: &str| {
            who.is_none_or(|w| {
                self.id
                    .dir
                    .principal_by_object_id(oid)
                    .is_some_and(|p| p.tenant_id.eq_ignore_ascii_case(&w.principal.tenant_id))
            })
        };
        let norm = auth::norm_scope(&scope);
        match (&c.method, name) {
            (&Method::GET, None) => {
                self.check(who, "Microsoft.Authorization/roleAssignments/read", &scope)?;
                let filter = c.query.get("$filter").cloned().unwrap_or_default();
                let by_principal = filter_value(&filter, "principalId");
                let at_scope = filter.to_ascii_lowercase().contains("atscope()");
                let v: Vec<Value> = self
                    .id
                    .dir
                    .assignments()
                    .iter()
                    .filter(|a| {
                        let s = auth::norm_scope(&a.scope);
                        let related = if at_scope {
                            auth::scope_covers(&s, &norm)
                        } else {
                            auth::scope_covers(&s, &norm) || auth::scope_covers(&norm, &s)
                        };
                        related
                            && own_tenant(&a.principal_id)
                            && by_principal
                                .as_deref()
                                .is_none_or(|p| a.principal_id.eq_ignore_ascii_case(p))
                    })
                    .map(|a| a.to_json(principal_type(&a.principal_id)))
                    .collect();
                Ok(json_response(200, &json!({"value": v}), &[]))
            }
            (&Method::GET, Some(n)) => {
                self.check(who, "Microsoft.Authorization/roleAssignments/read", &scope)?;
                self.id
                    .dir
                    .assignment(&n)
                    .filter(|a| auth::norm_scope(&a.scope) == norm && own_tenant(&a.principal_id))
                    .map(|a| json_response(200, &a.to_json(principal_type(&a.principal_id)), &[]))
                    .ok_or_else(|| {
                        ArmError::new(
                            404,
                            "RoleAssignmentNotFound",
                            format!("The role assignment '{n}' is not found."),
                        )
                    })
            }
            (&Method::PUT, Some(n)) => {
                self.check(who, "Microsoft.Authorization/roleAssignments/write", &scope)?;
                if !is_guidish(&n) {
                    return Err(ArmError::bad("InvalidRoleAssignmentId", format!("The role assignment ID '{n}' is not valid. The role assignment ID must be a GUID.")));
                }
                let body = http::parse_body(&c.body, false)?;
                let role_ref = body
                    .pointer("/properties/roleDefinitionId")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let role = auth::role_by_id(role_ref).ok_or_else(|| {
                    ArmError::bad(
                        "RoleDefinitionDoesNotExist",
                        format!(
                            "The specified role definition with ID '{}' does not exist.",
                            role_ref.rsplit('/').next().unwrap_or("")
                        ),
                    )
                })?;
                let pid = body
                    .pointer("/properties/principalId")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let principal = self
                    .id
                    .dir
                    .principal_by_object_id(pid)
                    .or_else(|| self.id.dir.principal(pid))
                    .filter(|p| {
                        let t =
                            who.map_or(p.tenant_id.as_str(), |w| w.principal.tenant_id.as_str());
                        p.tenant_id.eq_ignore_ascii_case(t)
                            && self.id.dir.scope_in_tenant(&scope, &p.tenant_id)
                    })
                    .ok_or_else(|| {
                        ArmError::bad(
                            "PrincipalNotFound",
                            format!("Principal {pid} does not exist in the directory."),
                        )
                    })?;
                if let Some(e) = self.id.dir.assignment(&n) {
                    if !own_tenant(&e.principal_id) {
                        // Another tenant's name: taken, and nothing to show of it.
                        return Err(ArmError::new(409, "RoleAssignmentUpdateNotPermitted", "Tenant ID, application ID, principal ID, and scope are not allowed to be updated."));
                    }
                    if auth::norm_scope(&e.scope) != norm
                        || e.principal_id != principal.object_id
                        || e.role != role.id
                    {
                        return Err(ArmError::new(409, "RoleAssignmentUpdateNotPermitted", "Tenant ID, application ID, principal ID, and scope are not allowed to be updated."));
                    }
                    return Ok(json_response(200, &e.to_json("ServicePrincipal"), &[]));
                }
                if self.id.dir.assignments().iter().any(|a| {
                    auth::norm_scope(&a.scope) == norm
                        && a.principal_id == principal.object_id
                        && a.role == role.id
                }) {
                    return Err(ArmError::new(
                        409,
                        "RoleAssignmentExists",
                        "The role assignment already exists.",
                    ));
                }
                let a = RoleAssignment {
                    name: n.to_ascii_lowercase(),
                    scope: scope.clone(),
                    role: role.id.to_string(),
                    principal_id: principal.object_id.clone(),
                };
                self.id.dir.put_assignment(a.clone()).map_err(internal)?;
                Ok(json_response(201, &a.to_json("ServicePrincipal"), &[]))
            }
            (&Method::DELETE, Some(n)) => {
                self.check(
                    who,
                    "Microsoft.Authorization/roleAssignments/delete",
                    &scope,
                )?;
                match self
                    .id
                    .dir
                    .assignment(&n)
                    .filter(|a| auth::norm_scope(&a.scope) == norm && own_tenant(&a.principal_id))
                {
                    Some(a) => {
                        self.id.dir.delete_assignment(&n).map_err(dir_error)?;
                        Ok(json_response(
                            200,
                            &a.to_json(principal_type(&a.principal_id)),
                            &[],
                        ))
                    }
                    None => Ok(http::empty(204, &[])),
                }
            }
            _ => Err(method_not_allowed(&c.method)),
        }
    }
}

/// The value of `field eq 'value'` in an OData `$filter`.
fn filter_value(filter: &str, field: &str) -> Option<String> {
    let low = filter.to_ascii_lowercase();
    let at = low.find(&format!("{} eq ", field.to_ascii_lowercase()))?;
    let rest = &filter[at + field.len() + 4..];
    let rest = rest.trim_start().strip_prefix('\'')?;
    rest.split('\'').next().map(String::from)
}

fn tenant_not_found(t: &str) -> ArmError {
    ArmError::new(
        404,
        "TenantNotFound",
        format!("The tenant '{t}' could not be found."),
    )
}

/// A directory refusal as ARM's 409 with its code; a store failure as a 500.
fn dir_error(e: auth::DirError) -> ArmError {
    match e {
        auth::DirError::Refused { code, message } => ArmError::new(409, code, message),
        auth::DirError::Store(s) => internal(s),
    }
}

fn internal(e: String) -> ArmError {
    ArmError::new(500, "InternalServerError", e)
}

fn method_not_allowed(m: &Method) -> ArmError {
    ArmError::new(
        405,
        "MethodNotAllowed",
        format!("The HTTP method '{m}' is not supported for this resource."),
    )
}

fn not_found_route(path: &str) -> ArmError {
    ArmError::new(
        404,
        "NotFound",
        format!("No route matches '{path}'. See /openapi.json for the operations vnet serves."),
    )
}

/// The identity routes in OpenAPI form, for [`crate::openapi::document`].
pub fn openapi_paths(paths: &mut Map<String, Value>) {
    fn op(
        id: &str,
        params: &[(&str, &str)],
        body: bool,
        responses: &[&str],
        secured: bool,
    ) -> Value {
        let p: Vec<Value> = params.iter().map(|(n, inn)| json!({"name": n, "in": inn, "required": *inn == "path" || *n == "api-version", "schema": {"type": "string"}})).collect();
        let mut r = Map::new();
        for code in responses {
            r.insert(code.to_string(), json!({"description": "response", "content": {"application/json": {"schema": {"type": "object"}}}}));
        }
        r.insert("default".into(), json!({"description": "error", "content": {"application/json": {"schema": {"type": "object"}}}}));
        let mut o =
            json!({"operationId": id, "parameters": p, "responses": r, "tags": ["identity"]});
        if body {
            let ct = if id.starts_with("Token_") {
                "application/x-www-form-urlencoded"
            } else {
                "application/json"
            };
            o["requestBody"] =
                json!({"required": true, "content": {ct: {"schema": {"type": "object"}}}});
        }
        if !secured {
            o["security"] = json!([]);
        }
        o
    }
    let mut add = |path: &str, method: &str, v: Value| {
        let e = paths.entry(path.to_string()).or_insert(json!({}));
        e[method] = v;
    };
    let api = ("api-version", "query");
    let t = ("tenant", "path");
    add(
        "/metadata/endpoints",
        "get",
        op(
            "Metadata_Endpoints",
            &[("api-version", "query-optional")],
            false,
            &["200"],
            false,
        ),
    );
    add(
        "/common/discovery/instance",
        "get",
        op("Discovery_Instance", &[], false, &["200"], false),
    );
    add(
        "/{tenant}/.well-known/openid-configuration",
        "get",
        op("OpenId_ConfigurationV1", &[t], false, &["200"], false),
    );
    add(
        "/{tenant}/v2.0/.well-known/openid-configuration",
        "get",
        op("OpenId_ConfigurationV2", &[t], false, &["200"], false),
    );
    add(
        "/{tenant}/discovery/keys",
        "get",
        op("Discovery_KeysV1", &[t], false, &["200"], false),
    );
    add(
        "/{tenant}/discovery/v2.0/keys",
        "get",
        op("Discovery_KeysV2", &[t], false, &["200"], false),
    );
    add(
        "/{tenant}/oauth2/token",
        "post",
        op("Token_V1", &[t], true, &["200"], false),
    );
    add(
        "/{tenant}/oauth2/v2.0/token",
        "post",
        op("Token_V2", &[t], true, &["200"], false),
    );
    add(
        "/tenants",
        "get",
        op("Tenants_List", &[api], false, &["200"], true),
    );
    add(
        "/subscriptions/{subscriptionId}",
        "put",
        op(
            "Subscriptions_CreateOrUpdate",
            &[("subscriptionId", "path"), api],
            true,
            &["200", "201"],
            true,
        ),
    );
    add(
        "/providers/Microsoft.Subscription/aliases",
        "get",
        op("Alias_List", &[api], false, &["200"], true),
    );
    let alias = [("aliasName", "path"), api];
    add(
        "/providers/Microsoft.Subscription/aliases/{aliasName}",
        "get",
        op("Alias_Get", &alias, false, &["200"], true),
    );
    add(
        "/providers/Microsoft.Subscription/aliases/{aliasName}",
        "put",
        op("Alias_Create", &alias, true, &["201"], true),
    );
    add(
        "/providers/Vnet.Identity/tenants",
        "get",
        op("VnetTenants_List", &[api], false, &["200"], true),
    );
    let vt = [("tenantId", "path"), api];
    add(
        "/providers/Vnet.Identity/tenants/{tenantId}",
        "get",
        op("VnetTenants_Get", &vt, false, &["200"], true),
    );
    add(
        "/providers/Vnet.Identity/tenants/{tenantId}",
        "put",
        op(
            "VnetTenants_CreateOrUpdate",
            &vt,
            true,
            &["200", "201"],
            true,
        ),
    );
    add(
        "/providers/Vnet.Identity/tenants/{tenantId}/servicePrincipals",
        "get",
        op("ServicePrincipals_List", &vt, false, &["200"], true),
    );
    let sp = [("tenantId", "path"), ("appId", "path"), api];
    let spp = "/providers/Vnet.Identity/tenants/{tenantId}/servicePrincipals/{appId}";
    add(
        spp,
        "get",
        op("ServicePrincipals_Get", &sp, false, &["200"], true),
    );
    add(
        spp,
        "put",
        op(
            "ServicePrincipals_CreateOrUpdate",
            &sp,
            true,
            &["200", "201"],
            true,
        ),
    );
    add(
        spp,
        "delete",
        op(
            "ServicePrincipals_Delete",
            &sp,
            false,
            &["200", "204"],
            true,
        ),
    );
    for (prefix, sp) in [
        ("", vec![]),
        (
            "/subscriptions/{subscriptionId}",
            vec![("subscriptionId", "path")],
        ),
        (
            "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}",
            vec![("subscriptionId", "path"), ("resourceGroupName", "path")],
        ),
        (
            "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/{resourceProviderNamespace}/{resourceType}/{resourceName}",
            vec![
                ("subscriptionId", "path"),
                ("resourceGroupName", "path"),
                ("resourceProviderNamespace", "path"),
                ("resourceType", "path"),
                ("resourceName", "path"),
            ],
        ),
    ] {
        let mut p = sp.clone();
        p.push(api);
        let tag = match sp.len() {
            0 => "Root",
            1 => "Subscription",
            2 => "ResourceGroup",
            _ => "Resource",
        };
        add(
            &format!("{prefix}/providers/Microsoft.Authorization/roleAssignments"),
            "get",
            op(
                &format!("RoleAssignments_ListFor{tag}"),
                &p,
                false,
                &["200"],
                true,
            ),
        );
        add(
            &format!("{prefix}/providers/Microsoft.Authorization/roleDefinitions"),
            "get",
            op(
                &format!("RoleDefinitions_ListAt{tag}"),
                &p,
                false,
                &["200"],
                true,
            ),
        );
        let mut pn = sp.clone();
        pn.push(("roleAssignmentName", "path"));
        pn.push(api);
        let ra = format!(
            "{prefix}/providers/Microsoft.Authorization/roleAssignments/{{roleAssignmentName}}"
        );
        add(
            &ra,
            "get",
            op(
                &format!("RoleAssignments_GetAt{tag}"),
                &pn,
                false,
                &["200"],
                true,
            ),
        );
        add(
            &ra,
            "put",
            op(
                &format!("RoleAssignments_CreateAt{tag}"),
                &pn,
                true,
                &["200", "201"],
                true,
            ),
        );
        add(
            &ra,
            "delete",
            op(
                &format!("RoleAssignments_DeleteAt{tag}"),
                &pn,
                false,
                &["200", "204"],
                true,
            ),
        );
        let mut pd = sp.clone();
        pd.push(("roleDefinitionId", "path"));
        pd.push(api);
        add(
            &format!(
                "{prefix}/providers/Microsoft.Authorization/roleDefinitions/{{roleDefinitionId}}"
            ),
            "get",
            op(
                &format!("RoleDefinitions_GetAt{tag}"),
                &pd,
                false,
                &["200"],
                true,
            ),
        );
    }
    // "query-optional" marks an optional query parameter.
    for v in paths.values_mut() {
        for o in v.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
            for p in o
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if p["in"] == "query-optional" {
                    p["in"] = json!("query");
                    p["required"] = json!(false);
                }
            }
        }
    }
}
