//! Registration tokens (spec "Token-authenticated registration"): operator-issued invitations
//! with an allowance of uses and an optional expiry.

use std::sync::Arc;

use crate::{
    clock::{Clock, Randomness},
    store::{Conflict, RegistrationTokenRecord, Store, StoreError},
};

/// Longest token the spec allows.
const MAX_TOKEN_CHARS: usize = 64;

/// Length of generated tokens.
const GENERATED_TOKEN_CHARS: usize = 16;

/// Why a registration token could not be created.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationTokenError {
    /// The token text breaks the spec's grammar (`[A-Za-z0-9._~-]{1,64}`).
    #[error("a token is 1 to 64 characters from A-Z, a-z, 0-9, '.', '_', '~' and '-'")]
    InvalidToken,
    /// A token with this text exists.
    #[error("this token already exists")]
    Exists,
    /// `uses_allowed` of zero would make a token nobody can use.
    #[error("uses allowed must be at least 1")]
    NoUses,
    /// The expiry is not in the future.
    #[error("the expiry time is not in the future")]
    AlreadyExpired,
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// What the operator asks for when creating a token.
#[derive(Debug, Clone, Default)]
pub struct NewRegistrationToken {
    /// The token text; generated when absent.
    pub token: Option<String>,
    /// How many accounts it may create; `None` = unlimited.
    pub uses_allowed: Option<i64>,
    /// When it stops working, milliseconds since the epoch; `None` = never.
    pub expires_at_ms: Option<i64>,
}

/// The registration-token service over the store.
#[derive(Clone)]
pub struct RegistrationTokens {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Randomness>,
}

/// Whether `token` follows the spec's grammar for registration tokens.
pub fn is_valid_token_text(token: &str) -> bool {
    (1..=MAX_TOKEN_CHARS).contains(&token.len())
        && token
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._~-".contains(&byte))
}

impl RegistrationTokens {
    /// The service over `store`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, rng: Arc<dyn Randomness>) -> Self {
        Self { store, clock, rng }
    }

    /// Creates a token.
    pub async fn create(
        &self,
        request: NewRegistrationToken,
    ) -> Result<RegistrationTokenRecord, RegistrationTokenError> {
        let token = match request.token {
            Some(token) if is_valid_token_text(&token) => token,
            Some(_) => return Err(RegistrationTokenError::InvalidToken),
            None => self.rng.alphanumeric(GENERATED_TOKEN_CHARS),
        };
        if request.uses_allowed.is_some_and(|uses| uses < 1) {
            return Err(RegistrationTokenError::NoUses);
        }
        let now_ms = self.clock.now_ms();
        if request.expires_at_ms.is_some_and(|expiry| expiry <= now_ms) {
            return Err(RegistrationTokenError::AlreadyExpired);
        }
        let record = RegistrationTokenRecord {
            token,
            uses_allowed: request.uses_allowed,
            completed: 0,
            pending: 0,
            expires_at_ms: request.expires_at_ms,
            created_at_ms: now_ms,
        };
        match self.store.create_registration_token(record.clone()).await {
            Ok(()) => Ok(record),
            Err(StoreError::Conflict(Conflict::RegistrationTokenExists)) => {
                Err(RegistrationTokenError::Exists)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Every token with its current use counts.
    pub async fn list(&self) -> Result<Vec<RegistrationTokenRecord>, StoreError> {
        self.store
            .list_registration_tokens(self.clock.now_ms())
            .await
    }

    /// Revokes a token; `false` if there was none. Registrations that already passed the
    /// token stage with it can no longer complete.
    pub async fn revoke(&self, token: &str) -> Result<bool, StoreError> {
        self.store.delete_registration_token(token).await
    }

    /// Whether a registration could use `token` now (the spec's `/validity` check): it exists,
    /// has not expired, and has uses left beyond those completed or reserved.
    pub async fn is_usable(&self, token: &str) -> Result<bool, StoreError> {
        if !is_valid_token_text(token) {
            return Ok(false);
        }
        let now_ms = self.clock.now_ms();
        Ok(self
            .store
            .find_registration_token(token, now_ms)
            .await?
            .is_some_and(|record| {
                record.expires_at_ms.is_none_or(|expiry| expiry > now_ms)
                    && record
                        .uses_allowed
                        .is_none_or(|uses| record.completed + record.pending < uses)
            }))
    }

    /// Reserves one use of `token` for the UIA session `session_hash` until `until_ms`; `false`
    /// when the token is unknown, expired or used up.
    pub async fn reserve(
        &self,
        token: &str,
        session_hash: &str,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        if !is_valid_token_text(token) {
            return Ok(false);
        }
        self.store
            .reserve_registration_token(token, session_hash, self.clock.now_ms(), until_ms)
            .await
    }

    /// Gives back the use reserved by a session whose registration failed.
    pub async fn release(&self, session_hash: &str) -> Result<(), StoreError> {
        self.store.release_registration_token(session_hash).await
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid_token_text;

    #[test]
    fn token_grammar() {
        assert!(is_valid_token_text("fBVFdqVE"));
        assert!(is_valid_token_text("a.b_c~d-e"));
        assert!(is_valid_token_text(&"x".repeat(64)));
        assert!(!is_valid_token_text(""));
        assert!(!is_valid_token_text(&"x".repeat(65)));
        assert!(!is_valid_token_text("with space"));
        assert!(!is_valid_token_text("ünï"));
    }
}
