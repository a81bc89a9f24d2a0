//! notes' own settings: the sections `[notes]`, `[signin]` and `[mail]` that sit beside the
//! platform's in the same configuration, each field with its default.

use std::time::Duration;

use bytesize::ByteSize;
use platform::config::{Secret, SecretUrl};
use serde::{Deserialize, Serialize};

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
