//! Flow control (§12): `Upstash-Flow-Control-Key/Value` limits on publish, enqueue and
//! batch, and the `/v2/flowControl` and `/v2/globalParallelism` APIs. Parallelism is
//! measured from arrival times and a fixed answer delay; rates from arrival times.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::queues::{bodies, enqueue, max_concurrency};
use crate::support::{Receiver, Reply, SOON, TestApp, assert_error, eventually, now_ms, spawn_app};

const KEY: &str = "Upstash-Flow-Control-Key";
const VALUE: &str = "Upstash-Flow-Control-Value";

async fn publish_keyed(app: &TestApp, url: &str, key: &str, value: &str, body: &str) -> String {
    app.publish_ok(url, &[(KEY, key), (VALUE, value)], body.to_string())
        .await
}

async fn flow_key(app: &TestApp, key: &str) -> (StatusCode, Value) {
    let response = app
        .get(&format!("/v2/flowControl/{key}"))
        .send()
        .await
        .expect("get flow-control key");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn command(app: &TestApp, key: &str, action: &str) -> StatusCode {
    app.post(&format!("/v2/flowControl/{key}/{action}"))
        .send()
        .await
        .expect("flow-control command")
        .status()
}

/// Waits until the key's state satisfies `check`; returns that state.
async fn wait_for_key(app: &TestApp, key: &str, check: impl Fn(&Value) -> bool) -> Value {
    let check = &check;
    let found = eventually(SOON, move || async move {
        let (_, info) = flow_key(app, key).await;
        check(&info).then_some(info)
    });
    match found.await {
        Some(info) => info,
        None => panic!(
            "flow-control key {key} never reached the state: {:?}",
            flow_key(app, key).await
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallelism_under_a_key_is_never_exceeded_across_urls() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let answer = Duration::from_millis(250);
    receiver.reply_always("/a", Reply::ok().delay(answer));
    receiver.reply_always("/b", Reply::ok().delay(answer));
    for n in 0..8 {
        let path = if n % 2 == 0 { "/a" } else { "/b" };
        publish_keyed(
            &app,
            &receiver.url(path),
            "two-at-once",
            "parallelism=2",
            &n.to_string(),
        )
        .await;
    }

    let mut got = receiver.wait_for("/a", 4, SOON).await;
    got.extend(receiver.wait_for("/b", 4, SOON).await);
    got.sort_by_key(|r| r.at);
    assert_eq!(
        max_concurrency(&got, answer),
        2,
        "the key's limit spans URLs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_of_r_per_period_is_never_exceeded() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    // All due at the same instant, so the first period's starts are not spread out.
    let not_before = (now_ms() / 1000 + 2).to_string();
    let headers = [
        (KEY, "three-per-second"),
        (VALUE, "rate=3, period=1s"),
        ("Upstash-Not-Before", not_before.as_str()),
    ];
    for n in 0..9 {
        app.publish_ok(&receiver.url("/rated"), &headers, n.to_string())
            .await;
    }

    let got = receiver
        .wait_for("/rated", 9, Duration::from_secs(10))
        .await;
    let at: Vec<Instant> = got.iter().map(|r| r.at).collect();
    for i in 0..at.len() - 3 {
        let span = at[i + 3] - at[i];
        assert!(
            span >= Duration::from_millis(900),
            "starts {i}..={} came within {span:?}; at most 3 per second",
            i + 3
        );
    }
    let burst = at[2] - at[0];
    assert!(
        burst < Duration::from_millis(500),
        "the first 3 go at once ({burst:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_and_batch_carry_flow_control_too() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let answer = Duration::from_millis(250);
    receiver.reply_always("/mixed", Reply::ok().delay(answer));
    let url = receiver.url("/mixed");
    let headers = [(KEY, "one-at-once"), (VALUE, "parallelism=1")];
    for q in ["fc-q1", "fc-q2"] {
        enqueue(&app, q, &url, &headers, q).await;
    }
    let entry = |body: &str| {
        json!({"destination": url, "body": body,
               "headers": {"upstash-flow-control-key": "one-at-once",
                           "upstash-flow-control-value": "parallelism=1"}})
    };
    let batch = app
        .post("/v2/batch")
        .json(&json!([entry("b1"), entry("b2")]))
        .send()
        .await
        .expect("batch");
    assert_eq!(batch.status(), StatusCode::OK);

    let got = receiver.wait_for("/mixed", 4, SOON).await;
    assert_eq!(
        max_concurrency(&got, answer),
        1,
        "two queues and a batch share one key: {:?}",
        bodies(&got)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_shows_a_key_and_pause_holds_its_messages_until_resume() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let url = receiver.url("/api");
    let value = "parallelism=1, rate=10, period=1m";
    publish_keyed(&app, &url, "Tenant-7.jobs", value, "0").await;
    receiver.wait_for("/api", 1, SOON).await;

    let info = wait_for_key(&app, "Tenant-7.jobs", |i| i["parallelismCount"] == 0).await;
    assert_eq!(info["flowControlKey"], "Tenant-7.jobs");
    assert_eq!(info["parallelismMax"], 1);
    assert_eq!(info["rateMax"], 10);
    assert_eq!(info["ratePeriod"], 60);
    assert_eq!(info["rateCount"], 1);
    assert_eq!(info["waitListSize"], 0);
    assert_eq!(info["isPaused"], false);
    assert_eq!(info["isPinnedParallelism"], false);
    assert_eq!(info["isPinnedRate"], false);
    let start = info["ratePeriodStart"].as_i64().expect("unix seconds");
    assert!(
        (now_ms() / 1000 - start).abs() <= 5,
        "ratePeriodStart {start} is Unix seconds"
    );

    let listed: Value = app
        .get("/v2/flowControl?search=tenant-7")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["flowControlKey"], "Tenant-7.jobs");
    let none: Value = app
        .get("/v2/flowControl?search=nothing-like-it")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(none, json!([]));

    assert_eq!(
        command(&app, "Tenant-7.jobs", "pause").await,
        StatusCode::OK
    );
    publish_keyed(&app, &url, "Tenant-7.jobs", value, "1").await;
    publish_keyed(&app, &url, "Tenant-7.jobs", value, "2").await;
    receiver
        .assert_stays("/api", 1, Duration::from_millis(500))
        .await;
    let info = wait_for_key(&app, "Tenant-7.jobs", |i| i["waitListSize"] == 2).await;
    assert_eq!(info["isPaused"], true);

    assert_eq!(
        command(&app, "Tenant-7.jobs", "resume").await,
        StatusCode::OK
    );
    let got = receiver.wait_for("/api", 3, SOON).await;
    assert_eq!(bodies(&got), ["0", "1", "2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_parallelism_overrides_what_messages_ask_until_unpinned() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let answer = Duration::from_millis(250);
    receiver.reply_always("/pinned", Reply::ok().delay(answer));
    receiver.reply_always("/unpinned", Reply::ok().delay(answer));
    publish_keyed(
        &app,
        &receiver.url("/pinned"),
        "pin-me",
        "parallelism=1",
        "first",
    )
    .await;
    receiver.wait_for("/pinned", 1, SOON).await;

    assert_eq!(
        command(&app, "pin-me", "pin?parallelism=3").await,
        StatusCode::OK
    );
    let info = wait_for_key(&app, "pin-me", |i| i["isPinnedParallelism"] == true).await;
    assert_eq!(
        (info["parallelismMax"].clone(), info["isPinnedRate"].clone()),
        (json!(3), json!(false))
    );
    for n in 0..6 {
        publish_keyed(
            &app,
            &receiver.url("/pinned"),
            "pin-me",
            "parallelism=1",
            &n.to_string(),
        )
        .await;
    }
    let got = receiver.wait_for("/pinned", 7, SOON).await;
    assert_eq!(
        max_concurrency(&got[1..], answer),
        3,
        "the pin wins over parallelism=1"
    );

    assert_eq!(
        command(&app, "pin-me", "unpin?parallelism=true").await,
        StatusCode::OK
    );
    let info = wait_for_key(&app, "pin-me", |i| i["isPinnedParallelism"] == false).await;
    assert_eq!(
        info["parallelismMax"], 1,
        "back to what the latest message asked"
    );
    for n in 0..3 {
        publish_keyed(
            &app,
            &receiver.url("/unpinned"),
            "pin-me",
            "parallelism=1",
            &n.to_string(),
        )
        .await;
    }
    let got = receiver.wait_for("/unpinned", 3, SOON).await;
    assert_eq!(max_concurrency(&got, answer), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_rate_lets_the_oldest_waiting_message_go_in_a_new_period() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let url = receiver.url("/slow-rate");
    for n in 0..3 {
        publish_keyed(
            &app,
            &url,
            "one-a-minute",
            "rate=1, period=60",
            &n.to_string(),
        )
        .await;
    }
    receiver.wait_for("/slow-rate", 1, SOON).await;
    let info = wait_for_key(&app, "one-a-minute", |i| i["waitListSize"] == 2).await;
    assert_eq!(
        (info["rateCount"].clone(), info["ratePeriod"].clone()),
        (json!(1), json!(60))
    );
    receiver
        .assert_stays("/slow-rate", 1, Duration::from_millis(300))
        .await;

    assert_eq!(
        command(&app, "one-a-minute", "resetRate").await,
        StatusCode::OK
    );
    let got = receiver.wait_for("/slow-rate", 2, SOON).await;
    assert_eq!(
        bodies(&got),
        ["0", "1"],
        "the oldest waiting message goes first"
    );
    receiver
        .assert_stays("/slow-rate", 2, Duration::from_millis(300))
        .await;

    assert_eq!(command(&app, "one-a-minute", "reset").await, StatusCode::OK);
    let got = receiver.wait_for("/slow-rate", 3, SOON).await;
    assert_eq!(bodies(&got), ["0", "1", "2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_keys_and_bad_values_are_refused_and_global_parallelism_is_reported() {
    let app = spawn_app().await;
    assert_error(
        app.get("/v2/flowControl/never-used").send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "GET of an unknown key",
    )
    .await;
    for action in [
        "pause",
        "resume",
        "pin?parallelism=2",
        "unpin?rate=true",
        "resetRate",
        "reset",
    ] {
        let response = app
            .post(&format!("/v2/flowControl/never-used/{action}"))
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::NOT_FOUND, action).await;
    }
    let receiver = Receiver::start().await;
    publish_keyed(&app, &receiver.url("/x"), "known", "rate=5", "x").await;
    wait_for_key(&app, "known", |i| i["rateMax"] == 5).await;
    for action in [
        "pin",
        "pin?parallelism=0",
        "pin?rate=x",
        "pin?period=8d",
        "unpin?parallelism=maybe",
    ] {
        let response = app
            .post(&format!("/v2/flowControl/known/{action}"))
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, action).await;
    }
    let bad_name = app.get("/v2/flowControl/a%20b").send().await.unwrap();
    assert_error(bad_name, StatusCode::BAD_REQUEST, "an invalid key").await;
    let info = wait_for_key(&app, "known", |_| true).await;
    assert_eq!(
        info["isPinnedParallelism"], false,
        "refused pins changed nothing"
    );

    let global: Value = app
        .get("/v2/globalParallelism")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(global["parallelismMax"], 256, "the worker's concurrency");
    assert!(global["parallelismCount"].as_u64().is_some(), "{global}");
}
