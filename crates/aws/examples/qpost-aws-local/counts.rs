//! `--count-requests`: every AWS request of the functions (`"qpost"`) and of the emulated
//! event source mappings (`"event source"`) is counted at the SDK's HTTP layer (the
//! end-to-end tests' `counting`), and `GET /_emulator/requests` (no token; only with the
//! flag) answers what was counted so far, with what the delivery queue's event source
//! handled and the delivery queue's depth. `qpost-bench --scenario aws-cost` reads it
//! before and after publishing to work out the requests per delivered message.
//!
//! ```json
//! {"requests": [{"sender": "qpost", "service": "dynamodb", "operation": "GetItem", "count": 3, "failed": 0}],
//!  "delivery": {"batches": 2, "records": 20, "failed": 0},
//!  "delivery_queue": {"visible": 0, "in_flight": 0, "delayed": 0}}
//! ```
//!
//! `failed` counts the requests of `count` that were answered with a server error (5xx) or
//! not at all (moto answers 500 to some concurrent transactions; the SDK retries them).
//! `batches` counts the receives that returned records (each one invocation): the other
//! receives are the long polls of an idle queue.

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;
use axum::Json;
use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

use crate::counting::RequestLog;
use crate::mapping::EventSource;

/// Where the counts are served.
pub const PATH: &str = "/_emulator/requests";

/// The clients of a process that may count: the functions' SDK configuration and the
/// event sources' SQS client, each wrapped to record into `log` when there is one.
pub fn clients(log: Option<&RequestLog>, sdk: &SdkConfig) -> (SdkConfig, aws_sdk_sqs::Client) {
    match log {
        Some(log) => (
            log.wrap(sdk, "qpost"),
            aws_sdk_sqs::Client::new(&log.wrap(sdk, "event source")),
        ),
        None => (sdk.clone(), aws_sdk_sqs::Client::new(sdk)),
    }
}

/// What the counts route reads: the log, the delivery queue's event source, and an
/// uncounted client to look at the queue.
struct Counted {
    log: RequestLog,
    delivery: EventSource,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

/// The route answering [`PATH`]; `sdk` is the uncounted configuration.
pub fn router(log: RequestLog, delivery: EventSource, sdk: &SdkConfig, queue_url: &str) -> Router {
    let counted = Arc::new(Counted {
        log,
        delivery,
        sqs: aws_sdk_sqs::Client::new(sdk),
        queue_url: queue_url.to_string(),
    });
    Router::new().route(
        PATH,
        get(move || {
            let counted = Arc::clone(&counted);
            async move { Json(counted.report().await) }
        }),
    )
}

impl Counted {
    async fn report(&self) -> Value {
        let failed = self.log.failed();
        let requests: Vec<Value> = self
            .log
            .tally()
            .into_iter()
            .map(|(call, count)| {
                json!({
                    "failed": failed.get(&call).copied().unwrap_or(0),
                    "sender": call.sender,
                    "service": call.service,
                    "operation": call.operation,
                    "count": count,
                })
            })
            .collect();
        let totals = self.delivery.totals();
        json!({
            "requests": requests,
            "delivery": {
                "batches": totals.batches,
                "records": totals.records,
                "failed": totals.failed,
            },
            "delivery_queue": self.depth().await,
        })
    }

    /// The delivery queue's messages by state (`null` when the emulator did not answer).
    async fn depth(&self) -> Value {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await;
        let Ok(out) = out else { return Value::Null };
        let count = |name: QueueAttributeName| {
            out.attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        json!({
            "visible": count(QueueAttributeName::ApproximateNumberOfMessages),
            "in_flight": count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            "delayed": count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }
}
