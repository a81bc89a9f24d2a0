//! Accounts: argon2id password hashes, random tokens stored only as their SHA-256, and the
//! sign-in rate limits (per account and per client address).

use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::password_hash::PasswordVerifier;
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use platform::http::ratelimit::{Decision, TokenBuckets};
use sha2::{Digest as _, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::SignInSettings;
use crate::error::NotesError;

/// 256 random bits as 64 lowercase hex characters: session, CSRF, API and reset tokens.
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// What the database keeps of a token: its SHA-256, hex. A stolen table gives no usable token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Argon2id hashing and verification within a memory budget.
///
/// Each hash works in [`Passwords::MEMORY_PER_HASH`] (argon2's default 19 MiB) on the blocking
/// pool, which has up to 512 threads: unbounded, a sign-in flood could take about 10 GiB. So
/// at most `signin.hash_memory_budget / MEMORY_PER_HASH` hashes run at once; a request waits
/// up to `signin.hash_wait` for a turn, then is answered `503` with `Retry-After`. Verifying
/// counts like hashing, and so does the dummy verification of an unknown email, which keeps
/// the answer's timing from telling which emails exist.
///
/// Each turn comes with its working memory, allocated once and then reused: letting argon2
/// allocate its own would leave the bound to the allocator, which keeps freed 19 MiB blocks in
/// one arena per thread (measured: 495 MiB peak for a budget of 6 hashes).
#[derive(Debug, Clone)]
pub struct Passwords {
    turns: Arc<Semaphore>,
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    wait: Duration,
}

/// The right to run one hash, with the memory it runs in; both go back when it is dropped.
struct Turn {
    memory: Vec<Block>,
    pool: Arc<Mutex<Vec<Vec<Block>>>>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Turn {
    fn drop(&mut self) {
        // Fields drop after this, so the memory is back before the permit frees the turn.
        let memory = std::mem::take(&mut self.memory);
        self.pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(memory);
    }
}

impl Passwords {
    /// Memory one argon2id hash with the default parameters works in (`m_cost` KiB).
    pub const MEMORY_PER_HASH: u64 = Params::DEFAULT_M_COST as u64 * 1024;

    /// The budget from `[signin]`: at least one hash runs, however small the budget.
    pub fn new(settings: &SignInSettings) -> Passwords {
        let at_once = (settings.hash_memory_budget.as_u64() / Self::MEMORY_PER_HASH).max(1);
        Passwords {
            turns: Arc::new(Semaphore::new(
                usize::try_from(at_once).unwrap_or(Semaphore::MAX_PERMITS),
            )),
            memory: Arc::default(),
            wait: settings.hash_wait,
        }
    }

    /// How many turns are free now: all of them, `hash_memory_budget / MEMORY_PER_HASH` (at
    /// least 1), while no hash runs.
    pub fn concurrency(&self) -> usize {
        self.turns.available_permits()
    }

    /// The argon2id PHC string of `password`, with a fresh random salt.
    pub async fn hash(&self, password: String) -> Result<String, NotesError> {
        let mut turn = self.turn().await?;
        tokio::task::spawn_blocking(move || hash_in(&mut turn.memory, &password))
            .await
            .map_err(|error| NotesError::Internal(format!("password hashing stopped: {error}")))?
    }

    /// Whether `password` matches the PHC string `stored`. With no stored hash (an unknown
    /// email) it verifies against a dummy hash anyway, so the answer takes as long either way
    /// and the time does not tell which emails are registered.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, NotesError> {
        let mut turn = self.turn().await?;
        tokio::task::spawn_blocking(move || match stored {
            Some(phc) => verify_in(&mut turn.memory, &password, &phc),
            None => {
                let dummy = dummy_hash(&mut turn.memory);
                verify_in(&mut turn.memory, &password, dummy);
                false
            }
        })
        .await
        .map_err(|error| NotesError::Internal(format!("password check stopped: {error}")))
    }

    async fn turn(&self) -> Result<Turn, NotesError> {
        let turns = Arc::clone(&self.turns);
        let permit = if self.wait.is_zero() {
            turns.try_acquire_owned().ok()
        } else {
            tokio::time::timeout(self.wait, turns.acquire_owned())
                .await
                .ok()
                .and_then(Result::ok)
        };
        let Some(permit) = permit else {
            crate::metrics::count_password_hash_shed();
            return Err(NotesError::Busy("too many password checks at once"));
        };
        let reused = self
            .memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        Ok(Turn {
            // There are never more buffers than turns: one is made only when none is free.
            memory: reused
                .unwrap_or_else(|| vec![Block::default(); Params::default().block_count()]),
            pool: Arc::clone(&self.memory),
            _permit: permit,
        })
    }
}

/// argon2id with the default parameters, working in `memory`, as a PHC string.
fn hash_in(memory: &mut [Block], password: &str) -> Result<String, NotesError> {
    let failed = |error: &dyn std::fmt::Display| {
        NotesError::Internal(format!("password hashing failed: {error}"))
    };
    let salt = Salt::new(&rand::random::<[u8; 16]>()).map_err(|e| failed(&e))?;
    let argon2 = Argon2::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, &mut *memory)
        .map_err(|e| failed(&e))?;
    let output = Output::new(&out).map_err(|e| failed(&e))?;
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).map_err(|e| failed(&e))?,
        salt: Some(salt),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Whether `password` hashes to the PHC string `phc`, working in `memory`. A hash made with
