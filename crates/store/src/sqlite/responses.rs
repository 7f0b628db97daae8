//! Containment actions and their steps.

use super::*;

impl ResponseStore for SqliteStore {
    fn propose_response(&self, r: &NewResponse) -> Result<ResponseRecord> {
        let conn = self.write();
        conn.execute(
            "INSERT INTO responses (alert_id, playbook, action, account, status, proposed_by, proposed_at) \
             VALUES (?1, ?2, ?3, ?4, 'proposed', ?5, ?6)",
            params![
                r.alert_id,
                r.playbook,
                r.action.to_string(),
                r.account,
                r.proposed_by,
                ms(Utc::now())
            ],
        )?;
        let id = conn.last_insert_rowid();
        Ok(conn.query_row(
            &format!("SELECT {RESPONSE_COLUMNS} FROM responses WHERE id = ?1"),
            params![id],
            response_row,
        )?)
    }

    fn response(&self, id: i64) -> Result<Option<ResponseRecord>> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!("SELECT {RESPONSE_COLUMNS} FROM responses WHERE id = ?1"),
                params![id],
                response_row,
            )
            .optional()?)
    }

    fn responses(&self, alert_id: Option<i64>, limit: u32) -> Result<Vec<ResponseRecord>> {
        let conn = self.read();
        let limit = limit.clamp(1, 1000);
        let rows = match alert_id {
            Some(a) => conn
                .prepare_cached(&format!(
                    "SELECT {RESPONSE_COLUMNS} FROM responses WHERE alert_id = ?1 ORDER BY id LIMIT ?2"
                ))?
                .query_map(params![a, limit], response_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?,
            None => conn
                .prepare_cached(&format!(
                    "SELECT {RESPONSE_COLUMNS} FROM responses ORDER BY id DESC LIMIT ?1"
                ))?
                .query_map(params![limit], response_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?,
        };
        Ok(rows)
    }

    fn step_response(
        &self,
        id: i64,
        from: &[&str],
        step: &ResponseStep,
        at: DateTime<Utc>,
    ) -> Result<Option<ResponseRecord>> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        let status: Option<String> = tx
            .query_row(
                "SELECT status FROM responses WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?;
        if !status.is_some_and(|s| from.contains(&s.as_str())) {
            return Ok(None);
        }
        let at = ms(at);
        match step {
            ResponseStep::Approved { by } => tx.execute(
                "UPDATE responses SET status = 'approved', approved_by = ?2, approved_at = ?3 WHERE id = ?1",
                params![id, by, at],
            )?,
            ResponseStep::SecondApproval { by } => tx.execute(
                "UPDATE responses SET second_approved_by = ?2, second_approved_at = ?3 WHERE id = ?1",
                params![id, by, at],
            )?,
            ResponseStep::Ran {
                by,
                before,
                changed,
                verified,
                result,
            } => tx.execute(
                "UPDATE responses SET status = ?2, run_by = ?3, run_at = ?4, before = ?5, verified = ?6, \
                 result = ?7 WHERE id = ?1",
                params![
                    id,
                    if *changed { "done" } else { "failed" },
                    by,
                    at,
                    before.as_ref().map(|b| b.to_string()),
                    verified,
                    result
                ],
            )?,
            ResponseStep::Undone { by, result } => tx.execute(
                "UPDATE responses SET status = 'undone', undone_by = ?2, undone_at = ?3, result = ?4 WHERE id = ?1",
                params![id, by, at, result],
            )?,
            ResponseStep::Refused { by, reason } => tx.execute(
                "UPDATE responses SET status = 'refused', run_by = ?2, run_at = ?3, result = ?4 WHERE id = ?1",
                params![id, by, at, reason],
            )?,
        };
        let rec = tx.query_row(
            &format!("SELECT {RESPONSE_COLUMNS} FROM responses WHERE id = ?1"),
            params![id],
            response_row,
        )?;
        tx.commit()?;
        Ok(Some(rec))
    }

    fn incident_responses(&self, incident_id: i64) -> Result<Vec<ResponseRecord>> {
        let conn = self.read();
        let columns: String = RESPONSE_COLUMNS
            .split(", ")
            .map(|c| format!("r.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = conn
            .prepare_cached(&format!(
                "SELECT {columns} FROM responses r JOIN alerts a ON a.id = r.alert_id \
                 WHERE a.incident_id = ?1 ORDER BY r.id"
            ))?
            .query_map(params![incident_id], response_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn responses_run_since(&self, account: Option<&str>, since: DateTime<Utc>) -> Result<u64> {
        let conn = self.read();
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM responses WHERE account IS ?1 AND run_at >= ?2 AND status IN ('done', 'failed', 'undone')",
            params![account, ms(since)],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }
}
