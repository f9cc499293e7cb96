//! Secrets at rest: write-only fields (connection `sharedKey` and `authorizationKey`, gateway
//! `radiusServerSecret`s — the schema's `wo(...)` fields) never reach the store inside a
//! resource document.
//!
//! Before a document is committed, [`split`] takes its write-only fields out (found from the
//! kind's schema, so a new `wo` field is covered without a list to keep up to date). The
//! document goes to `res/<key>` without them; the fields go, sealed with AES-256-GCM under a
//! key of their own (`<data-dir>/secrets.key`, 0600), to `secret/res/<key>`, a key the store
//! keeps without history ([`store::SECRET_PREFIX`]). So:
//!
//! * the change feed (every revision of every document) never holds a secret;
//! * the store files hold only ciphertext, bound to its resource (the store key is the AEAD's
//!   associated data, so a sealed value moved to another resource does not open);
//! * a changed or deleted secret is overwritten (secure_delete, WAL truncated by the store).
//!
//! In memory the documents keep their secrets ([`merge`] puts them back at load), so the model
//! (shared-key GET, IPsec planning) is unchanged.

use crate::BoxError;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::SecureRandom;
use model::schema::{Acc, Ty};
use serde_json::{Map, Value};
use std::path::Path;
use store::Op;

/// The sealing key's file in the data directory.
pub const KEY_FILE: &str = "secrets.key";
/// Store key prefix of sealed secrets: `secret/res/<resource key>`.
pub const SECRET_RES: &str = "secret/res/";
/// Format tag of a sealed value.
const V1: &str = "v1.";

/// The write-only fields of one document: JSON pointer → value.
pub type Secrets = Map<String, Value>;

/// Seals and opens secrets with the data directory's key.
pub struct Sealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)") // never the key
    }
}

impl Sealer {
    /// Loads `<data-dir>/secrets.key`, making it (32 random bytes, mode 0600) if missing.
    pub fn load_or_create(data_dir: &Path) -> Result<Sealer, BoxError> {
        let file = data_dir.join(KEY_FILE);
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let k = random::<32>();
                crate::datadir::write_private_atomic(&file, &k)
                    .map_err(|e| crate::datadir::describe_io(data_dir, "write secrets.key", &e))?;
                k.to_vec()
            }
            Err(e) => {
                return Err(crate::datadir::describe_io(data_dir, "read secrets.key", &e).into())
            }
        };
        Sealer::from_bytes(&bytes).map_err(|e| format!("{}: {e}", file.display()).into())
    }

    /// A key that lives in memory only (in-memory stores, tests).
    pub fn ephemeral() -> Sealer {
        Sealer::from_bytes(&random::<32>()).expect("32-byte key")
    }

    fn from_bytes(b: &[u8]) -> Result<Sealer, String> {
        let unbound = UnboundKey::new(&AES_256_GCM, b)
            .map_err(|_| format!("not an AES-256 key ({} bytes, expected 32)", b.len()))?;
        Ok(Sealer {
            key: LessSafeKey::new(unbound),
        })
    }

    /// `v1.` + base64url(nonce ‖ ciphertext ‖ tag), bound to `store_key`.
    pub fn seal(&self, store_key: &str, plain: &[u8]) -> String {
        let nonce = random::<NONCE_LEN>();
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(store_key.as_bytes()),
                &mut buf,
            )
            .expect("AES-GCM sealing of a small buffer");
        let mut out = nonce.to_vec();
        out.extend(buf);
        format!("{V1}{}", crate::auth::b64url(&out))
    }

    /// Opens what [`Sealer::seal`] made for the same `store_key`.
    pub fn open(&self, store_key: &str, sealed: &str) -> Result<Vec<u8>, String> {
        let raw = sealed
            .strip_prefix(V1)
            .and_then(crate::auth::b64url_decode)
            .filter(|r| r.len() >= NONCE_LEN)
            .ok_or_else(|| format!("{store_key}: not a sealed value"))?;
        let (n, ct) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(n).map_err(|_| "bad nonce".to_string())?;
        let mut buf = ct.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(store_key.as_bytes()), &mut buf)
            .map_err(|_| {
                format!(
                    "{store_key}: cannot decrypt (secrets.key is not the key these secrets were sealed with)"
                )
            })?;
        Ok(plain.to_vec())
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the OS random source works");
    b
}

