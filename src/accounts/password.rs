//! Password policy and hashing. Hashing is deliberately slow, so it runs on a fixed pool of
//! worker threads (one per core by default), never on the async workers that serve every other
//! request: a flood of logins queues here, fairly shared between client networks
//! (`hash_queue.rs`). Each worker allocates its argon2 memory once and
//! reuses it, so memory stays flat however many passwords are hashed.

use std::sync::Arc;

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::{Output, ParamsString, SaltString},
};
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};
use tokio::sync::oneshot;

use super::hash_queue::{FairQueue, Refused};
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
    /// A required kind of character is missing.
    #[error("password must contain at least one {0}")]
    Missing(&'static str),
    /// The password contains the user's own localpart.
    #[error("password must not contain the username")]
    ContainsUsername,
}

/// A kind of character a policy may require: whether it is required, its name, and its test.
type CharacterClass = (bool, &'static str, fn(&char) -> bool);

/// The rules a new password must follow: the `[password]` section of the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct PasswordPolicy(PasswordConfig);

impl PasswordPolicy {
    /// The policy configured in `[password]`.
    pub fn from_config(config: &PasswordConfig) -> Self {
        Self(config.clone())
    }

    /// Checks a new password for the user with `localpart` (when known); the error says which
    /// rule failed.
    pub fn check(&self, password: &str, localpart: Option<&str>) -> Result<(), PasswordRejected> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordRejected::TooLong);
        }
        let rules = &self.0;
        let min_length = rules.min_length.get();
        if password.chars().count() < min_length {
            return Err(PasswordRejected::TooShort(min_length));
        }
        let classes: [CharacterClass; 4] = [
            (rules.require_digit, "digit", char::is_ascii_digit),
            (rules.require_lowercase, "lower-case letter", |c| {
                c.is_lowercase()
            }),
            (rules.require_uppercase, "upper-case letter", |c| {
                c.is_uppercase()
            }),
            (rules.require_symbol, "symbol", |c| !c.is_alphanumeric()),
        ];
        if let Some((_, name, _)) = classes
            .iter()
            .find(|(required, _, matches)| *required && !password.chars().any(|c| matches(&c)))
        {
            return Err(PasswordRejected::Missing(name));
        }
        let contains_localpart = localpart
            .is_some_and(|localpart| password.to_lowercase().contains(&localpart.to_lowercase()));
        if rules.reject_localpart && contains_localpart {
            return Err(PasswordRejected::ContainsUsername);
        }
        Ok(())
    }
}

/// Hashing failed for a reason that is not the password's fault.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// argon2 refused its parameters or its input.
    #[error("argon2 failed")]
    Argon2(#[from] argon2::Error),
    /// The PHC string could not be built or read.
    #[error("password hash encoding failed")]
    Encoding(#[from] argon2::password_hash::Error),
    /// A hashing thread could not be started.
    #[error("a hashing thread could not be started")]
    Spawn(#[from] std::io::Error),
    /// The hashing threads are gone (the server is shutting down).
    #[error("the hashing threads have stopped")]
    Stopped,
    /// The client's line of the hashing queue (or the whole queue) is full: try again shortly.
    #[error("the password hashing queue is full")]
    Busy,
}

/// A unit of work for a hashing thread.
type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// One hashing thread's state: the configured argon2 and its reusable memory, allocated on
/// the first hash (an idle server does not hold it).
struct Worker {
    params: Params,
    memory: Vec<Block>,
}

impl Worker {
    fn new(params: Params) -> Self {
        Self {
            params,
            memory: Vec::new(),
        }
    }

    /// The reusable memory, sized for the configured parameters.
    fn memory(&mut self) -> &mut [Block] {
        if self.memory.len() != self.params.block_count() {
            self.memory = vec![Block::default(); self.params.block_count()];
        }
        &mut self.memory
    }

    /// argon2id of `password` with a fresh salt, as a PHC string.
    fn hash(&mut self, password: &[u8]) -> Result<String, HashError> {
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_buffer = [0_u8; 64];
        let raw_salt = salt.as_salt().decode_b64(&mut salt_buffer)?;
        let mut output = vec![
            0_u8;
            self.params
                .output_len()
                .unwrap_or(Params::DEFAULT_OUTPUT_LEN)
        ];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
            .hash_password_into_with_memory(password, raw_salt, &mut output, self.memory())?;
        let phc = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params)?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&output)?),
        };
        Ok(phc.to_string())
    }

    /// Whether `password` matches the argon2 PHC string `stored`, in constant time. Hashes made
    /// with other parameters are verified too, with memory allocated for the occasion.
    fn verify_argon2(&mut self, password: &[u8], stored: &str) -> bool {
        let Ok(hash) = PasswordHash::new(stored) else {
            return false;
        };
        let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
            return false;
        };
        let (Ok(algorithm), Ok(params)) =
            (Algorithm::try_from(hash.algorithm), Params::try_from(&hash))
        else {
            return false;
        };
        let version = hash.version.map_or(Ok(Version::V0x13), Version::try_from);
        let Ok(version) = version else { return false };
        let mut salt_buffer = [0_u8; 64];
        let Ok(raw_salt) = salt.decode_b64(&mut salt_buffer) else {
            return false;
        };
        let mut output = vec![0_u8; expected.len()];
        let argon2 = Argon2::new(algorithm, version, params.clone());
        let computed = if params.block_count() == self.params.block_count() {
            argon2.hash_password_into_with_memory(password, raw_salt, &mut output, self.memory())
        } else {
            argon2.hash_password_into(password, raw_salt, &mut output)
        };
        computed.is_ok() && Output::new(&output).is_ok_and(|output| output == expected)
    }
}

