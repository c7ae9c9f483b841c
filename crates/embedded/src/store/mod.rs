//! The SQLite store: implements the message, DLQ and key ports of qpost-core.
//!
//! Writes go to one writer thread ([`writer`]) that group-commits; reads use a small
//! pool of read connections, which WAL mode lets run beside the writer.

mod codec;
mod docs;
mod events;
mod hot;
mod schema;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};

use async_trait::async_trait;
use qpost_core::filter::{DlqFilter, MessageFilter};
use qpost_core::ids::{MessageId, dlq_sort_key};
use qpost_core::message::{DlqEntry, Message};
use qpost_core::ports::{
    DlqStore, Inserted, KeyStore, MessageStore, NewMessage, Page, Transition, Wakeup,
};
use qpost_core::signing::SigningKeys;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use writer::Command;

/// The wall clock, for the hot copy's horizon (not a decision of qpost's: a message
/// missing from the copy is simply read from the store).
fn now_ms() -> i64 {
    qpost_core::clock::Clock::now_ms(&qpost_core::clock::SystemClock)
}

/// Read connections kept open beside the writer.
const READERS: usize = 4;
/// Rows fetched per step when a listing filters in memory.
const SCAN_CHUNK: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("corrupt stored record: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the transaction failed: {0}")]
    Commit(String),
    #[error("the signing keys are missing from the store")]
    MissingKeys,
    #[error("the store is closed")]
    Closed,
    #[error("a read task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl StoreError {
    /// A copy of the error for each command of a failed group commit.
    fn shallow(&self) -> Self {
        Self::Commit(self.to_string())
    }
}

impl From<StoreError> for qpost_core::Error {
    fn from(e: StoreError) -> Self {
        qpost_core::Error::internal(e)
    }
}

