//! Fan-out: publishing to a URL group of ten endpoints, counted in deliveries per second.
//! Reported as skipped while qpost has no URL-group API.

use bytes::Bytes;
use http::Method;
use serde_json::json;

use crate::load::{self, Pace};
use crate::report::{Metric, Outcome};
use crate::scenarios::throughput::with_load_details;
use crate::scenarios::{Ctx, not_available, progress};
use crate::server::Qpost;
use crate::stats::per_second;
use crate::usage::Sampler;

const GROUP: &str = "qpost-bench-fanout";
const ENDPOINTS: u64 = 10;

/// Creates the group, publishes `--fanout-count` messages to it, counts deliveries.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let (_scratch, qpost) = ctx.spawn("fanout").await?;
    let usage = Sampler::start(qpost.pid());
    if !create_group(ctx, &qpost).await? {
        return Ok(Outcome::skipped("fanout", "URL groups not available"));
    }
    let target = qpost.publish_target(GROUP)?;
    let report = load::run(ctx.load(target, Pace::Count(ctx.args.fanout_count), 0)).await;
    let goal = report.ok * ENDPOINTS;
    let all = ctx.wait_delivered(goal).await;
    let delivered = ctx.receiver.delivered();
    let rate = per_second(
        delivered,
        ctx.receiver.last_ns().saturating_sub(report.start_ns),
    );
    progress(&format!("fanout: {rate:.0} deliveries/s"));
    let outcome = Outcome::new("fanout")
        .metric(Metric::info("deliveries/s", rate, "deliveries/s").with_ratio(ctx.ceiling))
        .metric(Metric::check(
            "delivered",
            delivered as f64,
            "deliveries",
            "10 per accepted publish",
            all,
        ))
        .detail("endpoints", ENDPOINTS)
        .detail("delivery_latency", ctx.receiver.latency());
    let outcome = outcome.detail("qpost_usage", usage.finish().await);
    Ok(with_load_details(outcome, &report))
}

/// Adds the endpoints; false when qpost has no such API (404/405).
async fn create_group(ctx: &Ctx, qpost: &Qpost) -> anyhow::Result<bool> {
    let endpoints: Vec<_> = (0..ENDPOINTS)
        .map(|i| json!({ "url": ctx.receiver.url(&format!("/sink/fan/{i}")) }))
        .collect();
    let body = Bytes::from(serde_json::to_vec(&json!({ "endpoints": endpoints }))?);
    let target = qpost
        .api_target(&format!("/v2/topics/{GROUP}/endpoints"))?
        .with_header("content-type", "application/json")?;
    let (status, answer) = qpost.call(Method::POST, &target, body).await?;
    if not_available(status) {
        return Ok(false);
    }
    anyhow::ensure!(
        status.is_success(),
        "creating the URL group answered {status}: {}",
        String::from_utf8_lossy(&answer)
    );
    Ok(true)
}
