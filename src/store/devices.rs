//! Devices: listing, renaming, deleting (a device's tokens go with it, by cascade) and
//! last-seen times.

use sqlx::AnyConnection;

use super::dialect::Dialect;
use super::{DeviceRecord, LastSeen, StoreError, StoreTx};

/// All devices of a user, ordered by device ID (bytewise).
#[tracing::instrument(skip_all, name = "db.list_devices")]
pub(super) async fn list_devices(
    conn: &mut AnyConnection,
    dialect: Dialect,
    user_id: &str,
) -> Result<Vec<DeviceRecord>, StoreError> {
    let query = format!(
        "SELECT user_id, device_id, display_name, last_seen_ts, last_seen_ip \
         FROM devices WHERE user_id = $1 ORDER BY device_id{}",
        dialect.byte_order()
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(query))
        .bind(user_id)
        .fetch_all(conn)
        .await?)
}

impl StoreTx {
    /// Deletes a device and every token issued to it; `false` if it did not exist.
    #[tracing::instrument(skip_all, name = "db.delete_device")]
    pub(crate) async fn delete_device(
        &mut self,
        user_id: &str,
        device_id: &str,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM devices WHERE user_id = $1 AND device_id = $2")
            .bind(user_id)
            .bind(device_id)
            .execute(self.conn())
            .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Deletes every device (and their tokens) of a user except `keep_device_id`; returns the
    /// IDs of the devices it deleted (read by the same statement, so none is missed). The
    /// user's login tokens and OpenID tokens are not devices': a use case that ends every
    /// session deletes them too ([`StoreTx::delete_login_tokens_of`],
    /// [`StoreTx::delete_openid_tokens_of`]).
    #[tracing::instrument(skip_all, name = "db.delete_all_devices")]
    pub(crate) async fn delete_all_devices(
        &mut self,
        user_id: &str,
        keep_device_id: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let query = format!(
            "DELETE FROM devices WHERE user_id = $1 AND device_id {} $2 RETURNING device_id",
            self.dialect.distinct_from()
        );
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(query))
            .bind(user_id)
            .bind(keep_device_id)
            .fetch_all(self.conn())
            .await?)
    }

    /// Sets (or with `None` clears) a device's display name; `false` if there is no such device.
    #[tracing::instrument(skip_all, name = "db.rename_device")]
    pub(crate) async fn rename_device(
        &mut self,
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
        .execute(self.conn())
        .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Records when and from where a device was last seen; a time older than the stored one is
    /// ignored, and a device that no longer exists is skipped.
    #[tracing::instrument(skip_all, name = "db.record_last_seen")]
    pub(crate) async fn record_last_seen(&mut self, seen: &LastSeen) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE devices SET last_seen_ts = $3, last_seen_ip = COALESCE($4, last_seen_ip) \
             WHERE user_id = $1 AND device_id = $2 \
                 AND (last_seen_ts IS NULL OR last_seen_ts <= $3)",
        )
        .bind(&seen.user_id)
        .bind(&seen.device_id)
        .bind(seen.ts)
        .bind(&seen.ip)
        .execute(self.conn())
        .await?;
        Ok(())
    }
}
