//! AWS mode: billable AWS requests per delivered message. Runs `qpost-aws-local
//! --count-requests` (the router and the functions' handlers on the AWS backend, with the
//! SQS event source mappings emulated in-process) on a fresh stack in the emulator; it
//! counts every request its SDK clients send, at the HTTP layer, and serves the counts.
//! The tool reads them before and after publishing `--aws-count` messages to the
//! receiver, twice:
//!
//! - **one at a time**: each message published, delivered and its queue record deleted
//!   before the next, so every receive and delete serves one record (low traffic, the
//!   most a message costs). This is the figure judged against the target.
//! - **at once**: all published back to back over a few connections, so the event source
//!   receives and deletes them in batches of up to 10 (informational).
//!
//! Counted: the functions' requests (publish, deliver: DynamoDB and SQS, the log events
//! written inside the message transactions) and the event source's receives that returned
//! records and its deletes. The event source's empty long polls are an idle cost of each
//! queue, not of a message: they are reported apart. So are requests the emulator
//! answered with a server error (moto fails some concurrent transactions with a 500, and
//! the SDK sends them again; AWS would not): the figures count answered requests. API
//! Gateway requests and Lambda invocations are not AWS SDK requests and are not counted
//! here (`infra/README.md` prices them).

mod counts;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http::Method;
use serde::Serialize;
use tokio::process::Command;

use crate::body::{BodyTemplate, now_ns};
use crate::load::{self, Conn, LoadSpec, Pace, Target};
use crate::report::{Metric, Outcome};
use crate::scenarios::{Ctx, POLL, START_LIMIT, progress};
use crate::server::{Qpost, Scratch};
use counts::{Cost, Snapshot, per};

/// The target: billable requests per delivered message.
const TARGET: f64 = 6.0;
/// Where the counts are served (`qpost-aws-local --count-requests`).
const COUNTS_PATH: &str = "/_emulator/requests";
/// The receiver path messages go to.
const SINK: &str = "/sink/aws";
/// Most connections publishing at once (the emulator is a single Python process).
const MAX_PUBLISHERS: usize = 8;
/// Longest wait for one message to be delivered and its record deleted.
const ONE_LIMIT: Duration = Duration::from_secs(30);

/// Publishes `--aws-count` messages one at a time, then at once, counting requests.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let emulator = ctx.emulator().await?;
    let env = emulator.stack("cost").await?;
    let scratch = Scratch::new(ctx.args.work_dir.as_deref(), "aws-cost")?;
    let server = start_server(ctx, &env, &scratch).await?;
    let counts = Counts(server.api_target(COUNTS_PATH)?);
    let target = server.publish_target(&ctx.receiver.url(SINK))?;
    progress("aws-cost: one message at a time");
    let single = one_at_a_time(ctx, &target, &counts).await?;
    ctx.receiver.reset();
    progress("aws-cost: all messages at once");
    let burst = all_at_once(ctx, &target, &counts).await?;
    Ok(outcome(ctx.args.aws_count, &single, &burst))
}

/// The AWS-mode server on the stack `env`, counting requests, once its API answers.
async fn start_server(
    ctx: &Ctx,
    env: &BTreeMap<String, String>,
    scratch: &Scratch,
) -> anyhow::Result<Qpost> {
    let bin = ctx.args.aws_bin_dir()?.join("examples/qpost-aws-local");
    anyhow::ensure!(
        bin.is_file(),
        "no {} (scripts/bench builds it: cargo build --release -p qpost-aws --example qpost-aws-local)",
        bin.display()
    );
    let mut command = Command::new(&bin);
    command
        .args(["--port", "0", "--count-requests"])
        .env_clear()
        .envs(env)
        .env("RUST_LOG", "warn");
    let server = Qpost::spawn(command, &scratch.log()).await?;
    server.wait_answering(START_LIMIT).await?;
    Ok(server)
}

