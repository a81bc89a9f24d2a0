//! chat's routes:
//!
//! - `GET /`: the lobby; `GET /rooms?room=&name=`: its form's target; `GET /rooms/{room}`: a
//!   room's page; `GET /static/chat.js` and `GET /static/chat.css` (all in `pages.rs`);
//! - `GET /ws`: the WebSocket (`connection.rs`).

use axum::Router;
use axum::routing::get;

use crate::state::AppState;
use crate::{connection, pages};

/// Every route of the service, sharing `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::lobby))
        .route("/rooms", get(pages::enter))
        .route("/rooms/{room}", get(pages::room))
        .route("/static/chat.js", get(pages::script))
        .route("/static/chat.css", get(pages::style))
        .route("/ws", get(connection::upgrade))
        .with_state(state)
}
