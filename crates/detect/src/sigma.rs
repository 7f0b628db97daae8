//! Sigma rules: loading (files, directories, the built-in pack), the logsource mapping, and
//! evaluation of detection and correlation rules over [`Event`]s.
//!
//! Evaluation is split in two so that detection can run on many threads:
//! [`RuleSet::detect`] is `&self` and stateless; [`Correlator`] is the stateful, sequential part
//! that Sigma correlation rules need, fed only with the events that matched a rule a correlation
//! refers to.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cloudsentinel_core::compact::EventId;
use cloudsentinel_core::intern::Interner;
use cloudsentinel_core::raw::Scalar;
use cloudsentinel_core::{
    Event, Level, LogKind, Provider, RawRecord, Signal, SignalKind, tactic_from_tag,
    technique_from_tag,
};
use rsigma_eval::event::{EventValue, JsonEvent};
use rsigma_eval::{
    CorrelationAction, CorrelationConfig, CorrelationEngine, CorrelationEventMode, Engine,
    EvaluationResult, ResultBody,
};
use rsigma_parser::{CorrelationRule, LogSource, SigmaCollection, SigmaRule};

use crate::routine::{Facts, HISTORY_DAYS, Routine, RoutineKind};
use serde::Serialize;

/// A rule that could not be loaded, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{path}: {error}")]
pub struct LoadFailure {
    pub path: String,
    pub error: String,
}

/// Whether a rule is a plain detection or a correlation over other rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Detection,
    Correlation,
}

/// What a person needs to know about a loaded rule.
#[derive(Debug, Clone, Serialize)]
pub struct RuleMeta {
    /// The rule's `id`, or `path#title` when it has none.
    pub id: String,
    pub name: Option<String>,
    pub title: String,
    pub kind: RuleKind,
    pub level: Level,
    pub techniques: Vec<String>,
    pub tactics: Vec<String>,
    pub description: Option<String>,
    pub false_positives: Vec<String>,
    pub remedy: Option<String>,
    /// Where the rule came from: a file path, or `builtin:<path>`.
    pub source: String,
    /// Logsource `product`, when set.
    pub product: Option<String>,
    pub service: Option<String>,
    /// For a detection rule referenced by a correlation with `generate: false`: it raises no
    /// alert of its own.
    pub correlation_only: bool,
    /// Whether findings are compared with the actor's history (`routine:` in the rule; see
    /// [`crate::routine`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routine: Option<RoutineKind>,
}

/// One rule document's text and where it came from.
pub struct RuleText<'a> {
    pub source: String,
    pub yaml: Cow<'a, str>,
}

/// Builds a [`RuleSet`] from rule texts, collecting failures instead of stopping.
#[derive(Default)]
pub struct RuleSetBuilder {
    rules: Vec<(SigmaRule, String)>,
    correlations: Vec<(CorrelationRule, String)>,
    failures: Vec<LoadFailure>,
    files: usize,
}

fn level_of(l: Option<rsigma_parser::Level>) -> Level {
    match l {
        Some(rsigma_parser::Level::Informational) => Level::Informational,
        Some(rsigma_parser::Level::Low) => Level::Low,
        Some(rsigma_parser::Level::High) => Level::High,
        Some(rsigma_parser::Level::Critical) => Level::Critical,
        Some(rsigma_parser::Level::Medium) | None => Level::Medium,
    }
}

