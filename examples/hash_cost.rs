//! Measures the cost of one password hash with the default argon2id parameters, on one core.
//!
//! `cargo run --release --example hash_cost [ITERATIONS]` prints the mean milliseconds per hash;
//! `bench/run.sh` uses it to compute the hashing ceiling (cores / hash time) for login and
//! registration throughput.

use std::time::Instant;

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, Version, password_hash::SaltString};
use rand::rngs::OsRng;
use vestibule::config::PasswordConfig;

fn main() -> anyhow::Result<()> {
    let iterations: u32 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 20,
    };
    anyhow::ensure!(iterations > 0, "ITERATIONS must be at least 1");
    let config = PasswordConfig::default();
    let params = Params::new(
        config.argon2_memory_kib,
        config.argon2_iterations,
        config.argon2_parallelism,
        None,
    )
    .map_err(|err| anyhow::anyhow!("argon2 params: {err}"))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    // Exactly what the server does per hash: a fresh random salt, then argon2id to a PHC string.
    let hash_once = || -> anyhow::Result<String> {
        let salt = SaltString::generate(&mut OsRng);
        Ok(argon2
            .hash_password(b"password123", &salt)
            .map_err(|err| anyhow::anyhow!("hash: {err}"))?
            .to_string())
    };
    // Warm up: the first hash pays for page faults on the freshly allocated memory blocks.
    hash_once()?;
    let started = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(hash_once()?);
    }
    let mean_ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(iterations);
    println!(
        "argon2id m={} KiB t={} p={}: {iterations} hashes on one thread, mean {mean_ms:.2} ms/hash",
        config.argon2_memory_kib, config.argon2_iterations, config.argon2_parallelism
    );
    println!("HASH_MS={mean_ms:.3}");
    Ok(())
}
