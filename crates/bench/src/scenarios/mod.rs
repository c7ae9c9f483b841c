//! The benchmark scenarios and what they share: the receiver, the ceiling measured at
//! the start of the run, helpers to start qpost and wait for deliveries, and the AWS
//! emulator of the AWS-mode scenarios (started once, when one of them runs first).

mod aws_cost;
mod aws_init;
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
use crate::emulator::{Emulator, Unavailable};
use crate::load::{LoadSpec, Pace, Target};
use crate::receiver::Receiver;
use crate::report::Outcome;
use crate::server::{Qpost, Scratch};

/// How long deliveries may stop arriving before a wait gives up.
const STALL: Duration = Duration::from_secs(30);
/// How long a fresh qpost may take to answer its first request.
pub const START_LIMIT: Duration = Duration::from_secs(30);
/// How often a wait looks at the receiver.
pub const POLL: Duration = Duration::from_millis(20);

/// What every scenario is given.
pub struct Ctx {
    pub args: Args,
    pub receiver: Receiver,
    qpost_bin: PathBuf,
    /// Direct requests per second of the generator against the receiver (0 when only
    /// AWS-mode scenarios run).
    pub ceiling: f64,
    emulator: tokio::sync::OnceCell<Emulator>,
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

    /// The AWS emulator, started on first use.
    pub async fn emulator(&self) -> anyhow::Result<&Emulator> {
        let root = self.args.root();
        self.emulator
            .get_or_try_init(|| Emulator::start(&root))
            .await
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

/// Starts the receiver, measures the ceiling (when a local-mode scenario runs), then runs
/// every scenario asked for, printing each one's JSON line as it finishes.
pub async fn run_all(args: Args) -> anyhow::Result<Vec<Outcome>> {
    let qpost_bin = args.qpost_bin()?;
    let local = args.wants_local();
    anyhow::ensure!(
        !local || qpost_bin.is_file(),
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
        emulator: tokio::sync::OnceCell::new(),
    };
    let mut outcomes = Vec::new();
    if local {
        let (ceiling, outcome) = ceiling::run(&ctx).await?;
        ctx.ceiling = ceiling;
        emit(&mut outcomes, outcome);
    }
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
const ORDER: [ScenarioName; 9] = [
    ScenarioName::Publish,
    ScenarioName::E2e,
    ScenarioName::Latency,
    ScenarioName::Retry,
    ScenarioName::Fanout,
    ScenarioName::Cron,
    ScenarioName::Delayed,
    ScenarioName::AwsCost,
    ScenarioName::AwsInit,
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
        ScenarioName::AwsCost | ScenarioName::AwsInit => run_aws(ctx, name, label).await,
        ScenarioName::All | ScenarioName::Memory | ScenarioName::Aws => Ok(Vec::new()),
    };
    result.unwrap_or_else(|e| vec![Outcome::failed(label, &e)])
}

/// An AWS-mode scenario, skipped when there is no emulator to run against.
async fn run_aws(
    ctx: &Ctx,
    name: ScenarioName,
    label: &'static str,
) -> anyhow::Result<Vec<Outcome>> {
    if let Err(e) = ctx.emulator().await {
        return match e.downcast_ref::<Unavailable>() {
            Some(why) => Ok(vec![Outcome::skipped(label, &why.to_string())]),
            None => Err(e),
        };
    }
    let outcome = match name {
        ScenarioName::AwsCost => aws_cost::run(ctx).await?,
        _ => aws_init::run(ctx).await?,
    };
    Ok(vec![outcome])
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
        ScenarioName::Aws => "aws",
        ScenarioName::AwsCost => "aws-cost",
        ScenarioName::AwsInit => "aws-init",
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
