//! Schedules through the schedules function: each is an EventBridge schedule with the
//! translated expression, targeting the delivery queue; its firing (simulated: moto never
//! fires) produces a message the deliver function delivers with `Upstash-Schedule-Id`. A
//! cron EventBridge cannot express is refused before anything is stored.

use std::time::Duration;

use chrono::{DateTime, Datelike, Duration as Days, NaiveDate, Utc, Weekday};
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

#[tokio::test(flavor = "multi_thread")]
async fn a_cron_eventbridge_cannot_express_is_answered_400_and_leaves_nothing_behind() {
    let stack = Stack::start().await;
    let url = stack.receiver.url("/cron");

    let refused = stack
        .api(
            ApiRequest::post(&format!("/v2/schedules/{url}"))
                .header("upstash-cron", "0 9 13 * +5")
                .header("upstash-schedule-id", "friday-13th")
                .body("tick"),
        )
        .await;

    assert_eq!(refused.status, 400, "{refused:?}");
    let error = refused.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("EventBridge Scheduler cannot express"),
        "{error}"
    );
    let read = stack
        .api(ApiRequest::get("/v2/schedules/friday-13th"))
        .await;
    assert_eq!(read.status, 404, "not stored: {read:?}");
    let listed = stack.api(ApiRequest::get("/v2/schedules")).await.ok();
    assert_eq!(listed, json!([]));
    let eventbridge = stack.scheduler.list().await.expect("ListSchedules");
    assert!(eventbridge.is_empty(), "nothing armed: {eventbridge:?}");
}

/// Noon UTC of `date`, as Unix ms.
fn noon(date: NaiveDate) -> i64 {
    date.and_hms_opt(12, 0, 0)
        .expect("a valid time")
        .and_utc()
        .timestamp_millis()
}

/// The first day after `now_ms` (UTC) for which `pick` holds.
fn next_day(now_ms: i64, pick: impl Fn(NaiveDate) -> bool) -> NaiveDate {
    let today = DateTime::<Utc>::from_timestamp_millis(now_ms)
        .expect("a valid time")
        .date_naive();
    (1..400)
        .map(|n| today + Days::days(n))
        .find(|d| pick(*d))
        .expect("within a year")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_last_day_or_second_friday_schedule_is_two_eventbridge_schedules_firing_its_id() {
    let stack = Stack::start().await;
    let url = stack.receiver.url("/month");

    let created = stack
        .api(
            ApiRequest::post(&format!("/v2/schedules/{url}"))
                .header("upstash-cron", "0 12 L * 5#2")
                .header("upstash-schedule-id", "month")
                .body("tick"),
        )
        .await
        .ok();
    assert_eq!(created["scheduleId"], "month");

    let all = stack.scheduler.list().await.expect("ListSchedules");
    let mut got: Vec<(&str, &str, &str)> = all
        .iter()
        .map(|s| (s.name.as_str(), s.expression.as_str(), s.input.as_str()))
        .collect();
    got.sort();
    let input = r#"{"schedule":"month"}"#;
    assert_eq!(
        got,
        [
            ("month", "cron(0 12 L * ? *)", input),
            ("weekday.month", "cron(0 12 ? * 6#2 *)", input)
        ]
    );

    let now = stack.now_ms();
    let last_day = next_day(now, |d| (d + Days::days(1)).day() == 1);
    let second_friday = next_day(now, |d| {
        d.weekday() == Weekday::Fri && (8..=14).contains(&d.day())
    });
    let day_before = last_day - Days::days(1);
    let fires = |name: &str, t: i64| all.iter().any(|s| s.name == name && s.fires_on(t));
    assert!(fires("month", noon(last_day)), "{last_day}");
    assert!(!fires("month", noon(day_before)), "{day_before}");
    assert!(!fires("weekday.month", noon(last_day)), "{last_day}");

    let fired = stack
        .scheduler
        .fire_minute(noon(second_friday))
        .await
        .expect("fired");
    assert_eq!(fired, ["weekday.month"], "on {second_friday}");
    let delivered = stack.receiver.wait_for("/month", 1, WAIT).await;
    assert_eq!(delivered[0].header("upstash-schedule-id"), Some("month"));
}
