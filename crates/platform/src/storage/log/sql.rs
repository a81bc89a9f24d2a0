//! What the SQL log backends (SQLite and PostgreSQL) share: the statements of one namespace,
//! written once over the [`Dialect`], and the conversions between sequence numbers and columns.

use crate::storage::StorageError;
use crate::storage::pool::SqlConnections;
use crate::storage::sql::{Dialect, record_table};

/// The statements of one namespace, formatted once because the table names are part of them.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    /// `log_<namespace>`, which also names the migration runner's record of the two tables.
    pub(crate) entries_table: String,
    /// Creates the entries table (`stream`, `seq`, `data`, primary key `(stream, seq)`).
    pub(crate) create_entries: String,
    /// Creates the heads table (`stream` primary key, `seq` of its last entry).
    pub(crate) create_heads: String,
    pub(crate) drop_entries: String,
    pub(crate) drop_heads: String,
    /// The migration runner's record of the two tables.
    pub(crate) drop_record: String,
    /// `(stream, n)`: adds `n` to the stream's head, creating it at `n`; returns the new head.
    pub(crate) advance_head: String,
    /// `(stream)`: the stream's head, if it has one.
    pub(crate) head: String,
    /// `(stream, seq, data)`: one entry.
    pub(crate) insert: String,
    /// The `INSERT INTO … (stream, seq, data) ` that a multi-row `VALUES` list follows.
    pub(crate) insert_prefix: String,
    /// `(stream, seq)`: deletes the stream's entries numbered `seq` or lower.
    pub(crate) trim: String,
    /// `(stream, after, limit)`: entries above `after`, ascending.
    pub(crate) read_after: String,
    /// `(stream, limit)`: the last entries, descending.
    pub(crate) read_last: String,
}

impl Statements {
    /// The statements of `namespace`'s tables, `log_<namespace>` (entries) and
    /// `log_<namespace>_heads`, in `dialect`. Advancing the head is one upsert that returns the
    /// new head: it takes the head row's lock in PostgreSQL (and SQLite's write lock is already
    /// held), so appends to one stream take turns and their numbers are consecutive, whichever
    /// process appends.
    pub(crate) fn new(namespace: &str, dialect: &Dialect) -> Statements {
        let (entries, heads) = (format!("log_{namespace}"), format!("log_{namespace}_heads"));
        let Dialect {
            text,
            integer,
            bytes,
            clustered,
            ..
        } = dialect;
        let [p1, p2, p3] = [1, 2, 3].map(|n| dialect.parameter(n));
        let insert_prefix = format!("INSERT INTO {entries} (stream, seq, data) ");
        Statements {
            create_entries: format!(
                "CREATE TABLE IF NOT EXISTS {entries} (stream {text} NOT NULL, \
                 seq {integer} NOT NULL, data {bytes} NOT NULL, PRIMARY KEY (stream, seq)){clustered}"
            ),
            create_heads: format!(
                "CREATE TABLE IF NOT EXISTS {heads} \
                 (stream {text} PRIMARY KEY NOT NULL, seq {integer} NOT NULL)"
            ),
            drop_entries: format!("DROP TABLE IF EXISTS {entries}"),
            drop_heads: format!("DROP TABLE IF EXISTS {heads}"),
            drop_record: format!("DROP TABLE IF EXISTS {}", record_table(&entries)),
            advance_head: format!(
                "INSERT INTO {heads} (stream, seq) VALUES ({p1}, {p2}) \
                 ON CONFLICT (stream) DO UPDATE SET seq = {heads}.seq + excluded.seq RETURNING seq"
            ),
            head: format!("SELECT seq FROM {heads} WHERE stream = {p1}"),
            insert: format!("{insert_prefix}VALUES ({p1}, {p2}, {p3})"),
            trim: format!("DELETE FROM {entries} WHERE stream = {p1} AND seq <= {p2}"),
            read_after: format!(
                "SELECT seq, data FROM {entries} WHERE stream = {p1} AND seq > {p2} \
                 ORDER BY seq LIMIT {p3}"
            ),
            read_last: format!(
                "SELECT seq, data FROM {entries} WHERE stream = {p1} ORDER BY seq DESC LIMIT {p2}"
            ),
            insert_prefix,
            entries_table: entries,
        }
    }

    /// Creates the two tables on `connections` through the SQL layer's migration runner, under
    /// its lock (on PostgreSQL, concurrent `CREATE TABLE IF NOT EXISTS` of one name can
    /// otherwise fail with a unique violation on `pg_type`).
    pub(crate) async fn create_tables(
        &self,
        connections: SqlConnections<'_>,
    ) -> Result<(), StorageError> {
        let creates = [self.create_entries.as_str(), &self.create_heads];
        crate::storage::sql::create_tables(connections, &self.entries_table, &creates).await
    }
}

/// A sequence number as the `BIGINT` it is stored as; numbers never reach `i64::MAX`, so a
/// larger one (only ever a caller's `after`) is clamped, which selects nothing above it.
pub(crate) fn to_column(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// A stored sequence number back as `u64`; a negative one can only come from a table that
/// something else wrote.
pub(crate) fn from_column(seq: i64) -> Result<u64, StorageError> {
    u64::try_from(seq).map_err(|_| {
        StorageError::Backend(
            format!("the log table holds the negative sequence number {seq}").into(),
        )
    })
}

/// A row count or limit as a `BIGINT` parameter.
pub(crate) fn to_count(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Rows of `(seq, data)` as entries.
pub(crate) fn entries(rows: Vec<(i64, Vec<u8>)>) -> Result<Vec<super::LogEntry>, StorageError> {
    rows.into_iter()
        .map(|(seq, data)| {
            Ok(super::LogEntry {
                seq: from_column(seq)?,
                data,
            })
        })
        .collect()
}
