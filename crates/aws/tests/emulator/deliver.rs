//! The deliver function's handler, invoked with SQS events read from the emulator's
//! delivery queue, delivering to a real local receiver: outcomes are carried out as record
//! deletions, visibility changes, new wake-ups and partial batch failures.

use std::time::Duration;

use qpost_aws::lambda::deliver::Deliver;
use qpost_aws::{QueueBody, ScheduleBody};
use qpost_core::clock::{Clock, SystemClock};
use qpost_core::filter::DlqFilter;
use qpost_core::publish::PublishRequest;

use crate::lambda_support::{
    Receiver, backend, event, failures, publish_to, receive, record, wakeup_id,
};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_with_mixed_records_reports_exactly_the_failed_items() {
    let backend = backend().await;
    let services = backend.services();
    let receiver = Receiver::start(&[]).await;
    let failing = Receiver::start(&[500]).await;
    let ok = publish_to(&services, &receiver.url("/ok"), &[]).await;
    let retried = publish_to(
        &services,
        &failing.url("/fails"),
        &[("Upstash-Retries", "2"), ("Upstash-Retry-Delay", "60000")],
    )
    .await;
    let mut records = receive(&backend, &backend.config.delivery_queue_url, 2, WAIT).await;
    assert_eq!(records.len(), 2, "both wake-ups were sent");
    let retried_record = records
        .iter()
        .find(|r| wakeup_id(r).as_deref() == Some(retried.as_str()))
        .and_then(|r| r.message_id.clone())
        .unwrap();
    records.push(record("unreadable-1", "not a wake-up", 0));

    let response = Deliver::new(&backend).handle(event(records)).await.unwrap();

    let mut expected = vec![retried_record, "unreadable-1".to_string()];
    expected.sort();
    assert_eq!(failures(&response), expected);
    assert!(
        services.messages.get(&ok).await.unwrap().is_none(),
        "delivered: removed"
    );
    assert_eq!(receiver.received().len(), 1);
    let waiting = services.messages.get(&retried).await.unwrap().unwrap();
    assert_eq!(waiting.retried, 1, "the failed attempt is counted");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_attempt_with_retries_left_comes_back_after_its_backoff() {
    let backend = backend().await;
    let services = backend.services();
    let receiver = Receiver::start(&[500]).await;
    let id = publish_to(
        &services,
        &receiver.url("/flaky"),
        &[("Upstash-Retries", "1"), ("Upstash-Retry-Delay", "2000")],
    )
    .await;
    let queue = &backend.config.delivery_queue_url;
    let first = receive(&backend, queue, 1, WAIT).await;
    let record_id = first[0].message_id.clone().unwrap();
    let deliver = Deliver::new(&backend);

    let response = deliver.handle(event(first)).await.unwrap();
    assert_eq!(
        failures(&response),
        std::slice::from_ref(&record_id),
        "reported for redelivery"
    );

    // The queue's visibility timeout is 36 minutes: only the handler's change to the
    // 2-second backoff brings the record back within the wait.
    let again = receive(&backend, queue, 1, Duration::from_secs(15)).await;
    assert_eq!(again.len(), 1, "the record came back after the backoff");
    assert_eq!(again[0].message_id.as_deref(), Some(record_id.as_str()));
    assert_eq!(again[0].attributes["ApproximateReceiveCount"], "2");

    let response = deliver.handle(event(again)).await.unwrap();
    assert!(failures(&response).is_empty(), "delivered on the retry");
    assert!(services.messages.get(&id).await.unwrap().is_none());
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exhausted_message_is_written_to_the_dlq_and_its_record_is_done() {
    let backend = backend().await;
    let services = backend.services();
    let receiver = Receiver::start(&[503]).await;
    let id = publish_to(
        &services,
        &receiver.url("/down"),
        &[("Upstash-Retries", "0")],
    )
    .await;
    let records = receive(&backend, &backend.config.delivery_queue_url, 1, WAIT).await;

    let response = Deliver::new(&backend).handle(event(records)).await.unwrap();

    assert!(failures(&response).is_empty());
    let now = SystemClock.now_ms();
    let page = services
        .dlq
        .list_dlq(&DlqFilter::default(), None, 10, now)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].message.id, id);
    assert_eq!(page.items[0].response_status, Some(503));
    assert!(services.messages.get(&id).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_due_in_more_than_twelve_hours_becomes_a_one_time_schedule() {
    let backend = backend().await;
    let services = backend.services();
    let receiver = Receiver::start(&[500]).await;
    let day_ms = 24 * 3600 * 1000;
    let id = publish_to(
        &services,
        &receiver.url("/slow"),
        &[
            ("Upstash-Retries", "1"),
            ("Upstash-Retry-Delay", &day_ms.to_string()),
        ],
    )
    .await;
    let records = receive(&backend, &backend.config.delivery_queue_url, 1, WAIT).await;

    let response = Deliver::new(&backend).handle(event(records)).await.unwrap();

    assert!(
        failures(&response).is_empty(),
        "the new wake-up replaces the record"
    );
    let due = services
        .messages
        .get(&id)
        .await
        .unwrap()
        .unwrap()
        .not_before;
    let name = qpost_aws::scheduler::wake_name(&id, due);
    let schedule = scheduler_client(&backend)
        .await
        .get_schedule()
        .group_name(&backend.config.secondary_schedule_group)
        .name(&name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("no wake-up schedule {name}: {e:?}"));
    assert_eq!(
        schedule.schedule_expression(),
        Some(qpost_aws::scheduler::at(due).as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_record_fires_the_schedule_for_the_minute_it_was_sent() {
    let backend = backend().await;
    let services = backend.services();
    let receiver = Receiver::start(&[]).await;
    let mut headers = http::HeaderMap::new();
    headers.insert("upstash-cron", "* * * * *".parse().unwrap());
    let request = PublishRequest {
        destination: receiver.url("/cron"),
        raw_query: None,
        headers,
        body: axum::body::Bytes::from_static(b"tick"),
        caller_ip: None,
    };
    let created = qpost_core::schedules::create(&services, request)
        .await
        .unwrap();
    let sent = SystemClock.now_ms();
    let body = ScheduleBody {
        schedule: created.schedule_id.clone(),
    }
    .to_json();

    let firing = record("firing-1", &body, sent);
    let response = Deliver::new(&backend)
        .handle(event(vec![firing]))
        .await
        .unwrap();

    assert!(failures(&response).is_empty());
    let schedule = services
        .schedules
        .get_schedule(&created.schedule_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(schedule.last_slot, Some(sent / 60_000 * 60_000));
    assert_eq!(schedule.last_message_ids.len(), 1);
    let produced = &schedule.last_message_ids[0];
    let wakeups = receive(&backend, &backend.config.delivery_queue_url, 1, WAIT).await;
    assert_eq!(
        QueueBody::parse(wakeups[0].body.as_deref().unwrap()).unwrap(),
        QueueBody::Wakeup(produced.clone()),
        "the produced message is on its way"
    );

    let repeated = record("firing-2", &body, sent);
    Deliver::new(&backend)
        .handle(event(vec![repeated]))
        .await
        .unwrap();
    let again = services
        .schedules
        .get_schedule(&created.schedule_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        &again.last_message_ids[0], produced,
        "a repeated minute publishes nothing"
    );
}

pub async fn scheduler_client(backend: &qpost_aws::Backend) -> aws_sdk_scheduler::Client {
    aws_sdk_scheduler::Client::new(&crate::support::sdk_config(&backend.config.region).await)
}
