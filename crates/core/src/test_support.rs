//! Fixtures for the unit tests of this crate.

use crate::ids::MessageId;
use crate::message::{Message, Origin};

/// A plain message to `https://example.com/hook` with the default 3 retries.
pub fn message() -> Message {
    Message {
        id: MessageId::generate(),
        url: "https://example.com/hook".into(),
        method: "POST".into(),
        headers: Default::default(),
        body: b"{}".to_vec(),
        max_retries: 3,
        retried: 0,
        retry_delay: None,
        timeout_ms: None,
        not_before: 1_700_000_000_000,
        created_at: 1_700_000_000_000,
        callback: None,
        failure_callback: None,
        caller_ip: None,
        labels: vec![],
        redact: Default::default(),
        topic_name: None,
        endpoint_name: None,
        queue_name: None,
        flow_control: None,
        schedule_id: None,
        origin: Origin::Publish,
    }
}
