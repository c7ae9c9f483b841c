//! The publish function: `/v2/publish`, `/v2/enqueue`, `/v2/batch`, messages, URL groups,
//! queues, flow control, logs and signing keys, behind API Gateway. Wiring only.
#![forbid(unsafe_code)]

use std::sync::Arc;

use qpost_aws::lambda::{self, Error, api::TokenSource};
use qpost_http::HttpConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let token = TokenSource::from_env()?;
    let backend = lambda::backend().await?;
    let tokens = token.tokens(&backend.sdk).await?;
    let routes = qpost_http::publish_routes()
        .merge(qpost_http::message_routes())
        .merge(qpost_http::topic_routes())
        .merge(qpost_http::batch_routes())
        .merge(qpost_http::queue_routes())
        .merge(qpost_http::flow_control_routes())
        .merge(qpost_http::log_routes())
        .merge(qpost_http::key_routes());
    let app = qpost_http::mount(routes, Arc::new(backend.services()), HttpConfig { tokens });
    lambda::api::serve(app).await
}
