//! Rows to model values and back: metadata as JSON, bodies as blobs. Rows are built by
//! the callers, off the writer thread, so the writer only runs SQL.

use qpost_core::events::Event;
use qpost_core::ids::dlq_sort_key;
use qpost_core::message::{DlqEntry, Message};
use qpost_core::ports::{Change, DedupKey, NewMessage, Transition};
use rusqlite::Row;

use super::StoreError;

/// A message as stored. `retried` and `due` are columns, so a retry updates no JSON.
pub struct MessageRow {
    pub id: String,
    pub due: i64,
    pub created: i64,
    pub queue: Option<String>,
    pub retried: u32,
    /// The flow-control settings as JSON, for rebuilding wake-ups without the metadata.
    pub flow: Option<String>,
    pub meta: String,
    pub body: Vec<u8>,
}

impl MessageRow {
    pub fn of(m: &Message) -> Result<Self, StoreError> {
        Ok(Self {
            id: m.id.to_string(),
            due: m.not_before,
            created: m.created_at,
            queue: m.queue_name.clone(),
            retried: m.retried,
            flow: m
                .flow_control
                .as_ref()
                .map(serde_json::to_string)
                .transpose()?,
            meta: serde_json::to_string(m)?,
            body: m.body.clone(),
        })
    }
}

/// A log event as stored.
pub struct EventRow {
    pub time: i64,
    pub message_id: String,
    pub data: String,
}

impl EventRow {
    pub fn of(e: &Event) -> Result<Self, StoreError> {
        Ok(Self {
            time: e.time,
            message_id: e.message_id.to_string(),
            data: serde_json::to_string(e)?,
        })
    }

    pub fn all(events: &[Event]) -> Result<Vec<Self>, StoreError> {
        events.iter().map(Self::of).collect()
    }
}

/// A DLQ entry as stored.
pub struct DlqRow {
    pub dlq_id: String,
    pub ms: i64,
    pub seq: i64,
    pub expires: i64,
    pub meta: String,
    pub body: Vec<u8>,
    pub response_body: Vec<u8>,
}

impl DlqRow {
    pub fn of(e: &DlqEntry) -> Result<Self, StoreError> {
        let (ms, seq) = dlq_sort_key(&e.dlq_id).unwrap_or((e.message.created_at, 0));
        Ok(Self {
            dlq_id: e.dlq_id.clone(),
            ms,
            seq: seq as i64,
            expires: e.expires_at,
            meta: serde_json::to_string(e)?,
            body: e.message.body.clone(),
            response_body: e.response_body.clone(),
        })
    }
}

/// A [`NewMessage`] ready for the writer.
pub struct NewRow {
    pub message: MessageRow,
    pub dedup: Option<DedupKey>,
    pub from_dlq: Option<String>,
    pub events: Vec<EventRow>,
}

impl NewRow {
    pub fn of(n: &NewMessage) -> Result<Self, StoreError> {
        Ok(Self {
            message: MessageRow::of(&n.message)?,
            dedup: n.dedup.clone(),
            from_dlq: n.from_dlq.clone(),
            events: EventRow::all(&n.events)?,
        })
    }
}

/// What a transition does to its message.
pub enum ChangeRow {
    Remove,
    Retry { retried: u32, due: i64 },
    DeadLetter(Box<DlqRow>),
}

/// A [`Transition`] ready for the writer.
pub struct TransitionRow {
    pub message_id: String,
    pub change: ChangeRow,
    pub spawned: Vec<MessageRow>,
    pub events: Vec<EventRow>,
}

impl TransitionRow {
    pub fn of(t: &Transition) -> Result<Self, StoreError> {
        let change = match &t.change {
            Change::Remove => ChangeRow::Remove,
            Change::Retry {
                retried,
                not_before,
            } => ChangeRow::Retry {
                retried: *retried,
                due: *not_before,
            },
            Change::DeadLetter(entry) => ChangeRow::DeadLetter(Box::new(DlqRow::of(entry)?)),
        };
        Ok(Self {
            message_id: t.message_id.to_string(),
            change,
            spawned: t
                .spawned
                .iter()
                .map(MessageRow::of)
                .collect::<Result<_, _>>()?,
            events: EventRow::all(&t.events)?,
        })
    }
}

/// Reads a message from the columns `meta, body, retried, due`.
pub fn message_from_row(row: &Row) -> Result<Message, StoreError> {
    let meta: String = row.get(0)?;
    let mut m: Message = serde_json::from_str(&meta)?;
    m.body = row.get(1)?;
    m.retried = row.get(2)?;
    m.not_before = row.get(3)?;
    Ok(m)
}

/// Reads a DLQ entry from the columns `meta, body, response_body`.
pub fn dlq_from_row(row: &Row) -> Result<DlqEntry, StoreError> {
    let meta: String = row.get(0)?;
    let mut e: DlqEntry = serde_json::from_str(&meta)?;
    e.message.body = row.get(1)?;
    e.response_body = row.get(2)?;
    Ok(e)
}
