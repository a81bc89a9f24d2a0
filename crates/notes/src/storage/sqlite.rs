//! notes on SQLite: `INSERT … RETURNING id`, `?` placeholders, `INTEGER PRIMARY KEY
//! AUTOINCREMENT` ids (never reused, assigned in order).
//!
//! The same statements as the other dialects, run on the file's direct connections
//! ([`SqlDatabase::connections`]) rather than through sqlx: a read runs on the calling thread (sqlx
//! hands every query and every row to a worker thread and back, which cost more than the query),
//! and a write joins the file's group commit, so one `fsync` covers every write that queued
//! behind the one before. The sqlx pool only applies the migrations.

use std::sync::Arc;

use async_trait::async_trait;
use platform::storage::StorageError;
use platform::storage::pool::{Migration, SqlDatabase};
use platform::storage::sqlite::SqliteFile;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::sql::{Dialect, Statements};
use super::{Note, NoteFields, NotesRepository, Pad, Session, User};
use crate::domain::Order;

const DIALECT: Dialect = Dialect {
    numbered_placeholders: false,
    returning_id: true,
    share_lock: "",
    update_lock: "",
};

/// The schema, in order.
pub(super) const MIGRATIONS: &[Migration] = &[Migration {
    name: "0001_notejam",
    statements: &[
        "CREATE TABLE notes_users (id INTEGER PRIMARY KEY AUTOINCREMENT, \
         email TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL, created_at INTEGER NOT NULL)",
        "CREATE TABLE notes_pads (id INTEGER PRIMARY KEY AUTOINCREMENT, \
         user_id INTEGER NOT NULL REFERENCES notes_users (id) ON DELETE CASCADE, \
         name TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)",
        "CREATE INDEX notes_pads_user ON notes_pads (user_id)",
        "CREATE TABLE notes_notes (id INTEGER PRIMARY KEY AUTOINCREMENT, \
         user_id INTEGER NOT NULL REFERENCES notes_users (id) ON DELETE CASCADE, \
         pad_id INTEGER REFERENCES notes_pads (id) ON DELETE CASCADE, \
         name TEXT NOT NULL, text TEXT NOT NULL, \
         created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)",
        "CREATE INDEX notes_notes_user ON notes_notes (user_id, updated_at)",
        "CREATE INDEX notes_notes_pad ON notes_notes (pad_id)",
        "CREATE TABLE notes_sessions (token_hash TEXT PRIMARY KEY NOT NULL, \
         user_id INTEGER NOT NULL REFERENCES notes_users (id) ON DELETE CASCADE, \
         csrf_token TEXT NOT NULL, expires_at INTEGER NOT NULL)",
        "CREATE INDEX notes_sessions_user ON notes_sessions (user_id)",
        "CREATE TABLE notes_api_tokens (token_hash TEXT PRIMARY KEY NOT NULL, \
         user_id INTEGER NOT NULL REFERENCES notes_users (id) ON DELETE CASCADE, \
         created_at INTEGER NOT NULL)",
        "CREATE TABLE notes_password_resets (token_hash TEXT PRIMARY KEY NOT NULL, \
         user_id INTEGER NOT NULL REFERENCES notes_users (id) ON DELETE CASCADE, \
         expires_at INTEGER NOT NULL, used INTEGER NOT NULL)",
    ],
}];

/// The repository on SQLite.
pub(super) struct SqliteNotes {
    database: SqlDatabase,
    file: SqliteFile,
    sql: Arc<Statements>,
}

impl SqliteNotes {
    /// The repository on `file`, the direct connections of `database`.
    pub(super) fn new(database: SqlDatabase, file: SqliteFile) -> SqliteNotes {
        SqliteNotes {
            database,
            file,
            sql: Arc::new(Statements::new(DIALECT)),
        }
    }

    /// Runs `read` on this thread, timed and bounded as every storage operation.
    async fn read<T>(
        &self,
        operation: &'static str,
        read: impl FnOnce(&Connection, &Statements) -> rusqlite::Result<T> + Send,
    ) -> Result<T, StorageError> {
        self.database
            .observe_storage(operation, async {
                self.file.read(|connection| read(connection, &self.sql))
            })
            .await
    }

    /// Runs `work` in the next group commit, timed and bounded as every storage operation.
    async fn write<T: Send + 'static>(
        &self,
        operation: &'static str,
        work: impl FnOnce(&Connection, &Statements) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StorageError> {
        let sql = self.sql.clone();
        self.database
            .observe_storage(
                operation,
                self.file.write(move |connection| work(connection, &sql)),
            )
            .await
    }
}

// Columns are read by position, in the order the statements in `sql.rs` select them: a lookup
// by name compares the name with each column's, per value, and cost more than the query.

/// `id, email, password_hash` (then a session's `csrf_token`).
fn user_from(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        email: row.get(1)?,
        password_hash: row.get(2)?,
    })
}

/// `id, name, created_at, updated_at`.
fn pad_from(row: &Row<'_>) -> rusqlite::Result<Pad> {
    Ok(Pad {
        id: row.get(0)?,
        name: row.get(1)?,
        created_at: row.get(2)?,
        updated_at: row.get(3)?,
    })
}

