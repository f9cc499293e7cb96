//! Identity for the API: tenants, service principals (client id + secret), subscriptions and
//! role assignments, the signing key of the bearer tokens, and the role checks.
//!
//! * **Tokens** are JWTs signed with ES256 (ECDSA P-256, SHA-256) by a key kept in
//!   `<data-dir>/auth/signing-key.p8` (PKCS#8, mode 0600); the public half is served as a JWKS.
//!   The API accepts a token when its signature is ours, it has not expired (nor is it used
//!   before `nbf`), its audience is one of [`AUDIENCES`], and its principal still exists.
//! * **Secrets** are kept only as PBKDF2-HMAC-SHA256 hashes; checking one is constant-time. A
//!   secret is shown once: in `<data-dir>/credentials.json` (mode 0600) for the operator
//!   principal made at first start, or in the answer that creates a principal without one.
//! * **Roles** are Azure's built-in Owner, Contributor, Reader and Network Contributor, by their
//!   well-known ids; an assignment at a scope covers everything below it, `/` covers all.
//!
//! The directory lives in its own store file, `<data-dir>/identity.db`, so that the resource
//! store's change feed carries only resources.

use crate::BoxError;
use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair as _, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use store::{Op, Store};

/// Token audiences the API accepts, as Azure's public cloud names its Resource Manager (the
/// SDK's default scope `https://management.azure.com/.default` and az's
/// `https://management.core.windows.net//.default` both work unchanged). The first is the one
/// `/metadata/endpoints` advertises.
pub const AUDIENCES: [&str; 2] = [
    "https://management.core.windows.net/",
    "https://management.azure.com/",
];

/// Lifetime of an access token (AAD's default is 60-90 minutes).
pub const TOKEN_LIFETIME_SECS: i64 = 3599;
/// Clock skew tolerated on `nbf` and `exp`.
const LEEWAY_SECS: i64 = 300;

/// The subscription made at first start (the `vnet` CLI's default subscription).
pub const DEFAULT_SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000000";

// ---------------------------------------------------------------- base64url

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub fn b64url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..=c.len() {
            out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for ch in s.bytes() {
        let v = match ch {
            b'A'..=b'Z' => ch - b'A',
            b'a'..=b'z' => ch - b'a' + 26,
            b'0'..=b'9' => ch - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            b'=' => continue,
            _ => return None,
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the system random source works");
    b
}

pub fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A new client secret: 32 random bytes, base64url (43 characters), never starting with `-`
/// (command lines would take it for an option, as `az login -p` does).
pub fn new_secret() -> String {
    loop {
        let s = b64url(&random_bytes::<32>());
        if s.as_bytes()[0].is_ascii_alphanumeric() {
            return s;
        }
    }
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------- secrets

const PBKDF2_ITERATIONS: u32 = 20_000;

/// `pbkdf2-sha256$<iterations>$<salt>$<hash>` of a secret.
pub fn hash_secret(secret: &str) -> String {
    let salt = random_bytes::<16>();
    let mut out = [0u8; 32];
    let it = NonZeroU32::new(PBKDF2_ITERATIONS).expect("non-zero");
    aws_lc_rs::pbkdf2::derive(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
        it,
        &salt,
        secret.as_bytes(),
        &mut out,
    );
    format!(
        "pbkdf2-sha256${PBKDF2_ITERATIONS}${}${}",
        b64url(&salt),
        b64url(&out)
    )
}

/// Whether `secret` matches `hash` (constant-time in the secret).
pub fn verify_secret(hash: &str, secret: &str) -> bool {
    let parts: Vec<&str> = hash.split('$').collect();
    let [alg, it, salt, h] = parts.as_slice() else {
        return false;
    };
    let (Some(it), Some(salt), Some(h)) = (
        it.parse().ok().and_then(NonZeroU32::new),
        b64url_decode(salt),
        b64url_decode(h),
    ) else {
        return false;
    };
    *alg == "pbkdf2-sha256"
        && aws_lc_rs::pbkdf2::verify(
            aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
            it,
            &salt,
            secret.as_bytes(),
            &h,
        )
        .is_ok()
}

/// Spends the time of one secret check, so that unknown clients answer as slowly as known ones.
pub fn burn_secret_check(secret: &str) {
    let mut out = [0u8; 32];
    let it = NonZeroU32::new(PBKDF2_ITERATIONS).expect("non-zero");
    aws_lc_rs::pbkdf2::derive(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
        it,
        b"vnet-dummy-salt!",
        secret.as_bytes(),
        &mut out,
    );
}

// ---------------------------------------------------------------- token signing

/// The token signing key (ES256) and its public JWK.
pub struct Signer {
    key: EcdsaKeyPair,
    pub kid: String,
    public: Vec<u8>,
}

/// Why a token was refused; each maps to ARM's 401 code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not a JWT, not ours, or a bad signature.
    Invalid(String),
    /// `exp` has passed (the expiry, as Unix time).
    Expired(i64),
    /// The audience is not one the API accepts.
    WrongAudience(String),
}

impl Signer {
    /// Loads `<dir>/auth/signing-key.p8`, making it at first start.
    pub fn load_or_create(data_dir: &Path) -> Result<Signer, BoxError> {
        let dir = data_dir.join("auth");
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("signing-key.p8");
        let pkcs8 = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let doc = EcdsaKeyPair::generate_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &aws_lc_rs::rand::SystemRandom::new(),
                )
                .map_err(|_| "cannot generate the token signing key")?;
                crate::datadir::write_private_atomic(&file, doc.as_ref())?;
                doc.as_ref().to_vec()
            }
            Err(e) => return Err(e.into()),
        };
        Signer::from_pkcs8(&pkcs8).map_err(|e| format!("{}: {e}", file.display()).into())
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Signer, String> {
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .map_err(|e| format!("not a P-256 PKCS#8 key: {e}"))?;
        let public = key.public_key().as_ref().to_vec();
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &public);
        let kid = b64url(&d.as_ref()[..16]);
        Ok(Signer { key, kid, public })
    }

    /// A fresh key (tests).
    pub fn ephemeral() -> Signer {
        let doc = EcdsaKeyPair::generate_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .expect("keygen");
        Signer::from_pkcs8(doc.as_ref()).expect("fresh key")
    }

    /// The public key as a JWK (`kty: EC`, `crv: P-256`).
    pub fn jwk(&self) -> Value {
        // Uncompressed point: 0x04 || x (32) || y (32).
        json!({"kty": "EC", "use": "sig", "alg": "ES256", "crv": "P-256", "kid": self.kid,
               "x": b64url(&self.public[1..33]), "y": b64url(&self.public[33..65])})
    }

    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk()]})
    }

    /// Signs `claims` into a compact JWS.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"typ": "JWT", "alg": "ES256", "kid": self.kid});
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = self
            .key
            .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
            .expect("ECDSA signing works");
        format!("{input}.{}", b64url(sig.as_ref()))
    }

    /// Checks signature, lifetime and audience; returns the claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<Value, TokenError> {
        let invalid = |why: &str| TokenError::Invalid(why.to_string());
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("not a compact JWS"));
        };
        let header: Value = b64url_decode(h)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| invalid("bad header"))?;
        if header["alg"] != "ES256" {
            return Err(invalid("unexpected algorithm"));
        }
        let sig = b64url_decode(s).ok_or_else(|| invalid("bad signature encoding"))?;
        let input = &token[..h.len() + 1 + c.len()];
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.public)
            .verify(input.as_bytes(), &sig)
            .map_err(|_| invalid("signature mismatch"))?;
        let claims: Value = b64url_decode(c)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| invalid("bad claims"))?;
        let exp = claims["exp"].as_i64().ok_or_else(|| invalid("no exp"))?;
        if now > exp + LEEWAY_SECS {
            return Err(TokenError::Expired(exp));
        }
        if claims["nbf"]
            .as_i64()
            .is_some_and(|nbf| now + LEEWAY_SECS < nbf)
        {
            return Err(invalid("not valid yet"));
        }
        let aud = claims["aud"].as_str().unwrap_or("");
        if !audience_ok(aud) {
            return Err(TokenError::WrongAudience(aud.to_string()));
        }
        Ok(claims)
    }
}

