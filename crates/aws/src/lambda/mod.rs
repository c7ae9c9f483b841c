//! The Lambda entry points: each turns an event into use-case calls of `qpost-core` and
//! carries the result back out, nothing more. The functions under `functions/` only wire
//! a [`Backend`](crate::Backend) to one of these and run it.
//!
//! - [`api`]: the HTTP API functions (publish, schedules, dlq) serve `qpost-http`'s
//!   routers through `lambda_http`.
//! - [`deliver`]: the delivery queue's consumer, one delivery step or schedule firing per
//!   record, with partial batch failures.
//! - [`failure`]: the dead-letter queue's consumer, the poison path.

pub mod api;
pub mod deliver;
pub mod failure;
mod record;

use std::future::Future;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
pub use lambda_runtime::{Error, LambdaEvent};
use qpost_core::clock::{Clock, SystemClock};
use qpost_core::config::Limits;

use crate::backend::Backend;

/// Logs to stdout for CloudWatch: no colours, no timestamps (CloudWatch adds them), level
/// from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .without_time()
        .try_init();
}

/// The limits a Lambda serves with: the defaults, with destinations on loopback,
/// link-local and private networks refused (a Lambda in a VPC could otherwise reach
/// internal services). `Backend` then applies the AWS storage caps.
pub fn limits() -> Limits {
    Limits {
        block_private_destinations: true,
        ..Limits::default()
    }
}

/// The backend every function starts from, built once at cold start: configuration from
/// the environment, the SDK clients, [`limits`], the system clock, and signing keys made
/// sure of.
pub async fn backend() -> Result<Backend, Error> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let backend = Backend::from_env(clock, limits()).await?;
    backend.ensure_signing_keys().await?;
    Ok(backend)
}

/// Runs an SQS consumer: `handle` is called once per batch.
pub async fn run_sqs<F, Fut>(handle: F) -> Result<(), Error>
where
    F: Fn(LambdaEvent<SqsEvent>) -> Fut,
    Fut: Future<Output = Result<SqsBatchResponse, Error>>,
{
    lambda_runtime::run(lambda_runtime::service_fn(handle)).await
}
