//! The model registry and small named state on PostgreSQL. Handing out versions and switching
//! the active model take one advisory lock, so processes doing either at once do not collide.

use super::*;

/// Advisory lock key (arbitrary, fixed) for the registry's versions and active flags.
const MODEL_LOCK: i64 = 0x4353_0101;

impl ModelStore for PostgresStore {
    fn create_model(&self, m: &NewModel) -> Result<ModelRecord> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MODEL_LOCK])?;
            let row = tx.query_one(
                &format!(
                    "INSERT INTO models (name, version, schema, status, created, trained_by, \
                 window_from, window_to, params) \
                 SELECT $1, COALESCE(MAX(version), 0) + 1, $2, 'training', $3, $4, $5, $6, $7 \
                 FROM models WHERE name = $1 RETURNING {MODEL_COLUMNS}"
                ),
                &[
                    &m.name,
                    &i64::from(m.schema),
                    &ms(Utc::now()),
                    &m.trained_by,
                    &m.window_from.map(ms),
                    &m.window_to.map(ms),
                    &m.params.to_string(),
                ],
            )?;
            let model = rows::model(&row)?;
            tx.commit()?;
            Ok(model)
        })
    }

    fn model_progress(&self, id: i64, progress: f64, message: &str) -> Result<()> {
        off_runtime(|| {
            let mut c = self.conn()?;
            c.execute(
                "UPDATE models SET progress = $2, message = $3 WHERE id = $1",
                &[&id, &progress, &message],
            )?;
            Ok(())
        })
    }

    fn finish_model(&self, id: i64, r: &ModelResult) -> Result<()> {
        off_runtime(|| {
            let mut c = self.conn()?;
            c.execute(
                "UPDATE models SET status = $2, message = $3, samples = $4, metrics = $5, \
             artefact = $6, progress = 1, finished = $7 WHERE id = $1",
                &[
                    &id,
                    &r.status,
                    &r.message,
                    &(r.samples.min(i64::MAX as u64) as i64),
                    &r.metrics.to_string(),
                    &r.artefact,
                    &ms(Utc::now()),
                ],
            )?;
            Ok(())
        })
    }

    fn models(&self, name: Option<&str>) -> Result<Vec<ModelRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let rows = c.query(
                &format!(
                    "SELECT {MODEL_COLUMNS} FROM models WHERE $1::text IS NULL OR name = $1 \
                 ORDER BY id DESC"
                ),
                &[&name],
            )?;
            map_rows(rows, rows::model)
        })
    }

    fn model(&self, id: i64, with_artefact: bool) -> Result<Option<ModelRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            // The artefact is read only when asked for: it can be large.
            let artefact = if with_artefact {
                "artefact"
            } else {
                "NULL::bytea"
            };
            let row = c.query_opt(
                &format!("SELECT {MODEL_COLUMNS}, {artefact} FROM models WHERE id = $1"),
                &[&id],
            )?;
            let Some(r) = row else {
                return Ok(None);
            };
            let mut m = rows::model(&r)?;
            m.artefact = r.try_get(17)?;
            Ok(Some(m))
        })
    }

    fn activate_model(&self, id: i64) -> Result<Option<ModelRecord>> {
        off_runtime(|| {
            {
                let mut c = self.conn()?;
                let mut tx = c.transaction()?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MODEL_LOCK])?;
                let found = tx.query_opt(
                    "SELECT name, status FROM models WHERE id = $1 FOR UPDATE",
                    &[&id],
                )?;
                let Some(r) = found else {
                    return Ok(None);
                };
                let name: String = r.try_get(0)?;
                let status: String = r.try_get(1)?;
                if status != "ready" {
                    return Err(StoreError::Conflict(format!(
                        "model {id} is {status}: only a ready model can be activated"
                    )));
                }
                tx.execute(
                    "UPDATE models SET active = FALSE WHERE name = $1 AND active",
                    &[&name],
                )?;
                tx.execute(
                    "UPDATE models SET active = TRUE, activated = $2 WHERE id = $1",
                    &[&id, &ms(Utc::now())],
                )?;
                tx.commit()?;
            }
            self.model(id, true)
        })
    }

    fn deactivate_models(&self, name: &str) -> Result<()> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MODEL_LOCK])?;
            tx.execute(
                "UPDATE models SET active = FALSE WHERE name = $1 AND active",
                &[&name],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn active_model(&self, name: &str) -> Result<Option<ModelRecord>> {
        off_runtime(|| {
            let id: Option<i64> = {
                let mut c = self.conn()?;
                c.query_opt(
                    "SELECT id FROM models WHERE name = $1 AND active ORDER BY id LIMIT 1",
                    &[&name],
                )?
                .map(|r| r.try_get(0))
                .transpose()?
            };
            match id {
                Some(id) => self.model(id, true),
                None => Ok(None),
            }
        })
    }

    fn put_state(&self, key: &str, value: &[u8]) -> Result<()> {
        off_runtime(|| {
            let mut c = self.conn()?;
            c.execute(
                "INSERT INTO state (key, value, updated) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated = EXCLUDED.updated",
                &[&key, &value, &ms(Utc::now())],
            )?;
            Ok(())
        })
    }

    fn get_state(&self, key: &str) -> Result<Option<Vec<u8>>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            Ok(
                c.query_opt("SELECT value FROM state WHERE key = $1", &[&key])?
                    .map(|r| r.try_get(0))
                    .transpose()?,
            )
        })
    }

    fn try_lease(&self, name: &str) -> Result<Option<Box<dyn Lease>>> {
        off_runtime(|| {
            // A session of its own: the advisory lock lives as long as it.
            let mut client = self
                .config
                .connect(NoTls)
                .map_err(|e| StoreError::Unavailable(format!("postgres: {e}")))?;
            let taken: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key_hash(name)])?
                .try_get(0)?;
            if !taken {
                off_runtime(move || drop(client));
                return Ok(None);
            }
            let pid: i32 = client
                .query_one("SELECT pg_backend_pid()", &[])?
                .try_get(0)?;
            let fence = (pid, key_hash(name));
            *self.fence.lock().unwrap_or_else(|e| e.into_inner()) = Some(fence);
            Ok(Some(Box::new(PgLease {
                client: Some(client),
                fence,
                fences: std::sync::Arc::clone(&self.fence),
            }) as Box<dyn Lease>))
        })
    }
}

/// A lease: a session holding an advisory lock.
struct PgLease {
    client: Option<Client>,
    /// What the store's commits check while it is held.
    fence: (i32, i64),
    fences: std::sync::Arc<std::sync::Mutex<Option<(i32, i64)>>>,
}

impl Lease for PgLease {
    fn held(&mut self) -> bool {
        let Some(c) = self.client.as_mut() else {
            return false;
        };
        off_runtime(|| c.simple_query("SELECT 1").is_ok())
    }
}

impl Drop for PgLease {
    fn drop(&mut self) {
        let mut fence = self.fences.lock().unwrap_or_else(|e| e.into_inner());
        if *fence == Some(self.fence) {
            *fence = None;
        }
        drop(fence);
        if let Some(c) = self.client.take() {
            off_runtime(move || drop(c));
        }
    }
}
