//! The claim check against the emulator: bodies over the threshold are S3 objects named by
//! their items, read back transparently, and deleted once their item is gone; small bodies
//! never touch S3.

use std::collections::BTreeSet;

use qpost_aws::Backend;
use qpost_aws::store::bodies::{Bodies, INLINE_MAX};
use qpost_core::events::{Event, EventState};
use qpost_core::filter::DlqFilter;
use qpost_core::message::{DlqEntry, Message};
use qpost_core::ports::{
    Change, DedupKey, DlqStore, Inserted, MessageStore, NewMessage, Transition,
};

use crate::support;

const NOW: i64 = 1_700_000_000_000;

fn message(body_len: usize) -> Message {
    let body = (0..body_len).map(|i| (i % 251) as u8).collect();
    Message::new("https://example.com/hook".into(), body, 3, NOW)
}

fn new(m: &Message) -> NewMessage {
    NewMessage {
        message: m.clone(),
        dedup: None,
        from_dlq: None,
        events: vec![Event::created(m)],
    }
}

fn transition(m: &Message, change: Change, spawned: Vec<Message>) -> Transition {
    Transition {
        message_id: m.id.clone(),
        change,
        spawned,
        events: vec![Event::of(m, EventState::Delivered, NOW)],
    }
}

fn dead_letter(m: &Message, dlq_id: &str, response_len: usize) -> Change {
    Change::DeadLetter(Box::new(DlqEntry {
        dlq_id: dlq_id.into(),
        message: m.clone(),
        response_status: Some(500),
        response_headers: Default::default(),
        response_body: vec![b'r'; response_len],
        error: None,
        expires_at: NOW + 86_400_000,
    }))
}

/// The keys of every object in the stack's body bucket.
async fn objects(backend: &Backend) -> BTreeSet<String> {
    let s3 = Bodies::client(&backend.sdk);
    let out = s3
        .list_objects_v2()
        .bucket(&backend.config.body_bucket)
        .send()
        .await
        .expect("ListObjectsV2");
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(String::from))
        .collect()
}

