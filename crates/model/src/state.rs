//! The desired state in memory: every stored document by key, an index of references between
//! documents, and transactions that stage changes over a snapshot.
//!
//! The store is the source of truth on disk; this is the same content, indexed for the checks
//! Azure makes on every write ("in use", "already peered", "address taken").

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
            }
            if let Some(v) = v {
                for r in references(k, v) {
                    self.refs.entry(r).or_default().insert(k.clone());
                }
                self.docs.insert(k.clone(), v.clone());
            }
        }
    }
}

/// A transaction: reads see the snapshot plus the changes staged so far.
pub struct Tx<'a> {
    base: &'a State,
    staged: BTreeMap<String, Option<Value>>,
    order: Vec<String>,
}

impl<'a> Tx<'a> {
    pub fn new(base: &'a State) -> Self {
        Tx {
            base,
            staged: BTreeMap::new(),
            order: Vec::new(),
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
        self.staged.insert(key, Some(v));
    }
    pub fn delete(&mut self, key: &str) {
        if self.get(key).is_none() {
            return;
        }
        if !self.staged.contains_key(key) {
            self.order.push(key.to_string());
        }
        self.staged.insert(key.to_string(), None);
    }
    /// Documents under `prefix` as the transaction sees them, in key order.
    pub fn scan(&self, prefix: &str) -> Vec<(String, Value)> {
        let mut out: BTreeMap<String, Value> = self
            .base
            .scan(prefix)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in self
            .staged
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            match v {
                Some(v) => {
                    out.insert(k.clone(), v.clone());
                }
                None => {
                    out.remove(k);
                }
            }
        }
        out.into_iter().collect()
    }
    /// Keys of the documents that reference `key`, as the transaction sees them.
    pub fn referrers(&self, key: &str) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self
            .base
            .referrers(key)
            .filter(|r| !self.staged.contains_key(*r))
            .cloned()
            .collect();
        for (k, v) in &self.staged {
            if let Some(v) = v {
                if references(k, v).contains(key) {
                    out.insert(k.clone());
                }
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
