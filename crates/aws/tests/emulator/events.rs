//! The sample events in `infra/events/` (used by `sam local invoke` and by tests) read into
//! the types the Lambda runtime gives the functions: HTTP API v2 requests through
//! `lambda_http`, SQS events through `aws_lambda_events`, and record bodies through
//! `QueueBody`. These need no emulator.

use std::path::{Path, PathBuf};

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::sqs::SqsEvent;
use lambda_http::RequestExt;
use lambda_http::http::Method;
use qpost_aws::dispatch::QueueBody;

/// The token of the QStash dev server, which the sample requests send.
const DEV_TOKEN: &str = "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0=";

fn event_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../infra/events")
        .join(name)
}

fn read(name: &str) -> String {
    let path = event_path(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Reads a sample as the HTTP API v2 event and as the `http::Request` the router receives.
fn http_request(name: &str) -> (ApiGatewayV2httpRequest, lambda_http::Request) {
    let text = read(name);
    let event: ApiGatewayV2httpRequest = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{name} as an HTTP API v2 event: {e}"));
    let request = lambda_http::request::from_str(&text)
        .unwrap_or_else(|e| panic!("{name} as a lambda_http request: {e}"));
    (event, request)
}

fn body_text(request: &lambda_http::Request) -> &str {
    match request.body() {
        lambda_http::Body::Text(text) => text,
        other => panic!("expected a text body, got {other:?}"),
    }
}

fn bearer(request: &lambda_http::Request) -> &str {
    request.headers()["authorization"]
        .to_str()
        .expect("an ASCII authorization header")
}

/// Reads a sample as an SQS event with one record and returns it with its parsed body.
fn sqs_record(name: &str) -> (aws_lambda_events::sqs::SqsMessage, QueueBody) {
    let event: SqsEvent =
        serde_json::from_str(&read(name)).unwrap_or_else(|e| panic!("{name} as an SQS event: {e}"));
    let [record] = <[_; 1]>::try_from(event.records).expect("one record");
    assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
    assert!(
        record.receipt_handle.is_some(),
        "{name} has a receipt handle"
    );
    let body = record.body.as_deref().expect("a body");
    let parsed = QueueBody::parse(body).unwrap_or_else(|e| panic!("{name}: {e}"));
    (record, parsed)
}

fn queue_of(record: &aws_lambda_events::sqs::SqsMessage) -> &str {
    let arn = record
        .event_source_arn
        .as_deref()
        .expect("an event source ARN");
    arn.rsplit(':').next().unwrap_or_default()
}

/// Every sample, each read by one test below.
const SAMPLES: [&str; 7] = [
    "deliver-ordered.json",
    "deliver.json",
    "dlq-list.json",
    "failure-callback.json",
    "publish.json",
    "schedule-create.json",
    "schedule-fired.json",
];

#[test]
fn every_sample_in_the_folder_is_one_that_these_tests_read() {
    let dir = event_path("");
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    found.sort();
    assert_eq!(found, SAMPLES, "a new sample needs a test here");
}

#[test]
fn the_publish_sample_is_an_authenticated_post_to_a_destination() {
    let (event, request) = http_request("publish.json");
    assert_eq!(event.route_key.as_deref(), Some("ANY /v2/publish/{proxy+}"));
    assert_eq!(request.method(), Method::POST);
    assert_eq!(request.uri().path(), "/v2/publish/https://example.com/hook");
    assert_eq!(
        request.path_parameters().first("proxy"),
        Some("https://example.com/hook")
    );
    assert_eq!(bearer(&request), format!("Bearer {DEV_TOKEN}"));
    assert_eq!(request.headers()["upstash-retries"], "2");
    assert_eq!(body_text(&request), r#"{"hello":"world"}"#);
}

#[test]
fn the_dlq_sample_lists_with_a_query() {
    let (event, request) = http_request("dlq-list.json");
    assert_eq!(event.route_key.as_deref(), Some("ANY /v2/dlq"));
    assert_eq!(request.method(), Method::GET);
    assert_eq!(request.uri().path(), "/v2/dlq");
    assert_eq!(request.uri().query(), Some("count=10"));
    assert_eq!(request.query_string_parameters().first("count"), Some("10"));
    assert_eq!(bearer(&request), format!("Bearer {DEV_TOKEN}"));
}

#[test]
fn the_schedule_sample_creates_a_cron_schedule() {
    let (event, request) = http_request("schedule-create.json");
    assert_eq!(
        event.route_key.as_deref(),
        Some("ANY /v2/schedules/{proxy+}")
    );
    assert_eq!(request.method(), Method::POST);
    assert_eq!(
        request.uri().path(),
        "/v2/schedules/https://example.com/hook"
    );
    assert_eq!(request.headers()["upstash-cron"], "*/5 * * * *");
    assert_eq!(bearer(&request), format!("Bearer {DEV_TOKEN}"));
    assert_eq!(body_text(&request), r#"{"hello":"cron"}"#);
}

#[test]
fn the_deliver_sample_is_a_wakeup_from_the_delivery_queue() {
    let (record, body) = sqs_record("deliver.json");
    assert!(queue_of(&record).contains("DeliveryQueue"));
    let QueueBody::Wakeup(id) = body else {
        panic!("expected a wake-up, got {body:?}");
    };
    assert!(id.as_str().starts_with("msg_"));
}

#[test]
fn the_ordered_deliver_sample_is_a_wakeup_in_a_queues_message_group() {
    let (record, body) = sqs_record("deliver-ordered.json");
    assert!(queue_of(&record).contains("OrderedQueue"));
    assert!(queue_of(&record).ends_with(".fifo"));
    assert_eq!(record.attributes["MessageGroupId"], "orders#1");
    let QueueBody::Wakeup(id) = body else {
        panic!("expected a wake-up, got {body:?}");
    };
    assert_eq!(record.attributes["MessageDeduplicationId"], id.as_str());
}

#[test]
fn the_schedule_fired_sample_names_a_schedule() {
    let (record, body) = sqs_record("schedule-fired.json");
    assert!(queue_of(&record).contains("DeliveryQueue"));
    let QueueBody::Schedule(id) = body else {
        panic!("expected a schedule firing, got {body:?}");
    };
    assert!(id.starts_with("scd_"));
}

#[test]
fn the_failure_callback_sample_is_a_redriven_wakeup_on_the_dead_letter_queue() {
    let (record, body) = sqs_record("failure-callback.json");
    assert!(queue_of(&record).contains("DeadLetterQueue"));
    let source = &record.attributes["DeadLetterQueueSourceArn"];
    assert!(
        source.contains("DeliveryQueue"),
        "redriven from the delivery queue"
    );
    let receives: u32 = record.attributes["ApproximateReceiveCount"]
        .parse()
        .expect("a numeric receive count");
    assert!(receives > 1);
    assert!(matches!(body, QueueBody::Wakeup(_)));
}
