//! qpost-core: the domain of a QStash-compatible message queue.
//!
//! Everything that decides something lives here: the message model, parsing of publish
//! requests, retry policy, request signing, the delivery step and the use cases that
//! create, deliver, cancel and dead-letter messages. State and I/O go through the ports
//! in [`ports`], so the embedded (SQLite) and AWS backends share every decision.
#![forbid(unsafe_code)]

pub mod batch;
pub mod clock;
pub mod config;
pub mod cron;
pub mod delivery;
pub mod dlq;
pub mod duration;
pub mod egress;
pub mod error;
pub mod events;
pub mod filter;
pub mod flow;
pub mod flow_control;
pub mod headers;
pub mod ids;
pub mod keys;
pub mod logs;
pub mod message;
pub mod messages;
pub mod poison;
pub mod ports;
pub mod publish;
pub mod queue;
pub mod queues;
pub mod retry;
pub mod schedule;
pub mod schedules;
pub mod services;
pub mod signing;
pub mod topic;
pub mod topics;
pub mod wire;

#[cfg(feature = "contract")]
pub mod contract;

#[cfg(any(test, feature = "contract"))]
pub mod test_support;

pub use error::{Error, Result};
pub use services::Services;
