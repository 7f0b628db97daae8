//! The service's configuration: a TOML file, then `CLOUDSENTINEL_*` environment overrides, then
//! validation into the values the service runs with.
//!
//! An override names a key by its path with `__` between levels:
//! `CLOUDSENTINEL_SERVER__LISTEN=0.0.0.0:8000`, `CLOUDSENTINEL_STORAGE__RETENTION_DAYS=30`.
//! Values are read as TOML scalars (numbers, booleans) and otherwise as strings.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// Environment variables that start with the prefix but are not config overrides.
const NOT_OVERRIDES: &[&str] = &[
    "CLOUDSENTINEL_ADMIN_USER",
    "CLOUDSENTINEL_ADMIN_PASSWORD",
    "CLOUDSENTINEL_LOG",
    "CLOUDSENTINEL_LOG_FORMAT",
    // The CLI's connection to a running service (`cloudsentinel models`).
    "CLOUDSENTINEL_URL",
    "CLOUDSENTINEL_USER",
    "CLOUDSENTINEL_PASSWORD",
    "CLOUDSENTINEL_TOKEN",
];

pub const ENV_PREFIX: &str = "CLOUDSENTINEL_";

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerSection,
    pub storage: StorageSection,
    pub pipeline: PipelineSection,
    pub detection: DetectionSection,
    pub auth: AuthSection,
    /// Directories watched for new log files.
    pub sources: Vec<SourceSection>,
    /// Where alerts are delivered: webhooks, Slack, e-mail, PagerDuty, ServiceNow, OCSF.
    pub notify: Vec<cloudsentinel_notify::SinkConfig>,
    /// Containment: playbooks, guardrails and how to reach the accounts.
    pub respond: RespondSection,
    /// Between processes: RabbitMQ, or nothing (one process).
    pub bus: BusSection,
}

/// `[bus]`: how ingest processes hand batches to detect processes (docs/SCALING.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusSection {
    /// `inprocess` (one process: ingest hands batches straight to its pipeline) or `amqp`
    /// (RabbitMQ: ingest publishes, detect consumes).
    pub kind: String,
    /// With `kind = "amqp"`: `amqp://user@host:5672/vhost` (the vhost percent-encoded, `%2f`
    /// for `/`), without a password.
    pub url: Option<String>,
    /// The environment variable holding the broker password (`guest` without one for the
    /// `guest` user).
    pub password_env: Option<String>,
    /// The batches' queue (its dead letters go to `<queue>.dead`).
    pub queue: String,
    /// Batches a detect process holds unacknowledged at most.
    pub prefetch: u16,
}

impl Default for BusSection {
    fn default() -> Self {
        BusSection {
            kind: "inprocess".into(),
            url: None,
            password_env: None,
            queue: "cloudsentinel.batches".into(),
            prefetch: 8,
        }
    }
}

/// What one process of a deployment does (`serve --role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcessRole {
    /// Everything: ingest, detection, alerting, notifications, the API and the dashboard.
    #[default]
    All,
    /// The ingest endpoints: checks batches and publishes them to the bus.
    Ingest,
    /// Consumes the bus: detection, alerting, incidents, notifications, sources, retention.
    Detect,
    /// The API and the dashboard, over the shared store.
    Api,
}

impl ProcessRole {
    pub fn parse(s: &str) -> Option<ProcessRole> {
        Some(match s {
            "all" => ProcessRole::All,
            "ingest" => ProcessRole::Ingest,
            "detect" => ProcessRole::Detect,
            "api" => ProcessRole::Api,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProcessRole::All => "all",
            ProcessRole::Ingest => "ingest",
            ProcessRole::Detect => "detect",
            ProcessRole::Api => "api",
        }
    }

    /// Whether this process runs the pipeline (detection, alerting, notifications, sources).
    pub fn runs_pipeline(self) -> bool {
        matches!(self, ProcessRole::All | ProcessRole::Detect)
    }

    /// Whether this process answers the ingest endpoints.
    pub fn ingests(self) -> bool {
        matches!(self, ProcessRole::All | ProcessRole::Ingest)
    }

    /// Whether this process serves the API and the dashboard (besides health and metrics).
    pub fn serves_api(self) -> bool {
        matches!(self, ProcessRole::All | ProcessRole::Api)
    }
}

/// `[respond]`: containment actions proposed from alerts (docs/RESPONSE.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RespondSection {
    /// Principals no action touches (`user/break-glass`, `role/cloudsentinel-*`; `*` matches
    /// any run of characters), besides the organisation and Identity Center roles.
    pub protected: Vec<String>,
    /// At most this many actions run per account per hour.
    pub max_per_hour: u64,
    /// The person who proposed an action may not approve it.
    pub four_eyes: bool,
    /// Directories of extra playbooks (YAML), added to the built-in ones.
    pub playbooks: Vec<PathBuf>,
    /// The region calls are made in when the alert's evidence names none (an alert's AWS
    /// calls go to the region of its evidence, `awsRegion`).
    pub region: String,
    /// Send every call here instead of AWS (an emulator).
    pub endpoint_url: Option<String>,
    /// A role to assume in each account, by account id (`"111122223333" = "arn:aws:iam::...:role/..."`).
    pub roles: std::collections::BTreeMap<String, String>,
    /// The Entra ID application the `entra.*` actions act as.
    pub entra: Option<EntraSection>,
    /// How the `gcp.*` actions reach Google Cloud.
    pub gcp: Option<GcpRespondSection>,
}

/// `[respond.entra]`: an Entra ID application with the Graph permissions the actions need
/// (User.EnableDisableAccount.All, User.RevokeSessions.All, Application.ReadWrite.All).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntraSection {
    pub tenant_id: String,
    pub client_id: String,
    /// The environment variable holding the application's secret.
    pub client_secret_env: String,
    /// Send Graph calls here instead (a stand-in).
    #[serde(default)]
    pub graph_endpoint: Option<String>,
    /// The token authority (default https://login.microsoftonline.com).
    #[serde(default)]
    pub authority: Option<String>,
}

