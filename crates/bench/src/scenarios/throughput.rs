//! Throughput against qpost: publish only (accepted publishes per second, each ack
//! durable), and end to end (first publish to last delivery), with qpost's peak memory.

use crate::load::{self, LoadReport, Pace};
use crate::report::{Metric, Outcome};
use crate::scenarios::{Ctx, progress};
use crate::stats::per_second;
use crate::usage::{Sampler, Usage};

/// Share of the ceiling publish-only must reach.
const PUBLISH_MIN_RATIO: f64 = 0.40;
/// Share of the ceiling end-to-end must reach.
const E2E_MIN_RATIO: f64 = 0.25;
/// Most resident memory qpost may use during the end-to-end run (MB).
const E2E_MAX_RSS_MB: f64 = 150.0;

/// Publishes `--count` messages (the destination answers 200) and counts the acks.
pub async fn publish(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let (_scratch, qpost) = ctx.spawn("publish").await?;
    let samplers = (
        Sampler::start(qpost.pid()),
        Sampler::start(Some(std::process::id())),
    );
    let target = qpost.publish_target(&ctx.receiver.url("/sink"))?;
    let report = load::run(ctx.load(target, Pace::Count(ctx.args.count), 0)).await;
    let rate = report.ok_per_sec();
    progress(&format!("publish: {rate:.0} accepted/s"));
    let outcome = Outcome::new("publish").metric(Metric::ratio_at_least(
        "accepted/s",
        rate,
        "msgs/s",
        ctx.ceiling,
        PUBLISH_MIN_RATIO,
    ));
    let (qpost_usage, bench_usage) = (samplers.0.finish().await, samplers.1.finish().await);
    let outcome = with_usage(outcome, qpost_usage, bench_usage, report.ok);
    Ok(with_load_details(outcome, &report))
}

/// Publishes `--count` messages and waits for every delivery; also reports peak RSS.
pub async fn end_to_end(ctx: &Ctx) -> anyhow::Result<Vec<Outcome>> {
    let (_scratch, qpost) = ctx.spawn("e2e").await?;
    let samplers = (
        Sampler::start(qpost.pid()),
        Sampler::start(Some(std::process::id())),
    );
    let target = qpost.publish_target(&ctx.receiver.url("/sink"))?;
    let report = load::run(ctx.load(target, Pace::Count(ctx.args.count), 0)).await;
    let all = ctx.wait_delivered(report.ok).await;
    let delivered = ctx.receiver.delivered();
    let rate = per_second(
        delivered,
        ctx.receiver.last_ns().saturating_sub(report.start_ns),
    );
    let (qpost_usage, bench_usage) = (samplers.0.finish().await, samplers.1.finish().await);
    let peak = qpost_usage.peak_rss_mb;
    progress(&format!(
        "e2e: {rate:.0} delivered/s, peak RSS {peak:.1} MB"
    ));
    let e2e = Outcome::new("e2e")
        .metric(Metric::ratio_at_least(
            "delivered/s",
            rate,
            "msgs/s",
            ctx.ceiling,
            E2E_MIN_RATIO,
        ))
        .metric(Metric::check(
            "delivered",
            delivered as f64,
            "msgs",
            "all accepted",
            all,
        ))
        .detail("publish_rate", report.ok_per_sec())
        .detail("delivery_latency", ctx.receiver.latency());
    let memory = Outcome::new("memory")
        .metric(Metric::at_most(
            "peak RSS during e2e",
            peak,
            "MB",
            E2E_MAX_RSS_MB,
        ))
        .detail("messages", report.ok);
    let e2e = with_usage(e2e, qpost_usage, bench_usage, delivered);
    Ok(vec![with_load_details(e2e, &report), memory])
}

/// CPU and memory of qpost and of this tool, and qpost's CPU time per message.
pub fn with_usage(outcome: Outcome, qpost: Usage, bench: Usage, messages: u64) -> Outcome {
    let per_msg_us = qpost.cpu_s * 1e6 / messages.max(1) as f64;
    outcome
        .detail("qpost_usage", qpost)
        .detail("bench_usage", bench)
        .detail("qpost_cpu_us_per_msg", per_msg_us)
}

/// The client-side facts every load-driven scenario reports.
pub fn with_load_details(outcome: Outcome, report: &LoadReport) -> Outcome {
    outcome
        .detail("accepted", report.ok)
        .detail("failed", report.failed)
        .detail("first_error", &report.first_error)
        .detail("ack_latency", report.ack_summary())
}
