//! From a result row to a record, written once for both backends: each backend's row type gives
//! its cells through [`Cells`], and a mapper reads the columns of its list in that order (select
//! `ALERT_COLUMNS` and map with [`alert`]).

use cloudsentinel_alert::{AlertRecord, AlertStatus, IncidentRecord, Verdict};

use crate::codec::{level_of, list_of, time};
use crate::*;

/// The cells of one result row, by position. Integers, times and levels are 64-bit integers in
/// both schemas; a flag is SQLite's 0/1 integer or PostgreSQL's BOOLEAN.
pub(crate) trait Cells {
    type Error;
    fn int(&self, i: usize) -> Result<i64, Self::Error>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
    fn opt_real(&self, i: usize) -> Result<Option<f64>, Self::Error>;
    fn real(&self, i: usize) -> Result<f64, Self::Error>;
    fn text(&self, i: usize) -> Result<String, Self::Error>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, Self::Error>;
    fn flag(&self, i: usize) -> Result<bool, Self::Error>;
    fn opt_flag(&self, i: usize) -> Result<Option<bool>, Self::Error>;

    fn time(&self, i: usize) -> Result<DateTime<Utc>, Self::Error> {
        Ok(time(self.int(i)?))
    }

    fn opt_time(&self, i: usize) -> Result<Option<DateTime<Utc>>, Self::Error> {
        Ok(self.opt_int(i)?.map(time))
    }
}

fn json(text: Option<String>) -> Option<serde_json::Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

pub(crate) const DELIVERY_COLUMNS: &str = "id, sink, alert_id, change, payload, status, attempts, \
     created, next_attempt, last_attempt, last_error, sent, latency_ms";

pub(crate) fn delivery<R: Cells>(r: &R) -> Result<DeliveryRecord, R::Error> {
    Ok(DeliveryRecord {
        id: r.int(0)?,
        sink: r.text(1)?,
        alert_id: r.opt_int(2)?,
        change: r.text(3)?,
        payload: r.text(4)?,
        status: DeliveryStatus::parse(&r.text(5)?).unwrap_or(DeliveryStatus::Dead),
        attempts: r.int(6)? as u32,
        created: r.time(7)?,
        next_attempt: r.time(8)?,
        last_attempt: r.opt_time(9)?,
        last_error: r.opt_text(10)?,
        sent: r.opt_time(11)?,
        latency_ms: r.opt_int(12)?,
    })
}

pub(crate) const ALERT_COLUMNS: &str = "id, kind, rule_id, title, level, techniques, tactics, \
    entity, account, access_key, source_ip, first_seen, last_seen, created, updated, count, \
    event_ids, explanation, status, assignee, incident_id, verdict, tp_score";

pub(crate) fn alert<R: Cells>(r: &R) -> Result<AlertRecord, R::Error> {
    Ok(AlertRecord {
        id: r.int(0)?,
        kind: r.text(1)?,
        rule_id: r.text(2)?,
        title: r.text(3)?,
        level: level_of(r.int(4)?),
        techniques: list_of(&r.text(5)?),
        tactics: list_of(&r.text(6)?),
        entity: r.text(7)?,
        account: r.opt_text(8)?,
        access_key: r.opt_text(9)?,
        source_ip: r.opt_text(10)?,
        first_seen: r.time(11)?,
        last_seen: r.time(12)?,
        created: r.time(13)?,
        updated: r.time(14)?,
        count: r.int(15)? as u64,
        event_ids: list_of(&r.text(16)?),
        explanation: r.text(17)?,
        status: AlertStatus::parse(&r.text(18)?).unwrap_or(AlertStatus::Open),
        assignee: r.opt_text(19)?,
        incident_id: r.opt_int(20)?,
        verdict: r.opt_text(21)?.and_then(|v| Verdict::parse(&v)),
        tp_score: r.opt_real(22)?,
    })
}

pub(crate) const MODEL_COLUMNS: &str = "id, name, version, schema, status, progress, message, \
    created, finished, trained_by, window_from, window_to, samples, metrics, params, active, \
    activated";

/// A model without its artefact (lists never carry one).
pub(crate) fn model<R: Cells>(r: &R) -> Result<ModelRecord, R::Error> {
    Ok(ModelRecord {
        id: r.int(0)?,
        name: r.text(1)?,
        version: r.int(2)?,
        schema: r.int(3)? as u32,
        status: r.text(4)?,
        progress: r.real(5)?,
        message: r.text(6)?,
        created: r.time(7)?,
        finished: r.opt_time(8)?,
        trained_by: r.text(9)?,
        window_from: r.opt_time(10)?,
        window_to: r.opt_time(11)?,
        samples: r.int(12)? as u64,
        metrics: json(Some(r.text(13)?)).unwrap_or(serde_json::Value::Null),
        params: json(Some(r.text(14)?)).unwrap_or(serde_json::Value::Null),
        active: r.flag(15)?,
        activated: r.opt_time(16)?,
        artefact: None,
    })
}

pub(crate) const INCIDENT_COLUMNS: &str = "id, key, entity, account, title, level, status, \
    first_seen, last_seen, created, updated, alert_count, tactics, techniques, assignee, severity, \
    close_reason, join_keys";

