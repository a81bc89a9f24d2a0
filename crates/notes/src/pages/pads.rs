//! The pad pages: a pad's notes, and its create, rename and delete forms.

use axum::extract::{Form, Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::notes::{OrderQuery, note_list};
use super::{PageQuery, html, layout, parse_id};
use crate::domain::{self, Order};
use crate::error::NotesError;
use crate::session::{self, Flash, SignedIn};
use crate::state::AppState;
use crate::storage::Pad;
use crate::templates::{PadDeletePage, PadFormPage};

/// The pad form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PadForm {
    name: String,
}

async fn find_pad(state: &AppState, signed_in: &SignedIn, raw_id: &str) -> Result<Pad, NotesError> {
    let id = parse_id(raw_id)?;
    state
        .repository
        .pad(signed_in.user.id, id)
        .await?
        .ok_or(NotesError::NotFound("no such pad"))
}

/// `GET /pads/{id}/`: the pad's notes, in `?order=`.
pub(crate) async fn pad_view(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    PageQuery(query): PageQuery<OrderQuery>,
) -> Result<Response, NotesError> {
    let pad = find_pad(&state, &signed_in, &id).await?;
    let order = Order::parse(query.order.as_deref());
    note_list(&state, &signed_in, Some(pad), order).await
}

/// `GET /pads/create/`: the new pad form.
pub(crate) async fn pad_create_form(
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

/// `POST /pads/create/`: creates the pad, or shows the form again with its error.
pub(crate) async fn pad_create(
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

/// `GET /pads/{id}/edit/`: the pad's form, filled in.
pub(crate) async fn pad_edit_form(
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

/// `POST /pads/{id}/edit/`: renames the pad, or shows the form again with its error.
pub(crate) async fn pad_edit(
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

/// `GET /pads/{id}/delete/`: asks to confirm.
pub(crate) async fn pad_delete_form(
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

/// `POST /pads/{id}/delete/`: deletes the pad and its notes.
pub(crate) async fn pad_delete(
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
