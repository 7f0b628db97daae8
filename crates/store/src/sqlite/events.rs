//! The events: the pipeline's commit (events and what they derive, in one transaction), search, time-ordered scans, retention, the directory source's bookkeeping.

use super::*;
use crate::event_search::{DIGEST_COLUMNS, Dialect, Digest, DigestRow, Val, conds, sql};

impl EventStore for SqliteStore {
    fn begin_commit<'a>(&'a self, events: &[NewEvent]) -> Result<Box<dyn CommitTx + 'a>> {
        let conn = self.write();
        conn.execute_batch("BEGIN")?;
        let mut tx = SqliteCommit {
            conn,
            fresh: Vec::with_capacity(events.len()),
            outcome: CommitOutcome::default(),
            open: true,
        };
        // On an error the transaction object is dropped, which rolls back.
        insert_events(&tx.conn, events, &mut tx.fresh, &mut tx.outcome)?;
        Ok(Box::new(tx))
    }

    fn purge_events(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        // The token index first, while the events still say which rows are theirs.
        tx.execute(
            "DELETE FROM event_words WHERE rowid IN (SELECT seq FROM events WHERE time < ?1)",
            params![ms(before)],
        )?;
        tx.execute(
            "DELETE FROM event_words_pending WHERE seq IN (SELECT seq FROM events WHERE time < ?1)",
            params![ms(before)],
        )?;
        let n = tx.execute("DELETE FROM events WHERE time < ?1", params![ms(before)])?;
        // The counts per minute: whole minutes go, the boundary minute is counted again.
        let minute = ms(before).div_euclid(60_000);
        tx.execute(
            "DELETE FROM event_minutes WHERE minute <= ?1",
            params![minute],
        )?;
        tx.execute(
            "INSERT INTO event_minutes (minute, n) \
             SELECT ?1, COUNT(*) FROM events WHERE time >= ?1 * 60000 AND time < (?1 + 1) * 60000 \
             HAVING COUNT(*) > 0",
            params![minute],
        )?;
        tx.execute(
            "DELETE FROM raw_blocks WHERE max_time < ?1",
            params![ms(before)],
        )?;
        tx.commit()?;
        Ok(n as u64)
    }

    fn events(&self, q: &EventQuery) -> Result<Page<EventRow>> {
        let f = filter(q);
        let conn = self.read();
        let where_ = f.sql();
        // Counting a large match exactly would scan it; past the cap the total says "more".
        let total: i64 = conn.query_row(
            &format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM events{where_} LIMIT {})",
                EVENT_COUNT_CAP + 1
            ),
            params_from_iter(f.params.iter()),
            |r| r.get(0),
        )?;
        let limit = q.limit.clamp(1, 1000);
        let mut stmt = conn.prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM events{where_} ORDER BY time DESC, seq DESC LIMIT {limit} OFFSET {}",
            q.offset
        ))?;
        let mut rows: Vec<(EventRow, i64, i64)> = stmt
            .query_map(params_from_iter(f.params.iter()), event_row)?
            .collect::<rusqlite::Result<_>>()?;
        if q.with_raw {
            self.attach_raw(&conn, &mut rows)?;
        }
        Ok(Page {
            total: total as u64,
            items: rows.into_iter().map(|r| r.0).collect(),
        })
    }

    fn event_digest(
        &self,
        q: &EventQuery,
        cap: u32,
        histogram: Option<Histogram>,
        top: u32,
    ) -> Result<EventDigest> {
        let f = filter(q);
        let conn = self.read();
        let mut stmt = conn.prepare(&format!(
            "SELECT {DIGEST_COLUMNS} FROM events{} ORDER BY time DESC LIMIT {}",
            f.sql(),
            cap as u64 + 1
        ))?;
        let mut rows = stmt.query(params_from_iter(f.params.iter()))?;
        let mut digest = Digest::new(cap, histogram);
        while let Some(r) = rows.next()? {
            let text = |i: usize| -> rusqlite::Result<Option<&str>> {
                match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Text(t) => Ok(std::str::from_utf8(t).ok()),
                    _ => Ok(None),
                }
            };
            let row = DigestRow {
                time: r.get(0)?,
                principal: text(1)?.unwrap_or(""),
                source_ip: text(2)?,
                service: text(3)?.unwrap_or(""),
                operation: text(4)?.unwrap_or(""),
                account: text(5)?,
                asn: r.get(6)?,
                country: text(7)?,
                success: r.get(8)?,
            };
            if !digest.add(row) {
                break;
            }
        }
        Ok(digest.finish(top))
    }

    fn latest_events(&self, q: &EventQuery, cap: u32) -> Result<Vec<EventRow>> {
        let f = filter(q);
        let conn = self.read();
        let mut stmt = conn.prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM events{} ORDER BY time DESC, seq DESC LIMIT {}",
            f.sql(),
            cap.clamp(1, LATEST_EVENTS_CAP)
        ))?;
        let rows = stmt
            .query_map(params_from_iter(f.params.iter()), event_row)?
            .map(|r| r.map(|r| r.0))
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn events_by_id(
        &self,
        ids: &[String],
        within: (DateTime<Utc>, DateTime<Utc>),
        with_raw: bool,
    ) -> Result<Vec<EventRow>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events \
             WHERE time >= ?1 AND time <= ?2 AND id_hash = ?3 AND id = ?4"
        ))?;
        let mut rows = Vec::new();
        for id in ids {
            if let Some(r) = stmt
                .query_row(
                    params![ms(within.0), ms(within.1), key_hash(id), id],
                    event_row,
                )
                .optional()?
            {
                rows.push(r);
            }
        }
        if with_raw {
            self.attach_raw(&conn, &mut rows)?;
        }
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    fn actor_names(
        &self,
        principals: &[String],
    ) -> Result<std::collections::HashMap<String, String>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT actor_name FROM events WHERE principal_hash = ?1 AND principal = ?2 \
             AND actor_name IS NOT NULL AND actor_name <> principal ORDER BY time DESC LIMIT 1",
        )?;
        let mut out = std::collections::HashMap::new();
        for p in principals.iter().take(100) {
            if out.contains_key(p) {
                continue;
            }
            if let Some(name) = stmt
                .query_row(params![key_hash(p), p], |r| r.get::<_, String>(0))
                .optional()?
            {
                out.insert(p.clone(), name);
            }
        }
        Ok(out)
    }

    fn source_file_done(&self, path: &str, size: u64, mtime: i64) -> Result<bool> {
        let conn = self.read();
        Ok(conn
            .prepare_cached(
                "SELECT 1 FROM source_files WHERE path = ?1 AND size = ?2 AND mtime = ?3 AND done = 1",
            )?
            .exists(params![path, size as i64, mtime])?)
    }

    fn mark_source_file(&self, path: &str, size: u64, mtime: i64) -> Result<()> {
        let conn = self.write();
        conn.execute(
            "INSERT OR REPLACE INTO source_files (path, size, mtime, done) VALUES (?1, ?2, ?3, 1)",
            params![path, size as i64, mtime],
        )?;
        Ok(())
    }

    fn scan_events(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        visit: &mut dyn FnMut(EventRow) -> bool,
    ) -> Result<u64> {
        // Pages by (time, id_hash), the unique index, so that no read transaction stays open for long.
        let mut after = (since.map(ms).unwrap_or(i64::MIN), i64::MIN);
        let until = until.map(ms).unwrap_or(i64::MAX);
        let mut n = 0u64;
        loop {
            let page: Vec<(EventRow, i64)> = {
                let conn = self.read();
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS}, id_hash FROM events \
                     WHERE (time, id_hash) > (?1, ?2) AND time < ?3 \
                     ORDER BY time, id_hash LIMIT 5000"
                ))?;
                stmt.query_map(params![after.0, after.1, until], |r| {
                    Ok((event_row(r)?.0, r.get(21)?))
                })?
                .collect::<rusqlite::Result<_>>()?
            };
            if page.is_empty() {
                return Ok(n);
            }
            for (row, seq) in page {
                after = (ms(row.time), seq);
                n += 1;
                if !visit(row) {
                    return Ok(n);
                }
            }
        }
    }
}

