//! The SQLite schema and connection settings.

use rusqlite::Connection;

/// Tables: pending messages, live deduplication keys, DLQ entries, the event log, small
/// documents (schedules, URL groups, queues) and settings (the signing keys). Metadata is
/// JSON; bodies are blobs beside it.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    id      TEXT PRIMARY KEY,
    due     INTEGER NOT NULL,
    created INTEGER NOT NULL,
    queue   TEXT,
    retried INTEGER NOT NULL DEFAULT 0,
    flow    TEXT,
    meta    TEXT NOT NULL,
    body    BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_queue ON messages (queue) WHERE queue IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_created ON messages (created, id);
CREATE TABLE IF NOT EXISTS dedup (
    key        TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    expires    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dlq (
    dlq_id        TEXT PRIMARY KEY,
    ms            INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    expires       INTEGER NOT NULL,
    meta          TEXT NOT NULL,
    body          BLOB NOT NULL,
    response_body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS dlq_order ON dlq (ms, seq);
CREATE TABLE IF NOT EXISTS events (
    seq        INTEGER PRIMARY KEY,
    time       INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    data       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_time ON events (time);
CREATE TABLE IF NOT EXISTS docs (
    kind  TEXT NOT NULL,
    id    TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// Opens a connection in WAL mode. Commits do not fsync themselves (`synchronous=NORMAL`,
/// which keeps the database consistent and syncs around checkpoints): the syncer thread
/// fsyncs the WAL after each group commit and only then are the writes acknowledged, so
/// an acknowledged write survives a crash of the process or the machine while the next
/// group already executes.
pub fn open(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    Ok(conn)
}

pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)
}
