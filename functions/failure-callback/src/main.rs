//! The failure-callback function: consumes the dead-letter queue (SQS event source with
//! `ReportBatchItemFailures`) and records poison wake-ups as DLQ entries with their
//! failure callbacks. Wiring only.
#![forbid(unsafe_code)]

use qpost_aws::lambda::{self, Error, failure::FailureCallback};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let backend = lambda::backend().await?;
    let handler = FailureCallback::new(&backend);
    lambda::run_sqs(|event| handler.handle(event)).await
}
