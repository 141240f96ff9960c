//! Passwords, session ids and API tokens.
//!
//! Passwords are hashed with Argon2id (the `argon2` crate's defaults, which
//! follow OWASP's minimum: 19 MiB, 2 passes, 1 lane) into PHC strings.
//! Session ids, CSRF tokens and API tokens are 32 bytes from the operating
//! system's generator; the store keeps only their SHA-256, so a stolen
//! database does not log anyone in.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

/// Prefix of API tokens, so a leaked one is recognisable (secret scanners).
pub const API_TOKEN_PREFIX: &str = "arf_";

/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the password must have at least {MIN_PASSWORD_LEN} characters")]
    PasswordTooShort,
    #[error("the operating system's random generator failed: {0}")]
    Random(String),
    #[error("could not hash the password: {0}")]
    Hash(String),
}

/// An Argon2id PHC string for `password`.
pub fn hash_password(password: &str) -> Result<String, SecretError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(SecretError::PasswordTooShort);
    }
    let mut salt = [0u8; 16];
    fill(&mut salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| SecretError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// Whether `password` matches the stored PHC string. A malformed hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Verifies against a fixed hash, so a login for an unknown email takes as
/// long as one for a known email (no account enumeration by timing).
pub fn burn_password_check(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash_password("not-a-real-password").unwrap_or_default());
    let _ = verify_password(password, phc);
}

/// 32 random bytes as 64 hex digits: session ids and CSRF tokens.
pub fn random_token() -> Result<String, SecretError> {
    let mut bytes = [0u8; 32];
    fill(&mut bytes)?;
    Ok(hex(&bytes))
}

/// A new API token secret: `arf_` and 64 hex digits.
pub fn new_api_token() -> Result<String, SecretError> {
    Ok(format!("{API_TOKEN_PREFIX}{}", random_token()?))
}

/// A readable random password for generated accounts (16 characters from
/// an alphabet without look-alikes: about 90 bits).
pub fn random_password() -> Result<String, SecretError> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 16];
    fill(&mut bytes)?;
    // 256 is not a multiple of 55; the bias (< 0.4 %) costs under a bit.
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect())
}

/// SHA-256 of `value` as lower-case hex: how sessions and tokens are stored.
pub fn sha256_hex(value: &str) -> String {
    hex(&Sha256::digest(value.as_bytes()))
}

/// Compares two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn fill(buf: &mut [u8]) -> Result<(), SecretError> {
    OsRng
        .try_fill_bytes(buf)
        .map_err(|e| SecretError::Random(e.to_string()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip_and_rejections() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse batterY", &phc));
        assert!(!verify_password("correct horse battery", "not a hash"));
        assert!(matches!(
            hash_password("short"),
            Err(SecretError::PasswordTooShort)
        ));
        // Salted: the same password hashes differently.
        assert_ne!(phc, hash_password("correct horse battery").unwrap());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = new_api_token().unwrap();
        let b = new_api_token().unwrap();
        assert!(a.starts_with(API_TOKEN_PREFIX) && a.len() == 68);
        assert_ne!(a, b);
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
        assert_eq!(random_password().unwrap().len(), 16);
    }
}