fn yaml_str(attrs: &HashMap<String, yaml_serde::Value>, key: &str) -> Option<String> {
    attrs
        .get(key)
        .and_then(|v| v.as_str())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The `routine:` attribute: `None` when absent, an error when it names no known kind.
fn routine_of(attrs: &HashMap<String, yaml_serde::Value>) -> Result<Option<RoutineKind>, String> {
    match attrs.get("routine") {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .and_then(RoutineKind::parse)
            .map(Some)
            .ok_or_else(|| "routine: expected `actor` or `shared-egress`".to_string()),
    }
}

fn attack_of(tags: &[String]) -> (Vec<String>, Vec<String>) {
    let mut techniques: Vec<String> = tags.iter().filter_map(|t| technique_from_tag(t)).collect();
    let mut tactics: Vec<String> = tags.iter().filter_map(|t| tactic_from_tag(t)).collect();
    techniques.dedup();
    tactics.dedup();
    (techniques, tactics)
}

impl RuleSetBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one YAML text (which may hold several documents: rules, correlations, filters).
    pub fn add_text(&mut self, text: RuleText<'_>) {
        self.files += 1;
        let collection: SigmaCollection = match rsigma_parser::parse_sigma_yaml(&text.yaml) {
            Ok(c) => c,
            Err(e) => {
                self.failures.push(LoadFailure {
                    path: text.source,
                    error: e.to_string(),
                });
                return;
            }
        };
        for err in &collection.errors {
            self.failures.push(LoadFailure {
                path: text.source.clone(),
                error: explain_parse_error(err, &text.yaml),
            });
        }
        if collection.rules.is_empty()
            && collection.correlations.is_empty()
            && collection.errors.is_empty()
        {
            let error = if collection.filters.is_empty() {
                "no Sigma rule in file".to_string()
            } else {
                "filter rules are not supported yet".to_string()
            };
            self.failures.push(LoadFailure {
                path: text.source.clone(),
                error,
            });
        }
        for r in collection.rules {
            self.rules.push((r, text.source.clone()));
        }
        for c in collection.correlations {
            self.correlations.push((c, text.source.clone()));
        }
    }

    /// Reads a rule file, or every `*.yml` / `*.yaml` file under a directory.
    pub fn add_path(&mut self, path: &Path) -> Result<(), LoadFailure> {
        let meta = std::fs::metadata(path).map_err(|e| LoadFailure {
            path: path.display().to_string(),
            error: format!("cannot read: {e}"),
        })?;
        let files = if meta.is_dir() {
            rule_files(path).map_err(|e| LoadFailure {
                path: path.display().to_string(),
                error: e.to_string(),
            })?
        } else {
            vec![path.to_path_buf()]
        };
        for f in files {
            match std::fs::read_to_string(&f) {
                Ok(yaml) => self.add_text(RuleText {
                    source: f.display().to_string(),
                    yaml: Cow::Owned(yaml),
                }),
                Err(e) => {
                    self.files += 1;
                    self.failures.push(LoadFailure {
                        path: f.display().to_string(),
                        error: format!("cannot read: {e}"),
                    })
                }
            }
        }
        Ok(())
    }

    /// Compiles everything parsed so far.
    pub fn build(self) -> RuleSet {
        let mut failures = self.failures;
        let mut routed: Vec<Engine> = EVENT_LOGSOURCES.iter().map(|_| new_engine()).collect();
        let mut correlation = new_correlation_engine();
        let mut kept_rules = Vec::new();
        let mut kept_correlations = Vec::new();
        let mut meta: HashMap<String, Arc<RuleMeta>> = HashMap::new();
        let mut order = Vec::new();
        let mut rule_keys_by_ref: HashMap<String, String> = HashMap::new();
        let mut seen_ids: HashMap<String, String> = HashMap::new();

        for (rule, source) in &self.rules {
            let key = rule
                .id
                .clone()
                .unwrap_or_else(|| format!("{source}#{}", rule.title));
            if let Some(first) = seen_ids.get(&key) {
                failures.push(LoadFailure {
                    path: source.clone(),
                    error: format!("rule id {key} is already used by {first}; skipped"),
                });
                continue;
            }
            // Results name the rule by id: a rule without one gets its key as id.
            let mut rule = rule.clone();
            rule.id = Some(key.clone());
            let rule = &rule;
            let routine = match routine_of(&rule.custom_attributes) {
                Ok(r) => r,
                Err(e) => {
                    failures.push(LoadFailure {
                        path: source.clone(),
                        error: format!("rule '{}': {e}", rule.title),
                    });
                    continue;
                }
            };
            // Compiling it into the correlation engine validates it.
            if let Err(e) = correlation.add_rule(rule) {
                failures.push(LoadFailure {
                    path: source.clone(),
                    error: format!("rule '{}': {e}", rule.title),
                });
                continue;
            }
            for (i, (provider, kind)) in EVENT_LOGSOURCES.iter().enumerate() {
                if applies_to(&rule.logsource, &logsource_of(*provider, *kind)) {
                    // It compiled once already, so it compiles again.
                    let _ = routed[i].add_rule(rule);
                }
            }
            seen_ids.insert(key.clone(), source.clone());
            kept_rules.push(rule.clone());
            let (techniques, tactics) = attack_of(&rule.tags);
            let m = RuleMeta {
                id: key.clone(),
                name: rule.name.clone(),
                title: rule.title.clone(),
                kind: RuleKind::Detection,
                level: level_of(rule.level),
                techniques,
                tactics,
                description: rule.description.clone().map(|d| d.trim().to_string()),
                false_positives: rule.falsepositives.clone(),
                remedy: yaml_str(&rule.custom_attributes, "remedy"),
                source: source.clone(),
                product: rule.logsource.product.clone(),
                service: rule.logsource.service.clone(),
                correlation_only: false,
                routine,
            };
            rule_keys_by_ref.insert(key.clone(), key.clone());
            if let Some(n) = &rule.name {
                rule_keys_by_ref.insert(n.clone(), key.clone());
            }
            order.push(key.clone());
            meta.insert(key, Arc::new(m));
        }

        let mut correlated: HashSet<String> = HashSet::new();
        let mut correlation_only: HashSet<String> = HashSet::new();
        let mut egress_rules: HashSet<String> = HashSet::new();
        // Correlations a later correlation may refer to (Sigma's chaining: "a burst of denied
        // prompts, then a success"), by id and name; listed in their file before the one that
        // refers to them.
        let mut correlation_refs: HashSet<String> = HashSet::new();
        // Per loaded correlation, the detection rules under it (through chained correlations
        // too), and per such rule, the fields the correlations above it read.
        let mut bases_of: HashMap<String, Vec<String>> = HashMap::new();
        let mut correlation_fields: HashMap<String, Vec<String>> = HashMap::new();
        for (corr, source) in &self.correlations {
            let key = corr
                .id
                .clone()
                .unwrap_or_else(|| format!("{source}#{}", corr.title));
            let missing: Vec<&String> = corr
                .rules
                .iter()
                .filter(|r| !rule_keys_by_ref.contains_key(*r))
                .collect();
            if !missing.is_empty() {
                failures.push(LoadFailure {
                    path: source.clone(),
                    error: format!(
                        "correlation '{}' refers to rules that are not loaded: {}",
                        corr.title,
                        missing
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
                continue;
            }
            if seen_ids.contains_key(&key) {
                failures.push(LoadFailure {
                    path: source.clone(),
                    error: format!("rule id {key} is already used; skipped"),
                });
                continue;
            }
            let routine = match routine_of(&corr.custom_attributes) {
                Ok(r) => r,
                Err(e) => {
                    failures.push(LoadFailure {
                        path: source.clone(),
                        error: format!("correlation '{}': {e}", corr.title),
                    });
                    continue;
                }
            };
            let mut corr = corr.clone();
            corr.id = Some(key.clone());
            let corr = &corr;
            if let Err(e) = correlation.add_correlation(corr) {
                failures.push(LoadFailure {
                    path: source.clone(),
                    error: format!("correlation '{}': {e}", corr.title),
                });
                continue;
            }
            seen_ids.insert(key.clone(), source.clone());
            kept_correlations.push(corr.clone());
            for r in corr.rules.iter().filter(|r| !correlation_refs.contains(*r)) {
                let base = rule_keys_by_ref[r].clone();
                correlated.insert(base.clone());
                if routine == Some(RoutineKind::SharedEgress) {
                    egress_rules.insert(base.clone());
                }
                if !corr.generate {
                    correlation_only.insert(base);
                }
            }
            let mut bases: Vec<String> = Vec::new();
            for r in &corr.rules {
                let k = &rule_keys_by_ref[r];
                match bases_of.get(k) {
                    Some(under) if correlation_refs.contains(r) => {
                        bases.extend(under.iter().cloned())
                    }
                    _ => bases.push(k.clone()),
                }
            }
            for base in &bases {
                let fields = correlation_fields.entry(base.clone()).or_default();
                fields.extend(fields_read_by(corr));
                fields.sort();
                fields.dedup();
            }
            bases_of.insert(key.clone(), bases);
            let (techniques, tactics) = attack_of(&corr.tags);
            let m = RuleMeta {
                id: key.clone(),
                name: corr.name.clone(),
                title: corr.title.clone(),
                kind: RuleKind::Correlation,
                level: level_of(corr.level),
                techniques,
                tactics,
                description: corr.description.clone().map(|d| d.trim().to_string()),
                false_positives: corr.falsepositives.clone(),
                remedy: yaml_str(&corr.custom_attributes, "remedy"),
                source: source.clone(),
                product: None,
                service: None,
                correlation_only: false,
                routine,
            };
            rule_keys_by_ref.insert(key.clone(), key.clone());
            correlation_refs.insert(key.clone());
            if let Some(n) = &corr.name {
                rule_keys_by_ref.insert(n.clone(), key.clone());
                correlation_refs.insert(n.clone());
            }
            order.push(key.clone());
            meta.insert(key, Arc::new(m));
        }
        for key in &correlation_only {
            if let Some(m) = meta.get_mut(key) {
                Arc::make_mut(m).correlation_only = true;
            }
        }
        RuleSet {
            routed,
            correlation_fields,
            kept_rules,
            kept_correlations,
            meta,
            order,
            correlated,
            egress_rules,
            failures,
            files: self.files,
            rules: self.rules,
        }
    }
}

/// The field paths a correlation reads: its group-by, the counted fields, and its aliases.
fn fields_read_by(c: &CorrelationRule) -> impl Iterator<Item = String> + '_ {
    let counted = match &c.condition {
        rsigma_parser::CorrelationCondition::Threshold {
            field: Some(fields),
            ..
        } => fields.as_slice(),
        _ => &[],
    };
    c.group_by
        .iter()
        .chain(counted)
        .chain(c.aliases.iter().flat_map(|a| a.mapping.values()))
        .cloned()
}

/// Adds what the parser's message leaves out: the condition it could not parse, and why.
fn explain_parse_error(err: &str, yaml: &str) -> String {
    if !err.contains("Condition parse error") {
        return err.to_string();
    }
    let condition = yaml
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("condition:"))
        .map(|c| c.trim().trim_matches(|ch| ch == '\'' || ch == '"'));
    match condition {
        Some(c) if c.contains(" | ") || c.contains("count(") => format!(
            "{}: condition '{c}' uses the Sigma v1 aggregation syntax ('| count() by ...'), which Sigma v2 replaced with correlation rules",
            err.split("-->")
                .next()
                .unwrap_or(err)
                .trim()
                .trim_end_matches(':')
        ),
        Some(c) => format!(
            "{}: condition '{c}'",
            err.split("-->")
                .next()
                .unwrap_or(err)
                .trim()
                .trim_end_matches(':')
        ),
        None => err.to_string(),
    }
}

/// The `product/service` a rule text declares in its first document's logsource, read without
/// compiling the rule (for reporting rules that failed to load). `None` when the text is not YAML.
pub fn declared_logsource(yaml: &str) -> Option<String> {
    let doc = yaml.split("\n---").next()?;
    let v: yaml_serde::Value = yaml_serde::from_str(doc).ok()?;
    let ls = v.get("logsource")?;
    let part = |k: &str| {
        ls.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or("-")
            .to_string()
    };
    Some(format!("{}/{}", part("product"), part("service")))
}

/// Every `*.yml` / `*.yaml` file under `dir`, sorted.
pub fn rule_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let p = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Loaded, compiled rules.
pub struct RuleSet {
    /// Per entry of [`EVENT_LOGSOURCES`], the rules that apply to it: the engine an event of that
    /// logsource is evaluated with, no per-event logsource work.
    routed: Vec<Engine>,
    /// Rules and correlations that compiled, to build fresh correlation state from.
    kept_rules: Vec<SigmaRule>,
    kept_correlations: Vec<CorrelationRule>,
    /// Per detection rule some correlation refers to, the field paths the correlations above it
    /// read (group-by, counted fields, aliases): all that is kept of an event it matched, handed
    /// to the correlator.
    correlation_fields: HashMap<String, Vec<String>>,
    meta: HashMap<String, Arc<RuleMeta>>,
    order: Vec<String>,
    /// Detection rules that some correlation refers to.
    correlated: HashSet<String>,
    /// Base rules of `routine: shared-egress` correlations: their events tell which sessions
    /// use which addresses.
    egress_rules: HashSet<String>,
    failures: Vec<LoadFailure>,
    files: usize,
    /// The parsed detection rules, kept for linting.
    rules: Vec<(SigmaRule, String)>,
}

/// The kinds of events the decoders produce; each gets its own engine holding only the rules that
/// apply to it.
pub const EVENT_LOGSOURCES: [(Provider, LogKind); 6] = [
    (Provider::Aws, LogKind::CloudTrail),
    (Provider::Azure, LogKind::AzureActivity),
    (Provider::Azure, LogKind::EntraSignIn),
    (Provider::Azure, LogKind::EntraAudit),
    (Provider::Azure, LogKind::EntraRisk),
    (Provider::Gcp, LogKind::GcpAudit),
];

/// Which entry of [`EVENT_LOGSOURCES`] (and so which engine) an event of this log goes to. A
/// match, so that a new kind of log cannot be forgotten here.
fn route(kind: LogKind) -> usize {
    match kind {
        LogKind::CloudTrail => 0,
        LogKind::AzureActivity => 1,
        LogKind::EntraSignIn => 2,
        LogKind::EntraAudit => 3,
        LogKind::EntraRisk => 4,
        LogKind::GcpAudit => 5,
    }
}

/// Whether a rule written for `rule` applies to events of `event`: no dimension set on both
/// differs (a rule without a product applies everywhere). Categories describe endpoint data and
/// are not set on cloud events.
pub fn applies_to(rule: &LogSource, event: &LogSource) -> bool {
    let same = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => true,
    };
    same(&rule.product, &event.product) && same(&rule.service, &event.service)
}

