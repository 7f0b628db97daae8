//! `[[notify]]` sinks: what the configuration file says, checked and resolved into [`Sink`]s.
//!
//! Secrets (HMAC keys, PagerDuty routing keys, ServiceNow and SMTP passwords, a Slack webhook
//! URL) come from the environment (`secret_env`, `url_env`) or a file (`secret_file`), never from
//! the configuration file itself, and never appear in `Debug` output or logs.

use std::path::PathBuf;
use std::time::Duration;

use cloudsentinel_alert::AlertRecord;
use cloudsentinel_core::Level;
use serde::Deserialize;

/// One `[[notify]]` table as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Unique name, used in the API, metrics and `notify test NAME`.
    pub name: String,
    /// `webhook`, `slack`, `email`, `pagerduty`, `servicenow` or `ocsf`.
    pub kind: String,
    /// Where to send: the receiver (webhook), the incoming-webhook URL (slack; better from
    /// `url_env`, it carries Slack's token), the Events API (pagerduty, default
    /// `https://events.pagerduty.com/v2/enqueue`), the instance (servicenow,
    /// `https://example.service-now.com`), an HTTP collector (ocsf).
    #[serde(default)]
    pub url: Option<String>,
    /// The URL from this environment variable instead of `url`.
    #[serde(default)]
    pub url_env: Option<String>,
    /// (ocsf) Append JSON Lines to this file instead of posting them.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Environment variable holding the secret: the webhook's HMAC key, PagerDuty's routing
    /// key, the ServiceNow or SMTP password, an OCSF collector's bearer token.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// File holding the secret (trailing newline ignored), instead of `secret_env`.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// (servicenow, email) The account to sign in with.
    #[serde(default)]
    pub username: Option<String>,
    /// (email) SMTP server.
    #[serde(default)]
    pub smtp_host: Option<String>,
    /// (email) Port; 587 for `starttls`, 465 for `tls`, 25 for `none` by default.
    #[serde(default)]
    pub smtp_port: Option<u16>,
    /// (email) `starttls` (default), `tls` (implicit TLS) or `none` (loopback servers only).
    #[serde(default)]
    pub tls: Option<String>,
    /// (email) A PEM file of extra CA certificates to trust (a private mail relay).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// (email) Sender address.
    #[serde(default)]
    pub from: Option<String>,
    /// (email) Recipients.
    #[serde(default)]
    pub to: Vec<String>,
    /// (servicenow) Close code set when the alert is resolved or closed.
    #[serde(default)]
    pub close_code: Option<String>,
    /// Alerts below this level are not sent (default `medium`).
    #[serde(default)]
    pub min_level: Option<String>,
    /// Only these rule ids (all when empty).
    #[serde(default)]
    pub rules: Vec<String>,
    /// Only alerts with one of these ATT&CK techniques (`T1078` takes in `T1078.004`).
    #[serde(default)]
    pub techniques: Vec<String>,
    /// Only alerts about these accounts (AWS account ids, subscriptions, projects).
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Only these kinds of alert: `rule`, `correlation`, `anomaly`.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Hear of incidents instead of alerts: a message when an incident opens, when it grows
    /// (throttled like alert updates) or rises in level, and when an analyst changes its status.
    /// `min_level`, `techniques` and `accounts` then filter incidents; `rules` and `kinds` do not
    /// apply.
    #[serde(default)]
    pub incidents: bool,
    /// An alert that keeps counting is sent again at most this often (default 900 s); a higher
    /// level or a status change goes out at once.
    #[serde(default)]
    pub update_every_secs: Option<u64>,
    /// Tries before a delivery is given up (dead), default 12 (about 25 minutes of backoff).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Seconds one try may take, default 10.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Allow plain `http://` (or SMTP without TLS) to a host other than the loopback.
    #[serde(default)]
    pub allow_insecure: bool,
}

/// A configuration problem, naming the key (`notify[2].secret_env`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigIssue {
    pub key: String,
    pub message: String,
}

