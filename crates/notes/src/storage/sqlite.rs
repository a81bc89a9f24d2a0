//! notes on SQLite: `INSERT … RETURNING id`, `?` placeholders, `INTEGER PRIMARY KEY
//! AUTOINCREMENT` ids (never reused, assigned in order).

use platform::storage::pool::Migration;
use sqlx::Sqlite;

use super::sql::Dialect;

const DIALECT: Dialect = Dialect {
    numbered_placeholders: false,
    returning_id: true,
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

/// Runs an `INSERT … RETURNING id` and reads the id.
async fn insert_id<'q>(
    query: sqlx::query::Query<'q, Sqlite, <Sqlite as sqlx::Database>::Arguments<'q>>,
    pool: &sqlx::Pool<Sqlite>,
) -> Result<i64, sqlx::Error> {
    let row = query.fetch_one(pool).await?;
    sqlx::Row::try_get(&row, 0)
}

super::sql::impl_notes_repository!(SqliteNotes, Sqlite);
