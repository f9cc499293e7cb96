//! Conformance (issue #6): Azure's official REST examples for Microsoft.Network, replayed
//! against vnet.
//!
//! For every example file under `../shared/conformance/arm-examples` (next to the repository)
//! the harness starts a fresh server, creates what the example assumes exists
//! (`conformance/world.rs`), sends the example's request (method, path, query and body of its
//! operation, `conformance/ops.rs`), follows a long-running operation to its end as a client
//! does, and compares the answer with the example's (`conformance/compare.rs`): the status code
//! must be one the example lists, and every field of the example's body must be in vnet's with
//! the same type and value — apart from the deliberate differences listed, with a reason each,
//! in `conformance/differences.json` (explained in docs/conformance-differences.md). Examples
//! of operations vnet does not implement are listed there as not applicable.
//!
//! The test prints a report and a last line `conformance: N passed, M failed[, K skipped]`,
//! and fails when any example that is not listed as not applicable fails.
//! `CONFORMANCE_ONLY=<file stem>[,<file stem>…]` runs only those examples.

mod common;
#[path = "conformance/compare.rs"]
mod compare;
#[path = "conformance/ops.rs"]
mod ops;
#[path = "conformance/world.rs"]
mod world;

use api::routes::AppOptions;
use common::Server;
use compare::{Differences, Scope};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The examples live in `shared/` next to the repository (CI clones the repository beside a
/// copy of it).
fn examples_dir() -> PathBuf {
    repo_root().join("../shared/conformance/arm-examples")
}

fn differences() -> Differences {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/differences.json");
    let text =
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
    Differences::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

struct Example {
    stem: String,
    version: String,
    json: Value,
}

fn load_examples() -> Vec<Example> {
    let dir = examples_dir();
    assert!(
        dir.is_dir(),
        "conformance: the Azure example files are missing: {} does not exist. The suite needs a copy of shared/ next to the repository \
         (shared/conformance/arm-examples/<api-version>/<Example>.json).",
        dir.display()
    );
    let mut out = Vec::new();
    let mut versions: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read examples dir")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.is_dir())
        .collect();
    versions.sort();
    for v in versions {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&v)
            .expect("read version dir")
            .filter_map(|e| Some(e.ok()?.path()))
            .collect();
        files.sort();
        for f in files
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "json"))
        {
            let text =
                std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", f.display()));
            out.push(Example {
                stem: f.file_stem().unwrap().to_string_lossy().into_owned(),
                version: v.file_name().unwrap().to_string_lossy().into_owned(),
                json,
            });
        }
    }
    assert!(
        !out.is_empty(),
        "conformance: no example files found in {}",
        dir.display()
    );
    out
}

