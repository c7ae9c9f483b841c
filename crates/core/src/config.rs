//! Limits and defaults that hosted plans fix but qpost leaves to configuration.

use std::time::Duration;

/// Limits applied to every request; each field's default is stated on it.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest accepted message body. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Retries used when `Upstash-Retries` is absent. Default 3.
    pub default_retries: u32,
    /// Highest accepted `Upstash-Retries`. Default 20.
    pub max_retries: u32,
    /// Longest per-attempt timeout, also the timeout when none is given. Default 15 min.
    pub max_timeout: Duration,
    /// Longest accepted delay. Default 365 days.
    pub max_delay: Duration,
    /// How long a deduplication id blocks an equal one. Default 10 min.
    pub dedup_window: Duration,
    /// How long DLQ entries are kept. Default 7 days.
    pub dlq_retention: Duration,
    /// How long log events are kept. Default 7 days.
    pub event_retention: Duration,
    /// How much of a destination's response body is kept for callbacks and the DLQ. Default 1 MiB.
    pub max_response_body_bytes: usize,
    /// Refuse destinations on loopback, link-local and private networks. Default false
    /// (local mode); the client must then be built with `delivery_client(true)` too.
    pub block_private_destinations: bool,
    /// Highest parallelism a queue may be given (`POST /v2/queues` answers 412 above it).
    /// Default 100, the pay-as-you-go plan's figure.
    pub max_queue_parallelism: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            default_retries: 3,
            max_retries: 20,
            max_timeout: Duration::from_secs(15 * 60),
            max_delay: Duration::from_secs(365 * 24 * 3600),
            dedup_window: Duration::from_secs(10 * 60),
            dlq_retention: Duration::from_secs(7 * 24 * 3600),
            event_retention: Duration::from_secs(7 * 24 * 3600),
            max_response_body_bytes: 1 << 20,
            block_private_destinations: false,
            max_queue_parallelism: 100,
        }
    }
}
