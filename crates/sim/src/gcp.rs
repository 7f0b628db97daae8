//! GCP: Cloud Audit Logs `LogEntry` records (admin activity and data access) for the analytics
//! project and the ML sandbox.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::org::{self, GCP_DATA, GCP_ML, Person};
use crate::rng::Rng;
use crate::{Ctx, Sink, local_days, secs, trunc_micros};

fn gcp_time(t: DateTime<Utc>) -> String {
    let mut s = String::with_capacity(27);
    crate::iso_seconds(t, &mut s);
    crate::fraction(trunc_micros(t), 6, &mut s);
    s.push('Z');
    s
}

/// One audit log entry.
#[derive(Clone, Debug)]
pub struct Entry {
    pub t: DateTime<Utc>,
    pub project: &'static str,
    pub principal: String,
    pub ip: String,
    pub ua: String,
    pub service: &'static str,
    pub method: String,
    pub resource_name: String,
    pub resource_type: &'static str,
    pub labels: Value,
    /// `activity` or `data_access`.
    pub log: &'static str,
    pub permission: &'static str,
    pub request: Value,
    pub response: Value,
    pub service_data: Value,
    pub metadata: Value,
    pub denied: bool,
    /// The service account key used, if any.
    pub key: Option<String>,
}

impl Entry {
    pub fn new(
        t: DateTime<Utc>,
        project: &'static str,
        principal: &str,
        ip: &str,
        ua: &str,
        service: &'static str,
        method: &str,
    ) -> Entry {
        Entry {
            t,
            project,
            principal: principal.to_string(),
            ip: ip.to_string(),
            ua: ua.to_string(),
            service,
            method: method.to_string(),
            resource_name: format!("projects/{project}"),
            resource_type: "project",
            labels: json!({"project_id": project}),
            log: "data_access",
            permission: "resourcemanager.projects.get",
            request: Value::Null,
            response: Value::Null,
            service_data: Value::Null,
            metadata: Value::Null,
            denied: false,
            key: None,
        }
    }
}

/// Writes an entry; returns its insertId.
pub fn entry(sink: &mut Sink, rng: &mut Rng, e: Entry) -> String {
    let insert_id = sink.fresh_id(rng, |r: &mut Rng| {
        let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..13)
            .map(|_| char::from(alphabet[r.below(alphabet.len())]))
            .collect()
    });
    let subject = if e.principal.ends_with(".gserviceaccount.com") {
        format!("serviceAccount:{}", e.principal)
    } else {
        format!("user:{}", e.principal)
    };
    let mut auth = json!({"principalEmail": e.principal, "principalSubject": subject});
    if let Some(k) = &e.key {
        auth["serviceAccountKeyName"] = json!(k);
    }
    let mut payload = json!({
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "status": if e.denied { json!({"code": 7, "message": "PERMISSION_DENIED"}) } else { json!({}) },
        "authenticationInfo": auth,
        "requestMetadata": {
            "callerIp": e.ip,
            "callerSuppliedUserAgent": e.ua,
            "requestAttributes": {"time": gcp_time(e.t), "auth": {}},
            "destinationAttributes": {}
        },
        "serviceName": e.service,
        "methodName": e.method,
        "authorizationInfo": [{"resource": e.resource_name, "permission": e.permission, "granted": !e.denied, "resourceAttributes": {}}],
        "resourceName": e.resource_name,
    });
    for (k, v) in [
        ("request", e.request),
        ("response", e.response),
        ("serviceData", e.service_data),
        ("metadata", e.metadata),
    ] {
        if !v.is_null() {
            payload[k] = v;
        }
    }
    let severity = if e.denied {
        "ERROR"
    } else if e.log == "activity" {
        "NOTICE"
    } else {
        "INFO"
    };
    let record = json!({
        "protoPayload": payload,
        "insertId": insert_id,
        "resource": {"type": e.resource_type, "labels": e.labels},
        "timestamp": gcp_time(e.t),
        "severity": severity,
        "logName": format!("projects/{}/logs/cloudaudit.googleapis.com%2F{}", e.project, e.log),
        "receiveTimestamp": gcp_time(e.t + Duration::milliseconds(300 + (rng.below(900) as i64))),
    });
    sink.push(trunc_micros(e.t), &record);
    insert_id
}

