//! Every path notes answers, and the handler behind it.
//!
//! - Pages (`pages/`), each path with and without its trailing slash, behind the session
//!   middleware (session, CSRF check of every form POST, flash):
//!   - accounts: `/signup/`, `/signin/`, `/signout/`, `/forgot-password/`,
//!     `/reset-password/<token>/`, `/settings/`;
//!   - notes: `/` (all notes), `/notes/create/`, `/notes/<id>/`, `/notes/<id>/edit/`,
//!     `/notes/<id>/delete/`;
//!   - pads: `/pads/create/`, `/pads/<id>/`, `/pads/<id>/edit/`, `/pads/<id>/delete/`.
//! - `/static/style.css`, outside the middleware: it needs no session.
//! - The JSON API (`api.rs`, which also holds its OpenAPI document): `/api/v1/tokens`,
//!   `/api/v1/pads[/<id>]`, `/api/v1/notes[/<id>]`, authenticated per request by its `ApiUser`
//!   extractor rather than by the page middleware.

use axum::Router;
use axum::middleware;
use axum::routing::{MethodRouter, get, post};

use crate::api;
use crate::pages::{self, accounts, notes, pads};
use crate::session;
use crate::state::AppState;

/// The service's router: the pages and the JSON API over one `state`.
pub fn router(state: AppState) -> Router {
    pages_router(state.clone()).merge(api_router(state))
}

/// The pages, behind the session and CSRF middleware, and the stylesheet.
fn pages_router(state: AppState) -> Router {
    let pages = [
        ("/", get(notes::all_notes)),
        (
            "/signup/",
            get(accounts::signup_form).post(accounts::signup),
        ),
        (
            "/signin/",
            get(accounts::signin_form).post(accounts::signin),
        ),
        (
            "/signout/",
            get(accounts::signout_form).post(accounts::signout),
        ),
        (
            "/forgot-password/",
            get(accounts::forgot_form).post(accounts::forgot),
        ),
        (
            "/reset-password/{token}/",
            get(accounts::reset_form).post(accounts::reset),
        ),
        (
            "/settings/",
            get(accounts::settings_form).post(accounts::settings),
        ),
        (
            "/notes/create/",
            get(notes::note_create_form).post(notes::note_create),
        ),
        ("/notes/{id}/", get(notes::note_view)),
        (
            "/notes/{id}/edit/",
            get(notes::note_edit_form).post(notes::note_edit),
        ),
        (
            "/notes/{id}/delete/",
            get(notes::note_delete_form).post(notes::note_delete),
        ),
        (
            "/pads/create/",
            get(pads::pad_create_form).post(pads::pad_create),
        ),
        ("/pads/{id}/", get(pads::pad_view)),
        (
            "/pads/{id}/edit/",
            get(pads::pad_edit_form).post(pads::pad_edit),
        ),
        (
            "/pads/{id}/delete/",
            get(pads::pad_delete_form).post(pads::pad_delete),
        ),
    ];
    let mut router: Router<AppState> = Router::new();
    for (path, handler) in pages {
        router = with_and_without_slash(router, path, handler);
    }
    router
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            session::middleware,
        ))
        .route("/static/style.css", get(pages::stylesheet))
        .with_state(state)
}

/// Routes `path` and, unless it is the root, the same path without its trailing slash, so both
/// spellings of a page's address answer.
fn with_and_without_slash(
    router: Router<AppState>,
    path: &str,
    handler: MethodRouter<AppState>,
) -> Router<AppState> {
    let bare = path.trim_end_matches('/');
    if bare.is_empty() {
        router.route(path, handler)
    } else {
        router.route(bare, handler.clone()).route(path, handler)
    }
}

/// The JSON API's routes.
fn api_router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/tokens", post(api::create_token))
        .route("/api/v1/pads", get(api::list_pads).post(api::create_pad))
        .route(
            "/api/v1/pads/{id}",
            get(api::get_pad)
                .put(api::update_pad)
                .delete(api::delete_pad),
        )
        .route("/api/v1/notes", get(api::list_notes).post(api::create_note))
        .route(
            "/api/v1/notes/{id}",
            get(api::get_note)
                .put(api::update_note)
                .delete(api::delete_note),
        )
        .with_state(state)
}
