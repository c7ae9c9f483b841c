//! The event log on SQLite: events are written with the message writes that cause them
//! (see the writer); this module lists, appends and purges.

use async_trait::async_trait;
use qpost_core::events::Event;
use qpost_core::filter::EventFilter;
use qpost_core::ports::{EventLog, Page};
use rusqlite::{Connection, params};

use super::writer::put_events;
use super::{SCAN_CHUNK, SqliteStore, StoreError};

#[async_trait]
impl EventLog for SqliteStore {
    async fn append(&self, events: Vec<Event>) -> qpost_core::Result<()> {
        Ok(self.run_write(move |c| put_events(c, &events)).await?)
    }

    async fn list_events(
        &self,
        filter: &EventFilter,
        cursor: Option<&str>,
        count: usize,
    ) -> qpost_core::Result<Page<Event>> {
        let before = match cursor.filter(|c| !c.is_empty()) {
            None => i64::MAX,
            Some(c) => c
                .parse::<i64>()
                .map_err(|_| qpost_core::Error::bad_request(format!("invalid cursor {c:?}")))?,
        };
        let filter = filter.clone();
        Ok(self.read(move |c| list(c, &filter, before, count)).await?)
    }

    async fn purge_events(&self, before: i64) -> qpost_core::Result<u64> {
        let n = self
            .run_write(move |c| {
                Ok(c.execute("DELETE FROM events WHERE time < ?1", [before])? as u64)
            })
            .await?;
        Ok(n)
    }
}

/// Newest first; the cursor is the sequence number of the last event returned, given only
/// when another matching event exists.
fn list(
    c: &Connection,
    filter: &EventFilter,
    mut before: i64,
    count: usize,
) -> Result<Page<Event>, StoreError> {
    let mut stmt =
        c.prepare_cached("SELECT seq, data FROM events WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2")?;
    let mut items: Vec<(i64, Event)> = Vec::new();
    loop {
        let mut rows = stmt.query(params![before, SCAN_CHUNK as i64])?;
        let mut seen = 0;
        while let Some(row) = rows.next()? {
            seen += 1;
            before = row.get(0)?;
            let event: Event = serde_json::from_str(&row.get::<_, String>(1)?)?;
            if !filter.matches(&event) {
                continue;
            }
            if items.len() == count {
                let cursor = items.last().map(|(seq, _)| seq.to_string());
                return Ok(Page {
                    items: items.into_iter().map(|(_, e)| e).collect(),
                    cursor,
                });
            }
            items.push((before, event));
        }
        if seen < SCAN_CHUNK {
            return Ok(Page {
                items: items.into_iter().map(|(_, e)| e).collect(),
                cursor: None,
            });
        }
    }
}
