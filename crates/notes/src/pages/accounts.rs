//! The account pages: sign up, sign in, sign out, the password reset by mail, and the password
//! change in settings.

use axum::extract::{Form, Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::{PageQuery, html, layout};
use crate::domain;
use crate::error::NotesError;
use crate::session::{self, Flash, SignedIn, Visitor};
use crate::state::AppState;
use crate::templates::{ForgotPage, ResetPage, SettingsPage, SignInPage, SignOutPage, SignUpPage};
use crate::users;

/// The sign-up form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SignUpForm {
    email: String,
    password: String,
    confirm_password: String,
}

/// `GET /signup/`: the sign-up form.
pub(crate) async fn signup_form(
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

/// `POST /signup/`: creates the account and sends the visitor to sign in, or shows the form
/// again with its errors.
pub(crate) async fn signup(
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

/// `?next=`: where to go after signing in.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

/// The sign-in form; `next` is carried through from the query.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SignInForm {
    email: String,
    password: String,
    next: String,
}

/// `GET /signin/`: the sign-in form, carrying `?next=` through.
pub(crate) async fn signin_form(
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

/// `POST /signin/`: checks the password within the sign-in limits and starts a fresh session.
pub(crate) async fn signin(
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

/// `GET /signout/`: asks to confirm.
pub(crate) async fn signout_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, NotesError> {
    html(&SignOutPage {
        layout: layout(&state, &signed_in.visitor, "Sign out", None).await?,
    })
}

/// `POST /signout/`: ends the session on the server and in the browser.
pub(crate) async fn signout(
    State(state): State<AppState>,
    visitor: Visitor,
) -> Result<Response, NotesError> {
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

/// The form that asks for a reset link.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ForgotForm {
    email: String,
}

/// `GET /forgot-password/`: the form that asks for a reset link.
pub(crate) async fn forgot_form(
    State(state): State<AppState>,
    visitor: Visitor,
) -> Result<Response, NotesError> {
    html(&ForgotPage {
        layout: layout(&state, &visitor, "Forgot password", None).await?,
        email: String::new(),
        email_error: None,
    })
}

/// `POST /forgot-password/`: mails a reset link when the email is registered; the answer is
/// the same when it is not.
pub(crate) async fn forgot(
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

/// The new-password form of a reset link.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ResetForm {
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

/// `GET /reset-password/{token}/`: the new-password form, while the link is live.
pub(crate) async fn reset_form(
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

/// `POST /reset-password/{token}/`: sets the password, uses the link up and ends every session
/// of the account.
pub(crate) async fn reset(
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

/// The password change form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SettingsForm {
    current_password: String,
    new_password: String,
    confirm_new_password: String,
}

/// `GET /settings/`: the password change form.
pub(crate) async fn settings_form(
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

/// `POST /settings/`: changes the password and ends every other session of the account.
pub(crate) async fn settings(
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