/// The pipeline's open transaction on the writer connection: its events are inserted; what they
/// derived and the COMMIT come with [`CommitTx::finish`]. Dropped unfinished, it rolls back.
struct SqliteCommit<'a> {
    conn: MutexGuard<'a, Connection>,
    fresh: Vec<bool>,
    outcome: CommitOutcome,
    /// Still to be committed or rolled back.
    open: bool,
}

impl CommitTx for SqliteCommit<'_> {
    fn fresh(&self) -> &[bool] {
        &self.fresh
    }

    fn finish(mut self: Box<Self>, batch: Derived) -> Result<CommitOutcome> {
        write_derived(&self.conn, &batch)?;
        self.conn.execute_batch("COMMIT")?;
        self.open = false;
        Ok(self.outcome)
    }
}

impl Drop for SqliteCommit<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Inserts a batch's events (their raw records in one compressed block), skipping ids already
/// stored; says per event whether it was new.
fn insert_events(
    conn: &Connection,
    events: &[NewEvent],
    fresh: &mut Vec<bool>,
    outcome: &mut CommitOutcome,
) -> Result<()> {
    let now = ms(Utc::now());
    if !events.is_empty() {
        let records: Vec<&str> = events.iter().map(|e| e.raw.as_str()).collect();
        let max_time = events.iter().map(|e| ms(e.time)).max().unwrap_or(now);
        conn.execute(
            "INSERT INTO raw_blocks (max_time, codec, data) VALUES (?1, 'lz4', ?2)",
            params![max_time, pack_block(&records)],
        )?;
        let block = conn.last_insert_rowid();
        let mut stmt = conn.prepare_cached(
                "INSERT OR IGNORE INTO events (id, time, ingested, provider, kind, account, region, \
                 principal, actor_name, access_key, source_ip, user_agent, service, operation, \
                 read_only, success, error_code, block, block_idx, id_hash, principal_hash, asn, \
                 country) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)",
            )?;
        // The words wait for the background indexer (see `index_pending_words`).
        let mut words =
            conn.prepare_cached("INSERT INTO event_words_pending (seq, words) VALUES (?1, ?2)")?;
        let mut minutes = std::collections::BTreeMap::new();
        for (i, e) in events.iter().enumerate() {
            let n = stmt.execute(params![
                e.id,
                ms(e.time),
                now,
                e.provider,
                e.kind,
                e.account,
                e.region,
                e.principal,
                e.actor_name,
                e.access_key,
                e.source_ip,
                e.user_agent,
                e.service,
                e.operation,
                e.read_only,
                e.success,
                e.error_code,
                block,
                i as i64,
                key_hash(&e.id),
                key_hash(&e.principal),
                e.asn,
                e.country,
            ])?;
            if n == 1 && !e.words.is_empty() {
                words.execute(params![conn.last_insert_rowid(), pending_words(e)])?;
            }
            if n == 1 {
                outcome.inserted += 1;
                *minutes.entry(ms(e.time).div_euclid(60_000)).or_insert(0) += 1;
            } else {
                outcome.duplicates += 1;
            }
            fresh.push(n == 1);
        }
        count_minutes(conn, &minutes)?;
    }
    Ok(())
}