/// Hashes and verifies passwords on a fixed pool of threads.
#[derive(Clone)]
pub struct PasswordHasher {
    jobs: Arc<JobsHandle>,
    /// A hash of a random password, verified against when the user does not exist so that an
    /// unknown user costs as much time as a wrong password.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    /// A hasher with the configured argon2id parameters and pool size; starts its threads.
    pub fn new(config: &PasswordConfig) -> Result<Self, HashError> {
        let params = Params::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            None,
        )?;
        let workers = match config.hash_workers {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            n => n,
        };
        let queue_len = match config.hash_queue {
            0 => workers.saturating_mul(32),
            n => n,
        };
        let queue = Arc::new(FairQueue::new(config.hash_queue_per_network, queue_len));
        for index in 0..workers {
            let queue = queue.clone();
            let params = params.clone();
            std::thread::Builder::new()
                .name(format!("vestibule-hash-{index}"))
                .spawn(move || run_worker(&queue, Worker::new(params)))?;
        }
        let dummy_hash =
            Worker::new(params).hash(SaltString::generate(&mut OsRng).as_str().as_bytes())?;
        Ok(Self {
            jobs: Arc::new(JobsHandle(queue)),
            dummy_hash: dummy_hash.into(),
        })
    }

    /// An argon2id PHC string for `password`, with a fresh salt.
    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        self.run(move |worker| worker.hash(password.expose_secret().as_bytes()))
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
        let (stored, real) = match stored {
            Some(stored) => (stored, true),
            None => (self.dummy_hash.to_string(), false),
        };
        self.run(move |worker| {
            let candidate = password.expose_secret().as_bytes();
            let matches = if stored.starts_with("$2") {
                bcrypt::verify(candidate, &stored).unwrap_or(false)
            } else {
                worker.verify_argon2(candidate, &stored)
            };
            matches && real
        })
        .await
    }

    /// Queues `job` in the line of the request's client network. When the whole queue is full
    /// the answer is [`HashError::Busy`] at once; when only the network's own line is full,
    /// the check waits up to [`LINE_FULL_WAIT`] for room first.
    async fn queue(&self, job: Job) -> Result<(), HashError> {
        let give_up = tokio::time::Instant::now() + LINE_FULL_WAIT;
        let mut job = job;
        loop {
            match self.jobs.0.push(job) {
                Ok(()) => return Ok(()),
                Err((Refused::Closed, _)) => return Err(HashError::Stopped),
                Err((Refused::LineFull, returned)) if tokio::time::Instant::now() < give_up => {
                    job = returned;
                    tokio::time::sleep(LINE_FULL_POLL).await;
                }
                Err(_) => {
                    metrics::counter!("vestibule_password_hash_refused_total").increment(1);
                    return Err(HashError::Busy);
                }
            }
        }
    }

    /// Queues `work` in the line of the request's client network and waits for its result
    /// (see [`Self::queue`]).
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Worker) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move |worker| {
            let started = std::time::Instant::now();
            let outcome = work(worker);
            metrics::histogram!("vestibule_password_hash_seconds")
                .record(started.elapsed().as_secs_f64());
            let _ = reply.send(outcome);
        });
        self.queue(job).await?;
        result.await.map_err(|_| HashError::Stopped)
    }
}