/// A response: status, headers (names lower-cased), body.
struct Resp {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Option<Value>,
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn send(s: &Server, method: &str, url: &str, body: Option<&Value>) -> Resp {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut rb = s.client.request(m, url);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let r = rb.send().unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let text = r.text().unwrap_or_default();
    let body = (!text.trim().is_empty())
        .then(|| serde_json::from_str(&text).unwrap_or(Value::String(text)));
    Resp {
        status,
        headers,
        body,
    }
}

fn url(s: &Server, path: &str, query: &[(String, String)]) -> String {
    let q: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    format!("{}{path}?{}", s.base, q.join("&"))
}

fn state(b: &Option<Value>) -> &str {
    b.as_ref()
        .and_then(|b| b["properties"]["provisioningState"].as_str())
        .unwrap_or("")
}

/// Polls until `done` says so (the client's polling interval is 0: Retry-After is not waited).
fn poll(s: &Server, u: &str, done: impl Fn(&Resp) -> bool) -> Result<Resp, String> {
    let start = Instant::now();
    loop {
        let r = send(s, "GET", u, None);
        if done(&r) {
            return Ok(r);
        }
        if start.elapsed() > Duration::from_secs(10) {
            return Err(format!(
                "GET {u} did not finish in 10 s: last {} {}",
                r.status,
                r.body.map(|b| b.to_string()).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

enum Outcome {
    Pass,
    Fail(Vec<String>),
    Skip(String),
}

struct Run {
    outcome: Outcome,
    status: Option<u16>,
    notes: Vec<String>,
}

fn fail(msg: String, notes: Vec<String>) -> Run {
    Run {
        outcome: Outcome::Fail(vec![msg]),
        status: None,
        notes,
    }
}

fn run(ex: &Example, op: &ops::Op, diffs: &Differences) -> Run {
    let params = &ex.json["parameters"];
    let responses = &ex.json["responses"];
    let api = params["api-version"]
        .as_str()
        .unwrap_or("2025-07-01")
        .to_string();
    let api_q = vec![("api-version".to_string(), api.clone())];
    let s = Server::start_with(AppOptions {
        provision_delay: Duration::from_millis(20),
        ..Default::default()
    });
    let setup = world::setup(op, &ex.json);
    let notes = setup.notes.clone();
    for step in &setup.steps {
        let r = send(
            &s,
            step.method,
            &url(&s, &step.path, &api_q),
            Some(&step.body),
        );
        if r.status != 200 && r.status != 201 {
            return fail(
                format!(
                    "prerequisite {} {} {} -> {} {}",
                    step.method,
                    step.path,
                    step.body,
                    r.status,
                    r.body.map(|b| b.to_string()).unwrap_or_default()
                ),
                notes,
            );
        }
        if step.wait && state(&r.body) != "Succeeded" {
            if let Err(e) = poll(&s, &url(&s, &step.path, &api_q), |r| {
                state(&r.body) == "Succeeded"
            }) {
                return fail(
                    format!("prerequisite {} never provisioned: {e}", step.path),
                    notes,
                );
            }
        }
    }

    let path = match op.path(params) {
        Ok(p) => p,
        Err(e) => return fail(e, notes),
    };
    let mut query = api_q.clone();
    for q in op.query {
        match params.get(*q) {
            Some(Value::String(v)) => query.push((q.to_string(), v.clone())),
            Some(v @ (Value::Bool(_) | Value::Number(_))) => {
                query.push((q.to_string(), v.to_string()))
            }
            _ => {}
        }
    }
    let r = send(&s, op.method, &url(&s, &path, &query), setup.body.as_ref());
    let listed: Vec<&String> = responses
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    let status = r.status.to_string();
    if !listed.contains(&&status) {
        let b = r.body.map(|b| b.to_string()).unwrap_or_default();
        return Run {
            outcome: Outcome::Fail(vec![format!(
                "{} {path}: status {} is not one the example lists ({}): {b}",
                op.method,
                r.status,
                listed
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )]),
            status: Some(r.status),
            notes,
        };
    }
    let mut problems = Vec::new();
    // Headers the example shows for this status must be there (their URLs are not compared).
    for h in responses[&status]["headers"]
        .as_object()
        .into_iter()
        .flat_map(|o| o.keys())
    {
        if !r.headers.contains_key(&h.to_ascii_lowercase()) {
            problems.push(format!("header {h} missing from the {} response", r.status));
        }
    }

    // Long-running operations, followed as azure-core does.
    let aso = r.headers.get("azure-asyncoperation").cloned();
    let location = r.headers.get("location").cloned();
    let mut final_body: Option<Value> = None;
    if r.status == 202 || aso.is_some() {
        if let Some(a) = &aso {
            match poll(&s, a, |p| {
                p.body
                    .as_ref()
                    .and_then(|b| b["status"].as_str())
                    .is_some_and(|st| {
                        ["succeeded", "failed", "canceled"]
                            .contains(&st.to_ascii_lowercase().as_str())
                    })
            }) {
                Ok(p) => {
                    let st = p
                        .body
                        .as_ref()
                        .and_then(|b| b["status"].as_str())
                        .unwrap_or("")
                        .to_string();
                    if !st.eq_ignore_ascii_case("succeeded") {
                        problems.push(format!(
                            "the operation ended {st}: {}",
                            p.body.map(|b| b.to_string()).unwrap_or_default()
                        ));
                    }
                }
                Err(e) => problems.push(e),
            }
        }
        if op.method == "PUT" || op.method == "PATCH" {
            final_body = send(&s, "GET", &url(&s, &path, &api_q), None).body;
        } else if let Some(l) = &location {
            match poll(&s, l, |p| p.status != 202) {
                Ok(p) if p.status == 200 => final_body = p.body,
                Ok(p) if p.status == 204 => {}
                Ok(p) => problems.push(format!(
                    "GET Location -> {} {}",
                    p.status,
                    p.body.map(|b| b.to_string()).unwrap_or_default()
                )),
                Err(e) => problems.push(e),
            }
        } else if aso.is_none() {
            problems.push("202 without Azure-AsyncOperation or Location".into());
        }
    }

    // The body to compare: the example's for this status, or, after a 202, the example's 200
    // body against the operation's final result.
    let (expected, actual) = match (responses[&status].get("body"), r.status) {
        (Some(e), _) => (Some(e), r.body.as_ref()),
        (None, 202) => (
            responses.get("200").and_then(|x| x.get("body")),
            final_body.as_ref(),
        ),
        _ => (None, None),
    };
    if let Some(e) = expected {
        let mut found = compare::compare(diffs, &ex.stem, e, actual);
        // A long-running PUT answers with the state it starts in; examples show that state or
        // the final one. Either counts for provisioningState, nothing else.
        if let Some(fb) = final_body.as_ref().filter(|_| {
            op.method == "PUT" && found.iter().any(|m| m.path.ends_with("provisioningState"))
        }) {
            let later = compare::compare(diffs, &ex.stem, e, Some(fb));
            found.retain(|m| {
                !m.path.ends_with("provisioningState") || later.iter().any(|l| l.path == m.path)
            });
        }
        problems.extend(found.into_iter().map(|m| format!("{}: {}", m.path, m.what)));
    }
    let outcome = if problems.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail(problems)
    };
    Run {
        outcome,
        status: Some(r.status),
        notes,
    }
}

#[test]
fn azure_examples_replayed() {
    let examples = load_examples();
    let diffs = differences();
    let only: Option<Vec<String>> = std::env::var("CONFORMANCE_ONLY")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    let mut errors = Vec::new();
    for name in diffs.examples() {
        if !examples.iter().any(|e| e.stem == name) {
            errors.push(format!(
                "differences.json names example {name}, which is not among the example files"
            ));
        }
    }

    let mut report = String::new();
    let mut rows: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut ran = Vec::new();
    let resource_of =
        |e: &Example| ops::of_example(&e.stem).map_or("(unknown operation)", |o| o.resource);
    let mut selected: Vec<&Example> = examples
        .iter()
        .filter(|e| only.as_ref().is_none_or(|o| o.contains(&e.stem)))
        .collect();
    selected.sort_by(|a, b| (resource_of(a), &a.stem).cmp(&(resource_of(b), &b.stem)));
    for ex in selected {
        let op = ops::of_example(&ex.stem);
        let resource = resource_of(ex);
        let run = match (diffs.not_applicable.get(&ex.stem), op) {
            (Some(why), _) => Run {
                outcome: Outcome::Skip(why.clone()),
                status: None,
                notes: vec![],
            },
            (None, None) => fail(
                "no operation is known for this example: add it to tests/conformance/ops.rs".into(),
                vec![],
            ),
            (None, Some(op)) => {
                ran.push(ex.stem.clone());
                run(ex, op, &diffs)
            }
        };
        let row = rows.entry(resource).or_default();
        let (tag, detail) = match &run.outcome {
            Outcome::Pass => {
                passed += 1;
                row[0] += 1;
                ("PASS", vec![])
            }
            Outcome::Fail(p) => {
                failed += 1;
                row[1] += 1;
                ("FAIL", p.clone())
            }
            Outcome::Skip(why) => {
                skipped += 1;
                row[2] += 1;
                ("SKIP", vec![format!("not applicable: {why}")])
            }
        };
        let what = op
            .map(|o| {
                format!(
                    "{} {}",
                    o.method,
                    run.status.map_or("-".to_string(), |s| s.to_string())
                )
            })
            .unwrap_or_default();
        report.push_str(&format!(
            "  {tag}  {resource:<24} {:<52} {}  {what}\n",
            ex.stem, ex.version
        ));
        for d in detail {
            report.push_str(&format!("          - {d}\n"));
        }
        for n in run.notes {
            report.push_str(&format!("          note: {n}\n"));
        }
    }

    // Differences that never applied are stale or misspelt; those that applied but were not
    // needed (vnet's value equals the example's) are reported, not refused.
    let mut unneeded = Vec::new();
    for r in &diffs.rules {
        let (label, relevant) = match &r.scope {
            Scope::Field(f) => (format!("field {f}"), only.is_none()),
            Scope::ExampleValue(x) => (format!("example value {x}"), only.is_none()),
            Scope::Path { example, text, .. } => {
                (format!("{example}: {text}"), ran.contains(example))
            }
        };
        if !relevant {
            continue;
        }
        if !r.matched.load(Ordering::Relaxed) {
            errors.push(format!("difference \"{label}\" never applied: the example has no such field (stale or misspelt entry)"));
        } else if !r.needed.load(Ordering::Relaxed) {
            unneeded.push(label);
        }
    }

    let mut out = format!(
        "\nconformance: Azure REST examples replayed against vnet ({}; differences v{})\n{report}\n  {:<24} {:>6} {:>6} {:>7}\n",
        examples_dir()
            .canonicalize()
            .unwrap_or_else(|_| examples_dir())
            .display(),
        diffs.version,
        "resource type",
        "passed",
        "failed",
        "skipped"
    );
    for (res, [p, f, k]) in &rows {
        out.push_str(&format!("  {res:<24} {p:>6} {f:>6} {k:>7}\n"));
    }
    for u in &unneeded {
        out.push_str(&format!(
            "  note: difference \"{u}\" applied but vnet's value equals the example's\n"
        ));
    }
    for e in &errors {
        out.push_str(&format!("  error: {e}\n"));
    }
    let mut last = format!("conformance: {passed} passed, {failed} failed");
    if skipped > 0 {
        last.push_str(&format!(", {skipped} skipped"));
    }
    out.push_str(&format!("\n{last}\n"));
    // Straight to stdout: the test harness would capture print!, and the summary is wanted
    // on every run.
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    assert!(
        errors.is_empty(),
        "conformance: differences.json has errors (see the report)"
    );
    assert_eq!(
        failed, 0,
        "conformance: {failed} example(s) failed (see the report above)"
    );
}

const BEGIN: &str = "<!-- BEGIN GENERATED from differences.json -->";
const END: &str = "<!-- END GENERATED -->";

/// docs/conformance-differences.md shows differences.json's entries; this keeps the two the
/// same. `CONFORMANCE_BLESS=1` rewrites the generated part of the document.
#[test]
fn differences_document_matches_the_list() {
    let doc = repo_root().join("docs/conformance-differences.md");
    let text = std::fs::read_to_string(&doc)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", doc.display()));
    let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
        panic!("{} lacks the markers {BEGIN} … {END}", doc.display());
    };
    let want = format!("{BEGIN}\n{}{END}", differences().markdown());
    let have = &text[b..e + END.len()];
    if have != want {
        if std::env::var("CONFORMANCE_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(
                &doc,
                format!("{}{want}{}", &text[..b], &text[e + END.len()..]),
            )
            .expect("write doc");
        } else {
            panic!("{} is out of date with differences.json: run `CONFORMANCE_BLESS=1 cargo test -p api --test conformance` to regenerate it", doc.display());
        }
    }
}
