//! Alerts and incidents: what the alerting stage resumes from, the queue and its filters, what analysts change (status, assignee, comments, verdicts, suppressions), dashboard counts, and the feedback model's inputs.

use super::*;

impl AlertStore for SqliteStore {
    fn recent_alerts(&self, since: DateTime<Utc>) -> Result<Vec<AlertRecord>> {
        let conn = self.read();
        let mut stmt = conn.prepare(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE last_seen >= ?1 OR updated >= ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![ms(since)], alert_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn recent_incidents(&self, since: DateTime<Utc>) -> Result<Vec<IncidentRecord>> {
        let conn = self.read();
        let mut stmt = conn.prepare(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE last_seen >= ?1 OR updated >= ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![ms(since)], incident_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn max_ids(&self) -> Result<(i64, i64)> {
        let conn = self.read();
        let a = conn.query_row("SELECT COALESCE(MAX(id), 0) FROM alerts", [], |r| r.get(0))?;
        let i = conn.query_row("SELECT COALESCE(MAX(id), 0) FROM incidents", [], |r| {
            r.get(0)
        })?;
        Ok((a, i))
    }

    fn alerts(&self, q: &AlertQuery) -> Result<Page<AlertRecord>> {
        let mut f = Filter::default();
        if let Some(l) = q.min_level {
            f.add("level >= ?", Value::Integer(level_num(l)));
        }
        if !q.levels.is_empty() {
            let list: Vec<String> = q.levels.iter().map(|l| level_num(*l).to_string()).collect();
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
            f.add("kind = ?", text(k));
        }
        if let Some(r) = &q.rule_id {
            f.add("rule_id = ?", text(r));
        }
        if let Some(t) = &q.technique {
            // Sub-techniques count for their parent: T1078 finds T1078.004.
            f.params
                .push(Value::Text(format!("\"{}\"", t.to_ascii_uppercase())));
            let exact = f.params.len();
            f.params
                .push(Value::Text(format!("\"{}.", t.to_ascii_uppercase())));
            let parent = f.params.len();
            f.clauses.push(format!(
                "(instr(techniques, ?{exact}) > 0 OR instr(techniques, ?{parent}) > 0)"
            ));
        }
        if let Some(p) = &q.principal {
            f.add("entity = ?", text(p));
        }
        if let Some(a) = &q.account {
            f.add("account = ?", text(a));
        }
        match &q.assignee {
            Some(Some(user)) => f.add("assignee = ?", text(user)),
            Some(None) => f.clauses.push("assignee IS NULL".into()),
            None => {}
        }
        if let Some(i) = q.incident_id {
            f.add("incident_id = ?", Value::Integer(i));
        }
        if let Some(t) = q.since {
            f.add("last_seen >= ?", Value::Integer(ms(t)));
        }
        if let Some(t) = q.until {
            f.add("first_seen < ?", Value::Integer(ms(t)));
        }
        if let Some(t) = q.updated_since {
            f.add("updated > ?", Value::Integer(ms(t)));
        }
        if let Some(t) = &q.text {
            f.params.push(Value::Text(escape_like(t)));
            let n = f.params.len();
            f.clauses.push(format!(
                "(title LIKE ?{n} ESCAPE '\\' OR rule_id LIKE ?{n} ESCAPE '\\' \
                 OR entity LIKE ?{n} ESCAPE '\\' OR explanation LIKE ?{n} ESCAPE '\\' \
                 OR account LIKE ?{n} ESCAPE '\\')"
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
        let conn = self.read();
        let total: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM alerts{where_}"),
            params_from_iter(f.params.iter()),
            |r| r.get(0),
        )?;
        let limit = q.limit.clamp(1, 1000);
        let mut stmt = conn.prepare(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts{where_} ORDER BY {order} {dir}, id {dir} LIMIT {limit} OFFSET {}",
            q.offset
        ))?;
        let items = stmt
            .query_map(params_from_iter(f.params.iter()), alert_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Page {
            total: total as u64,
            items,
        })
    }

    fn alert(&self, id: i64) -> Result<Option<AlertRecord>> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1"),
                params![id],
                alert_row,
            )
            .optional()?)
    }

    fn update_alert(
        &self,
        id: i64,
        status: Option<AlertStatus>,
        assignee: Option<Option<String>>,
        deliveries: &[NewDelivery],
    ) -> Result<Option<AlertRecord>> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        let now = ms(Utc::now());
        let before: Option<String> = tx
            .query_row(
                "SELECT status FROM alerts WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(before) = before else {
            return Ok(None);
        };
        if let Some(s) = status {
            tx.execute(
                "UPDATE alerts SET status = ?2, updated = ?3 WHERE id = ?1",
                params![id, s.as_str(), now],
            )?;
            if s.as_str() != before {
                insert_deliveries(&tx, deliveries, now)?;
            }
        }
        if let Some(a) = assignee {
            tx.execute(
                "UPDATE alerts SET assignee = ?2, updated = ?3 WHERE id = ?1",
                params![id, a, now],
            )?;
        }
        let after = tx
            .query_row(
                &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1"),
                params![id],
                alert_row,
            )
            .optional()?;
        tx.commit()?;
        Ok(after)
    }

    fn add_comment(&self, alert_id: i64, author: &str, body: &str) -> Result<CommentRecord> {
        let conn = self.write();
        let now = Utc::now();
        conn.execute(
            "INSERT INTO comments (alert_id, author, time, text) VALUES (?1, ?2, ?3, ?4)",
            params![alert_id, author, ms(now), body],
        )?;
        Ok(CommentRecord {
            id: conn.last_insert_rowid(),
            alert_id,
            author: author.to_string(),
            time: time(ms(now)),
            text: body.to_string(),
        })
    }

    fn comments(&self, alert_id: i64) -> Result<Vec<CommentRecord>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT id, alert_id, author, time, text FROM comments WHERE alert_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![alert_id], |r| {
            Ok(CommentRecord {
                id: r.get(0)?,
                alert_id: r.get(1)?,
                author: r.get(2)?,
                time: time(r.get(3)?),
                text: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn add_feedback(
        &self,
        alert_id: i64,
        verdict: Verdict,
        reason: &str,
        author: &str,
    ) -> Result<Option<FeedbackRecord>> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        let Some((rule_id, entity)) = tx
            .query_row(
                "SELECT rule_id, entity FROM alerts WHERE id = ?1",
                params![alert_id],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()?
        else {
            return Ok(None);
        };
        let now = ms(Utc::now());
        tx.execute(
            "INSERT INTO feedback (alert_id, verdict, reason, author, time, rule_id, entity) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                alert_id,
                verdict.as_str(),
                reason,
                author,
                now,
                rule_id,
                entity
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE alerts SET verdict = ?2, updated = ?3 WHERE id = ?1",
            params![alert_id, verdict.as_str(), now],
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
    }

    fn feedback(&self, alert_id: Option<i64>) -> Result<Vec<FeedbackRecord>> {
        let conn = self.read();
        let rows = match alert_id {
            Some(a) => {
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {FEEDBACK_COLUMNS} FROM feedback WHERE alert_id = ?1 ORDER BY id"
                ))?;
                stmt.query_map(params![a], feedback_row)?
                    .collect::<rusqlite::Result<_>>()?
            }
            None => {
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {FEEDBACK_COLUMNS} FROM feedback ORDER BY id"
                ))?;
                stmt.query_map([], feedback_row)?
                    .collect::<rusqlite::Result<_>>()?
            }
        };
        Ok(rows)
    }

    fn incidents(
        &self,
        statuses: &[AlertStatus],
        limit: u32,
        offset: u64,
    ) -> Result<Page<IncidentRecord>> {
        let where_ = if statuses.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = statuses
                .iter()
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            format!(" WHERE status IN ({})", list.join(","))
        };
        let conn = self.read();
        let total: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM incidents{where_}"),
            [],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents{where_} ORDER BY last_seen DESC, id DESC LIMIT {} OFFSET {offset}",
            limit.clamp(1, 1000)
        ))?;
        let items = stmt
            .query_map([], incident_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Page {
            total: total as u64,
            items,
        })
    }

    fn incident(&self, id: i64) -> Result<Option<IncidentRecord>> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?1"),
                params![id],
                incident_row,
            )
            .optional()?)
    }

    fn alerts_from_addresses(&self, addresses: &[String], limit: u32) -> Result<Vec<AlertRecord>> {
        let addresses = &addresses[..addresses.len().min(100)];
        if addresses.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; addresses.len()].join(", ");
        let conn = self.read();
        let mut stmt = conn.prepare(&format!(
            "SELECT {ALERT_COLUMNS} FROM (SELECT * FROM alerts ORDER BY last_seen DESC \
             LIMIT {ENTITY_SCAN_ROWS}) WHERE source_ip IN ({marks}) \
             ORDER BY last_seen DESC, id DESC LIMIT {}",
            limit.clamp(1, 1000)
        ))?;
        let rows = stmt
            .query_map(params_from_iter(addresses.iter()), alert_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn incidents_with_keys(&self, keys: &[String], limit: u32) -> Result<Vec<IncidentRecord>> {
        let keys = &keys[..keys.len().min(100)];
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let n = keys.len();
        let plain = (1..=n)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        // A join key is found as its JSON string, quotes included, in the stored list.
        let listed = (1..=n)
            .map(|i| format!("instr(join_keys, ?{}) > 0", n + i))
            .collect::<Vec<_>>()
            .join(" OR ");
        let params: Vec<String> = keys
            .iter()
            .cloned()
            .chain(
                keys.iter()
                    .map(|k| serde_json::to_string(k).unwrap_or_default()),
            )
            .collect();
        let conn = self.read();
        let mut stmt = conn.prepare(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM (SELECT * FROM incidents ORDER BY last_seen DESC \
             LIMIT {ENTITY_SCAN_ROWS}) WHERE key IN ({plain}) OR entity IN ({plain}) OR {listed} \
             ORDER BY last_seen DESC, id DESC LIMIT {}",
            limit.clamp(1, 1000)
        ))?;
        let rows: Vec<IncidentRecord> = stmt
            .query_map(params_from_iter(params.iter()), incident_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows.into_iter().filter(|i| answers_to(i, keys)).collect())
    }

    fn update_incident(&self, id: i64, u: &IncidentUpdate) -> Result<Option<IncidentRecord>> {
        let conn = self.write();
        let tx = conn.unchecked_transaction()?;
        let now = ms(Utc::now());
        if let Some(status) = u.status {
            let before: Option<String> = tx
                .query_row(
                    "SELECT status FROM incidents WHERE id = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .optional()?;
            tx.execute(
                "UPDATE incidents SET status = ?2, updated = ?3 WHERE id = ?1",
                params![id, status.as_str(), now],
            )?;
            if before.is_some_and(|b| b != status.as_str()) {
                insert_deliveries(&tx, &u.deliveries, now)?;
            }
        }
        if let Some(assignee) = &u.assignee {
            tx.execute(
                "UPDATE incidents SET assignee = ?2, updated = ?3 WHERE id = ?1",
                params![id, assignee, now],
            )?;
        }
        if let Some(severity) = &u.severity {
            tx.execute(
                "UPDATE incidents SET severity = ?2, updated = ?3 WHERE id = ?1",
                params![id, severity.map(level_num), now],
            )?;
        }
        if let Some(reason) = &u.close_reason {
            tx.execute(
                "UPDATE incidents SET close_reason = ?2, updated = ?3 WHERE id = ?1",
                params![id, reason, now],
            )?;
        }
        let row = tx
            .query_row(
                &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?1"),
                params![id],
                incident_row,
            )
            .optional()?;
        tx.commit()?;
        Ok(row)
    }

    fn add_incident_comment(
        &self,
        incident_id: i64,
        author: &str,
        body: &str,
    ) -> Result<Option<IncidentComment>> {
        let conn = self.write();
        let exists: Option<i64> = conn
            .query_row(
                "SELECT id FROM incidents WHERE id = ?1",
                params![incident_id],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_none() {
            return Ok(None);
        }
        let now = Utc::now();
        conn.execute(
            "INSERT INTO incident_comments (incident_id, author, time, text) VALUES (?1, ?2, ?3, ?4)",
            params![incident_id, author, ms(now), body],
        )?;
        Ok(Some(IncidentComment {
            id: conn.last_insert_rowid(),
            incident_id,
            author: author.to_string(),
            time: time(ms(now)),
            text: body.to_string(),
        }))
    }

    fn incident_comments(&self, incident_id: i64) -> Result<Vec<IncidentComment>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT id, incident_id, author, time, text FROM incident_comments WHERE incident_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![incident_id], |r| {
            Ok(IncidentComment {
                id: r.get(0)?,
                incident_id: r.get(1)?,
                author: r.get(2)?,
                time: time(r.get(3)?),
                text: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn add_suppression(
        &self,
        rule_id: &str,
        entity: &str,
        reason: &str,
        author: &str,
        expires: DateTime<Utc>,
    ) -> Result<SuppressionRecord> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        // Refuse to hide what an analyst confirmed as an attack.
        let confirmed: Option<i64> = tx
            .query_row(
                "SELECT id FROM alerts WHERE rule_id = ?1 AND entity = ?2 \
                 AND verdict = 'true_positive' LIMIT 1",
                params![rule_id, entity],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = confirmed {
            return Err(StoreError::Conflict(format!(
                "alert {id} of rule {rule_id} about {entity} is marked true positive: \
                 a suppression would hide a confirmed attack"
            )));
        }
        let now = Utc::now();
        tx.execute(
            "INSERT INTO suppressions (rule_id, entity, reason, author, created, expires) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![rule_id, entity, reason, author, ms(now), ms(expires)],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(SuppressionRecord {
            id,
            rule_id: rule_id.to_string(),
            entity: entity.to_string(),
            reason: reason.to_string(),
            author: author.to_string(),
            created: time(ms(now)),
            expires: time(ms(expires)),
        })
    }

    fn suppressions(&self, now: DateTime<Utc>) -> Result<Vec<SuppressionRecord>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT id, rule_id, entity, reason, author, created, expires FROM suppressions \
             WHERE expires > ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![ms(now)], |r| {
            Ok(SuppressionRecord {
                id: r.get(0)?,
                rule_id: r.get(1)?,
                entity: r.get(2)?,
                reason: r.get(3)?,
                author: r.get(4)?,
                created: time(r.get(5)?),
                expires: time(r.get(6)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn delete_suppression(&self, id: i64) -> Result<bool> {
        let conn = self.write();
        Ok(conn.execute("DELETE FROM suppressions WHERE id = ?1", params![id])? > 0)
    }

    fn stats(&self) -> Result<Stats> {
        let conn = self.read();
        let day_ago = ms(Utc::now()) - 86_400_000;
        let one = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<i64> {
            Ok(conn.query_row(sql, p, |r| r.get::<_, i64>(0))?)
        };
        // MAX(seq) counts events without scanning them (events are only deleted by retention,
        // which the second term accounts for).
        let events_total = one("SELECT COUNT(*) FROM events", &[])?;
        let mut by_level = Vec::new();
        {
            let mut stmt = conn.prepare_cached(
                "SELECT level, COUNT(*) FROM alerts GROUP BY level ORDER BY level DESC",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (l, n) = row?;
                by_level.push((level_of(l).as_str().to_string(), n as u64));
            }
        }
        let mut by_status = Vec::new();
        {
            let mut stmt =
                conn.prepare_cached("SELECT status, COUNT(*) FROM alerts GROUP BY status")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (s, n) = row?;
                by_status.push((s, n as u64));
            }
        }
        let last_event: Option<i64> =
            conn.query_row("SELECT MAX(time) FROM events", [], |r| r.get(0))?;
        Ok(Stats {
            events_total: events_total as u64,
            alerts_total: one("SELECT COUNT(*) FROM alerts", &[])? as u64,
            incidents_total: one("SELECT COUNT(*) FROM incidents", &[])? as u64,
            open_incidents: one(
                "SELECT COUNT(*) FROM incidents WHERE status IN ('open','acknowledged','investigating')",
                &[],
            )? as u64,
            alerts_by_level: by_level,
            alerts_by_status: by_status,
            events_last_24h: one("SELECT COUNT(*) FROM events WHERE time >= ?1", &[&day_ago])?
                as u64,
            alerts_last_24h: one(
                "SELECT COUNT(*) FROM alerts WHERE last_seen >= ?1",
                &[&day_ago],
            )? as u64,
            last_event: last_event.map(time),
        })
    }

    fn trends(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        bucket_secs: i64,
    ) -> Result<Vec<TrendPoint>> {
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
        let conn = self.read();
        // Events come from their counts per minute when the buckets are whole minutes from a
        // whole minute (the overview's are), the part of a minute at the end from the events.
        let (minutes, tail) = crate::codec::minute_span(from, to, bucket);
        for (table, column, is_events) in
            [("events", "time", true), ("alerts", "first_seen", false)]
        {
            let (sql, lo) = match (is_events, minutes) {
                (true, Some((first, last))) => (
                    "SELECT (minute * 60000 - ?1) / ?3, SUM(n) FROM event_minutes \
                     WHERE minute >= ?4 AND minute < ?5 GROUP BY 1 \
                     UNION ALL SELECT (time - ?1) / ?3, COUNT(*) FROM events \
                     WHERE time >= ?6 AND time < ?2 GROUP BY 1"
                        .to_string(),
                    (first, last),
                ),
                _ => (
                    format!(
                        "SELECT ({column} - ?1) / ?3, COUNT(*) FROM {table} \
                         WHERE {column} >= ?1 AND {column} < ?2 GROUP BY 1"
                    ),
                    (0, 0),
                ),
            };
            let mut stmt = conn.prepare(&sql)?;
            let args: Vec<i64> = if is_events && minutes.is_some() {
                vec![from, to, bucket, lo.0, lo.1, tail]
            } else {
                vec![from, to, bucket]
            };
            let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })?;
            for row in rows {
                let (i, c) = row?;
                if let Some(p) = points.get_mut(i.max(0) as usize) {
                    if is_events {
                        p.events += c as u64;
                    } else {
                        p.alerts = c as u64;
                    }
                }
            }
        }
        Ok(points)
    }

    fn top_rules(&self, since: Option<DateTime<Utc>>, limit: u32) -> Result<Vec<RuleCount>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT rule_id, MAX(title), MAX(level), COUNT(*), SUM(count), MAX(last_seen) \
             FROM alerts WHERE last_seen >= ?1 GROUP BY rule_id \
             ORDER BY MAX(level) DESC, COUNT(*) DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![since.map(ms).unwrap_or(0), limit], |r| {
            Ok(RuleCount {
                rule_id: r.get(0)?,
                title: r.get(1)?,
                level: level_of(r.get(2)?),
                alerts: r.get::<_, i64>(3)? as u64,
                events: r.get::<_, i64>(4)? as u64,
                last_seen: time(r.get(5)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn alert_top(
        &self,
        key: AlertKey,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<KeyCount>> {
        // The column names come from this match, never from input.
        let sql = match key {
            AlertKey::SourceIp | AlertKey::Entity | AlertKey::Account => {
                let col = match key {
                    AlertKey::SourceIp => "source_ip",
                    AlertKey::Entity => "entity",
                    _ => "account",
                };
                format!(
                    "SELECT {col}, COUNT(*) FROM alerts WHERE {col} IS NOT NULL AND last_seen >= ?1 \
                     GROUP BY {col} ORDER BY COUNT(*) DESC, {col} LIMIT ?2"
                )
            }
            AlertKey::Technique | AlertKey::Tactic => {
                let col = if key == AlertKey::Technique {
                    "techniques"
                } else {
                    "tactics"
                };
                format!(
                    "SELECT j.value, COUNT(*) FROM alerts, json_each(alerts.{col}) AS j \
                     WHERE alerts.last_seen >= ?1 GROUP BY j.value ORDER BY COUNT(*) DESC, j.value LIMIT ?2"
                )
            }
        };
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![since.map(ms).unwrap_or(0), limit], |r| {
            Ok(KeyCount {
                key: r.get(0)?,
                count: r.get::<_, i64>(1)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn alert_features(&self, alert_ids: &[i64]) -> Result<Vec<AlertFeatures>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT alert_id, schema, features, anomaly_score FROM alert_features WHERE alert_id = ?1",
        )?;
        let mut out = Vec::new();
        for id in alert_ids {
            if let Some(f) = stmt
                .query_row(params![id], |r| {
                    Ok(AlertFeatures {
                        alert_id: r.get(0)?,
                        schema: r.get::<_, i64>(1)? as u32,
                        values: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
                        anomaly_score: r.get(3)?,
                    })
                })
                .optional()?
            {
                out.push(f);
            }
        }
        Ok(out)
    }

    fn set_tp_scores(&self, scores: &[(i64, f64)]) -> Result<()> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("UPDATE alerts SET tp_score = ?2 WHERE id = ?1")?;
            for (id, s) in scores {
                stmt.execute(params![id, s])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn alert_counts(&self, since: Option<DateTime<Utc>>) -> Result<AlertCounts> {
        let conn = self.read();
        let from = since.map(ms).unwrap_or(0);
        let mut out = AlertCounts::default();
        let mut stmt = conn.prepare_cached(
            "SELECT level, status, COUNT(*) FROM alerts WHERE last_seen >= ?1 GROUP BY level, status",
        )?;
        let rows = stmt.query_map(params![from], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (l, st, n) = row?;
            if let Some(st) = AlertStatus::parse(&st) {
                out.alerts.push((level_of(l), st, n as u64));
            }
        }
        let mut stmt = conn.prepare_cached(
            "SELECT status, COUNT(*) FROM incidents WHERE last_seen >= ?1 GROUP BY status",
        )?;
        let rows = stmt.query_map(params![from], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (st, n) = row?;
            if let Some(st) = AlertStatus::parse(&st) {
                out.incidents.push((st, n as u64));
            }
        }
        out.alerts
            .sort_by(|a, b| b.0.cmp(&a.0).then(a.1.as_str().cmp(b.1.as_str())));
        out.incidents.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        Ok(out)
    }

    fn unassigned_alerts(&self, min_level: Level, limit: u32) -> Result<Page<AlertRecord>> {
        const WHERE: &str =
            "status = 'open' AND (assignee IS NULL OR assignee = '') AND level >= ?1";
        let conn = self.read();
        let total: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM alerts WHERE {WHERE}"),
            params![level_num(min_level)],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE {WHERE} ORDER BY created DESC, id DESC LIMIT ?2"
        ))?;
        let items = stmt
            .query_map(
                params![level_num(min_level), limit.clamp(1, 1000)],
                alert_row,
            )?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Page {
            total: total as u64,
            items,
        })
    }

    fn rule_trend(
        &self,
        rule_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        bucket_secs: i64,
    ) -> Result<Vec<(DateTime<Utc>, u64)>> {
        let bucket = bucket_secs.clamp(60, 100 * 366 * 86_400) * 1000;
        let (from, to) = (ms(since), ms(until));
        let n = ((to - from) / bucket + 1).clamp(1, 2000) as usize;
        let mut points: Vec<(DateTime<Utc>, u64)> = (0..n)
            .map(|i| (time(from + i as i64 * bucket), 0))
            .collect();
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT (first_seen - ?1) / ?3, COUNT(*) FROM alerts \
             WHERE rule_id = ?4 AND first_seen >= ?1 AND first_seen < ?2 GROUP BY 1",
        )?;
        let rows = stmt.query_map(params![from, to, bucket, rule_id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (i, c) = row?;
            if let Some(p) = points.get_mut(i.max(0) as usize) {
                p.1 = c as u64;
            }
        }
        Ok(points)
    }

    fn rule_verdicts(
        &self,
        since: Option<DateTime<Utc>>,
        rule_id: Option<&str>,
    ) -> Result<Vec<RuleVerdicts>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT rule_id, COUNT(*), \
             SUM(CASE WHEN verdict = 'true_positive' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN verdict = 'false_positive' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN verdict = 'benign' THEN 1 ELSE 0 END), MAX(last_seen) \
             FROM alerts WHERE last_seen >= ?1 AND (?2 IS NULL OR rule_id = ?2) \
             GROUP BY rule_id ORDER BY COUNT(*) DESC, rule_id",
        )?;
        let rows = stmt.query_map(params![since.map(ms).unwrap_or(0), rule_id], |r| {
            Ok(RuleVerdicts {
                rule_id: r.get(0)?,
                alerts: r.get::<_, i64>(1)? as u64,
                true_positive: r.get::<_, i64>(2)? as u64,
                false_positive: r.get::<_, i64>(3)? as u64,
                benign: r.get::<_, i64>(4)? as u64,
                last_seen: r.get::<_, Option<i64>>(5)?.map(time),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