/// The Sigma logsource of an event: our mapping from provider and log to Sigma's names.
pub fn logsource_of(provider: Provider, kind: LogKind) -> LogSource {
    let (product, service) = match (provider, kind) {
        (Provider::Aws, LogKind::CloudTrail) => ("aws", "cloudtrail"),
        (Provider::Azure, LogKind::AzureActivity) => ("azure", "activitylogs"),
        (Provider::Azure, LogKind::EntraSignIn) => ("azure", "signinlogs"),
        (Provider::Azure, LogKind::EntraAudit) => ("azure", "auditlogs"),
        (Provider::Azure, LogKind::EntraRisk) => ("azure", "riskdetection"),
        (Provider::Gcp, LogKind::GcpAudit) => ("gcp", "gcp.audit"),
        (p, k) => (p.as_str(), k.as_str()),
    };
    LogSource {
        product: Some(product.to_string()),
        service: Some(service.to_string()),
        ..LogSource::default()
    }
}

/// The view of an [`Event`] that the Sigma engine sees: the provider's original record, field
/// names as the provider writes them. Top-level scalars are read straight from the record's text;
/// a nested path parses only the top-level field it goes through. Correlation bookkeeping sees
/// only the event id.
pub struct SigmaEvent<'a> {
    raw: &'a RawRecord,
    id: &'a str,
    /// Enrichment, read as `cloudsentinel.source.*` (see [`NETWORK_FIELDS`]).
    network: Option<&'a cloudsentinel_core::Network>,
    /// One lazily built view per top-level field, for nested paths.
    nested: Vec<OnceCell<JsonEvent<'a>>>,
    /// The whole record, for keyword searches.
    full: OnceCell<JsonEvent<'a>>,
}

