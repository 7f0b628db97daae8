//! Playbooks, as YAML files like the detection packs: which alerts (rule, technique, level,
//! kind) propose which actions, with parameters taken from the alert's evidence.
//!
//! ```yaml
//! id: aws-leaked-user-key
//! title: Contain a leaked IAM user access key
//! when:
//!   techniques: [T1078.004]        # any of (T1078 also matches T1078.004)
//!   rules: []                      # any of (rule ids); empty: any rule
//!   min_level: high
//!   kinds: [rule, correlation]     # empty: any kind
//! mode: propose                    # propose (a responder approves) | auto | off
//! actions:
//!   - action: aws.deactivate-access-key
//!     user: "{userIdentity.userName}"
//!     access_key_id: "{userIdentity.accessKeyId}"
//! ```
//!
//! A `{path}` is read from the evidence events' original records (dotted JSON path); an action
//! is proposed with the first evidence event that has every value it needs, and not at all when
//! none has (it names what was missing).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Action;

/// Whether a playbook's actions wait for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Proposed; a responder approves and runs them.
    Propose,
    /// Run at once, when every action is reversible and the guardrails admit it.
    Auto,
    Off,
}

/// Which alerts a playbook is for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    #[serde(default)]
    pub rules: Vec<String>,
    #[serde(default)]
    pub techniques: Vec<String>,
    #[serde(default)]
    pub min_level: Option<String>,
    #[serde(default)]
    pub kinds: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    pub when: When,
    pub mode: Mode,
    /// Actions as templates: an action's fields with `{path}` placeholders.
    pub actions: Vec<serde_json::Map<String, Value>>,
}

/// The facts of an alert a playbook matches on.
pub struct AlertFacts<'a> {
    pub rule_id: &'a str,
    pub techniques: &'a [String],
    /// `informational` .. `critical`.
    pub level: &'a str,
    pub kind: &'a str,
}

/// An action a playbook proposes for an alert, or why it could not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proposal {
    pub playbook: String,
    pub playbook_title: String,
    pub mode: Mode,
    pub action: Result<Action, String>,
}

const LEVELS: [&str; 5] = ["informational", "low", "medium", "high", "critical"];

fn rank(level: &str) -> usize {
    LEVELS.iter().position(|l| *l == level).unwrap_or(0)
}

/// The playbooks that ship with CloudSentinel (`playbooks/` in the repository).
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "aws_leaked_user_key.yml",
        include_str!("../../../playbooks/aws_leaked_user_key.yml"),
    ),
    (
        "aws_stolen_instance_credentials.yml",
        include_str!("../../../playbooks/aws_stolen_instance_credentials.yml"),
    ),
    (
        "aws_console_takeover.yml",
        include_str!("../../../playbooks/aws_console_takeover.yml"),
    ),
];

impl Playbook {
    /// Reads one playbook; the error names the file and what is wrong.
    pub fn parse(name: &str, yaml: &str) -> Result<Playbook, String> {
        let p: Playbook =
            yaml_serde::from_str(yaml).map_err(|e| format!("playbook {name}: {e}"))?;
        if let Some(l) = &p.when.min_level
            && !LEVELS.contains(&l.as_str())
        {
            return Err(format!("playbook {name}: when.min_level {l:?} is no level"));
        }
        for (i, a) in p.actions.iter().enumerate() {
            let kind = a.get("action").and_then(Value::as_str).unwrap_or("");
            if !crate::ACTIONS.contains(&kind) {
                return Err(format!(
                    "playbook {name}: actions[{i}].action {kind:?}: expected one of {}",
                    crate::ACTIONS.join(", ")
                ));
            }
        }
        Ok(p)
    }

    /// The built-in playbooks.
    pub fn builtin() -> Vec<Playbook> {
        BUILTIN
            .iter()
            .map(|(name, yaml)| Playbook::parse(name, yaml).expect("the built-in playbooks parse"))
            .collect()
    }

    pub fn matches(&self, a: &AlertFacts<'_>) -> bool {
        let w = &self.when;
        self.mode != Mode::Off
            && (w.rules.is_empty() || w.rules.iter().any(|r| r == a.rule_id))
            && (w.techniques.is_empty()
                || w.techniques.iter().any(|t| {
                    a.techniques
                        .iter()
                        .any(|x| x == t || x.starts_with(&format!("{t}.")))
                }))
            && w.min_level
                .as_deref()
                .is_none_or(|m| rank(a.level) >= rank(m))
            && (w.kinds.is_empty() || w.kinds.iter().any(|k| k == a.kind))
    }

