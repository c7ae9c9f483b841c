//! Schedules (§8): create, replace, read, pause, resume and delete over HTTP, and firing
//! by the in-process ticker. The server runs on a hand-moved clock, so a test moves time to
//! a cron minute instead of waiting for it; the ticker looks at the clock at least every
//! half second.

use std::sync::Arc;
use std::time::Duration;

use qpost_core::clock::ManualClock;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::support::{Receiver, Reply, SOON, TestApp, assert_error, eventually, spawn_app_with};

/// 2025-01-01T10:00:00Z.
const T0: i64 = 1_735_725_600_000;
const MINUTE: i64 = 60_000;
/// Longer than the ticker's longest sleep: nothing arriving within it means nothing fired.
const QUIET: Duration = Duration::from_millis(1_200);

/// A server whose clock reads `now` until a test moves it.
async fn app_at(now: i64) -> (TestApp, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(now));
    let injected = clock.clone();
    let app = spawn_app_with(move |s| s.clock = Some(injected)).await;
    (app, clock)
}

fn patch(app: &TestApp, path: &str) -> RequestBuilder {
    app.client.patch(app.url(path)).bearer_auth(&app.token)
}

async fn create(
    app: &TestApp,
    destination: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> reqwest::Response {
    let mut request = app
        .post(&format!("/v2/schedules/{destination}"))
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("create schedule")
}

/// Creates a schedule and returns its id; fails unless 200.
async fn create_ok(
    app: &TestApp,
    destination: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> String {
    let response = create(app, destination, headers, body).await;
    let status = response.status();
    let json: Value = response.json().await.expect("create answers JSON");
    assert_eq!(status, StatusCode::OK, "create schedule answered {json}");
    json["scheduleId"].as_str().expect("scheduleId").to_string()
}

async fn schedule(app: &TestApp, id: &str) -> Value {
    let response = app
        .get(&format!("/v2/schedules/{id}"))
        .send()
        .await
        .expect("get schedule");
    assert_eq!(response.status(), StatusCode::OK, "GET schedule {id}");
    response.json().await.expect("schedule JSON")
}

async fn list(app: &TestApp) -> Vec<Value> {
    let response = app
        .get("/v2/schedules")
        .send()
        .await
        .expect("list schedules");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("schedule list")
}

async fn status_of(request: RequestBuilder) -> StatusCode {
    request.send().await.expect("request").status()
}

/// Waits until the last firing's message `message_id` shows `state`.
async fn wait_for_state(app: &TestApp, id: &str, message_id: &str, state: &str) -> Value {
    let found = eventually(SOON, || async {
        let s = schedule(app, id).await;
        (s["lastScheduleStates"][message_id] == state).then_some(s)
    });
    match found.await {
        Some(s) => s,
        None => panic!(
            "{message_id} never showed {state}: {}",
            schedule(app, id).await
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fires_at_its_minute_with_its_body_headers_and_schedule_id() {
    let (app, clock) = app_at(T0 + 30_000).await;
    let receiver = Receiver::start().await;
    let id = create_ok(
        &app,
        &receiver.url("/cron?from=schedule"),
        &[
            ("Upstash-Cron", "* * * * *"),
            ("Content-Type", "text/plain"),
            ("Upstash-Forward-X-Test", "forwarded"),
            ("Upstash-Method", "PUT"),
        ],
        "tick",
    )
    .await;
    assert!(id.starts_with("scd_"), "{id}");
    receiver.assert_stays("/cron", 0, QUIET).await;

    clock.set_ms(T0 + MINUTE);
    let got = receiver.wait_for("/cron", 1, SOON).await;
    assert_eq!(got[0].header("upstash-schedule-id"), Some(id.as_str()));
    assert_eq!(got[0].header("upstash-caller-ip"), Some("127.0.0.1"));
    assert_eq!(got[0].header("x-test"), Some("forwarded"));
    assert_eq!(got[0].header("content-type"), Some("text/plain"));
    assert_eq!(got[0].method, "PUT");
    assert_eq!(got[0].path_and_query, "/cron?from=schedule");
    assert_eq!(&got[0].body[..], b"tick");
    receiver.assert_stays("/cron", 1, QUIET).await;

    let message_id = got[0].header("upstash-message-id").expect("message id");
    let s = wait_for_state(&app, &id, message_id, "SUCCESS").await;
    assert_eq!(s["lastScheduleTime"], T0 + MINUTE);
    assert_eq!(s["nextScheduleTime"], T0 + 2 * MINUTE);
    assert_eq!(
        s["lastScheduleStates"].as_object().map(|m| m.len()),
        Some(1)
    );

    clock.set_ms(T0 + 2 * MINUTE);
    receiver.wait_for("/cron", 2, SOON).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_list_show_every_setting_in_the_sdk_shape() {
    let (app, _clock) = app_at(T0 + 30_000).await;
    let id = create_ok(
        &app,
        "https://example.com/hook",
        &[
            ("Upstash-Cron", "*/10 * * * * "),
            ("Upstash-Schedule-Id", "shape.1"),
            ("Content-Type", "application/json"),
            ("Upstash-Forward-X-Token", "secret"),
            ("Upstash-Method", "PATCH"),
            ("Upstash-Retries", "2"),
            ("Upstash-Retry-Delay", "1000 * retried"),
            ("Upstash-Delay", "25s"),
            ("Upstash-Timeout", "30s"),
            ("Upstash-Callback", "https://example.com/cb"),
            ("Upstash-Callback-Forward-X-Cb", "c"),
            ("Upstash-Failure-Callback", "https://example.com/fail"),
            ("Upstash-Queue-Name", "nightly"),
            ("Upstash-Flow-Control-Key", "fk"),
            (
                "Upstash-Flow-Control-Value",
                "parallelism=2, rate=10, period=1m",
            ),
            ("Upstash-Label", "billing"),
            ("Upstash-Redact-Fields", "header[X-Token]"),
        ],
        r#"{"a":1}"#,
    )
    .await;
    assert_eq!(id, "shape.1");

    let s = schedule(&app, &id).await;
    let expected = json!({
        "scheduleId": "shape.1",
        "cron": "*/10 * * * *",
        "createdAt": T0 + 30_000,
        "destination": "https://example.com/hook",
        "method": "PATCH",
        "header": {
            "Content-Type": ["application/json"],
            "X-Token": [qpost_core::wire::redacted(b"secret")],
        },
        "body": "{\"a\":1}",
        "retries": 2,
        "retryDelayExpression": "1000 * retried",
        "delay": 25,
        "timeout": 30,
        "callback": "https://example.com/cb",
        "callbackHeader": {"X-Cb": ["c"]},
        "failureCallback": "https://example.com/fail",
        "callerIP": "127.0.0.1",
        "callerIp": "127.0.0.1",
        "isPaused": false,
        "queueName": "nightly",
        "flowControlKey": "fk",
        "parallelism": 2,
        "rate": 10,
        "period": 60,
        "label": "billing",
        "labels": ["billing"],
        "nextScheduleTime": T0 + 10 * MINUTE,
    });
    assert_eq!(s, expected);
    assert_eq!(list(&app).await, vec![expected]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_with_an_existing_id_replaces_the_schedule_entirely() {
    let (app, clock) = app_at(T0 + 30_000).await;
    let receiver = Receiver::start().await;
    let first = [
        ("Upstash-Cron", "* * * * *"),
        ("Upstash-Schedule-Id", "job-1"),
        ("Upstash-Forward-X-Old", "old"),
        ("Upstash-Retries", "5"),
    ];
    create_ok(&app, &receiver.url("/old"), &first, "first").await;
    let second = [
        ("Upstash-Cron", "*/5 * * * *"),
        ("Upstash-Schedule-Id", "job-1"),
    ];
    assert_eq!(
        create_ok(&app, &receiver.url("/new"), &second, "").await,
        "job-1"
    );

    let s = schedule(&app, "job-1").await;
    assert_eq!(s["cron"], "*/5 * * * *");
    assert_eq!(s["destination"], receiver.url("/new"));
    assert_eq!(s["retries"], 3, "unset settings fall back to defaults");
    assert!(s.get("body").is_none(), "the body was cleared: {s}");
    assert!(s.get("header").is_none(), "the headers were cleared: {s}");
    assert_eq!(s["nextScheduleTime"], T0 + 5 * MINUTE);
    assert_eq!(list(&app).await.len(), 1);

    clock.set_ms(T0 + MINUTE);
    receiver.assert_stays("/old", 0, QUIET).await;
    clock.set_ms(T0 + 5 * MINUTE);
    let got = receiver.wait_for("/new", 1, SOON).await;
    assert!(got[0].body.is_empty());
    assert_eq!(got[0].header("x-old"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_schedule_stays_silent_until_resumed_by_patch_or_post() {
    let (app, clock) = app_at(T0 + 30_000).await;
    let receiver = Receiver::start().await;
    let id = create_ok(
        &app,
        &receiver.url("/p"),
        &[("Upstash-Cron", "* * * * *")],
        "x",
    )
    .await;

    assert_eq!(
        status_of(patch(&app, &format!("/v2/schedules/{id}/pause"))).await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(patch(&app, &format!("/v2/schedules/{id}/pause"))).await,
        StatusCode::OK,
        "idempotent"
    );
    let paused = schedule(&app, &id).await;
    assert_eq!(paused["isPaused"], true);
    assert_eq!(paused["nextScheduleTime"], T0 + MINUTE, "kept while paused");
    clock.set_ms(T0 + MINUTE);
    receiver.assert_stays("/p", 0, QUIET).await;

    assert_eq!(
        status_of(app.post(&format!("/v2/schedules/{id}/resume"))).await,
        StatusCode::OK
    );
    let resumed = schedule(&app, &id).await;
    assert_eq!(resumed["isPaused"], false);
    assert_eq!(
        resumed["nextScheduleTime"],
        T0 + 2 * MINUTE,
        "minutes passed while paused are not made up"
    );
    clock.set_ms(T0 + 2 * MINUTE);
    receiver.wait_for("/p", 1, SOON).await;

    assert_eq!(
        status_of(app.post(&format!("/v2/schedules/{id}/pause"))).await,
        StatusCode::OK
    );
    assert_eq!(schedule(&app, &id).await["isPaused"], true);
    assert_eq!(
        status_of(patch(&app, &format!("/v2/schedules/{id}/resume"))).await,
        StatusCode::OK
    );
    assert_eq!(schedule(&app, &id).await["isPaused"], false);
    assert_eq!(
        status_of(patch(&app, "/v2/schedules/nope/pause")).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_schedule_is_gone_and_never_fires() {
    let (app, clock) = app_at(T0 + 30_000).await;
    let receiver = Receiver::start().await;
    let id = create_ok(
        &app,
        &receiver.url("/d"),
        &[("Upstash-Cron", "* * * * *")],
        "x",
    )
    .await;
    assert_eq!(
        status_of(app.delete(&format!("/v2/schedules/{id}"))).await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(app.get(&format!("/v2/schedules/{id}"))).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status_of(app.delete(&format!("/v2/schedules/{id}"))).await,
        StatusCode::NOT_FOUND
    );
    assert!(list(&app).await.is_empty());
    clock.set_ms(T0 + MINUTE);
    receiver.assert_stays("/d", 0, QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minute_missed_while_stopped_fires_once_on_restart_not_in_a_burst() {
    let (mut app, clock) = app_at(T0 + 30_000).await;
    let receiver = Receiver::start().await;
    let id = create_ok(
        &app,
        &receiver.url("/missed"),
        &[("Upstash-Cron", "* * * * *")],
        "x",
    )
    .await;
    app.stop().await;
    clock.set_ms(T0 + 5 * MINUTE + 30_000);
    app.restart().await;

    let got = receiver.wait_for("/missed", 1, SOON).await;
    assert_eq!(got[0].header("upstash-schedule-id"), Some(id.as_str()));
    receiver.assert_stays("/missed", 1, QUIET).await;
    assert_eq!(
        schedule(&app, &id).await["nextScheduleTime"],
        T0 + 6 * MINUTE
    );

    clock.set_ms(T0 + 6 * MINUTE);
    receiver.wait_for("/missed", 2, SOON).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_york_schedule_fires_right_after_the_spring_forward_gap() {
    // 2025-03-09T06:58:30Z is 01:58:30 EST; at 07:00Z clocks jump to 03:00 EDT, so 02:30
    // does not exist that day and the job runs at 03:00 EDT.
    let (app, clock) = app_at(1_741_503_510_000).await;
    let receiver = Receiver::start().await;
    let id = create_ok(
        &app,
        &receiver.url("/dst"),
        &[("Upstash-Cron", "CRON_TZ=America/New_York 30 2 * * *")],
        "x",
    )
    .await;
    let gap_end: i64 = 1_741_503_600_000; // 2025-03-09T07:00:00Z
    assert_eq!(schedule(&app, &id).await["nextScheduleTime"], gap_end);
    clock.set_ms(gap_end);
    receiver.wait_for("/dst", 1, SOON).await;
    let next_day: i64 = 1_741_588_200_000; // 2025-03-10T06:30:00Z, 02:30 EDT
    let s = eventually(SOON, || async {
        let s = schedule(&app, &id).await;
        (s["nextScheduleTime"] == next_day).then_some(s)
    });
    assert!(
        s.await.is_some(),
        "next time after the gap: {}",
        schedule(&app, &id).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produced_messages_honour_delay_callbacks_and_retries() {
    let (app, clock) = app_at(T0 + 30_000).await;
    let receiver = Receiver::start().await;
    receiver.reply_always("/failing", Reply::status(500));
    let id = create_ok(
        &app,
        &receiver.url("/failing"),
        &[
            ("Upstash-Cron", "* * * * *"),
            ("Upstash-Delay", "10s"),
            ("Upstash-Retries", "0"),
            ("Upstash-Callback", &receiver.url("/cb")),
        ],
        "x",
    )
    .await;
    clock.set_ms(T0 + MINUTE);
    receiver.assert_stays("/failing", 0, QUIET).await;
    clock.set_ms(T0 + MINUTE + 10_000);
    let got = receiver.wait_for("/failing", 1, SOON).await;
    let message_id = got[0].header("upstash-message-id").expect("message id");
    let callback = receiver.wait_for("/cb", 1, SOON).await;
    assert_eq!(callback[0].json()["sourceMessageId"], message_id);
    wait_for_state(&app, &id, message_id, "FAIL").await;
    receiver.assert_stays("/failing", 1, QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_through_a_queue_and_to_a_url_group_fans_out_with_the_queue_name() {
    let (app, clock) = app_at(T0 + 30_000).await;
    let receiver = Receiver::start().await;
    let endpoints =
        json!({"endpoints": [{"url": receiver.url("/g1")}, {"url": receiver.url("/g2")}]});
    let added = app
        .post("/v2/topics/team/endpoints")
        .json(&endpoints)
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::OK);
    let id = create_ok(
        &app,
        "team",
        &[
            ("Upstash-Cron", "* * * * *"),
            ("Upstash-Queue-Name", "sched-q"),
        ],
        "fan",
    )
    .await;
    assert_eq!(schedule(&app, &id).await["destination"], "team");
    clock.set_ms(T0 + MINUTE);
    for path in ["/g1", "/g2"] {
        let got = receiver.wait_for(path, 1, SOON).await;
        assert_eq!(got[0].header("upstash-schedule-id"), Some(id.as_str()));
        assert_eq!(&got[0].body[..], b"fan");
    }
    let s = eventually(SOON, || async {
        let s = schedule(&app, &id).await;
        let states = s["lastScheduleStates"].as_object()?;
        (states.len() == 2 && states.values().all(|v| v == "SUCCESS")).then_some(s)
    });
    assert!(s.await.is_some(), "{}", schedule(&app, &id).await);
    let logs: Value = app
        .get(&format!("/v2/events?scheduleId={id}&state=DELIVERED"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = logs["events"].as_array().expect("events");
    assert_eq!(events.len(), 2, "{logs}");
    assert!(events.iter().all(|e| e["queueName"] == "sched-q"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deduplication_applies_to_the_creation_not_to_the_produced_messages() {
    let (app, clock) = app_at(T0 + 30_000).await;
    let receiver = Receiver::start().await;
    let headers = [
        ("Upstash-Cron", "* * * * *"),
        ("Upstash-Deduplication-Id", "once"),
    ];
    let id = create_ok(&app, &receiver.url("/dedup"), &headers, "x").await;
    let again = create(&app, &receiver.url("/dedup"), &headers, "x").await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let again: Value = again.json().await.unwrap();
    assert_eq!(
        (&again["scheduleId"], &again["deduplicated"]),
        (&json!(id), &json!(true))
    );
    assert_eq!(list(&app).await.len(), 1);

    clock.set_ms(T0 + MINUTE);
    receiver.wait_for("/dedup", 1, SOON).await;
    clock.set_ms(T0 + 2 * MINUTE);
    receiver.wait_for("/dedup", 2, SOON).await;
}

/// A refused create: destination, headers, and what the error text must name.
type BadCreate<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_cron_zone_id_or_destination_is_refused_and_creates_nothing() {
    let (app, _clock) = app_at(T0).await;
    let url = "https://example.com/x";
    let cases: [BadCreate; 7] = [
        (url, &[], "Upstash-Cron"),
        (url, &[("Upstash-Cron", "* * *")], "5 fields"),
        (url, &[("Upstash-Cron", "99 * * * *")], "99 * * * *"),
        (
            url,
            &[("Upstash-Cron", "CRON_TZ=Mars/Base * * * * *")],
            "Mars/Base",
        ),
        (
            url,
            &[
                ("Upstash-Cron", "* * * * *"),
                ("Upstash-Schedule-Id", "bad id!"),
            ],
            "Upstash-Schedule-Id",
        ),
        (
            "ftp://example.com",
            &[("Upstash-Cron", "* * * * *")],
            "scheme",
        ),
        (
            url,
            &[("Upstash-Cron", "* * * * *"), ("Upstash-Retries", "many")],
            "Upstash-Retries",
        ),
    ];
    for (destination, headers, named) in cases {
        let response = create(&app, destination, headers, "x").await;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{headers:?}: {text}");
        assert!(
            text.contains(named),
            "{headers:?}: the error should name {named:?}: {text}"
        );
    }
    let missing_group = create(&app, "no-such-group", &[("Upstash-Cron", "* * * * *")], "x").await;
    assert_error(missing_group, StatusCode::NOT_FOUND, "unknown URL group").await;
    assert!(list(&app).await.is_empty());
}