pub(crate) fn incident<R: Cells>(r: &R) -> Result<IncidentRecord, R::Error> {
    Ok(IncidentRecord {
        id: r.int(0)?,
        key: r.text(1)?,
        entity: r.text(2)?,
        account: r.opt_text(3)?,
        title: r.text(4)?,
        level: level_of(r.int(5)?),
        status: AlertStatus::parse(&r.text(6)?).unwrap_or(AlertStatus::Open),
        first_seen: r.time(7)?,
        last_seen: r.time(8)?,
        created: r.time(9)?,
        updated: r.time(10)?,
        alert_count: r.int(11)? as u64,
        tactics: list_of(&r.text(12)?),
        techniques: list_of(&r.text(13)?),
        assignee: r.opt_text(14)?,
        severity: r.opt_int(15)?.map(level_of),
        close_reason: r.opt_text(16)?,
        join_keys: r.opt_text(17)?.map(|t| list_of(&t)).unwrap_or_default(),
    })
}

pub(crate) const EVENT_COLUMNS: &str = "id, time, ingested, provider, kind, account, region, \
    principal, actor_name, access_key, source_ip, user_agent, service, operation, read_only, \
    success, error_code, block, block_idx, asn, country";

/// An event without its raw record, with the block that holds the record and its place there.
pub(crate) fn event<R: Cells>(r: &R) -> Result<(EventRow, i64, i64), R::Error> {
    Ok((
        EventRow {
            fields: EventFields {
                id: r.text(0)?,
                time: r.time(1)?,
                provider: r.text(3)?,
                kind: r.text(4)?,
                account: r.opt_text(5)?,
                region: r.opt_text(6)?,
                principal: r.text(7)?,
                actor_name: r.opt_text(8)?,
                access_key: r.opt_text(9)?,
                source_ip: r.opt_text(10)?,
                user_agent: r.opt_text(11)?,
                service: r.text(12)?,
                operation: r.text(13)?,
                read_only: r.opt_flag(14)?,
                success: r.flag(15)?,
                error_code: r.opt_text(16)?,
            },
            ingested: r.time(2)?,
            asn: r.opt_int(19)?.and_then(|a| u32::try_from(a).ok()),
            country: r.opt_text(20)?,
            raw: None,
        },
        r.int(17)?,
        r.int(18)?,
    ))
}

pub(crate) const USER_COLUMNS: &str =
    "id, username, password_hash, role, created, disabled, token_version, token_secret";

pub(crate) fn user<R: Cells>(r: &R) -> Result<UserRecord, R::Error> {
    Ok(UserRecord {
        id: r.int(0)?,
        username: r.text(1)?,
        password_hash: r.text(2)?,
        role: r.text(3)?,
        created: r.time(4)?,
        disabled: r.flag(5)?,
        token_version: r.int(6)?,
        token_secret: r.text(7)?,
    })
}

pub(crate) const KEY_COLUMNS: &str =
    "id, name, prefix, key_hash, role, created_by, created, last_used, revoked";

pub(crate) fn api_key<R: Cells>(r: &R) -> Result<ApiKeyRecord, R::Error> {
    Ok(ApiKeyRecord {
        id: r.int(0)?,
        name: r.text(1)?,
        prefix: r.text(2)?,
        key_hash: r.text(3)?,
        role: r.text(4)?,
        created_by: r.text(5)?,
        created: r.time(6)?,
        last_used: r.opt_time(7)?,
        revoked: r.flag(8)?,
    })
}

pub(crate) const AUDIT_COLUMNS: &str =
    "seq, time, actor, action, target, detail, source_ip, prev_hash, hash";

pub(crate) fn audit<R: Cells>(r: &R) -> Result<AuditRecord, R::Error> {
    Ok(AuditRecord {
        seq: r.int(0)?,
        time: r.time(1)?,
        actor: r.text(2)?,
        action: r.text(3)?,
        target: r.text(4)?,
        detail: r.text(5)?,
        source_ip: r.opt_text(6)?,
        prev_hash: r.text(7)?,
        hash: r.text(8)?,
    })
}

pub(crate) const FEEDBACK_COLUMNS: &str =
    "id, alert_id, verdict, reason, author, time, rule_id, entity";

pub(crate) fn feedback<R: Cells>(r: &R) -> Result<FeedbackRecord, R::Error> {
    Ok(FeedbackRecord {
        id: r.int(0)?,
        alert_id: r.int(1)?,
        verdict: Verdict::parse(&r.text(2)?).unwrap_or(Verdict::Benign),
        reason: r.text(3)?,
        author: r.text(4)?,
        time: r.time(5)?,
        rule_id: r.text(6)?,
        entity: r.text(7)?,
    })
}

pub(crate) const RESPONSE_COLUMNS: &str = "id, alert_id, playbook, action, account, status, \
     proposed_by, proposed_at, approved_by, approved_at, run_by, run_at, before, verified, result, \
     undone_by, undone_at, second_approved_by, second_approved_at";

pub(crate) fn response<R: Cells>(r: &R) -> Result<ResponseRecord, R::Error> {
    Ok(ResponseRecord {
        id: r.int(0)?,
        alert_id: r.int(1)?,
        playbook: r.opt_text(2)?,
        action: json(r.opt_text(3)?).unwrap_or_default(),
        account: r.opt_text(4)?,
        status: r.text(5)?,
        proposed_by: r.text(6)?,
        proposed_at: r.time(7)?,
        approved_by: r.opt_text(8)?,
        approved_at: r.opt_time(9)?,
        run_by: r.opt_text(10)?,
        run_at: r.opt_time(11)?,
        before: json(r.opt_text(12)?),
        verified: r.opt_flag(13)?,
        result: r.opt_text(14)?,
        undone_by: r.opt_text(15)?,
        undone_at: r.opt_time(16)?,
        second_approved_by: r.opt_text(17)?,
        second_approved_at: r.opt_time(18)?,
    })
}