impl<'a> SigmaEvent<'a> {
    pub fn new(event: &'a Event) -> Self {
        SigmaEvent {
            raw: &event.raw,
            id: &event.id,
            network: event.network.as_ref(),
            nested: (0..event.raw.len()).map(|_| OnceCell::new()).collect(),
            full: OnceCell::new(),
        }
    }

    fn full(&self) -> &JsonEvent<'a> {
        self.full
            .get_or_init(|| JsonEvent::borrow(self.raw.to_value()))
    }
}

/// The prefix of the fields enrichment adds, which rules can match like the record's own:
/// `asn` (number), `as_name`, `country` (ISO alpha-2) and `cloud` (`aws`, `azure`, `gcp`: the
/// source address is in that cloud's address space). Checked before the record, so a record
/// cannot pose as enrichment.
pub const NETWORK_FIELDS: &str = "cloudsentinel.source.";

impl SigmaEvent<'_> {
    fn network_field(&self, name: &str) -> Option<EventValue<'_>> {
        let n = self.network?;
        match name {
            "asn" => n.asn.map(|a| EventValue::Int(i64::from(a))),
            "as_name" => n
                .as_name
                .as_deref()
                .map(|s| EventValue::Str(Cow::Borrowed(s))),
            "country" => n
                .country
                .as_ref()
                .map(|c| EventValue::Str(Cow::Borrowed(c.as_str()))),
            "cloud" => n.cloud.map(|c| EventValue::Str(Cow::Borrowed(c.as_str()))),
            _ => None,
        }
    }
}

impl rsigma_eval::Event for SigmaEvent<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        if let Some(name) = path.strip_prefix(NETWORK_FIELDS) {
            return self.network_field(name);
        }
        if let Some(pos) = self.raw.position(path) {
            return match self.raw.scalar(path)? {
                Scalar::Str(s) => Some(EventValue::Str(s)),
                Scalar::Int(i) => Some(EventValue::Int(i)),
                Scalar::Float(f) => Some(EventValue::Float(f)),
                Scalar::Bool(b) => Some(EventValue::Bool(b)),
                Scalar::Null => Some(EventValue::Null),
                Scalar::Nested => self.raw.value_at(pos).map(EventValue::from),
            };
        }
        let head_end = path.find(['.', '[', '\\'])?;
        if &path[head_end..head_end + 1] != "." || path[..head_end].is_empty() {
            return self.full().get_field(path);
        }
        let pos = self.raw.position(&path[..head_end])?;
        let view = self.nested[pos].get_or_init(|| {
            let v = self.raw.value_at(pos).expect("position is valid");
            JsonEvent::borrow(v)
        });
        view.get_field(&path[head_end + 1..])
    }
    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.full().any_string_value(pred)
    }
    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        self.full().all_string_values()
    }
    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        self.full().visit_string_values(visit)
    }
    /// Only the id: the correlation engine keeps this as its reference to the event.
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "id": self.id })
    }
}

/// What the correlator sees of an event: the few fields correlations read, and its id.
struct FieldsEvent<'a> {
    inner: JsonEvent<'a>,
    id: &'a str,
}

impl rsigma_eval::Event for FieldsEvent<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        self.inner.get_field(path)
    }
    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.inner.any_string_value(pred)
    }
    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        self.inner.all_string_values()
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "id": self.id })
    }
}

/// One detection rule that matched one event.
#[derive(Debug)]
pub struct RuleMatch {
    pub rule: Arc<RuleMeta>,
    result: EvaluationResult,
}

impl RuleMatch {
    /// Why it matched: the selections and the field values that satisfied them.
    pub fn explanation(&self) -> String {
        explain_detection(&self.result)
    }

    /// The match as a [`Signal`] about `event`.
    pub fn to_signal(&self, event: &Event) -> Signal {
        let meta = &self.rule;
        Signal {
            kind: SignalKind::Rule,
            rule_id: meta.id.clone(),
            title: meta.title.clone(),
            level: meta.level,
            techniques: meta.techniques.clone(),
            tactics: meta.tactics.clone(),
            entity: event.entity(),
            account: event.account.clone(),
            first_seen: event.time,
            last_seen: event.time,
            event_ids: vec![event.id.clone()],
            explanation: self.explanation(),
        }
    }
}

/// What detection found on one event.
#[derive(Debug)]
pub struct Detections {
    /// Matches of detection rules that alert on their own.
    pub matches: Vec<RuleMatch>,
    /// Matches of rules that correlations refer to, and findings of routine-aware rules, with
    /// the little of the event correlations read: feed it to a [`Correlator`]. `None` when no
    /// such rule matched.
    pub for_correlation: Option<CorrelationInput>,
}

impl Detections {
    /// Every single-event finding, routine-aware ones included as they are before any history
    /// judges them: for looking at one event on its own (no stream, no correlations).
    pub fn single_event_signals(self, event: &Event) -> Vec<Signal> {
        let mut out: Vec<Signal> = self.matches.iter().map(|m| m.to_signal(event)).collect();
        if let Some(c) = self.for_correlation {
            out.extend(c.routine.into_iter().map(|(_, s)| s));
        }
        out
    }
}

/// What the correlator needs of one event: its id, time, account and entity, the fields the
/// correlation rules read, and the matches. Small, so that many can wait for time ordering.
#[derive(Debug, Clone)]
pub struct CorrelationInput {
    pub event_id: String,
    pub time: chrono::DateTime<chrono::Utc>,
    pub account: Option<String>,
    pub entity: String,
    /// The correlation fields, as a nested object with the provider's field names.
    pub fields: serde_json::Value,
    /// The rules that matched (those some correlation refers to).
    pub matched: Vec<Arc<RuleMeta>>,
    /// Who and from where, for judging findings against the actor's history.
    pub facts: Facts,
    /// Findings of single-event rules with a `routine:` attribute: they are judged in time order
    /// by the correlator, which returns them.
    pub routine: Vec<(RoutineKind, Signal)>,
    /// Whether a base rule of a `shared-egress` correlation matched.
    pub egress: bool,
}

