//! The bundle of ports and settings every use case takes.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Limits;
use crate::ports::{Dispatcher, DlqStore, KeyStore, MessageStore};

pub use crate::egress::delivery_client;

/// Everything a use case may touch; built once at start-up by the binary or the Lambda.
#[derive(Clone)]
pub struct Services {
    pub messages: Arc<dyn MessageStore>,
    pub dlq: Arc<dyn DlqStore>,
    pub keys: Arc<dyn KeyStore>,
    pub dispatcher: Arc<dyn Dispatcher>,
    pub clock: Arc<dyn Clock>,
    /// Client for requests to destinations; pooled, keep-alive, no redirects.
    pub http: reqwest::Client,
    pub limits: Limits,
}
