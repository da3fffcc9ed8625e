//! [`Store`] on a SQLite database file.
//!
//! Write transactions start with `BEGIN IMMEDIATE`, so they take the database write lock up front
//! and concurrent writers queue on the busy timeout instead of failing with "database is locked"
//! when a read lock cannot be upgraded.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use super::{
    DeviceRecord, LastSeen, NewAccount, NewLogin, StoreError, TokenOwner, TokenRotation,
    UiaSessionRecord, UserRecord, UserRow, conflict_on_unique, user_from_row,
};

/// How long a statement waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The [`Store`] implementation on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens the database at `url` (`sqlite:path`, `sqlite://path` or a bare file path), creating
    /// the file and its directory if missing, and applies the embedded migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url)?
        } else {
            SqliteConnectOptions::new().filename(url)
        }
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT)
        .synchronous(SqliteSynchronous::Normal);

        if let Some(dir) = options
            .get_filename()
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
        }

        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Starts a transaction that holds the write lock from its first statement.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

crate::impl_core_store!(
    SqliteStore,
    SqliteConnection,
    distinct_from: "IS NOT",
    greatest: "MAX",
    key_share: "",
    byte_order: "",
    completion_order: "rowid",
    read_snapshot: "BEGIN",
);
crate::impl_threepid_store!(SqliteStore);
crate::impl_lifecycle_store!(SqliteStore, SqliteConnection);