/// Whether a token audience (or a v1 `resource`) names the API, trailing slash or not.
pub fn audience_ok(aud: &str) -> bool {
    let a = aud.trim_end_matches('/').to_ascii_lowercase();
    !a.is_empty() && AUDIENCES.iter().any(|x| x.trim_end_matches('/') == a)
}

// ---------------------------------------------------------------- directory records

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: String,
    pub display_name: String,
    pub default_domain: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    /// The client id (`appId`).
    pub app_id: String,
    /// The object id role assignments name (`principalId`).
    pub object_id: String,
    pub tenant_id: String,
    pub display_name: String,
    pub secret_hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: String,
    pub tenant_id: String,
    pub display_name: String,
    /// The `Microsoft.Subscription/aliases` name it was created under, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    pub name: String,
    /// As given (`/`, `/subscriptions/…`, a resource group or a resource id).
    pub scope: String,
    /// The built-in role's id (a GUID).
    pub role: String,
    /// The principal's object id.
    pub principal_id: String,
}

/// A built-in role.
pub struct RoleDef {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub actions: &'static [&'static str],
    pub not_actions: &'static [&'static str],
}

/// Azure's built-in roles vnet knows, by their well-known ids.
pub const ROLES: [RoleDef; 4] = [
    RoleDef {
        id: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        name: "Owner",
        description: "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
        actions: &["*"],
        not_actions: &[],
    },
    RoleDef {
        id: "b24988ac-6180-42a0-ab88-20f7382dd24c",
        name: "Contributor",
        description: "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC.",
        actions: &["*"],
        not_actions: &[
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
            "Microsoft.Subscription/*/write",
            "Microsoft.Resources/subscriptions/write",
            "Vnet.Identity/*/write",
            "Vnet.Identity/*/delete",
        ],
    },
    RoleDef {
        id: "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        name: "Reader",
        description: "View all resources, but does not allow you to make any changes.",
        actions: &["*/read"],
        not_actions: &[],
    },
    RoleDef {
        id: "4d97b98b-1d4f-4787-a291-c67834d212e7",
        name: "Network Contributor",
        description: "Lets you manage networks, but not access to them.",
        actions: &[
            "Microsoft.Authorization/*/read",
            "Microsoft.Network/*",
            "Microsoft.ResourceHealth/availabilityStatuses/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
        ],
        not_actions: &[],
    },
];

pub fn role_by_id(id: &str) -> Option<&'static RoleDef> {
    let guid = id.rsplit('/').next().unwrap_or(id);
    ROLES.iter().find(|r| r.id.eq_ignore_ascii_case(guid))
}

pub fn role_by_name(name: &str) -> Option<&'static RoleDef> {
    ROLES.iter().find(|r| r.name.eq_ignore_ascii_case(name))
}

/// Case-insensitive match of an action against a pattern with `*` wildcards.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    fn go(p: &[u8], a: &[u8]) -> bool {
        match p.split_first() {
            None => a.is_empty(),
            Some((b'*', rest)) => (0..=a.len()).any(|i| go(rest, &a[i..])),
            Some((c, rest)) => {
                a.first().is_some_and(|x| x.eq_ignore_ascii_case(c)) && go(rest, &a[1..])
            }
        }
    }
    go(pattern.as_bytes(), action.as_bytes())
}

impl RoleDef {
    pub fn permits(&self, action: &str) -> bool {
        self.actions.iter().any(|p| action_matches(p, action))
            && !self.not_actions.iter().any(|p| action_matches(p, action))
    }

    pub fn to_json(&self, scope: &str) -> Value {
        let scope = if scope == "/" { "" } else { scope };
        json!({
            "id": format!("{scope}/providers/Microsoft.Authorization/roleDefinitions/{}", self.id),
            "name": self.id,
            "type": "Microsoft.Authorization/roleDefinitions",
            "properties": {"roleName": self.name, "description": self.description, "type": "BuiltInRole",
                "permissions": [{"actions": self.actions, "notActions": self.not_actions, "dataActions": [], "notDataActions": []}],
                "assignableScopes": ["/"]},
        })
    }
}

/// A scope in the form assignments are compared in: lower case, no trailing slash, `/` for root.
pub fn norm_scope(s: &str) -> String {
    let t = s.trim().trim_end_matches('/').to_ascii_lowercase();
    if t.is_empty() {
        "/".into()
    } else if t.starts_with('/') {
        t
    } else {
        format!("/{t}")
    }
}

