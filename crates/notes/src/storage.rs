//! The notes schema behind one trait, [`NotesRepository`], on the platform's SQL pool.
//!
//! One implementation per dialect (`storage/sqlite.rs`, `postgres.rs`, `mysql.rs`) over the same
//! statement texts (`storage/sql.rs`): placeholders (`?` against `$1`) and the way a new row's id
//! comes back differ, and sqlx's `Any` driver does not rewrite them. PostgreSQL and MySQL are
//! the same code generated over each sqlx pool type; SQLite runs on the file's direct
//! connections (rusqlite on the calling thread, and group commit). Migrations are per dialect
//! too, in each backend's file.
//!
//! Tables (all prefixed `notes_`, so the service can share a database): `users`, `pads`,
//! `notes`, `sessions` (SHA-256 of the cookie's token), `api_tokens` (SHA-256 of the token) and
//! `password_resets` (SHA-256 of the mailed token). Times are microseconds since the Unix epoch.

mod mysql;
mod postgres;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use platform::storage::StorageError;
use platform::storage::pool::{Migrations, SqlConnections, SqlDatabase};

use crate::domain::Order;

/// A registered user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Assigned in order.
    pub id: i64,
    /// Lowercase.
    pub email: String,
    /// An argon2id PHC string.
    pub password_hash: String,
}

/// A signed-in browser: its user and the CSRF token of its forms.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who is signed in.
    pub user: User,
    /// The synchronizer token every form of this session carries.
    pub csrf_token: String,
}

/// A pad of one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pad {
    /// Assigned in order.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Microseconds since the epoch.
    pub created_at: i64,
    /// Microseconds since the epoch.
    pub updated_at: i64,
}

/// A note of one user, with the name of its pad when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Assigned in order.
    pub id: i64,
    /// The pad it is in, if any.
    pub pad_id: Option<i64>,
    /// That pad's name.
    pub pad_name: Option<String>,
    /// Its name.
    pub name: String,
    /// Its text.
    pub text: String,
    /// Microseconds since the epoch.
    pub created_at: i64,
    /// Microseconds since the epoch.
    pub updated_at: i64,
}

/// What a note is made of, for creating and updating one.
#[derive(Debug, Clone)]
pub struct NoteFields<'a> {
    /// The pad, already checked to belong to the user.
    pub pad_id: Option<i64>,
    /// Its name.
    pub name: &'a str,
    /// Its text.
    pub text: &'a str,
}

/// Everything notes stores. Every method is scoped to a user where the data is a user's: another
/// user's pad or note is never found, updated or deleted.
#[async_trait]
pub trait NotesRepository: Send + Sync + 'static {
    /// Creates a user; `None` when the email is taken.
    async fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<i64>, StorageError>;
    /// The user with this (lowercase) email.
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StorageError>;
    /// The user with this id.
    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StorageError>;
    /// Replaces a user's password hash.
    async fn set_password(&self, user_id: i64, password_hash: &str) -> Result<(), StorageError>;

    /// Stores a session under the SHA-256 of its token.
    async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf_token: &str,
        expires_at: i64,
    ) -> Result<(), StorageError>;
    /// The unexpired session stored under `token_hash`.
    async fn session(&self, token_hash: &str, now: i64) -> Result<Option<Session>, StorageError>;
    /// Ends one session.
    async fn delete_session(&self, token_hash: &str) -> Result<(), StorageError>;
    /// Ends every session of a user (password changed or reset).
    async fn delete_sessions_of(&self, user_id: i64) -> Result<(), StorageError>;

    /// Stores an API token under its SHA-256.
    async fn create_api_token(
        &self,
        token_hash: &str,
        user_id: i64,
        now: i64,
    ) -> Result<(), StorageError>;
    /// The user of the API token stored under `token_hash`.
    async fn user_by_api_token(&self, token_hash: &str) -> Result<Option<User>, StorageError>;

    /// Stores a password-reset token under its SHA-256.
    async fn create_password_reset(
        &self,
        token_hash: &str,
        user_id: i64,
        expires_at: i64,
    ) -> Result<(), StorageError>;
    /// The user of an unused, unexpired reset token, without using it.
    async fn password_reset_user(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<i64>, StorageError>;
    /// Marks an unused, unexpired reset token used and returns its user; `None` when it was
    /// used, expired or unknown. Atomic: of two concurrent uses, one wins.
    async fn consume_password_reset(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<i64>, StorageError>;

    /// The user's pads by name.
    async fn pads(&self, user_id: i64) -> Result<Vec<Pad>, StorageError>;
    /// One pad of the user.
    async fn pad(&self, user_id: i64, pad_id: i64) -> Result<Option<Pad>, StorageError>;
    /// Creates a pad; returns its id.
    async fn create_pad(&self, user_id: i64, name: &str, now: i64) -> Result<i64, StorageError>;
    /// Renames a pad; `false` when the user has no such pad.
    async fn rename_pad(
        &self,
        user_id: i64,
        pad_id: i64,
        name: &str,
        now: i64,
    ) -> Result<bool, StorageError>;
    /// Deletes a pad and its notes; `false` when the user has no such pad.
    async fn delete_pad(&self, user_id: i64, pad_id: i64) -> Result<bool, StorageError>;

    /// The user's notes, of one pad or all, in `order`.
    async fn notes(
        &self,
        user_id: i64,
        pad_id: Option<i64>,
        order: Order,
    ) -> Result<Vec<Note>, StorageError>;
    /// One note of the user.
    async fn note(&self, user_id: i64, note_id: i64) -> Result<Option<Note>, StorageError>;
    /// Creates a note and returns it as stored; `None`, with nothing stored, when
    /// `fields.pad_id` names no pad of the user (any more: the check and the insert are one
    /// transaction, so a pad deleted at the same moment never leaves a note behind it).
    async fn create_note(
        &self,
        user_id: i64,
        fields: &NoteFields<'_>,
        now: i64,
    ) -> Result<Option<Note>, StorageError>;
    /// Updates a note; `false` when the user has no such note.
    async fn update_note(
        &self,
        user_id: i64,
        note_id: i64,
        fields: &NoteFields<'_>,
        now: i64,
    ) -> Result<bool, StorageError>;
    /// Deletes a note; `false` when the user has no such note.
    async fn delete_note(&self, user_id: i64, note_id: i64) -> Result<bool, StorageError>;
}

/// Every dialect's migrations, for [`platform::Context::sql_pool`].
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: sqlite::MIGRATIONS,
    postgres: postgres::MIGRATIONS,
    mysql: mysql::MIGRATIONS,
};

/// The repository over `database`, in its dialect.
pub fn repository(database: SqlDatabase) -> Arc<dyn NotesRepository> {
    match database.connections() {
        SqlConnections::Sqlite(file) => {
            let file = file.clone();
            Arc::new(sqlite::SqliteNotes::new(database, file))
        }
        SqlConnections::Postgres(pool) => {
            let pool = pool.clone();
            Arc::new(postgres::PostgresNotes::new(database, pool))
        }
        SqlConnections::Mysql(pool) => {
            let pool = pool.clone();
            Arc::new(mysql::MysqlNotes::new(database, pool))
        }
    }
}
