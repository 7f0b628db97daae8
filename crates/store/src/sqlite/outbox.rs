//! The notification outbox.

use super::*;

impl OutboxStore for SqliteStore {
    fn enqueue_deliveries(&self, deliveries: &[NewDelivery]) -> Result<Vec<i64>> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        let ids = insert_deliveries(&tx, deliveries, ms(Utc::now()))?;
        tx.commit()?;
        Ok(ids)
    }

    fn pending_deliveries(&self, sink: &str, limit: u32) -> Result<Vec<DeliveryRecord>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE sink = ?1 AND status = 'pending' \
             ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![sink, limit.clamp(1, 1000)], delivery_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn record_delivery(&self, id: i64, at: DateTime<Utc>, result: &DeliveryResult) -> Result<()> {
        let conn = self.write();
        let at = ms(at);
        match result {
            DeliveryResult::Sent => conn.execute(
                "UPDATE deliveries SET status = 'sent', attempts = attempts + 1, last_attempt = ?2, \
                 sent = ?2, latency_ms = MAX(0, ?2 - created) WHERE id = ?1",
                params![id, at],
            )?,
            DeliveryResult::Retry {
                error,
                next_attempt,
            } => conn.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_attempt = ?2, last_error = ?3, \
                 last_failure = ?2, next_attempt = ?4 WHERE id = ?1",
                params![id, at, error, ms(*next_attempt)],
            )?,
            DeliveryResult::Dead { error } => conn.execute(
                "UPDATE deliveries SET status = 'dead', attempts = attempts + 1, last_attempt = ?2, \
                 last_error = ?3, last_failure = ?2 WHERE id = ?1",
                params![id, at, error],
            )?,
        };
        Ok(())
    }

    fn deliveries(&self, q: &DeliveryQuery) -> Result<Page<DeliveryRecord>> {
        let conn = self.read();
        let mut f = Filter::default();
        if let Some(s) = &q.sink {
            f.add("sink = ?", Value::Text(s.clone()));
        }
        if let Some(a) = q.alert_id {
            f.add("alert_id = ?", Value::Integer(a));
        }
        if let Some(s) = q.status {
            f.add("status = ?", Value::Text(s.as_str().to_string()));
        }
        let total: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM deliveries{}", f.sql()),
            params_from_iter(f.params.iter()),
            |r| r.get(0),
        )?;
        let mut params = f.params.clone();
        params.push(Value::Integer(q.limit.clamp(1, 1000) as i64));
        params.push(Value::Integer(q.offset.min(i64::MAX as u64) as i64));
        let n = params.len();
        let mut stmt = conn.prepare(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries{} ORDER BY id DESC LIMIT ?{} OFFSET ?{}",
            f.sql(),
            n - 1,
            n
        ))?;
        let items = stmt
            .query_map(params_from_iter(params.iter()), delivery_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Page {
            total: total as u64,
            items,
        })
    }

    fn delivery(&self, id: i64) -> Result<Option<DeliveryRecord>> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1"),
                params![id],
                delivery_row,
            )
            .optional()?)
    }

    fn delivery_summary(&self) -> Result<Vec<SinkSummary>> {
        let conn = self.read();
        let mut stmt = conn.prepare(
            "SELECT sink, \
               SUM(status = 'pending'), SUM(status = 'sent'), SUM(status = 'dead'), \
               SUM(attempts > 1), MAX(sent), \
               MAX(last_failure) \
             FROM deliveries GROUP BY sink ORDER BY sink",
        )?;
        let mut out: Vec<SinkSummary> = stmt
            .query_map([], |r| {
                Ok(SinkSummary {
                    sink: r.get(0)?,
                    pending: r.get::<_, i64>(1)? as u64,
                    sent: r.get::<_, i64>(2)? as u64,
                    dead: r.get::<_, i64>(3)? as u64,
                    retried: r.get::<_, i64>(4)? as u64,
                    last_success: r.get::<_, Option<i64>>(5)?.map(time),
                    last_failure: r.get::<_, Option<i64>>(6)?.map(time),
                    last_error: None,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut last = conn.prepare_cached(
            "SELECT last_error FROM deliveries WHERE sink = ?1 AND last_failure IS NOT NULL \
             ORDER BY last_failure DESC LIMIT 1",
        )?;
        for s in &mut out {
            s.last_error = last.query_row(params![s.sink], |r| r.get(0)).optional()?;
        }
        Ok(out)
    }
}
