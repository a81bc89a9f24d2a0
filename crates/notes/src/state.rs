//! [`AppState`]: what every page, API handler and the session middleware share, built once at
//! start-up from the settings. The cookie-writing methods on it live in `session.rs`, beside the
//! cookies they write.

use std::sync::Arc;
use std::time::Duration;

use platform::clock::WallClock;

use crate::config::NotesSettings;
use crate::mail::Mailer;
use crate::storage::NotesRepository;
use crate::users::{Passwords, SignInLimiter};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub repository: Arc<dyn NotesRepository>,
    /// Sign-in attempt limits.
    pub signin_limiter: Arc<SignInLimiter>,
    /// Password hashing within `signin.hash_memory_budget`.
    pub passwords: Passwords,
    /// Outgoing mail.
    pub mailer: Mailer,
    /// The key of anonymous CSRF tokens.
    pub csrf_key: Arc<[u8]>,
    /// Cookies carry `Secure`: the API serves TLS, or `notes.public_url` is `https://` (TLS
    /// ends at a proxy in front).
    pub secure_cookies: bool,
    /// `server.trusted_proxies`.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// `server.body_limit` in bytes.
    pub body_limit: usize,
    /// `notes.session_ttl`.
    pub session_ttl: Duration,
    /// `notes.reset_token_ttl`.
    pub reset_token_ttl: Duration,
    /// `notes.public_url` without a trailing slash.
    pub public_url: Arc<str>,
    /// "Now" for every stored time and expiry (sessions, reset links, "Last modified"), read
    /// from here and never from the system, so a test can pin it.
    pub clock: WallClock,
}

impl AppState {
    /// The state that notes' sections and the platform's `server` and `tls` describe, over
    /// `repository`, reading `clock`. `Err` names a setting that cannot work (`mail.from`,
    /// `mail.smtp_url`).
    pub fn new(
        settings: &NotesSettings,
        platform_settings: &platform::config::Settings,
        repository: Arc<dyn NotesRepository>,
        clock: WallClock,
    ) -> Result<AppState, String> {
        let csrf_key: Arc<[u8]> = match &settings.notes.csrf_secret {
            Some(secret) => secret.expose().as_bytes().into(),
            None => rand::random::<[u8; 32]>().as_slice().into(),
        };
        Ok(AppState {
            repository,
            signin_limiter: Arc::new(SignInLimiter::new(&settings.signin)),
            passwords: Passwords::new(&settings.signin),
            mailer: Mailer::new(&settings.mail)?,
            csrf_key,
            // Behind an ingress that terminates TLS the process serves plain HTTP, but the
            // browser is on HTTPS: the public URL says so.
            secure_cookies: platform_settings.tls.enabled
                || settings.notes.public_url.starts_with("https://"),
            trusted_proxies: Arc::new(platform_settings.server.trusted_proxies.clone()),
            body_limit: usize::try_from(platform_settings.server.body_limit.as_u64())
                .unwrap_or(usize::MAX),
            session_ttl: settings.notes.session_ttl,
            reset_token_ttl: settings.notes.reset_token_ttl,
            public_url: settings.notes.public_url.trim_end_matches('/').into(),
            clock,
        })
    }
}
