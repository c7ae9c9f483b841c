//! qpost-http: the one router of the QStash v2 API, a thin edge over `qpost-core`.
//!
//! Every route lives in a per-area sub-router ([`publish_routes`], [`message_routes`],
//! [`dlq_routes`], [`key_routes`]). [`router`] mounts them all (local mode); a Lambda
//! mounts the areas it serves with [`mount`]. Either way the same token check, the same
//! JSON 404/405 answers and the same error mapping wrap the routes.
#![forbid(unsafe_code)]

mod auth;
mod batch;
mod dlq;
mod error;
mod extract;
mod flow_control;
mod keys;
mod logs;
mod messages;
mod publish;
mod queues;
mod schedules;
mod shutdown;
mod topics;

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::middleware;
use qpost_core::Services;

pub use batch::batch_routes;
pub use dlq::dlq_routes;
pub use error::ApiError;
pub use flow_control::flow_control_routes;
pub use keys::key_routes;
pub use logs::log_routes;
pub use messages::message_routes;
pub use publish::publish_routes;
pub use queues::queue_routes;
pub use schedules::schedule_routes;
pub use shutdown::shutdown_signal;
pub use topics::topic_routes;

/// Settings of the HTTP edge itself; everything else comes from [`Services`].
#[derive(Clone, Default)]
pub struct HttpConfig {
    /// Accepted API tokens, sent as `Authorization: Bearer <token>` or `?qstash_token=<token>`.
    /// Default: none, which refuses every request with 401.
    pub tokens: Vec<String>,
}

impl fmt::Debug for HttpConfig {
    /// Tokens are secrets: only their number is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("tokens", &format_args!("[{} hidden]", self.tokens.len()))
            .finish()
    }
}

/// What every handler is given: the use-case services and the accepted tokens.
#[derive(Clone)]
pub struct ApiState {
    services: Arc<Services>,
    tokens: Arc<[String]>,
}

impl ApiState {
    fn new(services: Arc<Services>, config: HttpConfig) -> Self {
        Self {
            services,
            tokens: config.tokens.into(),
        }
    }
}

/// The whole QStash v2 API this crate serves: every area, authenticated.
pub fn router(services: Arc<Services>, config: HttpConfig) -> Router {
    let routes = publish_routes()
        .merge(batch_routes())
        .merge(topic_routes())
        .merge(queue_routes())
        .merge(flow_control_routes())
        .merge(message_routes())
        .merge(dlq_routes())
        .merge(key_routes())
        .merge(log_routes())
        .merge(schedule_routes());
    mount(routes, services, config)
}

/// Serves `routes` (one or more merged sub-routers) behind the token check, with JSON
/// answers for unknown routes (404) and wrong methods (405).
pub fn mount(routes: Router<ApiState>, services: Arc<Services>, config: HttpConfig) -> Router {
    let state = ApiState::new(services, config);
    routes
        .fallback(error::unknown_route)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .with_state(state)
}
