//! Linked authorization: the other resources a write links its resource to, and the action
//! each link needs on them (Azure's `LinkedAuthorizationFailed` check).
//!
//! The list comes from the cleaned document and the kind's schema, never from the raw body, so
//! the authorizer and the model read one spelling of one document. Two sources make it up:
//!
//! * reference fields declared in the schema ([`Ty::Ref`]) carry their action (joining a
//!   subnet, peering a VNet, …);
//! * any other string in the document that names a resource by id (inside a free-form field,
//!   or a string field such as a NAT rule's `ipConfigurationId`) is a link too, needing
//!   `…/join/action` on the resource type it names. A reference field added to a schema later
//!   is therefore covered before anyone remembers to declare it.
//!
//! Tags are not links (labels the model never follows).
//! Ids at or below the written resource's own id (a NIC's IP configurations, a VNet's inline
//! subnets) are not links: they are the resource itself.

use crate::id::Kind;
use crate::schema::Ty;
use crate::schemas;
use serde_json::Value;

/// One link of a write: `action` is needed on `scope`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Linked {
    /// The RBAC action, e.g. `Microsoft.Network/virtualNetworks/peer/action`.
    pub action: String,
    /// The referenced resource's id as written (the scope the action is checked at).
    pub scope: String,
    /// Where in the document it was found (`properties.ipConfigurations[0].properties.subnet`).
    pub path: String,
}

/// The links of a cleaned document of `kind` whose own id is `own_id`, in document order,
/// without repeats of the same (action, scope).
pub fn linked(kind: Kind, own_id: &str, cleaned: &Value) -> Vec<Linked> {
    let own = own_id.to_ascii_lowercase();
    let mut out = vec![];
    walk(cleaned, schemas::of(kind), "", &own, &mut out);
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|l| seen.insert((l.action.clone(), l.scope.to_ascii_lowercase())));
    out
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn walk(v: &Value, ty: &Ty, path: &str, own: &str, out: &mut Vec<Linked>) {
    match (ty, v) {
        (Ty::Ref(link), Value::Object(m)) => {
            if let Some(id) = m.get("id").and_then(Value::as_str) {
                if !is_own(id, own) {
                    out.push(Linked {
                        action: link.action.to_string(),
                        scope: id.to_string(),
                        path: path.to_string(),
                    });
                }
            }
        }
        (Ty::Obj(fields), Value::Object(m)) => {
            for (k, x) in m {
                match fields.iter().find(|f| f.name == k) {
                    Some(f) => walk(x, &f.ty, &join(path, k), own, out),
                    None => free(x, &join(path, k), own, out),
                }
            }
        }
        (Ty::Arr(inner), Value::Array(a)) => {
            for (i, x) in a.iter().enumerate() {
                walk(x, inner, &format!("{path}[{i}]"), own, out);
            }
        }
        // Tags are labels the model never follows, whatever they say.
        (Ty::StrMap, _) => {}
        _ => free(v, path, own, out),
    }
}

