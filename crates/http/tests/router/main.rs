//! Router tests: every route driven with `oneshot` over in-memory fakes of the core ports.

mod auth;
mod dlq;
mod fakes;
mod keys;
mod messages;
mod publish;
mod routing;
mod support;
