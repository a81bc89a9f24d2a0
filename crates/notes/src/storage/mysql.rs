//! notes on MySQL and MariaDB: `?` placeholders, `AUTO_INCREMENT` ids read back as the
//! connection's last insert id (MySQL has no `RETURNING`), utf8mb4 text.

use platform::storage::pool::Migration;
use sqlx::MySql;

use super::sql::Dialect;

const DIALECT: Dialect = Dialect {
    numbered_placeholders: false,
    returning_id: false,
    share_lock: " LOCK IN SHARE MODE",
    update_lock: " FOR UPDATE",
};

/// The schema, in order.
pub(super) const MIGRATIONS: &[Migration] = &[Migration {
    name: "0001_notejam",
    statements: &[
        "CREATE TABLE notes_users (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, \
         email VARCHAR(254) NOT NULL UNIQUE, password_hash VARCHAR(255) NOT NULL, \
         created_at BIGINT NOT NULL) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4",
        "CREATE TABLE notes_pads (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, \
         user_id BIGINT NOT NULL, name VARCHAR(255) NOT NULL, \
         created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, \
         INDEX notes_pads_user (user_id), \
         FOREIGN KEY (user_id) REFERENCES notes_users (id) ON DELETE CASCADE) \
         ENGINE = InnoDB DEFAULT CHARSET = utf8mb4",
        "CREATE TABLE notes_notes (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, \
         user_id BIGINT NOT NULL, pad_id BIGINT NULL, name VARCHAR(255) NOT NULL, \
         text MEDIUMTEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, \
         INDEX notes_notes_user (user_id, updated_at), INDEX notes_notes_pad (pad_id), \
         FOREIGN KEY (user_id) REFERENCES notes_users (id) ON DELETE CASCADE, \
         FOREIGN KEY (pad_id) REFERENCES notes_pads (id) ON DELETE CASCADE) \
         ENGINE = InnoDB DEFAULT CHARSET = utf8mb4",
        "CREATE TABLE notes_sessions (token_hash CHAR(64) NOT NULL PRIMARY KEY, \
         user_id BIGINT NOT NULL, csrf_token CHAR(64) NOT NULL, expires_at BIGINT NOT NULL, \
         INDEX notes_sessions_user (user_id), \
         FOREIGN KEY (user_id) REFERENCES notes_users (id) ON DELETE CASCADE) \
         ENGINE = InnoDB DEFAULT CHARSET = utf8mb4",
        "CREATE TABLE notes_api_tokens (token_hash CHAR(64) NOT NULL PRIMARY KEY, \
         user_id BIGINT NOT NULL, created_at BIGINT NOT NULL, \
         FOREIGN KEY (user_id) REFERENCES notes_users (id) ON DELETE CASCADE) \
         ENGINE = InnoDB DEFAULT CHARSET = utf8mb4",
        "CREATE TABLE notes_password_resets (token_hash CHAR(64) NOT NULL PRIMARY KEY, \
         user_id BIGINT NOT NULL, expires_at BIGINT NOT NULL, used BIGINT NOT NULL, \
         FOREIGN KEY (user_id) REFERENCES notes_users (id) ON DELETE CASCADE) \
         ENGINE = InnoDB DEFAULT CHARSET = utf8mb4",
    ],
}];

/// Runs an `INSERT` and reads the id MySQL assigned on this connection.
async fn insert_id<'q, 'c>(
    query: sqlx::query::Query<'q, MySql, <MySql as sqlx::Database>::Arguments<'q>>,
    executor: impl sqlx::Executor<'c, Database = MySql>,
) -> Result<i64, sqlx::Error> {
    let done = query.execute(executor).await?;
    i64::try_from(done.last_insert_id()).map_err(|error| sqlx::Error::Decode(Box::new(error)))
}

super::sql::impl_notes_repository!(MysqlNotes, MySql);
