//! Third-party identifiers attached to accounts, and the bindings this server made for them at
//! identity servers.

use sqlx::AnyConnection;

use super::{BindingRecord, Conflict, NewThreepid, StoreError, StoreTx, ThreepidRecord};

/// The identifiers attached to a user, ordered by medium and address.
#[tracing::instrument(skip_all, name = "db.user_threepids")]
pub(super) async fn user_threepids(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Vec<ThreepidRecord>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT medium, address, validated_at_ms, added_at_ms FROM user_threepids \
         WHERE user_id = $1 ORDER BY medium, address",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?)
}

/// The user an identifier is attached to.
#[tracing::instrument(skip_all, name = "db.threepid_owner")]
pub(super) async fn threepid_owner(
    conn: &mut AnyConnection,
    medium: &str,
    address: &str,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT user_id FROM user_threepids WHERE medium = $1 AND address = $2")
            .bind(medium)
            .bind(address)
            .fetch_optional(conn)
            .await?,
    )
}

/// The user's bindings at identity servers.
#[tracing::instrument(skip_all, name = "db.bindings")]
pub(super) async fn bindings(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Vec<BindingRecord>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT medium, address, id_server, sid, client_secret, bound_address \
         FROM threepid_bindings WHERE user_id = $1 ORDER BY medium, address, id_server",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?)
}

impl StoreTx {
    /// Attaches an identifier to a user (again attaching it to the same user refreshes its
    /// validation time); owned by another user, it is [`Conflict::ThreepidInUse`].
    #[tracing::instrument(skip_all, name = "db.add_threepid")]
    pub(crate) async fn add_threepid(
        &mut self,
        user_id: &str,
        threepid: NewThreepid,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO user_threepids (medium, address, user_id, validated_at_ms, added_at_ms) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (medium, address) DO UPDATE \
             SET validated_at_ms = excluded.validated_at_ms \
             WHERE user_threepids.user_id = excluded.user_id",
        )
        .bind(&threepid.medium)
        .bind(&threepid.address)
        .bind(user_id)
        .bind(threepid.validated_at_ms)
        .bind(now_ms)
        .execute(self.conn())
        .await?;
        if result.rows_affected() == 0 {
            return Err(Conflict::ThreepidInUse.into());
        }
        Ok(())
    }

    /// Detaches an identifier from a user; `false` if the user did not have it.
    #[tracing::instrument(skip_all, name = "db.remove_threepid")]
    pub(crate) async fn remove_threepid(
        &mut self,
        user_id: &str,
        medium: &str,
        address: &str,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "DELETE FROM user_threepids WHERE user_id = $1 AND medium = $2 AND address = $3",
        )
        .bind(user_id)
        .bind(medium)
        .bind(address)
        .execute(self.conn())
        .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Records a binding made at an identity server (replacing one for the same server).
    #[tracing::instrument(skip_all, name = "db.add_binding")]
    pub(crate) async fn add_binding(
        &mut self,
        user_id: &str,
        binding: BindingRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO threepid_bindings (user_id, medium, address, id_server, sid, \
                 client_secret, bound_address) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (user_id, medium, address, id_server) DO UPDATE \
             SET sid = excluded.sid, client_secret = excluded.client_secret, \
                 bound_address = excluded.bound_address",
        )
        .bind(user_id)
        .bind(binding.medium)
        .bind(binding.address)
        .bind(binding.id_server)
        .bind(binding.sid)
        .bind(binding.client_secret)
        .bind(binding.bound_address)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Forgets a binding; `false` if there was none.
    #[tracing::instrument(skip_all, name = "db.remove_binding")]
    pub(crate) async fn remove_binding(
        &mut self,
        user_id: &str,
        medium: &str,
        address: &str,
        id_server: &str,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "DELETE FROM threepid_bindings \
             WHERE user_id = $1 AND medium = $2 AND address = $3 AND id_server = $4",
        )
        .bind(user_id)
        .bind(medium)
        .bind(address)
        .bind(id_server)
        .execute(self.conn())
        .await?;
        Ok(result.rows_affected() > 0)
    }
}
