//! What the Lambda handler tests share: a scriptable receiver (an axum server on
//! 127.0.0.1:0 that records every request and answers with the statuses it is given),
//! records read from the emulator's queues as the SQS event source would hand them to a
//! function, and publishing through the one publish path.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use lambda_runtime::{Context, LambdaEvent};
use qpost_aws::Backend;
use qpost_core::Services;
use qpost_core::ids::MessageId;
use qpost_core::publish::{PublishRequest, publish};

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct Script {
    statuses: VecDeque<u16>,
    received: Vec<Received>,
}

/// A destination answering with scripted statuses (200 once the script is used up).
#[derive(Clone)]
pub struct Receiver {
    base: String,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    pub async fn start(statuses: &[u16]) -> Self {
        let script = Arc::new(Mutex::new(Script {
            statuses: statuses.iter().copied().collect(),
            received: Vec::new(),
        }));
        let app = Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&script));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base: format!("http://{addr}"),
            script,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }
}

async fn answer(
    State(script): State<Arc<Mutex<Script>>>,
    uri: Uri,
    _headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut script = script.lock().unwrap();
    script.received.push(Received {
        path: uri.path().to_string(),
        body: body.to_vec(),
    });
    let status = script.statuses.pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

/// A backend on fresh resources, with signing keys, as a function has after cold start.
pub async fn backend() -> Backend {
    let backend = crate::support::backend().await;
    backend.ensure_signing_keys().await.unwrap();
    backend
}

/// Publishes `body` to `url` with the given `Upstash-*` headers; returns the message id.
pub async fn publish_to(services: &Services, url: &str, headers: &[(&str, &str)]) -> MessageId {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        map.insert(
            http::HeaderName::try_from(*name).unwrap(),
            value.parse().unwrap(),
        );
    }
    let request = PublishRequest {
        destination: url.to_string(),
        raw_query: None,
        headers: map,
        body: Bytes::from_static(b"{\"hello\":\"world\"}"),
        caller_ip: None,
    };
    let outcome = publish(services, request, None).await.unwrap();
    outcome.messages[0].message_id.clone()
}

/// Receives records from `queue_url` until `count` arrived or `within` passed, as the
/// SQS event source would hand them to the function (id, receipt handle, body, attributes).
pub async fn receive(
    backend: &Backend,
    queue_url: &str,
    count: usize,
    within: Duration,
) -> Vec<SqsMessage> {
    let deadline = Instant::now() + within;
    let mut records = Vec::new();
    while records.len() < count && Instant::now() < deadline {
        let got = backend
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        records.extend(got.messages().iter().map(as_record));
    }
    records
}

fn as_record(m: &aws_sdk_sqs::types::Message) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = m.message_id().map(String::from);
    record.receipt_handle = m.receipt_handle().map(String::from);
    record.body = m.body().map(String::from);
    record.event_source = Some("aws:sqs".into());
    if let Some(attributes) = m.attributes() {
        record.attributes = attributes
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.clone()))
            .collect();
    }
    record
}

/// A record built by hand (for bodies no queue would carry, or firings).
pub fn record(id: &str, body: &str, sent_ms: i64) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(id.into());
    record.receipt_handle = Some(format!("receipt-{id}"));
    record.body = Some(body.into());
    record
        .attributes
        .insert("SentTimestamp".into(), sent_ms.to_string());
    record
}

/// The event the function is invoked with for `records`.
pub fn event(records: Vec<SqsMessage>) -> LambdaEvent<SqsEvent> {
    let mut payload = SqsEvent::default();
    payload.records = records;
    LambdaEvent::new(payload, Context::default())
}

/// The reported failures, sorted.
pub fn failures(response: &SqsBatchResponse) -> Vec<String> {
    let mut ids: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    ids.sort();
    ids
}

/// The id a wake-up record names.
pub fn wakeup_id(record: &SqsMessage) -> Option<String> {
    let body: serde_json::Value = serde_json::from_str(record.body.as_deref()?).ok()?;
    body["id"].as_str().map(String::from)
}
