//! The desired state in memory: every stored document by key, an index of references between
//! documents, and transactions that stage changes over a snapshot.
//!
//! The store is the source of truth on disk; this is the same content, indexed for the checks
//! Azure makes on every write ("in use", "already peered", "address taken").

use crate::id::{Kind, ResourceId};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

/// One staged change: a document put (Some) or deleted (None).
pub type Change = (String, Option<Value>);

/// All documents, by lower-cased id.
#[derive(Default, Clone)]
pub struct State {
    docs: BTreeMap<String, Value>,
    /// target key → keys of the documents that reference it.
    refs: HashMap<String, BTreeSet<String>>,
    /// Top-level resources by kind, subscription and region: Azure's per-subscription-per-region
    /// limits (VNets, route tables, NICs) and the public IP pool are answered from this index
    /// instead of a scan of every document on every write.
    tracked: HashMap<Tracked, BTreeSet<String>>,
}

/// Where a top-level resource counts against Azure's per-subscription-per-region limits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tracked {
    pub kind: Kind,
    /// Lower-cased.
    pub subscription: String,
    /// Normalised (`westeurope`).
    pub location: String,
}

/// The [`Tracked`] slot of a stored document, if it is a top-level resource (not a group).
pub fn tracked_of(key: &str, doc: &Value) -> Option<Tracked> {
    // /subscriptions/s/resourcegroups/rg/providers/microsoft.network/T/n: 8 slashes. Children
    // have more and groups fewer; checking that first keeps the common case free of parsing.
    if key.bytes().filter(|b| *b == b'/').count() != 8 {
        return None;
    }
    let rid = ResourceId::parse(key).ok()?;
    if rid.kind.parent().is_some() || rid.kind == Kind::ResourceGroup {
        return None;
    }
    Some(Tracked {
        kind: rid.kind,
        subscription: rid.subscription.to_ascii_lowercase(),
        location: doc
            .get("location")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    })
}

/// Ids referenced by a document: every resource id inside its `properties` that is not one of
/// the document's own sub-objects ([`crate::links::referenced_ids`]), cut to the stored
/// document it names.
pub fn references(key: &str, doc: &Value) -> BTreeSet<String> {
    let Some(p) = doc.get("properties") else {
        return BTreeSet::new();
    };
    crate::links::referenced_ids(p, key)
        .iter()
        .map(|id| trim_to_resource(id.trim_end_matches('/').to_ascii_lowercase().as_str()))
        .collect()
}

/// Cuts an id below a child resource's id (e.g. a NIC ip configuration → the NIC) so that
/// references point at stored documents. Subnets, peerings and routes are documents of their
/// own and are kept.
pub fn trim_to_resource(l: &str) -> String {
    let parts: Vec<&str> = l.split('/').collect();
    // /subscriptions/s/resourcegroups/rg/providers/microsoft.network/T/n[/C/c[...]]
    if parts.len() > 11 {
        return parts[..11].join("/");
    }
    if parts.len() == 11 && !matches!(parts[9], "subnets" | "virtualnetworkpeerings" | "routes") {
        return parts[..9].join("/");
    }
    l.to_string()
}

