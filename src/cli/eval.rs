//! `cloudsentinel eval`: detection quality on labelled events.
//!
//! Input: JSON Lines, each `{"event": {...}, "expected": true|false, "technique"?: "...",
//! "rule_id"?: "..."}`. Also accepted: Panther's rule tests (`mitre: ["TA0005:T1562.008"]`,
//! `log_type`) and Stratus detonation logs (`label: "malicious"`, `technique`).
//!
//! A case "fires" when any loaded rule raises a signal whose evidence includes the case's event.
//! Cases that share a `technique` are one stream (a detonation), fed in time order, so that
//! correlation rules see all its events; other cases stand alone.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use cloudsentinel_context::NetContext;
use cloudsentinel_core::{Event, Level, Origin};
use cloudsentinel_detect::{RuleSet, Stage};
use cloudsentinel_ingest::{Item, ReadOptions};
use serde::Serialize;
use serde_json::{Value, json};

use super::{EXIT_OK, exit_usage, hunt::parse_level, load_rules, usage_or};

#[derive(Args)]
pub struct EvalArgs {
    /// Labelled JSON Lines files.
    #[arg(required_unless_present = "anomaly")]
    pub paths: Vec<PathBuf>,
    /// Extra Sigma rule files or directories, added to the built-in pack.
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    #[arg(long)]
    pub no_builtin: bool,
    /// Only cases whose `log_type` is this (Panther), e.g. AWS.CloudTrail.
    #[arg(long)]
    pub log_type: Option<String>,
    /// Only count signals at or above this level.
    #[arg(long, value_parser = parse_level)]
    pub min_level: Option<Level>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// List every missed should-fire case and every alert on a should-not-fire case.
    #[arg(long)]
    pub verbose: bool,
    /// Measure the behavioural detectors instead: benign days of the demo organisation, then
    /// behaviour-only attacks; recall, anomaly alerts per 10,000 benign events, and what the
    /// feedback model cuts.
    #[arg(long, conflicts_with = "paths")]
    pub anomaly: bool,
    /// (--anomaly) Days of activity in all.
    #[arg(long, default_value_t = 21, requires = "anomaly")]
    pub days: u32,
    /// (--anomaly) The last days, with the attacks in them, scored; the days before are history.
    #[arg(long, default_value_t = 7, requires = "anomaly")]
    pub test_days: u32,
    /// (--anomaly) Behaviour-only attack stories in the test days.
    #[arg(long, default_value_t = 24, requires = "anomaly")]
    pub stories: usize,
    /// (--anomaly) Scenario seed.
    #[arg(long, default_value_t = 7, requires = "anomaly")]
    pub seed: u64,
    /// (--anomaly) Benign volume (1.0: about 14,000 records a weekday).
    #[arg(long, default_value_t = 1.0, requires = "anomaly")]
    pub scale: f64,
    /// (--anomaly) Share of history events the forest's threshold lets through.
    #[arg(long, default_value_t = 0.0005, requires = "anomaly")]
    pub target_rate: f64,
    /// (--anomaly) Numbers of labelled alerts to train the feedback model on.
    #[arg(long, value_delimiter = ',', default_values_t = [20, 40, 60], requires = "anomaly")]
    pub labels: Vec<usize>,
    /// (--anomaly) The feedback model's auto-close threshold.
    #[arg(long, default_value_t = 0.1, requires = "anomaly")]
    pub auto_close_below: f64,
}

struct Case {
    line: usize,
    expected: bool,
    techniques: Vec<String>,
    stream: Option<String>,
    label_rule: Option<String>,
    event: Option<Event>,
    decode_error: Option<String>,
    fired_rules: Vec<String>,
}

#[derive(Default, Serialize, Clone, Copy)]
struct Confusion {
    tp: u64,
    fp: u64,
    #[serde(rename = "fn")]
    fn_: u64,
    tn: u64,
}

impl Confusion {
    fn add(&mut self, expected: bool, fired: bool) {
        match (expected, fired) {
            (true, true) => self.tp += 1,
            (true, false) => self.fn_ += 1,
            (false, true) => self.fp += 1,
            (false, false) => self.tn += 1,
        }
    }
    fn precision(&self) -> Option<f64> {
        let d = self.tp + self.fp;
        (d > 0).then(|| self.tp as f64 / d as f64)
    }
    fn recall(&self) -> Option<f64> {
        let d = self.tp + self.fn_;
        (d > 0).then(|| self.tp as f64 / d as f64)
    }
    fn f1(&self) -> Option<f64> {
        let (p, r) = (self.precision()?, self.recall()?);
        (p + r > 0.0).then(|| 2.0 * p * r / (p + r))
    }
}

fn technique_of(s: &str) -> String {
    // Panther: "TA0005:T1562.008"; ours: "T1562.008"; Stratus: "aws.defense-evasion.cloudtrail-stop".
    s.rsplit(':').next().unwrap_or(s).to_string()
}

