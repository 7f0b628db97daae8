//! `cloudsentinel eval --anomaly`: how well the behavioural detectors catch behaviour-only
//! attacks, and how much the feedback model cuts false positives.
//!
//! The labelled stream: `--days` of the demo organisation's benign activity (its built-in attack
//! stories left out), the last `--test-days` of it with `--stories` behaviour-only attacks woven
//! in (stolen credentials used at the victim's night from a hosting network, ordinary reads,
//! one sensitive write; see `cloudsentinel_sim::stealth_attacks`). The days before are history:
//! the baselines learn from them and the isolation forest is trained on their feature vectors,
//! as `POST /api/v1/models/train` does on stored events. Then the test days are replayed and
//! scored, with the built-in rules run beside the forest, and folded into alerts as `hunt` does.
//!
//! The rules see the whole stream in time order (history included), with their correlations
//! and routine judgement, as the service does. Only alerts at low and above count (what the
//! analysts' queue shows); "anomaly" alerts are the behavioural detectors' (the isolation forest
//! and the explained detectors of `learn::detectors`).
//!
//! Reported: stories flagged by an anomaly alert (recall, per kind), anomaly alerts on benign
//! activity per 10,000 benign events, and, for the feedback model, what an analyst labelling the
//! first N alerts of the queue would see of the rest: auto-closed false positives and lost true
//! positives at the auto-close threshold, and the ranking's AUC.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::ExitCode;

use chrono::{Duration, TimeZone, Utc};
use cloudsentinel_alert::Folder;
use cloudsentinel_context::{CloudRanges, NetContext, NetDb};
use cloudsentinel_core::{Alert, Origin};
use cloudsentinel_detect::Stage;
use cloudsentinel_ingest::{Item, ReadOptions};
use cloudsentinel_learn::anomaly::{RULE_ID, TrainParams};
use cloudsentinel_learn::behaviour::Settings;
use cloudsentinel_learn::feedback::{self, AlertFacts};
use cloudsentinel_learn::metrics::auc;
use cloudsentinel_learn::offline;
use cloudsentinel_learn::offline::{Interner, Observed};
use cloudsentinel_sim::{SimConfig, generate, stealth_attacks};
use serde_json::json;

use super::eval::EvalArgs;
use super::{EXIT_FAILED, EXIT_OK, exit_usage, load_rules, usage_or};

/// The fixed end of the replayed scenario (a Thursday noon), so that a run is repeatable.
fn scenario_end() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 13, 12, 0, 0)
        .single()
        .expect("a valid date")
}

struct Labelled {
    history: Vec<Observed>,
    test: Vec<Observed>,
    benign_test_events: usize,
    attack_ids: HashMap<String, usize>,
    stories: Vec<cloudsentinel_sim::Story>,
    alerts: Folder,
}

/// Decodes the simulator's records through the stage `hunt` and the demo run (decode, enrich).
fn decode_records(
    records: &[String],
    source: &str,
    stage: Stage<'_>,
    sink: &mut dyn FnMut(cloudsentinel_core::Event),
) {
    let mut text = String::with_capacity(records.iter().map(|r| r.len() + 1).sum());
    for r in records {
        text.push_str(r);
        text.push('\n');
    }
    stage.decode_bytes(
        text.as_bytes(),
        Origin {
            source: source.into(),
            ..Origin::default()
        },
        ReadOptions::default(),
        &mut |item| {
            if let Item::Event(e) = item {
                sink(*e);
            }
        },
    );
}

pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    if args.test_days == 0 || args.test_days >= args.days {
        eprintln!("error: --test-days must be at least 1 and less than --days");
        return Ok(exit_usage());
    }
    if !(args.target_rate > 0.0 && args.target_rate < 1.0) {
        eprintln!("error: --target-rate must be between 0 and 1");
        return Ok(exit_usage());
    }
    let rules = match usage_or(load_rules(&args.rules, args.no_builtin, args.json)) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let started = std::time::Instant::now();
    let end = scenario_end();
    let cfg = SimConfig {
        seed: args.seed,
        end,
        days: args.days,
        scale: args.scale,
        stealth: 0,
    };
    let test_from = end - Duration::days(i64::from(args.test_days));
    let window = Duration::seconds(3600);
    // The simulated organisation's own address plan, as the demo uses: its addresses are made up,
    // so the shipped table would place them at random.
    let net = NetContext::new(
        std::sync::Arc::new(
            NetDb::parse(&cloudsentinel_sim::netdb::table())
                .map_err(|e| anyhow::anyhow!("the simulation's address table: {e}"))?,
        ),
        CloudRanges::default(),
    );
    let stage = Stage::new(&rules, &net);
    let mut data = Labelled {
        history: Vec::new(),
        test: Vec::new(),
        benign_test_events: 0,
        attack_ids: HashMap::new(),
        stories: Vec::new(),
        alerts: Folder::new(window),
    };
    {
        let benign = generate(&cfg);
        // The demo's own stories are rule-detected attacks, not benign activity: left out.
        let skip: HashSet<&str> = benign
            .stories
            .iter()
            .flat_map(|s| s.event_ids.iter().map(String::as_str))
            .collect();
        let stealth = stealth_attacks(&cfg, args.stories, test_from, end);
        for (i, s) in stealth.stories.iter().enumerate() {
            for id in &s.event_ids {
                data.attack_ids.insert(id.clone(), i);
            }
        }
        let Labelled {
            history,
            test,
            benign_test_events,
            alerts,
            ..
        } = &mut data;
        // Correlation and routine-aware rules need the whole stream in time order, history
        // included (it is what "routine" is judged against): collected here, fed below.
        let mut for_correlation = Vec::new();
        let mut interner = Interner::default();
        let mut take = |e: cloudsentinel_core::Event, attack: bool| {
            let d = stage.detect(&e);
            if let Some(c) = d.for_correlation {
                for_correlation.push(c);
            }
            if e.time < test_from {
                history.push(Observed::of_event(&e, &mut interner));
                return;
            }
            if !attack {
                *benign_test_events += 1;
            }
            for m in &d.matches {
                alerts.add_match(m, &e);
            }
            test.push(Observed::of_event(&e, &mut interner));
        };
        decode_records(&benign.records, "sim", stage, &mut |e| {
            if !skip.contains(e.id.as_str()) {
                take(e, false);
            }
        });
        decode_records(&stealth.records, "sim-stealth", stage, &mut |e| {
            take(e, true)
        });
        data.stories = stealth.stories;
        for_correlation.sort_by(|a, b| (a.time, &a.event_id).cmp(&(b.time, &b.event_id)));
        if let Some(mut correlator) = rules.correlator() {
            for input in for_correlation {
                for signal in correlator.feed(input) {
                    if signal.last_seen >= test_from {
                        data.alerts.add(signal);
                    }
                }
            }
        }
    }
    let history_events = data.history.len();
    let params = TrainParams {
        target_rate: args.target_rate,
        seed: args.seed,
        ..TrainParams::default()
    };
    let outcome = match offline::detect(
        Some(std::mem::take(&mut data.history)),
        std::mem::take(&mut data.test),
        Settings::default(),
        &params,
        None,
        false,
    ) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {}", e.error);
            return Ok(EXIT_FAILED);
        }
    };
    let anomaly_signals = outcome.signals.len();
    // Stories an anomaly signal caught on a read, before the sensitive write (their last record).
    let early: HashSet<usize> = outcome
        .signals
        .iter()
        .flat_map(|s| s.event_ids.iter())
        .filter_map(|id| {
            let &i = data.attack_ids.get(id)?;
            (data.stories[i].event_ids.last() != Some(id)).then_some(i)
        })
        .collect();
    let benign_signals = outcome
        .signals
        .iter()
        .filter(|s| {
            !s.event_ids
                .iter()
                .any(|id| data.attack_ids.contains_key(id))
        })
        .count();
    let features: HashMap<&str, (&[f32], f64)> = outcome
        .scored
        .iter()
        .map(|s| {
            (
                &*outcome.input[s.index].id,
                (&s.features.values[..], s.score),
            )
        })
        .collect();
    let mut alerts_folder = data.alerts;
    for s in outcome.signals.iter().cloned() {
        alerts_folder.add(s);
    }
    let mut alerts = alerts_folder.finish(&rules);
    // What the analysts' queue shows: informational signals (routine findings, change records,
    // forest findings nothing corroborates) are kept but not raised, so they count for nothing.
    alerts.retain(|a| a.level >= cloudsentinel_core::Level::Low);
    alerts.sort_by(|a, b| (a.first_seen, &a.rule_id).cmp(&(b.first_seen, &b.rule_id)));
    let is_attack = |a: &Alert| {
        a.event_ids
            .iter()
            .any(|id| data.attack_ids.contains_key(id))
    };
    // The behavioural detectors: the forest and the explained detectors beside it.
    let is_anomaly = |a: &Alert| {
        a.rule_id == RULE_ID
            || a.rule_id
                .starts_with(cloudsentinel_learn::detectors::RULE_PREFIX)
    };

    // Recall per story and per kind, for anomaly alerts and for rule alerts.
    let mut by_anomaly: HashSet<usize> = HashSet::new();
    let mut by_rule: HashSet<usize> = HashSet::new();
    for a in &alerts {
        for id in &a.event_ids {
            if let Some(&i) = data.attack_ids.get(id) {
                if is_anomaly(a) {
                    by_anomaly.insert(i);
                } else {
                    by_rule.insert(i);
                }
            }
        }
    }
    let kind = |name: &str| name.splitn(3, '-').nth(2).unwrap_or(name).to_string();
    let mut kinds: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (i, s) in data.stories.iter().enumerate() {
        let k = kinds.entry(kind(&s.name)).or_default();
        k.0 += 1;
        k.1 += usize::from(by_anomaly.contains(&i));
    }
    let benign_anomaly_alerts = alerts
        .iter()
        .filter(|a| is_anomaly(a) && !is_attack(a))
        .count();
    let attack_anomaly_alerts = alerts
        .iter()
        .filter(|a| is_anomaly(a) && is_attack(a))
        .count();
    let benign_rule_alerts = alerts
        .iter()
        .filter(|a| !is_anomaly(a) && !is_attack(a))
        .count();
    let per_10k = |n: usize| n as f64 * 10_000.0 / data.benign_test_events.max(1) as f64;
    let recall = by_anomaly.len() as f64 / data.stories.len().max(1) as f64;

    // The feedback model: the analyst labels the first N alerts of the queue.
    let facts = |a: &Alert| {
        let f = a.event_ids.first().and_then(|id| features.get(id.as_str()));
        AlertFacts {
            rule_id: a.rule_id.clone(),
            kind: if is_anomaly(a) { "anomaly" } else { "rule" }.into(),
            level: a.level,
            count: a.count,
            features: f.map(|(v, _)| v.to_vec()),
            anomaly_score: f.map(|(_, s)| *s),
        }
    };
    let all: Vec<(AlertFacts, bool)> = alerts.iter().map(|a| (facts(a), is_attack(a))).collect();
    let mut feedback_rows = Vec::new();
    for &n in &args.labels {
        if n >= all.len() {
            feedback_rows.push(
                json!({"labels": n, "error": format!("only {} alerts in the queue", all.len())}),
            );
            continue;
        }
        let (train, rest) = all.split_at(n);
        match feedback::train(train, 5, args.seed) {
            Err(e) => feedback_rows.push(json!({"labels": n, "error": e})),
            Ok((model, cv)) => {
                let scores: Vec<f64> = rest.iter().map(|(f, _)| model.score(f)).collect();
                let truth: Vec<bool> = rest.iter().map(|(_, t)| *t).collect();
                let fp = truth.iter().filter(|t| !**t).count();
                let tp = truth.len() - fp;
                let closed_fp = scores
                    .iter()
                    .zip(&truth)
                    .filter(|(s, t)| !**t && **s < args.auto_close_below)
                    .count();
                let closed_tp = scores
                    .iter()
                    .zip(&truth)
                    .filter(|(s, t)| **t && **s < args.auto_close_below)
                    .count();
                feedback_rows.push(json!({
                    "labels": n,
                    "cv_auc": cv.auc, "cv_precision": cv.precision, "cv_recall": cv.recall,
                    "rest_alerts": rest.len(), "rest_false_positives": fp, "rest_true_positives": tp,
                    "auto_close_below": args.auto_close_below,
                    "false_positives_closed": closed_fp, "true_positives_closed": closed_tp,
                    "false_positive_cut": if fp > 0 { Some(closed_fp as f64 / fp as f64) } else { None },
                    "rest_auc": auc(&scores, &truth),
                }));
            }
        }
    }

    let report = json!({
        "seed": args.seed, "days": args.days, "test_days": args.test_days, "scale": args.scale,
        "target_rate": args.target_rate,
        "history_events": history_events,
        "test_events": outcome.input.len(),
        "benign_test_events": data.benign_test_events,
        "scored_test_events": outcome.scored.len(),
        "learning_test_events": outcome.learning,
        "trained_on": outcome.model.trained_on,
        "threshold": outcome.model.threshold,
        "stories": data.stories.len(),
        "stories_flagged_by_anomaly": by_anomaly.len(),
        "recall": recall,
        "recall_by_kind": kinds.iter().map(|(k, (n, hit))| (k.clone(), json!({"stories": n, "flagged": hit}))).collect::<serde_json::Map<_, _>>(),
        "stories_flagged_before_the_write": early.len(),
        "stories_flagged_by_rules": by_rule.len(),
        "anomaly_signals": anomaly_signals,
        "anomaly_signals_on_benign": benign_signals,
        "anomaly_alerts_on_attacks": attack_anomaly_alerts,
        "anomaly_alerts_on_benign": benign_anomaly_alerts,
        "anomaly_alerts_per_10k_benign": per_10k(benign_anomaly_alerts),
        "rule_alerts_on_benign": benign_rule_alerts,
        "feedback": feedback_rows,
        "seconds": started.elapsed().as_secs_f64(),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "anomaly eval: seed {}, {} days ({} of history, {} events; {} test days, {} benign events, {} scored), {} behaviour-only stories",
            args.seed,
            args.days,
            args.days - args.test_days,
            history_events,
            args.test_days,
            data.benign_test_events,
            outcome.scored.len(),
            data.stories.len()
        );
        println!(
            "model: trained on {} vectors, threshold {:.3} (target rate {})",
            outcome.model.trained_on, outcome.model.threshold, args.target_rate
        );
        println!(
            "recall: {}/{} stories flagged by an anomaly alert ({:.1}%); rules alone flag {}",
            by_anomaly.len(),
            data.stories.len(),
            recall * 100.0,
            by_rule.len()
        );
        for (k, (n, hit)) in &kinds {
            println!("  {k:<20} {hit}/{n}");
        }
        println!(
            "  {} of the stories were flagged on an ordinary read, before their sensitive write",
            early.len()
        );
        println!(
            "false positives: {} anomaly alerts on benign activity = {:.2} per 10,000 benign events ({} signals); rules: {} alerts on benign activity",
            benign_anomaly_alerts,
            per_10k(benign_anomaly_alerts),
            benign_signals,
            benign_rule_alerts
        );
        for r in &feedback_rows {
            if let Some(e) = r.get("error") {
                println!("feedback after {} labels: {}", r["labels"], e);
                continue;
            }
            println!(
                "feedback after {} labels: cv AUC {}, on the next {} alerts: {}/{} false positives auto-closed below {}, {}/{} true positives closed, AUC {}",
                r["labels"],
                fmt_opt(r["cv_auc"].as_f64()),
                r["rest_alerts"],
                r["false_positives_closed"],
                r["rest_false_positives"],
                args.auto_close_below,
                r["true_positives_closed"],
                r["rest_true_positives"],
                fmt_opt(r["rest_auc"].as_f64()),
            );
        }
        if args.verbose {
            for (i, s) in data.stories.iter().enumerate() {
                if by_anomaly.contains(&i) {
                    continue;
                }
                let best = s
                    .event_ids
                    .iter()
                    .filter_map(|id| features.get(id.as_str()).map(|f| f.1))
                    .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
                println!(
                    "missed: {} ({}): best score {}",
                    s.name,
                    s.summary,
                    fmt_opt(best)
                );
            }
            for a in alerts.iter().filter(|a| is_anomaly(a) && !is_attack(a)) {
                println!(
                    "benign anomaly alert: {} {}: {}",
                    a.first_seen, a.entity, a.explanation
                );
            }
        }
    }
    Ok(EXIT_OK)
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.3}"))
}
