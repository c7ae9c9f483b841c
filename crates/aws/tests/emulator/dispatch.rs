//! The SQS dispatcher: a wake-up lands on the delivery queue naming only the message id,
//! delayed until the message is due (at most 15 minutes; longer waits: `scheduler.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use qpost_aws::WakeupBody;
use qpost_aws::dispatch::MAX_DELAY_SECONDS;
use qpost_core::clock::ManualClock;
use qpost_core::ids::MessageId;
use qpost_core::ports::{Dispatcher, Wakeup};
use serde_json::Value;

use crate::support;

const NOW: i64 = 1_700_000_000_000;

fn wakeup(due_ms: i64) -> Wakeup {
    Wakeup {
        id: MessageId::generate(),
        due_ms,
        queue_name: None,
        flow_control: None,
    }
}

/// The delay moto recorded for the queue message whose body names `id`, in seconds.
async fn recorded_delay(id: &MessageId) -> i64 {
    let state = support::emulator_state().await;
    let messages = state["sqs"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let m = messages
        .iter()
        .find(|m| m["body"].as_str().is_some_and(|b| b.contains(id.as_str())))
        .unwrap_or_else(|| panic!("no queue message names {id}"));
    let (sent, until) = (m["sent_timestamp"].as_f64(), m["delayed_until"].as_f64());
    match (sent, until) {
        (Some(sent), Some(until)) if until > 0.0 => ((until - sent) / 1000.0).round() as i64,
        _ => 0,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wakeups_up_to_fifteen_minutes_away_are_delayed_until_due() {
    let backend = support::backend_with_clock(Arc::new(ManualClock::new(NOW))).await;
    let cases = [
        (NOW + 120_000, 120),
        (NOW + 900_000, i64::from(MAX_DELAY_SECONDS)),
        (NOW + 1, 1),
    ];
    for (due, expected) in cases {
        let w = wakeup(due);
        backend.dispatcher.dispatch(w.clone()).await.unwrap();
        assert_eq!(
            recorded_delay(&w.id).await,
            expected,
            "delay for a wake-up due in {} ms",
            due - NOW
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_due_wakeup_arrives_at_once_with_a_body_naming_only_the_id() {
    let backend = support::backend_with_clock(Arc::new(ManualClock::new(NOW))).await;
    let w = wakeup(NOW - 5_000);
    backend.dispatcher.dispatch(w.clone()).await.unwrap();
    let got = backend
        .sqs
        .receive_message()
        .queue_url(&backend.config.delivery_queue_url)
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    let body = got.messages()[0].body().unwrap().to_string();
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        serde_json::json!({"id": w.id.to_string()})
    );
    assert_eq!(WakeupBody::parse(&body).unwrap().id, w.id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delayed_wakeup_stays_invisible_until_its_delay_passed() {
    let backend = support::backend().await;
    let now = qpost_core::clock::Clock::now_ms(&qpost_core::clock::SystemClock);
    let w = wakeup(now + 1_500);
    let sent = Instant::now();
    backend.dispatcher.dispatch(w.clone()).await.unwrap();
    let receive = || {
        backend
            .sqs
            .receive_message()
            .queue_url(&backend.config.delivery_queue_url)
            .wait_time_seconds(1)
            .send()
    };
    let deadline = sent + Duration::from_secs(15);
    let body = loop {
        let got = receive().await.unwrap();
        if let Some(m) = got.messages().first() {
            break m.body().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "the wake-up never arrived");
    };
    assert!(
        sent.elapsed() >= Duration::from_secs(1),
        "arrived after {:?}",
        sent.elapsed()
    );
    assert_eq!(WakeupBody::parse(&body).unwrap().id, w.id);
}