/// Whether scope `outer` contains (or is) scope `inner`; both normalised.
pub fn scope_covers(outer: &str, inner: &str) -> bool {
    outer == "/"
        || inner == outer
        || (inner.starts_with(outer) && inner.as_bytes().get(outer.len()) == Some(&b'/'))
}

impl RoleAssignment {
    pub fn id(&self) -> String {
        let s = if self.scope == "/" {
            ""
        } else {
            self.scope.trim_end_matches('/')
        };
        format!(
            "{s}/providers/Microsoft.Authorization/roleAssignments/{}",
            self.name
        )
    }

    pub fn to_json(&self, principal_type: &str) -> Value {
        let scope = if self.scope.is_empty() {
            "/"
        } else {
            &self.scope
        };
        let def_scope = scope_subscription(scope)
            .map(|s| format!("/subscriptions/{s}"))
            .unwrap_or_default();
        json!({
            "id": self.id(),
            "name": self.name,
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {
                "roleDefinitionId": format!("{def_scope}/providers/Microsoft.Authorization/roleDefinitions/{}", self.role),
                "principalId": self.principal_id,
                "principalType": principal_type,
                "scope": scope,
            },
        })
    }
}

/// The subscription a scope lies in, if any.
pub fn scope_subscription(scope: &str) -> Option<String> {
    let mut it = scope.trim_start_matches('/').split('/');
    match (it.next(), it.next()) {
        (Some(s), Some(id)) if s.eq_ignore_ascii_case("subscriptions") && !id.is_empty() => {
            Some(id.to_string())
        }
        _ => None,
    }
}

// ---------------------------------------------------------------- the directory

#[derive(Default, Clone)]
struct Records {
    tenants: BTreeMap<String, Tenant>,
    principals: BTreeMap<String, Principal>,
    subscriptions: BTreeMap<String, Subscription>,
    assignments: BTreeMap<String, RoleAssignment>,
}

/// The identity directory: tenants, principals, subscriptions and role assignments, kept in a
/// store and mirrored in memory.
pub struct Directory {
    store: Arc<dyn Store>,
    data: RwLock<Records>,
    write: std::sync::Mutex<()>,
    /// The client id of the server's operator (made at first start): its principal cannot be
    /// deleted or lose its last Owner assignment, and its tenant is the platform's (the one
    /// that creates tenants and hands out subscriptions).
    operator: RwLock<Option<String>>,
}

/// Why the directory refused a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirError {
    /// The change would break a rule (ARM code and message, answered as 409).
    Refused { code: &'static str, message: String },
    /// The identity store failed.
    Store(String),
}

impl From<String> for DirError {
    fn from(s: String) -> Self {
        DirError::Store(s)
    }
}

impl std::error::Error for DirError {}

impl std::fmt::Display for DirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirError::Refused { code, message } => write!(f, "{code}: {message}"),
            DirError::Store(s) => f.write_str(s),
        }
    }
}

/// Where a scope lies, for the tenant wall: a role assignment reaches only scopes of its
/// principal's own tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ScopeTenant {
    /// The root `/` and tenant-less provider scopes: the caller's own tenant's.
    Own,
    /// Inside this tenant (a subscription's, or a directory path's).
    Of(String),
    /// A subscription or tenant that does not exist: no assignment reaches it.
    Unknown,
}

/// True for the Owner role's assignment at the root scope.
fn is_root_owner(a: &RoleAssignment) -> bool {
    norm_scope(&a.scope) == "/" && a.role.eq_ignore_ascii_case(ROLES[0].id)
}

impl Records {
    fn tenant(&self, id_or_domain: &str) -> Option<&Tenant> {
        self.tenants
            .get(&id_or_domain.to_ascii_lowercase())
            .or_else(|| {
                self.tenants
                    .values()
                    .find(|t| t.default_domain.eq_ignore_ascii_case(id_or_domain))
            })
    }

    /// Why `t` may not be written: its domain names another tenant (by id or domain), or its
    /// id is another tenant's domain. Tenants are found by either, so both must be unique.
    fn name_clash(&self, t: &Tenant) -> Option<DirError> {
        self.tenants
            .values()
            .filter(|o| !o.id.eq_ignore_ascii_case(&t.id))
            .find(|o| {
                o.id.eq_ignore_ascii_case(&t.default_domain)
                    || o.default_domain.eq_ignore_ascii_case(&t.default_domain)
                    || o.default_domain.eq_ignore_ascii_case(&t.id)
            })
            .map(|o| DirError::Refused {
                code: "TenantDomainInUse",
                message: format!(
                    "The domain '{}' or the id '{}' is already a name of tenant '{}': tenant ids and domains are unique.",
                    t.default_domain, t.id, o.id
                ),
            })
    }

    fn principal_by_oid(&self, oid: &str) -> Option<&Principal> {
        self.principals
            .values()
            .find(|p| p.object_id.eq_ignore_ascii_case(oid))
    }

    fn scope_tenant(&self, scope: &str) -> ScopeTenant {
        let segs: Vec<&str> = scope.trim_matches('/').split('/').collect();
        match segs.as_slice() {
            ["subscriptions", s, ..] => match self.subscriptions.get(*s) {
                Some(sub) => ScopeTenant::Of(sub.tenant_id.to_ascii_lowercase()),
                None => ScopeTenant::Unknown,
            },
            ["providers", "vnet.identity", "tenants", t, ..] => match self.tenant(t) {
                Some(x) => ScopeTenant::Of(x.id.to_ascii_lowercase()),
                None => ScopeTenant::Unknown,
            },
            _ => ScopeTenant::Own,
        }
    }

    /// The tenant wall: whether `scope` (normalised) lies in tenant `tenant`.
    fn in_tenant(&self, scope: &str, tenant: &str) -> bool {
        match self.scope_tenant(scope) {
            ScopeTenant::Own => true,
            ScopeTenant::Of(t) => t.eq_ignore_ascii_case(tenant),
            ScopeTenant::Unknown => false,
        }
    }