/// `[respond.gcp]`: the credentials the `gcp.*` actions act with (a service account, or the
/// identity the service runs as on Google Cloud) with the IAM permissions docs/RESPONSE.md
/// names (iam.serviceAccountKeys.get/disable/enable,
/// resourcemanager.projects.getIamPolicy/setIamPolicy).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcpRespondSection {
    /// A service account key file (JSON), read when the service starts; without it, the file
    /// GOOGLE_APPLICATION_CREDENTIALS names, else the metadata server's token (GKE workload
    /// identity, Compute Engine, Cloud Run), or, with `endpoint`, no credentials.
    pub credentials_file: Option<PathBuf>,
    /// Send the IAM and Resource Manager calls here instead (one stand-in serving both).
    pub endpoint: Option<String>,
}

impl Default for RespondSection {
    fn default() -> Self {
        RespondSection {
            protected: Vec::new(),
            max_per_hour: 10,
            four_eyes: true,
            playbooks: Vec::new(),
            region: "us-east-1".into(),
            endpoint_url: None,
            roles: Default::default(),
            entra: None,
            gcp: None,
        }
    }
}

/// `[server]`: the HTTP listener and request limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Address to listen on.
    pub listen: String,
    /// Largest request body accepted, in bytes (compressed size for gzip bodies).
    pub max_body_bytes: usize,
    /// Largest ingest body after gzip decompression, in bytes.
    pub max_decompressed_bytes: usize,
    /// Records per ingest request.
    pub max_records: usize,
    /// Header in which a reverse proxy in front of the service passes the client's address
    /// (`x-forwarded-for`: its last entry, the one the proxy added; or `x-real-ip`). Read only
    /// on connections from `trusted_proxies`; without it, the peer address is the client's.
    /// Login limits and audit entries use this address.
    pub client_ip_header: Option<String>,
    /// Addresses of the proxies whose `client_ip_header` is believed.
    pub trusted_proxies: Vec<String>,
    /// The dashboard as people reach it (`https://cloudsentinel.example.com`): links in
    /// notifications point there.
    pub public_url: Option<String>,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:8000".into(),
            max_body_bytes: 16 * 1024 * 1024,
            max_decompressed_bytes: 128 * 1024 * 1024,
            max_records: 50_000,
            client_ip_header: None,
            trusted_proxies: vec!["127.0.0.1".into(), "::1".into()],
            public_url: None,
        }
    }
}

/// `[storage]`: where and how long data is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// Directory for the database and the service's keys.
    pub data_dir: PathBuf,
    /// Events older than this many days are deleted (0 keeps them forever). Alerts are kept.
    pub retention_days: u32,
    /// `full`: every commit reaches the disk before ingest answers (survives power loss);
    /// `normal`: survives a crash of the process but not of the machine.
    pub synchronous: String,
    /// `sqlite` (one file in `data_dir`, for one process) or `postgres` (shared by several
    /// processes: see docs/SCALING.md).
    pub backend: String,
    /// With `backend = "postgres"`: where it is, as a URL or libpq string without a password,
    /// e.g. `postgres://cloudsentinel@db:5432/cloudsentinel`.
    pub postgres_url: Option<String>,
    /// The environment variable that holds the PostgreSQL password, when one is needed.
    pub postgres_password_env: Option<String>,
    /// Connections at most per process.
    pub postgres_pool: usize,
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            data_dir: PathBuf::from("./data"),
            retention_days: 90,
            synchronous: "full".into(),
            backend: "sqlite".into(),
            postgres_url: None,
            postgres_password_env: None,
            postgres_pool: 16,
        }
    }
}

/// `[pipeline]`: queueing and alert grouping.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineSection {
    /// Events waiting to be committed before ingest answers 429.
    pub max_queued_events: usize,
    /// Ingest requests decoded at the same time before more answer 429.
    pub max_concurrent_ingests: usize,
    /// Matches of one rule about one entity closer than this become one alert.
    pub dedup_window_secs: i64,
    /// Alerts about one principal or access key closer than this form one incident.
    pub incident_window_secs: i64,
    /// Events committed per transaction at most.
    pub max_commit_events: usize,
}

impl Default for PipelineSection {
    fn default() -> Self {
        PipelineSection {
            max_queued_events: 50_000,
            max_concurrent_ingests: 8,
            dedup_window_secs: 3600,
            incident_window_secs: 3600,
            max_commit_events: 20_000,
        }
    }
}

/// `[detection]`: which rules run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionSection {
    /// Load the built-in rule pack.
    pub builtin_rules: bool,
    /// Extra Sigma rule files or directories (SigmaHQ's files load unchanged).
    pub rules: Vec<PathBuf>,
    /// Learn behavioural baselines and, once an anomaly model is active, score every event.
    pub anomaly: bool,
    /// An IP-to-AS table in iptoasn.com's TSV format (`ip2asn-v4.tsv`, `ip2asn-v6.tsv`) to use
    /// instead of the table that ships inside CloudSentinel.
    pub netdb: Option<PathBuf>,
    /// Cloud providers' published address ranges (AWS `ip-ranges.json`, Azure service tags
    /// JSON, GCP `cloud.json`): which source addresses are that cloud's, more exactly than its
    /// AS numbers say.
    pub cloud_ranges: Vec<PathBuf>,
    /// Days after which a habit not seen again weighs half as much.
    pub baseline_half_life_days: f64,
    /// A principal is scored only after it has been seen this many days...
    pub baseline_learning_days: f64,
    /// ...and this many times.
    pub baseline_learning_events: u32,
    /// Share of events an anomaly model trained here lets through (0.0005 = 5 in 10,000).
    pub anomaly_target_rate: f64,
    /// Close new alerts that the active feedback model scores below this true-positive
    /// probability. Off unless set.
    pub auto_close_below: Option<f64>,
}

