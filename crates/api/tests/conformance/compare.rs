//! The list of deliberate differences (`differences.json`) and the comparison of a response
//! body with an example's.
//!
//! A response passes when every field of the example's body is present in vnet's with the same
//! JSON type and the same value, apart from the fields a difference names: `"check": "type"`
//! compares presence and type only, `"check": "ignore"` skips the field.

use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Present, same JSON type; value not compared.
    Type,
    /// Not compared at all (may be missing).
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
    /// `[*]` in a rule path.
    Any,
}

#[derive(Debug)]
pub enum Scope {
    /// Every field of this name, in every example.
    Field(String),
    /// Every field whose value in the example is this string (placeholders).
    ExampleValue(String),
    /// One JSON path of one example's response body.
    Path {
        example: String,
        path: Vec<Seg>,
        text: String,
    },
}

#[derive(Debug)]
pub struct Rule {
    pub scope: Scope,
    pub check: Check,
    pub reason: String,
    /// The example had a field the rule applies to.
    pub matched: AtomicBool,
    /// vnet's value differed there (the rule made the difference).
    pub needed: AtomicBool,
}

pub struct Differences {
    pub version: u64,
    pub rules: Vec<Rule>,
    /// Example (file stem) → why it is not applicable.
    pub not_applicable: BTreeMap<String, String>,
}

fn parse_path(s: &str) -> Result<Vec<Seg>, String> {
    let mut out = Vec::new();
    for part in s.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key.to_string()));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let j = r
                .find(']')
                .ok_or_else(|| format!("unclosed [ in path {s}"))?;
            let idx = &r[..j];
            out.push(if idx == "*" {
                Seg::Any
            } else {
                Seg::Index(
                    idx.parse()
                        .map_err(|_| format!("bad index {idx} in path {s}"))?,
                )
            });
            rest = &r[j + 1..];
        }
    }
    Ok(out)
}

pub fn show_path(p: &[Seg]) -> String {
    let mut s = String::new();
    for seg in p {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
            Seg::Any => s.push_str("[*]"),
        }
    }
    if s.is_empty() {
        "(body)".into()
    } else {
        s
    }
}

fn check_of(v: &Value, what: &str) -> Result<Check, String> {
    match v.get("check").and_then(Value::as_str) {
        Some("type") => Ok(Check::Type),
        Some("ignore") => Ok(Check::Ignore),
        other => Err(format!(
            "{what}: check must be \"type\" or \"ignore\", not {other:?}"
        )),
    }
}

fn reason_of(v: &Value, what: &str) -> Result<String, String> {
    match v.get("reason").and_then(Value::as_str) {
        Some(r) if !r.trim().is_empty() => Ok(r.to_string()),
        _ => Err(format!("{what}: every difference needs a reason")),
    }
}

