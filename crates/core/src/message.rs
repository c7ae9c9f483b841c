//! The stored message: everything needed to deliver it, retry it and report on it.

use serde::{Deserialize, Serialize};

use crate::headers::Headers;
use crate::ids::MessageId;
use crate::retry::RetryDelayExpr;

/// How a message came to be; callbacks never trigger further callbacks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Origin {
    #[default]
    Publish,
    Callback,
    FailureCallback,
}

/// Where and how a (failure) callback is sent: it becomes a message of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackSpec {
    pub url: String,
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Headers::is_empty")]
    pub headers: Headers,
    pub retries: Option<u32>,
    pub retry_delay: Option<RetryDelayExpr>,
    pub timeout_ms: Option<u64>,
    pub delay_ms: Option<u64>,
}

/// Which stored fields the read APIs show as `REDACTED:<sha256>` (delivery sends them in clear).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Redaction {
    #[serde(default)]
    pub body: bool,
    #[serde(default)]
    pub all_headers: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
}

impl Redaction {
    pub fn is_empty(&self) -> bool {
        !self.body && !self.all_headers && self.headers.is_empty()
    }
}

/// A message waiting for delivery (or retrying). Removed once delivered or dead-lettered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: MessageId,
    /// The URL requests are sent to.
    pub url: String,
    pub method: String,
    /// Headers sent to the destination (forwarded headers and `Content-Type`).
    #[serde(default)]
    pub headers: Headers,
    #[serde(skip)]
    pub body: Vec<u8>,
    /// Retries allowed after the first attempt.
    pub max_retries: u32,
    /// Retries made so far.
    #[serde(default)]
    pub retried: u32,
    pub retry_delay: Option<RetryDelayExpr>,
    /// Per-attempt timeout; `None` means the configured maximum.
    pub timeout_ms: Option<u64>,
    /// When the next attempt is due (Unix ms).
    pub not_before: i64,
    pub created_at: i64,
    pub callback: Option<CallbackSpec>,
    pub failure_callback: Option<CallbackSpec>,
    pub caller_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Redaction::is_empty")]
    pub redact: Redaction,
    pub topic_name: Option<String>,
    pub endpoint_name: Option<String>,
    pub queue_name: Option<String>,
    pub schedule_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_control: Option<crate::flow::FlowControl>,
    #[serde(default)]
    pub origin: Origin,
}

impl Message {
    /// A fresh `POST` of `body` to `url`, created and due at `now`, with a new id and no
    /// optional settings; callers set what their request asks for.
    pub fn new(url: String, body: Vec<u8>, max_retries: u32, now: i64) -> Self {
        Self {
            id: MessageId::generate(),
            url,
            method: "POST".into(),
            headers: Headers::new(),
            body,
            max_retries,
            retried: 0,
            retry_delay: None,
            timeout_ms: None,
            not_before: now,
            created_at: now,
            callback: None,
            failure_callback: None,
            caller_ip: None,
            labels: Vec::new(),
            redact: Redaction::default(),
            topic_name: None,
            endpoint_name: None,
            queue_name: None,
            schedule_id: None,
            flow_control: None,
            origin: Origin::Publish,
        }
    }

    /// Whether another attempt is allowed after a failed one.
    pub fn has_retries_left(&self) -> bool {
        self.retried < self.max_retries
    }
}

/// A message that exhausted its retries (or was refused as non-retryable), with the last
/// response from its destination.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DlqEntry {
    pub dlq_id: String,
    pub message: Message,
    pub response_status: Option<u16>,
    #[serde(default)]
    pub response_headers: Headers,
    #[serde(skip)]
    pub response_body: Vec<u8>,
    /// Why the last attempt failed when there was no response (timeout, connection error).
    pub error: Option<String>,
    /// When the entry is dropped (Unix ms).
    pub expires_at: i64,
}
