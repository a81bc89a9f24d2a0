//! Optional bearer-token authentication (`auth.tokens`): when tokens are configured, every
//! `/messages` route needs `Authorization: Bearer <one of them>`.
//!
//! Tokens are compared as SHA-256 digests in constant time, against every configured token
//! without stopping early, so neither the timing nor the length of a guess tells anything.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use platform::config::Secret;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::error::MessagesError;

/// The accepted tokens, hashed. Empty means authentication is off.
#[derive(Clone, Default)]
pub struct Tokens(Arc<Vec<[u8; 32]>>);

impl Tokens {
    /// The tokens of `auth.tokens`.
    pub fn new(tokens: &[Secret]) -> Tokens {
        Tokens(Arc::new(
            tokens
                .iter()
                .map(|token| Sha256::digest(token.expose().as_bytes()).into())
                .collect(),
        ))
    }

    /// Whether authentication is on.
    pub fn required(&self) -> bool {
        !self.0.is_empty()
    }

    /// Whether `presented` is one of the tokens.
    pub fn accepts(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut matched = subtle::Choice::from(0);
        for token in self.0.iter() {
            matched |= token.ct_eq(&presented);
        }
        matched.into()
    }

    /// Middleware: lets a request through when authentication is off or its bearer token is
    /// accepted; otherwise answers 401 with a `WWW-Authenticate` challenge.
    pub async fn enforce(State(tokens): State<Tokens>, request: Request, next: Next) -> Response {
        if !tokens.required() {
            return next.run(request).await;
        }
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        match presented {
            None => MessagesError::Unauthorized(
                "no bearer token was sent; send `Authorization: Bearer <token>`",
            )
            .into_response(),
            Some(token) if tokens.accepts(token) => next.run(request).await,
            Some(_) => MessagesError::Unauthorized("the bearer token is not valid").into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_tokens_are_accepted() {
        let tokens = Tokens::new(&[Secret::new("alpha"), Secret::new("beta")]);
        assert!(tokens.required());
        assert!(tokens.accepts("alpha") && tokens.accepts("beta"));
        for wrong in ["", "alph", "alphaa", "ALPHA", "gamma"] {
            assert!(!tokens.accepts(wrong), "{wrong}");
        }
        assert!(!Tokens::new(&[]).required());
    }
}
