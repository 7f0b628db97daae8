//! Where detection time goes, rule by rule.
//!
//! `cargo bench --bench rule_cost -- EVENTS.jsonl RULES_DIR...` decodes the events once, then
//! times every rule file alone over all of them and prints the costliest, with how often each
//! matched. A rule the candidate index cannot prune shows up here.

use std::borrow::Cow;
use std::path::PathBuf;
use std::time::Instant;

use cloudsentinel_core::{Event, Origin};
use cloudsentinel_detect::sigma::{RuleSetBuilder, RuleText, rule_files};
use cloudsentinel_ingest::{Item, decode_bytes};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let (events_path, dirs) = args
        .split_first()
        .expect("usage: rule_cost EVENTS.jsonl RULES_DIR...");
    let bytes = std::fs::read(events_path).expect("events file");
    let mut events: Vec<Event> = Vec::new();
    decode_bytes(&bytes, Origin::default(), &mut |item| {
        if let Item::Event(e) = item {
            events.push(*e);
        }
    });
    let n = events.len() as f64;
    let mut rows = Vec::new();
    let mut total = 0.0;
    for dir in dirs {
        for f in rule_files(&PathBuf::from(dir)).expect("rules dir") {
            let mut b = RuleSetBuilder::new();
            b.add_text(RuleText {
                source: f.display().to_string(),
                yaml: Cow::Owned(std::fs::read_to_string(&f).unwrap()),
            });
            let set = b.build();
            let t = Instant::now();
            let mut hits = 0usize;
            for e in &events {
                let d = set.detect(e);
                hits += d.matches.len() + usize::from(d.for_correlation.is_some());
            }
            let ns = t.elapsed().as_secs_f64() * 1e9 / n;
            total += ns;
            rows.push((ns, hits, f.display().to_string()));
        }
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!(
        "{} events; sum over rule files: {:.0} ns/event (each file alone, so index sharing is not counted)",
        events.len(),
        total
    );
    for (ns, hits, f) in rows.iter().take(25) {
        println!("{ns:>8.0} ns/event {hits:>8} matches  {f}");
    }
}
