//! The deliver function: consumes the delivery queue (SQS event source with
//! `ReportBatchItemFailures`), one delivery attempt or schedule firing per record. Wiring only.
#![forbid(unsafe_code)]

use qpost_aws::lambda::{self, Error, deliver::Deliver};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let backend = lambda::backend().await?;
    let deliver = Deliver::new(&backend);
    lambda::run_sqs(|event| deliver.handle(event)).await
}