impl Differences {
    pub fn parse(text: &str) -> Result<Differences, String> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| format!("differences.json is not valid JSON: {e}"))?;
        let version = v
            .get("version")
            .and_then(Value::as_u64)
            .ok_or("differences.json: integer \"version\" missing")?;
        let mut rules = Vec::new();
        for g in v
            .get("global")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let what = format!("global difference {g}");
            let scope = match (
                g.get("field").and_then(Value::as_str),
                g.get("example_value").and_then(Value::as_str),
            ) {
                (Some(f), None) => Scope::Field(f.to_string()),
                (None, Some(x)) => Scope::ExampleValue(x.to_string()),
                _ => {
                    return Err(format!(
                        "{what}: needs exactly one of \"field\" or \"example_value\""
                    ))
                }
            };
            rules.push(Rule {
                scope,
                check: check_of(g, &what)?,
                reason: reason_of(g, &what)?,
                matched: false.into(),
                needed: false.into(),
            });
        }
        let mut not_applicable = BTreeMap::new();
        for (name, e) in v
            .get("examples")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let Some(na) = e.get("not_applicable") {
                let r = na
                    .as_str()
                    .filter(|r| !r.trim().is_empty())
                    .ok_or_else(|| format!("{name}: not_applicable needs a reason"))?;
                not_applicable.insert(name.clone(), r.to_string());
            }
            for p in e
                .get("paths")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let what = format!("{name}: difference {p}");
                let text = p
                    .get("path")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{what}: \"path\" missing"))?;
                rules.push(Rule {
                    scope: Scope::Path {
                        example: name.clone(),
                        path: parse_path(text)?,
                        text: text.to_string(),
                    },
                    check: check_of(p, &what)?,
                    reason: reason_of(p, &what)?,
                    matched: false.into(),
                    needed: false.into(),
                });
            }
            if e.get("not_applicable").is_none() && e.get("paths").is_none() {
                return Err(format!(
                    "{name}: an example entry needs \"not_applicable\" or \"paths\""
                ));
            }
        }
        Ok(Differences {
            version,
            rules,
            not_applicable,
        })
    }

    /// The examples the file names (to catch names of files that do not exist).
    pub fn examples(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.not_applicable.keys().map(String::as_str).collect();
        for r in &self.rules {
            if let Scope::Path { example, .. } = &r.scope {
                v.push(example);
            }
        }
        v.sort();
        v.dedup();
        v
    }

    fn rule_for(&self, example: &str, path: &[Seg], exp: &Value) -> Option<&Rule> {
        let by_path = self.rules.iter().find(|r| match &r.scope {
            Scope::Path {
                example: e,
                path: p,
                ..
            } => e == example && path_matches(p, path),
            _ => false,
        });
        let last = match path.last() {
            Some(Seg::Key(k)) => Some(k.as_str()),
            _ => None,
        };
        by_path
            .or_else(|| {
                self.rules
                    .iter()
                    .find(|r| matches!(&r.scope, Scope::Field(f) if Some(f.as_str()) == last))
            })
            .or_else(|| {
                self.rules
                    .iter()
                    .find(|r| matches!(&r.scope, Scope::ExampleValue(x) if exp.as_str() == Some(x)))
            })
    }

    /// The differences as the Markdown tables of docs/conformance-differences.md.
    pub fn markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|").replace('<', "&lt;");
        let check = |c: Check| match c {
            Check::Type => "type only",
            Check::Ignore => "ignored",
        };
        let mut s = format!(
            "Generated from `crates/api/tests/conformance/differences.json`, version {}.\n\n",
            self.version
        );
        s.push_str("### Every example\n\n| Field | Compared | Reason |\n| --- | --- | --- |\n");
        for r in &self.rules {
            match &r.scope {
                Scope::Field(f) => s.push_str(&format!(
                    "| any field named `{f}` | {} | {} |\n",
                    check(r.check),
                    esc(&r.reason)
                )),
                Scope::ExampleValue(x) => s.push_str(&format!(
                    "| any field whose example value is `{x}` | {} | {} |\n",
                    check(r.check),
                    esc(&r.reason)
                )),
                Scope::Path { .. } => {}
            }
        }
        s.push_str("\n### Per example\n\n| Example | Field (JSON path in the response body) | Compared | Reason |\n| --- | --- | --- | --- |\n");
        for r in &self.rules {
            if let Scope::Path { example, text, .. } = &r.scope {
                s.push_str(&format!(
                    "| {example} | `{text}` | {} | {} |\n",
                    check(r.check),
                    esc(&r.reason)
                ));
            }
        }
        s.push_str("\n### Not applicable\n\n| Example | Reason |\n| --- | --- |\n");
        for (e, r) in &self.not_applicable {
            s.push_str(&format!("| {e} | {} |\n", esc(r)));
        }
        s
    }
}

fn path_matches(rule: &[Seg], at: &[Seg]) -> bool {
    rule.len() == at.len()
        && rule.iter().zip(at).all(|(r, a)| match (r, a) {
            (Seg::Any, Seg::Index(_)) => true,
            (r, a) => r == a,
        })
}

/// One field where vnet's response differs from the example's.
#[derive(Debug, Clone)]
pub struct Mismatch {
    pub path: String,
    pub what: String,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(117).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}

/// Compares `actual` with the example body `expected` of `example`, applying the differences.
pub fn compare(
    diffs: &Differences,
    example: &str,
    expected: &Value,
    actual: Option<&Value>,
) -> Vec<Mismatch> {
    let mut c = Cmp {
        diffs: Some(diffs),
        example,
        out: Vec::new(),
    };
    c.cmp(expected, actual, &mut Vec::new());
    c.out
}

