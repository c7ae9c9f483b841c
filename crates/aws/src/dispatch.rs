//! Wake-ups on SQS: a wake-up is a queue message naming a message id, delayed until the
//! message is due. SQS delays at most 15 minutes; a longer wait is sent with the maximum
//! delay and the consumer, finding the message not yet due, re-delays it (until the
//! EventBridge Scheduler path for long waits lands).

use std::sync::Arc;

use async_trait::async_trait;
use qpost_core::clock::Clock;
use qpost_core::ids::MessageId;
use qpost_core::ports::{Dispatcher, Wakeup};
use serde::{Deserialize, Serialize};

use crate::error::AwsError;

/// The longest `DelaySeconds` SQS accepts.
pub const MAX_DELAY_SECONDS: i32 = 900;

/// The body of a wake-up: only the id. The store is the source of truth; the queue message
/// carries no state, so it stays tiny whatever the message size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WakeupBody {
    pub id: MessageId,
}

impl WakeupBody {
    pub fn to_json(&self) -> String {
        format!(
            "{{\"id\":{}}}",
            serde_json::Value::String(self.id.to_string())
        )
    }

    /// Parses a wake-up received from the queue.
    pub fn parse(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }
}

/// Seconds to delay a wake-up due at `due_ms` sent at `now_ms`: rounded up so it never
/// arrives early by rounding, clamped to what SQS accepts.
pub fn delay_seconds(due_ms: i64, now_ms: i64) -> i32 {
    let wait_ms = due_ms.saturating_sub(now_ms).max(0);
    let secs = (wait_ms as u64).div_ceil(1000);
    secs.min(MAX_DELAY_SECONDS as u64) as i32
}

/// Sends wake-ups to the delivery queue (a standard queue).
pub struct SqsDispatcher {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    clock: Arc<dyn Clock>,
}

impl SqsDispatcher {
    pub fn new(
        client: aws_sdk_sqs::Client,
        queue_url: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            clock,
        }
    }
}

#[async_trait]
impl Dispatcher for SqsDispatcher {
    async fn dispatch(&self, wakeup: Wakeup) -> qpost_core::Result<()> {
        let body = WakeupBody { id: wakeup.id };
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body.to_json())
            .delay_seconds(delay_seconds(wakeup.due_ms, self.clock.now_ms()))
            .send()
            .await
            .map_err(|e| AwsError::sdk("SendMessage", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_round_up_and_clamp_to_the_sqs_range() {
        assert_eq!(delay_seconds(1_000, 5_000), 0, "overdue goes at once");
        assert_eq!(delay_seconds(5_000, 5_000), 0);
        assert_eq!(delay_seconds(5_001, 5_000), 1, "never early by rounding");
        assert_eq!(delay_seconds(125_000, 5_000), 120);
        assert_eq!(delay_seconds(5_000 + 3_600_000, 5_000), MAX_DELAY_SECONDS);
        assert_eq!(delay_seconds(i64::MAX, i64::MIN), MAX_DELAY_SECONDS);
    }

    #[test]
    fn the_body_names_only_the_id_and_parses_back() {
        let body = WakeupBody {
            id: MessageId::from_string("msg_\"x".into()),
        };
        let json = body.to_json();
        assert_eq!(json, r#"{"id":"msg_\"x"}"#);
        assert_eq!(WakeupBody::parse(&json).unwrap(), body);
        assert!(WakeupBody::parse("{}").is_err());
    }
}
