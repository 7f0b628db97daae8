//! Containment actions and their steps on PostgreSQL. A step is one conditional UPDATE, so of
//! two processes taking the same step only one does.

use super::*;

const COLUMNS: &str = "id, alert_id, playbook, action, account, status, proposed_by, proposed_at, \
     approved_by, approved_at, run_by, run_at, before, verified, result, undone_by, undone_at, \
     second_approved_by, second_approved_at";

fn json(text: Option<String>) -> Option<serde_json::Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn response_row(r: &Row) -> Result<ResponseRecord, postgres::Error> {
    Ok(ResponseRecord {
        id: r.try_get(0)?,
        alert_id: r.try_get(1)?,
        playbook: r.try_get(2)?,
        action: json(r.try_get(3)?).unwrap_or_default(),
        account: r.try_get(4)?,
        status: r.try_get(5)?,
        proposed_by: r.try_get(6)?,
        proposed_at: time(r.try_get(7)?),
        approved_by: r.try_get(8)?,
        approved_at: r.try_get::<_, Option<i64>>(9)?.map(time),
        run_by: r.try_get(10)?,
        run_at: r.try_get::<_, Option<i64>>(11)?.map(time),
        before: json(r.try_get(12)?),
        verified: r.try_get(13)?,
        result: r.try_get(14)?,
        undone_by: r.try_get(15)?,
        undone_at: r.try_get::<_, Option<i64>>(16)?.map(time),
        second_approved_by: r.try_get(17)?,
        second_approved_at: r.try_get::<_, Option<i64>>(18)?.map(time),
    })
}

impl ResponseStore for PostgresStore {
    fn propose_response(&self, r: &NewResponse) -> Result<ResponseRecord> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let row = c.query_one(
            &format!(
                "INSERT INTO responses (alert_id, playbook, action, account, status, proposed_by, \
                 proposed_at) VALUES ($1, $2, $3, $4, 'proposed', $5, $6) RETURNING {COLUMNS}"
            ),
            &[
                &r.alert_id,
                &r.playbook,
                &r.action.to_string(),
                &r.account,
                &r.proposed_by,
                &ms(Utc::now()),
            ],
        )?;
            Ok(response_row(&row)?)
        })
    }

    fn response(&self, id: i64) -> Result<Option<ResponseRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let row = c.query_opt(
                &format!("SELECT {COLUMNS} FROM responses WHERE id = $1"),
                &[&id],
            )?;
            Ok(row.as_ref().map(response_row).transpose()?)
        })
    }

    fn responses(&self, alert_id: Option<i64>, limit: u32) -> Result<Vec<ResponseRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let limit = i64::from(limit.clamp(1, 1000));
            let rows = match alert_id {
                Some(a) => c.query(
                    &format!(
                        "SELECT {COLUMNS} FROM responses WHERE alert_id = $1 ORDER BY id LIMIT $2"
                    ),
                    &[&a, &limit],
                )?,
                None => c.query(
                    &format!("SELECT {COLUMNS} FROM responses ORDER BY id DESC LIMIT $1"),
                    &[&limit],
                )?,
            };
            map_rows(rows, response_row)
        })
    }

    fn step_response(
        &self,
        id: i64,
        from: &[&str],
        step: &ResponseStep,
        at: DateTime<Utc>,
    ) -> Result<Option<ResponseRecord>> {
        off_runtime(|| {
            let at = ms(at);
            let before: Option<String> = match step {
                ResponseStep::Ran { before, .. } => before.as_ref().map(|b| b.to_string()),
                _ => None,
            };
            // $1 the id, $2 the statuses the step may start from; the step's values from $3.
            let (set, values): (&str, Vec<&(dyn ToSql + Sync)>) = match step {
                ResponseStep::Approved { by } => (
                    "status = 'approved', approved_by = $3, approved_at = $4",
                    vec![by, &at],
                ),
                ResponseStep::SecondApproval { by } => (
                    "second_approved_by = $3, second_approved_at = $4",
                    vec![by, &at],
                ),
                ResponseStep::Ran {
                    by,
                    changed,
                    verified,
                    result,
                    ..
                } => (
                    "status = $3, run_by = $4, run_at = $5, before = $6, verified = $7, result = $8",
                    vec![
                        if *changed { &"done" } else { &"failed" },
                        by,
                        &at,
                        &before,
                        verified,
                        result,
                    ],
                ),
                ResponseStep::Undone { by, result } => (
                    "status = 'undone', undone_by = $3, undone_at = $4, result = $5",
                    vec![by, &at, result],
                ),
                ResponseStep::Refused { by, reason } => (
                    "status = 'refused', run_by = $3, run_at = $4, result = $5",
                    vec![by, &at, reason],
                ),
            };
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&id, &from];
            params.extend(values);
            let mut c = self.conn()?;
            let row = c.query_opt(
            &format!(
                "UPDATE responses SET {set} WHERE id = $1 AND status = ANY($2) RETURNING {COLUMNS}"
            ),
            &params,
        )?;
            Ok(row.as_ref().map(response_row).transpose()?)
        })
    }

    fn incident_responses(&self, incident_id: i64) -> Result<Vec<ResponseRecord>> {
        off_runtime(|| {
            let columns: String = COLUMNS
                .split(", ")
                .map(|c| format!("r.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ");
            let mut c = self.conn()?;
            let rows = c.query(
                &format!(
                    "SELECT {columns} FROM responses r JOIN alerts a ON a.id = r.alert_id \
                 WHERE a.incident_id = $1 ORDER BY r.id"
                ),
                &[&incident_id],
            )?;
            map_rows(rows, response_row)
        })
    }

    fn responses_run_since(&self, account: Option<&str>, since: DateTime<Utc>) -> Result<u64> {
        off_runtime(|| {
            let mut c = self.conn()?;
            // `account IS $1` in SQLite: equal, or both NULL.
            let row = c.query_one(
                "SELECT COUNT(*) FROM responses WHERE account IS NOT DISTINCT FROM $1::text \
             AND run_at >= $2 AND status IN ('done', 'failed', 'undone')",
                &[&account, &ms(since)],
            )?;
            Ok(row.try_get::<_, i64>(0)? as u64)
        })
    }
}
