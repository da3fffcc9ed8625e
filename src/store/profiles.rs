//! Profile fields (JSON values by field name) and accepted terms.

use serde_json::{Map, Value};
use sqlx::AnyConnection;

use super::dialect::DbBool;
use super::{ProfileWrite, StoreError, StoreTx};

/// A `profile_fields` row, without its user.
#[derive(sqlx::FromRow)]
struct ProfileFieldRow {
    field: String,
    value: String,
}

/// The fields as a JSON object; a value that is not JSON (never written so) is skipped.
fn profile_from_rows(rows: Vec<ProfileFieldRow>) -> Map<String, Value> {
    rows.into_iter()
        .filter_map(|row| Some((row.field, serde_json::from_str(&row.value).ok()?)))
        .collect()
}

/// The profile fields of an active user; `None` if there is no such active user.
#[tracing::instrument(skip_all, name = "db.profile")]
pub(super) async fn profile(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Option<Map<String, Value>>, StoreError> {
    let active: DbBool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM users WHERE user_id = $1 AND deactivated_at_ms IS NULL)",
    )
    .bind(user_id)
    .fetch_one(&mut *conn)
    .await?;
    if !bool::from(active) {
        return Ok(None);
    }
    let rows =
        sqlx::query_as("SELECT field, value FROM profile_fields WHERE user_id = $1 ORDER BY field")
            .bind(user_id)
            .fetch_all(conn)
            .await?;
    Ok(Some(profile_from_rows(rows)))
}

/// The policy versions the user accepted, ordered by policy and version.
#[cfg(test)]
#[tracing::instrument(skip_all, name = "db.accepted_terms")]
pub(super) async fn accepted_terms(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Vec<super::AcceptedTerms>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT policy, version FROM accepted_terms WHERE user_id = $1 ORDER BY policy, version",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?)
}

impl StoreTx {
    /// Sets (or with `None` deletes) one profile field, refusing when the serialised profile
    /// would exceed `max_profile_bytes`.
    #[tracing::instrument(skip_all, name = "db.set_profile_field")]
    pub(crate) async fn set_profile_field(
        &mut self,
        user_id: &str,
        field: &str,
        value: Option<&Value>,
        max_profile_bytes: usize,
    ) -> Result<ProfileWrite, StoreError> {
        // Locks the user's row (PostgreSQL), serialising writes to one profile.
        let active = sqlx::query(
            "UPDATE users SET is_guest = is_guest \
             WHERE user_id = $1 AND deactivated_at_ms IS NULL",
        )
        .bind(user_id)
        .execute(self.conn())
        .await?;
        if active.rows_affected() == 0 {
            return Ok(ProfileWrite::NoSuchUser);
        }
        let Some(value) = value else {
            sqlx::query("DELETE FROM profile_fields WHERE user_id = $1 AND field = $2")
                .bind(user_id)
                .bind(field)
                .execute(self.conn())
                .await?;
            return Ok(ProfileWrite::Saved);
        };
        let others = sqlx::query_as(
            "SELECT field, value FROM profile_fields WHERE user_id = $1 AND field <> $2",
        )
        .bind(user_id)
        .bind(field)
        .fetch_all(self.conn())
        .await?;
        let mut profile = profile_from_rows(others);
        profile.insert(field.to_owned(), value.clone());
        if Value::Object(profile).to_string().len() > max_profile_bytes {
            return Ok(ProfileWrite::TooLarge);
        }
        sqlx::query(
            "INSERT INTO profile_fields (user_id, field, value) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, field) DO UPDATE SET value = excluded.value",
        )
        .bind(user_id)
        .bind(field)
        .bind(value.to_string())
        .execute(self.conn())
        .await?;
        Ok(ProfileWrite::Saved)
    }

    /// Deletes every profile field of a user.
    #[tracing::instrument(skip_all, name = "db.erase_profile")]
    pub(crate) async fn erase_profile(&mut self, user_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM profile_fields WHERE user_id = $1")
            .bind(user_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}
