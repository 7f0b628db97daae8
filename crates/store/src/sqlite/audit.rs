//! The audit log (its hash chain is computed by the caller inside `append_audit`'s transaction).

use super::*;

impl AuditStore for SqliteStore {
    fn append_audit(
        &self,
        entry: NewAudit,
        chain: &dyn Fn(&str, i64, &NewAudit) -> String,
    ) -> Result<AuditRecord> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        let last: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (prev_seq, prev_hash) = last.unwrap_or((0, String::new()));
        let seq = prev_seq + 1;
        // Millisecond precision, as stored, so that verification recomputes the same hash.
        let entry = NewAudit {
            time: time(ms(entry.time)),
            ..entry
        };
        let hash = chain(&prev_hash, seq, &entry);
        tx.execute(
            "INSERT INTO audit (seq, time, actor, action, target, detail, source_ip, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                seq,
                ms(entry.time),
                entry.actor,
                entry.action,
                entry.target,
                entry.detail,
                entry.source_ip,
                prev_hash,
                hash
            ],
        )?;
        tx.commit()?;
        Ok(AuditRecord {
            seq,
            time: entry.time,
            actor: entry.actor,
            action: entry.action,
            target: entry.target,
            detail: entry.detail,
            source_ip: entry.source_ip,
            prev_hash,
            hash,
        })
    }

    fn audit(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![after_seq, limit], audit_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn audit_page(&self, limit: u32, offset: u64) -> Result<Page<AuditRecord>> {
        let conn = self.read();
        let total: i64 = conn.query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0))?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit ORDER BY seq DESC LIMIT ?1 OFFSET ?2"
        ))?;
        let items = stmt
            .query_map(params![limit.clamp(1, 1000), offset as i64], audit_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Page {
            total: total as u64,
            items,
        })
    }
}