    /// The assignments of `oid` that may count at `scope`: none outside its tenant.
    fn reaching<'a>(
        &'a self,
        oid: &'a str,
        scope: &str,
    ) -> Box<dyn Iterator<Item = &'a RoleAssignment> + 'a> {
        match self.principal_by_oid(oid) {
            Some(p) if self.in_tenant(scope, &p.tenant_id) => Box::new(
                self.assignments
                    .values()
                    .filter(move |a| a.principal_id.eq_ignore_ascii_case(oid)),
            ),
            _ => Box::new(std::iter::empty()),
        }
    }

    /// Whether removing the assignments `gone` would leave a tenant without an Owner at its
    /// root, or the operator without an Owner assignment: such a change locks people out.
    fn lockout(&self, gone: &[&RoleAssignment], operator: Option<&str>) -> Option<DirError> {
        let kept = |a: &RoleAssignment| !gone.iter().any(|g| g.name == a.name);
        let tenant_of = |a: &RoleAssignment| {
            self.principal_by_oid(&a.principal_id)
                .map(|p| p.tenant_id.to_ascii_lowercase())
        };
        for g in gone.iter().filter(|g| is_root_owner(g)) {
            let Some(t) = tenant_of(g) else { continue };
            let others = self
                .assignments
                .values()
                .any(|a| kept(a) && is_root_owner(a) && tenant_of(a).as_deref() == Some(&t));
            if !others {
                return Some(DirError::Refused {
                    code: "LastOwnerOfTenant",
                    message: format!("The role assignment '{}' is the last Owner assignment at the root of tenant '{t}'; removing it would leave the tenant without an owner. Assign Owner at '/' to another principal of the tenant first.", g.name),
                });
            }
        }
        let op = operator.and_then(|app| self.principals.get(&app.to_ascii_lowercase()))?;
        // The operator keeps Owner at the root itself: an Owner elsewhere would not let it
        // make tenants or restore its own rights.
        let owner = |a: &RoleAssignment| {
            a.principal_id.eq_ignore_ascii_case(&op.object_id) && is_root_owner(a)
        };
        if gone.iter().any(|g| owner(g)) && !self.assignments.values().any(|a| kept(a) && owner(a))
        {
            return Some(DirError::Refused {
                code: "OperatorPrincipalProtected",
                message: format!(
                    "The operator principal '{}' cannot lose its Owner assignment at the root scope '/'.",
                    op.app_id
                ),
            });
        }
        None
    }
}

const K_TENANT: &str = "iam/tenants/";
const K_PRINCIPAL: &str = "iam/principals/";
const K_SUB: &str = "iam/subscriptions/";
const K_RA: &str = "iam/roleAssignments/";

/// What first start made, for `vnet serve` to print.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// Whether the directory was empty and the operator principal was made now.
    pub created: bool,
    pub tenant_id: String,
    pub subscription_id: String,
    pub client_id: String,
    /// The file holding the operator's credentials (mode 0600), if it still exists.
    pub credentials_file: Option<PathBuf>,
}

impl Directory {
    pub fn open(store: Arc<dyn Store>) -> Result<Directory, BoxError> {
        let mut r = Records::default();
        let (_, items) = store.range("iam/")?;
        for (k, v) in items {
            if let Some(id) = k.strip_prefix(K_TENANT) {
                r.tenants.insert(id.to_string(), serde_json::from_str(&v)?);
            } else if let Some(id) = k.strip_prefix(K_PRINCIPAL) {
                r.principals
                    .insert(id.to_string(), serde_json::from_str(&v)?);
            } else if let Some(id) = k.strip_prefix(K_SUB) {
                r.subscriptions
                    .insert(id.to_string(), serde_json::from_str(&v)?);
            } else if let Some(id) = k.strip_prefix(K_RA) {
                r.assignments
                    .insert(id.to_string(), serde_json::from_str(&v)?);
            }
        }
        Ok(Directory {
            store,
            data: RwLock::new(r),
            write: std::sync::Mutex::new(()),
            operator: RwLock::new(None),
        })
    }

    /// An empty directory in memory (tests).
    pub fn in_memory() -> Directory {
        Directory::open(Arc::new(
            store::SqliteStore::open_in_memory().expect("in-memory store"),
        ))
        .expect("empty store")
    }