/// The least of a detection result the correlation engine reads: which rule matched.
fn minimal_result(
    rule: &RuleMeta,
    no_attributes: &Arc<HashMap<String, serde_json::Value>>,
) -> EvaluationResult {
    EvaluationResult {
        header: rsigma_eval::RuleHeader {
            rule_title: rule.title.clone(),
            rule_id: Some(rule.id.clone()),
            level: None,
            tags: Vec::new(),
            custom_attributes: Arc::clone(no_attributes),
            enrichments: None,
        },
        body: ResultBody::Detection(rsigma_eval::DetectionBody {
            matched_selections: Vec::new(),
            matched_fields: Vec::new(),
            event: None,
        }),
    }
}

/// Copies what a Sigma field path (`a.b.c`, `a.list[0]`) points at from the record into the
/// same place in `dst`, so that the path resolves there as it did on the record. A path through
/// a list index copies the whole top-level field.
fn copy_path(src: &RawRecord, dst: &mut serde_json::Value, path: &str) {
    use serde_json::Value;
    let head_end = path.find(['.', '[']).unwrap_or(path.len());
    let head = &path[..head_end];
    let Some(top) = src.value(head) else { return };
    let Value::Object(root) = dst else { return };
    if path.contains('[') || head_end == path.len() || !top.is_object() {
        root.insert(head.to_string(), top.clone());
        return;
    }
    // A plain dotted path: copy only the leaf, building the objects on the way.
    let mut from = top;
    let mut to = root
        .entry(head.to_string())
        .or_insert_with(|| Value::Object(Default::default()));
    let mut parts = path[head_end + 1..].split('.').peekable();
    while let Some(part) = parts.next() {
        let Some(next) = from.get(part) else { return };
        let Value::Object(map) = to else { return };
        if parts.peek().is_none() || !next.is_object() {
            map.insert(part.to_string(), next.clone());
            return;
        }
        from = next;
        to = map
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
    }
}

impl RuleSet {
    /// Detection and correlation rules loaded, in load order.
    pub fn rules(&self) -> impl Iterator<Item = &RuleMeta> {
        self.order.iter().map(|k| self.meta[k].as_ref())
    }

    pub fn rule(&self, id: &str) -> Option<&RuleMeta> {
        self.meta.get(id).map(Arc::as_ref)
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Number of rule files read.
    pub fn files(&self) -> usize {
        self.files
    }

    pub fn failures(&self) -> &[LoadFailure] {
        &self.failures
    }

    pub(crate) fn parsed_rules(&self) -> &[(SigmaRule, String)] {
        &self.rules
    }

    pub fn has_correlations(&self) -> bool {
        !self.kept_correlations.is_empty()
    }

    /// Runs the detection rules on one event. Stateless; call from any thread.
    pub fn detect(&self, event: &Event) -> Detections {
        let sigma_event = SigmaEvent::new(event);
        let results = self.routed[route(event.kind)].evaluate(&sigma_event);
        let mut out = Detections {
            matches: Vec::new(),
            for_correlation: None,
        };
        let mut matches = Vec::new();
        let mut routine = Vec::new();
        let mut egress = false;
        for r in results {
            let Some(meta) = self.meta_of(&r) else {
                continue;
            };
            if self.correlated.contains(&meta.id) {
                matches.push(Arc::clone(meta));
                egress |= self.egress_rules.contains(&meta.id);
            }
            if !meta.correlation_only {
                let m = RuleMatch {
                    rule: Arc::clone(meta),
                    result: r,
                };
                match meta.routine {
                    Some(kind) => routine.push((kind, m.to_signal(event))),
                    None => out.matches.push(m),
                }
            }
        }
        if !matches.is_empty() || !routine.is_empty() {
            let mut fields = serde_json::Value::Object(Default::default());
            if !matches.is_empty() {
                for m in &matches {
                    for path in self.correlation_fields.get(&m.id).into_iter().flatten() {
                        copy_path(&event.raw, &mut fields, path);
                    }
                }
            }
            out.for_correlation = Some(CorrelationInput {
                event_id: event.id.clone(),
                time: event.time,
                account: event.account.clone(),
                entity: event.entity(),
                fields,
                matched: matches,
                facts: Facts::of(event),
                routine,
                egress,
            });
        }
        out
    }

    /// The rule a result is about: every loaded rule has an id (see [`RuleSetBuilder::build`]).
    fn meta_of(&self, r: &EvaluationResult) -> Option<&Arc<RuleMeta>> {
        self.meta.get(r.header.rule_id.as_deref()?)
    }

    /// A fresh correlation state over these rules, or `None` when no correlation rule loaded.
    pub fn correlator(&self) -> Option<Correlator<'_>> {
        if self.kept_correlations.is_empty() && !self.meta.values().any(|m| m.routine.is_some()) {
            return None;
        }
        let mut engine = new_correlation_engine();
        // These compiled once already in `build`, so they compile again.
        for rule in &self.kept_rules {
            let _ = engine.add_rule(rule);
        }
        for corr in &self.kept_correlations {
            let _ = engine.add_correlation(corr);
        }
        Some(Correlator {
            set: self,
            engine,
            no_attributes: Arc::new(HashMap::new()),
            routine: Routine::new(),
            hindsight: false,
            held: Default::default(),
            strings: Interner::default(),
        })
    }
}

static FIELD_MAPPING: &str = include_str!("../data/field_mapping.yml");

/// Our processing pipeline: public rules' Azure / GCP field names mapped to the raw records'.
fn pipeline() -> rsigma_eval::Pipeline {
    rsigma_eval::parse_pipeline(FIELD_MAPPING)
        .expect("the built-in field mapping parses (a test checks it)")
}

fn new_engine() -> Engine {
    Engine::new_with_pipeline(pipeline())
}

/// Matched events kept per correlation group and window.
pub const MAX_GROUP_ENTRIES: usize = 256;