impl Default for DetectionSection {
    fn default() -> Self {
        let b = cloudsentinel_learn::behaviour::Settings::default();
        DetectionSection {
            builtin_rules: true,
            rules: Vec::new(),
            anomaly: true,
            netdb: None,
            cloud_ranges: Vec::new(),
            baseline_half_life_days: b.half_life_days,
            baseline_learning_days: b.learning_days,
            baseline_learning_events: b.learning_events,
            anomaly_target_rate: 0.0005,
            auto_close_below: None,
        }
    }
}

/// `[auth]`: tokens and login limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// Lifetime of an access token.
    pub access_token_secs: i64,
    /// Lifetime of a refresh token.
    pub refresh_token_secs: i64,
    /// Failed sign-ins from one address within the window before that address is refused
    /// (429); a user name with this many failures is slowed, never locked out.
    pub login_max_failures: u32,
    pub login_window_secs: i64,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            access_token_secs: 900,
            refresh_token_secs: 7 * 86_400,
            login_max_failures: 10,
            login_window_secs: 300,
        }
    }
}

/// `[[sources]]`: where logs come from besides HTTP ingest. `kind` says which:
/// `directory` (the default: a directory watched for new files) or `aws-s3-sqs` (CloudTrail
/// delivered to S3, announced on an SQS queue). Each kind's keys are checked in
/// [`SourceSection::spec`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Shown in source health; defaults to the kind and the position in the list.
    #[serde(default)]
    pub name: Option<String>,
    /// `directory`: the directory to watch (CloudTrail's S3 delivery tree works as is).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// `directory`: read every file as this provider's logs (`aws`, `azure`, `gcp`); detected
    /// per record when absent.
    #[serde(default)]
    pub provider: Option<String>,
    /// `directory`: seconds between scans.
    #[serde(default = "default_poll")]
    pub poll_secs: u64,
    /// `aws-s3-sqs`: the queue the bucket's notifications go to.
    #[serde(default)]
    pub queue_url: Option<String>,
    /// `aws-s3-sqs`: the queue's region (read from a standard queue URL when absent).
    #[serde(default)]
    pub region: Option<String>,
    /// `aws-s3-sqs`: send every call here instead of AWS (an emulator).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// `aws-s3-sqs`: a role to assume with the credentials of the standard chain.
    #[serde(default)]
    pub role_arn: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    /// `aws-s3-sqs`: long-poll wait per receive, 0..20 seconds.
    #[serde(default = "default_wait")]
    pub wait_secs: u32,
    /// `aws-s3-sqs`: how long a received message stays hidden (extended while its objects are
    /// processed).
    #[serde(default = "default_visibility")]
    pub visibility_secs: u32,
    /// `aws-s3-sqs`: the largest object read, in MiB (CloudTrail files are a few MiB).
    #[serde(default = "default_max_object_mb")]
    pub max_object_mb: u64,
    /// An account and region that delivered regularly and then sends nothing for three times its
    /// usual gap, and at least this many seconds, raises "Log source went silent".
    #[serde(default = "default_silence")]
    pub silence_secs: u64,
    /// `azure-blob`: the storage account the diagnostic settings export to.
    #[serde(default)]
    pub account: Option<String>,
    /// `azure-blob`: the containers to read (default: insights-activity-logs,
    /// insights-logs-signinlogs, insights-logs-auditlogs).
    #[serde(default)]
    pub containers: Option<Vec<String>>,
    /// `azure-blob`: the Blob service endpoint, for an emulator (Azurite:
    /// `http://127.0.0.1:10000/devstoreaccount1`).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// `azure-blob`: the environment variable holding the account key.
    #[serde(default)]
    pub key_env: Option<String>,
    /// `azure-blob`: the environment variable holding a SAS token (list and read).
    #[serde(default)]
    pub sas_env: Option<String>,
    /// `azure-blob`: an Entra ID application (tenant, client id, and the environment variable
    /// holding its secret) with Storage Blob Data Reader on the account.
    #[serde(default)]
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// `azure-blob`: on the first look, how many hours of existing exports to read.
    #[serde(default = "default_lookback")]
    pub lookback_hours: u64,
    /// `gcp-pubsub`: `projects/<project>/subscriptions/<name>`, a pull subscription of the
    /// topic a log sink publishes to.
    #[serde(default)]
    pub subscription: Option<String>,
    /// `gcp-pubsub`: a service account key file; without it, GOOGLE_APPLICATION_CREDENTIALS,
    /// else the metadata server (workload identity); with an `endpoint` and neither, no
    /// credentials (an emulator).
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// `gcp-pubsub`: messages per pull.
    #[serde(default = "default_max_messages")]
    pub max_messages: u32,
    /// `gcp-pubsub`: the ack deadline kept while pulled messages are processed.
    #[serde(default = "default_ack_deadline")]
    pub ack_deadline_secs: u32,
}

fn default_max_messages() -> u32 {
    100
}

fn default_ack_deadline() -> u32 {
    60
}

fn default_lookback() -> u64 {
    24
}

/// The containers diagnostic settings export the Activity Log and Entra ID logs to.
pub const AZURE_EXPORT_CONTAINERS: [&str; 3] = [
    "insights-activity-logs",
    "insights-logs-signinlogs",
    "insights-logs-auditlogs",
];

fn default_silence() -> u64 {
    900
}

/// Refuses a value that is not an http(s):// URL, naming the key.
fn http_url(key: &str, value: Option<&str>) -> Result<(), ConfigError> {
    match value {
        Some(v) if !v.starts_with("https://") && !v.starts_with("http://") => {
            Err(invalid(key, format!("{v:?}: expected an http(s):// URL")))
        }
        _ => Ok(()),
    }
}

fn default_kind() -> String {
    "directory".into()
}

fn default_wait() -> u32 {
    20
}

fn default_visibility() -> u32 {
    300
}

fn default_max_object_mb() -> u64 {
    512
}

/// A source, checked.
#[derive(Debug, Clone)]
pub enum SourceSpec {
    Directory(DirectorySource),
    S3Sqs(S3SqsSource),
    AzureBlob(AzureBlobSource),
    GcpPubSub(GcpPubSubSource),
}

