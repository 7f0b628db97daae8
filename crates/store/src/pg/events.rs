//! The events on PostgreSQL: the pipeline's commit, search, time-ordered scans, retention by
//! dropping day partitions, the directory source's bookkeeping.

use super::*;
use crate::event_search::{DIGEST_COLUMNS, Dialect, Digest, DigestRow, Val, conds, sql};

impl EventStore for PostgresStore {
    fn begin_commit<'a>(&'a self, events: &[NewEvent]) -> Result<Box<dyn CommitTx + 'a>> {
        off_runtime(|| {
            let days: Vec<i64> = events.iter().map(|e| day_of(ms(e.time))).collect();
            self.ensure_days(&days)?;
            let mut conn = self.conn()?;
            conn.batch_execute("BEGIN")?;
            let fence = *self.fence.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((pid, key)) = fence {
                // The lease's lock is still the holder session's (see `PostgresStore::fence`).
                let held: bool = conn
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
                         AND granted AND pid = $1 AND objsubid = 1 \
                         AND classid = ($2::bigint)::oid AND objid = ($3::bigint)::oid)",
                        &[&pid, &((key >> 32) & 0xffff_ffff), &(key & 0xffff_ffff)],
                    )?
                    .try_get(0)?;
                if !held {
                    let _ = conn.batch_execute("ROLLBACK");
                    return Err(StoreError::Conflict(
                        "this process no longer holds its lease (another process took over): \
                         nothing committed"
                            .into(),
                    ));
                }
            }
            let mut tx = PgCommit {
                conn,
                fresh: Vec::with_capacity(events.len()),
                outcome: CommitOutcome::default(),
                open: true,
            };
            // On an error the transaction object is dropped, which rolls back.
            insert_events(&mut tx.conn, events, &mut tx.fresh, &mut tx.outcome)?;
            let tx: Box<dyn CommitTx + 'a> = Box::new(tx);
            Ok(tx)
        })
    }

    fn purge_events(&self, before: DateTime<Utc>) -> Result<u64> {
        off_runtime(|| {
            let before = ms(before);
            let mut c = self.conn()?;
            let mut n = self.drop_days_before(&mut c, before)?;
            // What is left: the part of the boundary day before `before`, and the default partition.
            let mut tx = c.transaction()?;
            n += tx.execute("DELETE FROM events WHERE time < $1", &[&before])?;
            // The counts per minute: whole minutes go, the boundary minute is counted again.
            let minute = before.div_euclid(60_000);
            tx.execute("DELETE FROM event_minutes WHERE minute <= $1", &[&minute])?;
            tx.execute(
                "INSERT INTO event_minutes (minute, n) \
                 SELECT $1::BIGINT, COUNT(*) FROM events \
                 WHERE time >= $1::BIGINT * 60000 AND time < ($1::BIGINT + 1) * 60000 \
                 HAVING COUNT(*) > 0",
                &[&minute],
            )?;
            tx.execute("DELETE FROM raw_blocks WHERE max_time < $1", &[&before])?;
            tx.commit()?;
            Ok(n)
        })
    }

    fn events(&self, q: &EventQuery) -> Result<Page<EventRow>> {
        off_runtime(|| {
            let f = filter(q);
            let mut c = self.conn()?;
            let where_ = f.sql();
            // Counting a large match exactly would scan it; past the cap the total says "more".
            let total: i64 = c
                .query_one(
                    &format!(
                        "SELECT COUNT(*) FROM (SELECT 1 FROM events{where_} LIMIT {}) m",
                        EVENT_COUNT_CAP + 1
                    ),
                    &f.refs(),
                )?
                .try_get(0)?;
            let limit = q.limit.clamp(1, 1000);
            let rows = c.query(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events{where_} ORDER BY time DESC, seq DESC \
                 LIMIT {limit} OFFSET {}",
                    q.offset
                ),
                &f.refs(),
            )?;
            let mut rows = map_rows(rows, rows::event)?;
            if q.with_raw {
                PostgresStore::attach_raw(&mut c, &mut rows)?;
            }
            Ok(Page {
                total: total as u64,
                items: rows.into_iter().map(|r| r.0).collect(),
            })
        })
    }

    fn event_digest(
        &self,
        q: &EventQuery,
        cap: u32,
        histogram: Option<Histogram>,
        top: u32,
    ) -> Result<EventDigest> {
        off_runtime(|| {
            let f = filter(q);
            let mut c = self.conn()?;
            let rows = c.query(
                &format!(
                    "SELECT {DIGEST_COLUMNS} FROM events{} ORDER BY time DESC LIMIT {}",
                    f.sql(),
                    cap as u64 + 1
                ),
                &f.refs(),
            )?;
            let mut digest = Digest::new(cap, histogram);
            for r in &rows {
                let row = DigestRow {
                    time: r.try_get(0)?,
                    principal: r.try_get(1)?,
                    source_ip: r.try_get(2)?,
                    service: r.try_get(3)?,
                    operation: r.try_get(4)?,
                    account: r.try_get(5)?,
                    asn: r.try_get(6)?,
                    country: r.try_get(7)?,
                    success: r.try_get(8)?,
                };
                if !digest.add(row) {
                    break;
                }
            }
            Ok(digest.finish(top))
        })
    }

    fn latest_events(&self, q: &EventQuery, cap: u32) -> Result<Vec<EventRow>> {
        off_runtime(|| {
            let f = filter(q);
            let mut c = self.conn()?;
            let rows = c.query(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events{} ORDER BY time DESC, seq DESC LIMIT {}",
                    f.sql(),
                    cap.clamp(1, LATEST_EVENTS_CAP)
                ),
                &f.refs(),
            )?;
            Ok(map_rows(rows, rows::event)?
                .into_iter()
                .map(|r| r.0)
                .collect())
        })
    }

    fn events_by_id(
        &self,
        ids: &[String],
        within: (DateTime<Utc>, DateTime<Utc>),
        with_raw: bool,
    ) -> Result<Vec<EventRow>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let stmt = c.prepare(&format!(
                "SELECT {EVENT_COLUMNS} FROM events \
             WHERE time >= $1 AND time <= $2 AND id_hash = $3 AND id = $4 LIMIT 1"
            ))?;
            let mut rows = Vec::new();
            for id in ids {
                if let Some(r) =
                    c.query_opt(&stmt, &[&ms(within.0), &ms(within.1), &key_hash(id), id])?
                {
                    rows.push(rows::event(&r)?);
                }
            }
            if with_raw {
                PostgresStore::attach_raw(&mut c, &mut rows)?;
            }
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }

    fn actor_names(
        &self,
        principals: &[String],
    ) -> Result<std::collections::HashMap<String, String>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let stmt = c.prepare(
                "SELECT actor_name FROM events WHERE principal_hash = $1 AND principal = $2 \
             AND actor_name IS NOT NULL AND actor_name <> principal ORDER BY time DESC LIMIT 1",
            )?;
            let mut out = std::collections::HashMap::new();
            for p in principals.iter().take(100) {
                if out.contains_key(p) {
                    continue;
                }
                if let Some(r) = c.query_opt(&stmt, &[&key_hash(p), p])? {
                    out.insert(p.clone(), r.try_get(0)?);
                }
            }
            Ok(out)
        })
    }

    fn source_file_done(&self, path: &str, size: u64, mtime: i64) -> Result<bool> {
        off_runtime(|| {
            let mut c = self.conn()?;
            Ok(c.query_opt(
                "SELECT 1 FROM source_files WHERE path = $1 AND size = $2 AND mtime = $3 AND done",
                &[&path, &(size as i64), &mtime],
            )?
            .is_some())
        })
    }

    fn mark_source_file(&self, path: &str, size: u64, mtime: i64) -> Result<()> {
        off_runtime(|| {
            let mut c = self.conn()?;
            c.execute(
                "INSERT INTO source_files (path, size, mtime, done) VALUES ($1, $2, $3, TRUE) \
             ON CONFLICT (path, size, mtime) DO UPDATE SET done = TRUE",
                &[&path, &(size as i64), &mtime],
            )?;
            Ok(())
        })
    }

    fn scan_events(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        visit: &mut dyn FnMut(EventRow) -> bool,
    ) -> Result<u64> {
        off_runtime(|| {
            // Pages by (time, id_hash), the unique index, so that no read transaction stays open for long.
            let mut after = (since.map(ms).unwrap_or(i64::MIN), i64::MIN);
            let until = until.map(ms).unwrap_or(i64::MAX);
            let mut n = 0u64;
            loop {
                let page: Vec<(EventRow, i64)> = {
                    let mut c = self.conn()?;
                    let rows = c.query(
                        &format!(
                            "SELECT {EVENT_COLUMNS}, id_hash FROM events \
                         WHERE (time, id_hash) > ($1, $2) AND time < $3 \
                         ORDER BY time, id_hash LIMIT 5000"
                        ),
                        &[&after.0, &after.1, &until],
                    )?;
                    map_rows(rows, |r| Ok((rows::event(r)?.0, r.try_get(21)?)))?
                };
                if page.is_empty() {
                    return Ok(n);
                }
                for (row, hash) in page {
                    after = (ms(row.time), hash);
                    n += 1;
                    if !visit(row) {
                        return Ok(n);
                    }
                }
            }
        })
    }
}