/// Each message published, then awaited until delivered and its record deleted.
async fn one_at_a_time(ctx: &Ctx, target: &Target, counts: &Counts) -> anyhow::Result<Phase> {
    let before = counts.read().await?;
    let started = Instant::now();
    let body = BodyTemplate::new(ctx.args.body_size, 0);
    let mut conn = Conn::new(target.addr);
    for i in 1..=ctx.args.aws_count {
        let (status, answer) = conn.send(target.post(body.stamp(now_ns()))).await?;
        anyhow::ensure!(
            status.is_success(),
            "publish answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
        let delivered = || ctx.receiver.delivered();
        anyhow::ensure!(
            super::wait_for(delivered, i, ONE_LIMIT).await,
            "message {i} was not delivered within {ONE_LIMIT:?}"
        );
        counts
            .wait_deleted(before.delivery.deleted() + i, ONE_LIMIT)
            .await?;
    }
    let after = counts.read().await?;
    Ok(Phase::of(ctx, ctx.args.aws_count, &before, &after, started))
}

/// Every message published back to back, then awaited until all are delivered and the
/// queue is empty.
async fn all_at_once(ctx: &Ctx, target: &Target, counts: &Counts) -> anyhow::Result<Phase> {
    let before = counts.read().await?;
    let started = Instant::now();
    let spec = LoadSpec {
        target: target.clone(),
        connections: ctx.args.connections.min(MAX_PUBLISHERS),
        body: BodyTemplate::new(ctx.args.body_size, 0),
        pace: Pace::Count(ctx.args.aws_count),
        time_limit: ctx.args.time_limit(),
    };
    let report = load::run(spec).await;
    if let Some(error) = &report.first_error {
        anyhow::bail!("{} publishes failed; first: {error}", report.failed);
    }
    anyhow::ensure!(
        ctx.wait_delivered(report.ok).await,
        "{} of {} messages delivered",
        ctx.receiver.delivered(),
        report.ok
    );
    let goal = before.delivery.deleted() + report.ok;
    let after = counts.wait_deleted(goal, ctx.args.time_limit()).await?;
    Ok(Phase::of(ctx, report.ok, &before, &after, started))
}

/// The counts endpoint of the server.
struct Counts(Target);

impl Counts {
    async fn read(&self) -> anyhow::Result<Snapshot> {
        let mut conn = Conn::new(self.0.addr);
        let (status, body) = conn.send(self.0.request(Method::GET, Bytes::new())).await?;
        anyhow::ensure!(
            status.is_success(),
            "{COUNTS_PATH} answered {status}: is the server qpost-aws-local --count-requests?"
        );
        serde_json::from_slice(&body).context("reading the request counts")
    }

    /// Waits until the delivery queue's event source deleted `goal` records in all and the
    /// queue is empty; returns the counts then.
    async fn wait_deleted(&self, goal: u64, limit: Duration) -> anyhow::Result<Snapshot> {
        let deadline = Instant::now() + limit;
        loop {
            let now = self.read().await?;
            if now.delivery.deleted() >= goal && now.delivery_queue.is_some_and(|d| d.empty()) {
                return Ok(now);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the queue records were not all deleted within {limit:?}: {:?}, {:?}",
                now.delivery,
                now.delivery_queue
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

/// One publishing phase.
#[derive(Debug, Serialize)]
struct Phase {
    messages: u64,
    delivered: u64,
    per_message: f64,
    requests: u64,
    cost: Cost,
    /// Invocations of the deliver function (receives that returned records).
    batches: u64,
    seconds: f64,
}

impl Phase {
    fn of(ctx: &Ctx, messages: u64, before: &Snapshot, after: &Snapshot, started: Instant) -> Self {
        let cost = Cost::between(before, after);
        let delivered = ctx.receiver.delivered().min(messages);
        Self {
            messages,
            delivered,
            per_message: per(cost.total(), delivered),
            requests: cost.total(),
            batches: after
                .delivery
                .batches
                .saturating_sub(before.delivery.batches),
            seconds: started.elapsed().as_secs_f64(),
            cost,
        }
    }
}

fn outcome(count: u64, single: &Phase, burst: &Phase) -> Outcome {
    let mut outcome = Outcome::new("aws-cost")
        .metric(Metric::at_most(
            "requests per message, one at a time",
            single.per_message,
            "requests",
            TARGET,
        ))
        .metric(Metric::at_most(
            "requests per message, at once",
            burst.per_message,
            "requests",
            TARGET,
        ))
        .metric(Metric::check(
            "delivered",
            (single.delivered + burst.delivered) as f64,
            "msgs",
            "all published, both phases",
            single.delivered == count && burst.delivered == count,
        ))
        .metric(Metric::info(
            "emulator 5xx answers, not counted",
            (single.cost.emulator_errors + burst.cost.emulator_errors) as f64,
            "requests",
        ));
    for (label, n) in &single.cost.billable {
        let name = format!("  {label}, one at a time");
        outcome = outcome.metric(Metric::info(name, per(*n, single.delivered), "per msg"));
    }
    outcome
        .detail("one_at_a_time", single)
        .detail("at_once", burst)
}