fn new_correlation_engine() -> CorrelationEngine {
    // After a correlation fires, its window starts again: a long burst fires once per threshold's
    // worth of events, each firing listing its own evidence, and alert folding joins the firings
    // (with every evidence event) into one alert. Re-firing on every later event would list the
    // whole window again each time.
    let mut config = CorrelationConfig {
        correlation_event_mode: CorrelationEventMode::Refs,
        max_correlation_events: 1000,
        emit_detections: false,
        action_on_match: CorrelationAction::Reset,
        // rsigma recounts a group's whole window on every event; bound the window per group so a
        // busy principal costs a bounded amount per event. Only groups with more matched events
        // than this inside one timespan can be under-counted.
        max_group_entries: Some(MAX_GROUP_ENTRIES),
        ..CorrelationConfig::default()
    };
    config.timestamp_fields.insert(0, "eventTime".to_string());
    let mut engine = CorrelationEngine::new(config);
    engine.add_pipeline(pipeline());
    engine
}

/// The sequential, stateful part of detection: Sigma correlation rules, and the judgement of
/// findings against their actor's history ([`crate::routine`]). Feed it events in time order.
pub struct Correlator<'a> {
    set: &'a RuleSet,
    engine: CorrelationEngine,
    no_attributes: Arc<HashMap<String, serde_json::Value>>,
    routine: Routine,
    /// With hindsight (a retrospective hunt): findings that were new when they came, held until
    /// [`HISTORY_DAYS`] of later history could show them routine.
    hindsight: bool,
    held: std::collections::VecDeque<Held>,
    /// The held findings' repeated strings.
    strings: Interner,
}

/// A finding held for hindsight. Many are held at once (up to [`HISTORY_DAYS`] of event time), so
/// a held finding keeps its rule's description by reference and its repeated strings (entity,
/// account, actor, session, explanation) once each, through the correlator's interner.
struct Held {
    kind: RoutineKind,
    rule: HeldRule,
    signal_kind: SignalKind,
    level: Level,
    entity: Arc<str>,
    account: Option<Arc<str>>,
    first_seen: chrono::DateTime<chrono::Utc>,
    last_seen: chrono::DateTime<chrono::Utc>,
    event_ids: Box<[EventId]>,
    explanation: Arc<str>,
    actor: Arc<str>,
    session: Arc<str>,
    asn: Option<u32>,
    as_name: Option<Arc<str>>,
    ip: Option<std::net::IpAddr>,
    addresses: Arc<[std::net::IpAddr]>,
}

/// The rule a held finding is about: the loaded rule's description when the finding says the
/// same (always, for findings this module makes), else the finding's own words.
enum HeldRule {
    Loaded(Arc<RuleMeta>),
    Own(Box<(String, String, Vec<String>, Vec<String>)>),
}

impl Held {
    fn new(
        kind: RoutineKind,
        s: Signal,
        facts: &Facts,
        addresses: Arc<[std::net::IpAddr]>,
        set: &RuleSet,
        strings: &mut Interner,
    ) -> Held {
        let rule = match set.meta.get(&s.rule_id) {
            Some(m)
                if m.title == s.title && m.techniques == s.techniques && m.tactics == s.tactics =>
            {
                HeldRule::Loaded(Arc::clone(m))
            }
            _ => HeldRule::Own(Box::new((s.rule_id, s.title, s.techniques, s.tactics))),
        };
        Held {
            kind,
            rule,
            signal_kind: s.kind,
            level: s.level,
            entity: strings.get(&s.entity),
            account: strings.opt(s.account.as_deref()),
            first_seen: s.first_seen,
            last_seen: s.last_seen,
            event_ids: s.event_ids.iter().map(|id| EventId::new(id)).collect(),
            explanation: strings.get(&s.explanation),
            actor: strings.get(&facts.actor),
            session: strings.get(&facts.session),
            asn: facts.asn,
            as_name: facts.as_name.clone(),
            ip: facts.ip,
            addresses,
        }
    }

    /// The finding and its facts as they were when held.
    fn into_parts(self) -> (Signal, Facts) {
        let (rule_id, title, techniques, tactics) = match self.rule {
            HeldRule::Loaded(m) => (
                m.id.clone(),
                m.title.clone(),
                m.techniques.clone(),
                m.tactics.clone(),
            ),
            HeldRule::Own(own) => *own,
        };
        let signal = Signal {
            kind: self.signal_kind,
            rule_id,
            title,
            level: self.level,
            techniques,
            tactics,
            entity: self.entity.to_string(),
            account: self.account.map(|a| a.to_string()),
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            event_ids: self.event_ids.iter().map(EventId::to_string).collect(),
            explanation: self.explanation.to_string(),
        };
        let facts = Facts {
            actor: self.actor.to_string(),
            session: self.session.to_string(),
            asn: self.asn,
            as_name: self.as_name,
            ip: self.ip,
        };
        (signal, facts)
    }
}

/// What a [`Correlator`] keeps between runs: the correlation engine's windows and the routine
/// history findings are judged against.
#[derive(serde::Serialize, serde::Deserialize)]
struct CorrelatorState {
    engine: rsigma_eval::CorrelationSnapshot,
    routine: crate::routine::RoutineState,
}

