//! The rule loader on any text: a Sigma file (or several documents) is parsed, compiled and
//! run once on a fixed event. Bad rules must become load failures, never panics.
#![no_main]

use std::borrow::Cow;

use cloudsentinel_core::Origin;
use cloudsentinel_detect::RuleSetBuilder;
use cloudsentinel_detect::sigma::RuleText;
use cloudsentinel_ingest::{Item, decode_bytes};
use libfuzzer_sys::fuzz_target;

const EVENT: &[u8] = br#"{"eventVersion":"1.08","eventTime":"2024-07-30T21:31:21Z","eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging","eventID":"e1","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.9","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/bob","userName":"bob"},"requestParameters":{"name":"main"}}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(yaml) = std::str::from_utf8(data) else {
        return;
    };
    let mut builder = RuleSetBuilder::new();
    builder.add_text(RuleText {
        source: "fuzz.yml".into(),
        yaml: Cow::Borrowed(yaml),
    });
    let rules = builder.build();
    decode_bytes(EVENT, Origin::default(), &mut |item| {
        if let Item::Event(e) = item {
            let _ = rules.detect(&e);
        }
    });
});