/// One labelled case, its event decoded and enriched by the stage `hunt` runs (the shipped
/// address table).
fn parse_case(
    line_no: usize,
    v: &Value,
    default_time: &str,
    stage: Stage<'_>,
) -> Result<Case, String> {
    let expected = match (v.get("expected"), v.get("label")) {
        (Some(Value::Bool(b)), _) => *b,
        (_, Some(Value::String(l))) => {
            matches!(l.as_str(), "malicious" | "attack" | "true" | "positive")
        }
        _ => return Err("missing \"expected\" (true/false) or \"label\"".into()),
    };
    let mut techniques = Vec::new();
    if let Some(t) = v.get("technique").and_then(Value::as_str) {
        techniques.push(technique_of(t));
    }
    if let Some(list) = v.get("mitre").and_then(Value::as_array) {
        techniques.extend(list.iter().filter_map(Value::as_str).map(technique_of));
    }
    let stream = v
        .get("technique")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut event_json = v.get("event").cloned().ok_or("missing \"event\"")?;
    // Trimmed test events often leave out the time; detection does not depend on it.
    if let Value::Object(m) = &mut event_json {
        let has = |m: &serde_json::Map<String, Value>, k: &str| {
            m.keys().any(|x| x.eq_ignore_ascii_case(k))
        };
        if !has(m, "eventTime") && m.contains_key("eventName") {
            m.insert("eventTime".into(), json!(default_time));
        }
        if !has(m, "timestamp") && has(m, "protoPayload") {
            m.insert("timestamp".into(), json!(default_time));
        }
        if !has(m, "time") && has(m, "operationName") {
            m.insert("time".into(), json!(default_time));
        }
    }
    let bytes = serde_json::to_vec(&event_json).map_err(|e| e.to_string())?;
    let mut event = None;
    let mut decode_error = None;
    stage.decode_bytes(
        &bytes,
        Origin {
            source: "eval".into(),
            line: Some(line_no as u64),
            ..Origin::default()
        },
        ReadOptions::default(),
        &mut |item| match item {
            Item::Event(e) => event = Some(*e),
            Item::Error(e) => decode_error = Some(e.reason),
            Item::Digest | Item::Insight => {
                decode_error = Some("not an API event (digest or insight)".into())
            }
        },
    );
    Ok(Case {
        line: line_no,
        expected,
        techniques,
        stream,
        label_rule: v.get("rule_id").and_then(Value::as_str).map(str::to_string),
        event,
        decode_error,
        fired_rules: Vec::new(),
    })
}

pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    if args.anomaly {
        return super::eval_anomaly::run(args);
    }
    let rules = match usage_or(load_rules(&args.rules, args.no_builtin, args.json)) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let net = NetContext::builtin();
    let stage = Stage::new(&rules, &net);
    let mut cases = Vec::new();
    let mut bad_lines = 0usize;
    for path in &args.paths {
        let f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return Ok(exit_usage());
            }
        };
        for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
            let line =
                line.with_context(|| format!("{}: cannot read line {}", path.display(), i + 1))?;
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = match serde_json::from_str(&line) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!(
                        "warning: {} line {}: invalid JSON: {e}",
                        path.display(),
                        i + 1
                    );
                    bad_lines += 1;
                    continue;
                }
            };
            if let Some(lt) = &args.log_type
                && v.get("log_type").and_then(Value::as_str) != Some(lt.as_str())
            {
                continue;
            }
            match parse_case(i + 1, &v, "2024-01-01T00:00:00Z", stage) {
                Ok(c) => cases.push(c),
                Err(e) => {
                    eprintln!("warning: {} line {}: {e}", path.display(), i + 1);
                    bad_lines += 1;
                }
            }
        }
    }
    detect_cases(&rules, &mut cases, args.min_level);
    report(&args, &rules, &cases, bad_lines)
}

/// Runs the rules over the cases and records which rules fired on each.
fn detect_cases(rules: &RuleSet, cases: &mut [Case], min_level: Option<Level>) {
    let keep = |level: Level| min_level.is_none_or(|m| level >= m);
    // Group into streams: cases sharing a technique label form one stream.
    let mut streams: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, c) in cases.iter().enumerate() {
        let key = c.stream.clone().unwrap_or_else(|| format!("case-{i}"));
        streams.entry(key).or_default().push(i);
    }
    for (_, mut idx) in streams {
        idx.retain(|&i| cases[i].event.is_some());
        idx.sort_by_key(|&i| cases[i].event.as_ref().map(|e| e.time));
        let mut correlator = rules.correlator();
        for &i in &idx {
            let ev = cases[i].event.clone().expect("decoded");
            let d = rules.detect(&ev);
            for m in d.matches.iter().filter(|m| keep(m.rule.level)) {
                cases[i].fired_rules.push(m.rule.id.clone());
            }
            if let (Some(c), Some(input)) = (correlator.as_mut(), d.for_correlation) {
                for s in c.feed(input).into_iter().filter(|s| keep(s.level)) {
                    // Credit every evidence event of the stream.
                    for &j in &idx {
                        if cases[j]
                            .event
                            .as_ref()
                            .is_some_and(|e| s.event_ids.contains(&e.id))
                            && !cases[j].fired_rules.contains(&s.rule_id)
                        {
                            cases[j].fired_rules.push(s.rule_id.clone());
                        }
                    }
                }
            }
        }
    }
}

