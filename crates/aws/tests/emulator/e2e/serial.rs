//! DynamoDB's per-request atomicity, restored on moto. moto applies an `UpdateItem` (its
//! condition, the creation of a new item, the update) and a transaction without a lock, so
//! two concurrent requests on one item can both pass a version condition, and a `GetItem`
//! can read an item half-written; DynamoDB applies each request on an item atomically.
//! Sending DynamoDB requests one at a time restores that, while the callers'
//! read-decide-write sequences still interleave freely (the races optimistic concurrency
//! has to win are all there). Other services' requests (SQS long polls) pass untouched.
//!
//! Shared by the emulator tests and the `qpost-aws-local` example, which includes this
//! file by path.

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;

#[derive(Debug)]
struct OneAtATime {
    inner: SharedHttpConnector,
    turn: Arc<tokio::sync::Mutex<()>>,
}

/// DynamoDB's JSON protocol names the operation `DynamoDB_<version>.<operation>`.
fn is_dynamodb(request: &HttpRequest) -> bool {
    request
        .headers()
        .get("x-amz-target")
        .is_some_and(|target| target.starts_with("DynamoDB_"))
}

impl HttpConnector for OneAtATime {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if !is_dynamodb(&request) {
            return self.inner.call(request);
        }
        let (inner, turn) = (self.inner.clone(), Arc::clone(&self.turn));
        HttpConnectorFuture::new(async move {
            let _turn = turn.lock_owned().await;
            inner.call(request).await
        })
    }
}

/// `sdk` with its DynamoDB requests sent one at a time (for every client built from it).
pub fn dynamodb_one_at_a_time(sdk: &SdkConfig) -> SdkConfig {
    let inner = sdk
        .http_client()
        .expect("the SDK config has an HTTP client");
    let turn = Arc::new(tokio::sync::Mutex::new(()));
    let client = http_client_fn(move |settings, components| {
        SharedHttpConnector::new(OneAtATime {
            inner: inner.http_connector(settings, components),
            turn: Arc::clone(&turn),
        })
    });
    sdk.to_builder().http_client(client).build()
}