/// How long a check whose network's line is full waits for room before it is refused: the
/// flooding network's own requests are slowed down (so they can't turn into a storm of cheap
/// refusals that takes the cores from hashing), everyone else's are not affected.
const LINE_FULL_WAIT: std::time::Duration = std::time::Duration::from_millis(1000);
/// How often a waiting check looks for room in its line.
const LINE_FULL_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// Scheduling priority of hashing threads on the crate's 0–99 scale (≈ nice 9 on Linux): request
/// handling preempts hashing, so a login flood slows logins, not every other endpoint, while
/// idle cores still go to hashing.
const HASH_THREAD_PRIORITY: u8 = 23;

/// The hashers' hold on the queue: when the last clone of a [`PasswordHasher`] goes, the queue
/// closes and its threads end.
struct JobsHandle(Arc<FairQueue<Job>>);

impl Drop for JobsHandle {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A hashing thread: takes jobs until the queue closes.
fn run_worker(queue: &FairQueue<Job>, mut worker: Worker) {
    let lowered = ThreadPriorityValue::try_from(HASH_THREAD_PRIORITY)
        .map_err(|err| err.to_string())
        .and_then(|value| {
            set_current_thread_priority(ThreadPriority::Crossplatform(value))
                .map_err(|err| err.to_string())
        });
    if let Err(err) = lowered {
        tracing::warn!(error = %err, "could not lower the priority of a password hashing thread");
    }
    while let Some(job) = queue.pop() {
        job(&mut worker);
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
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        let phc = PasswordHash::new(&hash).expect("a PHC string");
        argon2::PasswordVerifier::verify_password(&Argon2::default(), b"correct horse", &phc)
            .expect("standard argon2 verifies our PHC strings");
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
    async fn verifies_hashes_made_with_other_parameters() {
        let other = PasswordConfig {
            argon2_memory_kib: 128,
            argon2_iterations: 2,
            ..PasswordConfig::default()
        };
        let hash = PasswordHasher::new(&other)
            .expect("hasher")
            .hash("rotated".to_owned().into())
            .await
            .expect("hash");
        assert!(hash.contains("m=128,t=2"), "{hash}");
        assert!(
            fast()
                .verify("rotated".to_owned().into(), Some(hash.clone()))
                .await
                .expect("verify")
        );
        assert!(
            !fast()
                .verify("wrong".to_owned().into(), Some(hash))
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
        let policy = PasswordPolicy::from_config(&PasswordConfig::default());
        assert_eq!(
            policy.check("short", None),
            Err(PasswordRejected::TooShort(8))
        );
        assert_eq!(
            policy.check(&"x".repeat(513), None),
            Err(PasswordRejected::TooLong)
        );
        assert!(policy.check("long enough", None).is_ok());
        assert_eq!(
            policy.check("my-alice-pass", Some("alice")),
            Err(PasswordRejected::ContainsUsername)
        );
        assert_eq!(
            policy.check("MyALICEpass", Some("alice")),
            Err(PasswordRejected::ContainsUsername)
        );
    }

    #[test]
    fn character_classes() {
        let strict = PasswordPolicy::from_config(&PasswordConfig {
            require_digit: true,
            require_lowercase: true,
            require_uppercase: true,
            require_symbol: true,
            ..PasswordConfig::default()
        });
        assert_eq!(
            strict.check("abcdefgh", None),
            Err(PasswordRejected::Missing("digit"))
        );
        assert_eq!(
            strict.check("ABCDEFG1", None),
            Err(PasswordRejected::Missing("lower-case letter"))
        );
        assert_eq!(
            strict.check("abcdefg1", None),
            Err(PasswordRejected::Missing("upper-case letter"))
        );
        assert_eq!(
            strict.check("Abcdefg1", None),
            Err(PasswordRejected::Missing("symbol"))
        );
        assert!(strict.check("Abcdef-1", None).is_ok());
        assert!(strict.check("Äbcdéf-1", None).is_ok());
    }
}