impl State {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn len(&self) -> usize {
        self.docs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.docs.get(key)
    }
    /// Documents whose key starts with `prefix`, in key order.
    pub fn scan<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Value)> + 'a {
        self.docs
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
    }
    pub fn referrers(&self, key: &str) -> impl Iterator<Item = &String> {
        self.refs.get(key).into_iter().flatten()
    }
    /// Keys of the top-level resources in slot `t`.
    pub fn tracked(&self, t: &Tracked) -> impl Iterator<Item = &String> {
        self.tracked.get(t).into_iter().flatten()
    }
    /// Number of top-level resources in slot `t`.
    pub fn tracked_count(&self, t: &Tracked) -> usize {
        self.tracked.get(t).map_or(0, BTreeSet::len)
    }
    /// Keys of every top-level resource of `kind`, in every subscription and region.
    pub fn tracked_of_kind(&self, kind: Kind) -> impl Iterator<Item = &String> {
        self.tracked
            .iter()
            .filter(move |(t, _)| t.kind == kind)
            .flat_map(|(_, s)| s.iter())
    }
    /// Applies committed changes.
    pub fn apply(&mut self, changes: &[Change]) {
        for (k, v) in changes {
            if let Some(old) = self.docs.remove(k) {
                for r in references(k, &old) {
                    if let Some(set) = self.refs.get_mut(&r) {
                        set.remove(k);
                        if set.is_empty() {
                            self.refs.remove(&r);
                        }
                    }
                }
                if let Some(t) = tracked_of(k, &old) {
                    if let Some(set) = self.tracked.get_mut(&t) {
                        set.remove(k);
                        if set.is_empty() {
                            self.tracked.remove(&t);
                        }
                    }
                }
            }
            if let Some(v) = v {
                for r in references(k, v) {
                    self.refs.entry(r).or_default().insert(k.clone());
                }
                if let Some(t) = tracked_of(k, v) {
                    self.tracked.entry(t).or_default().insert(k.clone());
                }
                self.docs.insert(k.clone(), v.clone());
            }
        }
    }
}

/// A transaction: reads see the snapshot plus the changes staged so far.
///
/// The transaction keeps its own reference index of the staged documents, so that
/// [`Tx::referrers`] costs the size of its answer rather than a walk over every staged document
/// (a VNet PUT stages thousands of subnets and asks for referrers of each).
pub struct Tx<'a> {
    base: &'a State,
    staged: BTreeMap<String, Option<Value>>,
    order: Vec<String>,
    /// target → staged keys whose staged version references it.
    staged_refs: HashMap<String, BTreeSet<String>>,
    /// staged key → the targets its staged version references (to undo on the next put).
    staged_out: HashMap<String, BTreeSet<String>>,
    /// Staged top-level keys → their slot in the staged version (None: deleted or not tracked).
    staged_tracked: HashMap<String, Option<Tracked>>,
}

impl<'a> Tx<'a> {
    pub fn new(base: &'a State) -> Self {
        Tx {
            base,
            staged: BTreeMap::new(),
            order: Vec::new(),
            staged_refs: HashMap::new(),
            staged_out: HashMap::new(),
            staged_tracked: HashMap::new(),
        }
    }

