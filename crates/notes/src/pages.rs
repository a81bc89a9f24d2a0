//! The HTML pages: handlers extract the visitor and the form, call the domain rules and the
//! repository, and render a template or redirect. Every path answers with and without its
//! trailing slash.
//!
//! - Users: `/signup/`, `/signin/`, `/signout/`, `/forgot-password/`,
//!   `/reset-password/<token>/`, `/settings/`.
//! - Notes: `/` (all notes), `/notes/create/`, `/notes/<id>/`, `/notes/<id>/edit/`,
//!   `/notes/<id>/delete/`.
//! - Pads: `/pads/create/`, `/pads/<id>/`, `/pads/<id>/edit/`, `/pads/<id>/delete/`.
//! - `/static/style.css`.

use askama::Template;
use axum::Router;
use axum::extract::{Form, FromRequestParts, Path, State};
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde::Deserialize;

use crate::domain::{self, Order};
use crate::error::NotesError;
use crate::session::{self, Flash, SignedIn, Visitor};
use crate::state::AppState;
use crate::storage::NoteFields;
use crate::templates::{
    ForgotPage, Layout, NoteDeletePage, NoteFormPage, NotePage, NoteRow, NotesPage, PadDeletePage,
    PadFormPage, PadLink, PadOption, ResetPage, SettingsPage, SignInPage, SignOutPage, SignUpPage,
};
use crate::users;

/// What pages allow themselves: the stylesheet from this origin, forms posting back here, no
/// scripts at all, never framed.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("../static/style.css");