    /// Its actions for an alert whose evidence records are `evidence`.
    pub fn propose(&self, evidence: &[Value]) -> Vec<Proposal> {
        self.actions
            .iter()
            .map(|template| Proposal {
                playbook: self.id.clone(),
                playbook_title: self.title.clone(),
                mode: self.mode,
                action: instantiate(template, evidence),
            })
            .collect()
    }
}

/// The playbooks' proposals for an alert.
pub fn proposals(
    playbooks: &[Playbook],
    alert: &AlertFacts<'_>,
    evidence: &[Value],
) -> Vec<Proposal> {
    playbooks
        .iter()
        .filter(|p| p.matches(alert))
        .flat_map(|p| p.propose(evidence))
        .collect()
}

/// Fills a template from the first evidence record that has every value it asks for.
fn instantiate(
    template: &serde_json::Map<String, Value>,
    evidence: &[Value],
) -> Result<Action, String> {
    let mut missing = Vec::new();
    for record in evidence {
        let mut filled = serde_json::Map::new();
        let mut ok = true;
        for (k, v) in template {
            let value = match v.as_str() {
                Some(s) => match fill(s, record) {
                    Ok(s) => Value::String(s),
                    Err(path) => {
                        missing.push(path);
                        ok = false;
                        break;
                    }
                },
                None => v.clone(),
            };
            filled.insert(k.clone(), value);
        }
        if ok {
            return serde_json::from_value(Value::Object(filled)).map_err(|e| e.to_string());
        }
    }
    missing.sort();
    missing.dedup();
    Err(if evidence.is_empty() {
        "no evidence event to take the parameters from".into()
    } else {
        format!("no evidence event has {}", missing.join(", "))
    })
}

/// Replaces every `{path}` in `s` with the record's value there; the error is the first path
/// that has none.
fn fill(s: &str, record: &Value) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .map(|c| c + open)
            .ok_or_else(|| s.to_string())?;
        let path = &rest[open + 1..close];
        let mut v = record;
        for part in path.split('.') {
            v = &v[part];
        }
        match v {
            Value::String(x) if !x.is_empty() => out.push_str(x),
            Value::Number(n) => out.push_str(&n.to_string()),
            _ => return Err(path.to_string()),
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_builtin_playbooks_parse_and_match_their_alerts() {
        let books = Playbook::builtin();
        assert!(books.len() >= 3);
        let leaked = books
            .iter()
            .find(|p| p.id == "aws-leaked-user-key")
            .unwrap();
        let facts = AlertFacts {
            rule_id: "x",
            techniques: &["T1078.004".to_string()],
            level: "high",
            kind: "rule",
        };
        assert!(leaked.matches(&facts));
        let low = AlertFacts {
            level: "low",
            ..facts
        };
        assert!(!leaked.matches(&low), "below its min_level");
    }

    #[test]
    fn parameters_come_from_the_first_evidence_that_has_them_all() {
        let p = Playbook::parse(
            "t.yml",
            "id: t\ntitle: T\nwhen: {}\nmode: propose\nactions:\n  - action: aws.deactivate-access-key\n    user: \"{userIdentity.userName}\"\n    access_key_id: \"{userIdentity.accessKeyId}\"\n",
        )
        .unwrap();
        let evidence = [
            json!({"userIdentity": {"type": "AssumedRole", "accessKeyId": "ASIA1"}}),
            json!({"userIdentity": {"userName": "mallory", "accessKeyId": "AKIA2"}}),
        ];
        let got = p.propose(&evidence);
        assert_eq!(
            got[0].action,
            Ok(Action::AwsDeactivateAccessKey {
                user: "mallory".into(),
                access_key_id: "AKIA2".into()
            })
        );
        let none = p.propose(&evidence[..1]);
        assert_eq!(
            none[0].action,
            Err("no evidence event has userIdentity.userName".into())
        );
    }

    #[test]
    fn bad_playbooks_say_what_is_wrong() {
        let e = Playbook::parse(
            "b.yml",
            "id: b\ntitle: B\nwhen: {}\nmode: propose\nactions:\n  - action: aws.nuke\n",
        )
        .unwrap_err();
        assert!(e.contains("actions[0].action \"aws.nuke\""), "{e}");
        let e = Playbook::parse(
            "c.yml",
            "id: c\ntitle: C\nwhen: {min_level: severe}\nmode: auto\nactions: []\n",
        )
        .unwrap_err();
        assert!(e.contains("min_level"), "{e}");
        assert!(
            Playbook::parse(
                "d.yml",
                "id: d\ntitle: D\nwhen: {}\nmode: sometimes\nactions: []\n"
            )
            .is_err()
        );
    }
}
