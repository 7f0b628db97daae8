//! The audit log on PostgreSQL. Appending holds the table's lock from reading the last entry to
//! the commit, so processes appending at once still make one chain.

use super::*;

impl AuditStore for PostgresStore {
    fn append_audit(
        &self,
        entry: NewAudit,
        chain: &dyn Fn(&str, i64, &NewAudit) -> String,
    ) -> Result<AuditRecord> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let mut tx = c.transaction()?;
            // EXCLUSIVE blocks other writers (and other appenders' lock) but not readers.
            tx.batch_execute("LOCK TABLE audit IN EXCLUSIVE MODE")?;
            let last =
                tx.query_opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])?;
            let (prev_seq, prev_hash): (i64, String) = match last {
                Some(r) => (r.try_get(0)?, r.try_get(1)?),
                None => (0, String::new()),
            };
            let seq = prev_seq + 1;
            // Millisecond precision, as stored, so that verification recomputes the same hash.
            let entry = NewAudit {
                time: time(ms(entry.time)),
                ..entry
            };
            let hash = chain(&prev_hash, seq, &entry);
            tx.execute(
            "INSERT INTO audit (seq, time, actor, action, target, detail, source_ip, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &seq,
                &ms(entry.time),
                &entry.actor,
                &entry.action,
                &entry.target,
                &entry.detail,
                &entry.source_ip,
                &prev_hash,
                &hash,
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
        })
    }

    fn audit(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let rows = c.query(
                &format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2"),
                &[&after_seq, &i64::from(limit)],
            )?;
            map_rows(rows, rows::audit)
        })
    }

    fn audit_page(&self, limit: u32, offset: u64) -> Result<Page<AuditRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            // Both reads see one snapshot, so the total matches the page.
            let mut tx = c
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let total: i64 = tx
                .query_one("SELECT COUNT(*) FROM audit", &[])?
                .try_get(0)?;
            let rows = tx.query(
                &format!("SELECT {AUDIT_COLUMNS} FROM audit ORDER BY seq DESC LIMIT $1 OFFSET $2"),
                &[
                    &i64::from(limit.clamp(1, 1000)),
                    &(offset.min(i64::MAX as u64) as i64),
                ],
            )?;
            let items = map_rows(rows, rows::audit)?;
            tx.commit()?;
            Ok(Page {
                total: total as u64,
                items,
            })
        })
    }
}
