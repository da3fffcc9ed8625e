//! Injected time and randomness, so tests can move the clock instead of sleeping.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use rand::{Rng, distributions::Alphanumeric, rngs::OsRng};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        #[allow(clippy::disallowed_methods)] // the one place the ambient clock is read
        let now = std::time::SystemTime::now();
        now.duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to; shared between clones.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock stopped at `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(now_ms)))
    }

    /// Moves the clock forward by `millis`.
    pub fn advance(&self, millis: i64) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A source of unguessable strings (tokens, session ids, generated device ids).
pub trait Randomness: Send + Sync + 'static {
    /// A random string of `len` ASCII letters and digits.
    fn alphanumeric(&self, len: usize) -> String;

    /// A random string of `len` upper-case ASCII letters and digits, each of the 36 equally
    /// likely: codes people type, where case must not matter.
    fn alphanumeric_upper(&self, len: usize) -> String;
}

/// Randomness from the operating system's CSPRNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandomness;

impl Randomness for OsRandomness {
    fn alphanumeric(&self, len: usize) -> String {
        OsRng
            .sample_iter(&Alphanumeric)
            .take(len)
            .map(char::from)
            .collect()
    }

    fn alphanumeric_upper(&self, len: usize) -> String {
        const SYMBOLS: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..len)
            .map(|_| char::from(SYMBOLS[OsRng.gen_range(0..SYMBOLS.len())]))
            .collect()
    }
}