#[derive(Debug, Clone)]
pub struct GcpPubSubSource {
    pub name: String,
    pub silence_secs: u64,
    pub subscription: String,
    pub endpoint: Option<String>,
    pub credentials: cloudsentinel_cloud::gcp::Credentials,
    pub max_messages: u32,
    pub ack_deadline_secs: u32,
    pub poll_secs: u64,
}

#[derive(Debug, Clone)]
pub struct AzureBlobSource {
    pub name: String,
    pub silence_secs: u64,
    pub account: String,
    pub containers: Vec<String>,
    pub endpoint: Option<String>,
    pub auth: cloudsentinel_cloud::azure::Auth,
    pub poll_secs: u64,
    pub lookback_hours: u64,
}

impl SourceSpec {
    pub fn name(&self) -> &str {
        match self {
            SourceSpec::Directory(d) => &d.name,
            SourceSpec::S3Sqs(s) => &s.name,
            SourceSpec::AzureBlob(a) => &a.name,
            SourceSpec::GcpPubSub(g) => &g.name,
        }
    }

    pub fn silence_secs(&self) -> u64 {
        match self {
            SourceSpec::Directory(d) => d.silence_secs,
            SourceSpec::S3Sqs(s) => s.silence_secs,
            SourceSpec::AzureBlob(a) => a.silence_secs,
            SourceSpec::GcpPubSub(g) => g.silence_secs,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DirectorySource {
    pub name: String,
    pub silence_secs: u64,
    pub path: PathBuf,
    pub provider: Option<cloudsentinel_core::Provider>,
    pub poll_secs: u64,
}

#[derive(Debug, Clone)]
pub struct S3SqsSource {
    pub name: String,
    pub silence_secs: u64,
    pub queue_url: String,
    pub region: String,
    pub endpoint_url: Option<String>,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub wait_secs: u32,
    pub visibility_secs: u32,
    pub max_object_bytes: u64,
}

impl SourceSection {
    /// The source this section describes, or the key that is wrong (`sources[i].key`).
    pub fn spec(&self, i: usize) -> Result<SourceSpec, ConfigError> {
        let key = |k: &str| format!("sources[{i}].{k}");
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{i}", self.kind));
        let only = |allowed: &[&str]| -> Result<(), ConfigError> {
            let set = [
                ("path", self.path.is_some()),
                ("provider", self.provider.is_some()),
                ("queue_url", self.queue_url.is_some()),
                ("region", self.region.is_some()),
                ("endpoint_url", self.endpoint_url.is_some()),
                ("role_arn", self.role_arn.is_some()),
                ("external_id", self.external_id.is_some()),
                ("account", self.account.is_some()),
                ("containers", self.containers.is_some()),
                ("endpoint", self.endpoint.is_some()),
                ("key_env", self.key_env.is_some()),
                ("sas_env", self.sas_env.is_some()),
                ("tenant_id", self.tenant_id.is_some()),
                ("client_id", self.client_id.is_some()),
                ("client_secret_env", self.client_secret_env.is_some()),
                ("subscription", self.subscription.is_some()),
                ("credentials_file", self.credentials_file.is_some()),
            ];
            match set.iter().find(|(k, given)| *given && !allowed.contains(k)) {
                Some((k, _)) => Err(invalid(
                    &key(k),
                    format!("not a key of a {} source", self.kind),
                )),
                None => Ok(()),
            }
        };
        if self.silence_secs == 0 {
            return Err(invalid(&key("silence_secs"), "must be greater than 0"));
        }
        match self.kind.as_str() {
            "directory" => {
                only(&["path", "provider"])?;
                let path = self
                    .path
                    .clone()
                    .ok_or_else(|| invalid(&key("path"), "a directory source needs a path"))?;
                let provider = match self.provider.as_deref() {
                    None => None,
                    Some("aws") => Some(cloudsentinel_core::Provider::Aws),
                    Some("azure") => Some(cloudsentinel_core::Provider::Azure),
                    Some("gcp") => Some(cloudsentinel_core::Provider::Gcp),
                    Some(p) => {
                        return Err(invalid(
                            &key("provider"),
                            format!("{p:?}: expected aws, azure or gcp"),
                        ));
                    }
                };
                if self.poll_secs == 0 {
                    return Err(invalid(&key("poll_secs"), "must be greater than 0"));
                }
                Ok(SourceSpec::Directory(DirectorySource {
                    name,
                    silence_secs: self.silence_secs,
                    path,
                    provider,
                    poll_secs: self.poll_secs,
                }))
            }
            "aws-s3-sqs" => {
                only(&[
                    "queue_url",
                    "region",
                    "endpoint_url",
                    "role_arn",
                    "external_id",
                ])?;
                let queue_url = self.queue_url.clone().ok_or_else(|| {
                    invalid(
                        &key("queue_url"),
                        "an aws-s3-sqs source needs the queue's URL",
                    )
                })?;
                http_url(&key("queue_url"), Some(&queue_url))?;
                let region = match &self.region {
                    Some(r) => r.clone(),
                    None => cloudsentinel_cloud::aws::Aws::region_of_queue(&queue_url).ok_or_else(
                        || invalid(&key("region"), "the queue URL names no region: set region"),
                    )?,
                };
                http_url(&key("endpoint_url"), self.endpoint_url.as_deref())?;
                if self.wait_secs > 20 {
                    return Err(invalid(
                        &key("wait_secs"),
                        "at most 20 (SQS's longest wait)",
                    ));
                }
                if !(10..=43_200).contains(&self.visibility_secs) {
                    return Err(invalid(&key("visibility_secs"), "between 10 and 43200"));
                }
                if self.max_object_mb == 0 {
                    return Err(invalid(&key("max_object_mb"), "must be greater than 0"));
                }
                Ok(SourceSpec::S3Sqs(S3SqsSource {
                    name,
                    silence_secs: self.silence_secs,
                    queue_url,
                    region,
                    endpoint_url: self.endpoint_url.clone(),
                    role_arn: self.role_arn.clone(),
                    external_id: self.external_id.clone(),
                    wait_secs: self.wait_secs,
                    visibility_secs: self.visibility_secs,
                    max_object_bytes: self.max_object_mb * 1024 * 1024,
                }))
            }
            "azure-blob" => {
                only(&[
                    "account",
                    "containers",
                    "endpoint",
                    "key_env",
                    "sas_env",
                    "tenant_id",
                    "client_id",
                    "client_secret_env",
                ])?;
                let account = self
                    .account
                    .clone()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| {
                        invalid(
                            &key("account"),
                            "an azure-blob source needs the storage account",
                        )
                    })?;
                let env_value = |k: &str, var: &str| -> Result<String, ConfigError> {
                    std::env::var(var)
                        .ok()
                        .filter(|v| !v.trim().is_empty())
                        .ok_or_else(|| {
                            invalid(&key(k), format!("environment variable {var} is not set"))
                        })
                };
                let auth = match (&self.key_env, &self.sas_env, &self.client_secret_env) {
                    (Some(var), None, None) => {
                        cloudsentinel_cloud::azure::Auth::SharedKey(env_value("key_env", var)?)
                    }
                    (None, Some(var), None) => {
                        cloudsentinel_cloud::azure::Auth::Sas(env_value("sas_env", var)?)
                    }
                    (None, None, Some(var)) => {
                        cloudsentinel_cloud::azure::Auth::ClientCredentials {
                            tenant: self.tenant_id.clone().ok_or_else(|| {
                                invalid(&key("tenant_id"), "client credentials need tenant_id")
                            })?,
                            client_id: self.client_id.clone().ok_or_else(|| {
                                invalid(&key("client_id"), "client credentials need client_id")
                            })?,
                            secret: env_value("client_secret_env", var)?,
                        }
                    }
                    _ => {
                        return Err(invalid(
                            &key("key_env"),
                            "give exactly one of key_env, sas_env, client_secret_env (with tenant_id and client_id)",
                        ));
                    }
                };
                http_url(&key("endpoint"), self.endpoint.as_deref())?;
                let containers = self.containers.clone().unwrap_or_else(|| {
                    AZURE_EXPORT_CONTAINERS
                        .iter()
                        .map(|c| c.to_string())
                        .collect()
                });
                if containers.is_empty() {
                    return Err(invalid(&key("containers"), "name at least one container"));
                }
                if self.poll_secs == 0 {
                    return Err(invalid(&key("poll_secs"), "must be greater than 0"));
                }
                Ok(SourceSpec::AzureBlob(AzureBlobSource {
                    name,
                    silence_secs: self.silence_secs,
                    account,
                    containers,
                    endpoint: self.endpoint.clone(),
                    auth,
                    poll_secs: self.poll_secs,
                    lookback_hours: self.lookback_hours,
                }))
            }
            "gcp-pubsub" => {
                only(&["subscription", "endpoint", "credentials_file"])?;
                let subscription = self.subscription.clone().ok_or_else(|| {
                    invalid(
                        &key("subscription"),
                        "a gcp-pubsub source needs projects/<project>/subscriptions/<name>",
                    )
                })?;
                let parts: Vec<&str> = subscription.split('/').collect();
                if parts.len() != 4
                    || parts[0] != "projects"
                    || parts[2] != "subscriptions"
                    || parts[1].is_empty()
                    || parts[3].is_empty()
                {
                    return Err(invalid(
                        &key("subscription"),
                        format!(
                            "{subscription:?}: expected projects/<project>/subscriptions/<name>"
                        ),
                    ));
                }
                http_url(&key("endpoint"), self.endpoint.as_deref())?;
                let file = self.credentials_file.clone().or_else(|| {
                    std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").map(PathBuf::from)
                });
                let credentials = match file {
                    Some(f) => cloudsentinel_cloud::gcp::Credentials::ServiceAccount(
                        std::fs::read_to_string(&f).map_err(|e| {
                            invalid(&key("credentials_file"), format!("{}: {e}", f.display()))
                        })?,
                    ),
                    None if self.endpoint.is_some() => cloudsentinel_cloud::gcp::Credentials::None,
                    None => cloudsentinel_cloud::gcp::Credentials::Metadata,
                };
                if !(10..=600).contains(&self.ack_deadline_secs) {
                    return Err(invalid(&key("ack_deadline_secs"), "between 10 and 600"));
                }
                if self.max_messages == 0 || self.max_messages > 1000 {
                    return Err(invalid(&key("max_messages"), "between 1 and 1000"));
                }
                if self.poll_secs == 0 {
                    return Err(invalid(&key("poll_secs"), "must be greater than 0"));
                }
                Ok(SourceSpec::GcpPubSub(GcpPubSubSource {
                    name,
                    silence_secs: self.silence_secs,
                    subscription,
                    endpoint: self.endpoint.clone(),
                    credentials,
                    max_messages: self.max_messages,
                    ack_deadline_secs: self.ack_deadline_secs,
                    poll_secs: self.poll_secs,
                }))
            }
            other => Err(invalid(
                &key("kind"),
                format!("{other:?}: expected directory, aws-s3-sqs, azure-blob or gcp-pubsub"),
            )),
        }
    }
}

fn default_poll() -> u64 {
    5
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

/// Values checked and ready to use.
#[derive(Debug, Clone)]
pub struct Validated {
    pub config: Config,
    pub listen: SocketAddr,
    pub synchronous_full: bool,
    /// With `storage.backend = "postgres"`: how to connect (its password read); `None` for
    /// SQLite.
    pub postgres: Option<cloudsentinel_store::PostgresOptions>,
    /// `[bus]` with `kind = "amqp"`: the broker, its password read; `None` in process.
    pub bus: Option<crate::bus::BusSettings>,
    /// What this process does; `all` unless [`Validated::for_role`] says otherwise.
    pub role: ProcessRole,
    /// `server.trusted_proxies`, parsed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// `[[notify]]`, checked, with their secrets read.
    pub sinks: Vec<cloudsentinel_notify::Sink>,
    /// `[[sources]]`, checked.
    pub sources: Vec<SourceSpec>,
    /// The built-in playbooks and those of `respond.playbooks`, checked.
    pub playbooks: Vec<cloudsentinel_respond::playbook::Playbook>,
    /// `[respond.gcp]`'s credentials, its key file read; `None` without the section.
    pub respond_gcp: Option<cloudsentinel_cloud::gcp::Credentials>,
}

impl Validated {
    /// The same configuration for a process of `role`, refused when the role cannot work with
    /// it: the split roles share state through PostgreSQL, and ingest and detect meet on the bus.
    pub fn for_role(mut self, role: ProcessRole) -> Result<Validated, ConfigError> {
        if role != ProcessRole::All && self.postgres.is_none() {
            return Err(invalid(
                "storage.backend",
                format!(
                    "the {} role shares its state with other processes: set storage.backend = \"postgres\"",
                    role.as_str()
                ),
            ));
        }
        if matches!(role, ProcessRole::Ingest | ProcessRole::Detect) && self.bus.is_none() {
            return Err(invalid(
                "bus.kind",
                format!(
                    "the {} role meets the other processes on RabbitMQ: set bus.kind = \"amqp\"",
                    role.as_str()
                ),
            ));
        }
        self.role = role;
        Ok(self)
    }
}

impl Config {
    /// Reads `file` (when given), applies the environment overrides in `env`, and validates.
    pub fn load(
        file: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Validated, ConfigError> {
        let (name, text) = match file {
            Some(p) => (
                p.display().to_string(),
                std::fs::read_to_string(p).map_err(|e| ConfigError::Parse {
                    file: p.display().to_string(),
                    message: e.to_string(),
                })?,
            ),
            None => ("(defaults)".to_string(), String::new()),
        };
        Config::from_toml(&name, &text, env)?.validate()
    }

    /// Parses TOML text and applies overrides; no IO.
    pub fn from_toml(
        name: &str,
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    file: name.to_string(),
                    message: e.to_string().trim_end().to_string(),
                })?;
        let vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX) && !NOT_OVERRIDES.contains(&k.as_str()))
            .collect();
        // Variables named as holding a secret (`*_password_env`, in the file or overridden)
        // are the secret, not an override, whatever their name.
        let named = |section: &str, key: &str| -> Option<String> {
            let over = format!(
                "{ENV_PREFIX}{}__{}",
                section.to_ascii_uppercase(),
                key.to_ascii_uppercase()
            );
            vars.iter()
                .find(|(k, _)| *k == over)
                .map(|(_, v)| v.clone())
                .or_else(|| table.get(section)?.get(key)?.as_str().map(str::to_string))
        };
        let secrets: Vec<String> = [
            named("storage", "postgres_password_env"),
            named("bus", "password_env"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut vars: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(k, _)| !secrets.contains(k))
            .collect();
        vars.sort();
        for (var, value) in vars {
            let path: Vec<String> = var[ENV_PREFIX.len()..]
                .split("__")
                .map(|p| p.to_ascii_lowercase())
                .collect();
            if path.len() < 2 || path.iter().any(|p| p.is_empty()) {
                return Err(ConfigError::Env {
                    var,
                    message: "expected CLOUDSENTINEL_<SECTION>__<KEY>".into(),
                });
            }
            let parsed = parse_scalar(&value);
            let mut at = &mut table;
            for part in &path[..path.len() - 1] {
                let entry = at
                    .entry(part.clone())
                    .or_insert_with(|| toml::Value::Table(Default::default()));
                at = match entry {
                    toml::Value::Table(t) => t,
                    _ => {
                        return Err(ConfigError::Env {
                            var,
                            message: format!("{part} is not a section"),
                        });
                    }
                };
            }
            at.insert(path[path.len() - 1].clone(), parsed);
        }
        Config::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Parse {
            file: name.to_string(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    /// Checks values; no IO.
    pub fn validate(self) -> Result<Validated, ConfigError> {
        let listen: SocketAddr = self.server.listen.parse().map_err(|e| {
            invalid(
                "server.listen",
                format!("{e}: expected an address like 127.0.0.1:8000"),
            )
        })?;
        let positive = |key: &str, v: usize| {
            if v == 0 {
                Err(invalid(key, "must be greater than 0"))
            } else {
                Ok(())
            }
        };
        positive("server.max_body_bytes", self.server.max_body_bytes)?;
        positive("server.max_records", self.server.max_records)?;
        positive(
            "pipeline.max_queued_events",
            self.pipeline.max_queued_events,
        )?;
        positive(
            "pipeline.max_concurrent_ingests",
            self.pipeline.max_concurrent_ingests,
        )?;
        positive(
            "pipeline.max_commit_events",
            self.pipeline.max_commit_events,
        )?;
        if self.server.max_decompressed_bytes < self.server.max_body_bytes {
            return Err(invalid(
                "server.max_decompressed_bytes",
                "must be at least server.max_body_bytes",
            ));
        }
        for (key, v) in [
            (
                "pipeline.dedup_window_secs",
                self.pipeline.dedup_window_secs,
            ),
            (
                "pipeline.incident_window_secs",
                self.pipeline.incident_window_secs,
            ),
            ("auth.access_token_secs", self.auth.access_token_secs),
            ("auth.refresh_token_secs", self.auth.refresh_token_secs),
            ("auth.login_window_secs", self.auth.login_window_secs),
        ] {
            if v <= 0 {
                return Err(invalid(key, "must be a positive number of seconds"));
            }
        }
        let d = &self.detection;
        if !(d.baseline_half_life_days > 0.0 && d.baseline_half_life_days <= 3650.0) {
            return Err(invalid(
                "detection.baseline_half_life_days",
                "must be between 0 and 3650 days",
            ));
        }
        if !(d.baseline_learning_days >= 0.0 && d.baseline_learning_days <= 365.0) {
            return Err(invalid(
                "detection.baseline_learning_days",
                "must be between 0 and 365 days",
            ));
        }
        if !(d.anomaly_target_rate > 0.0 && d.anomaly_target_rate <= 0.1) {
            return Err(invalid(
                "detection.anomaly_target_rate",
                "must be above 0 and at most 0.1",
            ));
        }
        if let Some(c) = d.auto_close_below
            && !(c > 0.0 && c <= 0.5)
        {
            return Err(invalid(
                "detection.auto_close_below",
                "must be above 0 and at most 0.5",
            ));
        }
        if self.auth.refresh_token_secs < self.auth.access_token_secs {
            return Err(invalid(
                "auth.refresh_token_secs",
                "must be at least auth.access_token_secs",
            ));
        }
        let synchronous_full = match self.storage.synchronous.as_str() {
            "full" => true,
            "normal" => false,
            other => {
                return Err(invalid(
                    "storage.synchronous",
                    format!("{other:?}: expected \"full\" or \"normal\""),
                ));
            }
        };
        let postgres = match self.storage.backend.as_str() {
            "sqlite" => None,
            "postgres" => {
                let Some(url) = &self.storage.postgres_url else {
                    return Err(invalid(
                        "storage.postgres_url",
                        "is required with storage.backend = \"postgres\"",
                    ));
                };
                let mut options = cloudsentinel_store::PostgresOptions::new(url);
                options
                    .check()
                    .map_err(|m| invalid("storage.postgres_url", m))?;
                if let Some(var) = &self.storage.postgres_password_env {
                    options.password = Some(std::env::var(var).map_err(|_| {
                        invalid(
                            "storage.postgres_password_env",
                            format!("the environment variable {var} is not set"),
                        )
                    })?);
                }
                if !(1..=256).contains(&self.storage.postgres_pool) {
                    return Err(invalid("storage.postgres_pool", "must be 1 to 256"));
                }
                options.pool = self.storage.postgres_pool;
                Some(options)
            }
            other => {
                return Err(invalid(
                    "storage.backend",
                    format!("{other:?}: expected \"sqlite\" or \"postgres\""),
                ));
            }
        };
        let bus = match self.bus.kind.as_str() {
            "inprocess" => None,
            "amqp" => {
                let Some(url) = &self.bus.url else {
                    return Err(invalid("bus.url", "is required with bus.kind = \"amqp\""));
                };
                let password = match &self.bus.password_env {
                    Some(var) => Some(std::env::var(var).map_err(|_| {
                        invalid(
                            "bus.password_env",
                            format!("the environment variable {var} is not set"),
                        )
                    })?),
                    None => None,
                };
                let mut settings = crate::bus::BusSettings::parse(url, password)
                    .map_err(|m| invalid("bus.url", m))?;
                if self.bus.queue.is_empty() || self.bus.queue.len() > 200 {
                    return Err(invalid("bus.queue", "must be 1 to 200 characters"));
                }
                if self.bus.prefetch == 0 {
                    return Err(invalid("bus.prefetch", "must be at least 1"));
                }
                settings.queue = self.bus.queue.clone();
                settings.prefetch = self.bus.prefetch;
                Some(settings)
            }
            other => {
                return Err(invalid(
                    "bus.kind",
                    format!("{other:?}: expected \"inprocess\" or \"amqp\""),
                ));
            }
        };
        let mut sources = Vec::new();
        for (i, s) in self.sources.iter().enumerate() {
            let spec = s.spec(i)?;
            if sources.iter().any(|x: &SourceSpec| x.name() == spec.name()) {
                return Err(invalid(
                    &format!("sources[{i}].name"),
                    format!("{:?} names another source too", spec.name()),
                ));
            }
            sources.push(spec);
        }
        let mut trusted_proxies = Vec::new();
        for (i, p) in self.server.trusted_proxies.iter().enumerate() {
            trusted_proxies.push(p.parse().map_err(|e| {
                invalid(
                    &format!("server.trusted_proxies[{i}]"),
                    format!("{p:?}: {e}: expected an IP address"),
                )
            })?);
        }
        if let Some(h) = &self.server.client_ip_header
            && axum::http::HeaderName::from_bytes(h.as_bytes()).is_err()
        {
            return Err(invalid(
                "server.client_ip_header",
                format!("{h:?} is not a header name"),
            ));
        }
        if let Some(u) = &self.server.public_url
            && !(u.starts_with("https://") || u.starts_with("http://"))
        {
            return Err(invalid(
                "server.public_url",
                format!("{u:?}: expected the dashboard's http:// or https:// address"),
            ));
        }
        let env = |k: &str| std::env::var(k).ok();
        let sinks = cloudsentinel_notify::resolve_all(&self.notify, &env)
            .map_err(|e| invalid(&e.key, e.message))?;
        let mut playbooks = cloudsentinel_respond::playbook::Playbook::builtin();
        for (i, dir) in self.respond.playbooks.iter().enumerate() {
            let key = format!("respond.playbooks[{i}]");
            let entries = std::fs::read_dir(dir)
                .map_err(|e| invalid(&key, format!("{}: {e}", dir.display())))?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
                .collect();
            files.sort();
            for f in files {
                let text = std::fs::read_to_string(&f)
                    .map_err(|e| invalid(&key, format!("{}: {e}", f.display())))?;
                let p = cloudsentinel_respond::playbook::Playbook::parse(
                    &f.display().to_string(),
                    &text,
                )
                .map_err(|e| invalid(&key, e))?;
                if playbooks.iter().any(|b| b.id == p.id) {
                    return Err(invalid(
                        &key,
                        format!("{}: playbook id {:?} is taken", f.display(), p.id),
                    ));
                }
                playbooks.push(p);
            }
        }
        for (i, p) in self.respond.protected.iter().enumerate() {
            if !p.contains('/') {
                return Err(invalid(
                    &format!("respond.protected[{i}]"),
                    format!(
                        "{p:?}: expected user/<name>, role/<name>, serviceAccount/<e-mail>, member/<member>, ... (with * for any run)"
                    ),
                ));
            }
        }
        let respond_gcp = match &self.respond.gcp {
            None => None,
            Some(g) => {
                http_url("respond.gcp.endpoint", g.endpoint.as_deref())?;
                let file = g.credentials_file.clone().or_else(|| {
                    std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").map(PathBuf::from)
                });
                Some(match file {
                    Some(f) => cloudsentinel_cloud::gcp::Credentials::ServiceAccount(
                        std::fs::read_to_string(&f).map_err(|e| {
                            invalid(
                                "respond.gcp.credentials_file",
                                format!("{}: {e}", f.display()),
                            )
                        })?,
                    ),
                    None if g.endpoint.is_some() => cloudsentinel_cloud::gcp::Credentials::None,
                    None => cloudsentinel_cloud::gcp::Credentials::Metadata,
                })
            }
        };
        Ok(Validated {
            config: self,
            listen,
            synchronous_full,
            postgres,
            bus,
            role: ProcessRole::All,
            trusted_proxies,
            sinks,
            sources,
            playbooks,
            respond_gcp,
        })
    }
}

fn parse_scalar(s: &str) -> toml::Value {
    if let Ok(i) = s.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if let Ok(b) = s.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    if let Ok(f) = s.parse::<f64>()
        && s.contains('.')
    {
        return toml::Value::Float(f);
    }
    toml::Value::String(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_example_config_parses_and_validates() {
        let text = include_str!("../../../cloudsentinel.example.toml");
        let v = Config::from_toml("example", text, env(&[]))
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(v.listen.to_string(), "127.0.0.1:8000");
        assert_eq!(v.config.sources.len(), 1);
    }

    #[test]
    fn secrets_named_by_password_env_are_not_overrides_and_roles_need_shared_state() {
        let text = "[storage]\nbackend = \"postgres\"\npostgres_url = \"postgres://cs@db/cs\"\n\
                    postgres_password_env = \"CLOUDSENTINEL_PG_PASSWORD\"\n";
        let vars = env(&[
            ("CLOUDSENTINEL_PG_PASSWORD", "secret"),
            (
                "CLOUDSENTINEL_BUS__PASSWORD_ENV",
                "CLOUDSENTINEL_AMQP_PASSWORD",
            ),
            ("CLOUDSENTINEL_AMQP_PASSWORD", "secret2"),
        ]);
        let c = Config::from_toml("t", text, vars).unwrap();
        assert_eq!(
            c.bus.password_env.as_deref(),
            Some("CLOUDSENTINEL_AMQP_PASSWORD")
        );
        // Any other variable without a section is still a mistake that is named.
        let err = Config::from_toml("t", text, env(&[("CLOUDSENTINEL_AMQP_PASSWORD", "x")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("CLOUDSENTINEL_AMQP_PASSWORD"), "{err}");
        // A password in a URL is refused; split roles need PostgreSQL, ingest and detect a bus.
        let mut c = Config::default();
        c.storage.backend = "postgres".into();
        c.storage.postgres_url = Some("postgres://cs:pw@db/cs".into());
        let err = c.clone().validate().unwrap_err().to_string();
        assert!(err.contains("password"), "{err}");
        c.storage.postgres_url = Some("postgres://cs@db/cs".into());
        let v = c.validate().unwrap();
        let err = v
            .clone()
            .for_role(ProcessRole::Detect)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bus.kind"), "{err}");
        assert_eq!(
            v.clone().for_role(ProcessRole::Api).unwrap().role,
            ProcessRole::Api
        );
        let err = Config::default()
            .validate()
            .unwrap()
            .for_role(ProcessRole::Api)
            .unwrap_err()
            .to_string();
        assert!(err.contains("postgres"), "{err}");
    }

    #[test]
    fn environment_overrides_the_file_and_names_bad_keys() {
        let c = Config::from_toml(
            "t",
            "[storage]\nretention_days = 5\n",
            env(&[
                ("CLOUDSENTINEL_STORAGE__RETENTION_DAYS", "30"),
                ("CLOUDSENTINEL_SERVER__LISTEN", "0.0.0.0:9000"),
                ("CLOUDSENTINEL_ADMIN_PASSWORD", "not a config key"),
                // The `models` CLI's own variables may be set in the same shell.
                ("CLOUDSENTINEL_PASSWORD", "x"),
                ("CLOUDSENTINEL_URL", "http://127.0.0.1:8000"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.storage.retention_days, 30);
        assert_eq!(c.server.listen, "0.0.0.0:9000");
        let err = Config::from_toml("t", "", env(&[("CLOUDSENTINEL_STORAGE__NOPE", "1")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope"), "{err}");
        let err = Config::from_toml("t", "[server]\nlisten = 5\n", env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen"), "{err}");
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = Config::default();
        c.storage.synchronous = "sometimes".into();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.starts_with("storage.synchronous"), "{err}");
        let mut c = Config::default();
        c.server.listen = "localhost".into();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("server.listen")
        );
    }

    #[test]
    fn respond_gcp_reads_its_key_file_or_names_what_is_wrong() {
        use cloudsentinel_cloud::gcp::Credentials;
        let gcp = |toml: &str| {
            Config::from_toml("t", &format!("[respond.gcp]\n{toml}"), env(&[]))
                .unwrap()
                .validate()
        };
        let v = gcp("endpoint = \"http://127.0.0.1:8085\"\n").unwrap();
        assert!(
            matches!(v.respond_gcp, Some(Credentials::None)),
            "a stand-in"
        );
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("sa.json");
        std::fs::write(&key, r#"{"type": "service_account"}"#).unwrap();
        let v = gcp(&format!("credentials_file = {:?}\n", key.to_str().unwrap())).unwrap();
        assert!(matches!(
            v.respond_gcp,
            Some(Credentials::ServiceAccount(_))
        ));
        let err = gcp("credentials_file = \"/nonexistent/sa.json\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("respond.gcp.credentials_file") && err.contains("/nonexistent/sa.json"),
            "{err}"
        );
        let err = gcp("endpoint = \"127.0.0.1:8085\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("respond.gcp.endpoint"), "{err}");
        assert!(
            Config::from_toml("t", "[respond.gcp]\nkey = 1\n", env(&[])).is_err(),
            "unknown keys are refused"
        );
    }
}