pub fn sa(name: &str, project: &str) -> String {
    format!("{name}@{project}.iam.gserviceaccount.com")
}

pub fn gcloud_ua(command: &str) -> String {
    format!(
        "google-cloud-sdk gcloud/472.0.0 command/gcloud.{command} invocation-id/{} environment/None environment-version/None client-os/LINUX client-os-ver/6.5.0 client-pltf-arch/x86_64 interactive/True from-script/False python/3.11.8 term/xterm-256color (Linux 6.5.0-28-generic),gzip(gfe)",
        crate::rng::stable_hex(command, 32)
    )
}

const BQ_PY_UA: &str = "gl-python/3.11.8 grpc/1.62.1 gax/2.18.0 gapic/3.21.0 gccl/3.21.0,gzip(gfe)";
const GCS_PY_UA: &str = "gcloud-python/2.16.0 gl-python/3.11.8 gccl/2.16.0,gzip(gfe)";

const QUERIES: &[&str] = &[
    "SELECT country, COUNT(*) AS orders FROM `ridgeline-data-prod.analytics.orders` WHERE order_date >= DATE_SUB(CURRENT_DATE(), INTERVAL 7 DAY) GROUP BY country",
    "SELECT sku, SUM(quantity) AS units FROM `ridgeline-data-prod.analytics.order_lines` GROUP BY sku ORDER BY units DESC LIMIT 100",
    "SELECT DATE(created_at) AS day, COUNT(DISTINCT customer_id) FROM `ridgeline-data-prod.analytics.sessions` GROUP BY day ORDER BY day",
    "SELECT * FROM `ridgeline-data-prod.analytics.refunds` WHERE refund_date = CURRENT_DATE() - 1",
];

/// A BigQuery query job: the insertion, then one or two result fetches. Returns the last time.
fn query(
    sink: &mut Sink,
    rng: &mut Rng,
    t: DateTime<Utc>,
    principal: &str,
    ip: &str,
    ua: &str,
) -> DateTime<Utc> {
    let job = format!("bquxjob_{}_{}", rng.hex(8), rng.hex(12));
    let sql = *rng.pick(QUERIES);
    let mut e = Entry::new(
        t,
        GCP_DATA,
        principal,
        ip,
        ua,
        "bigquery.googleapis.com",
        "google.cloud.bigquery.v2.JobService.InsertJob",
    );
    e.resource_name = format!("projects/{GCP_DATA}/jobs/{job}");
    e.resource_type = "bigquery_project";
    e.labels = json!({"project_id": GCP_DATA, "location": "EU"});
    e.permission = "bigquery.jobs.create";
    e.metadata = json!({
        "@type": "type.googleapis.com/google.cloud.audit.BigQueryAuditMetadata",
        "jobInsertion": {"reason": "JOB_INSERT_REQUEST", "job": {"jobName": format!("projects/{GCP_DATA}/jobs/{job}"),
            "jobConfig": {"type": "QUERY", "queryConfig": {"query": sql, "statementType": "SELECT", "priority": "QUERY_INTERACTIVE", "createDisposition": "CREATE_IF_NEEDED", "writeDisposition": "WRITE_EMPTY"}},
            "jobStatus": {"jobState": "RUNNING"}}}
    });
    entry(sink, rng, e);
    let mut t = t;
    for _ in 0..(1 + rng.below(2)) {
        t += secs(1.5 + rng.exp(6.0));
        let mut e = Entry::new(
            t,
            GCP_DATA,
            principal,
            ip,
            ua,
            "bigquery.googleapis.com",
            "google.cloud.bigquery.v2.JobService.GetQueryResults",
        );
        e.resource_name = format!("projects/{GCP_DATA}/jobs/{job}");
        e.resource_type = "bigquery_project";
        e.labels = json!({"project_id": GCP_DATA, "location": "EU"});
        e.permission = "bigquery.jobs.get";
        entry(sink, rng, e);
    }
    t
}

