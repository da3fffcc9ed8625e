//! Accounts: creation (with what a registration records beside the row), lookups, password,
//! deactivation, guest upgrade, the operator's restrictions and the admin role.

use sqlx::AnyConnection;

use super::dialect::DbBool;
use super::{
    Conflict, GuestUpgrade, NewAccount, RegistrationExtras, Restriction, StoreError, StoreTx,
    UserRecord, conflict_on_unique,
};

/// Looks an account up by full user ID.
///
/// `BOOLEAN` columns are read through a `CAST`: `sqlx::Any` cannot hand over a SQLite column
/// declared `BOOLEAN` at all (it refuses the declared type before looking at the value), while
/// an expression has no declared type. See [`DbBool`].
#[tracing::instrument(skip_all, name = "db.find_user")]
pub(super) async fn find_user(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Option<UserRecord>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT user_id, localpart, password_hash, CAST(is_guest AS INTEGER) AS is_guest, \
             created_at_ms, deactivated_at_ms, locked_at_ms IS NOT NULL AS locked, \
             suspended_at_ms IS NOT NULL AS suspended, CAST(is_admin AS INTEGER) AS is_admin \
         FROM users WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(conn)
    .await?)
}

/// Whether an account (active or deactivated) with this localpart exists.
#[tracing::instrument(skip_all, name = "db.localpart_exists")]
pub(super) async fn localpart_exists(
    conn: &mut AnyConnection,
    localpart: &str,
) -> Result<bool, StoreError> {
    let exists: DbBool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE localpart = $1)")
            .bind(localpart)
            .fetch_one(conn)
            .await?;
    Ok(exists.into())
}