/// The pipeline's open transaction on a pooled connection: its events are inserted; what they
/// derived and the COMMIT come with [`CommitTx::finish`]. Dropped unfinished, it rolls back.
struct PgCommit<'a> {
    conn: Conn<'a>,
    fresh: Vec<bool>,
    outcome: CommitOutcome,
    /// Still to be committed or rolled back.
    open: bool,
}

impl CommitTx for PgCommit<'_> {
    fn fresh(&self) -> &[bool] {
        off_runtime(|| &self.fresh)
    }

    fn finish(mut self: Box<Self>, batch: Derived) -> Result<CommitOutcome> {
        off_runtime(|| {
            alerts::write_derived(&mut self.conn, &batch)?;
            self.conn.batch_execute("COMMIT")?;
            self.open = false;
            Ok(self.outcome)
        })
    }
}

impl Drop for PgCommit<'_> {
    fn drop(&mut self) {
        off_runtime(|| {
            if self.open && self.conn.batch_execute("ROLLBACK").is_err() {
                // A connection that cannot roll back must not go back to the pool mid-transaction.
                if let Some(c) = self.conn.client.take() {
                    drop(c);
                    self.conn.store.lock_pool().open -= 1;
                    self.conn.store.available.notify_one();
                }
            }
        })
    }
}

