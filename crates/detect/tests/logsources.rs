//! The logsource mapping: each provider's events meet only the rules written for them, and the
//! field names public Sigma rules use for Azure and GCP resolve on the raw records.

use std::borrow::Cow;

use cloudsentinel_core::{Event, Origin};
use cloudsentinel_detect::{RuleSet, RuleSetBuilder, RuleText};
use cloudsentinel_ingest::{Item, decode_bytes};

fn rules(yaml: &str) -> RuleSet {
    let mut b = RuleSetBuilder::new();
    b.add_text(RuleText {
        source: "test.yml".into(),
        yaml: Cow::Owned(yaml.to_string()),
    });
    let set = b.build();
    assert!(set.failures().is_empty(), "{:?}", set.failures());
    set
}

fn event(json: &str) -> Event {
    let mut out = None;
    decode_bytes(json.as_bytes(), Origin::default(), &mut |item| match item {
        Item::Event(e) => out = Some(*e),
        Item::Error(e) => panic!("{e}"),
        _ => {}
    });
    out.expect("one event")
}

fn fired(set: &RuleSet, ev: &Event) -> Vec<String> {
    set.detect(ev)
        .matches
        .iter()
        .map(|m| m.rule.title.clone())
        .collect()
}

const GCP_DELETE: &str = r#"{"insertId":"x1","logName":"projects/p/logs/cloudaudit.googleapis.com%2Factivity","timestamp":"2024-05-01T12:00:00Z",
 "resource":{"type":"gcs_bucket","labels":{"project_id":"p","bucket_name":"b"}},
 "protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","serviceName":"storage.googleapis.com","methodName":"storage.buckets.delete",
  "authenticationInfo":{"principalEmail":"eve@example.com"},"requestMetadata":{"callerIp":"198.51.100.1"}}}"#;

const AZURE_SIGNIN: &str = r#"{"time":"2025-01-15T09:30:45Z","operationName":"Sign-in activity","category":"SignInLogs","resultType":"50126",
 "resultDescription":"Invalid username or password","callerIpAddress":"203.0.113.7",
 "properties":{"userPrincipalName":"alice@contoso.com","authenticationRequirement":"singleFactorAuthentication","status":{"errorCode":50126}}}"#;

#[test]
fn sigmahq_gcp_field_names_resolve_on_raw_log_entries() {
    let set = rules(
        r#"
title: Bucket Deleted (SigmaHQ naming)
logsource: {product: gcp, service: gcp.audit}
detection:
  selection:
    gcp.audit.method_name: storage.buckets.delete
  condition: selection
level: medium
"#,
    );
    assert_eq!(
        fired(&set, &event(GCP_DELETE)),
        ["Bucket Deleted (SigmaHQ naming)"]
    );
}

#[test]
fn sentinel_column_names_resolve_on_raw_sign_ins() {
    let set = rules(
        r#"
title: Bad Password (Sentinel naming)
logsource: {product: azure, service: signinlogs}
detection:
  selection:
    ResultType: 50126
    AuthenticationRequirement: singleFactorAuthentication
  condition: selection
level: low
"#,
    );
    assert_eq!(
        fired(&set, &event(AZURE_SIGNIN)),
        ["Bad Password (Sentinel naming)"]
    );
}

#[test]
fn rules_of_one_logsource_never_see_another() {
    // The same field and value, under three logsources: only the matching one fires.
    let set = rules(
        r#"
title: On GCP
logsource: {product: gcp, service: gcp.audit}
detection: {selection: {protoPayload.methodName: storage.buckets.delete}, condition: selection}
---
title: On AWS
logsource: {product: aws, service: cloudtrail}
detection: {selection: {protoPayload.methodName: storage.buckets.delete}, condition: selection}
---
title: On Azure audit
logsource: {product: azure, service: auditlogs}
detection: {selection: {resultType: "50126"}, condition: selection}
---
title: On Azure sign-ins
logsource: {product: azure, service: signinlogs}
detection: {selection: {resultType: "50126"}, condition: selection}
"#,
    );
    assert_eq!(fired(&set, &event(GCP_DELETE)), ["On GCP"]);
    assert_eq!(fired(&set, &event(AZURE_SIGNIN)), ["On Azure sign-ins"]);
}

#[test]
fn rules_without_an_id_are_told_apart_by_file() {
    // Two id-less rules with the same title in different files: each alerts as itself.
    let rule = |field: &str| {
        format!(
            "title: Same Title\nlogsource: {{product: gcp, service: gcp.audit}}\ndetection: {{selection: {{{field}: storage.buckets.delete}}, condition: selection}}\nlevel: low\n"
        )
    };
    let mut b = RuleSetBuilder::new();
    b.add_text(RuleText {
        source: "a.yml".into(),
        yaml: Cow::Owned(rule("protoPayload.methodName")),
    });
    b.add_text(RuleText {
        source: "b.yml".into(),
        yaml: Cow::Owned(rule("protoPayload.serviceName")),
    });
    let set = b.build();
    assert!(set.failures().is_empty(), "{:?}", set.failures());
    let ids: Vec<String> = set
        .detect(&event(GCP_DELETE))
        .matches
        .iter()
        .map(|m| m.rule.id.clone())
        .collect();
    assert_eq!(ids, ["a.yml#Same Title"]);
}
