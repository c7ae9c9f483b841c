//! The DynamoDB store: the store contract of qpost-core, then the rules only the AWS
//! store has (item size, idempotent transitions, sharded listings, documents).

use qpost_core::Error;
use qpost_core::contract;
use qpost_core::events::{Event, EventState};
use qpost_core::filter::{EventFilter, MessageFilter};
use qpost_core::ids::MessageId;
use qpost_core::message::Message;
use qpost_core::ports::{
    Change, DedupKey, EventLog, Inserted, KeyStore, MessageStore, NewMessage, QueueStore,
    ScheduleStore, TopicStore, Transition,
};
use qpost_core::queue::Queue;
use qpost_core::signing::{SigningKey, SigningKeys};
use qpost_core::topic::Topic;

use crate::support;

fn keys() -> SigningKeys {
    SigningKeys {
        current: SigningKey::generate(),
        next: SigningKey::generate(),
    }
}

fn message() -> Message {
    Message::new(
        "https://example.com/hook".into(),
        b"{}".to_vec(),
        3,
        1_700_000_000_000,
    )
}

fn new(m: &Message) -> NewMessage {
    NewMessage {
        message: m.clone(),
        dedup: None,
        from_dlq: None,
        events: vec![],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dynamodb_store_keeps_the_store_contract() {
    let backend = support::backend().await;
    let store = &*backend.store;
    let initial = store.init_keys(None, keys()).await.unwrap();
    contract::run_all(store).await;
    contract::keys_swap_only_from_the_expected_value(store, &initial).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_keys_win_over_defaults_and_forced_keys_replace_them() {
    let backend = support::backend().await;
    let store = &*backend.store;
    assert!(
        store.keys().await.is_err(),
        "no keys before the first start"
    );
    let first = keys();
    assert_eq!(store.init_keys(None, first.clone()).await.unwrap(), first);
    assert_eq!(
        store.init_keys(None, keys()).await.unwrap(),
        first,
        "stored keys win"
    );
    let forced = keys();
    assert_eq!(
        store.init_keys(Some(forced.clone()), keys()).await.unwrap(),
        forced
    );
    assert_eq!(store.keys().await.unwrap(), forced);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_with_a_message_over_the_item_limit_is_refused_whole() {
    let backend = support::backend().await;
    let store = &*backend.store;
    let small = message();
    // A body of any size goes to S3; only metadata can overflow an item.
    let mut big = message();
    big.headers.append("X-Huge", "h".repeat(400 * 1024));
    let err = store
        .insert(vec![new(&small), new(&big)])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::PayloadTooLarge(msg) if msg.contains("DynamoDB item limit")),
        "a clear 413, got {err:?}"
    );
    assert!(
        store.get(&small.id).await.unwrap().is_none(),
        "nothing of the batch is stored"
    );
    let mut fits = message();
    fits.body = vec![b'y'; 1 << 20];
    let created = NewMessage {
        events: vec![Event::created(&fits)],
        ..new(&fits)
    };
    assert_eq!(
        store.insert(vec![created]).await.unwrap(),
        [Inserted::Created]
    );
    assert_eq!(store.get(&fits.id).await.unwrap().unwrap().body, fits.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_dedup_key_reads_back_the_original_across_calls() {
    let backend = support::backend().await;
    let store = &*backend.store;
    let (a, b) = (message(), message());
    let dedup = |m: &Message| NewMessage {
        dedup: Some(DedupKey {
            key: format!("long:{}", "k".repeat(2000)),
            expires_at: m.created_at + 1000,
        }),
        ..new(m)
    };
    assert_eq!(
        store.insert(vec![dedup(&a)]).await.unwrap(),
        [Inserted::Created]
    );
    assert_eq!(
        store.insert(vec![dedup(&b)]).await.unwrap(),
        [Inserted::Duplicate(a.id.clone())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_retry_never_moves_the_count_back_and_still_logs() {
    let backend = support::backend().await;
    let store = &*backend.store;
    let m = message();
    store.insert(vec![new(&m)]).await.unwrap();
    let retry = |retried, not_before| Transition {
        message_id: m.id.clone(),
        change: Change::Retry {
            retried,
            not_before,
        },
        spawned: vec![],
        events: vec![Event::of(&m, EventState::Retry, not_before)],
    };
    store.apply(retry(2, 200)).await.unwrap();
    store.apply(retry(1, 100)).await.unwrap();
    let after = store.get(&m.id).await.unwrap().unwrap();
    assert_eq!((after.retried, after.not_before), (2, 200));
    let wakeup = store.wakeups().await.unwrap();
    assert_eq!(
        wakeup.iter().find(|w| w.id == m.id).map(|w| w.due_ms),
        Some(200)
    );
    let only = EventFilter {
        message: MessageFilter {
            message_ids: vec![m.id.to_string()],
            ..Default::default()
        },
        ..Default::default()
    };
    let logged = store.list_events(&only, None, 10).await.unwrap();
    assert_eq!(
        logged.items.len(),
        2,
        "the stale attempt's events are still logged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn events_page_newest_first_across_shards_and_purge_by_time() {
    let backend = support::backend().await;
    let store = &*backend.store;
    let messages: Vec<Message> = (0..6).map(|_| message()).collect();
    let events: Vec<Event> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| Event::of(m, EventState::Delivered, 1_000 + i as i64))
        .collect();
    store.append(events).await.unwrap();
    let (mut times, mut cursor) = (Vec::new(), None);
    loop {
        let page = store
            .list_events(&EventFilter::default(), cursor.as_deref(), 4)
            .await
            .unwrap();
        times.extend(page.items.iter().map(|e| e.time));
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(times, [1005, 1004, 1003, 1002, 1001, 1000]);
    assert!(matches!(
        store
            .list_events(&EventFilter::default(), Some("nope"), 4)
            .await,
        Err(Error::BadRequest(_))
    ));
    assert_eq!(store.purge_events(1003).await.unwrap(), 3);
    let left = store
        .list_events(&EventFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(
        left.items.iter().map(|e| e.time).collect::<Vec<_>>(),
        [1005, 1004, 1003]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn documents_round_trip_and_queue_lag_counts_the_queues_messages() {
    let backend = support::backend().await;
    let store = &*backend.store;
    for name in ["b-queue", "a-queue"] {
        store.put_queue(&Queue::new(name, 1, 5)).await.unwrap();
    }
    let names: Vec<String> = store
        .list_queues()
        .await
        .unwrap()
        .into_iter()
        .map(|q| q.name)
        .collect();
    assert_eq!(names, ["a-queue", "b-queue"], "listed in name order");
    let mut queued = [message(), message(), message()];
    queued[2].queue_name = Some("b-queue".into());
    for m in &mut queued[..2] {
        m.queue_name = Some("a-queue".into());
    }
    store
        .insert(queued.iter().map(new).collect())
        .await
        .unwrap();
    assert_eq!(store.queue_lag("a-queue").await.unwrap(), 2);
    assert_eq!(store.queue_lag("nobody").await.unwrap(), 0);
    store.remove(&[queued[0].id.clone()]).await.unwrap();
    assert_eq!(store.queue_lag("a-queue").await.unwrap(), 1);
    assert!(store.delete_queue("a-queue").await.unwrap());
    assert!(
        !store.delete_queue("a-queue").await.unwrap(),
        "deleting twice finds nothing"
    );
    let topic = Topic {
        name: "group".into(),
        created_at: 1,
        updated_at: 2,
        endpoints: vec![],
        headers: Default::default(),
    };
    store.put_topic(&topic).await.unwrap();
    assert_eq!(store.get_topic("group").await.unwrap(), Some(topic));
    assert!(store.get_schedule("missing").await.unwrap().is_none());
    assert!(store.list_schedules().await.unwrap().is_empty());
    assert!(!store.delete_schedule("missing").await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn find_by_ids_reads_only_those_messages_oldest_first() {
    let backend = support::backend().await;
    let store = &*backend.store;
    let (mut a, b) = (message(), message());
    a.created_at -= 1;
    store.insert(vec![new(&b), new(&a)]).await.unwrap();
    let filter = MessageFilter {
        message_ids: vec![
            b.id.to_string(),
            a.id.to_string(),
            MessageId::generate().to_string(),
        ],
        ..Default::default()
    };
    assert_eq!(
        store.find(&filter, 10).await.unwrap(),
        [a.id.clone(), b.id.clone()]
    );
    assert_eq!(
        store.find(&filter, 0).await.unwrap(),
        Vec::<MessageId>::new()
    );
}
