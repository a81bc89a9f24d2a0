//! The note pages: the list (all notes, or a pad's, which `pads.rs` shows through
//! [`note_list`]), one note, and its create, edit and delete forms.

use axum::extract::{Form, Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::{PageQuery, html, layout, parse_id};
use crate::domain::{self, Order};
use crate::error::NotesError;
use crate::session::{self, Flash, SignedIn};
use crate::state::AppState;
use crate::storage::{Note, NoteFields, Pad};
use crate::templates::{NoteDeletePage, NoteFormPage, NotePage, NoteRow, NotesPage, PadOption};

/// `?order=` of a note list.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct OrderQuery {
    pub(super) order: Option<String>,
}

/// The list page of the user's notes: all of them, or those of `pad`.
pub(super) async fn note_list(
    state: &AppState,
    signed_in: &SignedIn,
    pad: Option<Pad>,
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

/// `GET /`: all the user's notes, in `?order=`.
pub(crate) async fn all_notes(
    State(state): State<AppState>,
    signed_in: SignedIn,
    PageQuery(query): PageQuery<OrderQuery>,
) -> Result<Response, NotesError> {
    let order = Order::parse(query.order.as_deref());
    note_list(&state, &signed_in, None, order).await
}

/// The note form; `pad` is an id, or empty for none.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NoteForm {
    name: String,
    text: String,
    pad: String,
}

/// `?pad=`: the pad a new note form preselects.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PadQuery {
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

/// `GET /notes/create/`: the new note form, `?pad=` preselected.
pub(crate) async fn note_create_form(
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

/// `POST /notes/create/`: creates the note, or shows the form again with its errors.
pub(crate) async fn note_create(
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
) -> Result<Note, NotesError> {
    let id = parse_id(raw_id)?;
    state
        .repository
        .note(signed_in.user.id, id)
        .await?
        .ok_or(NotesError::NotFound("no such note"))
}

/// `GET /notes/{id}/`: one note.
pub(crate) async fn note_view(
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

/// `GET /notes/{id}/edit/`: the note's form, filled in.
pub(crate) async fn note_edit_form(
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

/// `POST /notes/{id}/edit/`: saves the note, or shows the form again with its errors.
pub(crate) async fn note_edit(
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

/// `GET /notes/{id}/delete/`: asks to confirm.
pub(crate) async fn note_delete_form(
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

/// `POST /notes/{id}/delete/`: deletes the note.
pub(crate) async fn note_delete(
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