/// A secret, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// What kind of receiver a sink is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Webhook,
    Slack,
    Email,
    PagerDuty,
    ServiceNow,
    Ocsf,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Webhook,
        Kind::Slack,
        Kind::Email,
        Kind::PagerDuty,
        Kind::ServiceNow,
        Kind::Ocsf,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::Slack => "slack",
            Kind::Email => "email",
            Kind::PagerDuty => "pagerduty",
            Kind::ServiceNow => "servicenow",
            Kind::Ocsf => "ocsf",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How an e-mail sink reaches its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    StartTls,
    Implicit,
    None,
}

/// Where a sink's messages go, with what it needs to get there.
#[derive(Debug, Clone)]
pub enum Target {
    Webhook {
        url: String,
        secret: Secret,
    },
    Slack {
        url: Secret,
    },
    Email {
        host: String,
        port: u16,
        tls: SmtpTls,
        ca_pem: Option<Vec<u8>>,
        username: Option<String>,
        password: Option<Secret>,
        from: String,
        to: Vec<String>,
    },
    PagerDuty {
        url: String,
        routing_key: Secret,
    },
    ServiceNow {
        base: String,
        username: String,
        password: Secret,
        close_code: String,
    },
    OcsfFile {
        path: PathBuf,
    },
    OcsfHttp {
        url: String,
        token: Option<Secret>,
    },
}

/// Which alerts a sink wants.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub min_level: Level,
    pub rules: Vec<String>,
    pub techniques: Vec<String>,
    pub accounts: Vec<String>,
    pub kinds: Vec<String>,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            min_level: Level::Medium,
            rules: Vec::new(),
            techniques: Vec::new(),
            accounts: Vec::new(),
            kinds: Vec::new(),
        }
    }
}

impl Filter {
    /// Whether the incident is one this sink wants (rules and kinds filter alerts only).
    pub fn accepts_incident(&self, i: &cloudsentinel_alert::IncidentRecord) -> bool {
        i.severity.unwrap_or(i.level) >= self.min_level
            && (self.accounts.is_empty()
                || i.account
                    .as_ref()
                    .is_some_and(|x| self.accounts.contains(x)))
            && (self.techniques.is_empty()
                || i.techniques.iter().any(|t| self.technique_matches(t)))
    }

    fn technique_matches(&self, t: &str) -> bool {
        self.techniques.iter().any(|want| {
            t.eq_ignore_ascii_case(want)
                || (t.len() > want.len()
                    && t[..want.len()].eq_ignore_ascii_case(want)
                    && t.as_bytes()[want.len()] == b'.')
        })
    }

    /// Whether the alert is one this sink wants.
    pub fn accepts(&self, a: &AlertRecord) -> bool {
        a.level >= self.min_level
            && (self.rules.is_empty() || self.rules.contains(&a.rule_id))
            && (self.kinds.is_empty() || self.kinds.contains(&a.kind))
            && (self.accounts.is_empty()
                || a.account
                    .as_ref()
                    .is_some_and(|x| self.accounts.contains(x)))
            && (self.techniques.is_empty()
                || a.techniques.iter().any(|t| self.technique_matches(t)))
    }
}

/// A sink ready to use.
#[derive(Debug, Clone)]
pub struct Sink {
    pub name: String,
    pub kind: Kind,
    pub filter: Filter,
    /// It hears of incidents, not alerts.
    pub incidents: bool,
    pub update_every: chrono::Duration,
    pub max_attempts: u32,
    pub timeout: Duration,
    pub target: Target,
}

impl Sink {
    /// Where it sends, for people (no secrets: a Slack URL is shown by host only).
    pub fn destination(&self) -> String {
        match &self.target {
            Target::Webhook { url, .. }
            | Target::PagerDuty { url, .. }
            | Target::OcsfHttp { url, .. } => url.clone(),
            // The path of a Slack webhook is its token.
            Target::Slack { url } => {
                match (url.expose().split_once("://"), host_of(url.expose())) {
                    (Some((scheme, _)), Some(h)) => format!("{scheme}://{h}/…"),
                    _ => "slack".into(),
                }
            }
            Target::Email { host, port, to, .. } => {
                format!("smtp://{host}:{port} → {}", to.join(", "))
            }
            Target::ServiceNow { base, .. } => base.clone(),
            Target::OcsfFile { path } => path.display().to_string(),
        }
    }
}

