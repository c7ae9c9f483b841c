//! The store contract: behaviour every backend's ports must show, written once and run
//! by each backend's tests against its real storage (SQLite file, DynamoDB emulator).
//! Each check panics with a message naming the broken rule.

use crate::events::{Event, EventState};
use crate::filter::{DlqFilter, EventFilter, MessageFilter};
use crate::ids::{MessageId, dlq_id};
use crate::message::{DlqEntry, Message};
use crate::ports::{
    Change, DedupKey, DlqStore, EventLog, Inserted, KeyStore, MessageStore, NewMessage, Transition,
    Wakeup,
};
use crate::signing::{SigningKey, SigningKeys};
use crate::test_support::message;

/// A backend under test: all three stores.
pub trait Backend: MessageStore + DlqStore + KeyStore + EventLog {}
impl<T: MessageStore + DlqStore + KeyStore + EventLog> Backend for T {}

fn new(m: &Message) -> NewMessage {
    NewMessage {
        message: m.clone(),
        dedup: None,
        from_dlq: None,
        events: vec![],
    }
}

fn entry(m: &Message, now: i64, expires_at: i64) -> DlqEntry {
    DlqEntry {
        dlq_id: dlq_id(now),
        message: m.clone(),
        response_status: Some(500),
        response_headers: Default::default(),
        response_body: vec![0xff, b'x'],
        error: None,
        expires_at,
    }
}

/// Runs every check.
pub async fn run_all(store: &dyn Backend) {
    messages_round_trip_with_their_bodies(store).await;
    a_live_dedup_key_refuses_a_second_insert(store).await;
    transitions_retry_remove_and_dead_letter(store).await;
    dlq_pages_follow_the_cursor_and_skip_expired(store).await;
    a_dlq_retry_consumes_its_entry_exactly_once(store).await;
    find_applies_filters_oldest_first(store).await;
}

pub async fn messages_round_trip_with_their_bodies(store: &dyn Backend) {
    let mut m = message();
    m.body = vec![0, 159, 146, 150];
    assert_eq!(
        store.insert(vec![new(&m)]).await.unwrap(),
        [Inserted::Created]
    );
    assert_eq!(
        store.get(&m.id).await.unwrap().as_ref(),
        Some(&m),
        "a stored message reads back equal"
    );
    assert!(
        store.wakeups().await.unwrap().contains(&Wakeup::of(&m)),
        "wake-ups are rebuilt from the store"
    );
    assert_eq!(store.remove(std::slice::from_ref(&m.id)).await.unwrap(), 1);
    assert_eq!(
        store.remove(std::slice::from_ref(&m.id)).await.unwrap(),
        0,
        "removing twice counts once"
    );
    assert!(store.get(&m.id).await.unwrap().is_none());
}

pub async fn a_live_dedup_key_refuses_a_second_insert(store: &dyn Backend) {
    let (a, b, c) = (message(), message(), message());
    let key = |expires_at| {
        Some(DedupKey {
            key: format!("id:{}", a.id),
            expires_at,
        })
    };
    let first = NewMessage {
        dedup: key(a.created_at + 1000),
        ..new(&a)
    };
    let second = NewMessage {
        dedup: key(b.created_at + 1000),
        ..new(&b)
    };
    let got = store.insert(vec![first, second]).await.unwrap();
    assert_eq!(
        got,
        [Inserted::Created, Inserted::Duplicate(a.id.clone())],
        "dedup holds within one batch"
    );
    assert!(
        store.get(&b.id).await.unwrap().is_none(),
        "a duplicate is not stored"
    );
    let mut late = c.clone();
    late.created_at = a.created_at + 5000;
    let third = NewMessage {
        dedup: key(late.created_at + 1000),
        ..new(&late)
    };
    assert_eq!(
        store.insert(vec![third]).await.unwrap(),
        [Inserted::Created],
        "an expired key no longer blocks"
    );
    store.remove(&[a.id, late.id]).await.unwrap();
}

pub async fn transitions_retry_remove_and_dead_letter(store: &dyn Backend) {
    let (m, spawned) = (message(), message());
    store.insert(vec![new(&m)]).await.unwrap();
    let retry = Transition {
        message_id: m.id.clone(),
        change: Change::Retry {
            retried: 1,
            not_before: 42,
        },
        spawned: vec![spawned.clone()],
        events: vec![Event::of(&m, EventState::Retry, 42)],
    };
    store.apply(retry).await.unwrap();
    let only = EventFilter {
        message: MessageFilter {
            message_ids: vec![m.id.to_string()],
            ..Default::default()
        },
        ..Default::default()
    };
    let logged = store.list_events(&only, None, 10).await.unwrap();
    assert_eq!(
        logged.items.iter().map(|e| e.state).collect::<Vec<_>>(),
        [EventState::Retry],
        "events ride with the transition"
    );
    let after = store.get(&m.id).await.unwrap().unwrap();
    assert_eq!(
        (after.retried, after.not_before),
        (1, 42),
        "a retry counts and re-times the message"
    );
    assert!(
        store.get(&spawned.id).await.unwrap().is_some(),
        "spawned messages are stored with the transition"
    );
    let e = entry(&after, 1_000, i64::MAX);
    let dead = Transition {
        message_id: m.id.clone(),
        change: Change::DeadLetter(Box::new(e.clone())),
        spawned: vec![],
        events: vec![],
    };
    store.apply(dead).await.unwrap();
    assert!(
        store.get(&m.id).await.unwrap().is_none(),
        "a dead-lettered message leaves the queue"
    );
    assert_eq!(
        store.get_dlq(&e.dlq_id, 0).await.unwrap(),
        Some(e.clone()),
        "and enters the DLQ whole"
    );
    let again = Transition {
        message_id: m.id.clone(),
        change: Change::DeadLetter(Box::new(entry(&after, 1_001, i64::MAX))),
        spawned: vec![],
        events: vec![],
    };
    store.apply(again).await.unwrap();
    let all = store
        .list_dlq(
            &DlqFilter {
                message: MessageFilter {
                    message_ids: vec![m.id.to_string()],
                    ..Default::default()
                },
                ..Default::default()
            },
            None,
            100,
            0,
        )
        .await
        .unwrap();
    assert_eq!(
        all.items.len(),
        1,
        "a repeated dead-letter transition writes one DLQ entry"
    );
    let gone = Transition {
        message_id: MessageId::generate(),
        change: Change::Remove,
        spawned: vec![],
        events: vec![],
    };
    store.apply(gone).await.unwrap();
    store.remove_dlq(&[e.dlq_id]).await.unwrap();
    store.remove(&[spawned.id]).await.unwrap();
}

