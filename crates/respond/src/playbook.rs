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
//! none has (it names what was missing). In a path, `name[key=value]` is, of the list `name`,
//! its first element whose `key` is `value` (of an object: the object, if its `key` is
//! `value`), and a number is a list's element by position; `{path|last}` is the value's last
//! `/`-separated part. For a GCP IAM change:
//!
//! ```yaml
//! actions:
//!   - action: gcp.remove-iam-binding
//!     project: "{resource[type=project].labels.project_id}"     # only a project's policy
//!     role: "{protoPayload.serviceData.policyDelta.bindingDeltas[action=ADD].role}"
//!     member: "{protoPayload.serviceData.policyDelta.bindingDeltas[action=ADD].member}"
//!   - action: gcp.disable-service-account-key
//!     project: "{resource.labels.project_id}"
//!     service_account: "{resource.labels.email_id}"
//!     key_id: "{protoPayload.response.name|last}"  # projects/p/serviceAccounts/e/keys/<id>
//! ```

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
    (
        "gcp_service_account_key_created.yml",
        include_str!("../../../playbooks/gcp_service_account_key_created.yml"),
    ),
    (
        "gcp_privileged_binding_added.yml",
        include_str!("../../../playbooks/gcp_privileged_binding_added.yml"),
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
            for (k, v) in a {
                if let Some(template) = v.as_str() {
                    check_template(template)
                        .map_err(|e| format!("playbook {name}: actions[{i}].{k}: {e}"))?;
                }
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

    /// Whether every action it proposes is exactly reversible (`mode: auto` needs that).
    pub fn reversible(&self) -> bool {
        self.actions.iter().all(|a| {
            a.get("action")
                .and_then(Value::as_str)
                .is_some_and(crate::reversible)
        })
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

/// The placeholders of a template: `(path, filter)` each, or what is malformed.
fn placeholders(s: &str) -> Result<Vec<(&str, Option<&str>)>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .map(|c| c + open)
            .ok_or_else(|| format!("{s:?}: a {{ without its }}"))?;
        out.push(split_placeholder(&rest[open + 1..close]));
        rest = &rest[close + 1..];
    }
    Ok(out)
}

/// `path|filter` into the path and the filter.
fn split_placeholder(inside: &str) -> (&str, Option<&str>) {
    match inside.split_once('|') {
        Some((path, filter)) => (path, Some(filter)),
        None => (inside, None),
    }
}

/// Whether a template's placeholders are well formed (filters known, selectors closed).
fn check_template(s: &str) -> Result<(), String> {
    for (path, filter) in placeholders(s)? {
        if let Some(f) = filter
            && f != "last"
        {
            return Err(format!(
                "{{{path}|{f}}}: unknown filter {f:?} (known: last)"
            ));
        }
        for part in path.split('.') {
            if let Some((_, selector)) = part.split_once('[')
                && !selector
                    .strip_suffix(']')
                    .is_some_and(|sel| sel.contains('='))
            {
                return Err(format!("{{{path}}}: {part:?}: expected name[key=value]"));
            }
        }
    }
    Ok(())
}

/// The value at a dotted path (with `name[key=value]` selectors and list positions).
fn lookup<'a>(record: &'a Value, path: &str) -> Option<&'a Value> {
    let mut v = record;
    for part in path.split('.') {
        let (name, selector) = match part.split_once('[') {
            Some((name, sel)) => (name, Some(sel.strip_suffix(']')?.split_once('=')?)),
            None => (part, None),
        };
        v = match v {
            Value::Array(items) => items.get(name.parse::<usize>().ok()?)?,
            _ => v.get(name)?,
        };
        if let Some((key, want)) = selector {
            let fits = |x: &Value| x.get(key).and_then(Value::as_str) == Some(want);
            v = match v {
                Value::Array(items) => items.iter().find(|x| fits(x))?,
                x if fits(x) => x,
                _ => return None,
            };
        }
    }
    Some(v)
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
        let (path, filter) = split_placeholder(&rest[open + 1..close]);
        let value = match lookup(record, path) {
            Some(Value::String(x)) => x.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(path.to_string()),
        };
        let value = match filter {
            Some("last") => value.rsplit('/').next().unwrap_or_default().to_string(),
            _ => value,
        };
        if value.is_empty() {
            return Err(path.to_string());
        }
        out.push_str(&value);
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

    fn builtin(id: &str) -> Playbook {
        Playbook::builtin()
            .into_iter()
            .find(|p| p.id == id)
            .unwrap_or_else(|| panic!("no built-in playbook {id}"))
    }

    fn fixtures(text: &str, which: &str) -> Vec<Value> {
        let v: Value = serde_json::from_str(text).unwrap();
        v[which].as_array().unwrap().clone()
    }

    #[test]
    fn a_created_service_account_key_is_disabled_with_the_values_of_its_audit_record() {
        let p = builtin("gcp-service-account-key-created");
        let records = fixtures(
            include_str!(
                "../../../rules/gcp/persistence_service_account_key_created.fixtures.json"
            ),
            "match",
        );
        for record in &records {
            assert_eq!(
                p.propose(std::slice::from_ref(record))[0].action,
                Ok(Action::GcpDisableServiceAccountKey {
                    project: "nw-prod-4821".into(),
                    service_account: "billing-exporter@nw-prod-4821.iam.gserviceaccount.com".into(),
                    key_id: "5f2c0a8e4b1d9c7f3e6a2b0d8c4f1e9a7b3c5d20".into(),
                }),
                "{record}"
            );
        }
    }

    #[test]
    fn an_added_binding_is_removed_from_a_project_policy_only() {
        let p = builtin("gcp-privileged-binding-added");
        let text = include_str!(
            "../../../rules/gcp/privilege_escalation_owner_or_editor_granted_to_identity.fixtures.json"
        );
        let (mut projects, mut others) = (0, 0);
        for record in fixtures(text, "match") {
            let got = &p.propose(std::slice::from_ref(&record))[0].action;
            let delta = &record["protoPayload"]["serviceData"]["policyDelta"]["bindingDeltas"][0];
            if record["resource"]["type"] == "project" {
                projects += 1;
                assert_eq!(
                    got,
                    &Ok(Action::GcpRemoveIamBinding {
                        project: record["resource"]["labels"]["project_id"]
                            .as_str()
                            .unwrap()
                            .into(),
                        role: delta["role"].as_str().unwrap().into(),
                        member: delta["member"].as_str().unwrap().into(),
                    })
                );
            } else {
                others += 1;
                assert_eq!(
                    got,
                    &Err("no evidence event has resource[type=project].labels.project_id".into()),
                    "an organisation's policy is not a project's"
                );
            }
        }
        assert!(projects > 0 && others > 0, "{projects} {others}");
        // The first binding the call added, not one it removed.
        let record = json!({"resource": {"type": "project", "labels": {"project_id": "p-1"}},
            "protoPayload": {"serviceData": {"policyDelta": {"bindingDeltas": [
                {"action": "REMOVE", "role": "roles/owner", "member": "user:old@x.com"},
                {"action": "ADD", "role": "roles/editor", "member": "serviceAccount:b@p-1.iam.gserviceaccount.com"},
                {"action": "ADD", "role": "roles/owner", "member": "user:eve@gmail.com"}]}}}});
        assert_eq!(
            p.propose(&[record])[0].action,
            Ok(Action::GcpRemoveIamBinding {
                project: "p-1".into(),
                role: "roles/editor".into(),
                member: "serviceAccount:b@p-1.iam.gserviceaccount.com".into(),
            })
        );
    }

    #[test]
    fn paths_select_list_elements_and_filters_take_the_last_part() {
        let r = json!({"a": [{"k": "x", "v": "1"}, {"k": "y", "v": "2"}], "o": {"type": "t", "n": "projects/p/keys/k9"}});
        assert_eq!(fill("{a[k=y].v}", &r), Ok("2".into()));
        assert_eq!(fill("{a.0.v}-{a.1.v}", &r), Ok("1-2".into()));
        assert_eq!(fill("{o[type=t].n|last}", &r), Ok("k9".into()));
        assert_eq!(fill("{o[type=u].n}", &r), Err("o[type=u].n".into()));
        assert_eq!(fill("{a[k=z].v}", &r), Err("a[k=z].v".into()));
        assert_eq!(fill("{a.2.v}", &r), Err("a.2.v".into()));
    }

    #[test]
    fn bad_playbooks_say_what_is_wrong() {
        let e = Playbook::parse(
            "f.yml",
            "id: f\ntitle: F\nwhen: {}\nmode: propose\nactions:\n  - action: aws.deny-all\n    kind: User\n    name: \"{a.b|first}\"\n",
        )
        .unwrap_err();
        assert!(
            e.contains("actions[0].name") && e.contains("unknown filter"),
            "{e}"
        );
        let e = Playbook::parse(
            "g.yml",
            "id: g\ntitle: G\nwhen: {}\nmode: propose\nactions:\n  - action: aws.deny-all\n    kind: User\n    name: \"{a[b.c}\"\n",
        )
        .unwrap_err();
        assert!(e.contains("expected name[key=value]"), "{e}");
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
