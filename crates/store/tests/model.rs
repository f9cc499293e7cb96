//! Property test: the store behaves like a `BTreeMap` plus a revision counter, and its event
//! log is a complete description of the state.

use std::collections::{BTreeMap, HashSet};

use proptest::prelude::*;
use store::{Event, EventKind, Op, SqliteStore, Store, StoreError};

/// Few, prefix-related keys, so that puts hit existing keys, deletes hit present and missing
/// keys, and range prefixes cut through the middle of the key space.
const KEYS: &[&str] = &[
    "a", "a/", "a/b", "a/b/c", "a/c", "ab", "b", "b/x", "res/1", "res/10", "res/2", "é", "z",
];
const PREFIXES: &[&str] = &[
    "", "a", "a/", "a/b", "ab", "b", "b/x/", "c", "res/", "res/1", "é", "zz",
];

fn op() -> impl Strategy<Value = Op> {
    let key = proptest::sample::select(KEYS).prop_map(str::to_string);
    prop_oneof![
        3 => (key.clone(), "[a-z0-9{}\":]{0,12}").prop_map(|(key, value)| Op::Put { key, value }),
        2 => key.prop_map(|key| Op::Delete { key }),
    ]
}

/// What the model predicts for a commit: `None` if it must be rejected, else the events.
fn model_commit(model: &mut BTreeMap<String, String>, rev: u64, ops: &[Op]) -> Option<Vec<Event>> {
    let mut seen = HashSet::new();
    if !ops.iter().all(|op| seen.insert(op.key())) {
        return None; // a key twice in one commit
    }
    let mut events = Vec::new();
    for op in ops {
        match op {
            Op::Put { key, value } => {
                model.insert(key.clone(), value.clone());
                events.push(Event {
                    rev: rev + 1,
                    key: key.clone(),
                    kind: EventKind::Put,
                    value: Some(value.clone()),
                });
            }
            Op::Delete { key } => {
                if model.remove(key).is_some() {
                    events.push(Event {
                        rev: rev + 1,
                        key: key.clone(),
                        kind: EventKind::Delete,
                        value: None,
                    });
                }
            }
        }
    }
    Some(events)
}

fn replay(events: &[Event]) -> BTreeMap<String, String> {
    let mut state = BTreeMap::new();
    for e in events {
        match e.kind {
            EventKind::Put => {
                state.insert(e.key.clone(), e.value.clone().expect("put carries a value"));
            }
            EventKind::Delete => {
                assert!(e.value.is_none());
                state.remove(&e.key);
            }
        }
    }
    state
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_btreemap_model(
        commits in proptest::collection::vec(proptest::collection::vec(op(), 0..5), 0..40),
        page in 1usize..6,
    ) {
        let store = SqliteStore::open_in_memory().unwrap();
        let mut model = BTreeMap::new();
        let mut rev = 0u64;
        let mut expected_log = Vec::new();

        for ops in &commits {
            let before = model.clone();
            match (model_commit(&mut model, rev, ops), store.commit(ops)) {
                (None, Err(StoreError::InvalidArgument(_))) => {
                    prop_assert_eq!(&model, &before);
                }
                (Some(events), Ok(got)) => {
                    if !events.is_empty() {
                        rev += 1;
                    }
                    prop_assert_eq!(got, rev);
                    expected_log.extend(events);
                }
                (want, got) => prop_assert!(false, "ops {:?}: model {:?}, store {:?}", ops, want, got),
            }

            prop_assert_eq!(store.revision().unwrap(), rev);
            for key in KEYS {
                prop_assert_eq!(store.get(key).unwrap(), model.get(*key).cloned(), "get {}", key);
            }
            for prefix in PREFIXES {
                let want: Vec<(String, String)> = model
                    .iter()
                    .filter(|(k, _)| k.starts_with(prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                prop_assert_eq!(store.range(prefix).unwrap(), (rev, want), "range {:?}", prefix);
            }
        }

        // The log is exactly what the model predicted, and replaying it gives the state.
        let log = store.events_since(0, usize::MAX).unwrap();
        prop_assert_eq!(&log, &expected_log);
        prop_assert_eq!(replay(&log), model.clone());

        // Paging through the log with a small limit reads the same events.
        let mut paged = Vec::new();
        let mut after = 0;
        loop {
            let batch = store.events_since(after, page).unwrap();
            let Some(last) = batch.last() else { break };
            after = last.rev;
            paged.extend(batch);
        }
        prop_assert_eq!(&paged, &log);

        // Replaying from any revision on top of a snapshot at that revision gives the state.
        let mid = rev / 2;
        let snapshot = replay(&log.iter().filter(|e| e.rev <= mid).cloned().collect::<Vec<_>>());
        let mut state = snapshot;
        for e in store.events_since(mid, usize::MAX).unwrap() {
            prop_assert!(e.rev > mid);
            match e.kind {
                EventKind::Put => { state.insert(e.key, e.value.unwrap()); }
                EventKind::Delete => { state.remove(&e.key); }
            }
        }
        prop_assert_eq!(state, model);
    }
}