struct Cmp<'a> {
    /// None: compare strictly (to tell whether a difference was needed).
    diffs: Option<&'a Differences>,
    example: &'a str,
    out: Vec<Mismatch>,
}

impl Cmp<'_> {
    fn strictly_equal(&self, exp: &Value, act: Option<&Value>, path: &mut Vec<Seg>) -> bool {
        let mut c = Cmp {
            diffs: None,
            example: self.example,
            out: Vec::new(),
        };
        c.cmp(exp, act, path);
        c.out.is_empty()
    }

    fn miss(&mut self, path: &[Seg], what: String) {
        self.out.push(Mismatch {
            path: show_path(path),
            what,
        });
    }

    fn cmp(&mut self, exp: &Value, act: Option<&Value>, path: &mut Vec<Seg>) {
        if let Some(rule) = self.diffs.and_then(|d| d.rule_for(self.example, path, exp)) {
            rule.matched.store(true, Ordering::Relaxed);
            if !self.strictly_equal(exp, act, path) {
                rule.needed.store(true, Ordering::Relaxed);
            }
            if rule.check == Check::Type {
                match act {
                    None => self.miss(path, "missing".into()),
                    Some(a) if type_name(a) != type_name(exp) => self.miss(
                        path,
                        format!(
                            "is {} {}, the example has {} {}",
                            type_name(a),
                            short(a),
                            type_name(exp),
                            short(exp)
                        ),
                    ),
                    Some(_) => {}
                }
            }
            return;
        }
        let Some(a) = act else {
            self.miss(path, format!("missing (the example has {})", short(exp)));
            return;
        };
        if type_name(a) != type_name(exp) {
            self.miss(
                path,
                format!(
                    "is {} {}, the example has {} {}",
                    type_name(a),
                    short(a),
                    type_name(exp),
                    short(exp)
                ),
            );
            return;
        }
        match (exp, a) {
            (Value::Object(e), Value::Object(am)) => {
                for (k, v) in e {
                    path.push(Seg::Key(k.clone()));
                    self.cmp(v, am.get(k), path);
                    path.pop();
                }
            }
            (Value::Array(e), Value::Array(am)) => {
                let mut used = vec![false; am.len()];
                for (i, x) in e.iter().enumerate() {
                    let j = match_element(x, am, &used, i);
                    if let Some(j) = j {
                        used[j] = true;
                    }
                    path.push(Seg::Index(i));
                    self.cmp(x, j.map(|j| &am[j]), path);
                    path.pop();
                }
                let extra: Vec<&Value> = am
                    .iter()
                    .zip(&used)
                    .filter(|(_, u)| !**u)
                    .map(|(v, _)| v)
                    .collect();
                if !extra.is_empty() {
                    self.miss(
                        path,
                        format!(
                            "has {} element(s) the example does not have, first {}",
                            extra.len(),
                            short(extra[0])
                        ),
                    );
                }
            }
            (Value::Number(x), Value::Number(y)) => {
                if x.as_f64() != y.as_f64() {
                    self.miss(path, format!("is {y}, the example has {x}"));
                }
            }
            _ => {
                if exp != a {
                    self.miss(
                        path,
                        format!("is {}, the example has {}", short(a), short(exp)),
                    );
                }
            }
        }
    }
}

/// The element of `actual` an example array element corresponds to: the same `id`
/// (case-insensitive, as ARM ids are), else the same `name`, else the same position.
fn match_element(x: &Value, actual: &[Value], used: &[bool], i: usize) -> Option<usize> {
    let free = |j: &usize| !used[*j];
    if let Some(id) = x
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        return (0..actual.len()).filter(free).find(|j| {
            actual[*j]
                .get("id")
                .and_then(Value::as_str)
                .is_some_and(|a| a.eq_ignore_ascii_case(id))
        });
    }
    if let Some(n) = x.get("name").and_then(Value::as_str) {
        return (0..actual.len())
            .filter(free)
            .find(|j| actual[*j].get("name").and_then(Value::as_str) == Some(n));
    }
    (i < actual.len() && !used[i]).then_some(i)
}
