//! The rule pack under rules/: every rule loads, lints clean, and passes its fixtures; every AWS
//! technique of Stratus Red Team has a rule.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cloudsentinel_detect::lint::{Catalog, lint};
use cloudsentinel_detect::{RuleSetBuilder, fixtures};

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

#[test]
fn every_rule_passes_its_fixtures() {
    let report = fixtures::check_dir(&rules_dir()).expect("rules/ readable");
    let failures: Vec<String> = report
        .failures
        .iter()
        .map(|f| format!("{} {}: {}", f.rule, f.case, f.reason))
        .collect();
    assert!(
        failures.is_empty(),
        "{} fixture failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        report.rules >= 44,
        "only {} rules in the pack",
        report.rules
    );
    assert!(
        report.cases >= 2 * report.rules,
        "{} cases for {} rules",
        report.cases,
        report.rules
    );
}

#[test]
fn the_builtin_pack_loads_without_failures_or_lint_warnings() {
    let mut b = RuleSetBuilder::new();
    cloudsentinel_detect::add_builtin(&mut b);
    let set = b.build();
    assert!(set.failures().is_empty(), "{:?}", set.failures());
    let warnings = lint(&set, Catalog::builtin());
    assert!(warnings.is_empty(), "{warnings:#?}");
    for r in set.rules() {
        if r.correlation_only {
            continue;
        }
        assert!(
            !r.techniques.is_empty(),
            "{}: no ATT&CK technique tag",
            r.source
        );
        assert!(!r.tactics.is_empty(), "{}: no ATT&CK tactic tag", r.source);
        assert!(r.description.is_some(), "{}: no description", r.source);
        assert!(r.remedy.is_some(), "{}: no remedy", r.source);
        assert!(
            !r.false_positives.is_empty(),
            "{}: no falsepositives",
            r.source
        );
    }
}

fn stratus_ids_in_rules() -> BTreeSet<String> {
    let mut covered = BTreeSet::new();
    for f in cloudsentinel_detect::sigma::rule_files(&rules_dir()).unwrap() {
        let text = std::fs::read_to_string(&f).unwrap();
        for doc in text.split("\n---") {
            let v: serde_json::Value = match yaml_serde::from_str(doc) {
                Ok(v) => v,
                Err(_) => continue,
            };
            if let Some(list) = v.get("stratus").and_then(|s| s.as_array()) {
                covered.extend(list.iter().filter_map(|s| s.as_str().map(str::to_string)));
            }
        }
    }
    covered
}

/// Stratus technique ids of these platforms, or `None` (and a loud note) without ../shared.
fn stratus_techniques(platforms: &[&str]) -> Option<BTreeSet<String>> {
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/stratus/stratus_techniques.json");
    let Ok(text) = std::fs::read_to_string(&catalog) else {
        eprintln!(
            "SKIPPED: {} is not there; the Stratus coverage check needs ../shared beside the repository",
            catalog.display()
        );
        return None;
    };
    let techniques: serde_json::Value =
        serde_json::from_str(&text).expect("stratus catalog is JSON");
    Some(
        techniques
            .as_array()
            .expect("a list")
            .iter()
            .filter(|t| platforms.iter().any(|p| t["platform"].as_str() == Some(p)))
            .filter_map(|t| t["id"].as_str().map(str::to_string))
            .collect(),
    )
}

#[test]
fn every_stratus_azure_entra_and_gcp_technique_has_a_rule() {
    let Some(wanted) = stratus_techniques(&["Azure", "Entra ID", "GCP"]) else {
        return;
    };
    assert_eq!(wanted.len(), 47);
    let covered = stratus_ids_in_rules();
    let missing: Vec<_> = wanted.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "Stratus Azure / Entra ID / GCP techniques without a rule: {missing:?}"
    );
}

#[test]
fn every_stratus_aws_technique_has_a_rule() {
    let Some(wanted) = stratus_techniques(&["AWS"]) else {
        return;
    };
    assert!(
        wanted.len() >= 44,
        "catalog lists {} AWS techniques",
        wanted.len()
    );
    let covered = stratus_ids_in_rules();
    let missing: Vec<_> = wanted.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "Stratus AWS techniques without a rule: {missing:?}"
    );
}