#[allow(clippy::too_many_arguments)]
fn object(
    t: DateTime<Utc>,
    project: &'static str,
    principal: &str,
    ip: &str,
    ua: &str,
    method: &str,
    bucket: &str,
    name: &str,
) -> Entry {
    let mut e = Entry::new(
        t,
        project,
        principal,
        ip,
        ua,
        "storage.googleapis.com",
        method,
    );
    e.resource_type = "gcs_bucket";
    e.labels = json!({"project_id": project, "bucket_name": bucket, "location": "europe-west2"});
    match method {
        "storage.objects.list" => {
            e.resource_name = format!("projects/_/buckets/{bucket}");
            e.permission = "storage.objects.list";
        }
        "storage.buckets.list" => {
            e.resource_name = format!("projects/_/buckets/{bucket}");
            e.permission = "storage.buckets.list";
        }
        "storage.objects.create" => {
            e.resource_name = format!("projects/_/buckets/{bucket}/objects/{name}");
            e.permission = "storage.objects.create";
        }
        _ => {
            e.resource_name = format!("projects/_/buckets/{bucket}/objects/{name}");
            e.permission = "storage.objects.get";
        }
    }
    e
}

pub(crate) fn benign(sink: &mut Sink, ctx: &Ctx) {
    etl_runner(sink, ctx);
    looker(sink, ctx);
    terraform(sink, ctx);
    for p in org::PEOPLE.iter().filter(|p| p.gcp) {
        person(sink, ctx, p);
    }
}

pub const ETL_IP: &str = "10.154.0.23";

/// Composer's hourly DAG: read the raw drops, run the transformations, write curated files.
fn etl_runner(sink: &mut Sink, ctx: &Ctx) {
    let mut rng = Rng::derive(ctx.seed, "gcp/etl");
    let who = sa("etl-runner", GCP_DATA);
    let step = 3600.0 / ctx.scale.clamp(0.05, 20.0);
    let mut t = ctx.start + secs(300.0);
    while t < ctx.end {
        let mut k = t + secs(rng.unit() * 30.0);
        let hour = k.format("%Y%m%d%H").to_string();
        entry(
            sink,
            &mut rng,
            object(
                k,
                GCP_DATA,
                &who,
                ETL_IP,
                GCS_PY_UA,
                "storage.objects.list",
                "ridgeline-datalake-raw",
                "",
            ),
        );
        for i in 0..3 {
            k += secs(1.0 + rng.exp(2.0));
            let name = format!("shop-events/{hour}/part-{i:05}.json.gz");
            entry(
                sink,
                &mut rng,
                object(
                    k,
                    GCP_DATA,
                    &who,
                    ETL_IP,
                    GCS_PY_UA,
                    "storage.objects.get",
                    "ridgeline-datalake-raw",
                    &name,
                ),
            );
        }
        for _ in 0..3 {
            k += secs(5.0 + rng.exp(20.0));
            k = query(sink, &mut rng, k, &who, ETL_IP, BQ_PY_UA);
        }
        for i in 0..2 {
            k += secs(2.0 + rng.exp(3.0));
            let name = format!("orders_daily/{}/part-{i:05}.parquet", &hour[..8]);
            entry(
                sink,
                &mut rng,
                object(
                    k,
                    GCP_DATA,
                    &who,
                    ETL_IP,
                    GCS_PY_UA,
                    "storage.objects.create",
                    "ridgeline-datalake-curated",
                    &name,
                ),
            );
        }
        t += secs(step);
    }
}

pub const LOOKER_IP: &str = "35.187.112.40";

/// The BI tool's service account: queries while people look at dashboards (office hours).
fn looker(sink: &mut Sink, ctx: &Ctx) {
    let mut rng = Rng::derive(ctx.seed, "gcp/looker");
    let who = sa("looker-bi", GCP_DATA);
    for day in local_days(ctx.start, ctx.end, 0) {
        if day.weekend {
            continue;
        }
        let mut h = 7.5 + rng.unit() * 0.5;
        while h < 19.0 {
            let t = day.at(h);
            if t >= ctx.start && t < ctx.end {
                query(
                    sink,
                    &mut rng,
                    t,
                    &who,
                    LOOKER_IP,
                    "Looker/24.6.22 (googleapis/bigquery) gzip(gfe)",
                );
            }
            h += rng.exp(0.09 / ctx.scale.clamp(0.05, 20.0));
        }
    }
}

