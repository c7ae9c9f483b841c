//! qpost-aws against the moto AWS emulator: the store contract every backend keeps, the
//! AWS-specific store rules, the SQS dispatcher, EventBridge Scheduler, and the Lambda
//! handlers invoked with constructed events. `scripts/test` starts moto and
//! exports `AWS_ENDPOINT_URL`; without it these tests fail, they never skip.

mod claims;
mod deliver;
mod dispatch;
mod e2e;
mod events;
mod flow;
mod lambda_support;
mod poison;
mod scheduler;
mod store;
mod support;