    fn read<R>(&self, f: impl FnOnce(&Records) -> R) -> R {
        f(&self.data.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Applies `f` to a copy, commits what changed, then publishes the copy.
    fn update<R, E: From<String>>(
        &self,
        f: impl FnOnce(&mut Records, &mut Vec<Op>) -> Result<R, E>,
    ) -> Result<R, E> {
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut copy = self.read(Records::clone);
        let mut ops = vec![];
        let r = f(&mut copy, &mut ops)?;
        if !ops.is_empty() {
            self.store
                .commit(&ops)
                .map_err(|e| format!("the identity store failed: {e}"))?;
        }
        *self.data.write().unwrap_or_else(|e| e.into_inner()) = copy;
        Ok(r)
    }

    fn put_op<T: Serialize>(prefix: &str, id: &str, v: &T) -> Op {
        Op::Put {
            key: format!("{prefix}{id}"),
            value: serde_json::to_string(v).expect("records serialise"),
        }
    }

    /// The store the directory lives in (for compaction).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn is_empty(&self) -> bool {
        self.read(|r| r.tenants.is_empty())
    }

    /// At first start: a tenant, the default subscription and an operator principal that is
    /// Owner at `/`, whose credentials go to `<data-dir>/credentials.json` (mode 0600).
    ///
    /// One atomic step, so that a first start cut short (kill -9, power cut) never locks the
    /// operator out: `credentials.json` is written (atomically, fsynced with its directory)
    /// *before* the four directory records are committed, in ONE store commit. A crash before
    /// that commit leaves an empty directory, and the next start simply does it again (a new
    /// secret overwrites the stale file); once the commit is durable, so is the file. The
    /// directory is "bootstrapped" only if it holds a tenant, so a half-made directory cannot
    /// exist.
    pub fn bootstrap(&self, data_dir: &Path) -> Result<Bootstrap, BoxError> {
        let file = data_dir.join("credentials.json");
        if !self.is_empty() {
            let operator = self.read(|r| {
                let root_owner = r
                    .assignments
                    .values()
                    .find(|a| a.scope == "/" && a.role == ROLES[0].id)
                    .and_then(|a| {
                        r.principals
                            .values()
                            .find(|p| p.object_id == a.principal_id)
                    });
                root_owner.or_else(|| r.principals.values().next()).cloned()
            });
            let (tenant_id, client_id) = operator
                .map(|p| (p.tenant_id, p.app_id))
                .unwrap_or_default();
            let subscription_id = self.read(|r| {
                r.subscriptions
                    .get(DEFAULT_SUBSCRIPTION)
                    .or_else(|| r.subscriptions.values().next())
                    .map(|s| s.id.clone())
                    .unwrap_or_default()
            });
            // A credentials.json that names no principal of this directory (restored from
            // elsewhere, edited) would only mislead: say so and do not point at it.
            let listed = std::fs::read(&file).ok().map(|b| {
                serde_json::from_slice::<Value>(&b)
                    .ok()
                    .and_then(|v| v["clientId"].as_str().map(str::to_ascii_lowercase))
                    .is_some_and(|id| self.read(|r| r.principals.contains_key(&id)))
            });
            if listed == Some(false) {
                tracing::warn!(file = %file.display(), "credentials.json names no principal of this server's directory; ignoring it");
            }
            return Ok(Bootstrap {
                created: false,
                tenant_id,
                subscription_id,
                client_id,
                credentials_file: (listed == Some(true)).then_some(file),
            });
        }
        let tenant = Tenant {
            id: new_guid(),
            display_name: "vnet".into(),
            default_domain: "vnet.local".into(),
        };
        let secret = new_secret();
        let p = Principal {
            app_id: new_guid(),
            object_id: new_guid(),
            tenant_id: tenant.id.clone(),
            display_name: "vnet-operator".into(),
            secret_hash: hash_secret(&secret),
        };
        let creds = json!({"tenantId": tenant.id, "clientId": p.app_id, "clientSecret": secret, "subscriptionId": DEFAULT_SUBSCRIPTION});
        crate::datadir::write_private_atomic(&file, format!("{:#}\n", creds).as_bytes())
            .map_err(|e| crate::datadir::describe_io(data_dir, "write credentials.json", &e))?;
        let sub = Subscription {
            id: DEFAULT_SUBSCRIPTION.into(),
            tenant_id: tenant.id.clone(),
            display_name: "vnet default".into(),
            alias: None,
        };
        let owner = RoleAssignment {
            name: new_guid(),
            scope: "/".into(),
            role: ROLES[0].id.into(),
            principal_id: p.object_id.clone(),
        };
        self.update(|r, ops| {
            let (tid, pid) = (
                tenant.id.to_ascii_lowercase(),
                p.app_id.to_ascii_lowercase(),
            );
            let (sid, aid) = (sub.id.to_ascii_lowercase(), owner.name.to_ascii_lowercase());
            ops.push(Self::put_op(K_TENANT, &tid, &tenant));
            ops.push(Self::put_op(K_SUB, &sid, &sub));
            ops.push(Self::put_op(K_PRINCIPAL, &pid, &p));
            ops.push(Self::put_op(K_RA, &aid, &owner));
            r.tenants.insert(tid, tenant.clone());
            r.subscriptions.insert(sid, sub);
            r.principals.insert(pid, p.clone());
            r.assignments.insert(aid, owner);
            Ok::<(), String>(())
        })?;
        Ok(Bootstrap {
            created: true,
            tenant_id: tenant.id,
            subscription_id: DEFAULT_SUBSCRIPTION.into(),
            client_id: p.app_id,
            credentials_file: Some(file),
        })
    }

    // ----- reads

    /// A tenant by id or default domain (case-insensitive): the id wins, so no tenant can
    /// take another's id as its domain and stand in for it.
    pub fn tenant(&self, id_or_domain: &str) -> Option<Tenant> {
        self.read(|r| r.tenant(id_or_domain).cloned())
    }

    pub fn tenants(&self) -> Vec<Tenant> {
        self.read(|r| r.tenants.values().cloned().collect())
    }

    pub fn principal(&self, app_id: &str) -> Option<Principal> {
        self.read(|r| r.principals.get(&app_id.to_ascii_lowercase()).cloned())
    }

    pub fn principal_by_object_id(&self, oid: &str) -> Option<Principal> {
        self.read(|r| {
            r.principals
                .values()
                .find(|p| p.object_id.eq_ignore_ascii_case(oid))
                .cloned()
        })
    }

    pub fn principals(&self, tenant: &str) -> Vec<Principal> {
        self.read(|r| {
            r.principals
                .values()
                .filter(|p| p.tenant_id.eq_ignore_ascii_case(tenant))
                .cloned()
                .collect()
        })
    }

    pub fn subscription(&self, id: &str) -> Option<Subscription> {
        self.read(|r| r.subscriptions.get(&id.to_ascii_lowercase()).cloned())
    }

    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.read(|r| r.subscriptions.values().cloned().collect())
    }

    pub fn assignment(&self, name: &str) -> Option<RoleAssignment> {
        self.read(|r| r.assignments.get(&name.to_ascii_lowercase()).cloned())
    }

    pub fn assignments(&self) -> Vec<RoleAssignment> {
        self.read(|r| r.assignments.values().cloned().collect())
    }

    /// The client whose secret matches, in this tenant. Unknown clients cost the same time as
    /// known ones with a wrong secret.
    pub fn authenticate(
        &self,
        tenant: &Tenant,
        client_id: &str,
        secret: &str,
    ) -> Result<Principal, AuthnError> {
        match self
            .principal(client_id)
            .filter(|p| p.tenant_id == tenant.id)
        {
            None => {
                burn_secret_check(secret);
                Err(AuthnError::UnknownClient)
            }
            Some(p) if verify_secret(&p.secret_hash, secret) => Ok(p),
            Some(_) => Err(AuthnError::BadSecret),
        }
    }

    /// Names the operator principal (by client id), as bootstrap found or made it.
    pub fn set_operator(&self, app_id: &str) {
        *self.operator.write().unwrap_or_else(|e| e.into_inner()) =
            Some(app_id.to_ascii_lowercase());
    }