pub async fn dlq_pages_follow_the_cursor_and_skip_expired(store: &dyn Backend) {
    let label = format!("page-{}", MessageId::generate());
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut m = message();
        m.labels = vec![label.clone()];
        let expires = if i == 2 { 10 } else { i64::MAX };
        let e = entry(&m, 2_000 + i, expires);
        ids.push(e.dlq_id.clone());
        store.insert(vec![new(&m)]).await.unwrap();
        let t = Transition {
            message_id: m.id.clone(),
            change: Change::DeadLetter(Box::new(e)),
            spawned: vec![],
            events: vec![],
        };
        store.apply(t).await.unwrap();
    }
    let filter = DlqFilter {
        message: MessageFilter {
            label: vec![label],
            ..Default::default()
        },
        ..Default::default()
    };
    let (mut seen, mut cursor) = (Vec::new(), None);
    loop {
        let page = store
            .list_dlq(&filter, cursor.as_deref(), 2, 100)
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|e| e.dlq_id.clone()));
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let live: Vec<_> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(seen, live, "pages cover every live entry once, in order");
    assert!(
        store.get_dlq(&ids[2], 100).await.unwrap().is_none(),
        "an expired entry is invisible"
    );
    assert!(
        store.purge_dlq(100).await.unwrap() >= 1,
        "purge drops expired entries"
    );
    assert_eq!(store.remove_dlq(&ids).await.unwrap(), 4);
}

pub async fn a_dlq_retry_consumes_its_entry_exactly_once(store: &dyn Backend) {
    let m = message();
    store.insert(vec![new(&m)]).await.unwrap();
    let e = entry(&m, 3_000, i64::MAX);
    store
        .apply(Transition {
            message_id: m.id.clone(),
            change: Change::DeadLetter(Box::new(e.clone())),
            spawned: vec![],
            events: vec![],
        })
        .await
        .unwrap();
    let (r1, r2) = (message(), message());
    let retry = |r: &Message| NewMessage {
        from_dlq: Some(e.dlq_id.clone()),
        ..new(r)
    };
    assert_eq!(
        store.insert(vec![retry(&r1)]).await.unwrap(),
        [Inserted::Created]
    );
    assert_eq!(
        store.insert(vec![retry(&r2)]).await.unwrap(),
        [Inserted::DlqEntryMissing],
        "a second retry finds no entry"
    );
    assert!(
        store.get(&r2.id).await.unwrap().is_none(),
        "and stores nothing"
    );
    assert!(store.get_dlq(&e.dlq_id, 0).await.unwrap().is_none());
    store.remove(&[r1.id]).await.unwrap();
}

pub async fn find_applies_filters_oldest_first(store: &dyn Backend) {
    let url = format!("https://find.example.com/{}", MessageId::generate());
    let (mut a, mut b, other) = (message(), message(), message());
    a.url = url.clone();
    b.url = url.clone();
    b.created_at = a.created_at + 1;
    store
        .insert(vec![new(&b), new(&a), new(&other)])
        .await
        .unwrap();
    let filter = MessageFilter {
        url: vec![url],
        ..Default::default()
    };
    assert_eq!(
        store.find(&filter, 10).await.unwrap(),
        [a.id.clone(), b.id.clone()]
    );
    assert_eq!(
        store.find(&filter, 1).await.unwrap(),
        [a.id.clone()],
        "the limit holds"
    );
    store.remove(&[a.id, b.id, other.id]).await.unwrap();
}

/// Keys swap only from the expected value; callers run this on a store whose keys are `initial`.
pub async fn keys_swap_only_from_the_expected_value(store: &dyn Backend, initial: &SigningKeys) {
    assert_eq!(&store.keys().await.unwrap(), initial);
    let next = SigningKeys {
        current: initial.next.clone(),
        next: SigningKey::generate(),
    };
    assert_eq!(store.swap_keys(initial, &next).await.unwrap(), next);
    let stale = SigningKeys {
        current: SigningKey::generate(),
        next: SigningKey::generate(),
    };
    assert_eq!(
        store.swap_keys(initial, &stale).await.unwrap(),
        next,
        "a stale swap loses"
    );
    assert_eq!(store.keys().await.unwrap(), next);
}
