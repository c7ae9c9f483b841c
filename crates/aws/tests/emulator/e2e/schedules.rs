//! Schedules through the schedules function: each is an EventBridge schedule with the
//! translated expression, targeting the delivery queue; its firing (simulated: moto never
//! fires) produces a message the deliver function delivers with `Upstash-Schedule-Id`.

use std::time::Duration;

use serde_json::json;

use super::gateway::ApiRequest;
use super::harness::Stack;
use super::signature::assert_signed;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_is_an_eventbridge_schedule_whose_firing_delivers_a_message_with_its_id() {
    let stack = Stack::start().await;
    let url = stack.receiver.url("/cron");
    let c = stack.backend.config.clone();

    let created = stack
        .api(
            ApiRequest::post(&format!("/v2/schedules/{url}"))
                .header("upstash-cron", "*/5 * * * *")
                .body("tick"),
        )
        .await
        .ok();
    let id = created["scheduleId"]
        .as_str()
        .expect("a scheduleId")
        .to_string();

    let schedule = stack
        .scheduler
        .get(&id)
        .await
        .expect("GetSchedule")
        .expect("an EventBridge schedule named after the id");
    assert_eq!(schedule.expression, "cron(0/5 * * * ? *)");
    assert_eq!(schedule.timezone, "UTC");
    assert!(schedule.enabled);
    assert_eq!(schedule.target_arn, c.delivery_queue_arn);
    let input: serde_json::Value = serde_json::from_str(&schedule.input).expect("JSON input");
    assert_eq!(input, json!({ "schedule": id }));

    // EventBridge fires on the minutes the expression matches: the next multiple of five.
    let five = 5 * 60_000;
    let minute = (stack.now_ms() / five + 1) * five;
    let early = stack
        .scheduler
        .fire_minute(minute - 60_000)
        .await
        .expect("fired");
    assert!(
        early.is_empty(),
        "nothing fires on {early:?} a minute before"
    );
    let fired = stack.scheduler.fire_minute(minute).await.expect("fired");
    assert_eq!(fired, std::slice::from_ref(&id));

    let delivered = stack.receiver.wait_for("/cron", 1, WAIT).await;
    assert_eq!(
        delivered[0].header("upstash-schedule-id"),
        Some(id.as_str())
    );
    assert_eq!(delivered[0].body, b"tick");
    let key = stack.signing_key().await;
    assert_signed(&delivered[0], &key, &url, stack.now_ms());
    let read = stack
        .api(ApiRequest::get(&format!("/v2/schedules/{id}")))
        .await
        .ok();
    assert!(read["lastScheduleTime"].is_i64(), "{read}");

    let paused = stack
        .api(ApiRequest::new(
            "PATCH",
            &format!("/v2/schedules/{id}/pause"),
        ))
        .await;
    assert!((200..300).contains(&paused.status), "{paused:?}");
    let disabled = stack.scheduler.get(&id).await.expect("GetSchedule");
    assert!(!disabled.expect("still there").enabled, "paused = DISABLED");
    let deleted = stack
        .api(ApiRequest::delete(&format!("/v2/schedules/{id}")))
        .await;
    assert!((200..300).contains(&deleted.status), "{deleted:?}");
    assert!(
        stack
            .scheduler
            .get(&id)
            .await
            .expect("GetSchedule")
            .is_none()
    );
    stack.wait_until_empty(&c.delivery_queue_url, WAIT).await;
    assert_eq!(
        stack.receiver.to("/cron").len(),
        1,
        "one firing, one message"
    );
}
