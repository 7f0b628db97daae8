//! Users and API keys on PostgreSQL.

use super::*;

impl AccountStore for PostgresStore {
    fn create_user(&self, username: &str, password_hash: &str, role: &str) -> Result<UserRecord> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let now = ms(Utc::now());
            // The secret only has to differ from every other user's (tokens are signed with the
            // server's key): 32 hex digits, as SQLite's, from gen_random_uuid (the server's strong
            // random source).
            let row = c.query_opt(
                &format!(
                    "INSERT INTO users (username, password_hash, role, created, token_secret) \
                 VALUES ($1, $2, $3, $4, md5(gen_random_uuid()::text || gen_random_uuid()::text)) \
                 ON CONFLICT (username) DO NOTHING RETURNING {USER_COLUMNS}"
                ),
                &[&username, &password_hash, &role, &now],
            )?;
            match row {
                Some(r) => Ok(rows::user(&r)?),
                None => Err(StoreError::Conflict(format!(
                    "a user named {username} already exists"
                ))),
            }
        })
    }

    fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let row = c.query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"),
                &[&username],
            )?;
            Ok(row.as_ref().map(rows::user).transpose()?)
        })
    }

    fn user(&self, id: i64) -> Result<Option<UserRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let row = c.query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
                &[&id],
            )?;
            Ok(row.as_ref().map(rows::user).transpose()?)
        })
    }

    fn users(&self) -> Result<Vec<UserRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let rows = c.query(
                &format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"),
                &[],
            )?;
            map_rows(rows, rows::user)
        })
    }

    fn count_users(&self) -> Result<u64> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let n: i64 = c.query_one("SELECT COUNT(*) FROM users", &[])?.try_get(0)?;
            Ok(n as u64)
        })
    }

    fn update_user(
        &self,
        id: i64,
        role: Option<&str>,
        password_hash: Option<&str>,
        disabled: Option<bool>,
    ) -> Result<Option<UserRecord>> {
        off_runtime(|| {
            // One statement: a field not given keeps its value; any call bumps the token version.
            let mut c = self.conn()?;
            let row = c.query_opt(
                &format!(
                    "UPDATE users SET role = COALESCE($2, role), \
                 password_hash = COALESCE($3, password_hash), \
                 disabled = COALESCE($4, disabled), token_version = token_version + 1 \
                 WHERE id = $1 RETURNING {USER_COLUMNS}"
                ),
                &[&id, &role, &password_hash, &disabled],
            )?;
            Ok(row.as_ref().map(rows::user).transpose()?)
        })
    }

    fn bump_token_version(&self, id: i64) -> Result<()> {
        off_runtime(|| {
            let mut c = self.conn()?;
            c.execute(
                "UPDATE users SET token_version = token_version + 1 WHERE id = $1",
                &[&id],
            )?;
            Ok(())
        })
    }

    fn delete_user(&self, id: i64) -> Result<bool> {
        off_runtime(|| {
            let mut c = self.conn()?;
            Ok(c.execute("DELETE FROM users WHERE id = $1", &[&id])? > 0)
        })
    }

    fn create_api_key(
        &self,
        name: &str,
        prefix: &str,
        key_hash: &str,
        role: &str,
        created_by: &str,
    ) -> Result<ApiKeyRecord> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let now = ms(Utc::now());
            let row = c.query_one(
                &format!(
                    "INSERT INTO api_keys (name, prefix, key_hash, role, created_by, created) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING {KEY_COLUMNS}"
                ),
                &[&name, &prefix, &key_hash, &role, &created_by, &now],
            )?;
            Ok(rows::api_key(&row)?)
        })
    }

    fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let row = c.query_opt(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1"),
                &[&key_hash],
            )?;
            Ok(row.as_ref().map(rows::api_key).transpose()?)
        })
    }

    fn api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        off_runtime(|| {
            let mut c = self.conn()?;
            let rows = c.query(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id"),
                &[],
            )?;
            map_rows(rows, rows::api_key)
        })
    }

    fn revoke_api_key(&self, id: i64) -> Result<bool> {
        off_runtime(|| {
            let mut c = self.conn()?;
            Ok(c.execute(
                "UPDATE api_keys SET revoked = TRUE WHERE id = $1 AND NOT revoked",
                &[&id],
            )? > 0)
        })
    }

    fn touch_api_key(&self, id: i64, when: DateTime<Utc>) -> Result<()> {
        off_runtime(|| {
            let mut c = self.conn()?;
            c.execute(
                "UPDATE api_keys SET last_used = $2 WHERE id = $1",
                &[&id, &ms(when)],
            )?;
            Ok(())
        })
    }
}
