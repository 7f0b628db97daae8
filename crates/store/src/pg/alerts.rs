//! Alerts and incidents on PostgreSQL: what the alerting stage resumes from, the queue and its
//! filters, what analysts change (status, assignee, comments, verdicts, suppressions), dashboard
//! counts, the feedback model's inputs, and what the pipeline's commit derives.
//!
//! Text is ordered and compared with `COLLATE "C"` wherever SQLite's BINARY collation decides an
//! order, so both backends answer alike whatever the database's collation.

use super::*;

impl AlertStore for PostgresStore {
    fn recent_alerts(&self, since: DateTime<Utc>) -> Result<Vec<AlertRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let rows = c.query(
                &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE last_seen >= $1 OR updated >= $1 ORDER BY id"),
                &[&ms(since)],
            )?;
            map_rows(rows, rows::alert)
        })
    }

    fn recent_incidents(&self, since: DateTime<Utc>) -> Result<Vec<IncidentRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let rows = c.query(
                &format!(
                    "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE last_seen >= $1 OR updated >= $1 ORDER BY id"
                ),
                &[&ms(since)],
            )?;
            map_rows(rows, rows::incident)
        })
    }

    fn max_ids(&self) -> Result<(i64, i64)> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let r = c.query_one(
                "SELECT (SELECT COALESCE(MAX(id), 0) FROM alerts), \
             (SELECT COALESCE(MAX(id), 0) FROM incidents)",
                &[],
            )?;
            Ok((r.try_get(0)?, r.try_get(1)?))
        })
    }

    fn alerts(&self, q: &AlertQuery) -> Result<Page<AlertRecord>> {
        off_runtime(|| {
            let mut f = Filter::default();
            if let Some(l) = q.min_level {
                f.add("level >= ?", level_num(l));
            }
            if !q.levels.is_empty() {
                let list: Vec<String> =
                    q.levels.iter().map(|l| level_num(*l).to_string()).collect();
                f.clauses.push(format!("level IN ({})", list.join(",")));
            }
            if !q.statuses.is_empty() {
                let list: Vec<String> = q
                    .statuses
                    .iter()
                    .map(|s| format!("'{}'", s.as_str()))
                    .collect();
                f.clauses.push(format!("status IN ({})", list.join(",")));
            }
            if let Some(k) = &q.kind {
                f.add("kind = ?", k.clone());
            }
            if let Some(r) = &q.rule_id {
                f.add("rule_id = ?", r.clone());
            }
            if let Some(t) = &q.technique {
                // Sub-techniques count for their parent: T1078 finds T1078.004.
                let exact = f.param(format!("\"{}\"", t.to_ascii_uppercase()));
                let parent = f.param(format!("\"{}.", t.to_ascii_uppercase()));
                f.clauses.push(format!(
                    "(strpos(techniques, {exact}) > 0 OR strpos(techniques, {parent}) > 0)"
                ));
            }
            if let Some(p) = &q.principal {
                f.add("entity = ?", p.clone());
            }
            if let Some(a) = &q.account {
                f.add("account = ?", a.clone());
            }
            match &q.assignee {
                Some(Some(user)) => f.add("assignee = ?", user.clone()),
                Some(None) => f.clauses.push("assignee IS NULL".into()),
                None => {}
            }
            if let Some(i) = q.incident_id {
                f.add("incident_id = ?", i);
            }
            if let Some(t) = q.since {
                f.add("last_seen >= ?", ms(t));
            }
            if let Some(t) = q.until {
                f.add("first_seen < ?", ms(t));
            }
            if let Some(t) = q.updated_since {
                f.add("updated > ?", ms(t));
            }
            if let Some(t) = &q.text {
                // ILIKE: SQLite's LIKE ignores ASCII case, and both backends must find the same.
                let like = f.param(escape_like(t));
                f.clauses.push(format!(
                    "(title ILIKE {like} ESCAPE '\\' OR rule_id ILIKE {like} ESCAPE '\\' \
                 OR entity ILIKE {like} ESCAPE '\\' OR explanation ILIKE {like} ESCAPE '\\' \
                 OR account ILIKE {like} ESCAPE '\\')"
                ));
            }
            let where_ = f.sql();
            let order = match q.sort {
                AlertSort::LastSeen => "last_seen",
                AlertSort::FirstSeen => "first_seen",
                AlertSort::Level => "level",
                AlertSort::Count => "count",
                AlertSort::Id => "id",
                AlertSort::TpScore => "COALESCE(tp_score, -1)",
                AlertSort::Updated => "updated",
                // `level DESC, created DESC` with the direction added to each.
                AlertSort::Attention => {
                    if q.descending {
                        "level DESC, created"
                    } else {
                        "level ASC, created"
                    }
                }
            };
            let dir = if q.descending { "DESC" } else { "ASC" };
            let mut c = self.conn()?;
            let total: i64 = c
                .query_one(&format!("SELECT COUNT(*) FROM alerts{where_}"), &f.refs())?
                .try_get(0)?;
            let limit = q.limit.clamp(1, 1000);
            let rows = c.query(
                &format!(
                    "SELECT {ALERT_COLUMNS} FROM alerts{where_} ORDER BY {order} {dir}, id {dir} \
                 LIMIT {limit} OFFSET {}",
                    q.offset
                ),
                &f.refs(),
            )?;
            Ok(Page {
                total: total as u64,
                items: map_rows(rows, rows::alert)?,
            })
        })
    }

    fn alert(&self, id: i64) -> Result<Option<AlertRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let row = c.query_opt(
                &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"),
                &[&id],
            )?;
            Ok(row.as_ref().map(rows::alert).transpose()?)
        })
    }

    fn update_alert(
        &self,
        id: i64,
        status: Option<AlertStatus>,
        assignee: Option<Option<String>>,
        deliveries: &[NewDelivery],
    ) -> Result<Option<AlertRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let mut tx = c.transaction()?;
            let now = ms(Utc::now());
            // The row lock makes concurrent status changes queue their messages one after the other.
            let Some(before) =
                tx.query_opt("SELECT status FROM alerts WHERE id = $1 FOR UPDATE", &[&id])?
            else {
                return Ok(None);
            };
            let before: String = before.try_get(0)?;
            if let Some(s) = status {
                tx.execute(
                    "UPDATE alerts SET status = $2, updated = $3 WHERE id = $1",
                    &[&id, &s.as_str(), &now],
                )?;
                if s.as_str() != before {
                    insert_deliveries(&mut tx, deliveries, now)?;
                }
            }
            if let Some(a) = &assignee {
                tx.execute(
                    "UPDATE alerts SET assignee = $2, updated = $3 WHERE id = $1",
                    &[&id, a, &now],
                )?;
            }
            let after = tx.query_opt(
                &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"),
                &[&id],
            )?;
            let after = after.as_ref().map(rows::alert).transpose()?;
            tx.commit()?;
            Ok(after)
        })
    }

    fn add_comment(&self, alert_id: i64, author: &str, body: &str) -> Result<CommentRecord> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let now = ms(Utc::now());
            let id: i64 = c
                .query_one(
                    "INSERT INTO comments (alert_id, author, time, text) VALUES ($1, $2, $3, $4) \
                 RETURNING id",
                    &[&alert_id, &author, &now, &body],
                )?
                .try_get(0)?;
            Ok(CommentRecord {
                id,
                alert_id,
                author: author.to_string(),
                time: time(now),
                text: body.to_string(),
            })
        })
    }

    fn comments(&self, alert_id: i64) -> Result<Vec<CommentRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let rows = c.query(
            "SELECT id, alert_id, author, time, text FROM comments WHERE alert_id = $1 ORDER BY id",
            &[&alert_id],
        )?;
            map_rows(rows, |r| {
                Ok(CommentRecord {
                    id: r.try_get(0)?,
                    alert_id: r.try_get(1)?,
                    author: r.try_get(2)?,
                    time: time(r.try_get(3)?),
                    text: r.try_get(4)?,
                })
            })
        })
    }

    fn add_feedback(
        &self,
        alert_id: i64,
        verdict: Verdict,
        reason: &str,
        author: &str,
    ) -> Result<Option<FeedbackRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let mut tx = c.transaction()?;
            // Locked so that the alert's verdict is that of its latest feedback.
            let Some(row) = tx.query_opt(
                "SELECT rule_id, entity FROM alerts WHERE id = $1 FOR UPDATE",
                &[&alert_id],
            )?
            else {
                return Ok(None);
            };
            let rule_id: String = row.try_get(0)?;
            let entity: String = row.try_get(1)?;
            let now = ms(Utc::now());
            let id: i64 = tx
            .query_one(
                "INSERT INTO feedback (alert_id, verdict, reason, author, time, rule_id, entity) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                &[
                    &alert_id,
                    &verdict.as_str(),
                    &reason,
                    &author,
                    &now,
                    &rule_id,
                    &entity,
                ],
            )?
            .try_get(0)?;
            tx.execute(
                "UPDATE alerts SET verdict = $2, updated = $3 WHERE id = $1",
                &[&alert_id, &verdict.as_str(), &now],
            )?;
            tx.commit()?;
            Ok(Some(FeedbackRecord {
                id,
                alert_id,
                verdict,
                reason: reason.to_string(),
                author: author.to_string(),
                time: time(now),
                rule_id,
                entity,
            }))
        })
    }

    fn feedback(&self, alert_id: Option<i64>) -> Result<Vec<FeedbackRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let rows = match alert_id {
                Some(a) => c.query(
                    &format!(
                        "SELECT {FEEDBACK_COLUMNS} FROM feedback WHERE alert_id = $1 ORDER BY id"
                    ),
                    &[&a],
                )?,
                None => c.query(
                    &format!("SELECT {FEEDBACK_COLUMNS} FROM feedback ORDER BY id"),
                    &[],
                )?,
            };
            map_rows(rows, rows::feedback)
        })
    }

    fn incidents(
        &self,
        statuses: &[AlertStatus],
        limit: u32,
        offset: u64,
    ) -> Result<Page<IncidentRecord>> {
        off_runtime(|| {
            let where_ = if statuses.is_empty() {
                String::new()
            } else {
                let list: Vec<String> = statuses
                    .iter()
                    .map(|s| format!("'{}'", s.as_str()))
                    .collect();
                format!(" WHERE status IN ({})", list.join(","))
            };
            let mut c = self.conn()?;
            let total: i64 = c
                .query_one(&format!("SELECT COUNT(*) FROM incidents{where_}"), &[])?
                .try_get(0)?;
            let rows = c.query(
            &format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents{where_} ORDER BY last_seen DESC, id DESC \
                 LIMIT {} OFFSET {offset}",
                limit.clamp(1, 1000)
            ),
            &[],
        )?;
            Ok(Page {
                total: total as u64,
                items: map_rows(rows, rows::incident)?,
            })
        })
    }

    fn incident(&self, id: i64) -> Result<Option<IncidentRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let row = c.query_opt(
                &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"),
                &[&id],
            )?;
            Ok(row.as_ref().map(rows::incident).transpose()?)
        })
    }

    fn alerts_from_addresses(&self, addresses: &[String], limit: u32) -> Result<Vec<AlertRecord>> {
        let addresses: Vec<String> = addresses.iter().take(100).cloned().collect();
        if addresses.is_empty() {
            return Ok(Vec::new());
        }
        off_runtime(|| {
            let mut c = self.conn()?;
            let rows = c.query(
                &format!(
                    "SELECT {ALERT_COLUMNS} FROM (SELECT * FROM alerts ORDER BY last_seen DESC \
                     LIMIT {ENTITY_SCAN_ROWS}) a WHERE source_ip = ANY($1) \
                     ORDER BY last_seen DESC, id DESC LIMIT {}",
                    limit.clamp(1, 1000)
                ),
                &[&addresses],
            )?;
            map_rows(rows, rows::alert)
        })
    }

    fn incidents_with_keys(&self, keys: &[String], limit: u32) -> Result<Vec<IncidentRecord>> {
        let keys: Vec<String> = keys.iter().take(100).cloned().collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // A join key is found as its JSON string, quotes included, in the stored list.
        let listed: Vec<String> = keys
            .iter()
            .map(|k| serde_json::to_string(k).unwrap_or_default())
            .collect();
        off_runtime(|| {
            let mut c = self.conn()?;
            let rows = c.query(
                &format!(
                    "SELECT {INCIDENT_COLUMNS} FROM (SELECT * FROM incidents ORDER BY last_seen DESC \
                     LIMIT {ENTITY_SCAN_ROWS}) i WHERE key = ANY($1) OR entity = ANY($1) \
                     OR EXISTS (SELECT 1 FROM unnest($2::text[]) AS l(k) WHERE strpos(i.join_keys, l.k) > 0) \
                     ORDER BY last_seen DESC, id DESC LIMIT {}",
                    limit.clamp(1, 1000)
                ),
                &[&keys, &listed],
            )?;
            let found = map_rows(rows, rows::incident)?;
            Ok(found.into_iter().filter(|i| answers_to(i, &keys)).collect())
        })
    }

    fn update_incident(&self, id: i64, u: &IncidentUpdate) -> Result<Option<IncidentRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let mut tx = c.transaction()?;
            let now = ms(Utc::now());
            if let Some(status) = u.status {
                // The row lock makes concurrent status changes queue their messages one after the other.
                let before: Option<String> = tx
                    .query_opt(
                        "SELECT status FROM incidents WHERE id = $1 FOR UPDATE",
                        &[&id],
                    )?
                    .map(|r| r.try_get(0))
                    .transpose()?;
                tx.execute(
                    "UPDATE incidents SET status = $2, updated = $3 WHERE id = $1",
                    &[&id, &status.as_str(), &now],
                )?;
                if before.is_some_and(|b| b != status.as_str()) {
                    insert_deliveries(&mut tx, &u.deliveries, now)?;
                }
            }
            if let Some(assignee) = &u.assignee {
                tx.execute(
                    "UPDATE incidents SET assignee = $2, updated = $3 WHERE id = $1",
                    &[&id, assignee, &now],
                )?;
            }
            if let Some(severity) = &u.severity {
                tx.execute(
                    "UPDATE incidents SET severity = $2, updated = $3 WHERE id = $1",
                    &[&id, &severity.map(level_num), &now],
                )?;
            }
            if let Some(reason) = &u.close_reason {
                tx.execute(
                    "UPDATE incidents SET close_reason = $2, updated = $3 WHERE id = $1",
                    &[&id, reason, &now],
                )?;
            }
            let row = tx.query_opt(
                &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"),
                &[&id],
            )?;
            let row = row.as_ref().map(rows::incident).transpose()?;
            tx.commit()?;
            Ok(row)
        })
    }

    fn add_incident_comment(
        &self,
        incident_id: i64,
        author: &str,
        body: &str,
    ) -> Result<Option<IncidentComment>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let now = ms(Utc::now());
            // One statement: nothing is inserted when there is no such incident.
            let Some(row) = c.query_opt(
                "INSERT INTO incident_comments (incident_id, author, time, text) \
             SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM incidents WHERE id = $1) \
             RETURNING id",
                &[&incident_id, &author, &now, &body],
            )?
            else {
                return Ok(None);
            };
            Ok(Some(IncidentComment {
                id: row.try_get(0)?,
                incident_id,
                author: author.to_string(),
                time: time(now),
                text: body.to_string(),
            }))
        })
    }

    fn incident_comments(&self, incident_id: i64) -> Result<Vec<IncidentComment>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let rows = c.query(
                "SELECT id, incident_id, author, time, text FROM incident_comments \
             WHERE incident_id = $1 ORDER BY id",
                &[&incident_id],
            )?;
            map_rows(rows, |r| {
                Ok(IncidentComment {
                    id: r.try_get(0)?,
                    incident_id: r.try_get(1)?,
                    author: r.try_get(2)?,
                    time: time(r.try_get(3)?),
                    text: r.try_get(4)?,
                })
            })
        })
    }

    fn add_suppression(
        &self,
        rule_id: &str,
        entity: &str,
        reason: &str,
        author: &str,
        expires: DateTime<Utc>,
    ) -> Result<SuppressionRecord> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let mut tx = c.transaction()?;
            // Refuse to hide what an analyst confirmed as an attack.
            let confirmed = tx.query_opt(
                "SELECT id FROM alerts WHERE rule_id = $1 AND entity = $2 \
             AND verdict = 'true_positive' LIMIT 1",
                &[&rule_id, &entity],
            )?;
            if let Some(r) = confirmed {
                let id: i64 = r.try_get(0)?;
                return Err(StoreError::Conflict(format!(
                    "alert {id} of rule {rule_id} about {entity} is marked true positive: \
                 a suppression would hide a confirmed attack"
                )));
            }
            let now = ms(Utc::now());
            let id: i64 = tx
                .query_one(
                    "INSERT INTO suppressions (rule_id, entity, reason, author, created, expires) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    &[&rule_id, &entity, &reason, &author, &now, &ms(expires)],
                )?
                .try_get(0)?;
            tx.commit()?;
            Ok(SuppressionRecord {
                id,
                rule_id: rule_id.to_string(),
                entity: entity.to_string(),
                reason: reason.to_string(),
                author: author.to_string(),
                created: time(now),
                expires: time(ms(expires)),
            })
        })
    }

    fn suppressions(&self, now: DateTime<Utc>) -> Result<Vec<SuppressionRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let rows = c.query(
                "SELECT id, rule_id, entity, reason, author, created, expires FROM suppressions \
             WHERE expires > $1 ORDER BY id",
                &[&ms(now)],
            )?;
            map_rows(rows, |r| {
                Ok(SuppressionRecord {
                    id: r.try_get(0)?,
                    rule_id: r.try_get(1)?,
                    entity: r.try_get(2)?,
                    reason: r.try_get(3)?,
                    author: r.try_get(4)?,
                    created: time(r.try_get(5)?),
                    expires: time(r.try_get(6)?),
                })
            })
        })
    }

    fn delete_suppression(&self, id: i64) -> Result<bool> {
        off_runtime(|| {
            let mut c = self.conn()?;
            Ok(c.execute("DELETE FROM suppressions WHERE id = $1", &[&id])? > 0)
        })
    }

    fn stats(&self) -> Result<Stats> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let day_ago = ms(Utc::now()) - 86_400_000;
            let counts = c.query_one(
            "SELECT (SELECT COUNT(*) FROM events), \
             (SELECT COUNT(*) FROM alerts), \
             (SELECT COUNT(*) FROM incidents), \
             (SELECT COUNT(*) FROM incidents WHERE status IN ('open','acknowledged','investigating')), \
             (SELECT COUNT(*) FROM events WHERE time >= $1), \
             (SELECT COUNT(*) FROM alerts WHERE last_seen >= $1), \
             (SELECT MAX(time) FROM events)",
            &[&day_ago],
        )?;
            let n = |i: usize| -> Result<u64> { Ok(counts.try_get::<_, i64>(i)? as u64) };
            let by_level = map_rows(
                c.query(
                    "SELECT level, COUNT(*) FROM alerts GROUP BY level ORDER BY level DESC",
                    &[],
                )?,
                |r| {
                    Ok((
                        level_of(r.try_get(0)?).as_str().to_string(),
                        r.try_get::<_, i64>(1)? as u64,
                    ))
                },
            )?;
            // SQLite answers its groups in BINARY order of the key.
            let by_status = map_rows(
            c.query(
                "SELECT status, COUNT(*) FROM alerts GROUP BY status ORDER BY status COLLATE \"C\"",
                &[],
            )?,
            |r| Ok((r.try_get(0)?, r.try_get::<_, i64>(1)? as u64)),
        )?;
            Ok(Stats {
                events_total: n(0)?,
                alerts_total: n(1)?,
                incidents_total: n(2)?,
                open_incidents: n(3)?,
                alerts_by_level: by_level,
                alerts_by_status: by_status,
                events_last_24h: n(4)?,
                alerts_last_24h: n(5)?,
                last_event: counts.try_get::<_, Option<i64>>(6)?.map(time),
            })
        })
    }

    fn trends(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        bucket_secs: i64,
    ) -> Result<Vec<TrendPoint>> {
        off_runtime(|| {
            let bucket = bucket_secs.clamp(60, 100 * 366 * 86_400) * 1000;
            let (from, to) = (ms(since), ms(until));
            let n = ((to - from) / bucket + 1).clamp(1, 2000) as usize;
            let mut points: Vec<TrendPoint> = (0..n)
                .map(|i| TrendPoint {
                    start: time(from + i as i64 * bucket),
                    events: 0,
                    alerts: 0,
                })
                .collect();
            let mut c = self.conn()?;
            // Events come from their counts per minute when the buckets are whole minutes from
            // a whole minute (the overview's are), the part of a minute at the end from the events.
            let (minutes, tail) = crate::codec::minute_span(from, to, bucket);
            for (table, column, is_events) in
                [("events", "time", true), ("alerts", "first_seen", false)]
            {
                // Rows are at or after `from`, so bigint division (truncating) is floor, as in SQLite.
                let rows = match (is_events, minutes) {
                    (true, Some((first, last))) => c.query(
                        "SELECT (minute * 60000 - $1::BIGINT) / $3::BIGINT, SUM(n)::BIGINT \
                         FROM event_minutes WHERE minute >= $4 AND minute < $5 GROUP BY 1 \
                         UNION ALL SELECT (time - $1::BIGINT) / $3::BIGINT, COUNT(*) FROM events \
                         WHERE time >= $6 AND time < $2 GROUP BY 1",
                        &[&from, &to, &bucket, &first, &last, &tail],
                    )?,
                    _ => c.query(
                        &format!(
                            "SELECT ({column} - $1::BIGINT) / $3::BIGINT, COUNT(*) FROM {table} \
                             WHERE {column} >= $1 AND {column} < $2 GROUP BY 1"
                        ),
                        &[&from, &to, &bucket],
                    )?,
                };
                for row in rows {
                    let i: i64 = row.try_get(0)?;
                    let count: i64 = row.try_get(1)?;
                    if let Some(p) = points.get_mut(i.max(0) as usize) {
                        if is_events {
                            p.events += count as u64;
                        } else {
                            p.alerts = count as u64;
                        }
                    }
                }
            }
            Ok(points)
        })
    }

    fn top_rules(&self, since: Option<DateTime<Utc>>, limit: u32) -> Result<Vec<RuleCount>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            // Ties are broken by rule id (SQLite gives its groups in that order).
            let rows = c.query(
                "SELECT rule_id, MAX(title COLLATE \"C\"), MAX(level), COUNT(*), \
             COALESCE(SUM(count), 0)::BIGINT, MAX(last_seen) \
             FROM alerts WHERE last_seen >= $1 GROUP BY rule_id \
             ORDER BY MAX(level) DESC, COUNT(*) DESC, rule_id COLLATE \"C\" LIMIT $2",
                &[&since.map(ms).unwrap_or(0), &(limit as i64)],
            )?;
            map_rows(rows, |r| {
                Ok(RuleCount {
                    rule_id: r.try_get(0)?,
                    title: r.try_get(1)?,
                    level: level_of(r.try_get(2)?),
                    alerts: r.try_get::<_, i64>(3)? as u64,
                    events: r.try_get::<_, i64>(4)? as u64,
                    last_seen: time(r.try_get(5)?),
                })
            })
        })
    }

    fn alert_top(
        &self,
        key: AlertKey,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<KeyCount>> {
        off_runtime(|| {
            // The column names come from this match, never from input.
            let sql = match key {
                AlertKey::SourceIp | AlertKey::Entity | AlertKey::Account => {
                    let col = match key {
                        AlertKey::SourceIp => "source_ip",
                        AlertKey::Entity => "entity",
                        _ => "account",
                    };
                    format!(
                        "SELECT {col}, COUNT(*) FROM alerts WHERE {col} IS NOT NULL AND last_seen >= $1 \
                     GROUP BY {col} ORDER BY COUNT(*) DESC, {col} COLLATE \"C\" LIMIT $2"
                    )
                }
                AlertKey::Technique | AlertKey::Tactic => {
                    let col = if key == AlertKey::Technique {
                        "techniques"
                    } else {
                        "tactics"
                    };
                    format!(
                        "SELECT j.value, COUNT(*) FROM alerts, \
                     jsonb_array_elements_text(alerts.{col}::jsonb) AS j(value) \
                     WHERE alerts.last_seen >= $1 GROUP BY j.value \
                     ORDER BY COUNT(*) DESC, j.value COLLATE \"C\" LIMIT $2"
                    )
                }
            };
            let mut c = self.conn()?;
            let rows = c.query(&sql, &[&since.map(ms).unwrap_or(0), &(limit as i64)])?;
            map_rows(rows, |r| {
                Ok(KeyCount {
                    key: r.try_get(0)?,
                    count: r.try_get::<_, i64>(1)? as u64,
                })
            })
        })
    }

    fn alert_features(&self, alert_ids: &[i64]) -> Result<Vec<AlertFeatures>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let stmt = c.prepare(
            "SELECT alert_id, schema, features, anomaly_score FROM alert_features WHERE alert_id = $1",
        )?;
            let mut out = Vec::new();
            for id in alert_ids {
                if let Some(r) = c.query_opt(&stmt, &[id])? {
                    out.push(AlertFeatures {
                        alert_id: r.try_get(0)?,
                        schema: r.try_get::<_, i64>(1)? as u32,
                        values: serde_json::from_str(r.try_get::<_, &str>(2)?).unwrap_or_default(),
                        anomaly_score: r.try_get(3)?,
                    });
                }
            }
            Ok(out)
        })
    }

    fn set_tp_scores(&self, scores: &[(i64, f64)]) -> Result<()> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let mut tx = c.transaction()?;
            if !scores.is_empty() {
                let stmt = tx.prepare("UPDATE alerts SET tp_score = $2 WHERE id = $1")?;
                for (id, s) in scores {
                    tx.execute(&stmt, &[id, s])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn alert_counts(&self, since: Option<DateTime<Utc>>) -> Result<AlertCounts> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let from = since.map(ms).unwrap_or(0);
            let mut out = AlertCounts::default();
            for r in c.query(
                "SELECT level, status, COUNT(*) FROM alerts WHERE last_seen >= $1 GROUP BY level, status",
                &[&from],
            )? {
                let st: String = r.try_get(1)?;
                if let Some(st) = AlertStatus::parse(&st) {
                    out.alerts
                        .push((level_of(r.try_get(0)?), st, r.try_get::<_, i64>(2)? as u64));
                }
            }
            for r in c.query(
                "SELECT status, COUNT(*) FROM incidents WHERE last_seen >= $1 GROUP BY status",
                &[&from],
            )? {
                let st: String = r.try_get(0)?;
                if let Some(st) = AlertStatus::parse(&st) {
                    out.incidents.push((st, r.try_get::<_, i64>(1)? as u64));
                }
            }
            out.alerts
                .sort_by(|a, b| b.0.cmp(&a.0).then(a.1.as_str().cmp(b.1.as_str())));
            out.incidents.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
            Ok(out)
        })
    }

    fn unassigned_alerts(&self, min_level: Level, limit: u32) -> Result<Page<AlertRecord>> {
        off_runtime(|| {
            const WHERE: &str =
                "status = 'open' AND (assignee IS NULL OR assignee = '') AND level >= $1";
            let mut c = self.conn()?;
            let level = level_num(min_level);
            let total: i64 = c
                .query_one(
                    &format!("SELECT COUNT(*) FROM alerts WHERE {WHERE}"),
                    &[&level],
                )?
                .try_get(0)?;
            let rows = c.query(
                &format!(
                    "SELECT {ALERT_COLUMNS} FROM alerts WHERE {WHERE} \
                     ORDER BY created DESC, id DESC LIMIT $2"
                ),
                &[&level, &(limit.clamp(1, 1000) as i64)],
            )?;
            Ok(Page {
                total: total as u64,
                items: map_rows(rows, rows::alert)?,
            })
        })
    }

    fn rule_trend(
        &self,
        rule_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        bucket_secs: i64,
    ) -> Result<Vec<(DateTime<Utc>, u64)>> {
        off_runtime(|| {
            let bucket = bucket_secs.clamp(60, 100 * 366 * 86_400) * 1000;
            let (from, to) = (ms(since), ms(until));
            let n = ((to - from) / bucket + 1).clamp(1, 2000) as usize;
            let mut points: Vec<(DateTime<Utc>, u64)> = (0..n)
                .map(|i| (time(from + i as i64 * bucket), 0))
                .collect();
            let mut c = self.conn()?;
            // Rows are at or after `from`, so bigint division (truncating) is floor, as in SQLite.
            for row in c.query(
                "SELECT (first_seen - $1::BIGINT) / $3::BIGINT, COUNT(*) FROM alerts \
                 WHERE rule_id = $4 AND first_seen >= $1 AND first_seen < $2 GROUP BY 1",
                &[&from, &to, &bucket, &rule_id],
            )? {
                let i: i64 = row.try_get(0)?;
                let count: i64 = row.try_get(1)?;
                if let Some(p) = points.get_mut(i.max(0) as usize) {
                    p.1 = count as u64;
                }
            }
            Ok(points)
        })
    }

    fn rule_verdicts(
        &self,
        since: Option<DateTime<Utc>>,
        rule_id: Option<&str>,
    ) -> Result<Vec<RuleVerdicts>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let rows = c.query(
                "SELECT rule_id, COUNT(*), \
                 COALESCE(SUM(CASE WHEN verdict = 'true_positive' THEN 1 ELSE 0 END), 0)::BIGINT, \
                 COALESCE(SUM(CASE WHEN verdict = 'false_positive' THEN 1 ELSE 0 END), 0)::BIGINT, \
                 COALESCE(SUM(CASE WHEN verdict = 'benign' THEN 1 ELSE 0 END), 0)::BIGINT, \
                 MAX(last_seen) \
                 FROM alerts WHERE last_seen >= $1 AND ($2::TEXT IS NULL OR rule_id = $2) \
                 GROUP BY rule_id ORDER BY COUNT(*) DESC, rule_id COLLATE \"C\"",
                &[&since.map(ms).unwrap_or(0), &rule_id],
            )?;
            map_rows(rows, |r| {
                Ok(RuleVerdicts {
                    rule_id: r.try_get(0)?,
                    alerts: r.try_get::<_, i64>(1)? as u64,
                    true_positive: r.try_get::<_, i64>(2)? as u64,
                    false_positive: r.try_get::<_, i64>(3)? as u64,
                    benign: r.try_get::<_, i64>(4)? as u64,
                    last_seen: r.try_get::<_, Option<i64>>(5)?.map(time),
                })
            })
        })
    }
}

