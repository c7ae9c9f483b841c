//! Bodies larger than a DynamoDB item through the whole stack (the S3 claim check): a
//! 900 KiB body is published, read back, delivered and handed to its callback intact; a
//! dead-lettered one is listed in the DLQ with its large response body; a schedule's large
//! body is fired intact and its object replaced and deleted with the schedule; and a small
//! message never makes an S3 request.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use qpost_aws::store::bodies::Bodies;

use super::gateway::ApiRequest;
use super::harness::{Stack, eventually};

const WAIT: Duration = Duration::from_secs(30);

/// `len` bytes of printable text (so the API shows it as `body`, not `bodyBase64`).
fn text(len: usize, seed: u8) -> String {
    (0..len)
        .map(|i| char::from(b'!' + ((i * 7 + usize::from(seed)) % 90) as u8))
        .collect()
}

/// Publishes `body` to `destination` with `headers`; returns the message id.
async fn publish(stack: &Stack, destination: &str, body: &str, headers: &[(&str, &str)]) -> String {
    let mut request = ApiRequest::post(&format!("/v2/publish/{destination}"))
        .header("content-type", "text/plain")
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let answer = stack.api(request).await.ok();
    answer["messageId"]
        .as_str()
        .unwrap_or_else(|| panic!("no messageId in {answer}"))
        .to_string()
}

/// S3 requests the functions sent since the log was last cleared.
fn s3_calls(stack: &Stack) -> Vec<String> {
    let calls = stack.requests.calls();
    let s3 = calls.iter().filter(|c| c.service == "s3");
    s3.map(|c| c.operation.clone()).collect()
}

