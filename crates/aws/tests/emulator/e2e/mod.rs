//! AWS mode end to end on moto, with no Lambda runtime, no Docker and no AWS account:
//! requests go through an emulated API Gateway into the API functions' routers, wake-ups
//! through emulated SQS event source mappings into the deliver and failure-callback
//! handlers, and EventBridge Scheduler's firings are simulated from the schedules moto
//! holds. Each test gets a stack of its own (`harness::Stack`).
//!
//! `mapping` and `firing` are shared with `examples/qpost-aws-local`, which runs the same
//! emulation behind a loopback HTTP server for the SDK suites.

mod counting;
mod firing;
mod gateway;
mod harness;
mod mapping;
mod receiver;
pub(crate) mod serial;
mod signature;

mod cost;
mod delays;
mod delivery;
mod dlq;
mod fanout;
mod flow;
mod large_bodies;
mod poison;
mod queues;
mod schedules;
