//! The dlq function: `/v2/dlq*`, behind API Gateway. Wiring only.
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
    let routes = qpost_http::dlq_routes();
    let app = qpost_http::mount(routes, Arc::new(backend.services()), HttpConfig { tokens });
    lambda::api::serve(app).await
}
