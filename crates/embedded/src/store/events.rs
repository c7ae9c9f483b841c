//! The event log on SQLite: events are written with the message writes that cause them
//! (see the writer); this module lists, appends and purges.

use async_trait::async_trait;
use qpost_core::events::Event;
use qpost_core::filter::EventFilter;
use qpost_core::ports::{EventLog, Page};
use rusqlite::{Connection, params};

use super::codec::EventRow;
use super::writer::put_events;
use super::{SCAN_CHUNK, SqliteStore, StoreError};

#[async_trait]
impl EventLog for SqliteStore {
    async fn append(&self, events: Vec<Event>) -> qpost_core::Result<()> {
        let rows = EventRow::all(&events)?;
        Ok(self.run_write(move |c| put_events(c, &rows)).await?)
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

#[cfg(test)]
mod tests {
    use qpost_core::events::{Event, EventState};
    use qpost_core::filter::EventFilter;
    use qpost_core::ports::EventLog;
    use qpost_core::test_support::message;

    use crate::SqliteStore;

    fn open() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("q.db")).unwrap();
        (dir, store)
    }

    /// Every page of `filter`, following cursors to the end.
    async fn all_pages(store: &SqliteStore, filter: &EventFilter, count: usize) -> Vec<Vec<Event>> {
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = store
                .list_events(filter, cursor.as_deref(), count)
                .await
                .unwrap();
            pages.push(page.items);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return pages,
            }
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn purging_drops_only_events_older_than_the_retention_cut() {
        let (_dir, store) = open();
        let m = message();
        let events = [100, 200, 300]
            .map(|t| Event::of(&m, EventState::Created, t))
            .to_vec();
        store.append(events).await.unwrap();

        assert_eq!(store.purge_events(250).await.unwrap(), 2);
        let left = store
            .list_events(&EventFilter::default(), None, 10)
            .await
            .unwrap();
        let times: Vec<i64> = left.items.iter().map(|e| e.time).collect();
        assert_eq!(times, [300]);
        assert_eq!(store.purge_events(250).await.unwrap(), 0);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn filtered_pages_span_scan_chunks_and_visit_each_event_once() {
        let (_dir, store) = open();
        let (a, b) = (message(), message());
        let events: Vec<Event> = (0..1_200)
            .map(|t| Event::of(if t % 2 == 0 { &a } else { &b }, EventState::Active, t))
            .collect();
        store.append(events).await.unwrap();
        let only_a = EventFilter {
            message: qpost_core::filter::MessageFilter {
                message_ids: vec![a.id.to_string()],
                ..Default::default()
            },
            ..Default::default()
        };

        let pages = all_pages(&store, &only_a, 70).await;
        let times: Vec<i64> = pages.iter().flatten().map(|e| e.time).collect();
        let expected: Vec<i64> = (0..1_200).rev().filter(|t| t % 2 == 0).collect();
        assert_eq!(times, expected, "newest first, each once");
        assert!(pages[..pages.len() - 1].iter().all(|p| p.len() == 70));
        assert_eq!(pages.last().map(Vec::len), Some(600 % 70));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_last_full_page_has_no_cursor_and_bad_cursors_are_refused() {
        let (_dir, store) = open();
        let m = message();
        let events = (0..4)
            .map(|t| Event::of(&m, EventState::Retry, t))
            .collect();
        store.append(events).await.unwrap();

        let pages = all_pages(&store, &EventFilter::default(), 2).await;
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2]);
        let bad = store
            .list_events(&EventFilter::default(), Some("yesterday"), 2)
            .await;
        assert!(matches!(bad, Err(qpost_core::Error::BadRequest(_))));
    }
}