/// The schema of the document at a state key, if it is a resource of a known kind that has
/// write-only fields at all (most have none: their documents are stored as they are).
fn schema_of(key: &str) -> Option<&'static Ty> {
    fn has_secrets(ty: &Ty) -> bool {
        match ty {
            Ty::Obj(fields) => fields
                .iter()
                .any(|f| f.acc == Acc::Wo || has_secrets(&f.ty)),
            Ty::Arr(inner) => has_secrets(inner),
            _ => false,
        }
    }
    model::ResourceId::parse(key)
        .ok()
        .map(|id| model::schemas::of(id.kind))
        .filter(|ty| has_secrets(ty))
}

/// Takes the write-only fields out of `doc` (in place), returning them by JSON pointer.
pub fn split(key: &str, doc: &mut Value) -> Secrets {
    let mut out = Secrets::new();
    if let Some(ty) = schema_of(key) {
        take(doc, ty, String::new(), &mut out);
    }
    out
}

/// The write-only fields of `doc`, leaving it unchanged.
pub fn secrets_of(key: &str, doc: &Value) -> Secrets {
    split(key, &mut doc.clone())
}

fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

fn take(v: &mut Value, ty: &Ty, at: String, out: &mut Secrets) {
    match (ty, v) {
        (Ty::Obj(fields), Value::Object(m)) => {
            for f in fields.iter() {
                let path = format!("{at}/{}", escape(f.name));
                if f.acc == Acc::Wo {
                    if let Some(x) = m.remove(f.name) {
                        out.insert(path, x);
                    }
                } else if let Some(x) = m.get_mut(f.name) {
                    take(x, &f.ty, path, out);
                }
            }
        }
        (Ty::Arr(inner), Value::Array(a)) => {
            for (i, x) in a.iter_mut().enumerate() {
                take(x, inner, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Puts secrets back into a document read from the store. A secret whose place no longer
/// exists in the document is dropped (it cannot be reached through the API either).
pub fn merge(doc: &mut Value, secrets: Secrets) {
    for (ptr, v) in secrets {
        let Some((parent, leaf)) = ptr.rsplit_once('/') else {
            continue;
        };
        let leaf = leaf.replace("~1", "/").replace("~0", "~");
        if let Some(Value::Object(m)) = doc.pointer_mut(parent) {
            m.insert(leaf, v);
        }
    }
}

/// The store key of a resource's sealed secrets.
pub fn secret_key(state_key: &str) -> String {
    format!("{SECRET_RES}{state_key}")
}

/// Seals a document's secrets for the store.
pub fn seal(sealer: &Sealer, state_key: &str, s: &Secrets) -> String {
    let key = secret_key(state_key);
    sealer.seal(&key, Value::Object(s.clone()).to_string().as_bytes())
}

/// Opens a resource's sealed secrets.
pub fn unseal(sealer: &Sealer, state_key: &str, sealed: &str) -> Result<Secrets, String> {
    let plain = sealer.open(&secret_key(state_key), sealed)?;
    match serde_json::from_slice(&plain) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(format!("{state_key}: sealed secrets are not a JSON object")),
    }
}

/// The store ops for one committed change: the document without its secrets under
/// `res_key`, and its sealed secrets beside it, rewritten only when they changed (each
/// rewrite costs a WAL truncation in the store).
pub fn store_ops(
    sealer: &Sealer,
    state_key: &str,
    res_key: String,
    old: Option<&Value>,
    new: Option<&Value>,
) -> Vec<Op> {
    let sk = secret_key(state_key);
    match new {
        None => vec![Op::Delete { key: res_key }, Op::Delete { key: sk }],
        Some(v) if schema_of(state_key).is_none() => vec![Op::Put {
            key: res_key,
            value: v.to_string(),
        }],
        Some(v) => {
            let mut public = v.clone();
            let secrets = split(state_key, &mut public);
            let before = old.map(|o| secrets_of(state_key, o)).unwrap_or_default();
            let mut ops = vec![Op::Put {
                key: res_key,
                value: public.to_string(),
            }];
            if secrets != before || old.is_none() {
                ops.push(if secrets.is_empty() {
                    Op::Delete { key: sk }
                } else {
                    Op::Put {
                        key: sk,
                        value: seal(sealer, state_key, &secrets),
                    }
                });
            }
            ops
        }
    }
}

/// Reads every document under `res_prefix` with its secrets put back (the engine's state at
/// start). Documents written by an older vnet still carry their secrets inline: they are
/// moved beside the document now, and the whole history (which holds them in plain text) is
/// compacted away.
pub fn load(
    store: &dyn store::Store,
    sealer: &Sealer,
    res_prefix: &str,
) -> Result<Vec<model::Change>, BoxError> {
    let (_, docs) = store.range(res_prefix)?;
    let (_, sealed) = store.range(SECRET_RES)?;
    let sealed: std::collections::HashMap<String, String> = sealed.into_iter().collect();
    let mut changes = Vec::with_capacity(docs.len());
    let mut migrate = Vec::new();
    for (k, v) in docs {
        let key = k[res_prefix.len()..].to_string();
        let mut doc: Value = serde_json::from_str(&v)?;
        let inline = split(&key, &mut doc);
        if !inline.is_empty() {
            migrate.push(Op::Put {
                key: k.clone(),
                value: doc.to_string(),
            });
            migrate.push(Op::Put {
                key: secret_key(&key),
                value: seal(sealer, &key, &inline),
            });
            merge(&mut doc, inline);
        } else if let Some(s) = sealed.get(&secret_key(&key)) {
            merge(&mut doc, unseal(sealer, &key, s)?);
        }
        changes.push((key, Some(doc)));
    }
    if !migrate.is_empty() {
        let rev = store.commit(&migrate)?;
        store.compact(rev)?;
        tracing::info!(
            documents = migrate.len() / 2,
            "moved inline secrets out of the resource documents and compacted the history that held them"
        );
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CONN: &str =
        "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/connections/c";
    const GW: &str =
        "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/virtualnetworkgateways/g";

    #[test]
    fn split_and_merge_round_trip_for_every_write_only_field() {
        let doc = json!({"name": "c", "properties": {"connectionType": "IPsec", "sharedKey": "k1", "authorizationKey": "a1"}});
        let mut public = doc.clone();
        let s = split(CONN, &mut public);
        assert_eq!(s.len(), 2, "{s:?}");
        assert!(!public.to_string().contains("k1") && !public.to_string().contains("a1"));
        let mut back = public.clone();
        merge(&mut back, s);
        assert_eq!(back, doc);

        let gw = json!({"name": "g", "properties": {"vpnClientConfiguration": {
            "radiusServerSecret": "r0",
            "radiusServers": [{"radiusServerAddress": "10.0.0.1", "radiusServerSecret": "r1"},
                              {"radiusServerAddress": "10.0.0.2", "radiusServerSecret": "r2"}]}}});
        let mut public = gw.clone();
        let s = split(GW, &mut public);
        assert_eq!(s.len(), 3, "{s:?}");
        let text = public.to_string();
        for r in ["r0", "r1", "r2"] {
            assert!(!text.contains(&format!("\"{r}\"")), "{text}");
        }
        let mut back = public;
        merge(&mut back, s);
        assert_eq!(back, gw);
    }

    #[test]
    fn sealed_values_are_bound_to_their_key_and_their_sealer() {
        let a = Sealer::ephemeral();
        let sealed = a.seal("secret/res/x", b"topsecret");
        assert!(!sealed.contains("topsecret"));
        assert_eq!(a.open("secret/res/x", &sealed).unwrap(), b"topsecret");
        // Moved to another resource's row: refused.
        assert!(a.open("secret/res/y", &sealed).is_err());
        // Another data directory's key: refused.
        assert!(Sealer::ephemeral().open("secret/res/x", &sealed).is_err());
        // Tampered: refused.
        let mut t = sealed.clone().into_bytes();
        let last = t.len() - 2;
        t[last] = if t[last] == b'A' { b'B' } else { b'A' };
        assert!(a
            .open("secret/res/x", &String::from_utf8(t).unwrap())
            .is_err());
        // Two seals of one value differ (fresh nonce).
        assert_ne!(sealed, a.seal("secret/res/x", b"topsecret"));
    }

    #[test]
    fn unchanged_secrets_are_not_rewritten() {
        let s = Sealer::ephemeral();
        let d1 = json!({"properties": {"sharedKey": "k", "routingWeight": 1}});
        let d2 = json!({"properties": {"sharedKey": "k", "routingWeight": 2}});
        let ops = store_ops(&s, CONN, "res/x".into(), Some(&d1), Some(&d2));
        assert_eq!(ops.len(), 1, "{ops:?}");
        let d3 = json!({"properties": {"sharedKey": "k2", "routingWeight": 2}});
        let ops = store_ops(&s, CONN, "res/x".into(), Some(&d2), Some(&d3));
        assert_eq!(ops.len(), 2);
        for op in &ops {
            if let Op::Put { value, .. } = op {
                assert!(!value.contains("k2"), "{value}");
            }
        }
    }
}