/// Writes what the pipeline derived, inside the commit's open transaction: alerts (detection
/// columns only on update), their features, incidents, and the messages for the notification
/// sinks. Row by row with prepared statements, so that a batch may update one alert twice.
pub(super) fn write_derived(c: &mut Client, batch: &Derived) -> Result<()> {
    if !batch.alerts.is_empty() {
        let stmt = c.prepare(
            "INSERT INTO alerts (id, kind, rule_id, title, level, techniques, tactics, entity, \
             account, access_key, source_ip, first_seen, last_seen, created, updated, count, \
             event_ids, explanation, status, assignee, incident_id, verdict, tp_score) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20, $21, $22, $23) \
             ON CONFLICT (id) DO UPDATE SET first_seen = excluded.first_seen, \
             last_seen = excluded.last_seen, updated = excluded.updated, count = excluded.count, \
             event_ids = excluded.event_ids, explanation = excluded.explanation, title = excluded.title, \
             incident_id = excluded.incident_id, \
             tp_score = COALESCE(excluded.tp_score, alerts.tp_score)",
        )?;
        for a in &batch.alerts {
            c.execute(
                &stmt,
                &[
                    &a.id,
                    &a.kind,
                    &a.rule_id,
                    &a.title,
                    &level_num(a.level),
                    &json_list(&a.techniques),
                    &json_list(&a.tactics),
                    &a.entity,
                    &a.account,
                    &a.access_key,
                    &a.source_ip,
                    &ms(a.first_seen),
                    &ms(a.last_seen),
                    &ms(a.created),
                    &ms(a.updated),
                    &(a.count as i64),
                    &json_list(&a.event_ids),
                    &a.explanation,
                    &a.status.as_str(),
                    &a.assignee,
                    &a.incident_id,
                    &a.verdict.map(Verdict::as_str),
                    &a.tp_score,
                ],
            )?;
        }
    }
    if !batch.features.is_empty() {
        let stmt = c.prepare(
            "INSERT INTO alert_features (alert_id, schema, features, anomaly_score) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )?;
        for f in &batch.features {
            c.execute(
                &stmt,
                &[
                    &f.alert_id,
                    &(f.schema as i64),
                    &serde_json::to_string(&f.values).unwrap_or_default(),
                    &f.anomaly_score,
                ],
            )?;
        }
    }
    if !batch.incidents.is_empty() {
        let stmt = c.prepare(
            "INSERT INTO incidents (id, key, entity, account, title, level, status, first_seen, \
             last_seen, created, updated, alert_count, tactics, techniques, join_keys) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, level = excluded.level, \
             first_seen = excluded.first_seen, last_seen = excluded.last_seen, \
             updated = excluded.updated, alert_count = excluded.alert_count, \
             tactics = excluded.tactics, techniques = excluded.techniques, \
             join_keys = excluded.join_keys",
        )?;
        for i in &batch.incidents {
            c.execute(
                &stmt,
                &[
                    &i.id,
                    &i.key,
                    &i.entity,
                    &i.account,
                    &i.title,
                    &level_num(i.level),
                    &i.status.as_str(),
                    &ms(i.first_seen),
                    &ms(i.last_seen),
                    &ms(i.created),
                    &ms(i.updated),
                    &(i.alert_count as i64),
                    &json_list(&i.tactics),
                    &json_list(&i.techniques),
                    &json_list(&i.join_keys),
                ],
            )?;
        }
    }
    insert_deliveries(c, &batch.deliveries, ms(Utc::now()))?;
    Ok(())
}
