//! Containment actions and their steps on PostgreSQL. A step is one conditional UPDATE, so of
//! two processes taking the same step only one does.

use super::*;

impl ResponseStore for PostgresStore {
    fn propose_response(&self, r: &NewResponse) -> Result<ResponseRecord> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let row = c.query_one(
            &format!(
                "INSERT INTO responses (alert_id, playbook, action, account, status, proposed_by, \
                 proposed_at) VALUES ($1, $2, $3, $4, 'proposed', $5, $6) RETURNING {RESPONSE_COLUMNS}"
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
            Ok(rows::response(&row)?)
        })
    }

    fn response(&self, id: i64) -> Result<Option<ResponseRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let row = c.query_opt(
                &format!("SELECT {RESPONSE_COLUMNS} FROM responses WHERE id = $1"),
                &[&id],
            )?;
            Ok(row.as_ref().map(rows::response).transpose()?)
        })
    }

    fn responses(&self, alert_id: Option<i64>, limit: u32) -> Result<Vec<ResponseRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let limit = i64::from(limit.clamp(1, 1000));
            let rows = match alert_id {
                Some(a) => c.query(
                    &format!(
                        "SELECT {RESPONSE_COLUMNS} FROM responses WHERE alert_id = $1 ORDER BY id LIMIT $2"
                    ),
                    &[&a, &limit],
                )?,
                None => c.query(
                    &format!("SELECT {RESPONSE_COLUMNS} FROM responses ORDER BY id DESC LIMIT $1"),
                    &[&limit],
                )?,
            };
            map_rows(rows, rows::response)
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
                "UPDATE responses SET {set} WHERE id = $1 AND status = ANY($2) RETURNING {RESPONSE_COLUMNS}"
            ),
            &params,
        )?;
            Ok(row.as_ref().map(rows::response).transpose()?)
        })
    }

    fn incident_responses(&self, incident_id: i64) -> Result<Vec<ResponseRecord>> {
        off_runtime(|| {
            let columns: String = RESPONSE_COLUMNS
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
            map_rows(rows, rows::response)
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
