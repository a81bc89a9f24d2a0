//! messages' own settings: `[messages]` (the store's limits) and `[auth]` (bearer tokens).

use bytesize::ByteSize;
use platform::config::Secret;
use serde::{Deserialize, Serialize};

/// messages' own sections: `[messages]` and `[auth]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MessagesSettings {
    /// `[messages]`.
    #[serde(default)]
    pub messages: StoreSettings,
    /// `[auth]`.
    #[serde(default)]
    pub auth: AuthSettings,
}

/// `[messages]`: limits of the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// Longest message in UTF-8 bytes; above it a POST gets a 413 problem. Default `64KiB`.
    pub max_bytes: ByteSize,
    /// Largest `limit` of a listing page. Default 1000.
    pub max_page: usize,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            max_bytes: ByteSize::kib(64),
            max_page: 1000,
        }
    }
}

/// `[auth]`: optional bearer tokens.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Accepted bearer tokens; when any is set, every `/messages` route needs one. In the
    /// environment a comma-separated list (`MESSAGES__AUTH__TOKENS`). Default: none.
    #[serde(deserialize_with = "platform::config::list::deserialize")]
    pub tokens: Vec<Secret>,
}