/// The pages, behind the session and CSRF middleware, and the stylesheet.
pub fn router(state: AppState) -> Router {
    let pages = [
        ("/", get(all_notes)),
        ("/signup/", get(signup_form).post(signup)),
        ("/signin/", get(signin_form).post(signin)),
        ("/signout/", get(signout_form).post(signout)),
        ("/forgot-password/", get(forgot_form).post(forgot)),
        ("/reset-password/{token}/", get(reset_form).post(reset)),
        ("/settings/", get(settings_form).post(settings)),
        ("/notes/create/", get(note_create_form).post(note_create)),
        ("/notes/{id}/", get(note_view)),
        ("/notes/{id}/edit/", get(note_edit_form).post(note_edit)),
        (
            "/notes/{id}/delete/",
            get(note_delete_form).post(note_delete),
        ),
        ("/pads/create/", get(pad_create_form).post(pad_create)),
        ("/pads/{id}/", get(pad_view)),
        ("/pads/{id}/edit/", get(pad_edit_form).post(pad_edit)),
        ("/pads/{id}/delete/", get(pad_delete_form).post(pad_delete)),
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
        .route("/static/style.css", get(stylesheet))
        .with_state(state)
}

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

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Renders `page` as an HTML response with the pages' own CSP, never cached.
fn html(page: &impl Template) -> Result<Response, NotesError> {
    let body = page.render()?;
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The layout of a page titled `title`, with the sidebar when signed in.
async fn layout(
    state: &AppState,
    visitor: &Visitor,
    title: impl Into<String>,
    current_pad: Option<i64>,
) -> Result<Layout, NotesError> {
    let (user, pads) = match &visitor.session {
        Some(session) => {
            let pads = state.repository.pads(session.user.id).await?;
            let links = pads
                .into_iter()
                .map(|pad| PadLink {
                    current: Some(pad.id) == current_pad,
                    id: pad.id,
                    name: pad.name,
                })
                .collect();
            (Some(session.user.email.clone()), links)
        }
        None => (None, Vec::new()),
    };
    Ok(Layout {
        title: title.into(),
        user,
        pads,
        flash: visitor.flash.map(Flash::text),
        csrf_token: visitor.csrf_token.clone(),
    })
}

/// A positive integer id from the path; anything else is not found.
fn parse_id(raw: &str) -> Result<i64, NotesError> {
    match raw.parse::<i64>() {
        Ok(id) if id > 0 && raw.bytes().all(|b| b.is_ascii_digit()) => Ok(id),
        _ => Err(NotesError::NotFound("no such page")),
    }
}

// ---- Users ----------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SignUpForm {
    email: String,
    password: String,
    confirm_password: String,
}

async fn signup_form(
    State(state): State<AppState>,
    visitor: Visitor,
) -> Result<Response, NotesError> {
    html(&SignUpPage {
        layout: layout(&state, &visitor, "Sign up", None).await?,
        email: String::new(),
        email_error: None,
        password_error: None,
        confirm_error: None,
    })
}

async fn signup(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(form): Form<SignUpForm>,
) -> Result<Response, NotesError> {
    let email = domain::parse_email(&form.email);
    let password = domain::check_new_password(&form.password);
    let confirmation = domain::check_confirmation(&form.password, &form.confirm_password);
    let mut page = SignUpPage {
        layout: layout(&state, &visitor, "Sign up", None).await?,
        email: form.email.trim().to_owned(),
        email_error: email.as_ref().err().copied(),
        password_error: password.err(),
        confirm_error: if password.is_ok() {
            confirmation.err()
        } else {
            None
        },
    };
    let Ok(email) = email else { return html(&page) };
    if password.is_err() || confirmation.is_err() {
        return html(&page);
    }
    if state.repository.user_by_email(&email).await?.is_some() {
        page.email_error = Some("User with given email already exists!");
        return html(&page);
    }
    let hash = state.passwords.hash(form.password).await?;
    let created = state
        .repository
        .create_user(&email, &hash, domain::micros(state.clock.now_utc()))
        .await?;
    if created.is_none() {
        page.email_error = Some("User with given email already exists!");
        return html(&page);
    }
    Ok(session::redirect_flash(&state, "/signin/", Flash::SignedUp))
}

/// A page's query parameters, lenient as a browser's link deserves: the first value of a
/// repeated parameter is kept and the rest ignored, and a bad value counts as a missing one (its
/// default), so a page never answers `400` for its query string. (The JSON API answers a `400`
/// problem that names the parameter instead.)
struct PageQuery<T>(T);

impl<S, T> FromRequestParts<S> for PageQuery<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned + Default,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|query| query.0)
            .unwrap_or_default();
        let mut first = serde_json::Map::new();
        for (name, value) in pairs {
            first
                .entry(name)
                .or_insert(serde_json::Value::String(value));
        }
        Ok(PageQuery(
            serde_json::from_value(serde_json::Value::Object(first)).unwrap_or_default(),
        ))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NextQuery {
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SignInForm {
    email: String,
    password: String,
    next: String,
}

async fn signin_form(
    State(state): State<AppState>,
    visitor: Visitor,
    PageQuery(query): PageQuery<NextQuery>,
) -> Result<Response, NotesError> {
    html(&SignInPage {
        layout: layout(&state, &visitor, "Sign in", None).await?,
        email: String::new(),
        next: query.next.unwrap_or_default(),
        error: None,
        email_error: None,
        password_error: None,
    })
}

async fn signin(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(form): Form<SignInForm>,
) -> Result<Response, NotesError> {
    let mut page = SignInPage {
        layout: layout(&state, &visitor, "Sign in", None).await?,
        email: form.email.trim().to_owned(),
        next: form.next.clone(),
        error: None,
        email_error: form.email.trim().is_empty().then_some("Email is required"),
        password_error: form.password.is_empty().then_some("Password is required"),
    };
    if page.email_error.is_some() || page.password_error.is_some() {
        crate::metrics::count_signin("invalid");
        return html(&page);
    }
    let email = domain::normalize_email(&form.email);
    if let Err(wait) = state.signin_limiter.check(&email, visitor.client_ip) {
        crate::metrics::count_signin("rate_limited");
        return Err(NotesError::RateLimited(wait));
    }
    let user = state.repository.user_by_email(&email).await?;
    let Some(user) = user else {
        // Still hashes, so the answer takes as long as for a registered email.
        state.passwords.verify(form.password, None).await?;
        crate::metrics::count_signin("unknown_user");
        page.error = Some("Wrong email or password");
        return html(&page);
    };
    if !state
        .passwords
        .verify(form.password, Some(user.password_hash.clone()))
        .await?
    {
        crate::metrics::count_signin("wrong_password");
        page.error = Some("Wrong email or password");
        return html(&page);
    }
    // A fresh session id at every sign-in: one fixed before sign-in is worth nothing after.
    if let Some(old) = &visitor.session_hash {
        state.repository.delete_session(old).await?;
    }
    let cookie = state.start_session(user.id).await?;
    crate::metrics::count_signin("success");
    Ok(session::redirect(
        domain::safe_next(Some(&form.next)),
        &[cookie],
    ))
}

async fn signout_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, NotesError> {
    html(&SignOutPage {
        layout: layout(&state, &signed_in.visitor, "Sign out", None).await?,
    })
}

async fn signout(State(state): State<AppState>, visitor: Visitor) -> Result<Response, NotesError> {
    if let Some(hash) = &visitor.session_hash {
        state.repository.delete_session(hash).await?;
    }
    Ok(session::redirect(
        "/signin/",
        &[
            state.expired_cookie(session::SESSION_COOKIE),
            state.flash_cookie(Flash::SignedOut),
        ],
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ForgotForm {
    email: String,
}

async fn forgot_form(
    State(state): State<AppState>,
    visitor: Visitor,
) -> Result<Response, NotesError> {
    html(&ForgotPage {
        layout: layout(&state, &visitor, "Forgot password", None).await?,
        email: String::new(),
        email_error: None,
    })
}

async fn forgot(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(form): Form<ForgotForm>,
) -> Result<Response, NotesError> {
    let email = match domain::parse_email(&form.email) {
        Ok(email) => email,
        Err(error) => {
            return html(&ForgotPage {
                layout: layout(&state, &visitor, "Forgot password", None).await?,
                email: form.email.trim().to_owned(),
                email_error: Some(error),
            });
        }
    };
    if let Err(wait) = state.signin_limiter.check(&email, visitor.client_ip) {
        return Err(NotesError::RateLimited(wait));
    }
    // The answer is the same whether or not the email is registered.
    if let Some(user) = state.repository.user_by_email(&email).await? {
        let token = users::new_token();
        let expires = state.clock.now_utc() + state.reset_token_ttl;
        state
            .repository
            .create_password_reset(&users::token_hash(&token), user.id, domain::micros(expires))
            .await?;
        let link = format!("{}/reset-password/{token}/", state.public_url);
        state.mailer.send_reset_link(&user.email, &link).await?;
    }
    Ok(session::redirect_flash(
        &state,
        "/signin/",
        Flash::ResetSent,
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ResetForm {
    password: String,
    confirm_password: String,
}

const RESET_LINK_INVALID: &str = "this password reset link is invalid, used or expired";

fn reset_token_hash(token: &str) -> Result<String, NotesError> {
    let token = token.trim_end_matches('/');
    if token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(users::token_hash(token))
    } else {
        Err(NotesError::NotFound(RESET_LINK_INVALID))
    }
}

async fn reset_form(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(token): Path<String>,
) -> Result<Response, NotesError> {
    let hash = reset_token_hash(&token)?;
    let now = domain::micros(state.clock.now_utc());
    if state
        .repository
        .password_reset_user(&hash, now)
        .await?
        .is_none()
    {
        return Err(NotesError::NotFound(RESET_LINK_INVALID));
    }
    html(&ResetPage {
        layout: layout(&state, &visitor, "New password", None).await?,
        token,
        password_error: None,
        confirm_error: None,
    })
}

async fn reset(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(token): Path<String>,
    Form(form): Form<ResetForm>,
) -> Result<Response, NotesError> {
    let hash = reset_token_hash(&token)?;
    let password = domain::check_new_password(&form.password);
    let confirmation = domain::check_confirmation(&form.password, &form.confirm_password);
    if password.is_err() || confirmation.is_err() {
        return html(&ResetPage {
            layout: layout(&state, &visitor, "New password", None).await?,
            token,
            password_error: password.err(),
            confirm_error: if password.is_ok() {
                confirmation.err()
            } else {
                None
            },
        });
    }
    let new_hash = state.passwords.hash(form.password).await?;
    let now = domain::micros(state.clock.now_utc());
    let Some(user_id) = state.repository.consume_password_reset(&hash, now).await? else {
        return Err(NotesError::NotFound(RESET_LINK_INVALID));
    };
    state.repository.set_password(user_id, &new_hash).await?;
    state.repository.delete_sessions_of(user_id).await?;
    Ok(session::redirect_flash(
        &state,
        "/signin/",
        Flash::PasswordChanged,
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SettingsForm {
    current_password: String,
    new_password: String,
    confirm_new_password: String,
}

async fn settings_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, NotesError> {
    html(&SettingsPage {
        layout: layout(&state, &signed_in.visitor, "Account settings", None).await?,
        current_error: None,
        new_error: None,
        confirm_error: None,
    })
}

async fn settings(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<SettingsForm>,
) -> Result<Response, NotesError> {
    let current_ok = state
        .passwords
        .verify(
            form.current_password,
            Some(signed_in.user.password_hash.clone()),
        )
        .await?;
    let password = domain::check_new_password(&form.new_password);
    let confirmation = domain::check_confirmation(&form.new_password, &form.confirm_new_password);
    if !current_ok || password.is_err() || confirmation.is_err() {
        return html(&SettingsPage {
            layout: layout(&state, &signed_in.visitor, "Account settings", None).await?,
            current_error: (!current_ok).then_some("Current password is not correct"),
            new_error: password.err(),
            confirm_error: if password.is_ok() {
                confirmation.err()
            } else {
                None
            },
        });
    }
    let hash = state.passwords.hash(form.new_password).await?;
    let user_id = signed_in.user.id;
    state.repository.set_password(user_id, &hash).await?;
    // Every other browser signed in as this user is signed out; this one gets a new session.
    state.repository.delete_sessions_of(user_id).await?;
    let cookie = state.start_session(user_id).await?;
    Ok(session::redirect(
        "/",
        &[cookie, state.flash_cookie(Flash::PasswordChanged)],
    ))
}

// ---- Notes ----------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OrderQuery {
    order: Option<String>,
}

async fn note_list(
    state: &AppState,
    signed_in: &SignedIn,
    pad: Option<crate::storage::Pad>,
    order: Order,
) -> Result<Response, NotesError> {
    let pad_id = pad.as_ref().map(|pad| pad.id);
    let notes = state
        .repository
        .notes(signed_in.user.id, pad_id, order)
        .await?;
    let now = state.clock.now_utc();
    let rows = notes
        .into_iter()
        .map(|note| NoteRow {
            id: note.id,
            name: note.name,
            pad_id: note.pad_id,
            pad_name: note.pad_name.unwrap_or_default(),
            last_modified: domain::last_modified(note.updated_at, now),
        })
        .collect();
    let (heading, base_path) = match &pad {
        Some(pad) => (pad.name.clone(), format!("/pads/{}/", pad.id)),
        None => ("All notes".to_owned(), "/".to_owned()),
    };
    html(&NotesPage {
        layout: layout(state, &signed_in.visitor, heading.clone(), pad_id).await?,
        heading,
        pad_id,
        rows,
        order: order.as_query(),
        base_path,
    })
}

async fn all_notes(
    State(state): State<AppState>,
    signed_in: SignedIn,
    PageQuery(query): PageQuery<OrderQuery>,
) -> Result<Response, NotesError> {
    let order = Order::parse(query.order.as_deref());
    note_list(&state, &signed_in, None, order).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NoteForm {
    name: String,
    text: String,
    pad: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PadQuery {
    pad: Option<String>,
}

/// The select's options, `selected` preselected.
async fn pad_options(
    state: &AppState,
    user_id: i64,
    selected: Option<i64>,
) -> Result<Vec<PadOption>, NotesError> {
    Ok(state
        .repository
        .pads(user_id)
        .await?
        .into_iter()
        .map(|pad| PadOption {
            selected: Some(pad.id) == selected,
            id: pad.id,
            name: pad.name,
        })
        .collect())
}

async fn note_create_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
    PageQuery(query): PageQuery<PadQuery>,
) -> Result<Response, NotesError> {
    let selected = query.pad.as_deref().and_then(|raw| parse_id(raw).ok());
    html(&NoteFormPage {
        layout: layout(&state, &signed_in.visitor, "New note", selected).await?,
        heading: "New note",
        action: "/notes/create/".to_owned(),
        name: String::new(),
        text: String::new(),
        pads: pad_options(&state, signed_in.user.id, selected).await?,
        name_error: None,
        text_error: None,
        pad_error: None,
    })
}

/// Checks a note form; `Err` is the page to show again, with its errors.
async fn validate_note(
    state: &AppState,
    signed_in: &SignedIn,
    form: &NoteForm,
    heading: &'static str,
    action: String,
) -> Result<Result<(String, String, Option<i64>), NoteFormPage>, NotesError> {
    let name = domain::parse_name(&form.name);
    let text = domain::parse_text(&form.text);
    let pad = match form.pad.trim() {
        "" => Ok(None),
        raw => match parse_id(raw) {
            Ok(id) if state.repository.pad(signed_in.user.id, id).await?.is_some() => Ok(Some(id)),
            _ => Err("Pad does not exist"),
        },
    };
    match (name, text, pad) {
        (Ok(name), Ok(text), Ok(pad)) => Ok(Ok((name, text, pad))),
        (name, text, pad) => {
            let selected = pad.ok().flatten();
            Ok(Err(NoteFormPage {
                layout: layout(state, &signed_in.visitor, heading, None).await?,
                heading,
                action,
                name: form.name.clone(),
                text: form.text.clone(),
                pads: pad_options(state, signed_in.user.id, selected).await?,
                name_error: name.err(),
                text_error: text.err(),
                pad_error: pad.err(),
            }))
        }
    }
}

async fn note_create(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<NoteForm>,
) -> Result<Response, NotesError> {
    let validate = || {
        validate_note(
            &state,
            &signed_in,
            &form,
            "New note",
            "/notes/create/".into(),
        )
    };
    let (name, text, pad_id) = match validate().await? {
        Ok(fields) => fields,
        Err(page) => return html(&page),
    };
    let fields = NoteFields {
        pad_id,
        name: &name,
        text: &text,
    };
    let created = state
        .repository
        .create_note(
            signed_in.user.id,
            &fields,
            domain::micros(state.clock.now_utc()),
        )
        .await?;
    let Some(note) = created else {
        // The pad went between the form's check and the insert: the form again, which now
        // says so.
        return match validate().await? {
            Err(page) => html(&page),
            Ok(_) => Err(NotesError::NotFound("no such pad")),
        };
    };
    Ok(session::redirect_flash(
        &state,
        &format!("/notes/{}/", note.id),
        Flash::NoteCreated,
    ))
}

async fn find_note(
    state: &AppState,
    signed_in: &SignedIn,
    raw_id: &str,
) -> Result<crate::storage::Note, NotesError> {
    let id = parse_id(raw_id)?;
    state
        .repository
        .note(signed_in.user.id, id)
        .await?
        .ok_or(NotesError::NotFound("no such note"))
}

async fn note_view(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, NotesError> {
    let note = find_note(&state, &signed_in, &id).await?;
    html(&NotePage {
        layout: layout(&state, &signed_in.visitor, note.name.clone(), note.pad_id).await?,
        id: note.id,
        name: note.name,
        text: note.text,
        pad_id: note.pad_id,
        pad_name: note.pad_name.unwrap_or_default(),
        last_modified: domain::last_modified(note.updated_at, state.clock.now_utc()),
    })
}

async fn note_edit_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, NotesError> {
    let note = find_note(&state, &signed_in, &id).await?;
    html(&NoteFormPage {
        layout: layout(&state, &signed_in.visitor, "Edit note", note.pad_id).await?,
        heading: "Edit note",
        action: format!("/notes/{}/edit/", note.id),
        pads: pad_options(&state, signed_in.user.id, note.pad_id).await?,
        name: note.name,
        text: note.text,
        name_error: None,
        text_error: None,
        pad_error: None,
    })
}

async fn note_edit(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<NoteForm>,
) -> Result<Response, NotesError> {
    let note = find_note(&state, &signed_in, &id).await?;
    let action = format!("/notes/{}/edit/", note.id);
    let (name, text, pad_id) =
        match validate_note(&state, &signed_in, &form, "Edit note", action).await? {
            Ok(fields) => fields,
            Err(page) => return html(&page),
        };
    let fields = NoteFields {
        pad_id,
        name: &name,
        text: &text,
    };
    if !state
        .repository
        .update_note(
            signed_in.user.id,
            note.id,
            &fields,
            domain::micros(state.clock.now_utc()),
        )
        .await?
    {
        return Err(NotesError::NotFound("no such note"));
    }
    Ok(session::redirect_flash(
        &state,
        &format!("/notes/{}/", note.id),
        Flash::NoteUpdated,
    ))
}

async fn note_delete_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, NotesError> {
    let note = find_note(&state, &signed_in, &id).await?;
    html(&NoteDeletePage {
        layout: layout(&state, &signed_in.visitor, "Delete note", note.pad_id).await?,
        id: note.id,
        name: note.name,
    })
}

async fn note_delete(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, NotesError> {
    let id = parse_id(&id)?;
    if !state.repository.delete_note(signed_in.user.id, id).await? {
        return Err(NotesError::NotFound("no such note"));
    }
    Ok(session::redirect_flash(&state, "/", Flash::NoteDeleted))
}

// ---- Pads -----------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PadForm {
    name: String,
}

async fn find_pad(
    state: &AppState,
    signed_in: &SignedIn,
    raw_id: &str,
) -> Result<crate::storage::Pad, NotesError> {
    let id = parse_id(raw_id)?;
    state
        .repository
        .pad(signed_in.user.id, id)
        .await?
        .ok_or(NotesError::NotFound("no such pad"))
}

async fn pad_view(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    PageQuery(query): PageQuery<OrderQuery>,
) -> Result<Response, NotesError> {
    let pad = find_pad(&state, &signed_in, &id).await?;
    let order = Order::parse(query.order.as_deref());
    note_list(&state, &signed_in, Some(pad), order).await
}

async fn pad_create_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, NotesError> {
    html(&PadFormPage {
        layout: layout(&state, &signed_in.visitor, "New pad", None).await?,
        heading: "New pad",
        action: "/pads/create/".to_owned(),
        name: String::new(),
        name_error: None,
        pad_id: None,
    })
}

async fn pad_create(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(form): Form<PadForm>,
) -> Result<Response, NotesError> {
    let name = match domain::parse_name(&form.name) {
        Ok(name) => name,
        Err(error) => {
            return html(&PadFormPage {
                layout: layout(&state, &signed_in.visitor, "New pad", None).await?,
                heading: "New pad",
                action: "/pads/create/".to_owned(),
                name: form.name,
                name_error: Some(error),
                pad_id: None,
            });
        }
    };
    let id = state
        .repository
        .create_pad(
            signed_in.user.id,
            &name,
            domain::micros(state.clock.now_utc()),
        )
        .await?;
    Ok(session::redirect_flash(
        &state,
        &format!("/pads/{id}/"),
        Flash::PadCreated,
    ))
}

async fn pad_edit_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, NotesError> {
    let pad = find_pad(&state, &signed_in, &id).await?;
    html(&PadFormPage {
        layout: layout(&state, &signed_in.visitor, "Edit pad", Some(pad.id)).await?,
        heading: "Edit pad",
        action: format!("/pads/{}/edit/", pad.id),
        name: pad.name,
        name_error: None,
        pad_id: Some(pad.id),
    })
}

async fn pad_edit(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<PadForm>,
) -> Result<Response, NotesError> {
    let pad = find_pad(&state, &signed_in, &id).await?;
    let name = match domain::parse_name(&form.name) {
        Ok(name) => name,
        Err(error) => {
            return html(&PadFormPage {
                layout: layout(&state, &signed_in.visitor, "Edit pad", Some(pad.id)).await?,
                heading: "Edit pad",
                action: format!("/pads/{}/edit/", pad.id),
                name: form.name,
                name_error: Some(error),
                pad_id: Some(pad.id),
            });
        }
    };
    state
        .repository
        .rename_pad(
            signed_in.user.id,
            pad.id,
            &name,
            domain::micros(state.clock.now_utc()),
        )
        .await?;
    Ok(session::redirect_flash(
        &state,
        &format!("/pads/{}/", pad.id),
        Flash::PadUpdated,
    ))
}

async fn pad_delete_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, NotesError> {
    let pad = find_pad(&state, &signed_in, &id).await?;
    html(&PadDeletePage {
        layout: layout(&state, &signed_in.visitor, "Delete pad", Some(pad.id)).await?,
        id: pad.id,
        name: pad.name,
    })
}

async fn pad_delete(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, NotesError> {
    let id = parse_id(&id)?;
    if !state.repository.delete_pad(signed_in.user.id, id).await? {
        return Err(NotesError::NotFound("no such pad"));
    }
    Ok(session::redirect_flash(&state, "/", Flash::PadDeleted))
}