impl StoreTx {
    /// Creates the user, records its registration extras and, if given, opens its first
    /// device session. A taken localpart (even of a deactivated account) is
    /// [`Conflict::UserIdTaken`]; an address of the extras owned by another account is
    /// [`Conflict::ThreepidInUse`].
    #[tracing::instrument(skip_all, name = "db.create_account")]
    pub(crate) async fn create_account(&mut self, account: NewAccount) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (user_id, localpart, password_hash, is_guest, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&account.user_id)
        .bind(account.localpart)
        .bind(account.password_hash)
        .bind(account.is_guest)
        .bind(account.created_at_ms)
        .execute(self.conn())
        .await
        .map_err(conflict_on_unique(Conflict::UserIdTaken))?;
        self.record_registration_extras(&account.user_id, account.created_at_ms, &account.extras)
            .await?;
        if let Some(login) = account.login {
            self.start_login(&account.user_id, login).await?;
        }
        Ok(())
    }

    /// Looks an account up by full user ID, as this unit of work sees it (for a use case that
    /// decides on the account's state before writing).
    pub(crate) async fn find_user(
        &mut self,
        user_id: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        find_user(self.conn(), user_id).await
    }

    /// Writes what a registration records beside the account row: the initial display name,
    /// the accepted terms, the proven addresses ([`Conflict::ThreepidInUse`] if another account
    /// has one) and the use of the registration token (its reservation becomes a completion).
    #[tracing::instrument(skip_all, name = "db.record_registration_extras")]
    pub(crate) async fn record_registration_extras(
        &mut self,
        user_id: &str,
        now_ms: i64,
        extras: &RegistrationExtras,
    ) -> Result<(), StoreError> {
        if let Some(displayname) = &extras.displayname {
            sqlx::query(
                "INSERT INTO profile_fields (user_id, field, value) \
                 VALUES ($1, 'displayname', $2) \
                 ON CONFLICT (user_id, field) DO NOTHING",
            )
            .bind(user_id)
            .bind(serde_json::Value::from(displayname.as_str()).to_string())
            .execute(self.conn())
            .await?;
        }
        for terms in &extras.accepted_terms {
            sqlx::query(
                "INSERT INTO accepted_terms (user_id, policy, version, accepted_at_ms) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(user_id)
            .bind(&terms.policy)
            .bind(&terms.version)
            .bind(now_ms)
            .execute(self.conn())
            .await?;
        }
        for threepid in &extras.threepids {
            sqlx::query(
                "INSERT INTO user_threepids \
                     (medium, address, user_id, validated_at_ms, added_at_ms) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&threepid.medium)
            .bind(&threepid.address)
            .bind(user_id)
            .bind(threepid.validated_at_ms)
            .bind(now_ms)
            .execute(self.conn())
            .await
            .map_err(conflict_on_unique(Conflict::ThreepidInUse))?;
        }
        if let Some((token, session_hash)) = &extras.registration_token {
            self.consume_registration_token(token, session_hash).await?;
        }
        Ok(())
    }

    /// Replaces the password hash; `false` if there is no such user.
    #[tracing::instrument(skip_all, name = "db.set_password_hash")]
    pub(crate) async fn set_password_hash(
        &mut self,
        user_id: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE users SET password_hash = $1 WHERE user_id = $2")
            .bind(password_hash)
            .bind(user_id)
            .execute(self.conn())
            .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Marks the account deactivated at `now_ms` and deletes all its devices, tokens and
    /// attached addresses (and, with `erase`, its profile); the password hash is kept so a
    /// correct password can be told it belongs to a deactivated account. `false` if there is no such active user.
    #[tracing::instrument(skip_all, name = "db.deactivate_user")]
    pub(crate) async fn deactivate_user(
        &mut self,
        user_id: &str,
        now_ms: i64,
        erase: bool,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE users SET deactivated_at_ms = $1 \
             WHERE user_id = $2 AND deactivated_at_ms IS NULL",
        )
        .bind(now_ms)
        .bind(user_id)
        .execute(self.conn())
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(false);
        }
        self.delete_all_devices(user_id, None).await?;
        // The addresses are released, as Synapse does: a closed account no longer blocks them
        // for a new one, nor receives password-reset emails.
        sqlx::query("DELETE FROM user_threepids WHERE user_id = $1")
            .bind(user_id)
            .execute(self.conn())
            .await?;
        if erase {
            self.erase_profile(user_id).await?;
        }
        Ok(true)
    }

    /// Turns an active guest account into a full account with a password, records the
    /// registration extras and, if given, opens the session; `false` if the user is not an
    /// active guest (for example, a concurrent upgrade won).
    #[tracing::instrument(skip_all, name = "db.upgrade_guest")]
    pub(crate) async fn upgrade_guest(
        &mut self,
        upgrade: GuestUpgrade,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE users SET is_guest = FALSE, password_hash = $2 \
             WHERE user_id = $1 AND is_guest AND deactivated_at_ms IS NULL",
        )
        .bind(&upgrade.user_id)
        .bind(&upgrade.password_hash)
        .execute(self.conn())
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(false);
        }
        self.record_registration_extras(&upgrade.user_id, upgrade.now_ms, &upgrade.extras)
            .await?;
        if let Some(login) = upgrade.login {
            self.start_login(&upgrade.user_id, login).await?;
        }
        Ok(true)
    }

    /// Applies (from `now_ms`, keeping an earlier start) or lifts an operator's restriction;
    /// `false` if there is no such user.
    #[tracing::instrument(skip_all, name = "db.set_restriction")]
    pub(crate) async fn set_restriction(
        &mut self,
        user_id: &str,
        restriction: Restriction,
        active: bool,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let column = restriction.column();
        // The column name comes from a closed set of static names.
        let query = format!(
            "UPDATE users SET {column} = CASE WHEN $2 THEN COALESCE({column}, $3) ELSE NULL END \
             WHERE user_id = $1"
        );
        let result = sqlx::query(sqlx::AssertSqlSafe(query))
            .bind(user_id)
            .bind(active)
            .bind(now_ms)
            .execute(self.conn())
            .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Grants or revokes the server-administrator role; `false` if there is no such user.
    #[tracing::instrument(skip_all, name = "db.set_admin")]
    pub(crate) async fn set_admin(
        &mut self,
        user_id: &str,
        admin: bool,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE users SET is_admin = $2 WHERE user_id = $1")
            .bind(user_id)
            .bind(admin)
            .execute(self.conn())
            .await?;
        Ok(result.rows_affected() > 0)
    }
}