impl Correlator<'_> {
    /// Its state (open windows, routine history) as bytes, to keep in a store.
    pub fn export(&self) -> Vec<u8> {
        serde_json::to_vec(&CorrelatorState {
            engine: self.engine.export_state(),
            routine: self.routine.export(),
        })
        .expect("the state serializes")
    }

    /// Takes back a state [`Correlator::export`] gave, over an empty correlator. Correlations the
    /// rules no longer have are left out.
    pub fn import(&mut self, bytes: &[u8]) -> Result<(), String> {
        let state: CorrelatorState =
            serde_json::from_slice(bytes).map_err(|e| format!("the correlation state: {e}"))?;
        if !self.engine.import_state(state.engine) {
            return Err("the correlation state is of another version".into());
        }
        self.routine = Routine::restore(state.routine);
        Ok(())
    }

    /// Judges findings with hindsight too, as a retrospective hunt over a period can: a finding
    /// that is new when it comes is held until [`HISTORY_DAYS`] of later events have been fed
    /// (or [`Correlator::finish`]) and is routine if the actor kept doing the same on the days
    /// after. Signals then come out up to that much event time late; call `finish` at the end.
    pub fn with_hindsight(mut self) -> Self {
        self.hindsight = true;
        self
    }

    /// Judges a routine-aware finding now; a new one is held when judging with hindsight.
    fn judge(
        &mut self,
        kind: RoutineKind,
        mut s: Signal,
        input: &CorrelationInput,
        out: &mut Vec<Signal>,
    ) {
        let account = input.account.as_deref();
        let routine = self.routine.judge(kind, &mut s, account, &input.facts);
        if routine || s.level == Level::Informational {
            out.push(s);
            return;
        }
        if !self.hindsight {
            let note = self.routine.describe_new(kind, &s, &input.facts);
            s.explanation = format!("{}; {note}", s.explanation);
            out.push(s);
            return;
        }
        let addresses = match kind {
            RoutineKind::SharedEgress => self.routine.addresses_of(&input.facts.session),
            RoutineKind::Actor | RoutineKind::Peers => Arc::from([]),
        };
        let held = Held::new(
            kind,
            s,
            &input.facts,
            addresses,
            self.set,
            &mut self.strings,
        );
        self.held.push_back(held);
    }

    /// Releases held findings whose hindsight period has passed.
    fn release(&mut self, until: chrono::DateTime<chrono::Utc>, out: &mut Vec<Signal>) {
        out.extend(std::iter::from_fn(|| self.release_one(Some(until))));
        self.strings.prune();
    }

    /// The oldest held finding, judged with hindsight, if its period has passed by `until` (or
    /// whatever its period, with `until` None).
    fn release_one(&mut self, until: Option<chrono::DateTime<chrono::Utc>>) -> Option<Signal> {
        let h = self.held.front()?;
        if until.is_some_and(|t| h.last_seen + chrono::Duration::days(HISTORY_DAYS) > t) {
            return None;
        }
        let h = self.held.pop_front().expect("peeked");
        let (kind, addresses, account) = (h.kind, Arc::clone(&h.addresses), h.account.clone());
        let (mut signal, facts) = h.into_parts();
        let routine =
            self.routine
                .judge_hindsight(kind, &mut signal, account.as_deref(), &facts, &addresses);
        if !routine {
            let note = self.routine.describe_new(kind, &signal, &facts);
            signal.explanation = format!("{}; {note}", signal.explanation);
        }
        Some(signal)
    }

    /// Gives the findings still held for hindsight to `sink`, judged with all that was fed, one
    /// at a time (there can be many).
    pub fn finish(&mut self, sink: &mut dyn FnMut(Signal)) {
        while let Some(signal) = self.release_one(None) {
            sink(signal);
        }
        self.strings.prune();
    }

    /// Feeds one event's correlation-relevant matches; returns the correlations that fired.
    pub fn feed(&mut self, mut input: CorrelationInput) -> Vec<Signal> {
        if input.egress {
            self.routine
                .observe_egress(input.account.as_deref(), input.time, &input.facts);
        }
        let mut signals = Vec::new();
        if self.hindsight {
            self.release(input.time, &mut signals);
        }
        for (kind, s) in std::mem::take(&mut input.routine) {
            self.judge(kind, s, &input, &mut signals);
        }
        if input.matched.is_empty() {
            return signals;
        }
        let sigma_event = FieldsEvent {
            inner: JsonEvent::borrow(&input.fields),
            id: &input.event_id,
        };
        let out = self.engine.process_with_detections(
            &sigma_event,
            input
                .matched
                .iter()
                .map(|m| minimal_result(m, &self.no_attributes))
                .collect(),
            input.time.timestamp(),
        );
        let mut pending = Vec::new();
        for r in out {
            let ResultBody::Correlation(body) = &r.body else {
                continue;
            };
            let Some(meta) = self.set.meta_of(&r) else {
                continue;
            };
            let mut event_ids: Vec<String> = body
                .event_refs
                .as_ref()
                .map(|refs| refs.iter().filter_map(|e| e.id.clone()).collect())
                .unwrap_or_default();
            if event_ids.is_empty() {
                event_ids.push(input.event_id.clone());
            }
            let first = body
                .event_refs
                .as_ref()
                .and_then(|refs| refs.iter().map(|e| e.timestamp).min())
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .unwrap_or(input.time);
            let group: Vec<String> = body
                .group_key
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let entity = if body.group_key.is_empty() {
                input.entity.clone()
            } else {
                body.group_key
                    .iter()
                    .map(|(_, v)| v.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let signal = Signal {
                kind: SignalKind::Correlation,
                rule_id: meta.id.clone(),
                title: meta.title.clone(),
                level: meta.level,
                techniques: meta.techniques.clone(),
                tactics: meta.tactics.clone(),
                entity,
                account: input.account.clone(),
                first_seen: first.min(input.time),
                last_seen: input.time,
                event_ids,
                explanation: format!(
                    "{} {:?} reached {} within {}s{}",
                    correlation_kind(&body.correlation_type),
                    body.correlation_type,
                    body.aggregated_value,
                    body.timespan_secs,
                    if group.is_empty() {
                        String::new()
                    } else {
                        format!(" for {}", group.join(", "))
                    }
                ),
            };
            match meta.routine {
                Some(kind) => pending.push((kind, signal)),
                None => signals.push(signal),
            }
        }
        for (kind, signal) in pending {
            self.judge(kind, signal, &input, &mut signals);
        }
        signals
    }
}

fn correlation_kind(t: &rsigma_parser::CorrelationType) -> &'static str {
    use rsigma_parser::CorrelationType as T;
    match t {
        T::EventCount => "event count",
        T::ValueCount => "distinct value count",
        T::Temporal | T::TemporalOrdered => "sequence",
        _ => "aggregate",
    }
}

