//! Rule linting beyond "does it load": a CloudTrail rule that selects an eventSource or an
//! eventName that never occurs in CloudTrail can never fire. `iam:PassRole` is a permission, not
//! an API call, so `eventName: PassRole` is dead; so is a misspelt event name.
//!
//! The catalog (`data/aws_event_catalog.txt`) lists every CloudTrail event source with its event
//! names; `scripts/gen_aws_event_catalog.py` regenerates it from botocore's service models.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use rsigma_parser::{Detection, SigmaValue};
use serde::Serialize;

use crate::sigma::RuleSet;

static CATALOG_TEXT: &str = include_str!("../data/aws_event_catalog.txt");

/// Event source -> event names.
pub struct Catalog {
    sources: HashMap<String, HashSet<String>>,
    all_names: HashSet<String>,
}

impl Catalog {
    pub fn parse(text: &str) -> Catalog {
        let mut sources: HashMap<String, HashSet<String>> = HashMap::new();
        let mut all_names = HashSet::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_ascii_whitespace();
            let Some(src) = parts.next() else { continue };
            let names = sources.entry(src.to_ascii_lowercase()).or_default();
            for n in parts {
                names.insert(n.to_ascii_lowercase());
                all_names.insert(n.to_ascii_lowercase());
            }
        }
        Catalog { sources, all_names }
    }

    /// The catalog compiled into the binary.
    pub fn builtin() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| Catalog::parse(CATALOG_TEXT))
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    pub fn has_source(&self, source: &str) -> bool {
        self.sources.contains_key(&source.to_ascii_lowercase())
    }

    /// Whether `name` can occur for `source` (any source when `None`). Lambda's CloudTrail names
    /// carry an API-version suffix (`UpdateFunctionCode20150331v2`), accepted here.
    pub fn has_name(&self, source: Option<&str>, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        let base = strip_version_suffix(&lower);
        let known = |set: &HashSet<String>| set.contains(&lower) || set.contains(base);
        match source.map(|s| s.to_ascii_lowercase()) {
            Some(s) => match self.sources.get(&s) {
                Some(names) => known(names),
                None => true, // unknown source: reported on its own
            },
            None => known(&self.all_names),
        }
    }
}

/// `updatefunctioncode20150331v2` -> `updatefunctioncode`.
fn strip_version_suffix(name: &str) -> &str {
    let trimmed = match name.rfind('v') {
        Some(i)
            if i > 0
                && name[i + 1..].chars().all(|c| c.is_ascii_digit())
                && !name[i + 1..].is_empty() =>
        {
            &name[..i]
        }
        _ => name,
    };
    let digits = trimmed
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .count();
    if digits == 8 {
        &trimmed[..trimmed.len() - 8]
    } else {
        name
    }
}

/// Something about a rule that loads but is probably wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub path: String,
    pub rule: String,
    pub message: String,
}

/// Plain (no modifier, no wildcard) values a detection compares `field` with.
fn plain_values(det: &Detection, field: &str, out: &mut Vec<String>) {
    match det {
        Detection::AllOf(items) => {
            for item in items {
                let named = item
                    .field
                    .name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(field));
                if named && item.field.modifiers.is_empty() {
                    for v in &item.values {
                        if let SigmaValue::String(s) = v
                            && let Some(p) = s.as_plain()
                        {
                            out.push(p);
                        }
                    }
                }
            }
        }
        Detection::AnyOf(subs) => {
            for d in subs {
                plain_values(d, field, out);
            }
        }
        _ => {}
    }
}

/// Warnings for the CloudTrail rules of a rule set.
pub fn lint(rules: &RuleSet, catalog: &Catalog) -> Vec<Warning> {
    let mut warnings = Vec::new();
    if catalog.is_empty() {
        return warnings;
    }
    for (rule, path) in rules.parsed_rules() {
        if !rule
            .logsource
            .product
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case("aws"))
        {
            continue;
        }
        let mut sources = Vec::new();
        let mut names = Vec::new();
        let mut dets: Vec<_> = rule.detection.named.iter().collect();
        dets.sort_by(|a, b| a.0.cmp(b.0));
        for (_, det) in dets {
            plain_values(det, "eventSource", &mut sources);
            plain_values(det, "eventName", &mut names);
        }
        sources.sort();
        sources.dedup();
        names.sort();
        names.dedup();
        let mut warn = |message: String| {
            warnings.push(Warning {
                path: path.clone(),
                rule: rule.title.clone(),
                message,
            });
        };
        let known_sources: Vec<&String> =
            sources.iter().filter(|s| catalog.has_source(s)).collect();
        for s in &sources {
            if !catalog.has_source(s) {
                warn(format!(
                    "eventSource '{s}' never occurs in CloudTrail (not a known event source)"
                ));
            }
        }
        for n in &names {
            let ok = if known_sources.is_empty() {
                catalog.has_name(None, n)
            } else {
                known_sources.iter().any(|s| catalog.has_name(Some(s), n))
            };
            if !ok {
                let scope = if known_sources.is_empty() {
                    "any event source".to_string()
                } else {
                    known_sources
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let hint = if n.contains(':') {
                    " (an IAM action like 'iam:PassRole' is a permission; CloudTrail records the API name without the service prefix)"
                } else if n.eq_ignore_ascii_case("PassRole") {
                    " (iam:PassRole is a permission checked by other calls, never an API call of its own)"
                } else {
                    ""
                };
                warn(format!(
                    "eventName '{n}' never occurs in CloudTrail for {scope}{hint}"
                ));
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigma::{RuleSetBuilder, RuleText};
    use std::borrow::Cow;

    fn set(yaml: &str) -> RuleSet {
        let mut b = RuleSetBuilder::new();
        b.add_text(RuleText {
            source: "t.yml".into(),
            yaml: Cow::Owned(yaml.to_string()),
        });
        b.build()
    }

    const CATALOG: &str =
        "# test\niam.amazonaws.com CreateUser GetRole\nlambda.amazonaws.com UpdateFunctionCode\n";

    #[test]
    fn dead_event_names_and_sources_are_flagged() {
        let rules = set(r#"
title: Pass role
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventSource: iam.amazonaws.com
    eventName: [PassRole, CreateUser]
  other:
    eventSource: iamm.amazonaws.com
  condition: selection or other
"#);
        let w = lint(&rules, &Catalog::parse(CATALOG));
        let msgs: Vec<_> = w.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(
            msgs.iter()
                .any(|m| m.contains("'PassRole'") && m.contains("permission"))
        );
        assert!(msgs.iter().any(|m| m.contains("iamm.amazonaws.com")));
    }

    #[test]
    fn lambda_version_suffix_and_wildcards_are_accepted() {
        let rules = set(r#"
title: Code
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventSource: lambda.amazonaws.com
    eventName: UpdateFunctionCode20150331v2
  wild:
    eventName|startswith: Nope
  condition: selection or wild
"#);
        assert!(lint(&rules, &Catalog::parse(CATALOG)).is_empty());
    }
}
