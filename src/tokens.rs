//! Access and refresh tokens: generated with a type prefix, stored only as SHA-256 digests.

use sha2::{Digest, Sha256};

use crate::clock::Randomness;

/// Prefix of access tokens, so a leaked token is recognisable in logs and secret scanners.
const ACCESS_PREFIX: &str = "vat_";
/// Prefix of refresh tokens.
const REFRESH_PREFIX: &str = "vrt_";
/// Prefix of single-use login tokens (`m.login.token`).
const LOGIN_PREFIX: &str = "vlt_";
/// Random characters after the prefix (62^40 ≈ 2^238 possibilities).
const TOKEN_RANDOM_CHARS: usize = 40;

/// A new access token.
pub fn new_access_token(rng: &dyn Randomness) -> String {
    format!("{ACCESS_PREFIX}{}", rng.alphanumeric(TOKEN_RANDOM_CHARS))
}

/// A new refresh token.
pub fn new_refresh_token(rng: &dyn Randomness) -> String {
    format!("{REFRESH_PREFIX}{}", rng.alphanumeric(TOKEN_RANDOM_CHARS))
}

/// A new single-use login token.
pub fn new_login_token(rng: &dyn Randomness) -> String {
    format!("{LOGIN_PREFIX}{}", rng.alphanumeric(TOKEN_RANDOM_CHARS))
}

/// The digest under which a token (or any other bearer secret) is stored.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new device ID: ten upper-case letters, like other homeservers generate.
pub fn new_device_id(rng: &dyn Randomness) -> String {
    rng.alphanumeric(16)
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_uppercase())
        .chain(std::iter::repeat('A'))
        .take(10)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::OsRandomness;

    #[test]
    fn tokens_are_prefixed_and_distinct() {
        let a = new_access_token(&OsRandomness);
        let b = new_access_token(&OsRandomness);
        assert!(a.starts_with("vat_") && a.len() == 44);
        assert_ne!(a, b);
        assert!(new_refresh_token(&OsRandomness).starts_with("vrt_"));
    }

    #[test]
    fn digest_is_hex_sha256() {
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn device_ids_are_ten_capitals() {
        let id = new_device_id(&OsRandomness);
        assert_eq!(id.len(), 10);
        assert!(id.chars().all(|c| c.is_ascii_uppercase()));
    }
}
