//! Password policy and hashing. Hashing is deliberately slow, so it runs on the blocking thread
//! pool behind a semaphore sized to the cores: a flood of logins queues here instead of
//! occupying the async workers that serve every other request.

use std::sync::Arc;

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier, Version,
    password_hash::SaltString,
};
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::config::PasswordConfig;

/// Longest password accepted, in bytes; longer ones are refused before hashing.
pub const MAX_PASSWORD_BYTES: usize = 512;

/// Why a new password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejected {
    /// Shorter than the configured minimum.
    #[error("password must be at least {0} characters long")]
    TooShort(usize),
    /// Longer than [`MAX_PASSWORD_BYTES`].
    #[error("password must be at most {MAX_PASSWORD_BYTES} bytes long")]
    TooLong,
}

/// Checks a new password against the policy.
pub fn check_policy(password: &str, min_length: usize) -> Result<(), PasswordRejected> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordRejected::TooLong);
    }
    if password.chars().count() < min_length {
        return Err(PasswordRejected::TooShort(min_length));
    }
    Ok(())
}

/// Hashing failed for a reason that is not the password's fault.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes and verifies passwords on a bounded pool.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when the user does not exist so that an
    /// unknown user costs as much time as a wrong password.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    /// A hasher with the configured argon2id parameters and pool size.
    pub fn new(config: &PasswordConfig) -> Result<Self, HashError> {
        let params = Params::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            None,
        )
        .map_err(|err| HashError(err.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let workers = match config.hash_workers {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            n => n,
        };
        let salt = SaltString::generate(&mut OsRng);
        let dummy_hash = argon2
            .hash_password(salt.as_str().as_bytes(), &salt)
            .map_err(|err| HashError(err.to_string()))?
            .to_string();
        Ok(Self {
            argon2,
            permits: Arc::new(Semaphore::new(workers)),
            dummy_hash: dummy_hash.into(),
        })
    }

    /// An argon2id PHC string for `password`, with a fresh salt.
    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        let argon2 = self.argon2.clone();
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2
                .hash_password(password.expose_secret().as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|err| HashError(err.to_string()))
        })
        .await?
    }

    /// Whether `password` matches `stored` (argon2 PHC, or bcrypt imported from Synapse).
    /// With no stored hash the password is checked against a dummy hash and `false` returned,
    /// taking the same time as a real check.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let argon2 = self.argon2.clone();
        let (stored, real) = match stored {
            Some(stored) => (stored, true),
            None => (self.dummy_hash.to_string(), false),
        };
        self.run(move || {
            let candidate = password.expose_secret().as_bytes();
            let matches = if stored.starts_with("$2") {
                bcrypt::verify(candidate, &stored).unwrap_or(false)
            } else {
                PasswordHash::new(&stored)
                    .is_ok_and(|hash| argon2.verify_password(candidate, &hash).is_ok())
            };
            matches && real
        })
        .await
    }

    /// Runs `work` on the blocking pool once a hashing permit is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|err| HashError(err.to_string()))?;
        let started = std::time::Instant::now();
        let result = tokio::task::spawn_blocking(work)
            .await
            .map_err(|err| HashError(err.to_string()));
        metrics::histogram!("vestibule_password_hash_seconds")
            .record(started.elapsed().as_secs_f64());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> PasswordHasher {
        let config = PasswordConfig {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            ..PasswordConfig::default()
        };
        PasswordHasher::new(&config).expect("hasher")
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let hasher = fast();
        let hash = hasher
            .hash("correct horse".to_owned().into())
            .await
            .expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            hasher
                .verify("correct horse".to_owned().into(), Some(hash.clone()))
                .await
                .expect("verify")
        );
        assert!(
            !hasher
                .verify("wrong".to_owned().into(), Some(hash))
                .await
                .expect("verify")
        );
        assert!(
            !hasher
                .verify("anything".to_owned().into(), None)
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn verifies_synapse_bcrypt_hashes() {
        let hash = bcrypt::hash("imported", 4).expect("bcrypt");
        assert!(
            fast()
                .verify("imported".to_owned().into(), Some(hash))
                .await
                .expect("verify")
        );
    }

    #[test]
    fn policy() {
        assert_eq!(check_policy("short", 8), Err(PasswordRejected::TooShort(8)));
        assert_eq!(
            check_policy(&"x".repeat(513), 8),
            Err(PasswordRejected::TooLong)
        );
        assert!(check_policy("long enough", 8).is_ok());
    }
}
