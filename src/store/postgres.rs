//! [`Store`] on PostgreSQL.

use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use super::{
    DeviceRecord, LastSeen, NewAccount, NewLogin, StoreError, TokenOwner, TokenRotation,
    UiaSessionRecord, UserRecord, UserRow, conflict_on_unique, user_from_row,
};

/// The [`Store`] implementation on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://…`) and applies the embedded migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        // A database that can't be reached at start-up should fail fast with a clear error,
        // not after sqlx's default 30 s of retries.
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    /// The connection pool, for closing it or for health checks.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Starts a read-committed transaction; statements that must serialise take row locks.
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }
}

crate::impl_core_store!(
    PgStore,
    PgConnection,
    distinct_from: "IS DISTINCT FROM",
    greatest: "GREATEST",
    // The row lock keeps a concurrent take from deleting the session under the stage insert.
    key_share: " FOR KEY SHARE",
    // Byte order, as in SQLite, whatever the database's default collation.
    byte_order: " COLLATE \"C\"",
    completion_order: "completed_seq",
    // One snapshot for a session and its stages.
    read_snapshot: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
);
crate::impl_threepid_store!(PgStore);
crate::impl_lifecycle_store!(PgStore, PgConnection);
