//! [`StoreTx`]: the unit of work. Its domain-shaped methods are defined next to the tables they
//! touch (`accounts.rs`, `sessions.rs`, `devices.rs`, …); this file holds the handle itself.

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
/// Opened by [`Store::begin`](super::Store::begin).
pub struct StoreTx {
    tx: Transaction<'static, Any>,
    pub(super) dialect: Dialect,
}

impl std::fmt::Debug for StoreTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreTx")
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

impl StoreTx {
    pub(super) fn new(tx: Transaction<'static, Any>, dialect: Dialect) -> Self {
        Self { tx, dialect }
    }

    /// Makes everything written in this unit of work visible, atomically.
    #[tracing::instrument(skip_all, name = "db.commit")]
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }

    /// The transaction's connection, to run statements on.
    pub(super) fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}
