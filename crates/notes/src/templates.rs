//! The pages' templates (askama: checked at compile time, every `{{ }}` HTML-escaped), one struct
//! per file under `templates/`, each with the [`Layout`] that `base.html` renders.

use askama::Template;

/// What every page shows around its content: the account bar, "My pads" and the flash.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// The `<title>` (before " · Notes").
    pub title: String,
    /// The signed-in user's email.
    pub user: Option<String>,
    /// The sidebar.
    pub pads: Vec<PadLink>,
    /// The message of the previous action.
    pub flash: Option<&'static str>,
    /// The token every form on the page carries.
    pub csrf_token: String,
}

/// A pad in the sidebar.
#[derive(Debug, Clone)]
pub struct PadLink {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Whether it is the pad this page shows.
    pub current: bool,
}

/// A pad in the note form's select.
#[derive(Debug, Clone)]
pub struct PadOption {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Preselected.
    pub selected: bool,
}

/// A row of a note list.
#[derive(Debug, Clone)]
pub struct NoteRow {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its pad.
    pub pad_id: Option<i64>,
    /// Its pad's name, or empty.
    pub pad_name: String,
    /// "Today", "Yesterday", "N days ago" or the date.
    pub last_modified: String,
}

/// `GET /signup/`.
#[derive(Template)]
#[template(path = "signup.html")]
pub struct SignUpPage {
    pub layout: Layout,
    pub email: String,
    pub email_error: Option<&'static str>,
    pub password_error: Option<&'static str>,
    pub confirm_error: Option<&'static str>,
}

/// `GET /signin/`.
#[derive(Template)]
#[template(path = "signin.html")]
pub struct SignInPage {
    pub layout: Layout,
    pub email: String,
    pub next: String,
    pub error: Option<&'static str>,
    pub email_error: Option<&'static str>,
    pub password_error: Option<&'static str>,
}

/// `GET /forgot-password/`.
#[derive(Template)]
#[template(path = "forgot.html")]
pub struct ForgotPage {
    pub layout: Layout,
    pub email: String,
    pub email_error: Option<&'static str>,
}

/// `GET /reset-password/<token>/`.
#[derive(Template)]
#[template(path = "reset.html")]
pub struct ResetPage {
    pub layout: Layout,
    pub token: String,
    pub password_error: Option<&'static str>,
    pub confirm_error: Option<&'static str>,
}

/// `GET /settings/`.
#[derive(Template)]
#[template(path = "settings.html")]
pub struct SettingsPage {
    pub layout: Layout,
    pub current_error: Option<&'static str>,
    pub new_error: Option<&'static str>,
    pub confirm_error: Option<&'static str>,
}

/// `GET /signout/`.
#[derive(Template)]
#[template(path = "signout.html")]
pub struct SignOutPage {
    pub layout: Layout,
}

/// `GET /` and `GET /pads/<id>/`.
#[derive(Template)]
#[template(path = "notes.html")]
pub struct NotesPage {
    pub layout: Layout,
    pub heading: String,
    pub pad_id: Option<i64>,
    pub rows: Vec<NoteRow>,
    pub order: &'static str,
    pub base_path: String,
}

/// `GET /notes/<id>/`.
#[derive(Template)]
#[template(path = "note.html")]
pub struct NotePage {
    pub layout: Layout,
    pub id: i64,
    pub name: String,
    pub text: String,
    pub pad_id: Option<i64>,
    pub pad_name: String,
    pub last_modified: String,
}

/// `GET /notes/create/` and `GET /notes/<id>/edit/`.
#[derive(Template)]
#[template(path = "note_form.html")]
pub struct NoteFormPage {
    pub layout: Layout,
    pub heading: &'static str,
    pub action: String,
    pub name: String,
    pub text: String,
    pub pads: Vec<PadOption>,
    pub name_error: Option<&'static str>,
    pub text_error: Option<&'static str>,
    pub pad_error: Option<&'static str>,
}

/// `GET /notes/<id>/delete/`.
#[derive(Template)]
#[template(path = "note_delete.html")]
pub struct NoteDeletePage {
    pub layout: Layout,
    pub id: i64,
    pub name: String,
}

/// `GET /pads/create/` and `GET /pads/<id>/edit/`.
#[derive(Template)]
#[template(path = "pad_form.html")]
pub struct PadFormPage {
    pub layout: Layout,
    pub heading: &'static str,
    pub action: String,
    pub name: String,
    pub name_error: Option<&'static str>,
    pub pad_id: Option<i64>,
}

/// `GET /pads/<id>/delete/`.
#[derive(Template)]
#[template(path = "pad_delete.html")]
pub struct PadDeletePage {
    pub layout: Layout,
    pub id: i64,
    pub name: String,
}
