//! Rows to model values and back: metadata as JSON, bodies as blobs.

use qpost_core::message::{DlqEntry, Message};
use rusqlite::Row;

use super::StoreError;

pub fn message_meta(m: &Message) -> Result<String, StoreError> {
    Ok(serde_json::to_string(m)?)
}

/// Reads a message from the columns `meta, body`.
pub fn message_from_row(row: &Row) -> Result<Message, StoreError> {
    let meta: String = row.get(0)?;
    let mut m: Message = serde_json::from_str(&meta)?;
    m.body = row.get(1)?;
    Ok(m)
}

pub fn dlq_meta(e: &DlqEntry) -> Result<String, StoreError> {
    Ok(serde_json::to_string(e)?)
}

/// Reads a DLQ entry from the columns `meta, body, response_body`.
pub fn dlq_from_row(row: &Row) -> Result<DlqEntry, StoreError> {
    let meta: String = row.get(0)?;
    let mut e: DlqEntry = serde_json::from_str(&meta)?;
    e.message.body = row.get(1)?;
    e.response_body = row.get(2)?;
    Ok(e)
}
