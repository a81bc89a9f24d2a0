//! What the three dialects share: the statement texts, written once with `?` placeholders and
//! rendered per dialect at start-up, and the whole [`NotesRepository`](super::NotesRepository)
//! implementation as a macro over the dialect's pool type.

use crate::domain::Order;

/// How a dialect writes placeholders and returns a new row's id.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dialect {
    /// `$1, $2, …` (PostgreSQL) instead of `?`.
    pub(super) numbered_placeholders: bool,
    /// `INSERT … RETURNING id` (PostgreSQL, SQLite); otherwise the driver's last insert id.
    pub(super) returning_id: bool,
    /// What makes a `SELECT` hold the rows it read until the transaction ends (PostgreSQL's
    /// `FOR SHARE`, MySQL's `LOCK IN SHARE MODE`); empty for SQLite, whose one writer already
    /// runs each write alone.
    pub(super) share_lock: &'static str,
    /// What makes a `SELECT` hold its rows against every other writer (`FOR UPDATE`); empty
    /// for SQLite.
    pub(super) update_lock: &'static str,
}

/// Every statement of the repository in one dialect.
#[derive(Debug, Clone)]
pub(super) struct Statements {
    pub(super) create_user: String,
    pub(super) user_by_email: String,
    pub(super) user_by_id: String,
    pub(super) set_password: String,
    pub(super) create_session: String,
    pub(super) session: String,
    pub(super) delete_session: String,
    pub(super) delete_sessions_of: String,
    pub(super) create_api_token: String,
    pub(super) user_by_api_token: String,
    pub(super) create_password_reset: String,
    pub(super) password_reset_user: String,
    pub(super) use_password_reset: String,
    pub(super) pads: String,
    pub(super) pad: String,
    /// `(user_id, pad_id)`: the pad's name, its row locked against a concurrent delete until
    /// the note that goes into it is inserted.
    pub(super) pad_name_locked: String,
    pub(super) create_pad: String,
    pub(super) rename_pad: String,
    /// `(user_id, pad_id)`: takes the pad's row before its notes are deleted, so a note being
    /// created in it finishes first or waits and finds it gone (never a deadlock between the two).
    pub(super) lock_pad: String,
    pub(super) delete_notes_of_pad: String,
    pub(super) delete_pad: String,
    /// Indexed by [`Order::index`].
    pub(super) all_notes: [String; 4],
    /// Indexed by [`Order::index`].
    pub(super) notes_of_pad: [String; 4],
    pub(super) note: String,
    pub(super) create_note: String,
    pub(super) update_note: String,
    pub(super) delete_note: String,
}

const NOTE_COLUMNS: &str = "SELECT n.id, n.pad_id, p.name AS pad_name, n.name, n.text, \
     n.created_at, n.updated_at FROM notes_notes n LEFT JOIN notes_pads p ON p.id = n.pad_id";

