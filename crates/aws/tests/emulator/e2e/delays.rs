//! Delays: a wait over SQS's 15 minutes is a one-time EventBridge `at()` schedule whose
//! early firing the deliver function answers with `NotDue` and a visibility change; a
//! cancelled message is never delivered, whichever way its wake-up comes.
//!
//! Time is moved with the stack's clock (the backend's only source of "now"): the test
//! jumps to a few seconds before the due time, fires the schedule (EventBridge's firing,
//! simulated, and early), and the real seconds that remain are waited out by SQS.

use std::time::{Duration, Instant};

use qpost_aws::scheduler::at;
use serde_json::Value;

use super::firing::Scheduled;
use super::gateway::ApiRequest;
use super::harness::Stack;
use super::signature::assert_signed;

const WAIT: Duration = Duration::from_secs(20);
const TWENTY_MINUTES_MS: i64 = 20 * 60 * 1000;

/// The one-time schedule waking message `id`.
async fn wakeup_schedule(stack: &Stack, id: &str) -> Scheduled {
    let all = stack.scheduler.list().await.expect("ListSchedules");
    let input = |s: &Scheduled| serde_json::from_str::<Value>(&s.input).ok();
    all.into_iter()
        .find(|s| input(s).is_some_and(|i| i["id"] == id))
        .unwrap_or_else(|| panic!("no wake-up schedule for {id}"))
}

async fn not_before(stack: &Stack, id: &str) -> i64 {
    let message = stack
        .api(ApiRequest::get(&format!("/v2/messages/{id}")))
        .await
        .ok();
    message["notBefore"].as_i64().expect("a numeric notBefore")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_due_in_twenty_minutes_waits_in_an_at_schedule_and_is_delivered_when_due() {
    let stack = Stack::start().await;
    let url = stack.receiver.url("/later");
    let c = stack.backend.config.clone();

    let id = stack.publish(&url, &[("upstash-delay", "20m")]).await;

    let due = not_before(&stack, &id).await;
    assert!(due >= stack.now_ms() + TWENTY_MINUTES_MS - 5_000);
    let schedule = wakeup_schedule(&stack, &id).await;
    assert_eq!(schedule.expression, at(due));
    assert_eq!(schedule.timezone, "UTC");
    assert_eq!(schedule.target_arn, c.delivery_queue_arn);
    assert!(schedule.delete_after && schedule.enabled, "{schedule:?}");
    assert_eq!(
        stack.depth(&c.delivery_queue_url).await.total(),
        0,
        "no queue message yet"
    );

    // Three seconds before the due time, EventBridge's send arrives (early).
    stack.clock.advance_ms(due - stack.now_ms() - 3_000);
    let (fired_at, fired_clock) = (Instant::now(), stack.now_ms());
    stack.scheduler.fire(&schedule).await.expect("fired");

    let delivered = stack.receiver.wait_for("/later", 1, WAIT).await;
    let arrived_clock = fired_clock + (delivered[0].at - fired_at).as_millis() as i64;
    assert!(
        arrived_clock >= due,
        "delivered {} ms early",
        due - arrived_clock
    );
    let key = stack.signing_key().await;
    assert_signed(&delivered[0], &key, &url, stack.now_ms());
    let changes = stack
        .requests
        .calls()
        .into_iter()
        .filter(|call| call.operation == "ChangeMessageVisibility")
        .count();
    assert_eq!(
        changes, 1,
        "the early wake-up was put back once, for the rest of the wait"
    );
    assert!(
        stack
            .scheduler
            .get(&schedule.name)
            .await
            .expect("read")
            .is_none()
    );
    stack.wait_until_empty(&c.delivery_queue_url, WAIT).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_message_is_never_delivered_and_its_wakeup_is_consumed() {
    let stack = Stack::start().await;
    let c = stack.backend.config.clone();
    let soon = stack
        .publish(&stack.receiver.url("/soon"), &[("upstash-delay", "2s")])
        .await;
    let later = stack
        .publish(&stack.receiver.url("/later"), &[("upstash-delay", "20m")])
        .await;
    let schedule = wakeup_schedule(&stack, &later).await;

    for id in [&soon, &later] {
        let cancelled = stack
            .api(ApiRequest::delete(&format!("/v2/messages/{id}")))
            .await;
        assert!((200..300).contains(&cancelled.status), "{cancelled:?}");
    }
    // Past the due time (which `at()` rounds up to the second).
    stack.clock.advance_ms(TWENTY_MINUTES_MS + 1_000);
    let fired = stack
        .scheduler
        .fire_due(stack.now_ms())
        .await
        .expect("fired");
    assert_eq!(fired, [schedule.name]);

    // Both wake-ups arrive (after the 2-second delay, and from the schedule) and are done:
    // the queue's count includes delayed messages.
    stack.wait_until_empty(&c.delivery_queue_url, WAIT).await;
    assert!(stack.receiver.all().is_empty(), "nothing was delivered");
    for id in [&soon, &later] {
        let gone = stack
            .api(ApiRequest::get(&format!("/v2/messages/{id}")))
            .await;
        assert_eq!(gone.status, 404);
    }
}
