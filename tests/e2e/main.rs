//! End-to-end tests of local mode: the real server on `127.0.0.1:0` over a temp data
//! directory, real HTTP in both directions, a recording receiver as destination and
//! callback. One test binary, one module per area of the contract (`qstash-api.md` §2–7).

mod support;

mod bad_input;
mod batch;
mod callbacks;
mod dedup;
mod dlq;
mod flow_control;
mod logs;
mod messages;
mod publish;
mod queues;
mod recovery;
mod redaction;
mod retries;
mod schedules;
mod signing;
mod topics;