/// Terraform plans of the data platform, from GitHub runners, twice a day or so.
fn terraform(sink: &mut Sink, ctx: &Ctx) {
    let mut rng = Rng::derive(ctx.seed, "gcp/terraform");
    let who = sa("terraform", GCP_DATA);
    let ua = "Terraform/1.7.5 (+https://www.terraform.io) Terraform-Plugin-SDK/2.33.0 terraform-provider-google/5.26.0,gzip(gfe)";
    for day in local_days(ctx.start, ctx.end, 60) {
        let n = if day.weekend {
            0
        } else {
            rng.poisson(2.0 * ctx.scale)
        };
        for _ in 0..n {
            let mut t = day.at(9.0 + 9.0 * rng.unit());
            if t < ctx.start || t >= ctx.end {
                continue;
            }
            let ip = format!(
                "{}.{}.{}",
                rng.pick(org::RUNNER_PREFIXES),
                rng.below(256),
                1 + rng.below(254)
            );
            let mut e = Entry::new(
                t,
                GCP_DATA,
                &who,
                &ip,
                ua,
                "cloudresourcemanager.googleapis.com",
                "GetIamPolicy",
            );
            e.permission = "resourcemanager.projects.getIamPolicy";
            entry(sink, &mut rng, e);
            for bucket in [
                "ridgeline-datalake-raw",
                "ridgeline-datalake-curated",
                "ridgeline-composer-dags",
            ] {
                t += secs(0.5 + rng.exp(1.0));
                let mut e = object(
                    t,
                    GCP_DATA,
                    &who,
                    &ip,
                    ua,
                    "storage.buckets.get",
                    bucket,
                    "",
                );
                e.resource_name = format!("projects/_/buckets/{bucket}");
                e.permission = "storage.buckets.get";
                entry(sink, &mut rng, e);
                t += secs(0.3);
                let mut e = object(
                    t,
                    GCP_DATA,
                    &who,
                    &ip,
                    ua,
                    "storage.buckets.getIamPolicy",
                    bucket,
                    "",
                );
                e.resource_name = format!("projects/_/buckets/{bucket}");
                e.permission = "storage.buckets.getIamPolicy";
                entry(sink, &mut rng, e);
            }
            for dataset in ["analytics", "staging", "ml_features"] {
                t += secs(0.4 + rng.exp(1.0));
                let mut e = Entry::new(
                    t,
                    GCP_DATA,
                    &who,
                    &ip,
                    ua,
                    "bigquery.googleapis.com",
                    "google.cloud.bigquery.v2.DatasetService.GetDataset",
                );
                e.resource_name = format!("projects/{GCP_DATA}/datasets/{dataset}");
                e.resource_type = "bigquery_dataset";
                e.labels = json!({"project_id": GCP_DATA, "dataset_id": dataset});
                e.permission = "bigquery.datasets.get";
                entry(sink, &mut rng, e);
            }
            for account in ["etl-runner", "looker-bi"] {
                t += secs(0.4 + rng.exp(1.0));
                let mut e = Entry::new(
                    t,
                    GCP_DATA,
                    &who,
                    &ip,
                    ua,
                    "iam.googleapis.com",
                    "google.iam.admin.v1.GetServiceAccount",
                );
                e.resource_name = format!(
                    "projects/-/serviceAccounts/{}",
                    crate::rng::stable_hex(account, 21)
                        .chars()
                        .map(|c| if c.is_ascii_digit() { c } else { '1' })
                        .collect::<String>()
                );
                e.resource_type = "service_account";
                e.labels = json!({"project_id": GCP_DATA, "email_id": sa(account, GCP_DATA), "unique_id": ""});
                e.permission = "iam.serviceAccounts.get";
                entry(sink, &mut rng, e);
            }
        }
    }
}

