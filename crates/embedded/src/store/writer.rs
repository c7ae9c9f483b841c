//! The single writer: one thread owns the write connection and commits every command
//! that queued up meanwhile in one transaction (group commit). Each command runs under
//! its own savepoint: one failing command is rolled back alone. A committed group goes to
//! the syncer thread, which fsyncs the WAL once for every group committed since its last
//! sync and only then sends the replies: nothing is acknowledged before it is on disk, and
//! the writer executes the next group while the disk works.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};

use qpost_core::ids::MessageId;
use qpost_core::ports::Inserted;
use qpost_core::signing::SigningKeys;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::StoreError;
use super::codec::{ChangeRow, DlqRow, EventRow, MessageRow, NewRow, TransitionRow};

/// Most commands folded into one transaction.
const MAX_GROUP: usize = 2048;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A write and where its result goes.
pub enum Command {
    Insert(Vec<NewRow>, Reply<Vec<Inserted>>),
    Apply(Box<TransitionRow>, Reply<()>),
    Remove(Vec<MessageId>, Reply<u64>),
    RemoveDlq(Vec<String>, Reply<u64>),
    Purge(i64, Reply<u64>),
    SwapKeys(Box<(Option<SigningKeys>, SigningKeys)>, Reply<SigningKeys>),
    /// Any other write, run in the group like the rest.
    Run(Job),
}

/// A committed (or failed) group waiting for the WAL to reach the disk.
pub type Committed = (Vec<Pending>, Result<(), StoreError>);

/// Runs until every sender is gone; hands each committed group to `synced`.
pub fn run(mut conn: Connection, rx: Receiver<Command>, synced: Sender<Committed>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(cmd) => group.push(cmd),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let committed = commit_group(&mut conn, group);
        if synced.send(committed).is_err() {
            return;
        }
    }
}

/// The syncer: fsyncs the WAL of `db` once for all groups committed meanwhile, then
/// replies to every command of those groups. Runs until the writer is gone.
pub fn sync_loop(db: PathBuf, rx: Receiver<Committed>) {
    let mut wal = db.into_os_string();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let synced = sync_wal(&wal);
        for (pending, committed) in batch {
            let error = committed
                .err()
                .or_else(|| synced.as_ref().err().map(StoreError::shallow));
            for reply in pending {
                reply(error.as_ref());
            }
        }
    }
}

/// Flushes the WAL to disk. Without a WAL file every commit was checkpointed into the
/// database file, which SQLite syncs itself.
fn sync_wal(wal: &std::path::Path) -> Result<(), StoreError> {
    match std::fs::File::open(wal) {
        Ok(file) => file
            .sync_data()
            .map_err(|e| StoreError::Commit(format!("fsync of the WAL failed: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::Commit(format!(
            "cannot open the WAL to fsync it: {e}"
        ))),
    }
}

/// A finished command waiting for the commit before its reply is sent.
pub type Pending = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// A write given as code: run on the connection, or told why the group could not start.
pub type Job = Box<dyn FnOnce(Result<&Connection, &StoreError>) -> Pending + Send>;

/// Wraps `f` as a [`Job`] whose result goes to `reply` after the commit.
pub fn job<T: Send + 'static>(
    f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    reply: Reply<T>,
) -> Job {
    Box::new(move |conn| match conn {
        Ok(c) => deferred(reply, savepoint(c, f)),
        Err(e) => deferred(reply, Err(e.shallow())),
    })
}

fn commit_group(conn: &mut Connection, group: Vec<Command>) -> Committed {
    let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return (fail_all(group), Err(StoreError::from(e))),
    };
    let mut pending: Vec<Pending> = Vec::with_capacity(group.len());
    for cmd in group {
        pending.push(execute(&tx, cmd));
    }
    (pending, tx.commit().map_err(StoreError::from))
}

/// The replies of a group that could not start; the error is given when they are sent.
fn fail_all(group: Vec<Command>) -> Vec<Pending> {
    group
        .into_iter()
        .map(|cmd| -> Pending {
            match cmd {
                Command::Insert(_, r) => failed(r),
                Command::Apply(_, r) => failed(r),
                Command::Remove(_, r) | Command::RemoveDlq(_, r) | Command::Purge(_, r) => {
                    failed(r)
                }
                Command::SwapKeys(_, r) => failed(r),
                Command::Run(job) => job(Err(&StoreError::Closed)),
            }
        })
        .collect()
}

fn failed<T: Send + 'static>(reply: Reply<T>) -> Pending {
    deferred(reply, Err(StoreError::Closed))
}

/// Runs one command inside a savepoint and returns the reply to send after commit.
fn execute(conn: &Connection, cmd: Command) -> Pending {
    match cmd {
        Command::Insert(batch, r) => deferred(r, savepoint(conn, |c| insert(c, batch))),
        Command::Apply(t, r) => deferred(r, savepoint(conn, |c| apply(c, *t))),
        Command::Remove(ids, r) => deferred(r, savepoint(conn, |c| remove(c, &ids))),
        Command::RemoveDlq(ids, r) => deferred(r, savepoint(conn, |c| remove_dlq(c, &ids))),
        Command::Purge(now, r) => deferred(r, savepoint(conn, |c| purge(c, now))),
        Command::SwapKeys(k, r) => {
            deferred(r, savepoint(conn, |c| swap_keys(c, k.0.as_ref(), &k.1)))
        }
        Command::Run(job) => job(Ok(conn)),
    }
}

fn deferred<T: Send + 'static>(reply: Reply<T>, result: Result<T, StoreError>) -> Pending {
    Box::new(move |commit_error| {
        let result = match commit_error {
            Some(e) => Err(e.shallow()),
            None => result,
        };
        let _ = reply.send(result);
    })
}