/// The local store, one SQLite file.
pub struct SqliteStore {
    writer: Mutex<mpsc::Sender<Command>>,
    readers: Arc<Vec<Mutex<Connection>>>,
    next_reader: AtomicUsize,
    keys: RwLock<Option<SigningKeys>>,
    hot: hot::Hot,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and starts its writer thread.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = schema::open(path)?;
        schema::migrate(&conn)?;
        let keys = writer::read_keys(&conn)?;
        let readers = (0..READERS)
            .map(|_| schema::open(path).map(Mutex::new))
            .collect::<Result<_, _>>()?;
        let (tx, rx) = mpsc::channel();
        let (committed_tx, committed_rx) = mpsc::channel();
        let db = path.to_path_buf();
        let spawn_failed =
            |e: std::io::Error| StoreError::Commit(format!("cannot start a store thread: {e}"));
        std::thread::Builder::new()
            .name("qpost-sqlite-sync".into())
            .spawn(move || writer::sync_loop(db, committed_rx))
            .map_err(spawn_failed)?;
        std::thread::Builder::new()
            .name("qpost-sqlite-writer".into())
            .spawn(move || writer::run(conn, rx, committed_tx))
            .map_err(spawn_failed)?;
        Ok(Self {
            writer: Mutex::new(tx),
            readers: Arc::new(readers),
            next_reader: AtomicUsize::new(0),
            keys: RwLock::new(keys),
            hot: hot::Hot::default(),
        })
    }

    /// Makes sure signing keys exist: `forced` replaces whatever is stored, otherwise
    /// stored keys win and `default` is used only the first time.
    pub async fn init_keys(
        &self,
        forced: Option<SigningKeys>,
        default: SigningKeys,
    ) -> Result<SigningKeys, StoreError> {
        let stored = self.keys.read().map(|k| k.clone()).unwrap_or_default();
        let keys = match (forced, stored) {
            (Some(f), Some(s)) if f == s => f,
            (Some(f), _) => {
                self.write(|r| Command::SwapKeys(Box::new((None, f)), r))
                    .await?
            }
            (None, Some(s)) => s,
            (None, None) => {
                self.write(|r| Command::SwapKeys(Box::new((None, default)), r))
                    .await?
            }
        };
        self.cache_keys(&keys);
        Ok(keys)
    }

    /// Drops DLQ entries and deduplication keys whose time has passed.
    pub async fn purge(&self, now: i64) -> Result<u64, StoreError> {
        self.write(|r| Command::Purge(now, r)).await
    }

    fn cache_keys(&self, keys: &SigningKeys) {
        if let Ok(mut k) = self.keys.write() {
            *k = Some(keys.clone());
        }
    }

    async fn write<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Command,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        let sent = self
            .writer
            .lock()
            .map_err(|_| StoreError::Closed)?
            .send(make(tx));
        sent.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` as a write in the writer's next group; the result comes after the commit.
    async fn run_write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.write(|reply| Command::Run(writer::job(f, reply)))
            .await
    }

    /// Runs a read on a pooled connection off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = Arc::clone(&self.readers);
        let slot = self.next_reader.fetch_add(1, Ordering::Relaxed) % readers.len();
        tokio::task::spawn_blocking(move || {
            let conn = readers[slot].lock().map_err(|_| StoreError::Closed)?;
            f(&conn)
        })
        .await?
    }
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn insert(&self, batch: Vec<NewMessage>) -> qpost_core::Result<Vec<Inserted>> {
        let rows = batch
            .iter()
            .map(codec::NewRow::of)
            .collect::<Result<_, _>>()?;
        let inserted = self.write(|r| Command::Insert(rows, r)).await?;
        let now = now_ms();
        for (new, outcome) in batch.iter().zip(&inserted) {
            if *outcome == Inserted::Created {
                self.hot.keep(&new.message, now);
            }
        }
        Ok(inserted)
    }

    async fn get(&self, id: &MessageId) -> qpost_core::Result<Option<Message>> {
        if let Some(m) = self.hot.get(id) {
            return Ok(Some(m));
        }
        let id = id.as_str().to_string();
        let found = self
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT meta, body, retried, due FROM messages WHERE id = ?1",
                )?;
                let row = stmt
                    .query_row([id], |r| Ok(codec::message_from_row(r)))
                    .optional()?;
                row.transpose()
            })
            .await?;
        Ok(found)
    }

    async fn apply(&self, transition: Transition) -> qpost_core::Result<()> {
        let row = Box::new(codec::TransitionRow::of(&transition)?);
        let applied = self.write(|r| Command::Apply(row, r)).await;
        // Whatever the outcome, the copy must not outlive what the store holds.
        match applied {
            Ok(()) => self.hot.apply(&transition, now_ms()),
            Err(_) => self
                .hot
                .forget(std::slice::from_ref(&transition.message_id)),
        }
        Ok(applied?)
    }

    async fn remove(&self, ids: &[MessageId]) -> qpost_core::Result<u64> {
        let owned = ids.to_vec();
        let removed = self.write(|r| Command::Remove(owned, r)).await;
        self.hot.forget(ids);
        Ok(removed?)
    }

    async fn find(
        &self,
        filter: &MessageFilter,
        limit: usize,
    ) -> qpost_core::Result<Vec<MessageId>> {
        let filter = filter.clone();
        let ids = self.read(move |c| find_messages(c, &filter, limit)).await?;
        Ok(ids)
    }

    async fn wakeups(&self) -> qpost_core::Result<Vec<Wakeup>> {
        let rows = self
            .read(|c| {
                let mut out = Vec::new();
                scan_wakeups(c, |w| out.push(w))?;
                Ok(out)
            })
            .await?;
        Ok(rows)
    }
}

impl SqliteStore {
    /// Hands the wake-up of every stored message to `sink` as its row is read, oldest
    /// first (the order of [`MessageStore::wakeups`]); returns how many. A restart with a
    /// million pending messages then never holds them all in one list beside the timer.
    pub async fn each_wakeup(
        &self,
        mut sink: impl FnMut(Wakeup) + Send + 'static,
    ) -> Result<usize, StoreError> {
        self.read(move |c| scan_wakeups(c, &mut sink)).await
    }
}

/// Reads the wake-up columns of every message, oldest first. Columns only: a restart with
/// a million pending messages parses no JSON but the few flow-control settings.
fn scan_wakeups(c: &Connection, mut sink: impl FnMut(Wakeup)) -> Result<usize, StoreError> {
    let mut stmt =
        c.prepare("SELECT id, due, queue, flow FROM messages ORDER BY created, rowid")?;
    let mut rows = stmt.query([])?;
    let mut n = 0;
    while let Some(row) = rows.next()? {
        let flow: Option<String> = row.get(3)?;
        sink(Wakeup {
            id: MessageId::from_string(row.get(0)?),
            due_ms: row.get(1)?,
            queue_name: row.get(2)?,
            flow_control: flow.map(|f| serde_json::from_str(&f)).transpose()?,
        });
        n += 1;
    }
    Ok(n)
}

/// Scans messages oldest first, keeping those the filter matches.
fn find_messages(
    c: &Connection,
    filter: &MessageFilter,
    limit: usize,
) -> Result<Vec<MessageId>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT meta, body, retried, due, created, id FROM messages WHERE (created, id) > (?1, ?2) ORDER BY created, id LIMIT ?3",
    )?;
    let mut out = Vec::new();
    let (mut after_created, mut after_id) = (i64::MIN, String::new());
    loop {
        let mut rows = stmt.query(params![after_created, after_id, SCAN_CHUNK as i64])?;
        let mut seen = 0;
        while let Some(row) = rows.next()? {
            seen += 1;
            (after_created, after_id) = (row.get(4)?, row.get(5)?);
            let m = codec::message_from_row(row)?;
            if filter.matches(&m) {
                out.push(m.id);
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
        if seen < SCAN_CHUNK {
            return Ok(out);
        }
    }
}

#[async_trait]
impl DlqStore for SqliteStore {
    async fn get_dlq(&self, dlq_id: &str, now: i64) -> qpost_core::Result<Option<DlqEntry>> {
        let id = dlq_id.to_string();
        let found = self
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT meta, body, response_body FROM dlq WHERE dlq_id = ?1 AND expires > ?2",
                )?;
                stmt.query_row(params![id, now], |r| Ok(codec::dlq_from_row(r)))
                    .optional()?
                    .transpose()
            })
            .await?;
        Ok(found)
    }

    async fn list_dlq(
        &self,
        filter: &DlqFilter,
        cursor: Option<&str>,
        count: usize,
        now: i64,
    ) -> qpost_core::Result<Page<DlqEntry>> {
        let filter = filter.clone();
        let after = match cursor {
            None => (i64::MIN, i64::MIN),
            Some(c) => dlq_sort_key(c)
                .map(|(ms, seq)| (ms, seq as i64))
                .ok_or_else(|| qpost_core::Error::bad_request(format!("invalid cursor {c:?}")))?,
        };
        Ok(self
            .read(move |c| list_dlq(c, &filter, after, count, now))
            .await?)
    }

    async fn remove_dlq(&self, dlq_ids: &[String]) -> qpost_core::Result<u64> {
        let ids = dlq_ids.to_vec();
        Ok(self.write(|r| Command::RemoveDlq(ids, r)).await?)
    }

    async fn purge_dlq(&self, now: i64) -> qpost_core::Result<u64> {
        Ok(self.purge(now).await?)
    }
}

/// One page of live entries after `after` in id order; the cursor is the last entry
/// returned, given only when a further matching entry exists.
fn list_dlq(
    c: &Connection,
    filter: &DlqFilter,
    mut after: (i64, i64),
    count: usize,
    now: i64,
) -> Result<Page<DlqEntry>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT meta, body, response_body, ms, seq FROM dlq
         WHERE (ms, seq) > (?1, ?2) AND expires > ?3 ORDER BY ms, seq LIMIT ?4",
    )?;
    let mut items = Vec::new();
    loop {
        let mut rows = stmt.query(params![after.0, after.1, now, SCAN_CHUNK as i64])?;
        let mut seen = 0;
        while let Some(row) = rows.next()? {
            seen += 1;
            after = (row.get(3)?, row.get(4)?);
            let entry = codec::dlq_from_row(row)?;
            if !filter.matches(&entry) {
                continue;
            }
            if items.len() == count {
                let cursor = items.last().map(|e: &DlqEntry| e.dlq_id.clone());
                return Ok(Page { items, cursor });
            }
            items.push(entry);
        }
        if seen < SCAN_CHUNK {
            return Ok(Page {
                items,
                cursor: None,
            });
        }
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn keys(&self) -> qpost_core::Result<SigningKeys> {
        let cached = self.keys.read().ok().and_then(|k| k.clone());
        cached.ok_or_else(|| StoreError::MissingKeys.into())
    }

    async fn swap_keys(
        &self,
        expected: &SigningKeys,
        next: &SigningKeys,
    ) -> qpost_core::Result<SigningKeys> {
        let pair = Box::new((Some(expected.clone()), next.clone()));
        let after = self.write(|r| Command::SwapKeys(pair, r)).await?;
        self.cache_keys(&after);
        Ok(after)
    }
}

#[cfg(test)]
mod tests {
    use qpost_core::ports::{MessageStore, Wakeup};
    use qpost_core::test_support::message;

    use super::SqliteStore;

    #[tokio::test(flavor = "multi_thread")]
    async fn streamed_wakeups_are_the_listed_ones_in_the_same_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("q.db")).unwrap();
        let batch = (0..5)
            .map(|i| {
                let mut m = message();
                m.created_at += 4 - i;
                m.not_before = 1_000 * i;
                qpost_core::publish::new(m, None)
            })
            .collect();
        store.insert(batch).await.unwrap();
        let listed = store.wakeups().await.unwrap();
        let streamed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Wakeup>::new()));
        let sink = streamed.clone();
        let n = store
            .each_wakeup(move |w| sink.lock().unwrap().push(w))
            .await
            .unwrap();
        let streamed = streamed.lock().unwrap().clone();
        assert_eq!(n, 5);
        assert_eq!(streamed, listed);
        let dues: Vec<i64> = streamed.iter().map(|w| w.due_ms).collect();
        assert_eq!(dues, vec![4_000, 3_000, 2_000, 1_000, 0]);
    }
}
