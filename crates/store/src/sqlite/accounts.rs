//! Users and API keys.

use super::*;

impl AccountStore for SqliteStore {
    fn create_user(&self, username: &str, password_hash: &str, role: &str) -> Result<UserRecord> {
        let conn = self.write();
        let now = ms(Utc::now());
        // The secret only has to differ from every other user's (tokens are signed with the
        // server's key); SQLite's randomblob draws from the operating system's randomness.
        let n = conn.execute(
            "INSERT OR IGNORE INTO users (username, password_hash, role, created, token_secret) \
             VALUES (?1, ?2, ?3, ?4, lower(hex(randomblob(16))))",
            params![username, password_hash, role, now],
        )?;
        if n == 0 {
            return Err(StoreError::Conflict(format!(
                "a user named {username} already exists"
            )));
        }
        let id = conn.last_insert_rowid();
        Ok(conn.query_row(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
            params![id],
            user_row,
        )?)
    }

    fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?1"),
                params![username],
                user_row,
            )
            .optional()?)
    }

    fn user(&self, id: i64) -> Result<Option<UserRecord>> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                params![id],
                user_row,
            )
            .optional()?)
    }

    fn users(&self) -> Result<Vec<UserRecord>> {
        let conn = self.read();
        let mut stmt = conn.prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))?;
        let rows = stmt.query_map([], user_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn count_users(&self) -> Result<u64> {
        let conn = self.read();
        Ok(conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get::<_, i64>(0))? as u64)
    }

    fn update_user(
        &self,
        id: i64,
        role: Option<&str>,
        password_hash: Option<&str>,
        disabled: Option<bool>,
    ) -> Result<Option<UserRecord>> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        if let Some(r) = role {
            tx.execute("UPDATE users SET role = ?2 WHERE id = ?1", params![id, r])?;
        }
        if let Some(h) = password_hash {
            tx.execute(
                "UPDATE users SET password_hash = ?2 WHERE id = ?1",
                params![id, h],
            )?;
        }
        if let Some(d) = disabled {
            tx.execute(
                "UPDATE users SET disabled = ?2 WHERE id = ?1",
                params![id, d],
            )?;
        }
        tx.execute(
            "UPDATE users SET token_version = token_version + 1 WHERE id = ?1",
            params![id],
        )?;
        let user = tx
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                params![id],
                user_row,
            )
            .optional()?;
        tx.commit()?;
        Ok(user)
    }

    fn bump_token_version(&self, id: i64) -> Result<()> {
        let conn = self.write();
        conn.execute(
            "UPDATE users SET token_version = token_version + 1 WHERE id = ?1",
            params![id],
        )?;
        Ok(())
    }

    fn delete_user(&self, id: i64) -> Result<bool> {
        let conn = self.write();
        Ok(conn.execute("DELETE FROM users WHERE id = ?1", params![id])? > 0)
    }

    fn create_api_key(
        &self,
        name: &str,
        prefix: &str,
        key_hash: &str,
        role: &str,
        created_by: &str,
    ) -> Result<ApiKeyRecord> {
        let conn = self.write();
        let now = ms(Utc::now());
        conn.execute(
            "INSERT INTO api_keys (name, prefix, key_hash, role, created_by, created) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![name, prefix, key_hash, role, created_by, now],
        )?;
        Ok(ApiKeyRecord {
            id: conn.last_insert_rowid(),
            name: name.to_string(),
            prefix: prefix.to_string(),
            key_hash: key_hash.to_string(),
            role: role.to_string(),
            created_by: created_by.to_string(),
            created: time(now),
            last_used: None,
            revoked: false,
        })
    }

    fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1"),
                params![key_hash],
                key_row,
            )
            .optional()?)
    }

    fn api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        let conn = self.read();
        let mut stmt = conn.prepare(&format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id"))?;
        let rows = stmt.query_map([], key_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn revoke_api_key(&self, id: i64) -> Result<bool> {
        let conn = self.write();
        Ok(conn.execute(
            "UPDATE api_keys SET revoked = 1 WHERE id = ?1 AND revoked = 0",
            params![id],
        )? > 0)
    }

    fn touch_api_key(&self, id: i64, when: DateTime<Utc>) -> Result<()> {
        let conn = self.write();
        conn.execute(
            "UPDATE api_keys SET last_used = ?2 WHERE id = ?1",
            params![id, ms(when)],
        )?;
        Ok(())
    }
}
