//! The benchmark scenarios and what they share: the receiver, the ceiling measured at
//! the start of the run, and helpers to start qpost and wait for deliveries.

mod ceiling;
mod cron;
mod delayed;
mod fanout;
mod latency;
mod retry;
mod throughput;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use http::StatusCode;

use crate::body::BodyTemplate;
use crate::cli::{Args, ScenarioName};
use crate::load::{LoadSpec, Pace, Target};
use crate::receiver::Receiver;
use crate::report::Outcome;
use crate::server::{Qpost, Scratch};

/// How long deliveries may stop arriving before a wait gives up.
const STALL: Duration = Duration::from_secs(30);
/// How long a fresh qpost may take to answer its first request.
const START_LIMIT: Duration = Duration::from_secs(30);
/// How often a wait looks at the receiver.
const POLL: Duration = Duration::from_millis(20);

/// What every scenario is given.
pub struct Ctx {
    pub args: Args,
    pub receiver: Receiver,
    qpost_bin: PathBuf,
    /// Direct requests per second of the generator against the receiver.
    pub ceiling: f64,
}

impl Ctx {
    /// A fresh qpost on a fresh data directory, once its API answers.
    pub async fn spawn(&self, name: &str) -> anyhow::Result<(Scratch, Qpost)> {
        let scratch = Scratch::new(self.args.work_dir.as_deref(), name)?;
        let qpost = self.respawn(&scratch).await?;
        qpost.wait_answering(START_LIMIT).await?;
        Ok((scratch, qpost))
    }

    /// A qpost on an existing data directory (after a crash); it may not answer yet.
    pub async fn respawn(&self, scratch: &Scratch) -> anyhow::Result<Qpost> {
        let qpost = Qpost::start(&self.qpost_bin, &scratch.data_dir(), &scratch.log()).await?;
        Ok(qpost)
    }

    /// The generator settings of this run applied to `target` and `pace`.
    pub fn load(&self, target: Target, pace: Pace, due_unix_ms: u64) -> LoadSpec {
        LoadSpec {
            target,
            connections: self.args.connections,
            body: BodyTemplate::new(self.args.body_size, due_unix_ms),
            pace,
            time_limit: self.args.time_limit(),
        }
    }

    /// Waits until the receiver counted `goal` deliveries, giving up after [`STALL`]
    /// without progress or the run's time limit; true when the goal was reached.
    pub async fn wait_delivered(&self, goal: u64) -> bool {
        wait_for(|| self.receiver.delivered(), goal, self.args.time_limit()).await
    }
}

/// Polls `progress` until it reaches `goal`, stalls for [`STALL`], or `limit` passes.
pub async fn wait_for(progress: impl Fn() -> u64, goal: u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let (mut last, mut last_change) = (progress(), Instant::now());
    while last < goal && Instant::now() < deadline && last_change.elapsed() < STALL {
        tokio::time::sleep(POLL).await;
        let now = progress();
        if now != last {
            (last, last_change) = (now, Instant::now());
        }
    }
    last >= goal
}

/// Whether an answer means "this API does not exist here".
pub fn not_available(status: StatusCode) -> bool {
    status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED
}

/// Starts the receiver, measures the ceiling, then runs every scenario asked for,
/// printing each one's JSON line as it finishes.
pub async fn run_all(args: Args) -> anyhow::Result<Vec<Outcome>> {
    let qpost_bin = args.qpost_bin()?;
    anyhow::ensure!(
        qpost_bin.is_file(),
        "no qpost binary at {} (build it with cargo build --release)",
        qpost_bin.display()
    );
    let receiver = Receiver::start().await?;
    progress(&format!(
        "receiver on {}; qpost binary {}",
        receiver.addr(),
        qpost_bin.display()
    ));
    let mut ctx = Ctx {
        args,
        receiver,
        qpost_bin,
        ceiling: 0.0,
    };
    let mut outcomes = Vec::new();
    let (ceiling, outcome) = ceiling::run(&ctx).await?;
    ctx.ceiling = ceiling;
    emit(&mut outcomes, outcome);
    for name in ORDER {
        if ctx.args.wants(name)
            || (name == ScenarioName::E2e && ctx.args.wants(ScenarioName::Memory))
        {
            for outcome in run_one(&ctx, name).await {
                emit(&mut outcomes, outcome);
            }
        }
    }
    Ok(outcomes)
}

/// The order scenarios run in (`memory` is measured by `e2e`).
const ORDER: [ScenarioName; 7] = [
    ScenarioName::Publish,
    ScenarioName::E2e,
    ScenarioName::Latency,
    ScenarioName::Retry,
    ScenarioName::Fanout,
    ScenarioName::Cron,
    ScenarioName::Delayed,
];

async fn run_one(ctx: &Ctx, name: ScenarioName) -> Vec<Outcome> {
    progress(&format!("scenario {name:?}"));
    ctx.receiver.reset();
    let label = scenario_label(name);
    let result = match name {
        ScenarioName::Publish => throughput::publish(ctx).await.map(|o| vec![o]),
        ScenarioName::E2e => throughput::end_to_end(ctx).await,
        ScenarioName::Latency => latency::run(ctx).await.map(|o| vec![o]),
        ScenarioName::Retry => retry::run(ctx).await.map(|o| vec![o]),
        ScenarioName::Fanout => fanout::run(ctx).await.map(|o| vec![o]),
        ScenarioName::Cron => cron::run(ctx).await.map(|o| vec![o]),
        ScenarioName::Delayed => delayed::run(ctx).await.map(|o| vec![o]),
        ScenarioName::All | ScenarioName::Memory => Ok(Vec::new()),
    };
    result.unwrap_or_else(|e| vec![Outcome::failed(label, &e)])
}

fn scenario_label(name: ScenarioName) -> &'static str {
    match name {
        ScenarioName::All => "all",
        ScenarioName::Publish => "publish",
        ScenarioName::E2e => "e2e",
        ScenarioName::Memory => "memory",
        ScenarioName::Latency => "latency",
        ScenarioName::Delayed => "delayed",
        ScenarioName::Retry => "retry",
        ScenarioName::Fanout => "fanout",
        ScenarioName::Cron => "cron",
    }
}

fn emit(outcomes: &mut Vec<Outcome>, outcome: Outcome) {
    println!("{}", outcome.json_line());
    outcomes.push(outcome);
}

/// A progress line on stderr (stdout carries only results).
pub fn progress(line: &str) {
    eprintln!("qpost-bench: {line}");
}
