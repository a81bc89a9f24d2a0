//! notes: Notejam — users, pads and notes as server-rendered HTML pages, with a JSON API under
//! `/api/v1` beside them.
//!
//! Storage is a relational schema of its own ([`storage::NotesRepository`]) on the platform's SQL
//! pool: SQLite by default, PostgreSQL or MySQL/MariaDB by `storage.url`.

pub mod api;
pub mod domain;
pub mod error;
pub mod mail;
pub mod pages;
pub mod session;
pub mod slo;
pub mod storage;
pub mod templates;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use bytesize::ByteSize;
use platform::config::{Secret, SecretUrl};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::OpenApi;

/// notes' own sections: `[notes]`, `[signin]` and `[mail]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NotesSettings {
    /// `[notes]`.
    #[serde(default)]
    pub notes: AppSettings,
    /// `[signin]`.
    #[serde(default)]
    pub signin: SignInSettings,
    /// `[mail]`.
    #[serde(default)]
    pub mail: MailSettings,
}

/// `[notes]`: sessions, reset links, the CSRF key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppSettings {
    /// The address users reach the site at; password-reset links start with it (never taken
    /// from the request's `Host`, which a client chooses). Default `http://localhost:8083`.
    pub public_url: String,
    /// How long a sign-in lasts. Default `14days`.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// How long a password-reset link works. Default `1h`.
    #[serde(with = "humantime_serde")]
    pub reset_token_ttl: Duration,
    /// Key of the CSRF tokens of anonymous forms (sign up, sign in, forgot password). Default: a
    /// random key per process; set the same value on every replica behind one load balancer.
    pub csrf_secret: Option<Secret>,
}

impl Default for AppSettings {
    fn default() -> Self {
        AppSettings {
            public_url: "http://localhost:8083".to_owned(),
            session_ttl: Duration::from_secs(14 * 24 * 3600),
            reset_token_ttl: Duration::from_secs(3600),
            csrf_secret: None,
        }
    }
}

/// `[signin]`: rate limits of sign-in attempts (the form and `POST /api/v1/tokens`), and the
/// memory budget of password hashing (sign-in, sign-up, password changes).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignInSettings {
    /// Attempts one account may take at once. Default 5.
    pub per_account_burst: u32,
    /// Attempts per second one account regains. Default 0.05 (one every 20 s).
    pub per_account_per_second: f64,
    /// Attempts one client address may take at once. Default 20.
    pub per_client_burst: u32,
    /// Attempts per second one client address regains. Default 0.5.
    pub per_client_per_second: f64,
    /// Memory that argon2id hashes may hold at once, 19 MiB each: the default `128MiB` runs 6
    /// at a time (two cores are busy with 2). Keep it well under the container's memory limit.
    pub hash_memory_budget: ByteSize,
    /// How long a sign-in, sign-up or password change waits for a hashing turn before it is
    /// answered `503` with `Retry-After`. Default `1s`; `0s` refuses at once.
    #[serde(with = "humantime_serde")]
    pub hash_wait: Duration,
}

impl Default for SignInSettings {
    fn default() -> Self {
        SignInSettings {
            per_account_burst: 5,
            per_account_per_second: 0.05,
            per_client_burst: 20,
            per_client_per_second: 0.5,
            hash_memory_budget: ByteSize::mib(128),
            hash_wait: Duration::from_secs(1),
        }
    }
}

/// `[mail]`: how password-reset links are sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    /// `smtp://host:port` (plain, for a local relay), `smtps://user:pass@host` or
    /// `smtp://…?tls=required`. Default unset: mails are written to the log instead.
    pub smtp_url: Option<SecretUrl>,
    /// The sender. Default `Notes <notes@localhost>`.
    pub from: String,
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            smtp_url: None,
            from: "Notes <notes@localhost>".to_owned(),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub repository: Arc<dyn storage::NotesRepository>,
    /// Sign-in attempt limits.
    pub signin_limiter: Arc<users::SignInLimiter>,
    /// Password hashing within `signin.hash_memory_budget`.
    pub passwords: users::Passwords,
    /// Outgoing mail.
    pub mailer: mail::Mailer,
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
}

/// The clock every handler reads.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// The service: pages, the JSON API and the stylesheet on port 8083.
pub fn service() -> platform::Service<NotesSettings> {
    platform::Service::new(
        "notes",
        env!("CARGO_PKG_VERSION"),
        8083,
        |context: platform::Context<NotesSettings>| async move {
            let settings = context.service_settings();
            let database = context.sql_pool("notes", &storage::MIGRATIONS).await?;
            let repository = storage::repository(database);
            let mailer =
                mail::Mailer::new(&settings.mail).map_err(platform::StartError::Service)?;
            let csrf_key: Arc<[u8]> = match &settings.notes.csrf_secret {
                Some(secret) => secret.expose().as_bytes().into(),
                None => rand::random::<[u8; 32]>().as_slice().into(),
            };
            metrics::describe_counter!(
                users::SIGNINS_TOTAL,
                "Sign-in attempts (form and API tokens) by outcome."
            );
            metrics::describe_counter!(
                users::PASSWORD_HASHES_SHED_TOTAL,
                "Password hashes refused with 503 because signin.hash_memory_budget stayed full."
            );
            metrics::counter!(users::PASSWORD_HASHES_SHED_TOTAL).increment(0);
            for outcome in users::SIGNIN_OUTCOMES {
                metrics::counter!(users::SIGNINS_TOTAL, "outcome" => outcome).increment(0);
            }
            let platform_settings = context.settings();
            let state = AppState {
                repository,
                signin_limiter: Arc::new(users::SignInLimiter::new(&settings.signin)),
                passwords: users::Passwords::new(&settings.signin),
                mailer,
                csrf_key,
                // Behind an ingress that terminates TLS the process serves plain HTTP, but
                // the browser is on HTTPS: the public URL says so.
                secure_cookies: platform_settings.tls.enabled
                    || settings.notes.public_url.starts_with("https://"),
                trusted_proxies: Arc::new(platform_settings.server.trusted_proxies.clone()),
                body_limit: usize::try_from(platform_settings.server.body_limit.as_u64())
                    .unwrap_or(usize::MAX),
                session_ttl: settings.notes.session_ttl,
                reset_token_ttl: settings.notes.reset_token_ttl,
                public_url: settings.notes.public_url.trim_end_matches('/').into(),
            };
            Ok(pages::router(state.clone()).merge(api::router(state)))
        },
    )
    .with_openapi(api::ApiDoc::openapi)
    .with_slos(slo::slos())
}
