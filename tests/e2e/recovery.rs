//! Durability (DESIGN "Local mode"): pending messages survive a graceful restart and a
//! `kill -9` of the real binary, a graceful shutdown lets an attempt in flight finish, and
//! flow-control pauses and pins outlive a restart.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::binary::BinaryServer;
use crate::support::{Receiver, Reply, SOON, now_ms, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_message_survives_a_graceful_restart_and_is_delivered_once() {
    let mut app = spawn_app().await;
    let receiver = Receiver::start().await;
    let published_at = now_ms();
    let id = app
        .publish_ok(
            &receiver.url("/later"),
            &[("Upstash-Delay", "2s")],
            "durable",
        )
        .await;
    app.restart().await;
    assert!(
        now_ms() - published_at < 1_500,
        "the restart must happen before the message is due"
    );
    assert!(receiver.requests("/later").is_empty());

    let got = receiver.wait_for("/later", 1, SOON).await;
    assert!(
        got[0].at_ms - published_at >= 1_990,
        "delivered early, after {} ms",
        got[0].at_ms - published_at
    );
    assert_eq!(got[0].header("upstash-message-id"), Some(id.as_str()));
    assert_eq!(&got[0].body[..], b"durable");
    app.wait_until_gone(&id).await;
    receiver
        .assert_stays("/later", 1, Duration::from_millis(500))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_message_survives_kill_9_of_the_binary() {
    let data_dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let server = BinaryServer::start(data_dir.path()).await;
    let url = format!("{}/v2/publish/{}", server.base_url, receiver.url("/crash"));
    let response = client
        .post(url)
        .bearer_auth(qpost::DEV_TOKEN)
        .header("Upstash-Delay", "2s")
        .body("survives")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let id = response.json::<Value>().await.unwrap()["messageId"]
        .as_str()
        .unwrap()
        .to_string();
    server.kill_9();
    assert!(
        receiver.requests("/crash").is_empty(),
        "delivered before the crash"
    );

    let _restarted = BinaryServer::start(data_dir.path()).await;
    let got = receiver.wait_for("/crash", 1, SOON).await;
    assert_eq!(got[0].header("upstash-message-id"), Some(id.as_str()));
    assert_eq!(&got[0].body[..], b"survives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_an_attempt_in_flight_finish_and_it_is_not_redelivered() {
    let mut app = spawn_app().await;
    let receiver = Receiver::start().await;
    let answer_after = Duration::from_secs(1);
    receiver.reply_always("/slow", Reply::ok().delay(answer_after));
    let id = app
        .publish_ok(
            &receiver.url("/slow"),
            &[("Upstash-Retry-Delay", "100")],
            "x",
        )
        .await;

    let got = receiver.wait_for("/slow", 1, SOON).await;
    let stop_started = Instant::now();
    app.stop().await;
    let answered_by = got[0].at + answer_after;
    assert!(
        Instant::now() >= answered_by,
        "shutdown returned before the attempt in flight was answered"
    );
    assert!(
        stop_started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        stop_started.elapsed()
    );

    app.restart().await;
    assert_eq!(
        app.message_status(&id).await,
        StatusCode::NOT_FOUND,
        "the finished attempt was recorded"
    );
    receiver
        .assert_stays("/slow", 1, Duration::from_millis(1_500))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_and_pinned_flow_control_key_stays_so_across_a_restart() {
    let mut app = spawn_app().await;
    let receiver = Receiver::start().await;
    let url = receiver.url("/keyed");
    let keyed = [
        ("Upstash-Flow-Control-Key", "kept"),
        ("Upstash-Flow-Control-Value", "parallelism=3"),
    ];
    app.publish_ok(&url, &keyed, "before").await;
    receiver.wait_for("/keyed", 1, SOON).await;
    for action in ["pin?parallelism=1", "pause"] {
        let answer = app
            .post(&format!("/v2/flowControl/kept/{action}"))
            .send()
            .await
            .expect("a flow-control command");
        assert_eq!(answer.status(), StatusCode::OK, "{action}");
    }

    app.restart().await;
    let info: Value = app
        .get("/v2/flowControl/kept")
        .send()
        .await
        .expect("the key after the restart")
        .json()
        .await
        .expect("JSON");
    assert_eq!(info["isPaused"], true, "{info}");
    assert_eq!(info["isPinnedParallelism"], true, "{info}");
    assert_eq!(info["parallelismMax"], 1, "{info}");
    app.publish_ok(&url, &keyed, "held").await;
    receiver
        .assert_stays("/keyed", 1, Duration::from_millis(700))
        .await;

    let resumed = app.post("/v2/flowControl/kept/resume").send().await;
    assert_eq!(resumed.expect("resume").status(), StatusCode::OK);
    let got = receiver.wait_for("/keyed", 2, SOON).await;
    assert_eq!(&got[1].body[..], b"held");
}