    /// Replaces the staged reference entries of `key` with those of `v`.
    fn reindex(&mut self, key: &str, v: Option<&Value>) {
        if let Some(old) = self.staged_out.remove(key) {
            for t in old {
                if let Some(set) = self.staged_refs.get_mut(&t) {
                    set.remove(key);
                    if set.is_empty() {
                        self.staged_refs.remove(&t);
                    }
                }
            }
        }
        if let Some(v) = v {
            let out = references(key, v);
            for t in &out {
                self.staged_refs
                    .entry(t.clone())
                    .or_default()
                    .insert(key.to_string());
            }
            self.staged_out.insert(key.to_string(), out);
        }
        if key.bytes().filter(|b| *b == b'/').count() == 8 {
            self.staged_tracked
                .insert(key.to_string(), v.and_then(|v| tracked_of(key, v)));
        }
    }
    pub fn base(&self) -> &'a State {
        self.base
    }
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self.staged.get(key) {
            Some(v) => v.as_ref(),
            None => self.base.get(key),
        }
    }
    pub fn exists(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
    pub fn put(&mut self, key: String, v: Value) {
        if !self.staged.contains_key(&key) {
            self.order.push(key.clone());
        }
        self.reindex(&key, Some(&v));
        self.staged.insert(key, Some(v));
    }
    pub fn delete(&mut self, key: &str) {
        if self.get(key).is_none() {
            return;
        }
        if !self.staged.contains_key(key) {
            self.order.push(key.to_string());
        }
        self.reindex(key, None);
        self.staged.insert(key.to_string(), None);
    }
    /// Documents under `prefix` as the transaction sees them, in key order, borrowed: the
    /// snapshot and the staged changes merged in one pass, nothing cloned.
    pub fn scan_refs(&self, prefix: &str) -> Vec<(&str, &Value)> {
        let mut base = self
            .base
            .docs
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .peekable();
        let mut staged = self
            .staged
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .peekable();
        let mut out = Vec::new();
        loop {
            // Which side holds the next key; on a tie the staged version shadows the base one.
            let (take_staged, shadowed) = match (base.peek(), staged.peek()) {
                (None, None) => break,
                (Some(_), None) => (false, false),
                (None, Some(_)) => (true, false),
                (Some((bk, _)), Some((sk, _))) => (sk <= bk, sk == bk),
            };
            if shadowed {
                base.next();
            }
            if take_staged {
                let (k, v) = staged.next().expect("peeked");
                if let Some(v) = v {
                    out.push((k.as_str(), v));
                }
            } else {
                let (k, v) = base.next().expect("peeked");
                out.push((k.as_str(), v));
            }
        }
        out
    }
    /// Documents under `prefix` as the transaction sees them, in key order.
    pub fn scan(&self, prefix: &str) -> Vec<(String, Value)> {
        self.scan_refs(prefix)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }
    /// Keys under `prefix` as the transaction sees them, in key order.
    pub fn scan_keys(&self, prefix: &str) -> Vec<String> {
        self.scan_refs(prefix)
            .into_iter()
            .map(|(k, _)| k.to_string())
            .collect()
    }
    /// Number of documents under `prefix` as the transaction sees them.
    pub fn count(&self, prefix: &str) -> usize {
        self.scan_refs(prefix).len()
    }
    /// Keys of the documents that reference `key`, as the transaction sees them.
    pub fn referrers(&self, key: &str) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self
            .base
            .referrers(key)
            .filter(|r| !self.staged.contains_key(*r))
            .cloned()
            .collect();
        if let Some(s) = self.staged_refs.get(key) {
            out.extend(s.iter().cloned());
        }
        out
    }
    /// Number of top-level resources in slot `t`, as the transaction sees them.
    pub fn tracked_count(&self, t: &Tracked) -> usize {
        let mut n = self.base.tracked_count(t);
        for (k, now) in &self.staged_tracked {
            let before = self.base.get(k).and_then(|d| tracked_of(k, d));
            match (before.as_ref() == Some(t), now.as_ref() == Some(t)) {
                (true, false) => n -= 1,
                (false, true) => n += 1,
                _ => {}
            }
        }
        n
    }
    /// Keys of every top-level resource of `kind`, as the transaction sees them.
    pub fn tracked_of_kind(&self, kind: Kind) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self
            .base
            .tracked_of_kind(kind)
            .filter(|k| !self.staged_tracked.contains_key(*k))
            .cloned()
            .collect();
        for (k, now) in &self.staged_tracked {
            if now.as_ref().is_some_and(|t| t.kind == kind) {
                out.insert(k.clone());
            }
        }
        out
    }
    /// The staged changes in the order they were first made.
    pub fn into_changes(self) -> Vec<Change> {
        let mut staged = self.staged;
        self.order
            .into_iter()
            .filter_map(|k| staged.remove(&k).map(|v| (k, v)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_and_index() {
        let nic =
            "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/networkinterfaces/n";
        let doc = json!({"id": "x", "properties": {"ipConfigurations": [{"id": format!("{nic}/ipConfigurations/a"), "properties": {"subnet": {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/default"}}}]}});
        let r = references(nic, &doc);
        assert_eq!(r.len(), 1);
        let sn = "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/virtualnetworks/v/subnets/default";
        assert!(r.contains(sn));
        let mut st = State::new();
        st.apply(&[(nic.to_string(), Some(doc))]);
        assert_eq!(st.referrers(sn).count(), 1);
        let mut tx = Tx::new(&st);
        tx.delete(nic);
        assert!(tx.referrers(sn).is_empty());
        let ch = tx.into_changes();
        st.apply(&ch);
        assert_eq!(st.referrers(sn).count(), 0);
        assert!(st.is_empty());
    }

    #[test]
    fn ip_configuration_refs_trim_to_the_nic() {
        let pip =
            "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/publicipaddresses/p";
        let doc = json!({"properties": {"ipConfiguration": {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/n/ipConfigurations/c"}}});
        let r = references(pip, &doc);
        assert!(r.contains(
            "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/networkinterfaces/n"
        ));
    }
}