/// People in the console, with gcloud or from notebooks.
fn person(sink: &mut Sink, ctx: &Ctx, p: &Person) {
    let mut rng = Rng::derive(ctx.seed, &format!("gcp/{}", p.handle()));
    let who = p.email();
    for day in local_days(ctx.start, ctx.end, p.tz_min) {
        if day.weekend {
            continue;
        }
        let place = crate::aws::day_place(ctx.seed, p, day.date, false);
        let work = |rng: &mut Rng| p.start_h + 0.3 + (p.end_h - p.start_h - 0.6) * rng.unit();
        match p.first {
            "Carol" => {
                for _ in 0..rng.poisson(12.0 * ctx.scale) {
                    let h = work(&mut rng);
                    let t = day.at(h);
                    if t < ctx.start || t >= ctx.end {
                        continue;
                    }
                    let ip = place.ip(p, h);
                    let ua = org::browser_ua(p.os);
                    let t = query(sink, &mut rng, t, &who, ip, ua);
                    if rng.chance(0.3) {
                        let mut e = Entry::new(
                            t + secs(4.0),
                            GCP_DATA,
                            &who,
                            ip,
                            ua,
                            "bigquery.googleapis.com",
                            "google.cloud.bigquery.v2.TableService.GetTable",
                        );
                        let table = rng.pick(&["orders", "order_lines", "sessions", "refunds"]);
                        e.resource_name =
                            format!("projects/{GCP_DATA}/datasets/analytics/tables/{table}");
                        e.resource_type = "bigquery_dataset";
                        e.labels = json!({"project_id": GCP_DATA, "dataset_id": "analytics"});
                        e.permission = "bigquery.tables.get";
                        entry(sink, &mut rng, e);
                    }
                    if rng.chance(0.2) {
                        entry(
                            sink,
                            &mut rng,
                            object(
                                t + secs(9.0),
                                GCP_DATA,
                                &who,
                                ip,
                                ua,
                                "storage.objects.list",
                                "ridgeline-datalake-curated",
                                "",
                            ),
                        );
                    }
                }
            }
            "Hiro" => {
                let ip = place.ip(p, 10.0);
                let vm =
                    "projects/ridgeline-ml-dev/zones/asia-northeast1-b/instances/hiro-workstation";
                for (h, verb) in [(p.start_h + 0.1, "start"), (p.end_h - 0.2, "stop")] {
                    let t = day.at(h + rng.normal(0.0, 0.2));
                    if t < ctx.start || t >= ctx.end {
                        continue;
                    }
                    let mut e = Entry::new(
                        t,
                        GCP_ML,
                        &who,
                        ip,
                        &gcloud_ua(&format!("compute.instances.{verb}")),
                        "compute.googleapis.com",
                        &format!("v1.compute.instances.{verb}"),
                    );
                    e.resource_name = vm.into();
                    e.resource_type = "gce_instance";
                    e.labels = json!({"project_id": GCP_ML, "zone": "asia-northeast1-b", "instance_id": "4617328890145227713"});
                    e.log = "activity";
                    e.permission = if verb == "start" {
                        "compute.instances.start"
                    } else {
                        "compute.instances.stop"
                    };
                    e.request =
                        json!({"@type": format!("type.googleapis.com/compute.instances.{verb}")});
                    e.response = json!({"@type": "type.googleapis.com/operation", "operationType": verb, "status": "RUNNING", "name": format!("operation-{}", rng.hex(20))});
                    entry(sink, &mut rng, e);
                }
                for _ in 0..rng.poisson(10.0 * ctx.scale) {
                    let h = work(&mut rng);
                    let t = day.at(h);
                    if t < ctx.start || t >= ctx.end {
                        continue;
                    }
                    let name = format!(
                        "recsys/features/v{}/shard-{:04}.tfrecord",
                        3 + rng.below(2),
                        rng.below(512)
                    );
                    let method = if rng.chance(0.3) {
                        "storage.objects.list"
                    } else {
                        "storage.objects.get"
                    };
                    entry(
                        sink,
                        &mut rng,
                        object(
                            t,
                            GCP_ML,
                            &who,
                            ip,
                            GCS_PY_UA,
                            method,
                            "ridgeline-ml-datasets-dev",
                            &name,
                        ),
                    );
                }
                if rng.chance(0.6) {
                    let t = day.at(work(&mut rng));
                    if t >= ctx.start && t < ctx.end {
                        let mut e = Entry::new(
                            t,
                            GCP_ML,
                            &who,
                            ip,
                            &gcloud_ua("ai.custom-jobs.create"),
                            "aiplatform.googleapis.com",
                            "google.cloud.aiplatform.v1.JobService.CreateCustomJob",
                        );
                        e.resource_name = format!("projects/{GCP_ML}/locations/asia-northeast1");
                        e.resource_type = "audited_resource";
                        e.labels = json!({"project_id": GCP_ML, "service": "aiplatform.googleapis.com", "method": "google.cloud.aiplatform.v1.JobService.CreateCustomJob"});
                        e.log = "activity";
                        e.permission = "aiplatform.customJobs.create";
                        e.request = json!({"@type": "type.googleapis.com/google.cloud.aiplatform.v1.CreateCustomJobRequest", "customJob": {"displayName": format!("recsys-train-{}", rng.hex(6))}});
                        entry(sink, &mut rng, e);
                    }
                }
                for _ in 0..rng.poisson(2.0 * ctx.scale) {
                    let t = day.at(work(&mut rng));
                    if t >= ctx.start && t < ctx.end {
                        query(sink, &mut rng, t, &who, ip, BQ_PY_UA);
                    }
                }
            }
            "Erin" => {
                for _ in 0..rng.poisson(2.0 * ctx.scale) {
                    let h = work(&mut rng);
                    let t = day.at(h);
                    if t < ctx.start || t >= ctx.end {
                        continue;
                    }
                    let ip = place.ip(p, h);
                    let mut e = Entry::new(
                        t,
                        GCP_DATA,
                        &who,
                        ip,
                        &gcloud_ua("logging.read"),
                        "logging.googleapis.com",
                        "google.logging.v2.LoggingServiceV2.ListLogEntries",
                    );
                    e.resource_type = "audited_resource";
                    e.labels = json!({"project_id": GCP_DATA, "service": "logging.googleapis.com", "method": "google.logging.v2.LoggingServiceV2.ListLogEntries"});
                    e.permission = "logging.logEntries.list";
                    entry(sink, &mut rng, e);
                    let mut e = Entry::new(
                        t + secs(20.0),
                        GCP_ML,
                        &who,
                        ip,
                        &gcloud_ua("compute.instances.list"),
                        "compute.googleapis.com",
                        "v1.compute.instances.list",
                    );
                    e.resource_name =
                        format!("projects/{GCP_ML}/zones/asia-northeast1-b/instances");
                    e.resource_type = "gce_instance";
                    e.labels = json!({"project_id": GCP_ML, "zone": "asia-northeast1-b", "instance_id": ""});
                    e.permission = "compute.instances.list";
                    entry(sink, &mut rng, e);
                }
            }
            "Grace" => {
                for _ in 0..rng.poisson(2.0 * ctx.scale) {
                    let h = work(&mut rng);
                    let t = day.at(h);
                    if t < ctx.start || t >= ctx.end {
                        continue;
                    }
                    let ip = place.ip(p, h);
                    let ua = org::browser_ua(p.os);
                    for (k, project) in [GCP_DATA, GCP_ML].into_iter().enumerate() {
                        let mut e = Entry::new(
                            t + secs(30.0 * k as f64),
                            project,
                            &who,
                            ip,
                            ua,
                            "cloudresourcemanager.googleapis.com",
                            "GetIamPolicy",
                        );
                        e.permission = "resourcemanager.projects.getIamPolicy";
                        entry(sink, &mut rng, e);
                    }
                    let mut e = Entry::new(
                        t + secs(75.0),
                        GCP_DATA,
                        &who,
                        ip,
                        ua,
                        "iam.googleapis.com",
                        "google.iam.admin.v1.ListServiceAccountKeys",
                    );
                    e.resource_name = format!(
                        "projects/{GCP_DATA}/serviceAccounts/{}",
                        sa("etl-runner", GCP_DATA)
                    );
                    e.resource_type = "service_account";
                    e.labels = json!({"project_id": GCP_DATA, "email_id": sa("etl-runner", GCP_DATA), "unique_id": ""});
                    e.permission = "iam.serviceAccountKeys.list";
                    entry(sink, &mut rng, e);
                }
            }
            _ => {}
        }
    }
}