fn ratio(x: Option<f64>) -> Value {
    x.map_or(Value::Null, |v| json!((v * 10000.0).round() / 10000.0))
}

fn report(
    args: &EvalArgs,
    rules: &RuleSet,
    cases: &[Case],
    bad_lines: usize,
) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let mut all = Confusion::default();
    let mut per_technique: BTreeMap<String, Confusion> = BTreeMap::new();
    let mut per_label_rule: BTreeMap<String, Confusion> = BTreeMap::new();
    let mut streams: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    let mut undecodable = 0u64;
    let mut fired_by_rule: BTreeMap<String, u64> = BTreeMap::new();
    for c in cases {
        let fired = !c.fired_rules.is_empty();
        if c.event.is_none() {
            undecodable += 1;
        }
        all.add(c.expected, fired);
        for t in &c.techniques {
            per_technique
                .entry(t.clone())
                .or_default()
                .add(c.expected, fired);
        }
        if let Some(r) = &c.label_rule {
            per_label_rule
                .entry(r.clone())
                .or_default()
                .add(c.expected, fired);
        }
        if let Some(s) = &c.stream {
            let e = streams.entry(s.clone()).or_insert((c.expected, false));
            e.1 |= fired;
        }
        for r in &c.fired_rules {
            *fired_by_rule.entry(r.clone()).or_default() += 1;
        }
    }
    let streams_detected = streams
        .values()
        .filter(|(exp, fired)| *exp && *fired)
        .count();
    let streams_positive = streams.values().filter(|(exp, _)| *exp).count();
    if args.json {
        let techniques: BTreeMap<&String, Value> = per_technique
            .iter()
            .map(|(t, c)| (t, json!({"positives": c.tp + c.fn_, "tp": c.tp, "fn": c.fn_, "fp": c.fp, "tn": c.tn, "recall": ratio(c.recall())})))
            .collect();
        let doc = json!({
            "cases": cases.len(),
            "undecodable": undecodable,
            "invalid_lines": bad_lines,
            "rules_loaded": rules.len(),
            "tp": all.tp, "fp": all.fp, "fn": all.fn_, "tn": all.tn,
            "precision": ratio(all.precision()),
            "recall": ratio(all.recall()),
            "f1": ratio(all.f1()),
            "negative_alert_rate": ratio((all.fp + all.tn > 0).then(|| all.fp as f64 / (all.fp + all.tn) as f64)),
            "streams": {"positive": streams_positive, "detected": streams_detected},
            "recall_per_technique": techniques,
            "per_label_rule": per_label_rule,
            "fired_by_rule": fired_by_rule,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        let pct = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{:.1}%", v * 100.0));
        writeln!(
            out,
            "cases: {} ({} undecodable, {} invalid lines); rules loaded: {}",
            cases.len(),
            undecodable,
            bad_lines,
            rules.len()
        )?;
        writeln!(
            out,
            "TP {}  FP {}  FN {}  TN {}",
            all.tp, all.fp, all.fn_, all.tn
        )?;
        writeln!(
            out,
            "precision {}  recall {}  F1 {}",
            pct(all.precision()),
            pct(all.recall()),
            pct(all.f1())
        )?;
        if all.fp + all.tn > 0 {
            writeln!(
                out,
                "alerts on should-not-fire cases: {}/{}",
                all.fp,
                all.fp + all.tn
            )?;
        }
        if streams_positive > 0 {
            writeln!(
                out,
                "labelled streams (techniques) detected: {streams_detected}/{streams_positive}"
            )?;
        }
        writeln!(out, "recall per technique:")?;
        for (t, c) in &per_technique {
            if c.tp + c.fn_ > 0 {
                writeln!(
                    out,
                    "  {:<60} {:>4}/{:<4} {}",
                    t,
                    c.tp,
                    c.tp + c.fn_,
                    pct(c.recall())
                )?;
            }
        }
        if args.verbose {
            for c in cases {
                let fired = !c.fired_rules.is_empty();
                if c.expected != fired {
                    let what = if c.expected { "MISSED" } else { "FALSE ALERT" };
                    let detail = match (&c.decode_error, c.fired_rules.is_empty()) {
                        (Some(e), _) => format!("undecodable: {e}"),
                        (None, false) => format!(
                            "fired: {}",
                            c.fired_rules
                                .iter()
                                .map(|r| rules.rule(r).map_or(r.as_str(), |m| m.title.as_str()))
                                .collect::<Vec<_>>()
                                .join("; ")
                        ),
                        (None, true) => String::new(),
                    };
                    let name = c
                        .event
                        .as_ref()
                        .map(|e| format!("{}:{}", e.action.service, e.action.operation))
                        .unwrap_or_default();
                    writeln!(
                        out,
                        "{what} line {} {} {} {}",
                        c.line,
                        c.label_rule
                            .as_deref()
                            .or(c.stream.as_deref())
                            .unwrap_or(""),
                        name,
                        detail
                    )?;
                }
            }
        }
    }
    Ok(EXIT_OK)
}
