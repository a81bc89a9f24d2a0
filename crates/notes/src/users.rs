//! Accounts: argon2id password hashes, random tokens stored only as their SHA-256, and the
//! sign-in rate limits (per account and per client address).

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use platform::http::ratelimit::{Decision, TokenBuckets};
use sha2::{Digest as _, Sha256};

use crate::error::NotesError;

/// Sign-in attempts by outcome: `success`, `wrong_password`, `unknown_user`, `rate_limited`,
/// `invalid` (a field missing). Never labelled with the email.
pub const SIGNINS_TOTAL: &str = "notes_signins_total";

/// Every `outcome` of [`SIGNINS_TOTAL`].
pub const SIGNIN_OUTCOMES: [&str; 5] = [
    "success",
    "wrong_password",
    "unknown_user",
    "rate_limited",
    "invalid",
];

/// Counts one sign-in attempt (web or API token request) by outcome.
pub fn count_signin(outcome: &'static str) {
    metrics::counter!(SIGNINS_TOTAL, "outcome" => outcome).increment(1);
}

/// 256 random bits as 64 lowercase hex characters: session, CSRF, API and reset tokens.
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// What the database keeps of a token: its SHA-256, hex. A stolen table gives no usable token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The argon2id PHC string of `password`, with a fresh random salt. CPU-heavy: runs on the
/// blocking pool.
pub async fn hash_password(password: String) -> Result<String, NotesError> {
    tokio::task::spawn_blocking(move || hash_password_now(&password))
        .await
        .map_err(|error| NotesError::Internal(format!("password hashing stopped: {error}")))?
}

fn hash_password_now(password: &str) -> Result<String, NotesError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|error| NotesError::Internal(format!("salt: {error}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| NotesError::Internal(format!("password hashing failed: {error}")))
}

/// Whether `password` matches the PHC string `stored`. With no stored hash (an unknown email) it
/// verifies against a dummy hash anyway, so the answer takes as long either way and the time
/// does not tell which emails are registered.
pub async fn verify_password(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let dummy = dummy_hash();
        let (phc, known) = match stored.as_deref() {
            Some(phc) => (phc, true),
            None => (dummy, false),
        };
        let matches = PasswordHash::new(phc).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
        known && matches
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password_now(&new_token()).unwrap_or_default())
}

/// Token buckets for sign-in attempts (web form and API token requests alike): one per account
/// (the email as typed, lowercased) and one per client address. An attempt needs a token from
/// both, so neither guessing one account from many addresses nor many accounts from one address
/// gets far.
#[derive(Debug)]
pub struct SignInLimiter {
    accounts: TokenBuckets<String>,
    clients: TokenBuckets<IpAddr>,
}

impl SignInLimiter {
    /// Buckets from `[signin]`.
    pub fn new(settings: &crate::SignInSettings) -> SignInLimiter {
        SignInLimiter {
            accounts: TokenBuckets::new(
                settings.per_account_per_second,
                settings.per_account_burst,
                100_000,
            ),
            clients: TokenBuckets::new(
                settings.per_client_per_second,
                settings.per_client_burst,
                100_000,
            ),
        }
    }

    /// Takes a token for `email` from `client`; `Err` with the wait when either is exhausted.
    pub fn check(&self, email: &str, client: Option<IpAddr>) -> Result<(), Duration> {
        let now = Instant::now();
        let mut wait = Duration::ZERO;
        if let Some(client) = client
            && let Decision::Deny { retry_after } = self.clients.take(&client, now)
        {
            wait = wait.max(retry_after);
        }
        if let Decision::Deny { retry_after } = self.accounts.take(&email.to_lowercase(), now) {
            wait = wait.max(retry_after);
        }
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse".to_owned()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse".to_owned(), Some(hash.clone())).await);
        assert!(!verify_password("wrong horse".to_owned(), Some(hash)).await);
        assert!(!verify_password("correct horse".to_owned(), None).await);
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let token = new_token();
        assert_eq!(token.len(), 64);
        assert_ne!(token, new_token());
        assert_eq!(token_hash(&token).len(), 64);
        assert_ne!(token_hash(&token), token);
    }
}