fn savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    // Cached statements: these run once per command, so parsing them each time shows up.
    conn.prepare_cached("SAVEPOINT cmd")?.execute([])?;
    match f(conn) {
        Ok(v) => {
            conn.prepare_cached("RELEASE cmd")?.execute([])?;
            Ok(v)
        }
        Err(e) => {
            conn.prepare_cached("ROLLBACK TO cmd")?.execute([])?;
            conn.prepare_cached("RELEASE cmd")?.execute([])?;
            Err(e)
        }
    }
}

fn insert(conn: &Connection, batch: Vec<NewRow>) -> Result<Vec<Inserted>, StoreError> {
    let mut out = Vec::with_capacity(batch.len());
    for new in batch {
        out.push(insert_one(conn, new)?);
    }
    Ok(out)
}

fn insert_one(conn: &Connection, new: NewRow) -> Result<Inserted, StoreError> {
    let m = &new.message;
    if let Some(d) = &new.dedup {
        let live: Option<String> = conn
            .prepare_cached("SELECT message_id FROM dedup WHERE key = ?1 AND expires > ?2")?
            .query_row(params![d.key, m.created], |r| r.get(0))
            .optional()?;
        if let Some(original) = live {
            return Ok(Inserted::Duplicate(MessageId::from_string(original)));
        }
        conn.prepare_cached(
            "INSERT OR REPLACE INTO dedup (key, message_id, expires) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![d.key, m.id, d.expires_at])?;
    }
    if let Some(dlq_id) = &new.from_dlq
        && conn
            .prepare_cached("DELETE FROM dlq WHERE dlq_id = ?1")?
            .execute([dlq_id])?
            == 0
    {
        return Ok(Inserted::DlqEntryMissing);
    }
    put_message(conn, m)?;
    put_events(conn, &new.events)?;
    Ok(Inserted::Created)
}

/// Appends log events.
pub fn put_events(conn: &Connection, events: &[EventRow]) -> Result<(), StoreError> {
    let mut stmt =
        conn.prepare_cached("INSERT INTO events (time, message_id, data) VALUES (?1, ?2, ?3)")?;
    for e in events {
        stmt.execute(params![e.time, e.message_id, e.data])?;
    }
    Ok(())
}

fn put_message(conn: &Connection, m: &MessageRow) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO messages (id, due, created, queue, retried, flow, meta, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        m.id, m.due, m.created, m.queue, m.retried, m.flow, m.meta, m.body
    ])?;
    Ok(())
}

fn apply(conn: &Connection, t: TransitionRow) -> Result<(), StoreError> {
    let id = t.message_id.as_str();
    match t.change {
        ChangeRow::Remove => {
            conn.prepare_cached("DELETE FROM messages WHERE id = ?1")?
                .execute([id])?;
        }
        ChangeRow::Retry { retried, due } => {
            // A message cancelled meanwhile matches nothing and stays cancelled.
            conn.prepare_cached("UPDATE messages SET due = ?2, retried = ?3 WHERE id = ?1")?
                .execute(params![id, due, retried])?;
        }
        ChangeRow::DeadLetter(entry) => {
            // A message cancelled during its last attempt stays cancelled.
            if conn
                .prepare_cached("DELETE FROM messages WHERE id = ?1")?
                .execute([id])?
                > 0
            {
                put_dlq(conn, &entry)?;
            }
        }
    }
    for m in &t.spawned {
        put_message(conn, m)?;
    }
    put_events(conn, &t.events)?;
    Ok(())
}

fn put_dlq(conn: &Connection, e: &DlqRow) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO dlq (dlq_id, ms, seq, expires, meta, body, response_body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![e.dlq_id, e.ms, e.seq, e.expires, e.meta, e.body, e.response_body])?;
    Ok(())
}

fn remove(conn: &Connection, ids: &[MessageId]) -> Result<u64, StoreError> {
    let mut stmt = conn.prepare_cached("DELETE FROM messages WHERE id = ?1")?;
    let mut n = 0;
    for id in ids {
        n += stmt.execute([id.as_str()])? as u64;
    }
    Ok(n)
}

fn remove_dlq(conn: &Connection, ids: &[String]) -> Result<u64, StoreError> {
    let mut stmt = conn.prepare_cached("DELETE FROM dlq WHERE dlq_id = ?1")?;
    let mut n = 0;
    for id in ids {
        n += stmt.execute([id])? as u64;
    }
    Ok(n)
}

fn purge(conn: &Connection, now: i64) -> Result<u64, StoreError> {
    let dlq = conn.execute("DELETE FROM dlq WHERE expires <= ?1", [now])?;
    conn.execute("DELETE FROM dedup WHERE expires <= ?1", [now])?;
    Ok(dlq as u64)
}

const KEYS: &str = "signing_keys";

pub fn read_keys(conn: &Connection) -> Result<Option<SigningKeys>, StoreError> {
    let raw: Option<String> = conn
        .query_row("SELECT value FROM settings WHERE key = ?1", [KEYS], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(raw.map(|r| serde_json::from_str(&r)).transpose()?)
}

/// Writes `next` when the stored keys equal `expected` (or unconditionally when
/// `expected` is `None`); returns the keys stored afterwards.
fn swap_keys(
    conn: &Connection,
    expected: Option<&SigningKeys>,
    next: &SigningKeys,
) -> Result<SigningKeys, StoreError> {
    let current = read_keys(conn)?;
    if expected.is_some() && current.as_ref() != expected {
        return current.ok_or(StoreError::MissingKeys);
    }
    conn.execute(
        "INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)",
        params![KEYS, serde_json::to_string(next)?],
    )?;
    Ok(next.clone())
}