fn keys<const N: usize>(names: [&str; N]) -> BTreeSet<String> {
    names.into_iter().map(String::from).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_body_is_an_object_read_back_whole_and_a_small_one_stays_inline() {
    let backend = support::backend().await;
    let store = &*backend.store;
    let (small, at_threshold, large) = (message(10), message(INLINE_MAX), message(900 * 1024));
    let inserted = store
        .insert(vec![new(&small), new(&at_threshold), new(&large)])
        .await
        .unwrap();
    assert_eq!(
        inserted,
        [Inserted::Created, Inserted::Created, Inserted::Created]
    );
    assert_eq!(
        objects(&backend).await,
        keys([&format!("msg/{}", large.id)])
    );
    for m in [&small, &at_threshold, &large] {
        let read = store.get(&m.id).await.unwrap().expect("stored");
        assert_eq!(read.body, m.body, "{} reads back whole", m.id);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn delivering_a_large_message_deletes_its_object_after_the_item() {
    let backend = support::backend().await;
    let store = &*backend.store;
    let (read_first, never_read) = (message(20_000), message(20_000));
    store
        .insert(vec![new(&read_first), new(&never_read)])
        .await
        .unwrap();
    // One as the deliver function does it (read, then transition); one as another process
    // would, without having read it: the removal learns the object from its refusal.
    store.get(&read_first.id).await.unwrap();
    for m in [&read_first, &never_read] {
        store
            .apply(transition(m, Change::Remove, vec![]))
            .await
            .unwrap();
        assert!(store.get(&m.id).await.unwrap().is_none());
    }
    assert_eq!(objects(&backend).await, BTreeSet::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_callback_spawned_by_a_delivery_reads_back_whole() {
    let backend = support::backend().await;
    let store = &*backend.store;
    let (source, callback) = (message(3), message(300 * 1024));
    store.insert(vec![new(&source)]).await.unwrap();
    let delivered = transition(&source, Change::Remove, vec![callback.clone()]);
    store.apply(delivered).await.unwrap();
    let read = store.get(&callback.id).await.unwrap().expect("spawned");
    assert_eq!(read.body, callback.body);
    assert_eq!(
        objects(&backend).await,
        keys([&format!("msg/{}", callback.id)])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_message_moved_to_the_dlq_keeps_both_bodies_in_objects_of_the_entry() {
    let backend = support::backend().await;
    let store = &*backend.store;
    let m = message(900 * 1024);
    store.insert(vec![new(&m)]).await.unwrap();
    let failed = transition(&m, dead_letter(&m, "1700000000000-1", 300 * 1024), vec![]);
    store.apply(failed).await.unwrap();
    assert_eq!(
        objects(&backend).await,
        keys(["dlq/1700000000000-1/body", "dlq/1700000000000-1/response"]),
        "the message's own object went with it"
    );

    let entry = store
        .get_dlq("1700000000000-1", NOW)
        .await
        .unwrap()
        .expect("the entry");
    assert_eq!(entry.message.body, m.body);
    assert_eq!(entry.response_body, vec![b'r'; 300 * 1024]);
    let page = store
        .list_dlq(&DlqFilter::default(), None, 10, NOW)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].message.body, m.body);
    assert_eq!(page.items[0].response_body.len(), 300 * 1024);

    assert_eq!(
        store.remove_dlq(&["1700000000000-1".into()]).await.unwrap(),
        1
    );
    assert_eq!(objects(&backend).await, BTreeSet::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dlq_retry_of_a_large_entry_writes_a_new_object_and_deletes_the_entrys() {
    let backend = support::backend().await;
    let store = &*backend.store;
    let m = message(50_000);
    store.insert(vec![new(&m)]).await.unwrap();
    let failed = transition(&m, dead_letter(&m, "1700000000000-2", 10), vec![]);
    store.apply(failed).await.unwrap();

    let again = message(50_000);
    let retry = NewMessage {
        from_dlq: Some("1700000000000-2".into()),
        ..new(&again)
    };
    assert_eq!(
        store.insert(vec![retry]).await.unwrap(),
        [Inserted::Created]
    );
    assert_eq!(
        store.get(&again.id).await.unwrap().unwrap().body,
        again.body
    );
    assert!(
        store
            .get_dlq("1700000000000-2", NOW)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        objects(&backend).await,
        keys([&format!("msg/{}", again.id)])
    );
    let another = NewMessage {
        from_dlq: Some("1700000000000-2".into()),
        ..new(&message(50_000))
    };
    assert_eq!(
        store.insert(vec![another]).await.unwrap(),
        [Inserted::DlqEntryMissing]
    );
    assert_eq!(
        objects(&backend).await.len(),
        1,
        "a refused retry leaves no object"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelled_duplicate_and_purged_large_bodies_leave_no_object() {
    let backend = support::backend().await;
    let store = &*backend.store;
    let dedup = |m: &Message| NewMessage {
        dedup: Some(DedupKey {
            key: "same".into(),
            expires_at: NOW + 60_000,
        }),
        ..new(m)
    };
    let (first, duplicate) = (message(20_000), message(20_000));
    store.insert(vec![dedup(&first)]).await.unwrap();
    assert_eq!(
        store.insert(vec![dedup(&duplicate)]).await.unwrap(),
        [Inserted::Duplicate(first.id.clone())]
    );
    assert_eq!(
        store.remove(std::slice::from_ref(&first.id)).await.unwrap(),
        1
    );
    assert_eq!(objects(&backend).await, BTreeSet::new());

    let expiring = message(20_000);
    store.insert(vec![new(&expiring)]).await.unwrap();
    let failed = transition(
        &expiring,
        dead_letter(&expiring, "1700000000000-3", 20_000),
        vec![],
    );
    store.apply(failed).await.unwrap();
    assert_eq!(objects(&backend).await.len(), 2);
    let after_expiry = NOW + 2 * 86_400_000;
    assert_eq!(store.purge_dlq(after_expiry).await.unwrap(), 1);
    assert_eq!(objects(&backend).await, BTreeSet::new());
}
