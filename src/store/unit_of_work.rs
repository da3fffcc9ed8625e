//! [`StoreTx`]: the unit of work. Its domain-shaped methods are defined next to the tables they
//! touch (`accounts.rs`, `sessions.rs`, `devices.rs`, …); this file holds the handle itself.

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Transaction};

use super::StoreError;
use super::dialect::Dialect;

/// A unit of work: one write transaction (`BEGIN IMMEDIATE` on SQLite, READ COMMITTED with row
/// locks on PostgreSQL) with domain-shaped methods. What it writes becomes visible all at once
/// on `StoreTx::commit`; dropping it without committing rolls everything back, also after a
/// method failed.
///
/// A failed statement can leave the transaction unusable (PostgreSQL refuses every further
/// statement), so after an error the unit of work should be dropped, not continued.
///
/// Opened by [`Store::begin`](super::Store::begin). (Inside the store, the one-call methods that
/// write a single statement run the same methods on a connection in autocommit mode, where
/// `commit` has nothing left to do.)
pub struct StoreTx {
    conn: Connection,
    pub(super) dialect: Dialect,
}

/// What a [`StoreTx`] runs its statements on.
enum Connection {
    /// A transaction: a unit of work.
    Transaction(Transaction<'static, Any>),
    /// A pooled connection outside any transaction, where every statement commits on its own.
    /// Only the one-call methods that write a single statement (or statements that need not be
    /// atomic together) use it, so that they hold SQLite's write lock only while SQLite runs
    /// the statement, never across an `await`, as they always have.
    Autocommit(PoolConnection<Any>),
}

impl std::fmt::Debug for StoreTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.conn {
            Connection::Transaction(_) => "transaction",
            Connection::Autocommit(_) => "autocommit",
        };
        f.debug_struct("StoreTx")
            .field("mode", &mode)
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

impl StoreTx {
    /// A unit of work on the transaction `tx`.
    pub(super) fn transaction(tx: Transaction<'static, Any>, dialect: Dialect) -> Self {
        Self {
            conn: Connection::Transaction(tx),
            dialect,
        }
    }

    /// A handle on `conn` whose every statement commits on its own.
    pub(super) fn autocommit(conn: PoolConnection<Any>, dialect: Dialect) -> Self {
        Self {
            conn: Connection::Autocommit(conn),
            dialect,
        }
    }

    /// Makes everything written in this unit of work visible, atomically.
    #[tracing::instrument(skip_all, name = "db.commit")]
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self.conn {
            Connection::Transaction(tx) => tx.commit().await?,
            // Every statement has committed already.
            Connection::Autocommit(_) => {}
        }
        Ok(())
    }

    /// The connection to run statements on.
    pub(super) fn conn(&mut self) -> &mut AnyConnection {
        match &mut self.conn {
            Connection::Transaction(tx) => tx,
            Connection::Autocommit(conn) => conn,
        }
    }
}