/// A destination answering every request with 500 and `body` (the receiver answers with
/// statuses only).
async fn failing_destination(body: String) -> String {
    // The request body is read before answering: hyper resets a connection whose request
    // is still arriving when the answer goes out.
    let app = axum::Router::new().fallback(move |_request: Bytes| {
        let body = body.clone();
        async move { (StatusCode::INTERNAL_SERVER_ERROR, body) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/fails")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_900_kib_body_is_read_back_delivered_and_handed_to_its_callback_intact() {
    let stack = Stack::idle().await;
    let (url, callback) = (stack.receiver.url("/big"), stack.receiver.url("/cb"));
    let payload = text(900 * 1024, 1);
    stack.requests.clear();
    let id = publish(&stack, &url, &payload, &[("upstash-callback", &callback)]).await;
    assert!(
        s3_calls(&stack).iter().any(|op| op.starts_with("PUT ")),
        "the body went to S3: {:?}",
        stack.requests.calls()
    );

    let read = stack
        .api(ApiRequest::get(&format!("/v2/messages/{id}")))
        .await
        .ok();
    assert!(
        read["body"] == payload.as_str(),
        "messages get returns the whole body"
    );

    let delivered = eventually(WAIT, "the message and its callback", || async {
        stack.delivery.poll_once().await.expect("polled");
        let (big, cb) = (stack.receiver.to("/big"), stack.receiver.to("/cb"));
        (!big.is_empty() && !cb.is_empty()).then_some((big, cb))
    })
    .await;
    let (big, cb) = delivered;
    assert_eq!(big.len(), 1);
    assert!(big[0].body == payload.as_bytes(), "delivered intact");
    let source = cb[0].json()["sourceBody"]
        .as_str()
        .map(|b| STANDARD.decode(b));
    assert!(
        matches!(source, Some(Ok(bytes)) if bytes == payload.as_bytes()),
        "the callback carries the whole source body"
    );
    let gone = stack
        .api(ApiRequest::get(&format!("/v2/messages/{id}")))
        .await;
    assert_eq!(gone.status, 404, "the delivered message is removed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_lettered_900_kib_message_is_listed_in_the_dlq_with_its_large_response() {
    let stack = Stack::start().await;
    let response = text(300 * 1024, 2);
    let url = failing_destination(response.clone()).await;
    let payload = text(900 * 1024, 3);
    let id = publish(&stack, &url, &payload, &[("upstash-retries", "0")]).await;

    let entry = eventually(WAIT, "the DLQ entry", || async {
        let listed = stack.api(ApiRequest::get("/v2/dlq")).await.ok();
        listed["messages"]
            .as_array()
            .and_then(|m| m.first().cloned())
    })
    .await;
    assert_eq!(entry["messageId"], id.as_str());
    assert_eq!(entry["responseStatus"], 500, "{}", entry["error"]);
    assert!(
        entry["body"] == payload.as_str(),
        "the DLQ list returns the whole body"
    );
    assert!(
        entry["responseBody"] == response.as_str(),
        "and the whole response body"
    );

    let dlq_id = entry["dlqId"].as_str().expect("a DLQ id");
    let read = stack
        .api(ApiRequest::get(&format!("/v2/dlq/{dlq_id}")))
        .await
        .ok();
    assert!(read["body"] == payload.as_str());
    assert!(read["responseBody"] == response.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_message_makes_no_s3_request_from_publish_to_delivery() {
    let stack = Stack::idle().await;
    let url = stack.receiver.url("/small");
    stack.requests.clear();
    let body = text(8 * 1024, 4);
    publish(&stack, &url, &body, &[]).await;
    eventually(WAIT, "the delivery", || async {
        stack.delivery.poll_once().await.expect("polled");
        (!stack.receiver.to("/small").is_empty()).then_some(())
    })
    .await;
    assert_eq!(s3_calls(&stack), Vec::<String>::new());
}

/// The keys of the objects in the stack's body bucket under `prefix`.
async fn objects(stack: &Stack, prefix: &str) -> Vec<String> {
    let out = Bodies::client(&stack.backend.sdk)
        .list_objects_v2()
        .bucket(&stack.backend.config.body_bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("ListObjectsV2");
    let keys = out.contents().iter().filter_map(|o| o.key());
    keys.map(String::from).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedules_large_body_is_fired_intact_replaced_on_update_and_deleted_with_it() {
    let stack = Stack::idle().await;
    let url = stack.receiver.url("/cron");
    let payload = text(500 * 1024, 5);
    let create = |body: &str| {
        ApiRequest::post(&format!("/v2/schedules/{url}"))
            .header("upstash-cron", "*/5 * * * *")
            .header("upstash-schedule-id", "big")
            .header("content-type", "text/plain")
            .body(body)
    };
    stack.api(create(&payload)).await.ok();
    let read = stack.api(ApiRequest::get("/v2/schedules/big")).await.ok();
    assert!(
        read["body"] == payload.as_str(),
        "the schedule reads back whole"
    );
    assert_eq!(objects(&stack, "sched/").await.len(), 1);

    let scheduled = stack.scheduler.get("big").await.expect("GetSchedule");
    let scheduled = scheduled.expect("an EventBridge schedule");
    stack.scheduler.fire(&scheduled).await.expect("fired");
    let delivered = eventually(WAIT, "the firing's delivery", || async {
        stack.delivery.poll_once().await.expect("polled");
        stack.receiver.to("/cron").first().cloned()
    })
    .await;
    assert!(delivered.body == payload.as_bytes(), "fired intact");

    stack.api(create("small now")).await.ok();
    let read = stack.api(ApiRequest::get("/v2/schedules/big")).await.ok();
    assert_eq!(read["body"], "small now");
    assert_eq!(objects(&stack, "sched/").await, Vec::<String>::new());

    stack.api(create(&payload)).await.ok();
    let listed = stack.api(ApiRequest::get("/v2/schedules")).await.ok();
    assert!(listed[0]["body"] == payload.as_str(), "listed whole");
    let deleted = stack.api(ApiRequest::delete("/v2/schedules/big")).await;
    assert!((200..300).contains(&deleted.status), "{deleted:?}");
    assert_eq!(objects(&stack, "sched/").await, Vec::<String>::new());
}
