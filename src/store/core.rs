//! The [`Store`](super::Store) methods both backends share: the SQL is the same on SQLite and
//! PostgreSQL except for a few dialect fragments, which each backend passes in, so it is
//! written once, in [`impl_core_store!`](crate::impl_core_store).

/// Implements [`Store`](crate::store::Store) for a store type with a `pool` field and a
/// `begin_write` method, and defines its `open_device_session`, `uia_progress` and `set_uia_value_in` helpers
/// for its connection type. The dialect fragments:
/// - `distinct_from`: null-safe inequality (`IS NOT`, `IS DISTINCT FROM`);
/// - `greatest`: the two-argument maximum (`MAX`, `GREATEST`);
/// - `key_share`: the row lock a stage insert takes on its session (PostgreSQL, so a concurrent
///   take cannot delete it underneath);
/// - `byte_order`: the collation that orders device IDs bytewise;
/// - `completion_order`: the column that orders completed stages by insertion;
/// - `read_snapshot`: the statement that opens a consistent read of a session and its stages.
#[macro_export]
macro_rules! impl_core_store {
    (
        $store:ty,
        $conn:ty,
        distinct_from: $distinct_from:literal,
        greatest: $greatest:literal,
        key_share: $key_share:literal,
        byte_order: $byte_order:literal,
        completion_order: $completion_order:literal,
        read_snapshot: $read_snapshot:literal $(,)?
    ) => {
        /// Creates or refreshes the device of `login` and replaces its tokens with the new one.
        async fn open_device_session(
            conn: &mut $conn,
            user_id: &str,
            login: NewLogin,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO devices \
                     (user_id, device_id, display_name, created_at_ms, last_seen_ts, last_seen_ip) \
                 VALUES ($1, $2, $3, $4, $4, $5) \
                 ON CONFLICT (user_id, device_id) DO UPDATE SET \
                     last_seen_ts = excluded.last_seen_ts, \
                     last_seen_ip = COALESCE(excluded.last_seen_ip, devices.last_seen_ip)",
            )
            .bind(user_id)
            .bind(&login.device_id)
            .bind(login.display_name)
            .bind(login.now_ms)
            .bind(login.ip)
            .execute(&mut *conn)
            .await?;

            sqlx::query("DELETE FROM access_tokens WHERE user_id = $1 AND device_id = $2")
                .bind(user_id)
                .bind(&login.device_id)
                .execute(&mut *conn)
                .await?;

            sqlx::query(
                "INSERT INTO access_tokens \
                     (token_hash, user_id, device_id, created_at_ms, expires_at_ms, refresh_token_hash) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(login.access_token_hash)
            .bind(user_id)
            .bind(login.device_id)
            .bind(login.now_ms)
            .bind(login.expires_at_ms)
            .bind(login.refresh_token_hash)
            .execute(&mut *conn)
            .await
            .map_err(conflict_on_unique(
                "access or refresh token hash already in use",
            ))?;
            Ok(())
        }

        /// Where a UIA session stands: its completed stages, in completion order, and its values.
        async fn uia_progress(
            conn: &mut $conn,
            session_hash: &str,
        ) -> Result<$crate::store::UiaProgressRecord, StoreError> {
            let completed = sqlx::query_scalar(
                concat!(
                    "SELECT stage FROM uia_completed_stages WHERE session_hash = $1 ORDER BY ",
                    $completion_order
                ),
            )
            .bind(session_hash)
            .fetch_all(&mut *conn)
            .await?;
            let values: Vec<(String, String)> = sqlx::query_as(
                "SELECT name, value FROM uia_session_values WHERE session_hash = $1",
            )
            .bind(session_hash)
            .fetch_all(&mut *conn)
            .await?;
            Ok($crate::store::UiaProgressRecord {
                completed,
                values: values.into_iter().collect(),
            })
        }

        /// Sets one named value of a UIA session inside the caller's transaction; `false` if the
        /// session does not exist.
        async fn set_uia_value_in(
            conn: &mut $conn,
            session_hash: &str,
            name: &str,
            value: &str,
        ) -> Result<bool, StoreError> {
            let result = sqlx::query(
                concat!(
                    "INSERT INTO uia_session_values (session_hash, name, value) \
                     SELECT session_hash, $2, $3 FROM uia_sessions WHERE session_hash = $1",
                    $key_share,
                    " ON CONFLICT (session_hash, name) DO UPDATE SET value = excluded.value"
                ),
            )
            .bind(session_hash)
            .bind(name)
            .bind(value)
            .execute(conn)
            .await?;
            Ok(result.rows_affected() > 0)
        }

        #[async_trait::async_trait]
                impl $crate::store::Store for $store {
            async fn create_account(&self, account: NewAccount) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO users (user_id, localpart, password_hash, is_guest, created_at_ms) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&account.user_id)
                .bind(account.localpart)
                .bind(account.password_hash)
                .bind(account.is_guest)
                .bind(account.created_at_ms)
                .execute(&mut *tx)
                .await
                .map_err(conflict_on_unique("user ID or localpart already taken"))?;
                record_registration_extras(
                    &mut tx,
                    &account.user_id,
                    account.created_at_ms,
                    &account.extras,
                )
                .await?;
                if let Some(login) = account.login {
                    open_device_session(&mut tx, &account.user_id, login).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn localpart_exists(&self, localpart: &str) -> Result<bool, StoreError> {
                Ok(
                    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE localpart = $1)")
                        .bind(localpart)
                        .fetch_one(&self.pool)
                        .await?,
                )
            }

            async fn find_user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
                let row: Option<UserRow> = sqlx::query_as(
                    "SELECT user_id, localpart, password_hash, is_guest, created_at_ms, \
                            deactivated_at_ms, locked_at_ms IS NOT NULL, suspended_at_ms IS NOT NULL, \
                            is_admin \
                     FROM users WHERE user_id = $1",
                )
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(user_from_row))
            }

            async fn set_password_hash(
                &self,
                user_id: &str,
                password_hash: &str,
            ) -> Result<bool, StoreError> {
                let result = sqlx::query("UPDATE users SET password_hash = $1 WHERE user_id = $2")
                    .bind(password_hash)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?;
                Ok(result.rows_affected() > 0)
            }

            async fn deactivate_user(
                &self,
                user_id: &str,
                now_ms: i64,
                erase: bool,
            ) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                let updated = sqlx::query(
                    "UPDATE users SET deactivated_at_ms = $1 \
                     WHERE user_id = $2 AND deactivated_at_ms IS NULL",
                )
                .bind(now_ms)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
                if updated.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query("DELETE FROM devices WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                if erase {
                    sqlx::query("DELETE FROM profile_fields WHERE user_id = $1")
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn start_login(&self, user_id: &str, login: NewLogin) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                open_device_session(&mut tx, user_id, login).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn find_token_owner(
                &self,
                access_token_hash: &str,
            ) -> Result<Option<TokenOwner>, StoreError> {
                let row: Option<(String, String, bool, Option<i64>, bool, bool, bool)> = sqlx::query_as(
                    "SELECT t.user_id, t.device_id, u.is_guest, t.expires_at_ms, \
                            t.previous_refresh_hash IS NOT NULL, u.locked_at_ms IS NOT NULL, \
                            u.suspended_at_ms IS NOT NULL \
                     FROM access_tokens t JOIN users u ON u.user_id = t.user_id \
                     WHERE t.token_hash = $1",
                )
                .bind(access_token_hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(
                    |(user_id, device_id, is_guest, expires_at_ms, refresh_pending, locked, suspended)| {
                        TokenOwner {
                            user_id,
                            device_id,
                            is_guest,
                            expires_at_ms,
                            refresh_pending,
                            locked,
                            suspended,
                        }
                    },
                ))
            }

            async fn rotate_refresh_token(
                &self,
                presented_refresh_hash: &str,
                rotation: TokenRotation,
            ) -> Result<$crate::store::RefreshOutcome, StoreError> {
                use $crate::store::RefreshOutcome;
                let mut tx = self.begin_write().await?;
                let session: Option<(String, String, String, bool)> = sqlx::query_as(
                    "SELECT t.token_hash, t.user_id, t.device_id, u.locked_at_ms IS NOT NULL \
                     FROM access_tokens t JOIN users u ON u.user_id = t.user_id \
                     WHERE t.refresh_token_hash = $1 OR t.previous_refresh_hash = $1",
                )
                .bind(presented_refresh_hash)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((old_token_hash, user_id, device_id, locked)) = session else {
                    return Ok(RefreshOutcome::Unknown);
                };
                if locked {
                    // Nothing rotates: the session stays as it was for when the lock is lifted.
                    return Ok(RefreshOutcome::Locked);
                }
                let deleted = sqlx::query("DELETE FROM access_tokens WHERE token_hash = $1")
                    .bind(&old_token_hash)
                    .execute(&mut *tx)
                    .await?;
                if deleted.rows_affected() != 1 {
                    return Ok(RefreshOutcome::Unknown);
                }
                sqlx::query(
                    "INSERT INTO access_tokens (token_hash, user_id, device_id, created_at_ms, \
                         expires_at_ms, refresh_token_hash, previous_refresh_hash) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(rotation.access_token_hash)
                .bind(&user_id)
                .bind(&device_id)
                .bind(rotation.now_ms)
                .bind(rotation.expires_at_ms)
                .bind(rotation.refresh_token_hash)
                .bind(rotation.keep_previous.then_some(presented_refresh_hash))
                .execute(&mut *tx)
                .await
                .map_err(conflict_on_unique(
                    "access or refresh token hash already in use",
                ))?;
                tx.commit().await?;
                Ok(RefreshOutcome::Rotated { user_id, device_id })
            }

            async fn settle_refresh(&self, access_token_hash: &str) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE access_tokens SET previous_refresh_hash = NULL \
                     WHERE token_hash = $1 AND previous_refresh_hash IS NOT NULL",
                )
                .bind(access_token_hash)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn delete_device(&self, user_id: &str, device_id: &str) -> Result<bool, StoreError> {
                let result = sqlx::query("DELETE FROM devices WHERE user_id = $1 AND device_id = $2")
                    .bind(user_id)
                    .bind(device_id)
                    .execute(&self.pool)
                    .await?;
                Ok(result.rows_affected() > 0)
            }

            async fn delete_all_devices(
                &self,
                user_id: &str,
                keep_device_id: Option<&str>,
            ) -> Result<u64, StoreError> {
                let result = sqlx::query(concat!(
                    "DELETE FROM devices WHERE user_id = $1 AND device_id ",
                    $distinct_from,
                    " $2"
                ))
                    .bind(user_id)
                    .bind(keep_device_id)
                    .execute(&self.pool)
                    .await?;
                Ok(result.rows_affected())
            }

            async fn rename_device(
                &self,
                user_id: &str,
                device_id: &str,
                display_name: Option<&str>,
            ) -> Result<bool, StoreError> {
                let result = sqlx::query(
                    "UPDATE devices SET display_name = $3 WHERE user_id = $1 AND device_id = $2",
                )
                .bind(user_id)
                .bind(device_id)
                .bind(display_name)
                .execute(&self.pool)
                .await?;
                Ok(result.rows_affected() > 0)
            }

            async fn update_last_seen(&self, updates: &[LastSeen]) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                for seen in updates {
                    sqlx::query(
                        "UPDATE devices SET last_seen_ts = $3, \
                             last_seen_ip = COALESCE($4, last_seen_ip) \
                         WHERE user_id = $1 AND device_id = $2 \
                             AND (last_seen_ts IS NULL OR last_seen_ts <= $3)",
                    )
                    .bind(&seen.user_id)
                    .bind(&seen.device_id)
                    .bind(seen.ts)
                    .bind(&seen.ip)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_devices(&self, user_id: &str) -> Result<Vec<DeviceRecord>, StoreError> {
                let rows: Vec<(String, String, Option<String>, Option<i64>, Option<String>)> =
                    sqlx::query_as(
                        concat!(
                            "SELECT user_id, device_id, display_name, last_seen_ts, last_seen_ip \
                             FROM devices WHERE user_id = $1 ORDER BY device_id",
                            $byte_order
                        ),
                    )
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(
                        |(user_id, device_id, display_name, last_seen_ts, last_seen_ip)| DeviceRecord {
                            user_id,
                            device_id,
                            display_name,
                            last_seen_ts,
                            last_seen_ip,
                        },
                    )
                    .collect())
            }

            async fn insert_uia_session(&self, session: UiaSessionRecord) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO uia_sessions \
                         (session_hash, action, fingerprint, user_id, created_at_ms, expires_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(session.session_hash)
                .bind(session.action)
                .bind(session.fingerprint)
                .bind(session.user_id)
                .bind(session.created_at_ms)
                .bind(session.expires_at_ms)
                .execute(&self.pool)
                .await
                .map_err(conflict_on_unique("UIA session already exists"))?;
                Ok(())
            }

            async fn find_uia_session(
                &self,
                session_hash: &str,
            ) -> Result<Option<UiaSessionRecord>, StoreError> {
                let mut tx = self.pool.begin_with($read_snapshot).await?;
                let row: Option<(String, String, String, Option<String>, i64, i64)> = sqlx::query_as(
                    "SELECT session_hash, action, fingerprint, user_id, created_at_ms, expires_at_ms \
                     FROM uia_sessions WHERE session_hash = $1",
                )
                .bind(session_hash)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((session_hash, action, fingerprint, user_id, created_at_ms, expires_at_ms)) =
                    row
                else {
                    return Ok(None);
                };
                let progress = uia_progress(&mut tx, &session_hash).await?;
                tx.commit().await?;
                Ok(Some(UiaSessionRecord {
                    session_hash,
                    action,
                    fingerprint,
                    user_id,
                    values: progress.values,
                    created_at_ms,
                    expires_at_ms,
                    completed: progress.completed,
                }))
            }

            async fn complete_uia_stage(
                &self,
                session_hash: &str,
                stage: &str,
                record: Option<&str>,
            ) -> Result<$crate::store::UiaProgressRecord, StoreError> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    concat!(
                        "INSERT INTO uia_completed_stages (session_hash, stage) \
                         SELECT session_hash, $2 FROM uia_sessions WHERE session_hash = $1",
                        $key_share,
                        " ON CONFLICT DO NOTHING"
                    ),
                )
                .bind(session_hash)
                .bind(stage)
                .execute(&mut *tx)
                .await?;
                if let Some(record) = record {
                    set_uia_value_in(&mut tx, session_hash, stage, record).await?;
                }
                let progress = uia_progress(&mut tx, session_hash).await?;
                tx.commit().await?;
                Ok(progress)
            }

            async fn set_uia_value(
                &self,
                session_hash: &str,
                name: &str,
                value: &str,
            ) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                let set = set_uia_value_in(&mut tx, session_hash, name, value).await?;
                tx.commit().await?;
                Ok(set)
            }

            async fn take_uia_session(&self, session_hash: &str) -> Result<bool, StoreError> {
                let result = sqlx::query("DELETE FROM uia_sessions WHERE session_hash = $1")
                    .bind(session_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(result.rows_affected() > 0)
            }

            async fn take_rate_limit(
                &self,
                key: &str,
                now_ms: i64,
                interval_ms: i64,
                burst: i64,
            ) -> Result<Option<i64>, StoreError> {
                // Allowed when the new arrival time stays within `burst` intervals of now; the
                // conditional upsert makes check and update one atomic statement.
                let allowed: Option<i64> = sqlx::query_scalar(
                    concat!(
                        "INSERT INTO rate_limits (key, tat_ms) VALUES ($1, $2 + $3) \
                         ON CONFLICT (key) DO UPDATE SET tat_ms = ",
                        $greatest,
                        "(rate_limits.tat_ms, $2) + $3 WHERE ",
                        $greatest,
                        "(rate_limits.tat_ms, $2) + $3 - $2 <= $3 * $4 RETURNING tat_ms"
                    ),
                )
                .bind(key)
                .bind(now_ms)
                .bind(interval_ms)
                .bind(burst)
                .fetch_optional(&self.pool)
                .await?;
                if allowed.is_some() {
                    return Ok(None);
                }
                self.peek_rate_limit(key, now_ms, interval_ms, burst)
                    .await
                    .map(|wait| wait.or(Some(1)))
            }

            async fn peek_rate_limit(
                &self,
                key: &str,
                now_ms: i64,
                interval_ms: i64,
                burst: i64,
            ) -> Result<Option<i64>, StoreError> {
                let tat_ms: Option<i64> =
                    sqlx::query_scalar("SELECT tat_ms FROM rate_limits WHERE key = $1")
                        .bind(key)
                        .fetch_optional(&self.pool)
                        .await?;
                let wait = tat_ms.map_or(0, |tat| {
                    tat.max(now_ms) + interval_ms - now_ms - interval_ms * burst
                });
                Ok((wait > 0).then_some(wait))
            }

            async fn delete_idle_rate_limits(&self, now_ms: i64) -> Result<u64, StoreError> {
                let result = sqlx::query("DELETE FROM rate_limits WHERE tat_ms < $1")
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?;
                Ok(result.rows_affected())
            }

            async fn delete_expired_uia_sessions(&self, now_ms: i64) -> Result<u64, StoreError> {
                let result = sqlx::query("DELETE FROM uia_sessions WHERE expires_at_ms < $1")
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?;
                Ok(result.rows_affected())
            }
        }
    };
}
