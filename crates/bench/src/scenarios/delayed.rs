//! Many pending delayed messages and a crash: publish `--pending` messages due at one
//! future second, measure qpost's memory, kill -9 it, restart it on the same data
//! directory, time until its API answers, and check that every message is delivered
//! once due (duplicates, allowed by at-least-once, are reported separately).

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::body::unix_ms;
use crate::load::{self, LoadReport, Pace};
use crate::receiver::Tracked;
use crate::report::{Metric, Outcome};
use crate::scenarios::throughput::with_load_details;
use crate::scenarios::{Ctx, progress, wait_for};
use crate::server::{Qpost, Scratch};
use crate::stats::per_second;
use crate::usage::{Sampler, Usage};

const MAX_RSS_MB: f64 = 300.0;
const MAX_RESTART_S: f64 = 10.0;
/// Delayed publishes sent first to measure the publish rate; due a day later, they stay
/// pending (and unobserved) for the whole scenario.
const CALIBRATION: u64 = 2_000;
/// The due time allows for publishing at this share of the calibrated rate (inserts
/// slow down as the table grows: 200,000 pending halved the rate in trials).
const RATE_SAFETY: f64 = 0.25;
/// Time left after publishing for the kill, the restart and the first probe.
const RESTART_MARGIN_MS: u64 = 30_000;
/// How long the restarted API is probed before giving up.
const RESTART_PROBE_LIMIT: Duration = Duration::from_secs(120);
/// Memory is sampled this long after the last publish, at rest.
const SETTLE: Duration = Duration::from_secs(2);

/// What the first process did before it was killed.
struct Published {
    due_ms: u64,
    report: LoadReport,
    usage: Usage,
    delivered_before_kill: u64,
    files_mb: Map<String, Value>,
}

/// What the restarted process did.
struct Recovered {
    answered: Option<Duration>,
    restarted_before_due: bool,
    /// Peak RSS from the restart until the due time.
    pending_rss_mb: f64,
    usage: Usage,
    all_delivered: bool,
    tracked: Tracked,
}

/// Runs the whole scenario: publish, kill -9, restart, wait for every delivery.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let (scratch, mut qpost) = ctx.spawn("delayed").await?;
    let published = publish_all(ctx, &qpost, &scratch).await?;
    qpost.kill9().await?;
    drop(qpost);
    let recovered = recover(ctx, &scratch, &published).await?;
    Ok(outcome(ctx, &published, &recovered))
}

/// Calibrates, publishes every message due at one second, and lets qpost settle.
async fn publish_all(ctx: &Ctx, qpost: &Qpost, scratch: &Scratch) -> anyhow::Result<Published> {
    let due_ms = due_ms(ctx, calibrate(ctx, qpost).await?);
    let due_in = due_ms.saturating_sub(unix_ms()) / 1000;
    progress(&format!(
        "delayed: publishing {} due in {due_in} s",
        ctx.args.pending
    ));
    let sampler = Sampler::start(qpost.pid());
    let target = qpost
        .publish_target(&ctx.receiver.url("/track"))?
        .with_header("upstash-not-before", &(due_ms / 1000).to_string())?;
    let report = load::run(ctx.load(target, Pace::Count(ctx.args.pending), due_ms)).await;
    let rate = report.ok_per_sec();
    progress(&format!("delayed: {} accepted at {rate:.0}/s", report.ok));
    anyhow::ensure!(
        unix_ms() < due_ms,
        "publishing outlasted the due time; no crash tested"
    );
    tokio::time::sleep(SETTLE).await;
    Ok(Published {
        due_ms,
        report,
        usage: sampler.finish().await,
        delivered_before_kill: ctx.receiver.tracked_unique(),
        files_mb: files_mb(scratch),
    })
}

/// The data files (database, WAL) and their sizes in MB.
fn files_mb(scratch: &Scratch) -> Map<String, Value> {
    let files = scratch.data_files().into_iter();
    files
        .map(|(name, bytes)| (name, json!(bytes as f64 / 1e6)))
        .collect()
}

/// Delayed publishes per second on this qpost, measured on a small batch.
async fn calibrate(ctx: &Ctx, qpost: &Qpost) -> anyhow::Result<f64> {
    let target = qpost
        .publish_target(&ctx.receiver.url("/sink/calibration"))?
        .with_header("upstash-delay", "86400s")?;
    let report = load::run(ctx.load(target, Pace::Count(CALIBRATION), 0)).await;
    let error = &report.first_error;
    anyhow::ensure!(report.ok > 0, "calibration publishes failed: {error:?}");
    Ok(report.ok_per_sec())
}

