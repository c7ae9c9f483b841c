//! The event log: one record per state transition of a message (`/v2/events`, `/v2/logs`).
//! Events are built here, in one place, and stored with the write that causes them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::delivery::attempt::Response;
use crate::headers::Headers;
use crate::ids::MessageId;
use crate::message::Message;

/// A message state as the logs name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventState {
    Created,
    Active,
    Retry,
    Error,
    Delivered,
    Failed,
    CancelRequested,
    /// Emitted as `CANCELED`, the spelling every official SDK enum uses.
    Canceled,
}

impl EventState {
    /// Parses a state filter; `CANCELLED` is accepted beside `CANCELED`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_uppercase().as_str() {
            "CREATED" => Self::Created,
            "ACTIVE" => Self::Active,
            "RETRY" => Self::Retry,
            "ERROR" => Self::Error,
            "DELIVERED" => Self::Delivered,
            "FAILED" => Self::Failed,
            "CANCEL_REQUESTED" => Self::CancelRequested,
            "CANCELED" | "CANCELLED" => Self::Canceled,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Active => "ACTIVE",
            Self::Retry => "RETRY",
            Self::Error => "ERROR",
            Self::Delivered => "DELIVERED",
            Self::Failed => "FAILED",
            Self::CancelRequested => "CANCEL_REQUESTED",
            Self::Canceled => "CANCELED",
        }
    }
}

/// One logged transition, with the message fields the log filters and shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub time: i64,
    pub message_id: MessageId,
    pub state: EventState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_delivery_time: Option<i64>,
    pub url: String,
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_control_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u32>,
    /// Rate period in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    pub max_retries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay_expression: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_callback: Option<String>,
    /// Headers forwarded to the (failure) callback; on `CREATED` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_header: Option<Headers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_callback_header: Option<Headers>,
    /// Request headers and body (base64), redacted as the message asks; on `CREATED` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<Headers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_header: Option<Headers>,
    /// Response body, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
}

impl Event {
    /// An event of `m` in `state` at `time`, without request or response details.
    pub fn of(m: &Message, state: EventState, time: i64) -> Self {
        Self {
            time,
            message_id: m.id.clone(),
            state,
            error: None,
            next_delivery_time: None,
            url: m.url.clone(),
            method: m.method.clone(),
            topic_name: m.topic_name.clone(),
            endpoint_name: m.endpoint_name.clone(),
            schedule_id: m.schedule_id.clone(),
            queue_name: m.queue_name.clone(),
            flow_control_key: m.flow_control.as_ref().map(|f| f.key.clone()),
            parallelism: m.flow_control.as_ref().and_then(|f| f.parallelism),
            rate: m.flow_control.as_ref().and_then(|f| f.rate),
            period: m
                .flow_control
                .as_ref()
                .filter(|f| f.rate.is_some())
                .map(crate::flow::FlowControl::period),
            caller_ip: m.caller_ip.clone(),
            labels: m.labels.clone(),
            max_retries: m.max_retries,
            retry_delay_expression: m.retry_delay.as_ref().map(|e| e.as_str().to_string()),
            timeout_ms: m.timeout_ms,
            callback: m.callback.as_ref().map(|c| c.url.clone()),
            failure_callback: m.failure_callback.as_ref().map(|c| c.url.clone()),
            callback_header: None,
            failure_callback_header: None,
            header: None,
            body: None,
            response_status: None,
            response_header: None,
            response_body: None,
        }
    }

    /// `CREATED`: the message was stored (for a queue: enqueued). Carries the request,
    /// with redacted fields shown as their hash.
    pub fn created(m: &Message) -> Self {
        let view = crate::wire::MessageView::from(m);
        let body = match (view.body, view.body_base64) {
            (_, Some(b64)) => b64,
            (Some(text), None) if m.redact.body => STANDARD.encode(text),
            _ => STANDARD.encode(&m.body),
        };
        Self {
            callback_header: view.callback_header,
            failure_callback_header: view.failure_callback_header,
            header: Some(view.header),
            body: Some(body),
            ..Self::of(m, EventState::Created, m.created_at)
        }
    }

    /// The events of one finished attempt: `ACTIVE` at its start, then `DELIVERED`, or
    /// `ERROR` followed by `RETRY` (with the next time) or `FAILED`.
    pub fn attempt(
        m: &Message,
        started: i64,
        finished: i64,
        response: &Response,
        outcome: AttemptEnd,
    ) -> Vec<Self> {
        let active = Self::of(m, EventState::Active, started);
        let with_response = |state| Self {
            response_status: response.status(),
            response_header: Some(response.headers()).filter(|h| !h.is_empty()),
            response_body: Some(response.body())
                .filter(|b| !b.is_empty())
                .map(|b| STANDARD.encode(b)),
            error: response.error().map(String::from).or_else(|| {
                response
                    .status()
                    .filter(|s| !(200..300).contains(s))
                    .map(|s| format!("destination answered {s}"))
            }),
            ..Self::of(m, state, finished)
        };
        match outcome {
            AttemptEnd::Delivered => vec![active, with_response(EventState::Delivered)],
            AttemptEnd::Retry(next) => vec![
                active,
                with_response(EventState::Error),
                Self {
                    next_delivery_time: Some(next),
                    ..Self::of(m, EventState::Retry, finished)
                },
            ],
            AttemptEnd::Failed => vec![
                active,
                with_response(EventState::Error),
                with_response(EventState::Failed),
            ],
        }
    }

    /// `CANCEL_REQUESTED` then `CANCELED`: a cancelled message is removed at once.
    pub fn cancelled(m: &Message, time: i64) -> Vec<Self> {
        vec![
            Self::of(m, EventState::CancelRequested, time),
            Self::of(m, EventState::Canceled, time),
        ]
    }
}

/// How an attempt ended, for [`Event::attempt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptEnd {
    Delivered,
    Retry(i64),
    Failed,
}
