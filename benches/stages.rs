//! Where one core's time goes in `hunt`, stage by stage, on events already in memory.
//!
//! `cargo bench --bench stages -- EVENTS.jsonl [RULES_DIR...]` prints the cumulative cost per event
//! of: indexing the record (RawRecord), normalizing it (Event), running the rules, and folding the
//! matches into alerts. Without rule directories the built-in pack is used.

use std::borrow::Cow;
use std::path::PathBuf;
use std::time::Instant;

use cloudsentinel_alert::Folder;
use cloudsentinel_core::RawRecord;
use cloudsentinel_detect::sigma::{RuleSetBuilder, RuleText};
use cloudsentinel_ingest::cloudtrail::normalize;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let (events_path, dirs) = args
        .split_first()
        .expect("usage: stages EVENTS.jsonl [RULES_DIR...]");
    let data = std::fs::read_to_string(events_path).expect("events file");
    let lines: Vec<&str> = data.lines().filter(|l| !l.is_empty()).collect();
    let n = lines.len() as f64;
    let mut b = RuleSetBuilder::new();
    if dirs.is_empty() {
        cloudsentinel_detect::add_builtin(&mut b);
    }
    for d in dirs {
        b.add_path(&PathBuf::from(d)).expect("rules");
    }
    let rules = b.build();
    let empty = RuleSetBuilder::new().build();
    let _ = RuleText {
        source: String::new(),
        yaml: Cow::Borrowed(""),
    };

    let per = |t: Instant| t.elapsed().as_secs_f64() * 1e9 / n;
    let t = Instant::now();
    for l in &lines {
        std::hint::black_box(serde_json::from_str::<serde_json::Value>(l).unwrap());
    }
    let value = per(t);
    let t = Instant::now();
    for l in &lines {
        std::hint::black_box(RawRecord::parse(*l).unwrap());
    }
    let index = per(t);
    let t = Instant::now();
    for l in &lines {
        std::hint::black_box(normalize(RawRecord::parse(*l).unwrap()).unwrap());
    }
    let norm = per(t);
    let t = Instant::now();
    for l in &lines {
        let ev = normalize(RawRecord::parse(*l).unwrap()).unwrap();
        std::hint::black_box(empty.detect(&ev));
    }
    let no_rules = per(t);
    let t = Instant::now();
    let mut matches = 0usize;
    for l in &lines {
        let ev = normalize(RawRecord::parse(*l).unwrap()).unwrap();
        let d = rules.detect(&ev);
        matches += d.matches.len();
        std::hint::black_box(d);
    }
    let detect = per(t);
    let t = Instant::now();
    let mut folder = Folder::new(chrono::Duration::hours(1));
    for l in &lines {
        let ev = normalize(RawRecord::parse(*l).unwrap()).unwrap();
        for m in &rules.detect(&ev).matches {
            folder.add_match(m, &ev);
        }
    }
    let alerts = folder.finish(&rules).len();
    let fold = per(t);
    println!(
        "{} events, {} rules, {matches} rule matches, {alerts} alerts; cumulative ns/event on one core:",
        lines.len(),
        rules.len()
    );
    println!("  serde_json Value parse (reference)  {value:>7.0}");
    println!("  RawRecord index                     {index:>7.0}");
    println!("  + normalize to Event                {norm:>7.0}");
    println!("  + detect, no rules                  {no_rules:>7.0}");
    println!("  + detect with the rules             {detect:>7.0}");
    println!(
        "  + fold signals into alerts          {fold:>7.0}  ({:.0} events/s)",
        1e9 / fold
    );
}