/// `id, pad_id, pad_name, name, text, created_at, updated_at` (`NOTE_COLUMNS`).
fn note_from(row: &Row<'_>) -> rusqlite::Result<Note> {
    Ok(Note {
        id: row.get(0)?,
        pad_id: row.get(1)?,
        pad_name: row.get(2)?,
        name: row.get(3)?,
        text: row.get(4)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
    })
}

/// Runs an `INSERT … RETURNING id` and reads the id.
fn insert_id(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<i64> {
    connection
        .prepare_cached(sql)?
        .query_row(params, |row| row.get(0))
}

#[async_trait]
impl NotesRepository for SqliteNotes {
    async fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<i64>, StorageError> {
        let (email, password_hash) = (email.to_owned(), password_hash.to_owned());
        let created = self
            .write("create_user", move |connection, sql| {
                insert_id(
                    connection,
                    &sql.create_user,
                    params![email, password_hash, now],
                )
            })
            .await;
        match created {
            Ok(id) => Ok(Some(id)),
            Err(error) if platform::storage::pool::is_unique_violation(&error) => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StorageError> {
        self.read("user_by_email", |connection, sql| {
            connection
                .prepare_cached(&sql.user_by_email)?
                .query_row([email], user_from)
                .optional()
        })
        .await
    }

    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StorageError> {
        self.read("user_by_id", |connection, sql| {
            connection
                .prepare_cached(&sql.user_by_id)?
                .query_row([id], user_from)
                .optional()
        })
        .await
    }

    async fn set_password(&self, user_id: i64, password_hash: &str) -> Result<(), StorageError> {
        let password_hash = password_hash.to_owned();
        self.write("set_password", move |connection, sql| {
            connection
                .prepare_cached(&sql.set_password)?
                .execute(params![password_hash, user_id])
                .map(drop)
        })
        .await
    }

    async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf_token: &str,
        expires_at: i64,
    ) -> Result<(), StorageError> {
        let (token_hash, csrf_token) = (token_hash.to_owned(), csrf_token.to_owned());
        self.write("create_session", move |connection, sql| {
            connection
                .prepare_cached(&sql.create_session)?
                .execute(params![token_hash, user_id, csrf_token, expires_at])
                .map(drop)
        })
        .await
    }

    async fn session(&self, token_hash: &str, now: i64) -> Result<Option<Session>, StorageError> {
        self.read("session", |connection, sql| {
            connection
                .prepare_cached(&sql.session)?
                .query_row(params![token_hash, now], |row| {
                    Ok(Session {
                        user: user_from(row)?,
                        csrf_token: row.get(3)?,
                    })
                })
                .optional()
        })
        .await
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), StorageError> {
        let token_hash = token_hash.to_owned();
        self.write("delete_session", move |connection, sql| {
            connection
                .prepare_cached(&sql.delete_session)?
                .execute([token_hash])
                .map(drop)
        })
        .await
    }

    async fn delete_sessions_of(&self, user_id: i64) -> Result<(), StorageError> {
        self.write("delete_sessions_of", move |connection, sql| {
            connection
                .prepare_cached(&sql.delete_sessions_of)?
                .execute([user_id])
                .map(drop)
        })
        .await
    }

    async fn create_api_token(
        &self,
        token_hash: &str,
        user_id: i64,
        now: i64,
    ) -> Result<(), StorageError> {
        let token_hash = token_hash.to_owned();
        self.write("create_api_token", move |connection, sql| {
            connection
                .prepare_cached(&sql.create_api_token)?
                .execute(params![token_hash, user_id, now])
                .map(drop)
        })
        .await
    }

    async fn user_by_api_token(&self, token_hash: &str) -> Result<Option<User>, StorageError> {
        self.read("user_by_api_token", |connection, sql| {
            connection
                .prepare_cached(&sql.user_by_api_token)?
                .query_row([token_hash], user_from)
                .optional()
        })
        .await
    }

    async fn create_password_reset(
        &self,
        token_hash: &str,
        user_id: i64,
        expires_at: i64,
    ) -> Result<(), StorageError> {
        let token_hash = token_hash.to_owned();
        self.write("create_password_reset", move |connection, sql| {
            connection
                .prepare_cached(&sql.create_password_reset)?
                .execute(params![token_hash, user_id, expires_at])
                .map(drop)
        })
        .await
    }

    async fn password_reset_user(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<i64>, StorageError> {
        self.read("password_reset_user", |connection, sql| {
            connection
                .prepare_cached(&sql.password_reset_user)?
                .query_row(params![token_hash, now], |row| row.get(0))
                .optional()
        })
        .await
    }

    async fn consume_password_reset(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<i64>, StorageError> {
        let token_hash = token_hash.to_owned();
        // The lookup and the update in one write: only the request whose update changed the
        // row may use the token.
        self.write("use_password_reset", move |connection, sql| {
            let user_id: Option<i64> = connection
                .prepare_cached(&sql.password_reset_user)?
                .query_row(params![token_hash, now], |row| row.get(0))
                .optional()?;
            let Some(user_id) = user_id else {
                return Ok(None);
            };
            let used = connection
                .prepare_cached(&sql.use_password_reset)?
                .execute(params![token_hash, now])?;
            Ok((used == 1).then_some(user_id))
        })
        .await
    }

    async fn pads(&self, user_id: i64) -> Result<Vec<Pad>, StorageError> {
        self.read("pads", |connection, sql| {
            connection
                .prepare_cached(&sql.pads)?
                .query_map([user_id], pad_from)?
                .collect()
        })
        .await
    }

    async fn pad(&self, user_id: i64, pad_id: i64) -> Result<Option<Pad>, StorageError> {
        self.read("pad", |connection, sql| {
            connection
                .prepare_cached(&sql.pad)?
                .query_row([user_id, pad_id], pad_from)
                .optional()
        })
        .await
    }

    async fn create_pad(&self, user_id: i64, name: &str, now: i64) -> Result<i64, StorageError> {
        let name = name.to_owned();
        self.write("create_pad", move |connection, sql| {
            insert_id(
                connection,
                &sql.create_pad,
                params![user_id, name, now, now],
            )
        })
        .await
    }

    async fn rename_pad(
        &self,
        user_id: i64,
        pad_id: i64,
        name: &str,
        now: i64,
    ) -> Result<bool, StorageError> {
        let name = name.to_owned();
        self.write("rename_pad", move |connection, sql| {
            let renamed = connection
                .prepare_cached(&sql.rename_pad)?
                .execute(params![name, now, user_id, pad_id])?;
            Ok(renamed == 1)
        })
        .await
    }

    async fn delete_pad(&self, user_id: i64, pad_id: i64) -> Result<bool, StorageError> {
        // One write, one savepoint: the notes and their pad go together or not at all.
        self.write("delete_pad", move |connection, sql| {
            connection
                .prepare_cached(&sql.delete_notes_of_pad)?
                .execute([user_id, pad_id])?;
            let deleted = connection
                .prepare_cached(&sql.delete_pad)?
                .execute([user_id, pad_id])?;
            Ok(deleted == 1)
        })
        .await
    }

    async fn notes(
        &self,
        user_id: i64,
        pad_id: Option<i64>,
        order: Order,
    ) -> Result<Vec<Note>, StorageError> {
        self.read("notes", |connection, sql| match pad_id {
            None => connection
                .prepare_cached(&sql.all_notes[order.index()])?
                .query_map([user_id], note_from)?
                .collect(),
            Some(pad_id) => connection
                .prepare_cached(&sql.notes_of_pad[order.index()])?
                .query_map([user_id, pad_id], note_from)?
                .collect(),
        })
        .await
    }

    async fn note(&self, user_id: i64, note_id: i64) -> Result<Option<Note>, StorageError> {
        self.read("note", |connection, sql| {
            connection
                .prepare_cached(&sql.note)?
                .query_row([user_id, note_id], note_from)
                .optional()
        })
        .await
    }

    async fn create_note(
        &self,
        user_id: i64,
        fields: &NoteFields<'_>,
        now: i64,
    ) -> Result<Option<Note>, StorageError> {
        let (pad_id, name, text) = (
            fields.pad_id,
            fields.name.to_owned(),
            fields.text.to_owned(),
        );
        // The pad check and the insert in one write: the writer runs it alone, so the pad
        // cannot go in between.
        self.write("create_note", move |connection, sql| {
            let pad_name = match pad_id {
                None => None,
                Some(pad_id) => {
                    let name: Option<String> = connection
                        .prepare_cached(&sql.pad_name_locked)?
                        .query_row([user_id, pad_id], |row| row.get(0))
                        .optional()?;
                    let Some(name) = name else {
                        return Ok(None);
                    };
                    Some(name)
                }
            };
            let id = insert_id(
                connection,
                &sql.create_note,
                params![user_id, pad_id, name, text, now, now],
            )?;
            Ok(Some(Note {
                id,
                pad_id,
                pad_name,
                name,
                text,
                created_at: now,
                updated_at: now,
            }))
        })
        .await
    }

    async fn update_note(
        &self,
        user_id: i64,
        note_id: i64,
        fields: &NoteFields<'_>,
        now: i64,
    ) -> Result<bool, StorageError> {
        let (pad_id, name, text) = (
            fields.pad_id,
            fields.name.to_owned(),
            fields.text.to_owned(),
        );
        self.write("update_note", move |connection, sql| {
            let updated = connection
                .prepare_cached(&sql.update_note)?
                .execute(params![pad_id, name, text, now, user_id, note_id])?;
            Ok(updated == 1)
        })
        .await
    }

    async fn delete_note(&self, user_id: i64, note_id: i64) -> Result<bool, StorageError> {
        self.write("delete_note", move |connection, sql| {
            let deleted = connection
                .prepare_cached(&sql.delete_note)?
                .execute([user_id, note_id])?;
            Ok(deleted == 1)
        })
        .await
    }
}
