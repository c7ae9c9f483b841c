//! Latency at a fixed publish rate: how long from the publish request leaving the
//! generator to the delivery reaching the receiver.

use crate::load::{self, Pace};
use crate::report::{Metric, Outcome};
use crate::scenarios::throughput::with_load_details;
use crate::scenarios::{Ctx, progress};
use crate::usage::Sampler;

const P50_MAX_MS: f64 = 2.0;
const P99_MAX_MS: f64 = 10.0;

/// Publishes at `--rate` for `--duration` seconds and reads the receiver's histogram.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let (_scratch, qpost) = ctx.spawn("latency").await?;
    let usage = Sampler::start(qpost.pid());
    let total = (ctx.args.rate * ctx.args.duration as f64).round() as u64;
    let pace = Pace::Rate {
        per_sec: ctx.args.rate,
        total,
    };
    let target = qpost.publish_target(&ctx.receiver.url("/sink"))?;
    let report = load::run(ctx.load(target, pace, 0)).await;
    let all = ctx.wait_delivered(report.ok).await;
    let latency = ctx.receiver.latency();
    progress(&format!(
        "latency: p50 {:.2} ms, p99 {:.2} ms",
        latency.p50_ms, latency.p99_ms
    ));
    let outcome = Outcome::new("latency")
        .metric(Metric::at_most(
            "publish->delivery p50",
            latency.p50_ms,
            "ms",
            P50_MAX_MS,
        ))
        .metric(Metric::at_most(
            "publish->delivery p99",
            latency.p99_ms,
            "ms",
            P99_MAX_MS,
        ))
        .metric(Metric::check(
            "delivered",
            ctx.receiver.delivered() as f64,
            "msgs",
            "all accepted",
            all,
        ))
        .detail("rate", ctx.args.rate)
        .detail("duration_s", ctx.args.duration)
        .detail("achieved_publish_rate", report.ok_per_sec())
        .detail("delivery_latency", latency)
        .detail("qpost_usage", usage.finish().await);
    Ok(with_load_details(outcome, &report))
}