/// The host of an `http(s)://host[:port]/...` URL.
fn host_of(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains('@') {
        return None;
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    (!host.is_empty()).then_some(host)
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Reads the environment for [`SinkConfig::resolve`].
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

impl SinkConfig {
    /// Checks the table and reads its secrets; `at` is its key (`notify[0]`).
    pub fn resolve(&self, at: &str, env: Env<'_>) -> Result<Sink, ConfigIssue> {
        let issue = |field: &str, message: String| ConfigIssue {
            key: format!("{at}.{field}"),
            message,
        };
        if self.name.trim().is_empty()
            || self.name.len() > 64
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(issue(
                "name",
                format!(
                    "{:?}: expected 1 to 64 letters, digits, '-', '_' or '.'",
                    self.name
                ),
            ));
        }
        let kind = Kind::parse(&self.kind).ok_or_else(|| {
            issue(
                "kind",
                format!(
                    "{:?}: expected one of {}",
                    self.kind,
                    Kind::ALL.map(Kind::as_str).join(", ")
                ),
            )
        })?;
        let secret = || -> Result<Option<Secret>, ConfigIssue> {
            match (&self.secret_env, &self.secret_file) {
                (Some(_), Some(_)) => Err(issue(
                    "secret_file",
                    "give secret_env or secret_file, not both".into(),
                )),
                (Some(var), None) => match env(var) {
                    Some(v) if !v.is_empty() => Ok(Some(Secret(v))),
                    _ => Err(issue(
                        "secret_env",
                        format!("environment variable {var} is not set or empty"),
                    )),
                },
                (None, Some(path)) => match std::fs::read_to_string(path) {
                    Ok(v) if !v.trim_end_matches(['\r', '\n']).is_empty() => {
                        Ok(Some(Secret(v.trim_end_matches(['\r', '\n']).to_string())))
                    }
                    Ok(_) => Err(issue("secret_file", format!("{} is empty", path.display()))),
                    Err(e) => Err(issue(
                        "secret_file",
                        format!("cannot read {}: {e}", path.display()),
                    )),
                },
                (None, None) => Ok(None),
            }
        };
        let required_secret = |what: &str| -> Result<Secret, ConfigIssue> {
            secret()?.ok_or_else(|| {
                issue(
                    "secret_env",
                    format!(
                        "a {} sink needs {what}: set secret_env or secret_file",
                        self.kind
                    ),
                )
            })
        };
        let url = |default: Option<&str>| -> Result<String, ConfigIssue> {
            let (field, value) = match (&self.url, &self.url_env) {
                (Some(_), Some(_)) => {
                    return Err(issue("url_env", "give url or url_env, not both".into()));
                }
                (Some(u), None) => ("url", u.clone()),
                (None, Some(var)) => match env(var) {
                    Some(v) if !v.is_empty() => ("url_env", v),
                    _ => {
                        return Err(issue(
                            "url_env",
                            format!("environment variable {var} is not set or empty"),
                        ));
                    }
                },
                (None, None) => match default {
                    Some(d) => ("url", d.to_string()),
                    None => return Err(issue("url", format!("a {} sink needs a url", self.kind))),
                },
            };
            let shown = if field == "url_env" {
                "the URL"
            } else {
                value.as_str()
            };
            let Some(host) = host_of(&value) else {
                return Err(issue(
                    field,
                    format!(
                        "{shown:?}: expected an http:// or https:// URL with a host and no user:password"
                    ),
                ));
            };
            if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(issue(
                    field,
                    format!("{shown:?}: spaces or control characters"),
                ));
            }
            if value.starts_with("http://") && !is_loopback(host) && !self.allow_insecure {
                return Err(issue(
                    field,
                    format!(
                        "{shown:?}: plain http to {host} would send alerts in the clear; use https (or allow_insecure = true)"
                    ),
                ));
            }
            Ok(value)
        };
        let min_level = match &self.min_level {
            None => Level::Medium,
            Some(l) => l.parse::<Level>().map_err(|_| {
                issue(
                    "min_level",
                    format!("{l:?}: expected informational, low, medium, high or critical"),
                )
            })?,
        };
        for (i, k) in self.kinds.iter().enumerate() {
            if !matches!(k.as_str(), "rule" | "correlation" | "anomaly") {
                return Err(issue(
                    &format!("kinds[{i}]"),
                    format!("{k:?}: expected rule, correlation or anomaly"),
                ));
            }
        }
        let max_attempts = self.max_attempts.unwrap_or(12);
        if !(1..=100).contains(&max_attempts) {
            return Err(issue("max_attempts", "must be between 1 and 100".into()));
        }
        let timeout = self.timeout_secs.unwrap_or(10);
        if !(1..=300).contains(&timeout) {
            return Err(issue("timeout_secs", "must be between 1 and 300".into()));
        }
        let update_every = self.update_every_secs.unwrap_or(900);
        if update_every > 7 * 86_400 {
            return Err(issue("update_every_secs", "at most a week (604800)".into()));
        }
        let unused = |field: &str, set: bool| -> Result<(), ConfigIssue> {
            if set {
                Err(issue(field, format!("not used by a {} sink", self.kind)))
            } else {
                Ok(())
            }
        };
        if kind != Kind::Email {
            unused("smtp_host", self.smtp_host.is_some())?;
            unused("smtp_port", self.smtp_port.is_some())?;
            unused("tls", self.tls.is_some())?;
            unused("ca_file", self.ca_file.is_some())?;
            unused("from", self.from.is_some())?;
            unused("to", !self.to.is_empty())?;
        }
        if kind != Kind::Ocsf {
            unused("path", self.path.is_some())?;
        }
        if kind != Kind::ServiceNow {
            unused("close_code", self.close_code.is_some())?;
        }
        if !matches!(kind, Kind::Email | Kind::ServiceNow) {
            unused("username", self.username.is_some())?;
        }
        let target = match kind {
            Kind::Webhook => Target::Webhook {
                url: url(None)?,
                secret: required_secret("an HMAC signing key")?,
            },
            Kind::Slack => {
                unused("secret_env", self.secret_env.is_some())?;
                unused("secret_file", self.secret_file.is_some())?;
                Target::Slack {
                    url: Secret(url(None)?),
                }
            }
            Kind::PagerDuty => Target::PagerDuty {
                url: url(Some("https://events.pagerduty.com/v2/enqueue"))?,
                routing_key: required_secret("the integration's routing key")?,
            },
            Kind::ServiceNow => Target::ServiceNow {
                base: url(None)?.trim_end_matches('/').to_string(),
                username: self
                    .username
                    .clone()
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| {
                        issue("username", "a servicenow sink needs a username".into())
                    })?,
                password: required_secret("the account's password")?,
                close_code: self
                    .close_code
                    .clone()
                    .unwrap_or_else(|| "Solution provided".into()),
            },
            Kind::Ocsf => match (&self.path, &self.url, &self.url_env) {
                (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                    return Err(issue("path", "give path or url, not both".into()));
                }
                (Some(path), None, None) => {
                    unused("secret_env", self.secret_env.is_some())?;
                    Target::OcsfFile { path: path.clone() }
                }
                (None, _, _) => Target::OcsfHttp {
                    url: url(None).map_err(|e| ConfigIssue {
                        message: format!("{} (or path, for a file)", e.message),
                        ..e
                    })?,
                    token: secret()?,
                },
            },
            Kind::Email => {
                unused("url", self.url.is_some() || self.url_env.is_some())?;
                let host = self
                    .smtp_host
                    .clone()
                    .filter(|h| !h.is_empty())
                    .ok_or_else(|| issue("smtp_host", "an email sink needs smtp_host".into()))?;
                let tls = match self.tls.as_deref() {
                    None | Some("starttls") => SmtpTls::StartTls,
                    Some("tls") => SmtpTls::Implicit,
                    Some("none") => SmtpTls::None,
                    Some(o) => {
                        return Err(issue(
                            "tls",
                            format!("{o:?}: expected starttls, tls or none"),
                        ));
                    }
                };
                if tls == SmtpTls::None && !is_loopback(&host) && !self.allow_insecure {
                    return Err(issue(
                        "tls",
                        format!(
                            "none: SMTP without TLS to {host} would send alerts and the password in the clear (allow_insecure = true to insist)"
                        ),
                    ));
                }
                let port = self.smtp_port.unwrap_or(match tls {
                    SmtpTls::StartTls => 587,
                    SmtpTls::Implicit => 465,
                    SmtpTls::None => 25,
                });
                let from = self
                    .from
                    .clone()
                    .ok_or_else(|| issue("from", "an email sink needs a from address".into()))?;
                if from.parse::<lettre::message::Mailbox>().is_err() {
                    return Err(issue("from", format!("{from:?}: not an e-mail address")));
                }
                if self.to.is_empty() {
                    return Err(issue(
                        "to",
                        "an email sink needs at least one recipient".into(),
                    ));
                }
                for (i, t) in self.to.iter().enumerate() {
                    if t.parse::<lettre::message::Mailbox>().is_err() {
                        return Err(issue(
                            &format!("to[{i}]"),
                            format!("{t:?}: not an e-mail address"),
                        ));
                    }
                }
                let ca_pem = match &self.ca_file {
                    None => None,
                    Some(p) => Some(std::fs::read(p).map_err(|e| {
                        issue("ca_file", format!("cannot read {}: {e}", p.display()))
                    })?),
                };
                let password = secret()?;
                if password.is_some() && self.username.is_none() {
                    return Err(issue(
                        "username",
                        "a password is set without a username".into(),
                    ));
                }
                Target::Email {
                    host,
                    port,
                    tls,
                    ca_pem,
                    username: self.username.clone(),
                    password,
                    from,
                    to: self.to.clone(),
                }
            }
        };
        if self.incidents && !(self.rules.is_empty() && self.kinds.is_empty()) {
            return Err(issue(
                if self.rules.is_empty() { "kinds" } else { "rules" },
                "filters alerts; a sink with incidents = true hears of incidents (filter them by min_level, techniques or accounts)".into(),
            ));
        }
        Ok(Sink {
            name: self.name.clone(),
            kind,
            incidents: self.incidents,
            filter: Filter {
                min_level,
                rules: self.rules.clone(),
                techniques: self.techniques.clone(),
                accounts: self.accounts.clone(),
                kinds: self.kinds.clone(),
            },
            update_every: chrono::Duration::seconds(update_every as i64),
            max_attempts,
            timeout: Duration::from_secs(timeout),
            target,
        })
    }
}

