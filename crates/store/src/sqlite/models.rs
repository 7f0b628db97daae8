//! The model registry and small named state (baselines, disabled rules, configured sinks).

use super::*;

impl ModelStore for SqliteStore {
    fn create_model(&self, m: &NewModel) -> Result<ModelRecord> {
        let id = {
            let mut conn = self.write();
            let tx = conn.transaction()?;
            let version: i64 = tx.query_row(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM models WHERE name = ?1",
                params![m.name],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO models (name, version, schema, status, created, trained_by, window_from, \
                 window_to, params) VALUES (?1, ?2, ?3, 'training', ?4, ?5, ?6, ?7, ?8)",
                params![
                    m.name,
                    version,
                    m.schema as i64,
                    ms(Utc::now()),
                    m.trained_by,
                    m.window_from.map(ms),
                    m.window_to.map(ms),
                    m.params.to_string(),
                ],
            )?;
            let id = tx.last_insert_rowid();
            tx.commit()?;
            id
        };
        self.model(id, false)?
            .ok_or_else(|| StoreError::Corrupt("a model vanished as it was created".into()))
    }

    fn model_progress(&self, id: i64, progress: f64, message: &str) -> Result<()> {
        self.write().execute(
            "UPDATE models SET progress = ?2, message = ?3 WHERE id = ?1",
            params![id, progress, message],
        )?;
        Ok(())
    }

    fn finish_model(&self, id: i64, r: &ModelResult) -> Result<()> {
        self.write().execute(
            "UPDATE models SET status = ?2, message = ?3, samples = ?4, metrics = ?5, artefact = ?6, \
             progress = 1, finished = ?7 WHERE id = ?1",
            params![
                id,
                r.status,
                r.message,
                r.samples as i64,
                r.metrics.to_string(),
                r.artefact,
                ms(Utc::now())
            ],
        )?;
        Ok(())
    }

    fn models(&self, name: Option<&str>) -> Result<Vec<ModelRecord>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {MODEL_COLUMNS} FROM models WHERE ?1 IS NULL OR name = ?1 ORDER BY id DESC"
        ))?;
        Ok(stmt
            .query_map(params![name], model_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn model(&self, id: i64, with_artefact: bool) -> Result<Option<ModelRecord>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {MODEL_COLUMNS}, artefact FROM models WHERE id = ?1"
        ))?;
        Ok(stmt
            .query_row(params![id], |r| {
                let mut m = model_row(r)?;
                if with_artefact {
                    m.artefact = r.get(17)?;
                }
                Ok(m)
            })
            .optional()?)
    }

    fn activate_model(&self, id: i64) -> Result<Option<ModelRecord>> {
        {
            let mut conn = self.write();
            let tx = conn.transaction()?;
            let found: Option<(String, String)> = tx
                .query_row(
                    "SELECT name, status FROM models WHERE id = ?1",
                    params![id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((name, status)) = found else {
                return Ok(None);
            };
            if status != "ready" {
                return Err(StoreError::Conflict(format!(
                    "model {id} is {status}: only a ready model can be activated"
                )));
            }
            tx.execute(
                "UPDATE models SET active = 0 WHERE name = ?1",
                params![name],
            )?;
            tx.execute(
                "UPDATE models SET active = 1, activated = ?2 WHERE id = ?1",
                params![id, ms(Utc::now())],
            )?;
            tx.commit()?;
        }
        self.model(id, true)
    }

    fn deactivate_models(&self, name: &str) -> Result<()> {
        self.write().execute(
            "UPDATE models SET active = 0 WHERE name = ?1",
            params![name],
        )?;
        Ok(())
    }

    fn active_model(&self, name: &str) -> Result<Option<ModelRecord>> {
        let id: Option<i64> = self
            .read()
            .query_row(
                "SELECT id FROM models WHERE name = ?1 AND active = 1",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        match id {
            Some(id) => self.model(id, true),
            None => Ok(None),
        }
    }

    fn put_state(&self, key: &str, value: &[u8]) -> Result<()> {
        self.write().execute(
            "INSERT OR REPLACE INTO state (key, value, updated) VALUES (?1, ?2, ?3)",
            params![key, value, ms(Utc::now())],
        )?;
        Ok(())
    }

    fn get_state(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .read()
            .query_row(
                "SELECT value FROM state WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn try_lease(&self, _name: &str) -> Result<Option<Box<dyn Lease>>> {
        // One process owns the file: it holds every lease.
        Ok(Some(Box::new(OwnFile)))
    }
}

/// The SQLite store's leases: its process is the only one.
struct OwnFile;

impl Lease for OwnFile {
    fn held(&mut self) -> bool {
        true
    }
}