impl Statements {
    pub(super) fn new(dialect: Dialect) -> Statements {
        let render = |sql: &str| render(sql, dialect.numbered_placeholders);
        let insert = |sql: &str| {
            if dialect.returning_id {
                render(&format!("{sql} RETURNING id"))
            } else {
                render(sql)
            }
        };
        let ordered = |filter: &str| {
            Order::ALL.map(|order| {
                render(&format!(
                    "{NOTE_COLUMNS} WHERE {filter} ORDER BY {}",
                    order.sql()
                ))
            })
        };
        Statements {
            create_user: insert(
                "INSERT INTO notes_users (email, password_hash, created_at) VALUES (?, ?, ?)",
            ),
            user_by_email: render(
                "SELECT id, email, password_hash FROM notes_users WHERE email = ?",
            ),
            user_by_id: render("SELECT id, email, password_hash FROM notes_users WHERE id = ?"),
            set_password: render("UPDATE notes_users SET password_hash = ? WHERE id = ?"),
            create_session: render(
                "INSERT INTO notes_sessions (token_hash, user_id, csrf_token, expires_at) \
                 VALUES (?, ?, ?, ?)",
            ),
            session: render(
                "SELECT u.id, u.email, u.password_hash, s.csrf_token FROM notes_sessions s \
                 JOIN notes_users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ?",
            ),
            delete_session: render("DELETE FROM notes_sessions WHERE token_hash = ?"),
            delete_sessions_of: render("DELETE FROM notes_sessions WHERE user_id = ?"),
            create_api_token: render(
                "INSERT INTO notes_api_tokens (token_hash, user_id, created_at) VALUES (?, ?, ?)",
            ),
            user_by_api_token: render(
                "SELECT u.id, u.email, u.password_hash FROM notes_api_tokens t \
                 JOIN notes_users u ON u.id = t.user_id WHERE t.token_hash = ?",
            ),
            create_password_reset: render(
                "INSERT INTO notes_password_resets (token_hash, user_id, expires_at, used) \
                 VALUES (?, ?, ?, 0)",
            ),
            password_reset_user: render(
                "SELECT user_id FROM notes_password_resets \
                 WHERE token_hash = ? AND used = 0 AND expires_at > ?",
            ),
            use_password_reset: render(
                "UPDATE notes_password_resets SET used = 1 \
                 WHERE token_hash = ? AND used = 0 AND expires_at > ?",
            ),
            pads: render(
                "SELECT id, name, created_at, updated_at FROM notes_pads WHERE user_id = ? \
                 ORDER BY name, id",
            ),
            pad: render(
                "SELECT id, name, created_at, updated_at FROM notes_pads \
                 WHERE user_id = ? AND id = ?",
            ),
            pad_name_locked: render(&format!(
                "SELECT name FROM notes_pads WHERE user_id = ? AND id = ?{}",
                dialect.share_lock
            )),
            create_pad: insert(
                "INSERT INTO notes_pads (user_id, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
            ),
            rename_pad: render(
                "UPDATE notes_pads SET name = ?, updated_at = ? WHERE user_id = ? AND id = ?",
            ),
            lock_pad: render(&format!(
                "SELECT id FROM notes_pads WHERE user_id = ? AND id = ?{}",
                dialect.update_lock
            )),
            delete_notes_of_pad: render("DELETE FROM notes_notes WHERE user_id = ? AND pad_id = ?"),
            delete_pad: render("DELETE FROM notes_pads WHERE user_id = ? AND id = ?"),
            all_notes: ordered("n.user_id = ?"),
            notes_of_pad: ordered("n.user_id = ? AND n.pad_id = ?"),
            note: render(&format!("{NOTE_COLUMNS} WHERE n.user_id = ? AND n.id = ?")),
            create_note: insert(
                "INSERT INTO notes_notes (user_id, pad_id, name, text, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            ),
            update_note: render(
                "UPDATE notes_notes SET pad_id = ?, name = ?, text = ?, updated_at = ? \
                 WHERE user_id = ? AND id = ?",
            ),
            delete_note: render("DELETE FROM notes_notes WHERE user_id = ? AND id = ?"),
        }
    }
}

/// `sql` with its `?` placeholders as they are, or numbered `$1, $2, …`. The statements above
/// contain no `?` inside string literals, so every `?` is a placeholder.
fn render(sql: &str, numbered: bool) -> String {
    if !numbered {
        return sql.to_owned();
    }
    let mut rendered = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for character in sql.chars() {
        if character == '?' {
            n += 1;
            rendered.push('$');
            rendered.push_str(&n.to_string());
        } else {
            rendered.push(character);
        }
    }
    rendered
}

/// Implements `NotesRepository` for `$repo` over `sqlx::Pool<$db>`. The invoking module
/// provides `DIALECT` and `async fn insert_id(query, pool) -> Result<i64, sqlx::Error>`.
macro_rules! impl_notes_repository {
    ($repo:ident, $db:ty) => {
        /// The repository in this dialect.
        pub(super) struct $repo {
            database: platform::storage::pool::SqlDatabase,
            pool: sqlx::Pool<$db>,
            sql: super::sql::Statements,
        }

        impl $repo {
            pub(super) fn new(
                database: platform::storage::pool::SqlDatabase,
                pool: sqlx::Pool<$db>,
            ) -> $repo {
                $repo {
                    database,
                    pool,
                    sql: super::sql::Statements::new(DIALECT),
                }
            }
        }

        type Row = <$db as sqlx::Database>::Row;

        fn user_from(row: &Row) -> Result<$crate::storage::User, sqlx::Error> {
            use sqlx::Row as _;
            Ok($crate::storage::User {
                id: row.try_get("id")?,
                email: row.try_get("email")?,
                password_hash: row.try_get("password_hash")?,
            })
        }

        fn pad_from(row: &Row) -> Result<$crate::storage::Pad, sqlx::Error> {
            use sqlx::Row as _;
            Ok($crate::storage::Pad {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        fn note_from(row: &Row) -> Result<$crate::storage::Note, sqlx::Error> {
            use sqlx::Row as _;
            Ok($crate::storage::Note {
                id: row.try_get("id")?,
                pad_id: row.try_get("pad_id")?,
                pad_name: row.try_get("pad_name")?,
                name: row.try_get("name")?,
                text: row.try_get("text")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        #[async_trait::async_trait]
        impl $crate::storage::NotesRepository for $repo {
            async fn create_user(
                &self,
                email: &str,
                password_hash: &str,
                now: i64,
            ) -> Result<Option<i64>, platform::storage::StorageError> {
                let query = sqlx::query(&self.sql.create_user)
                    .bind(email)
                    .bind(password_hash)
                    .bind(now);
                match self
                    .database
                    .observe("create_user", insert_id(query, &self.pool))
                    .await
                {
                    Ok(id) => Ok(Some(id)),
                    Err(error) if platform::storage::pool::is_unique_violation(&error) => Ok(None),
                    Err(error) => Err(error),
                }
            }

            async fn user_by_email(
                &self,
                email: &str,
            ) -> Result<Option<$crate::storage::User>, platform::storage::StorageError> {
                self.database
                    .observe("user_by_email", async {
                        let row = sqlx::query(&self.sql.user_by_email)
                            .bind(email)
                            .fetch_optional(&self.pool)
                            .await?;
                        row.as_ref().map(user_from).transpose()
                    })
                    .await
            }

            async fn user_by_id(
                &self,
                id: i64,
            ) -> Result<Option<$crate::storage::User>, platform::storage::StorageError> {
                self.database
                    .observe("user_by_id", async {
                        let row = sqlx::query(&self.sql.user_by_id)
                            .bind(id)
                            .fetch_optional(&self.pool)
                            .await?;
                        row.as_ref().map(user_from).transpose()
                    })
                    .await
            }

            async fn set_password(
                &self,
                user_id: i64,
                password_hash: &str,
            ) -> Result<(), platform::storage::StorageError> {
                self.database
                    .observe("set_password", async {
                        sqlx::query(&self.sql.set_password)
                            .bind(password_hash)
                            .bind(user_id)
                            .execute(&self.pool)
                            .await
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
            ) -> Result<(), platform::storage::StorageError> {
                self.database
                    .observe("create_session", async {
                        sqlx::query(&self.sql.create_session)
                            .bind(token_hash)
                            .bind(user_id)
                            .bind(csrf_token)
                            .bind(expires_at)
                            .execute(&self.pool)
                            .await
                            .map(drop)
                    })
                    .await
            }

            async fn session(
                &self,
                token_hash: &str,
                now: i64,
            ) -> Result<Option<$crate::storage::Session>, platform::storage::StorageError> {
                self.database
                    .observe("session", async {
                        let row = sqlx::query(&self.sql.session)
                            .bind(token_hash)
                            .bind(now)
                            .fetch_optional(&self.pool)
                            .await?;
                        row.as_ref()
                            .map(|row| {
                                use sqlx::Row as _;
                                Ok($crate::storage::Session {
                                    user: user_from(row)?,
                                    csrf_token: row.try_get("csrf_token")?,
                                })
                            })
                            .transpose()
                    })
                    .await
            }

            async fn delete_session(
                &self,
                token_hash: &str,
            ) -> Result<(), platform::storage::StorageError> {
                self.database
                    .observe("delete_session", async {
                        sqlx::query(&self.sql.delete_session)
                            .bind(token_hash)
                            .execute(&self.pool)
                            .await
                            .map(drop)
                    })
                    .await
            }

            async fn delete_sessions_of(
                &self,
                user_id: i64,
            ) -> Result<(), platform::storage::StorageError> {
                self.database
                    .observe("delete_sessions_of", async {
                        sqlx::query(&self.sql.delete_sessions_of)
                            .bind(user_id)
                            .execute(&self.pool)
                            .await
                            .map(drop)
                    })
                    .await
            }

            async fn create_api_token(
                &self,
                token_hash: &str,
                user_id: i64,
                now: i64,
            ) -> Result<(), platform::storage::StorageError> {
                self.database
                    .observe("create_api_token", async {
                        sqlx::query(&self.sql.create_api_token)
                            .bind(token_hash)
                            .bind(user_id)
                            .bind(now)
                            .execute(&self.pool)
                            .await
                            .map(drop)
                    })
                    .await
            }

            async fn user_by_api_token(
                &self,
                token_hash: &str,
            ) -> Result<Option<$crate::storage::User>, platform::storage::StorageError> {
                self.database
                    .observe("user_by_api_token", async {
                        let row = sqlx::query(&self.sql.user_by_api_token)
                            .bind(token_hash)
                            .fetch_optional(&self.pool)
                            .await?;
                        row.as_ref().map(user_from).transpose()
                    })
                    .await
            }

            async fn create_password_reset(
                &self,
                token_hash: &str,
                user_id: i64,
                expires_at: i64,
            ) -> Result<(), platform::storage::StorageError> {
                self.database
                    .observe("create_password_reset", async {
                        sqlx::query(&self.sql.create_password_reset)
                            .bind(token_hash)
                            .bind(user_id)
                            .bind(expires_at)
                            .execute(&self.pool)
                            .await
                            .map(drop)
                    })
                    .await
            }

            async fn password_reset_user(
                &self,
                token_hash: &str,
                now: i64,
            ) -> Result<Option<i64>, platform::storage::StorageError> {
                self.database
                    .observe("password_reset_user", async {
                        let row = sqlx::query(&self.sql.password_reset_user)
                            .bind(token_hash)
                            .bind(now)
                            .fetch_optional(&self.pool)
                            .await?;
                        row.as_ref()
                            .map(|row| sqlx::Row::try_get::<i64, _>(row, "user_id"))
                            .transpose()
                    })
                    .await
            }

            async fn consume_password_reset(
                &self,
                token_hash: &str,
                now: i64,
            ) -> Result<Option<i64>, platform::storage::StorageError> {
                let user_id = self.password_reset_user(token_hash, now).await?;
                let Some(user_id) = user_id else {
                    return Ok(None);
                };
                let used = self
                    .database
                    .observe("use_password_reset", async {
                        sqlx::query(&self.sql.use_password_reset)
                            .bind(token_hash)
                            .bind(now)
                            .execute(&self.pool)
                            .await
                    })
                    .await?;
                // Only the request whose update changed the row may use the token.
                Ok((used.rows_affected() == 1).then_some(user_id))
            }

            async fn pads(
                &self,
                user_id: i64,
            ) -> Result<Vec<$crate::storage::Pad>, platform::storage::StorageError> {
                self.database
                    .observe("pads", async {
                        let rows = sqlx::query(&self.sql.pads)
                            .bind(user_id)
                            .fetch_all(&self.pool)
                            .await?;
                        rows.iter().map(pad_from).collect()
                    })
                    .await
            }

            async fn pad(
                &self,
                user_id: i64,
                pad_id: i64,
            ) -> Result<Option<$crate::storage::Pad>, platform::storage::StorageError> {
                self.database
                    .observe("pad", async {
                        let row = sqlx::query(&self.sql.pad)
                            .bind(user_id)
                            .bind(pad_id)
                            .fetch_optional(&self.pool)
                            .await?;
                        row.as_ref().map(pad_from).transpose()
                    })
                    .await
            }

            async fn create_pad(
                &self,
                user_id: i64,
                name: &str,
                now: i64,
            ) -> Result<i64, platform::storage::StorageError> {
                let query = sqlx::query(&self.sql.create_pad)
                    .bind(user_id)
                    .bind(name)
                    .bind(now)
                    .bind(now);
                self.database
                    .observe("create_pad", insert_id(query, &self.pool))
                    .await
            }

            async fn rename_pad(
                &self,
                user_id: i64,
                pad_id: i64,
                name: &str,
                now: i64,
            ) -> Result<bool, platform::storage::StorageError> {
                self.database
                    .observe("rename_pad", async {
                        let done = sqlx::query(&self.sql.rename_pad)
                            .bind(name)
                            .bind(now)
                            .bind(user_id)
                            .bind(pad_id)
                            .execute(&self.pool)
                            .await?;
                        Ok(done.rows_affected() == 1)
                    })
                    .await
            }

            async fn delete_pad(
                &self,
                user_id: i64,
                pad_id: i64,
            ) -> Result<bool, platform::storage::StorageError> {
                self.database
                    .observe("delete_pad", async {
                        let mut transaction = self.pool.begin().await?;
                        let pad = sqlx::query(&self.sql.lock_pad)
                            .bind(user_id)
                            .bind(pad_id)
                            .fetch_optional(&mut *transaction)
                            .await?;
                        if pad.is_none() {
                            return Ok(false);
                        }
                        sqlx::query(&self.sql.delete_notes_of_pad)
                            .bind(user_id)
                            .bind(pad_id)
                            .execute(&mut *transaction)
                            .await?;
                        let done = sqlx::query(&self.sql.delete_pad)
                            .bind(user_id)
                            .bind(pad_id)
                            .execute(&mut *transaction)
                            .await?;
                        transaction.commit().await?;
                        Ok(done.rows_affected() == 1)
                    })
                    .await
            }

            async fn notes(
                &self,
                user_id: i64,
                pad_id: Option<i64>,
                order: $crate::domain::Order,
            ) -> Result<Vec<$crate::storage::Note>, platform::storage::StorageError> {
                self.database
                    .observe("notes", async {
                        let query = match pad_id {
                            None => sqlx::query(&self.sql.all_notes[order.index()]).bind(user_id),
                            Some(pad_id) => sqlx::query(&self.sql.notes_of_pad[order.index()])
                                .bind(user_id)
                                .bind(pad_id),
                        };
                        let rows = query.fetch_all(&self.pool).await?;
                        rows.iter().map(note_from).collect()
                    })
                    .await
            }

            async fn note(
                &self,
                user_id: i64,
                note_id: i64,
            ) -> Result<Option<$crate::storage::Note>, platform::storage::StorageError> {
                self.database
                    .observe("note", async {
                        let row = sqlx::query(&self.sql.note)
                            .bind(user_id)
                            .bind(note_id)
                            .fetch_optional(&self.pool)
                            .await?;
                        row.as_ref().map(note_from).transpose()
                    })
                    .await
            }

            async fn create_note(
                &self,
                user_id: i64,
                fields: &$crate::storage::NoteFields<'_>,
                now: i64,
            ) -> Result<Option<$crate::storage::Note>, platform::storage::StorageError> {
                self.database
                    .observe("create_note", async {
                        // The pad check and the insert in one transaction, the pad's row
                        // locked in between: a pad deleted at the same moment is either seen
                        // gone (nothing stored) or deleted after, with the note.
                        let mut transaction = self.pool.begin().await?;
                        let pad_name = match fields.pad_id {
                            None => None,
                            Some(pad_id) => {
                                let row = sqlx::query(&self.sql.pad_name_locked)
                                    .bind(user_id)
                                    .bind(pad_id)
                                    .fetch_optional(&mut *transaction)
                                    .await?;
                                match row {
                                    Some(row) => Some(sqlx::Row::try_get::<String, _>(&row, 0)?),
                                    // Dropping the transaction rolls it back.
                                    None => return Ok(None),
                                }
                            }
                        };
                        let query = sqlx::query(&self.sql.create_note)
                            .bind(user_id)
                            .bind(fields.pad_id)
                            .bind(fields.name)
                            .bind(fields.text)
                            .bind(now)
                            .bind(now);
                        let id = insert_id(query, &mut *transaction).await?;
                        transaction.commit().await?;
                        Ok(Some($crate::storage::Note {
                            id,
                            pad_id: fields.pad_id,
                            pad_name,
                            name: fields.name.to_owned(),
                            text: fields.text.to_owned(),
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
                fields: &$crate::storage::NoteFields<'_>,
                now: i64,
            ) -> Result<bool, platform::storage::StorageError> {
                self.database
                    .observe("update_note", async {
                        let done = sqlx::query(&self.sql.update_note)
                            .bind(fields.pad_id)
                            .bind(fields.name)
                            .bind(fields.text)
                            .bind(now)
                            .bind(user_id)
                            .bind(note_id)
                            .execute(&self.pool)
                            .await?;
                        Ok(done.rows_affected() == 1)
                    })
                    .await
            }

            async fn delete_note(
                &self,
                user_id: i64,
                note_id: i64,
            ) -> Result<bool, platform::storage::StorageError> {
                self.database
                    .observe("delete_note", async {
                        let done = sqlx::query(&self.sql.delete_note)
                            .bind(user_id)
                            .bind(note_id)
                            .execute(&self.pool)
                            .await?;
                        Ok(done.rows_affected() == 1)
                    })
                    .await
            }
        }
    };
}

pub(super) use impl_notes_repository;

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn postgres_placeholders_are_numbered_in_order() {
        assert_eq!(
            render("UPDATE t SET a = ? WHERE b = ? AND c = ?", true),
            "UPDATE t SET a = $1 WHERE b = $2 AND c = $3"
        );
        assert_eq!(render("SELECT ?", false), "SELECT ?");
    }
}
