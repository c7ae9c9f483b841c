//! The bundle of ports and settings every use case takes.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Limits;
use crate::ports::{Dispatcher, DlqStore, KeyStore, MessageStore};

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

/// The HTTP client deliveries use: connection pooling and keep-alive, and no redirect
/// following, so a 3xx answer counts as a failed attempt like any other non-2xx.
pub fn delivery_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()
        .unwrap_or_default()
}
