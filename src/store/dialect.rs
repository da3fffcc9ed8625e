//! What differs between SQLite and PostgreSQL: a few SQL fragments, the statements that open
//! transactions, the connection set-up and the migrations. Everything else is the same SQL.

use sqlx::ValueRef;
use sqlx::any::{Any, AnyTypeInfo, AnyTypeInfoKind, AnyValueRef};
use sqlx::decode::Decode;
use sqlx::error::BoxDynError;
use sqlx::migrate::Migrator;
use sqlx::types::Type;

/// The migrations of each backend. The two folders hold the same migrations, differing only in
/// column types (`INTEGER`/`BIGINT`) and in how completed UIA stages are ordered.
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The SQL dialect of the database behind a store, chosen from its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite, on a database file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Dialect {
    /// The dialect of a database URL: `postgres://…` and `postgresql://…` are PostgreSQL;
    /// anything else (`sqlite:…`, `sqlite://…`, a bare file path) is SQLite.
    pub(crate) fn of_url(url: &str) -> Self {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::Postgres
        } else {
            Self::Sqlite
        }
    }

    /// The pool size when the configuration leaves it at 0. SQLite has one writer at a time, so
    /// a few connections suffice; PostgreSQL serves many at once.
    pub(crate) fn default_pool_size(self) -> u32 {
        match self {
            Self::Sqlite => 4,
            Self::Postgres => 16,
        }
    }

    /// Statements run on every new connection, before the pool hands it out.
    ///
    /// SQLite: write-ahead logging (readers never wait for the writer), foreign keys enforced,
    /// a statement waits up to 5 s for another connection's lock before failing, and
    /// `synchronous = NORMAL` (durable with WAL, except for the last commits on power loss).
    pub(crate) fn connection_setup(self) -> &'static [&'static str] {
        match self {
            Self::Sqlite => &[
                "PRAGMA busy_timeout = 5000",
                "PRAGMA journal_mode = WAL",
                "PRAGMA foreign_keys = ON",
                "PRAGMA synchronous = NORMAL",
            ],
            Self::Postgres => &[],
        }
    }

    /// The embedded migrations for this backend.
    pub(crate) fn migrator(self) -> &'static Migrator {
        match self {
            Self::Sqlite => &SQLITE_MIGRATIONS,
            Self::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// The statement that opens a unit of work (a write transaction).
    ///
    /// SQLite: `BEGIN IMMEDIATE` takes the database write lock up front, so concurrent writers
    /// queue on the busy timeout instead of failing with "database is locked" when a read lock
    /// cannot be upgraded. PostgreSQL: the server's default, READ COMMITTED; statements that
    /// must serialise a check-then-write take row locks.
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN IMMEDIATE",
            Self::Postgres => "BEGIN",
        }
    }

    /// The statement that opens a consistent read of several statements (a UIA session and
    /// its stages). SQLite's deferred transaction reads one snapshot already.
    pub(crate) fn begin_read_snapshot(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN",
            Self::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        }
    }

    /// Null-safe inequality.
    pub(crate) fn distinct_from(self) -> &'static str {
        match self {
            Self::Sqlite => "IS NOT",
            Self::Postgres => "IS DISTINCT FROM",
        }
    }

    /// The two-argument maximum.
    pub(crate) fn greatest(self) -> &'static str {
        match self {
            Self::Sqlite => "MAX",
            Self::Postgres => "GREATEST",
        }
    }

    /// The row lock a UIA stage insert takes on its session: on PostgreSQL it keeps a
    /// concurrent take from deleting the session underneath. SQLite's write transactions are
    /// exclusive already.
    pub(crate) fn key_share(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => " FOR KEY SHARE",
        }
    }

    /// The collation that orders text bytewise (SQLite's default), whatever the PostgreSQL
    /// database's default collation.
    pub(crate) fn byte_order(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => " COLLATE \"C\"",
        }
    }

    /// The column that orders a session's completed UIA stages by insertion.
    pub(crate) fn completion_order(self) -> &'static str {
        match self {
            Self::Sqlite => "rowid",
            Self::Postgres => "completed_seq",
        }
    }
}

/// A boolean as `sqlx::Any` hands it over: PostgreSQL sends a boolean, SQLite (which has no
/// boolean type) an integer, for expressions such as `x IS NOT NULL` or `EXISTS (…)`. Row
/// structs decode their `bool` fields through it (`#[sqlx(try_from = "DbBool")]`).
///
/// A SQLite column declared `BOOLEAN` cannot be selected as it is: the Any driver refuses its
/// declared type before looking at the value. Queries read such a column as
/// `CAST(column AS INTEGER)` (an integer on both backends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DbBool(bool);

impl From<DbBool> for bool {
    fn from(value: DbBool) -> Self {
        value.0
    }
}

impl Type<Any> for DbBool {
    fn type_info() -> AnyTypeInfo {
        <bool as Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        ty.kind() == AnyTypeInfoKind::Bool || ty.kind().is_integer()
    }
}

impl<'r> Decode<'r, Any> for DbBool {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        if value.type_info().kind() == AnyTypeInfoKind::Bool {
            <bool as Decode<Any>>::decode(value).map(Self)
        } else {
            <i64 as Decode<Any>>::decode(value).map(|int| Self(int != 0))
        }
    }
}