/// more memory than the default (none is, today) is checked by argon2 in its own allocation.
fn verify_in(memory: &mut [Block], password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    if params.block_count() > memory.len() {
        return Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
    }
    let argon2 = Argon2::new(algorithm, version, params);
    let mut out = [0u8; Output::MAX_LENGTH];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    if argon2
        .hash_password_into_with_memory(password.as_bytes(), &salt, out, &mut *memory)
        .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(out).is_ok_and(|computed| computed == expected)
}

/// A hash of a random password, made once, to verify unknown emails against.
fn dummy_hash(memory: &mut [Block]) -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_in(memory, &new_token()).unwrap_or_default())
}

/// Token buckets for sign-in attempts (web form and API token requests alike): one per account
/// (the email as [`crate::domain::normalize_email`] gives it) and one per client address. An
/// attempt needs a token from both, so neither guessing one account from many addresses nor
/// many accounts from one address gets far.
#[derive(Debug)]
pub struct SignInLimiter {
    accounts: TokenBuckets<String>,
    clients: TokenBuckets<IpAddr>,
}

impl SignInLimiter {
    /// Buckets from `[signin]`.
    pub fn new(settings: &SignInSettings) -> SignInLimiter {
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

    /// Takes a token for `email` (already normalised) from `client`; `Err` with the wait when
    /// either is exhausted.
    pub fn check(&self, email: &str, client: Option<IpAddr>) -> Result<(), Duration> {
        let now = Instant::now();
        let mut wait = Duration::ZERO;
        if let Some(client) = client
            && let Decision::Deny { retry_after } = self.clients.take(&client, now)
        {
            wait = wait.max(retry_after);
        }
        if let Decision::Deny { retry_after } = self.accounts.take(&email.to_owned(), now) {
            wait = wait.max(retry_after);
        }
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytesize::ByteSize;

    fn passwords(budget: ByteSize, wait: Duration) -> Passwords {
        Passwords::new(&SignInSettings {
            hash_memory_budget: budget,
            hash_wait: wait,
            ..SignInSettings::default()
        })
    }

    #[tokio::test]
    async fn a_password_verifies_against_its_own_hash_only() {
        let passwords = passwords(ByteSize::mib(128), Duration::from_secs(1));
        let hash = passwords.hash("correct horse".to_owned()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(
            passwords
                .verify("correct horse".to_owned(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify("wrong horse".to_owned(), Some(hash))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify("correct horse".to_owned(), None)
                .await
                .unwrap()
        );
    }

    #[test]
    fn hashes_in_reused_memory_are_argon2s_own_both_ways() {
        use argon2::password_hash::PasswordHasher as _;
        let mut memory = vec![Block::default(); Params::default().block_count()];
        // A hash made by argon2 in its own allocation (as stored before the pool) verifies...
        let older = Argon2::default()
            .hash_password_with_salt(b"correct horse", b"sixteen byte salt")
            .unwrap()
            .to_string();
        // ...and so does one from another implementation (argon2-cffi, the reference C code),
        // with the parameters every stored hash has.
        let reference = "$argon2id$v=19$m=19456,t=2,p=1$zoMKCX0VpqcIEukpoFfZgQ$+5tQMSGhJavSoYXsy1WbOuSA9GmUmVAi/OMa/fqTg9E";
        assert!(verify_in(&mut memory, "correct horse", reference));
        assert!(!verify_in(&mut memory, "correct horsf", reference));
        assert!(verify_in(&mut memory, "correct horse", &older));
        assert!(!verify_in(&mut memory, "wrong horse", &older));
        // ...and argon2 itself verifies what the pool makes, in memory used before.
        let pooled = hash_in(&mut memory, "correct horse").unwrap();
        let parsed = PasswordHash::new(&pooled).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong horse", &parsed)
                .is_err()
        );
        assert!(!verify_in(&mut memory, "correct horse", "not a phc string"));
    }

    #[tokio::test]
    async fn turns_reuse_their_memory_instead_of_allocating_more() {
        let passwords = passwords(ByteSize::mib(38), Duration::from_secs(5));
        let hashes = (0..8).map(|_| passwords.hash("correct horse".to_owned()));
        for hash in futures::future::join_all(hashes).await {
            assert!(hash.is_ok());
        }
        let buffers = passwords.memory.lock().unwrap().len();
        assert!((1..=2).contains(&buffers), "{buffers} buffers for 2 turns");
    }

    #[test]
    fn the_memory_budget_sets_how_many_hashes_run_at_once() {
        let wait = Duration::from_secs(1);
        assert_eq!(passwords(ByteSize::mib(128), wait).concurrency(), 6);
        assert_eq!(passwords(ByteSize::mib(19), wait).concurrency(), 1);
        // A budget below one hash still lets one run: sign-in must work at all.
        assert_eq!(passwords(ByteSize::kib(1), wait).concurrency(), 1);
    }

    #[tokio::test]
    async fn past_the_budget_a_hash_is_refused_as_busy_and_runs_again_once_a_turn_is_free() {
        let passwords = passwords(ByteSize::mib(19), Duration::ZERO);
        let held = Arc::clone(&passwords.turns).try_acquire_owned().unwrap();
        let refused = passwords.hash("correct horse".to_owned()).await;
        assert!(matches!(refused, Err(NotesError::Busy(_))), "{refused:?}");
        let refused = passwords.verify("correct horse".to_owned(), None).await;
        assert!(matches!(refused, Err(NotesError::Busy(_))), "{refused:?}");
        drop(held);
        assert!(passwords.hash("correct horse".to_owned()).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_hash_waits_for_a_turn_up_to_hash_wait() {
        let passwords = passwords(ByteSize::mib(19), Duration::from_secs(2));
        let held = Arc::clone(&passwords.turns).try_acquire_owned().unwrap();
        let waiting = tokio::spawn({
            let passwords = passwords.clone();
            async move { passwords.hash("correct horse".to_owned()).await }
        });
        // The paused clock moves only when every task waits: the hash is still queued at 1 s.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiting.is_finished());
        drop(held);
        assert!(waiting.await.unwrap().is_ok());

        let _held = Arc::clone(&passwords.turns).try_acquire_owned().unwrap();
        let refused = passwords.hash("correct horse".to_owned()).await;
        assert!(matches!(refused, Err(NotesError::Busy(_))), "{refused:?}");
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
