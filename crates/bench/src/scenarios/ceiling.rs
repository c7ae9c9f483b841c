//! The direct ceiling: the load generator posting straight to the receiver, so every
//! qpost figure can be read as a share of what loopback HTTP does on this machine now.

use crate::load::{self, Pace, Target};
use crate::report::{Metric, Outcome};
use crate::scenarios::{Ctx, progress};

/// Measures direct requests per second; the run cannot go on without it.
pub async fn run(ctx: &Ctx) -> anyhow::Result<(f64, Outcome)> {
    ctx.receiver.reset();
    let target = Target::new(ctx.receiver.addr(), "/sink")?;
    let report = load::run(ctx.load(target, Pace::Count(ctx.args.count), 0)).await;
    anyhow::ensure!(
        report.ok > 0,
        "the receiver answered nothing: {:?}",
        report.first_error
    );
    let ceiling = report.ok_per_sec();
    progress(&format!("ceiling: {ceiling:.0} req/s"));
    let outcome = Outcome::new("ceiling")
        .metric(Metric::info("direct req/s", ceiling, "req/s").with_ratio(ceiling))
        .detail("requests", report.ok)
        .detail("failed", report.failed)
        .detail("first_error", &report.first_error)
        .detail("request_latency", report.ack_summary())
        .detail("connections", ctx.args.connections)
        .detail("body_size", ctx.args.body_size);
    Ok((ceiling, outcome))
}
