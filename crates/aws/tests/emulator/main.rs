//! qpost-aws against the moto AWS emulator: the store contract every backend keeps, the
//! AWS-specific store rules, and the SQS dispatcher. `scripts/test` starts moto and
//! exports `AWS_ENDPOINT_URL`; without it these tests fail, they never skip.

mod dispatch;
mod store;
mod support;