fn explain_detection(r: &EvaluationResult) -> String {
    match &r.body {
        ResultBody::Detection(d) => {
            // The engine reports selections and fields in an order that can change from one
            // run to the next: sorted, the same input explains itself the same way.
            let mut fields: Vec<String> = d
                .matched_fields
                .iter()
                .map(|f| match &f.value {
                    serde_json::Value::String(s) => format!("{}={}", f.field, s),
                    v => format!("{}={}", f.field, v),
                })
                .collect();
            fields.sort();
            fields.dedup();
            let mut selections: Vec<&str> =
                d.matched_selections.iter().map(String::as_str).collect();
            selections.sort_unstable();
            selections.dedup();
            if fields.is_empty() {
                format!("matched {}", selections.join(", "))
            } else {
                format!("matched {}: {}", selections.join(", "), fields.join(", "))
            }
        }
        ResultBody::Correlation(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Five failed sign-ins for one user: the brute-force correlation of the built-in pack.
    fn failed_login(n: u32) -> Event {
        let record = serde_json::json!({
            "eventVersion": "1.08",
            "eventTime": format!("2026-11-20T10:0{n}:00Z"),
            "eventSource": "signin.amazonaws.com",
            "eventName": "ConsoleLogin",
            "eventID": format!("login-{n}"),
            "awsRegion": "us-east-1",
            "sourceIPAddress": "198.51.100.9",
            "recipientAccountId": "111122223333",
            "userIdentity": {"type": "IAMUser", "userName": "alice", "accountId": "111122223333"},
            "responseElements": {"ConsoleLogin": "Failure"}
        });
        let mut out = None;
        cloudsentinel_ingest::reader::decode_bytes(
            &serde_json::to_vec(&record).unwrap(),
            cloudsentinel_core::Origin::default(),
            &mut |item| {
                if let cloudsentinel_ingest::reader::Item::Event(e) = item {
                    out = Some(*e);
                }
            },
        );
        out.expect("the record decodes")
    }

    /// The built-in pack's console brute-force rules: a base rule and its correlation.
    fn bruteforce_rules() -> RuleSet {
        let mut b = RuleSetBuilder::new();
        for (source, yaml) in crate::builtin_rules() {
            if source.ends_with("common_console_login_bruteforce_user.yml") {
                b.add_text(RuleText {
                    source: source.to_string(),
                    yaml: (*yaml).into(),
                });
            }
        }
        b.build()
    }

    #[test]
    fn a_window_kept_by_export_is_completed_after_import() {
        let set = bruteforce_rules();
        let feed = |c: &mut Correlator<'_>, n: u32| -> Vec<Signal> {
            let d = set.detect(&failed_login(n));
            c.feed(d.for_correlation.expect("a correlation input"))
        };
        let mut before = set.correlator().expect("a correlation");
        for n in 0..4 {
            assert!(feed(&mut before, n).is_empty());
        }
        let kept = before.export();
        // A correlator that starts empty does not fire on the fifth failure ...
        let mut empty = set.correlator().unwrap();
        assert!(feed(&mut empty, 4).is_empty());
        // ... one that took the kept state does, as the first would have.
        let mut after = set.correlator().unwrap();
        after.import(&kept).unwrap();
        let fired = feed(&mut after, 4);
        assert!(
            fired
                .iter()
                .any(|s| s.rule_id == "52a79d1a-b0f1-48bd-aa13-a0832d1ce8f9"),
            "{fired:?}"
        );
        assert!(after.import(b"{}").is_err());
    }

    #[test]
    fn an_input_carries_the_fields_of_the_correlations_above_its_rule_and_no_others() {
        let yaml = r#"
title: Failed Console Login
name: t_failed_login
logsource: {product: aws, service: cloudtrail}
detection:
  selection: {eventName: ConsoleLogin}
  condition: selection
---
title: Other Base
name: t_other
logsource: {product: aws, service: cloudtrail}
detection:
  selection: {eventName: GetCallerIdentity}
  condition: selection
---
title: Failures Per User
name: t_per_user
correlation:
  type: event_count
  rules: [t_failed_login]
  group-by: [userIdentity.userName]
  timespan: 10m
  condition: {gte: 3}
---
title: Per User Then Per Address
correlation:
  type: event_count
  rules: [t_per_user]
  group-by: [sourceIPAddress]
  timespan: 1h
  condition: {gte: 1}
---
title: Other Per Account
correlation:
  type: value_count
  rules: [t_other]
  group-by: [recipientAccountId]
  timespan: 10m
  condition: {field: awsRegion, gte: 2}
"#;
        let mut b = RuleSetBuilder::new();
        b.add_text(RuleText {
            source: "test.yml".into(),
            yaml: yaml.into(),
        });
        let set = b.build();
        assert!(set.failures().is_empty(), "{:?}", set.failures());
        let input = set
            .detect(&failed_login(1))
            .for_correlation
            .expect("the base rule matched");
        // Its own correlation's group-by, and that of the correlation chained on it; nothing of
        // the unrelated correlation (recipientAccountId, awsRegion).
        assert_eq!(
            input.fields,
            serde_json::json!({
                "userIdentity": {"userName": "alice"},
                "sourceIPAddress": "198.51.100.9",
            })
        );
    }

    #[test]
    fn a_held_finding_comes_back_exactly_as_it_was_held() {
        let set = bruteforce_rules();
        let meta = set.rules().next().expect("a loaded rule").clone();
        let signal = |title: &str, ids: &[&str]| Signal {
            kind: SignalKind::Correlation,
            rule_id: meta.id.clone(),
            title: title.to_string(),
            level: Level::High,
            techniques: meta.techniques.clone(),
            tactics: meta.tactics.clone(),
            entity: "arn:aws:iam::111122223333:user/alice".into(),
            account: Some("111122223333".into()),
            first_seen: "2026-11-20T10:00:00.123456789Z".parse().unwrap(),
            last_seen: "2026-11-20T10:05:00Z".parse().unwrap(),
            event_ids: ids.iter().map(|i| i.to_string()).collect(),
            explanation: "event count reached 5 within 600s".into(),
        };
        let facts = Facts {
            actor: "arn:aws:iam::111122223333:user/alice".into(),
            session: "AKIAEXAMPLE".into(),
            asn: Some(64500),
            as_name: Some(Arc::from("Example Net")),
            ip: "198.51.100.9".parse().ok(),
        };
        let mut strings = Interner::default();
        // As the rule describes itself, and (the fallback) in words of its own.
        for (title, ids) in [
            (
                meta.title.as_str(),
                &["c1fb23c4-d134-4424-ba5b-1ab905dc6bf2", "login-4"][..],
            ),
            (
                "A title of its own",
                &["C1FB23C4-D134-4424-BA5B-1AB905DC6BF2"][..],
            ),
        ] {
            let held = Held::new(
                RoutineKind::Actor,
                signal(title, ids),
                &facts,
                Arc::from([]),
                &set,
                &mut strings,
            );
            assert_eq!(
                matches!(held.rule, HeldRule::Loaded(_)),
                title == meta.title
            );
            let (back, back_facts) = held.into_parts();
            assert_eq!(
                serde_json::to_value(&back).unwrap(),
                serde_json::to_value(signal(title, ids)).unwrap()
            );
            assert_eq!(format!("{back_facts:?}"), format!("{facts:?}"));
        }
    }

    #[test]
    fn every_log_kind_routes_to_its_own_engine() {
        for (i, (provider, kind)) in EVENT_LOGSOURCES.iter().enumerate() {
            assert_eq!(route(*kind), i, "{kind:?}");
            assert_eq!(
                logsource_of(*provider, *kind).product.as_deref(),
                Some(provider.as_str())
            );
        }
    }
}
