//! [`SqlStore`]: the connection pool, set up for SQLite or PostgreSQL, and the transactions it
//! opens.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Any, AnyPool, ConnectOptions, Connection, Transaction};

use super::dialect::Dialect;
use super::{StoreError, StoreTx};
use crate::private_files;

/// How long a PostgreSQL connection request waits before failing: a database that can't be
/// reached should fail fast with a clear error, not after sqlx's default 30 s of retries.
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The [`Store`](super::Store) implementation: a pool of `sqlx::Any` connections and the
/// dialect of the database behind it.
#[derive(Debug, Clone)]
pub(crate) struct SqlStore {
    pub(super) pool: AnyPool,
    pub(super) dialect: Dialect,
}

impl SqlStore {
    /// Opens the database at `url` with a pool of `max_connections`, and applies the embedded
    /// migrations. For SQLite (`sqlite:path`, `sqlite://path` or a bare file path) the file and
    /// its directory are created if missing, private to this user.
    pub(crate) async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::of_url(url);
        let options = match dialect {
            Dialect::Sqlite => sqlite_options(url)?,
            Dialect::Postgres => AnyConnectOptions::from_str(url)?,
        };
        let mut pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            // A connection whose transaction failed can come back still "in a transaction":
            // SQLite rolls back by itself on a full disk, and then the driver's ROLLBACK fails
            // and its count stays up, so every later BEGIN on it would fail until a restart. A
            // PostgreSQL connection broken mid-transaction is likewise useless. Such a
            // connection is closed, never handed out again; the pool opens a fresh one.
            .after_release(|conn, _| {
                Box::pin(async move {
                    if conn.is_in_transaction() {
                        // Runs a rollback still queued for the connection, then judges it; a
                        // connection outside any transaction (the usual case) costs nothing here.
                        conn.ping().await?;
                    }
                    Ok(!conn.is_in_transaction())
                })
            })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    for statement in dialect.connection_setup() {
                        sqlx::raw_sql(*statement).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            });
        if dialect == Dialect::Postgres {
            pool = pool.acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT);
        }
        let pool = pool.connect_with(options).await?;
        dialect.migrator().run(&pool).await?;
        Ok(Self { pool, dialect })
    }

    /// Begins a unit of work (see [`Dialect::begin_write`]).
    #[tracing::instrument(skip_all, name = "db.begin")]
    pub(super) async fn begin_write(&self) -> Result<StoreTx, StoreError> {
        let tx = self.pool.begin_with(self.dialect.begin_write()).await?;
        Ok(StoreTx::transaction(tx, self.dialect))
    }

    /// A handle whose every statement commits on its own, for the one-call methods that write
    /// a single statement: SQLite's write lock is then held only inside that statement, never
    /// while a task waits, so a stalled or slow task cannot keep other writers (other
    /// instances, the command line) waiting on the busy timeout.
    pub(super) async fn autocommit(&self) -> Result<StoreTx, StoreError> {
        Ok(StoreTx::autocommit(self.read().await?, self.dialect))
    }

    /// Begins a read-only transaction that sees one snapshot of the database.
    pub(super) async fn begin_read_snapshot(
        &self,
    ) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(self
            .pool
            .begin_with(self.dialect.begin_read_snapshot())
            .await?)
    }

    /// A pooled connection for reads outside a unit of work.
    pub(super) async fn read(&self) -> Result<PoolConnection<Any>, StoreError> {
        Ok(self.pool.acquire().await?)
    }
}

/// The connect options of a SQLite URL or file path. A missing file is created, mode 0600,
/// before SQLite opens it (SQLite gives its `-wal` and `-shm` files the same mode), and so are
/// its missing directories, mode 0700 ([`private_files`]). The pragmas are set per connection
/// ([`Dialect::connection_setup`]), because `sqlx::Any` connects by URL, which carries no
/// pragmas.
fn sqlite_options(url: &str) -> Result<AnyConnectOptions, StoreError> {
    let options = if url.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(url)?
    } else {
        SqliteConnectOptions::new().filename(url)
    }
    .create_if_missing(true);
    let url = options.to_url_lossy();
    let in_memory = url
        .query_pairs()
        .any(|(key, value)| key == "mode" && value == "memory");

    if !in_memory {
        let file = options.get_filename();
        if let Some(dir) = file.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            private_files::create_dir_all(dir).map_err(sqlx::Error::Io)?;
        }
        private_files::create_file(file).map_err(sqlx::Error::Io)?;
    }
    Ok(AnyConnectOptions::from_url(&url)?)
}
