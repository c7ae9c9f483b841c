//! qpost-aws: the AWS backend of qpost.
//!
//! The ports of qpost-core implemented on AWS: [`DynamoStore`] keeps messages, DLQ entries,
//! deduplication keys, events, signing keys, schedules, URL groups and queues in one
//! DynamoDB table; [`SqsDispatcher`] wakes a message by sending its id to the delivery
//! queue. [`Backend`] builds the SDK clients once per process (per Lambda container) and
//! everything on top of them; [`Config`] is the typed environment. The key schema and every
//! access pattern are written down in this crate's `README.md`.
#![forbid(unsafe_code)]

pub mod backend;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod store;

pub use backend::{Backend, aws_limits};
pub use config::{Config, ConfigError};
pub use dispatch::{SqsDispatcher, WakeupBody};
pub use error::AwsError;
pub use store::DynamoStore;