/// An event's words as they wait in `event_words_pending`: between spaces, so that a search
/// can find a token in the text.
fn pending_words(e: &NewEvent) -> String {
    let mut w = String::with_capacity(e.words.len() + 2);
    w.push(' ');
    w.push_str(&e.words);
    w.push(' ');
    w
}

/// Adds the events stored per minute to `event_minutes` (the overview's event counts).
pub(super) fn count_minutes(
    conn: &Connection,
    minutes: &std::collections::BTreeMap<i64, i64>,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO event_minutes (minute, n) VALUES (?1, ?2) \
         ON CONFLICT(minute) DO UPDATE SET n = n + excluded.n",
    )?;
    for (minute, n) in minutes {
        stmt.execute(params![minute, n])?;
    }
    Ok(())
}

/// Writes what the pipeline derived: alerts (detection columns only on update), their features,
/// incidents, and the messages for the notification sinks.
fn write_derived(conn: &Connection, batch: &Derived) -> Result<()> {
    {
        let mut stmt = conn.prepare_cached(
                "INSERT INTO alerts (id, kind, rule_id, title, level, techniques, tactics, entity, \
                 account, access_key, source_ip, first_seen, last_seen, created, updated, count, \
                 event_ids, explanation, status, assignee, incident_id, verdict, tp_score) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23) \
                 ON CONFLICT(id) DO UPDATE SET first_seen = excluded.first_seen, \
                 last_seen = excluded.last_seen, updated = excluded.updated, count = excluded.count, \
                 event_ids = excluded.event_ids, explanation = excluded.explanation, title = excluded.title, \
                 incident_id = excluded.incident_id, \
                 tp_score = COALESCE(excluded.tp_score, alerts.tp_score)",
            )?;
        for a in &batch.alerts {
            stmt.execute(params![
                a.id,
                a.kind,
                a.rule_id,
                a.title,
                level_num(a.level),
                json_list(&a.techniques),
                json_list(&a.tactics),
                a.entity,
                a.account,
                a.access_key,
                a.source_ip,
                ms(a.first_seen),
                ms(a.last_seen),
                ms(a.created),
                ms(a.updated),
                a.count as i64,
                json_list(&a.event_ids),
                a.explanation,
                a.status.as_str(),
                a.assignee,
                a.incident_id,
                a.verdict.map(Verdict::as_str),
                a.tp_score,
            ])?;
        }
    }
    {
        let mut stmt = conn.prepare_cached(
            "INSERT OR IGNORE INTO alert_features (alert_id, schema, features, anomaly_score) \
                 VALUES (?1, ?2, ?3, ?4)",
        )?;
        for f in &batch.features {
            stmt.execute(params![
                f.alert_id,
                f.schema as i64,
                serde_json::to_string(&f.values).unwrap_or_default(),
                f.anomaly_score,
            ])?;
        }
    }
    {
        let mut stmt = conn.prepare_cached(
            "INSERT INTO incidents (id, key, entity, account, title, level, status, first_seen, \
                 last_seen, created, updated, alert_count, tactics, techniques, join_keys) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
                 ON CONFLICT(id) DO UPDATE SET title = excluded.title, level = excluded.level, \
                 first_seen = excluded.first_seen, last_seen = excluded.last_seen, \
                 updated = excluded.updated, alert_count = excluded.alert_count, \
                 tactics = excluded.tactics, techniques = excluded.techniques, \
                 join_keys = excluded.join_keys",
        )?;
        for i in &batch.incidents {
            stmt.execute(params![
                i.id,
                i.key,
                i.entity,
                i.account,
                i.title,
                level_num(i.level),
                i.status.as_str(),
                ms(i.first_seen),
                ms(i.last_seen),
                ms(i.created),
                ms(i.updated),
                i.alert_count as i64,
                json_list(&i.tactics),
                json_list(&i.techniques),
                json_list(&i.join_keys),
            ])?;
        }
    }
    insert_deliveries(conn, &batch.deliveries, ms(Utc::now()))?;
    Ok(())
}

