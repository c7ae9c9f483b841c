//! The bundle of ports and settings every use case takes.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Limits;
use crate::ports::{
    Admission, Dispatcher, DlqStore, EventLog, KeyStore, MessageStore, QueueStore,
    ScheduleRegistry, ScheduleStore, TopicStore,
};

pub use crate::egress::delivery_client;

/// Everything a use case may touch; built once at start-up by the binary or the Lambda.
#[derive(Clone)]
pub struct Services {
    pub messages: Arc<dyn MessageStore>,
    pub dlq: Arc<dyn DlqStore>,
    pub keys: Arc<dyn KeyStore>,
    pub dispatcher: Arc<dyn Dispatcher>,
    pub schedules: Arc<dyn ScheduleStore>,
    pub registry: Arc<dyn ScheduleRegistry>,
    pub topics: Arc<dyn TopicStore>,
    pub queues: Arc<dyn QueueStore>,
    pub events: Arc<dyn EventLog>,
    pub admission: Arc<dyn Admission>,
    pub clock: Arc<dyn Clock>,
    /// Client for requests to destinations; pooled, keep-alive, no redirects.
    pub http: reqwest::Client,
    pub limits: Limits,
}