    /// The operator's client id, once known.
    pub fn operator(&self) -> Option<String> {
        self.operator
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether `p` is the operator principal.
    pub fn is_operator(&self, p: &Principal) -> bool {
        self.operator()
            .is_some_and(|o| o.eq_ignore_ascii_case(&p.app_id))
    }

    /// Whether `p` belongs to the platform's tenant (the operator's): the one tenant whose
    /// owners create other tenants and hand out subscriptions to them — and still hold no
    /// role inside them.
    pub fn is_platform(&self, p: &Principal) -> bool {
        self.operator()
            .and_then(|o| self.principal(&o))
            .is_some_and(|op| op.tenant_id.eq_ignore_ascii_case(&p.tenant_id))
    }

    /// Whether `scope` lies in `tenant` (a subscription's tenant, a directory path's tenant;
    /// the root and tenant-less scopes lie in every caller's own).
    pub fn scope_in_tenant(&self, scope: &str, tenant: &str) -> bool {
        let scope = norm_scope(scope);
        self.read(|r| r.in_tenant(&scope, tenant))
    }

    /// Whether the principal may perform `action` at `scope`. Assignments never reach across
    /// tenants: an Owner at `/` of one tenant has no rights in another's subscriptions or
    /// directory.
    pub fn allowed(&self, principal_oid: &str, action: &str, scope: &str) -> bool {
        let scope = norm_scope(scope);
        self.read(|r| {
            r.reaching(principal_oid, &scope).any(|a| {
                scope_covers(&norm_scope(&a.scope), &scope)
                    && role_by_id(&a.role).is_some_and(|d| d.permits(action))
            })
        })
    }

    /// Whether the principal has any assignment above, at or below `scope` (in its tenant).
    pub fn has_any_access(&self, principal_oid: &str, scope: &str) -> bool {
        let scope = norm_scope(scope);
        self.read(|r| {
            r.reaching(principal_oid, &scope).any(|a| {
                let s = norm_scope(&a.scope);
                scope_covers(&s, &scope) || scope_covers(&scope, &s)
            })
        })
    }

    /// Whether the principal has an assignment strictly below `scope` (in its tenant).
    pub fn has_access_below(&self, principal_oid: &str, scope: &str) -> bool {
        let scope = norm_scope(scope);
        self.read(|r| {
            r.reaching(principal_oid, &scope).any(|a| {
                let s = norm_scope(&a.scope);
                s != scope && scope_covers(&scope, &s)
            })
        })
    }

    // ----- writes

    pub fn put_tenant(&self, t: Tenant) -> Result<(), DirError> {
        self.update(|r, ops| {
            let id = t.id.to_ascii_lowercase();
            if let Some(e) = r.name_clash(&t) {
                return Err(e);
            }
            ops.push(Self::put_op(K_TENANT, &id, &t));
            r.tenants.insert(id, t);
            Ok(())
        })
    }

    /// A new tenant with its first Owner at the root, in one commit: a tenant is never
    /// left without an owner, even by a crash.
    pub fn put_tenant_with_owner(
        &self,
        t: Tenant,
        owner: Principal,
        assignment: RoleAssignment,
    ) -> Result<(), DirError> {
        self.update(|r, ops| {
            if let Some(e) = r.name_clash(&t) {
                return Err(e);
            }
            let tid = t.id.to_ascii_lowercase();
            let pid = owner.app_id.to_ascii_lowercase();
            let aid = assignment.name.to_ascii_lowercase();
            ops.push(Self::put_op(K_TENANT, &tid, &t));
            ops.push(Self::put_op(K_PRINCIPAL, &pid, &owner));
            ops.push(Self::put_op(K_RA, &aid, &assignment));
            r.tenants.insert(tid, t);
            r.principals.insert(pid, owner);
            r.assignments.insert(aid, assignment);
            Ok(())
        })
    }

    pub fn put_principal(&self, p: Principal) -> Result<(), String> {
        self.update(|r, ops| {
            let id = p.app_id.to_ascii_lowercase();
            ops.push(Self::put_op(K_PRINCIPAL, &id, &p));
            r.principals.insert(id, p);
            Ok(())
        })
    }

    /// Removes a principal and its role assignments; refused for the operator, and for the
    /// holder of its tenant's last Owner assignment at the root.
    pub fn delete_principal(&self, app_id: &str) -> Result<bool, DirError> {
        let operator = self.operator();
        self.update(|r, ops| {
            let id = app_id.to_ascii_lowercase();
            if operator.as_deref() == Some(id.as_str()) {
                return Err(DirError::Refused {
                    code: "OperatorPrincipalProtected",
                    message: format!("The operator principal '{id}' cannot be deleted."),
                });
            }
            let Some(oid) = r.principals.get(&id).map(|p| p.object_id.clone()) else {
                return Ok(false);
            };
            let held: Vec<&RoleAssignment> = r
                .assignments
                .values()
                .filter(|a| a.principal_id.eq_ignore_ascii_case(&oid))
                .collect();
            if let Some(e) = r.lockout(&held, operator.as_deref()) {
                return Err(e);
            }
            let p = r.principals.remove(&id).expect("found above");
            ops.push(Op::Delete {
                key: format!("{K_PRINCIPAL}{id}"),
            });
            let gone: Vec<String> = r
                .assignments
                .iter()
                .filter(|(_, a)| a.principal_id == p.object_id)
                .map(|(k, _)| k.clone())
                .collect();
            for k in gone {
                r.assignments.remove(&k);
                ops.push(Op::Delete {
                    key: format!("{K_RA}{k}"),
                });
            }
            Ok(true)
        })
    }

    pub fn put_subscription(&self, s: Subscription) -> Result<(), String> {
        self.update(|r, ops| {
            let id = s.id.to_ascii_lowercase();
            ops.push(Self::put_op(K_SUB, &id, &s));
            r.subscriptions.insert(id, s);
            Ok(())
        })
    }

    pub fn put_assignment(&self, a: RoleAssignment) -> Result<(), String> {
        self.update(|r, ops| {
            let id = a.name.to_ascii_lowercase();
            ops.push(Self::put_op(K_RA, &id, &a));
            r.assignments.insert(id, a);
            Ok(())
        })
    }

    /// Removes a role assignment; refused when that would leave a tenant without an Owner at
    /// its root or the operator without an Owner assignment.
    pub fn delete_assignment(&self, name: &str) -> Result<Option<RoleAssignment>, DirError> {
        let operator = self.operator();
        self.update(|r, ops| {
            let id = name.to_ascii_lowercase();
            if let Some(a) = r.assignments.get(&id) {
                if let Some(e) = r.lockout(&[a], operator.as_deref()) {
                    return Err(e);
                }
            }
            let old = r.assignments.remove(&id);
            if old.is_some() {
                ops.push(Op::Delete {
                    key: format!("{K_RA}{id}"),
                });
            }
            Ok(old)
        })
    }
}

/// Why a client could not authenticate at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthnError {
    UnknownClient,
    BadSecret,
}

// ---------------------------------------------------------------- actions

