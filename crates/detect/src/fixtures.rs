//! Rule fixtures: every rule ships with events it must match and events it must not
//! (`<rule>.fixtures.json` beside `<rule>.yml`, format in docs/RULES.md). One function checks a
//! whole folder; `cargo test` and `cloudsentinel rules test` both call it.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use chrono::Duration;
use cloudsentinel_core::{Event, Origin};
use cloudsentinel_ingest::reader::{Item, decode_bytes};
use serde::Serialize;
use serde_json::Value;

use crate::sigma::{RuleKind, RuleSetBuilder, RuleText, rule_files};

/// One failed check.
#[derive(Debug, Clone, Serialize)]
pub struct FixtureFailure {
    /// The rule file.
    pub rule: String,
    /// `match[2]`, `no_match[0]`, or empty when the whole file is at fault.
    pub case: String,
    pub reason: String,
}

/// The outcome of checking a folder of rules against their fixtures.
#[derive(Debug, Default, Serialize)]
pub struct FixtureReport {
    pub rules: usize,
    pub cases: usize,
    pub failures: Vec<FixtureFailure>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureFile {
    rule_id: Option<String>,
    #[serde(rename = "match", default)]
    matches: Vec<Value>,
    #[serde(default)]
    no_match: Vec<Value>,
}

/// The fixtures file that belongs to a rule file.
pub fn fixtures_path(rule: &Path) -> PathBuf {
    let stem = rule
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    rule.with_file_name(format!("{stem}.fixtures.json"))
}

/// Expands one case into the records it stands for.
fn expand_case(case: &Value) -> Result<Vec<Value>, String> {
    let Some(events) = case.get("events") else {
        return Ok(vec![case.clone()]);
    };
    let items = events.as_array().ok_or("\"events\" must be a list")?;
    let mut out = Vec::new();
    for item in items {
        match (item.get("repeat"), item.get("record")) {
            (Some(n), Some(record)) => {
                let n = n.as_u64().ok_or("\"repeat\" must be a positive integer")?;
                let start = record
                    .get("eventTime")
                    .and_then(Value::as_str)
                    .and_then(cloudsentinel_ingest::cloudtrail::parse_time)
                    .ok_or("a repeated record needs a valid eventTime")?;
                let base_id = record
                    .get("eventID")
                    .and_then(Value::as_str)
                    .unwrap_or("fixture")
                    .to_string();
                for i in 0..n {
                    let mut r = record.clone();
                    let t = start + Duration::seconds(i as i64);
                    r["eventTime"] = Value::String(t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
                    r["eventID"] = Value::String(format!("{base_id}-{i}"));
                    out.push(r);
                }
            }
            _ => out.push(item.clone()),
        }
    }
    Ok(out)
}

/// Decodes a case's records and enriches them as `hunt` and `serve` do (the shipped address
/// table), so that rules on `cloudsentinel.source.*` see what they would see in production.
fn decode_case(records: Vec<Value>) -> Result<Vec<Event>, String> {
    let net = cloudsentinel_context::NetContext::builtin();
    let mut events = Vec::new();
    let mut err = None;
    for r in records {
        let bytes = serde_json::to_vec(&r).map_err(|e| e.to_string())?;
        decode_bytes(&bytes, Origin::default(), &mut |item| match item {
            Item::Event(mut e) => {
                net.enrich(&mut e);
                events.push(*e)
            }
            Item::Error(e) => err = Some(e.reason),
            _ => {}
        });
        if let Some(e) = err.take() {
            return Err(format!("fixture record does not decode: {e}"));
        }
    }
    Ok(events)
}

/// Checks one rule file against its fixtures.
pub fn check_rule_file(path: &Path, report: &mut FixtureReport) {
    let rule_name = path.display().to_string();
    let fail = |report: &mut FixtureReport, case: String, reason: String| {
        report.failures.push(FixtureFailure {
            rule: rule_name.clone(),
            case,
            reason,
        });
    };
    report.rules += 1;
    let yaml = match std::fs::read_to_string(path) {
        Ok(y) => y,
        Err(e) => return fail(report, String::new(), format!("cannot read: {e}")),
    };
    let mut builder = RuleSetBuilder::new();
    builder.add_text(RuleText {
        source: rule_name.clone(),
        yaml: Cow::Owned(yaml),
    });
    let set = builder.build();
    for f in set.failures() {
        fail(report, String::new(), format!("does not load: {}", f.error));
    }
    if set.is_empty() {
        return;
    }
    let fx_path = fixtures_path(path);
    let fixtures: FixtureFile = match std::fs::read_to_string(&fx_path) {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(f) => f,
            Err(e) => {
                return fail(
                    report,
                    String::new(),
                    format!("{}: invalid fixtures: {e}", fx_path.display()),
                );
            }
        },
        Err(e) => {
            return fail(
                report,
                String::new(),
                format!("{}: missing fixtures: {e}", fx_path.display()),
            );
        }
    };
    let target = match &fixtures.rule_id {
        Some(id) => id.clone(),
        None => {
            let corr: Vec<_> = set
                .rules()
                .filter(|m| m.kind == RuleKind::Correlation)
                .collect();
            match corr.as_slice() {
                [one] => one.id.clone(),
                [] => set.rules().next().map(|m| m.id.clone()).unwrap_or_default(),
                _ => return fail(report, String::new(), "several correlations in one file: name the one the fixtures test with \"rule_id\"".into()),
            }
        }
    };
    if set.rule(&target).is_none() {
        return fail(
            report,
            String::new(),
            format!("fixtures name rule_id {target}, which the file does not define"),
        );
    }
    if fixtures.matches.is_empty() {
        fail(
            report,
            String::new(),
            "no \"match\" case: every rule needs events it must match".into(),
        );
    }
    if fixtures.no_match.is_empty() {
        fail(
            report,
            String::new(),
            "no \"no_match\" case: every rule needs near misses it must not match".into(),
        );
    }
    let cases = fixtures
        .matches
        .iter()
        .map(|c| (true, c))
        .enumerate()
        .chain(fixtures.no_match.iter().map(|c| (false, c)).enumerate());
    for (i, (expected, case)) in cases {
        report.cases += 1;
        let label = format!("{}[{i}]", if expected { "match" } else { "no_match" });
        let events = match expand_case(case).and_then(decode_case) {
            Ok(ev) => ev,
            Err(e) => {
                fail(report, label, e);
                continue;
            }
        };
        let fired = fires(&set, &target, &events);
        if fired != expected {
            let what = if expected {
                "did not fire on an event it must match"
            } else {
                "fired on an event it must not match"
            };
            fail(report, label, what.to_string());
        }
    }
}

/// Whether rule `target` fires on this stream of events.
fn fires(set: &crate::sigma::RuleSet, target: &str, events: &[Event]) -> bool {
    let mut correlator = set.correlator();
    for ev in events {
        let d = set.detect(ev);
        if d.matches.iter().any(|m| m.rule.id == target) {
            return true;
        }
        if let (Some(c), Some(input)) = (correlator.as_mut(), d.for_correlation)
            && c.feed(input).iter().any(|s| s.rule_id == target)
        {
            return true;
        }
    }
    false
}

/// Checks every rule file under `dir`.
pub fn check_dir(dir: &Path) -> std::io::Result<FixtureReport> {
    let mut report = FixtureReport::default();
    for f in rule_files(dir)? {
        check_rule_file(&f, &mut report);
    }
    Ok(report)
}