/// The WHERE clause of a search.
fn filter(q: &EventQuery) -> Filter {
    let mut f = Filter::default();
    if let Some(t) = q.since {
        f.add("time >= ?", Value::Integer(ms(t)));
    }
    if let Some(t) = q.until {
        f.add("time < ?", Value::Integer(ms(t)));
    }
    for c in conds(q) {
        let clause = sql(&c, &mut f);
        f.clauses.push(clause);
    }
    f
}

impl Dialect for Filter {
    fn param(&mut self, v: Val) -> String {
        self.params.push(match v {
            Val::Int(i) => Value::Integer(i),
            Val::Text(t) => Value::Text(t),
            Val::Bool(b) => Value::Integer(b as i64),
        });
        format!("?{}", self.params.len())
    }

    fn eq_nocase(&mut self, column: &str, value: String) -> String {
        let p = self.param(Val::Text(value));
        format!("{column} = {p} COLLATE NOCASE")
    }

    fn tokens(&mut self, tokens: &[String]) -> String {
        // Tokens are letters and digits only (see `cloudsentinel_core::row`): quoted, each is
        // one FTS5 token.
        let query = tokens
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(" AND ");
        let p = self.param(Val::Text(query));
        // Words not yet indexed are matched in their text, between spaces.
        let pending = tokens
            .iter()
            .map(|t| {
                format!(
                    "instr(words, {}) > 0",
                    self.param(Val::Text(format!(" {t} ")))
                )
            })
            .collect::<Vec<_>>()
            .join(" AND ");
        format!(
            "(seq IN (SELECT rowid FROM event_words WHERE event_words MATCH {p}) \
             OR seq IN (SELECT seq FROM event_words_pending WHERE {pending}))"
        )
    }

    fn false_sql(&self) -> &'static str {
        "0"
    }
}
