//! qpost-aws: the AWS backend of qpost.
//!
//! The ports of qpost-core implemented on AWS: [`DynamoStore`] keeps messages, DLQ entries,
//! deduplication keys, events, signing keys, schedules, URL groups and queues in one
//! DynamoDB table; [`SqsDispatcher`] wakes a message by sending its id to the delivery
//! queue (through [`EventBridgeScheduler`] when it is due in more than 15 minutes), which
//! also fires schedules; [`DynamoAdmission`] answers the flow-control API. [`Backend`]
//! builds the SDK clients once per process (per Lambda container) and everything on top of
//! them; [`Config`] is the typed environment. [`lambda`] holds the entry points the
//! functions under `functions/` run. The key schema, every access pattern and which
//! function writes what are written down in this crate's `README.md`.
#![forbid(unsafe_code)]

pub mod admission;
pub mod backend;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod lambda;
pub mod scheduler;
pub mod store;

pub use admission::{DynamoAdmission, Grant};
pub use backend::{Backend, aws_limits};
pub use config::{Config, ConfigError};
pub use dispatch::{QueueBody, ScheduleBody, SqsDispatcher, WakeupBody};
pub use error::AwsError;
pub use scheduler::EventBridgeScheduler;
pub use store::DynamoStore;
