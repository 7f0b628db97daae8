//! The notification outbox on PostgreSQL.

use super::*;

impl OutboxStore for PostgresStore {
    fn enqueue_deliveries(&self, deliveries: &[NewDelivery]) -> Result<Vec<i64>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let mut tx = c.transaction()?;
            let ids = insert_deliveries(&mut tx, deliveries, ms(Utc::now()))?;
            tx.commit()?;
            Ok(ids)
        })
    }

    fn pending_deliveries(&self, sink: &str, limit: u32) -> Result<Vec<DeliveryRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let rows = c.query(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE sink = $1 AND status = 'pending' \
                 ORDER BY id LIMIT $2"
            ),
            &[&sink, &i64::from(limit.clamp(1, 1000))],
        )?;
            map_rows(rows, rows::delivery)
        })
    }

    fn record_delivery(&self, id: i64, at: DateTime<Utc>, result: &DeliveryResult) -> Result<()> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let at = ms(at);
            match result {
            DeliveryResult::Sent => c.execute(
                "UPDATE deliveries SET status = 'sent', attempts = attempts + 1, last_attempt = $2, \
                 sent = $2, latency_ms = GREATEST(0, $2 - created) WHERE id = $1",
                &[&id, &at],
            )?,
            DeliveryResult::Retry {
                error,
                next_attempt,
            } => c.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_attempt = $2, last_error = $3, \
                 last_failure = $2, next_attempt = $4 WHERE id = $1",
                &[&id, &at, error, &ms(*next_attempt)],
            )?,
            DeliveryResult::Dead { error } => c.execute(
                "UPDATE deliveries SET status = 'dead', attempts = attempts + 1, last_attempt = $2, \
                 last_error = $3, last_failure = $2 WHERE id = $1",
                &[&id, &at, error],
            )?,
        };
            Ok(())
        })
    }

    fn deliveries(&self, q: &DeliveryQuery) -> Result<Page<DeliveryRecord>> {
        off_runtime(|| {
            let mut f = Filter::default();
            if let Some(s) = &q.sink {
                f.add("sink = ?", s.clone());
            }
            if let Some(a) = q.alert_id {
                f.add("alert_id = ?", a);
            }
            if let Some(s) = q.status {
                f.add("status = ?", s.as_str().to_string());
            }
            let where_ = f.sql();
            let mut c = self.conn()?;
            let total: i64 = c
                .query_one(
                    &format!("SELECT COUNT(*) FROM deliveries{where_}"),
                    &f.refs(),
                )?
                .try_get(0)?;
            let limit = f.param(i64::from(q.limit.clamp(1, 1000)));
            let offset = f.param(q.offset.min(i64::MAX as u64) as i64);
            let rows = c.query(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries{where_} ORDER BY id DESC \
                 LIMIT {limit} OFFSET {offset}"
                ),
                &f.refs(),
            )?;
            Ok(Page {
                total: total as u64,
                items: map_rows(rows, rows::delivery)?,
            })
        })
    }

    fn delivery(&self, id: i64) -> Result<Option<DeliveryRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let row = c.query_opt(
                &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1"),
                &[&id],
            )?;
            Ok(row.as_ref().map(rows::delivery).transpose()?)
        })
    }

    fn delivery_summary(&self) -> Result<Vec<SinkSummary>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            // COLLATE "C": sinks in byte order, as SQLite sorts them. The last error is that of the
            // latest failure (the latest queued one on a tie).
            let rows = c.query(
                "SELECT d.sink, \
               COUNT(*) FILTER (WHERE d.status = 'pending'), \
               COUNT(*) FILTER (WHERE d.status = 'sent'), \
               COUNT(*) FILTER (WHERE d.status = 'dead'), \
               COUNT(*) FILTER (WHERE d.attempts > 1), \
               MAX(d.sent), MAX(d.last_failure), \
               (SELECT e.last_error FROM deliveries e \
                 WHERE e.sink = d.sink AND e.last_failure IS NOT NULL \
                 ORDER BY e.last_failure DESC, e.id DESC LIMIT 1) \
             FROM deliveries d GROUP BY d.sink ORDER BY d.sink COLLATE \"C\"",
                &[],
            )?;
            map_rows(rows, |r| {
                Ok(SinkSummary {
                    sink: r.try_get(0)?,
                    pending: r.try_get::<_, i64>(1)? as u64,
                    sent: r.try_get::<_, i64>(2)? as u64,
                    dead: r.try_get::<_, i64>(3)? as u64,
                    retried: r.try_get::<_, i64>(4)? as u64,
                    last_success: r.try_get::<_, Option<i64>>(5)?.map(time),
                    last_failure: r.try_get::<_, Option<i64>>(6)?.map(time),
                    last_error: r.try_get(7)?,
                })
            })
        })
    }
}
