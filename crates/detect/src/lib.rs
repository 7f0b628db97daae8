//! Detection: Sigma rules (loading, logsource mapping, evaluation, correlation), the built-in
//! rule pack, rule linting and fixtures. Folding signals into alerts is the alerting crate's
//! (`cloudsentinel-alert`).
//!
//! Main types: [`RuleSetBuilder`] collects rule texts and builds a [`RuleSet`], which runs the
//! detection rules on an [`Event`](cloudsentinel_core::Event) ([`RuleSet::detect`], stateless,
//! any thread) and hands out a [`Correlator`] for the stateful Sigma correlation rules.
//!
//! ```
//! use std::borrow::Cow;
//! use cloudsentinel_detect::{RuleSetBuilder, RuleText};
//! let mut b = RuleSetBuilder::new();
//! b.add_text(RuleText { source: "inline".into(), yaml: Cow::Borrowed(r#"
//! title: Trail stopped
//! id: 00000000-0000-4000-8000-000000000001
//! logsource: {product: aws, service: cloudtrail}
//! detection:
//!   selection: {eventSource: cloudtrail.amazonaws.com, eventName: StopLogging}
//!   condition: selection
//! level: high
//! "#) });
//! let rules = b.build();
//! assert_eq!(rules.len(), 1);
//! assert!(rules.failures().is_empty());
//! ```

pub mod fixtures;
pub mod lint;
pub mod routine;
pub mod sigma;
pub mod stage;

pub use sigma::{
    Correlator, Detections, LoadFailure, RuleKind, RuleMeta, RuleSet, RuleSetBuilder, RuleText,
};
pub use stage::Stage;

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));
}

/// The rule pack compiled into the binary: (path under `rules/`, YAML text).
pub fn builtin_rules() -> &'static [(&'static str, &'static str)] {
    builtin::BUILTIN_RULES
}

/// Adds the built-in pack to a builder.
pub fn add_builtin(builder: &mut RuleSetBuilder) {
    for (path, yaml) in builtin_rules() {
        builder.add_text(RuleText {
            source: format!("builtin:{path}"),
            yaml: std::borrow::Cow::Borrowed(yaml),
        });
    }
}