/// Resolves every sink; names must be unique.
pub fn resolve_all(configs: &[SinkConfig], env: Env<'_>) -> Result<Vec<Sink>, ConfigIssue> {
    let mut sinks: Vec<Sink> = Vec::with_capacity(configs.len());
    for (i, c) in configs.iter().enumerate() {
        let at = format!("notify[{i}]");
        let s = c.resolve(&at, env)?;
        if sinks.iter().any(|x| x.name == s.name) {
            return Err(ConfigIssue {
                key: format!("{at}.name"),
                message: format!("{:?} is already the name of another sink", s.name),
            });
        }
        sinks.push(s);
    }
    Ok(sinks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| vars.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone())
    }

    fn parse(toml_text: &str) -> Vec<SinkConfig> {
        #[derive(Deserialize)]
        struct File {
            notify: Vec<SinkConfig>,
        }
        let f: File = toml_from_str(toml_text);
        f.notify
    }

    fn toml_from_str<T: serde::de::DeserializeOwned>(s: &str) -> T {
        // The crate does not depend on toml; JSON stands in with the same field names.
        serde_json::from_str(s).expect("valid test config")
    }

    #[test]
    fn bad_configuration_names_the_key() {
        let e = env(&[("HOOK", "k3y")]);
        let cases = [
            (
                r#"{"notify":[{"name":"a","kind":"fax"}]}"#,
                "notify[0].kind",
            ),
            (
                r#"{"notify":[{"name":"a","kind":"webhook","url":"https://h.example/x","secret_env":"MISSING"}]}"#,
                "notify[0].secret_env",
            ),
            (
                r#"{"notify":[{"name":"a","kind":"webhook","url":"ftp://h/x","secret_env":"HOOK"}]}"#,
                "notify[0].url",
            ),
            (
                r#"{"notify":[{"name":"a","kind":"webhook","url":"http://soc.example/x","secret_env":"HOOK"}]}"#,
                "notify[0].url",
            ),
            (
                r#"{"notify":[{"name":"a","kind":"webhook","url":"https://h.example/x"}]}"#,
                "notify[0].secret_env",
            ),
            (
                r#"{"notify":[{"name":"a","kind":"pagerduty","secret_env":"HOOK","min_level":"severe"}]}"#,
                "notify[0].min_level",
            ),
            (
                r#"{"notify":[{"name":"a","kind":"slack","url":"https://hooks.slack.com/x"},{"name":"a","kind":"slack","url":"https://hooks.slack.com/y"}]}"#,
                "notify[1].name",
            ),
            (
                r#"{"notify":[{"name":"m","kind":"email","smtp_host":"mail.example","tls":"none","from":"cs@example.com","to":["soc@example.com"]}]}"#,
                "notify[0].tls",
            ),
            (
                r#"{"notify":[{"name":"m","kind":"email","smtp_host":"mail.example","from":"cs@example.com","to":["not an address"]}]}"#,
                "notify[0].to[0]",
            ),
            (
                r#"{"notify":[{"name":"s","kind":"servicenow","url":"https://x.service-now.com","secret_env":"HOOK"}]}"#,
                "notify[0].username",
            ),
            (
                r#"{"notify":[{"name":"s","kind":"slack","url":"https://hooks.slack.com/x","to":["a@b.c"]}]}"#,
                "notify[0].to",
            ),
        ];
        for (text, key) in cases {
            let err = resolve_all(&parse(text), &e).expect_err(text);
            assert_eq!(err.key, key, "{text}: {err}");
        }
    }

    #[test]
    fn secrets_are_read_from_the_environment_and_never_printed() {
        let e = env(&[
            ("HOOK", "s3cr3t-value"),
            ("SLACK_URL", "https://hooks.slack.com/services/T0/B0/tok3n"),
        ]);
        let sinks = resolve_all(
            &parse(
                r#"{"notify":[
                {"name":"soc","kind":"webhook","url":"http://127.0.0.1:9/x","secret_env":"HOOK","min_level":"high"},
                {"name":"chat","kind":"slack","url_env":"SLACK_URL","techniques":["T1078"]}]}"#,
            ),
            &e,
        )
        .unwrap();
        let shown = format!("{sinks:?} {}", sinks[1].destination());
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("tok3n"),
            "{shown}"
        );
        match &sinks[0].target {
            Target::Webhook { secret, .. } => assert_eq!(secret.expose(), "s3cr3t-value"),
            t => panic!("{t:?}"),
        }
        assert_eq!(sinks[0].filter.min_level, Level::High);
        assert_eq!(sinks[1].filter.min_level, Level::Medium, "the default");
    }

    #[test]
    fn filters_match_level_rule_kind_account_and_technique_family() {
        let mut a: AlertRecord = serde_json::from_value(serde_json::json!({
            "id": 1, "kind": "rule", "rule_id": "r1", "title": "t", "level": "high",
            "techniques": ["T1078.004"], "tactics": [], "entity": "e", "account": "111",
            "access_key": null, "source_ip": null,
            "first_seen": "2026-01-01T00:00:00Z", "last_seen": "2026-01-01T00:00:00Z",
            "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z",
            "count": 1, "event_ids": [], "explanation": "", "status": "open",
            "assignee": null, "incident_id": null, "verdict": null
        }))
        .unwrap();
        let f = Filter {
            min_level: Level::Medium,
            rules: vec![],
            techniques: vec!["T1078".into()],
            accounts: vec!["111".into()],
            kinds: vec!["rule".into()],
        };
        assert!(f.accepts(&a));
        a.techniques = vec!["T10780".into()];
        assert!(!f.accepts(&a), "a prefix is not a family");
        a.techniques = vec!["T1078".into()];
        a.level = Level::Low;
        assert!(!f.accepts(&a));
        a.level = Level::Critical;
        a.account = Some("222".into());
        assert!(!f.accepts(&a));
    }
}
