//! The failure-callback function's handler on records of the dead-letter queue: a poison
//! wake-up of a message that never got its verdict is written to the DLQ once, and its
//! failure callback is published and delivered like any message.

use std::time::Duration;

use qpost_aws::lambda::deliver::Deliver;
use qpost_aws::lambda::failure::FailureCallback;
use qpost_core::Services;
use qpost_core::clock::{Clock, SystemClock};
use qpost_core::filter::{DlqFilter, MessageFilter};
use qpost_core::ids::MessageId;

use crate::lambda_support::{Receiver, backend, event, failures, publish_to, receive, record};

async fn dlq_entries(services: &Services) -> Vec<qpost_core::message::DlqEntry> {
    let now = SystemClock.now_ms();
    let filter = DlqFilter::default();
    services
        .dlq
        .list_dlq(&filter, None, 10, now)
        .await
        .unwrap()
        .items
}

async fn messages_to(services: &Services, url: &str) -> Vec<MessageId> {
    let filter = MessageFilter {
        url: vec![url.to_string()],
        ..Default::default()
    };
    services.messages.find(&filter, 10).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_wakeup_writes_one_dlq_entry_and_publishes_the_failure_callback_once() {
    let backend = backend().await;
    let services = backend.services();
    let receiver = Receiver::start(&[]).await;
    let callback_url = receiver.url("/failed");
    let id = publish_to(
        &services,
        &receiver.url("/never"),
        &[("Upstash-Failure-Callback", &callback_url)],
    )
    .await;
    let body = format!(r#"{{"id":"{id}"}}"#);
    let handler = FailureCallback::new(&backend);

    for attempt in ["first", "repeated"] {
        let poison = record("poison-1", &body, SystemClock.now_ms());
        let response = handler.handle(event(vec![poison])).await.unwrap();
        assert!(failures(&response).is_empty(), "{attempt} record is done");
        let entries = dlq_entries(&services).await;
        assert_eq!(entries.len(), 1, "{attempt}: one DLQ entry");
        assert_eq!(entries[0].message.id, id);
        assert!(
            entries[0]
                .error
                .as_deref()
                .unwrap()
                .contains("dead-letter queue"),
            "{:?}",
            entries[0].error
        );
        assert_eq!(
            messages_to(&services, &callback_url).await.len(),
            1,
            "{attempt}"
        );
    }
    assert!(services.messages.get(&id).await.unwrap().is_none());

    // Both wake-ups: the original message's (now gone) and the failure callback's.
    let records = receive(
        &backend,
        &backend.config.delivery_queue_url,
        2,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(records.len(), 2);
    let response = Deliver::new(&backend).handle(event(records)).await.unwrap();
    assert!(failures(&response).is_empty());
    let received = receiver.received();
    assert_eq!(received.len(), 1, "only the failure callback was delivered");
    assert_eq!(received[0].path, "/failed");
    let payload: serde_json::Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(payload["sourceMessageId"], id.as_str());
    assert_eq!(
        payload["dlqId"],
        dlq_entries(&services).await[0].dlq_id.as_str()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_wakeup_of_a_finished_message_is_acknowledged_without_writing() {
    let backend = backend().await;
    let services = backend.services();
    let gone = MessageId::generate();
    let poison = record("poison-2", &format!(r#"{{"id":"{gone}"}}"#), 0);
    let firing = record("poison-3", r#"{"schedule":"scd_1"}"#, 0);
    let unreadable = record("poison-4", "garbage", 0);

    let response = FailureCallback::new(&backend)
        .handle(event(vec![poison, firing, unreadable]))
        .await
        .unwrap();

    assert_eq!(
        failures(&response),
        ["poison-4"],
        "unreadable: left for parking"
    );
    assert!(dlq_entries(&services).await.is_empty());
}