/// The RBAC action and scope an ARM request needs, from its method and path (segments as sent).
///
/// `GET …/virtualNetworks/v/subnets/s` → (`Microsoft.Network/virtualNetworks/subnets/read`, the
/// subnet's id); `POST …/networkInterfaces/n/effectiveRouteTable` →
/// `Microsoft.Network/networkInterfaces/effectiveRouteTable/action`; paths without a provider
/// are `Microsoft.Resources` (subscriptions, resource groups).
pub fn required_action(method: &str, segs: &[String]) -> (String, String) {
    let last_provider = segs
        .iter()
        .rposition(|s| s.eq_ignore_ascii_case("providers"))
        .filter(|i| i + 1 < segs.len());
    let (ns, rest) = match last_provider {
        Some(i) => (segs[i + 1].clone(), &segs[i + 2..]),
        None => ("Microsoft.Resources".to_string(), segs),
    };
    // The scope is the resource the request is about: a collection or an action names its
    // parent (`…/resourceGroups/g/providers/Microsoft.Network/virtualNetworks` → the group).
    let mut upto = segs.len();
    if rest.len() % 2 == 1 {
        upto -= 1;
        if let Some(i) = last_provider.filter(|i| i + 2 == upto) {
            upto = i;
        }
    }
    let scope = format!("/{}", segs[..upto].join("/"));
    let mut types: Vec<&str> = rest.iter().step_by(2).map(String::as_str).collect();
    let verb = match method {
        "POST" => {
            if rest.len() % 2 == 0 {
                if let Some(last) = rest.last() {
                    types.push(last);
                }
            }
            "action"
        }
        "PUT" | "PATCH" => "write",
        "DELETE" => "delete",
        _ => "read",
    };
    let mut action = ns;
    for t in types {
        action.push('/');
        action.push_str(t);
    }
    action.push('/');
    action.push_str(verb);
    (action, scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<String> {
        p.trim_matches('/').split('/').map(String::from).collect()
    }

    #[test]
    fn base64url_round_trip() {
        for n in 0..40 {
            let d: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(b64url_decode(&b64url(&d)).unwrap(), d);
        }
        assert_eq!(b64url(b"\xfb\xff"), "-_8");
    }

    #[test]
    fn tokens() {
        let s = Signer::ephemeral();
        let now = now_unix();
        let t = s.sign(&json!({"aud": "https://management.azure.com", "exp": now + 60, "nbf": now, "oid": "x"}));
        assert_eq!(s.verify(&t, now).unwrap()["oid"], "x");
        assert!(matches!(
            s.verify(&t, now + 1000),
            Err(TokenError::Expired(_))
        ));
        let other = Signer::ephemeral();
        assert!(
            matches!(other.verify(&t, now), Err(TokenError::Invalid(_))),
            "another key's token is refused"
        );
        let mut tampered = t.clone();
        tampered.replace_range(
            t.len() - 5..t.len() - 4,
            if &t[t.len() - 5..t.len() - 4] == "A" {
                "B"
            } else {
                "A"
            },
        );
        assert!(s.verify(&tampered, now).is_err());
        let t = s.sign(&json!({"aud": "https://graph.microsoft.com", "exp": now + 60}));
        assert_eq!(
            s.verify(&t, now),
            Err(TokenError::WrongAudience(
                "https://graph.microsoft.com".into()
            ))
        );
        assert_eq!(s.jwk()["crv"], "P-256");
    }

    #[test]
    fn secrets() {
        assert!((0..200).all(|_| new_secret().as_bytes()[0].is_ascii_alphanumeric()));
        assert_eq!(new_secret().len(), 43);
        let h = hash_secret("s3cret");
        assert!(verify_secret(&h, "s3cret"));
        assert!(!verify_secret(&h, "s3cret2"));
        assert!(!verify_secret("garbage", "s3cret"));
        assert!(!h.contains("s3cret"));
    }

    #[test]
    fn roles_and_scopes() {
        let nc = role_by_name("network contributor").unwrap();
        assert!(nc.permits("Microsoft.Network/virtualNetworks/peer/action"));
        assert!(!nc.permits("Microsoft.Resources/subscriptions/resourceGroups/write"));
        let reader = role_by_id("/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7").unwrap();
        assert!(reader.permits("Microsoft.Network/virtualNetworks/read"));
        assert!(!reader.permits("Microsoft.Network/virtualNetworks/peer/action"));
        let c = role_by_name("Contributor").unwrap();
        assert!(c.permits("Microsoft.Network/virtualNetworks/write"));
        assert!(!c.permits("Microsoft.Authorization/roleAssignments/write"));
        assert!(scope_covers(
            "/subscriptions/a",
            "/subscriptions/a/resourcegroups/b"
        ));
        assert!(!scope_covers("/subscriptions/a", "/subscriptions/ab"));
        assert!(scope_covers("/", "/subscriptions/a"));
        assert_eq!(norm_scope("/Subscriptions/A/"), "/subscriptions/a");
    }

    #[test]
    fn scopes_of_collections_and_actions() {
        let scope = |m: &str, p: &str| required_action(m, &segs(p)).1;
        assert_eq!(
            scope("GET", "/subscriptions/s/resourcegroups"),
            "/subscriptions/s"
        );
        assert_eq!(
            scope(
                "GET",
                "/subscriptions/s/providers/Microsoft.Network/virtualNetworks"
            ),
            "/subscriptions/s"
        );
        assert_eq!(
            scope(
                "GET",
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks"
            ),
            "/subscriptions/s/resourceGroups/g"
        );
        assert_eq!(
            scope("GET", "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v/subnets"),
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v"
        );
        assert_eq!(
            scope("POST", "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/networkInterfaces/n/effectiveRouteTable"),
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/networkInterfaces/n"
        );
        assert_eq!(scope("GET", "/subscriptions/s"), "/subscriptions/s");
    }

    #[test]
    fn actions() {
        let id = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v";
        assert_eq!(
            required_action("PUT", &segs(id)).0,
            "Microsoft.Network/virtualNetworks/write"
        );
        assert_eq!(
            required_action("GET", &segs(&format!("{id}/subnets"))).0,
            "Microsoft.Network/virtualNetworks/subnets/read"
        );
        assert_eq!(
            required_action("DELETE", &segs(&format!("{id}/virtualNetworkPeerings/p"))).0,
            "Microsoft.Network/virtualNetworks/virtualNetworkPeerings/delete"
        );
        assert_eq!(
            required_action("POST", &segs("/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/networkInterfaces/n/effectiveRouteTable")).0,
            "Microsoft.Network/networkInterfaces/effectiveRouteTable/action"
        );
        assert_eq!(
            required_action("POST", &segs("/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/connections/c/sharedkey/reset")).0,
            "Microsoft.Network/connections/sharedkey/reset/action"
        );
        assert_eq!(
            required_action("PUT", &segs("/subscriptions/s/resourcegroups/g")),
            (
                "Microsoft.Resources/subscriptions/resourcegroups/write".into(),
                "/subscriptions/s/resourcegroups/g".into()
            )
        );
        assert_eq!(
            required_action("GET", &segs("/subscriptions/s")).0,
            "Microsoft.Resources/subscriptions/read"
        );
        assert_eq!(
            required_action(
                "PUT",
                &segs("/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/r")
            )
            .0,
            "Microsoft.Authorization/roleAssignments/write"
        );
    }

    #[test]
    fn directory_bootstrap_and_checks() {
        let d = tempfile::tempdir().unwrap();
        let dir = Directory::in_memory();
        let b = dir.bootstrap(d.path()).unwrap();
        assert!(b.created);
        let creds: Value = serde_json::from_str(
            &std::fs::read_to_string(d.path().join("credentials.json")).unwrap(),
        )
        .unwrap();
        let t = dir.tenant(&b.tenant_id).unwrap();
        let p = dir
            .authenticate(&t, &b.client_id, creds["clientSecret"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            dir.authenticate(&t, &b.client_id, "nope"),
            Err(AuthnError::BadSecret)
        );
        assert_eq!(
            dir.authenticate(&t, "unknown", "nope"),
            Err(AuthnError::UnknownClient)
        );
        assert!(dir.allowed(
            &p.object_id,
            "Microsoft.Network/virtualNetworks/write",
            &format!("/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/y")
        ));
        assert!(
            !dir.allowed(
                &p.object_id,
                "Microsoft.Network/virtualNetworks/write",
                "/subscriptions/x/resourceGroups/y"
            ),
            "no assignment reaches a subscription that does not exist"
        );
        assert!(!dir.allowed(
            "someone-else",
            "Microsoft.Network/virtualNetworks/read",
            "/subscriptions/x"
        ));
        let again = dir.bootstrap(d.path()).unwrap();
        assert!(!again.created);
        assert_eq!(again.client_id, b.client_id);
    }

    /// Tenant B's Owner at `/` reaches nothing of tenant A: not its subscriptions, not its
    /// directory; and neither the operator nor a tenant's last root Owner can be removed.
    #[test]
    fn tenants_are_walls_and_owners_cannot_be_locked_out() {
        let d = tempfile::tempdir().unwrap();
        let dir = Directory::in_memory();
        let boot = dir.bootstrap(d.path()).unwrap();
        dir.set_operator(&boot.client_id);
        let op = dir.principal(&boot.client_id).unwrap();
        let b = Tenant {
            id: "tenant-b".into(),
            display_name: "B".into(),
            default_domain: "b.vnet.local".into(),
        };
        let b_owner = Principal {
            app_id: "b-owner".into(),
            object_id: "b-owner-oid".into(),
            tenant_id: b.id.clone(),
            display_name: "b".into(),
            secret_hash: hash_secret("0123456789abcdef"),
        };
        let b_root = RoleAssignment {
            name: "b-root".into(),
            scope: "/".into(),
            role: ROLES[0].id.into(),
            principal_id: b_owner.object_id.clone(),
        };
        dir.put_tenant_with_owner(b.clone(), b_owner.clone(), b_root.clone())
            .unwrap();
        dir.put_subscription(Subscription {
            id: "sub-b".into(),
            tenant_id: b.id.clone(),
            display_name: "B".into(),
            alias: None,
        })
        .unwrap();
        let home = format!("/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/g");
        let a_dir = format!(
            "/providers/Vnet.Identity/tenants/{}/servicePrincipals/x",
            boot.tenant_id
        );
        let w = "Microsoft.Network/virtualNetworks/write";
        // B's root Owner: its own tenant only.
        assert!(dir.allowed(&b_owner.object_id, w, "/subscriptions/sub-b"));
        assert!(!dir.allowed(&b_owner.object_id, w, &home));
        assert!(!dir.allowed(
            &b_owner.object_id,
            "Vnet.Identity/tenants/servicePrincipals/write",
            &a_dir
        ));
        assert!(!dir.allowed(
            &b_owner.object_id,
            "Vnet.Identity/tenants/servicePrincipals/delete",
            &a_dir.to_uppercase()
        ));
        assert!(!dir.has_any_access(&b_owner.object_id, &home));
        // The operator's root Owner does not reach into B either.
        assert!(!dir.allowed(&op.object_id, w, "/subscriptions/sub-b"));
        assert!(!dir.allowed(
            &op.object_id,
            "Vnet.Identity/tenants/servicePrincipals/write",
            "/providers/Vnet.Identity/tenants/tenant-b/servicePrincipals/x"
        ));
        assert!(dir.is_platform(&op) && !dir.is_platform(&b_owner));
        // Lock-outs refused: the operator, and each tenant's last root Owner.
        assert!(matches!(
            dir.delete_principal(&boot.client_id),
            Err(DirError::Refused {
                code: "OperatorPrincipalProtected",
                ..
            })
        ));
        let op_root = dir
            .assignments()
            .into_iter()
            .find(|a| a.principal_id == op.object_id)
            .unwrap();
        assert!(matches!(
            dir.delete_assignment(&op_root.name),
            Err(DirError::Refused { .. })
        ));
        assert!(matches!(
            dir.delete_principal("b-owner"),
            Err(DirError::Refused {
                code: "LastOwnerOfTenant",
                ..
            })
        ));
        assert!(matches!(
            dir.delete_assignment("b-root"),
            Err(DirError::Refused {
                code: "LastOwnerOfTenant",
                ..
            })
        ));
        // With a second root Owner in B, the first may go.
        let b2 = Principal {
            app_id: "b-two".into(),
            object_id: "b-two-oid".into(),
            ..b_owner.clone()
        };
        dir.put_principal(b2.clone()).unwrap();
        dir.put_assignment(RoleAssignment {
            name: "b-root-2".into(),
            principal_id: b2.object_id.clone(),
            ..b_root.clone()
        })
        .unwrap();
        assert_eq!(
            dir.delete_assignment("b-root").unwrap().unwrap().name,
            "b-root"
        );
        assert!(dir.delete_principal("b-owner").unwrap());
    }
}