/// One due second for every message, far enough ahead to publish all and restart.
fn due_ms(ctx: &Ctx, calibrated_rate: f64) -> u64 {
    let rate = (calibrated_rate * RATE_SAFETY).max(1.0);
    let publish_ms = (ctx.args.pending as f64 / rate * 1000.0) as u64;
    (unix_ms() + publish_ms + RESTART_MARGIN_MS).div_ceil(1000) * 1000
}

/// Restarts on the same data directory, waits for the due time, then for deliveries.
async fn recover(ctx: &Ctx, scratch: &Scratch, published: &Published) -> anyhow::Result<Recovered> {
    let qpost = ctx.respawn(scratch).await?;
    let sampler = Sampler::start(qpost.pid());
    let answered = qpost.wait_answering(RESTART_PROBE_LIMIT).await.ok();
    progress(&format!(
        "delayed: restarted; API answered after {answered:?}"
    ));
    let restarted_before_due = unix_ms() < published.due_ms;
    let until_due = published.due_ms.saturating_sub(unix_ms());
    tokio::time::sleep(Duration::from_millis(until_due)).await;
    let pending_rss_mb = sampler.peak_mb();
    let goal = published.report.ok;
    let unique = || ctx.receiver.tracked_unique();
    let all_delivered = wait_for(unique, goal, ctx.args.time_limit()).await;
    Ok(Recovered {
        answered,
        restarted_before_due,
        pending_rss_mb,
        usage: sampler.finish().await,
        all_delivered,
        tracked: ctx.receiver.tracked(),
    })
}

fn outcome(ctx: &Ctx, p: &Published, r: &Recovered) -> Outcome {
    let t = &r.tracked;
    let pending_rss = p.usage.peak_rss_mb.max(r.pending_rss_mb);
    let restart_s = r.answered.unwrap_or(RESTART_PROBE_LIMIT).as_secs_f64();
    let on_time = r.all_delivered && t.early == 0 && p.delivered_before_kill == 0;
    let delivered_ok = on_time && r.restarted_before_due;
    let drain = per_second(t.unique, (t.lateness.max_ms * 1e6) as u64);
    let outcome = Outcome::new("delayed")
        .metric(Metric::at_most(
            "peak RSS, pending",
            pending_rss,
            "MB",
            MAX_RSS_MB,
        ))
        .metric(Metric::at_most(
            "kill -9 -> API answers",
            restart_s,
            "s",
            MAX_RESTART_S,
        ))
        .metric(Metric::check(
            "delivered when due",
            t.unique as f64,
            "msgs",
            "all accepted, none early",
            delivered_ok,
        ))
        .metric(Metric::info("duplicates", t.duplicates as f64, "msgs"))
        .metric(Metric::info(
            "delivery after due p99",
            t.lateness.p99_ms,
            "ms",
        ))
        .metric(Metric::info("drain after due", drain, "msgs/s").with_ratio(ctx.ceiling));
    with_load_details(with_facts(outcome, ctx, p, r), &p.report)
}

/// Everything behind the verdicts, for the JSON line.
fn with_facts(outcome: Outcome, ctx: &Ctx, p: &Published, r: &Recovered) -> Outcome {
    let rss = json!({
        "publish": p.usage.peak_rss_mb,
        "pending_after_restart": r.pending_rss_mb,
        "whole_restarted_run": r.usage.peak_rss_mb,
    });
    let cpu = json!({ "publish": p.usage.cpu_s, "after_restart": r.usage.cpu_s });
    outcome
        .detail("pending", ctx.args.pending)
        .detail("calibration_messages_pending_for_a_day", CALIBRATION)
        .detail("publish_rate", p.report.ok_per_sec())
        .detail("due_unix_ms", p.due_ms)
        .detail("restarted_before_due", r.restarted_before_due)
        .detail("delivered_before_kill", p.delivered_before_kill)
        .detail("early", r.tracked.early)
        .detail("lateness", r.tracked.lateness)
        .detail("rss_mb", rss)
        .detail("qpost_cpu_s", cpu)
        .detail("data_files_mb", &p.files_mb)
}