/// Inserts a batch's events (their raw records in one compressed block per day), skipping ids
/// already stored; says per event whether it was new. One statement over arrays for the events.
fn insert_events(
    c: &mut Client,
    events: &[NewEvent],
    fresh: &mut Vec<bool>,
    outcome: &mut CommitOutcome,
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let now = ms(Utc::now());
    // One block per day of the batch, each event's index within its day's block.
    let mut by_day: Vec<(i64, Vec<usize>)> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let day = day_of(ms(e.time));
        match by_day.iter_mut().find(|(d, _)| *d == day) {
            Some((_, list)) => list.push(i),
            None => by_day.push((day, vec![i])),
        }
    }
    let mut block = vec![0i64; events.len()];
    let mut block_idx = vec![0i64; events.len()];
    for (day, list) in &by_day {
        let records: Vec<&str> = list.iter().map(|&i| events[i].raw.as_str()).collect();
        let max_time = list
            .iter()
            .map(|&i| ms(events[i].time))
            .max()
            .unwrap_or(now);
        let id: i64 = c
            .query_one(
                "INSERT INTO raw_blocks (day, id, max_time, codec, data) \
                 VALUES ($1, nextval('raw_blocks_id'), $2, 'lz4', $3) RETURNING id",
                &[day, &max_time, &pack_block(&records)],
            )?
            .try_get(0)?;
        for (n, &i) in list.iter().enumerate() {
            block[i] = id;
            block_idx[i] = n as i64;
        }
    }
    let col = |f: fn(&NewEvent) -> Option<&str>| events.iter().map(f).collect::<Vec<_>>();
    let ids = col(|e| Some(e.id.as_str()));
    let times: Vec<i64> = events.iter().map(|e| ms(e.time)).collect();
    let id_hashes: Vec<i64> = events.iter().map(|e| key_hash(&e.id)).collect();
    let principal_hashes: Vec<i64> = events.iter().map(|e| key_hash(&e.principal)).collect();
    let read_only: Vec<Option<bool>> = events.iter().map(|e| e.read_only).collect();
    let success: Vec<bool> = events.iter().map(|e| e.success).collect();
    let asns: Vec<Option<i64>> = events.iter().map(|e| e.asn.map(i64::from)).collect();
    let rows = c.query(
        "INSERT INTO events (id, time, ingested, provider, kind, account, region, principal, \
         actor_name, access_key, source_ip, user_agent, service, operation, read_only, success, \
         error_code, block, block_idx, id_hash, principal_hash, asn, country, words) \
         SELECT id, time, $3, provider, kind, account, region, principal, actor_name, access_key, \
         source_ip, user_agent, service, operation, read_only, success, error_code, block, \
         block_idx, id_hash, principal_hash, asn, country, \
         CASE WHEN words = '' THEN NULL ELSE string_to_array(words, ' ') END \
         FROM unnest($1::text[], $2::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], \
                     $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], \
                     $14::text[], $15::bool[], $16::bool[], $17::text[], $18::bigint[], \
                     $19::bigint[], $20::bigint[], $21::bigint[], $22::bigint[], $23::text[], \
                     $24::text[]) WITH ORDINALITY \
           AS t(id, time, provider, kind, account, region, principal, actor_name, access_key, \
                source_ip, user_agent, service, operation, read_only, success, error_code, block, \
                block_idx, id_hash, principal_hash, asn, country, words, n) \
         ORDER BY n \
         ON CONFLICT (time, id_hash) DO NOTHING RETURNING time, id_hash",
        &[
            &ids,
            &times,
            &now,
            &col(|e| Some(e.provider.as_str())),
            &col(|e| Some(e.kind.as_str())),
            &col(|e| e.account.as_deref()),
            &col(|e| e.region.as_deref()),
            &col(|e| Some(e.principal.as_str())),
            &col(|e| e.actor_name.as_deref()),
            &col(|e| e.access_key.as_deref()),
            &col(|e| e.source_ip.as_deref()),
            &col(|e| e.user_agent.as_deref()),
            &col(|e| Some(e.service.as_str())),
            &col(|e| Some(e.operation.as_str())),
            &read_only,
            &success,
            &col(|e| e.error_code.as_deref()),
            &block,
            &block_idx,
            &id_hashes,
            &principal_hashes,
            &asns,
            &col(|e| e.country.as_deref()),
            &col(|e| Some(e.words.as_str())),
        ],
    )?;
    // The inserted keys; the first event of the batch with a key is the one that went in.
    let mut inserted: HashSet<(i64, i64)> = HashSet::with_capacity(rows.len());
    let mut minutes: std::collections::BTreeMap<i64, i64> = Default::default();
    for r in &rows {
        let time: i64 = r.try_get(0)?;
        inserted.insert((time, r.try_get(1)?));
        *minutes.entry(time.div_euclid(60_000)).or_insert(0) += 1;
    }
    // The counts per minute (the overview's event counts).
    let (keys, counts): (Vec<i64>, Vec<i64>) = minutes.into_iter().unzip();
    if !keys.is_empty() {
        c.execute(
            "INSERT INTO event_minutes (minute, n) SELECT * FROM unnest($1::bigint[], $2::bigint[]) \
             ON CONFLICT (minute) DO UPDATE SET n = event_minutes.n + excluded.n",
            &[&keys, &counts],
        )?;
    }
    for (i, t) in times.iter().enumerate() {
        let new = inserted.remove(&(*t, id_hashes[i]));
        if new {
            outcome.inserted += 1;
        } else {
            outcome.duplicates += 1;
        }
        fresh.push(new);
    }
    Ok(())
}

/// The WHERE clause of a search.
fn filter(q: &EventQuery) -> Filter {
    let mut f = Filter::default();
    if let Some(t) = q.since {
        f.add("time >= ?", ms(t));
    }
    if let Some(t) = q.until {
        f.add("time < ?", ms(t));
    }
    for c in conds(q) {
        let clause = sql(&c, &mut f);
        f.clauses.push(clause);
    }
    f
}

impl Dialect for Filter {
    fn param(&mut self, v: Val) -> String {
        match v {
            Val::Int(i) => Filter::param(self, i),
            Val::Text(t) => Filter::param(self, t),
            Val::Bool(b) => Filter::param(self, b),
        }
    }

    fn eq_nocase(&mut self, column: &str, value: String) -> String {
        // SQLite's NOCASE folds ASCII letters only; so does this.
        let p = Filter::param(self, value.to_ascii_lowercase());
        format!(
            "translate({column}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') = {p}"
        )
    }

    fn tokens(&mut self, tokens: &[String]) -> String {
        let p = Filter::param(self, tokens.to_vec());
        format!("words @> {p}::text[]")
    }

    fn false_sql(&self) -> &'static str {
        "FALSE"
    }
}
