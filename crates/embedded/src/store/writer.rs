//! The single writer: one thread owns the write connection and commits every command
//! that queued up meanwhile in one transaction (group commit), so one fsync covers many
//! publishes. Each command runs under its own savepoint: one failing command is rolled
//! back alone. Replies go out only after the commit, so nothing is acknowledged early.

use std::sync::mpsc::{Receiver, TryRecvError};

use qpost_core::ids::{MessageId, dlq_sort_key};
use qpost_core::message::{DlqEntry, Message};
use qpost_core::ports::{Change, Inserted, NewMessage, Transition};
use qpost_core::signing::SigningKeys;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::StoreError;
use super::codec::{dlq_meta, message_meta};

/// Most commands folded into one transaction.
const MAX_GROUP: usize = 2048;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A write and where its result goes.
pub enum Command {
    Insert(Vec<NewMessage>, Reply<Vec<Inserted>>),
    Apply(Box<Transition>, Reply<()>),
    Remove(Vec<MessageId>, Reply<u64>),
    RemoveDlq(Vec<String>, Reply<u64>),
    Purge(i64, Reply<u64>),
    SwapKeys(Box<(Option<SigningKeys>, SigningKeys)>, Reply<SigningKeys>),
    /// Any other write, run in the group like the rest.
    Run(Job),
}

/// Runs until every sender is gone.
pub fn run(mut conn: Connection, rx: Receiver<Command>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(cmd) => group.push(cmd),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        commit_group(&mut conn, group);
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

fn commit_group(conn: &mut Connection, group: Vec<Command>) {
    let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return fail_all(group, &StoreError::from(e)),
    };
    let mut pending: Vec<Pending> = Vec::with_capacity(group.len());
    for cmd in group {
        pending.push(execute(&tx, cmd));
    }
    let committed = tx.commit().map_err(StoreError::from);
    for reply in pending {
        reply(committed.as_ref().err());
    }
}

fn fail_all(group: Vec<Command>, err: &StoreError) {
    for cmd in group {
        let reply: Pending = match cmd {
            Command::Insert(_, r) => deferred(r, Err(err.shallow())),
            Command::Apply(_, r) => deferred(r, Err(err.shallow())),
            Command::Remove(_, r) | Command::RemoveDlq(_, r) | Command::Purge(_, r) => {
                deferred(r, Err(err.shallow()))
            }
            Command::SwapKeys(_, r) => deferred(r, Err(err.shallow())),
            Command::Run(job) => job(Err(err)),
        };
        reply(None);
    }
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
    conn.execute_batch("SAVEPOINT cmd")?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("RELEASE cmd")?;
            Ok(v)
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO cmd; RELEASE cmd")?;
            Err(e)
        }
    }
}

fn insert(conn: &Connection, batch: Vec<NewMessage>) -> Result<Vec<Inserted>, StoreError> {
    let mut out = Vec::with_capacity(batch.len());
    for new in batch {
        out.push(insert_one(conn, new)?);
    }
    Ok(out)
}

fn insert_one(conn: &Connection, new: NewMessage) -> Result<Inserted, StoreError> {
    let m = &new.message;
    if let Some(d) = &new.dedup {
        let live: Option<String> = conn
            .prepare_cached("SELECT message_id FROM dedup WHERE key = ?1 AND expires > ?2")?
            .query_row(params![d.key, m.created_at], |r| r.get(0))
            .optional()?;
        if let Some(original) = live {
            return Ok(Inserted::Duplicate(MessageId::from_string(original)));
        }
        conn.prepare_cached(
            "INSERT OR REPLACE INTO dedup (key, message_id, expires) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![d.key, m.id.as_str(), d.expires_at])?;
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
pub fn put_events(
    conn: &Connection,
    events: &[qpost_core::events::Event],
) -> Result<(), StoreError> {
    let mut stmt =
        conn.prepare_cached("INSERT INTO events (time, message_id, data) VALUES (?1, ?2, ?3)")?;
    for e in events {
        stmt.execute(params![
            e.time,
            e.message_id.as_str(),
            serde_json::to_string(e)?
        ])?;
    }
    Ok(())
}

fn put_message(conn: &Connection, m: &Message) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO messages (id, due, created, queue, meta, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        m.id.as_str(),
        m.not_before,
        m.created_at,
        m.queue_name,
        message_meta(m)?,
        m.body
    ])?;
    Ok(())
}

fn apply(conn: &Connection, t: Transition) -> Result<(), StoreError> {
    let id = t.message_id.as_str();
    match t.change {
        Change::Remove => {
            conn.prepare_cached("DELETE FROM messages WHERE id = ?1")?
                .execute([id])?;
        }
        Change::Retry {
            retried,
            not_before,
        } => retry(conn, id, retried, not_before)?,
        Change::DeadLetter(entry) => {
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

fn retry(conn: &Connection, id: &str, retried: u32, not_before: i64) -> Result<(), StoreError> {
    let meta: Option<String> = conn
        .prepare_cached("SELECT meta FROM messages WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let Some(meta) = meta else { return Ok(()) };
    let mut m: Message = serde_json::from_str(&meta)?;
    m.retried = retried;
    m.not_before = not_before;
    conn.prepare_cached("UPDATE messages SET due = ?2, meta = ?3 WHERE id = ?1")?
        .execute(params![id, not_before, message_meta(&m)?])?;
    Ok(())
}

fn put_dlq(conn: &Connection, e: &DlqEntry) -> Result<(), StoreError> {
    let (ms, seq) = dlq_sort_key(&e.dlq_id).unwrap_or((e.message.created_at, 0));
    conn.prepare_cached(
        "INSERT INTO dlq (dlq_id, ms, seq, expires, meta, body, response_body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![e.dlq_id, ms, seq as i64, e.expires_at, dlq_meta(e)?, e.message.body, e.response_body])?;
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