/// Free-form content: every string naming a resource is a link.
fn free(v: &Value, path: &str, own: &str, out: &mut Vec<Linked>) {
    match v {
        Value::String(s) => {
            if let Some(action) = derived_action(s) {
                if !is_own(s, own) {
                    out.push(Linked {
                        action,
                        scope: s.clone(),
                        path: path.to_string(),
                    });
                }
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                // A map keyed by resource ids (a managed identity's
                // `userAssignedIdentities`) links to its keys.
                if let Some(action) = derived_action(k).filter(|_| !is_own(k, own)) {
                    out.push(Linked {
                        action,
                        scope: k.clone(),
                        path: join(path, k),
                    });
                }
                free(x, &join(path, k), own, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                free(x, &format!("{path}[{i}]"), own, out);
            }
        }
        _ => {}
    }
}

/// The resources a stored document's `properties` name (any string or map key that is a
/// resource id, outside the document's own id): what the state indexes as references for its
/// "in use" checks. The same walk as the free-form part of [`linked`], so that nothing the
/// index counts escaped the authorizer.
pub fn referenced_ids(props: &Value, own_id: &str) -> Vec<String> {
    let mut out = vec![];
    free(props, "", &own_id.to_ascii_lowercase(), &mut out);
    out.into_iter().map(|l| l.scope).collect()
}

/// Reading the resource `id` (`…/<type>/read` there), if it names one.
pub fn read_link(id: &str) -> Option<Linked> {
    let action = derived_action(id)?;
    let base = action.strip_suffix("/join/action").unwrap_or(&action);
    Some(Linked {
        action: format!("{base}/read"),
        scope: id.to_string(),
        path: String::new(),
    })
}

/// The resources an action's body names (a Network Watcher request's `targetResourceId`),
/// each needing `…/<type>/read` there.
pub fn read_links(body: &Value, own_id: &str) -> Vec<Linked> {
    let mut out = vec![];
    free(body, "", &own_id.to_ascii_lowercase(), &mut out);
    for l in &mut out {
        if let Some(base) = l.action.strip_suffix("/join/action") {
            l.action = format!("{base}/read");
        }
    }
    out
}

/// Whether `id` is the written resource itself or lies below it.
fn is_own(id: &str, own: &str) -> bool {
    let l = id.trim_end_matches('/').to_ascii_lowercase();
    l == own || (l.starts_with(own) && l.as_bytes().get(own.len()) == Some(&b'/'))
}

/// Whether a string names a resource (`/subscriptions/…/providers/NS/type/name…`); if so, the
/// `join` action on its type: `Microsoft.Network/virtualNetworks/subnets/join/action` for a
/// subnet id. Strings that only look like the start of an id (a subscription, a group) are
/// links too, with the `Microsoft.Resources` action on them, so that nothing naming a scope
/// escapes the check.
pub fn derived_action(s: &str) -> Option<String> {
    // Most strings are not ids: answer those without splitting them.
    const P: &[u8] = b"/subscriptions/";
    if s.len() <= P.len() || !s.as_bytes()[..P.len()].eq_ignore_ascii_case(P) {
        return None;
    }
    let segs: Vec<&str> = s.trim_matches('/').split('/').collect();
    if !s.starts_with('/') || segs.len() < 2 || !segs[0].eq_ignore_ascii_case("subscriptions") {
        return None;
    }
    let Some(p) = segs
        .iter()
        .rposition(|x| x.eq_ignore_ascii_case("providers"))
    else {
        return Some("Microsoft.Resources/subscriptions/resourceGroups/join/action".into());
    };
    let rest = &segs[p + 1..];
    if rest.len() < 3 {
        return Some("Microsoft.Resources/subscriptions/resourceGroups/join/action".into());
    }
    let mut action = rest[0].to_string();
    for t in rest[1..].iter().step_by(2) {
        action.push('/');
        action.push_str(t);
    }
    action.push_str("/join/action");
    Some(action)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NIC: &str =
        "/subscriptions/s/resourceGroups/a/providers/Microsoft.Network/networkInterfaces/n";
    const SUBNET: &str =
        "/subscriptions/s/resourceGroups/b/providers/Microsoft.Network/virtualNetworks/v/subnets/x";

    fn clean(kind: Kind, v: Value) -> Value {
        crate::schema::clean(&v, schemas::of(kind), "").unwrap()
    }

    #[test]
    fn declared_references_carry_their_action() {
        let d = clean(
            Kind::NetworkInterface,
            json!({"location": "l", "properties": {"ipConfigurations": [{"name": "c", "id": format!("{NIC}/ipConfigurations/c"),
                "properties": {"subnet": {"ID": SUBNET, "name": "ignored"}, "publicIPAddress": {"id": "/subscriptions/s/resourceGroups/c/providers/Microsoft.Network/publicIPAddresses/p"}}}]}}),
        );
        let l = linked(Kind::NetworkInterface, NIC, &d);
        assert_eq!(
            l.iter().map(|l| (l.action.as_str(), l.scope.as_str())).collect::<Vec<_>>(),
            vec![
                ("Microsoft.Network/virtualNetworks/subnets/join/action", SUBNET),
                ("Microsoft.Network/publicIPAddresses/join/action", "/subscriptions/s/resourceGroups/c/providers/Microsoft.Network/publicIPAddresses/p"),
            ]
        );
        assert_eq!(
            l[0].path,
            "properties.ipConfigurations[0].properties.subnet"
        );
    }

    #[test]
    fn free_form_ids_are_links_and_own_ids_are_not() {
        let d = clean(
            Kind::NetworkInterface,
            json!({"location": "l", "properties": {
                "privateLinkService": {"x": [{"deep": {"Id": "/subscriptions/s/resourceGroups/z/providers/Microsoft.Network/applicationGateways/g/backendAddressPools/p"}}]},
                "ipConfigurations": [{"name": "c", "properties": {"gatewayLoadBalancer": {"id": format!("{NIC}/ipConfigurations/c")}}}]}}),
        );
        let l = linked(Kind::NetworkInterface, NIC, &d);
        assert_eq!(l.len(), 1, "{l:?}");
        assert_eq!(
            l[0].action,
            "Microsoft.Network/applicationGateways/backendAddressPools/join/action"
        );
    }

    #[test]
    fn derived_actions() {
        assert_eq!(derived_action("10.0.0.0/8"), None);
        assert_eq!(derived_action("subscriptions/x"), None);
        assert_eq!(
            derived_action("/subscriptions/s/resourceGroups/g").as_deref(),
            Some("Microsoft.Resources/subscriptions/resourceGroups/join/action")
        );
        assert_eq!(
            derived_action(SUBNET).as_deref(),
            Some("Microsoft.Network/virtualNetworks/subnets/join/action")
        );
    }

    /// Every reference field of every schema, found by walking the schemas themselves: a
    /// document setting just that field to a foreign id yields exactly one link, with the
    /// field's declared action. A reference field added later is tested here without anyone
    /// writing a case for it.
    #[test]
    fn every_declared_reference_is_a_link() {
        use crate::schema::Ty;
        fn refs(
            ty: &'static Ty,
            path: Vec<(&'static str, bool)>,
            out: &mut Vec<(Vec<(&'static str, bool)>, &'static str)>,
        ) {
            match ty {
                Ty::Ref(l) => out.push((path, l.action)),
                Ty::Arr(inner) => {
                    let mut p = path;
                    if let Some(last) = p.last_mut() {
                        last.1 = true;
                    }
                    refs(inner, p, out)
                }
                Ty::Obj(fields) => {
                    for f in fields.iter().filter(|f| f.acc != crate::schema::Acc::Ro) {
                        let mut p = path.clone();
                        p.push((f.name, false));
                        refs(&f.ty, p, out);
                    }
                }
                _ => {}
            }
        }
        fn build(path: &[(&str, bool)], leaf: Value) -> Value {
            match path.split_first() {
                None => leaf,
                Some(((name, arr), rest)) => {
                    let inner = build(rest, leaf);
                    let inner = if *arr { json!([inner]) } else { inner };
                    json!({ *name: inner })
                }
            }
        }
        let foreign = "/subscriptions/f/resourceGroups/other/providers/Microsoft.Network/things/t";
        let mut total = 0;
        for kind in [
            Kind::VirtualNetwork,
            Kind::Subnet,
            Kind::Peering,
            Kind::NetworkInterface,
            Kind::RouteTable,
            Kind::Route,
            Kind::PublicIp,
            Kind::VirtualNetworkGateway,
            Kind::LocalNetworkGateway,
            Kind::Connection,
            Kind::ResourceGroup,
            Kind::NetworkWatcher,
        ] {
            let mut found = vec![];
            refs(schemas::of(kind), vec![], &mut found);
            for (path, action) in found {
                let doc = build(&path, json!({"id": foreign}));
                let d = crate::schema::clean(&doc, schemas::of(kind), "").unwrap();
                let l = linked(
                    kind,
                    "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/x/y",
                    &d,
                );
                assert_eq!(l.len(), 1, "{kind:?} {path:?}: {l:?}");
                assert_eq!(
                    (l[0].action.as_str(), l[0].scope.as_str()),
                    (action, foreign),
                    "{kind:?} {path:?}"
                );
                total += 1;
            }
        }
        assert!(total >= 25, "only {total} reference fields found");
    }
}
