//! Retries: every message goes to a destination that fails twice and then succeeds,
//! with `Upstash-Retry-Delay: 100`; each must arrive exactly three times, with
//! `Upstash-Retried` 0, 1, 2 and at least the retry delay between attempts.

use std::collections::HashMap;

use serde::Serialize;

use crate::load::{self, Pace};
use crate::receiver::{Attempt, FLAKY_FAILURES};
use crate::report::{Metric, Outcome};
use crate::scenarios::throughput::with_load_details;
use crate::scenarios::{Ctx, progress};
use crate::stats::{Summary, histogram, per_second};
use crate::usage::Sampler;

/// The retry delay asked for, in ms.
const RETRY_DELAY_MS: u64 = 100;
/// qpost's clock counts whole milliseconds, so a gap may fall short by less than one.
const CLOCK_TOLERANCE_MS: u64 = 1;

/// Publishes `--retry-count` messages to the flaky destination and checks every attempt.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let (_scratch, qpost) = ctx.spawn("retry").await?;
    let usage = Sampler::start(qpost.pid());
    let target = qpost
        .publish_target(&ctx.receiver.url("/flaky"))?
        .with_header("upstash-retries", "3")?
        .with_header("upstash-retry-delay", &RETRY_DELAY_MS.to_string())?;
    let report = load::run(ctx.load(target, Pace::Count(ctx.args.retry_count), 0)).await;
    let all = ctx.wait_delivered(report.ok).await;
    let delivered = ctx.receiver.delivered();
    let rate = per_second(
        delivered,
        ctx.receiver.last_ns().saturating_sub(report.start_ns),
    );
    let check = judge(
        &ctx.receiver.attempts(),
        (RETRY_DELAY_MS - CLOCK_TOLERANCE_MS) * 1_000_000,
    );
    progress(&format!(
        "retry: {rate:.0} delivered/s, {} of {} on schedule",
        check.on_schedule, report.ok
    ));
    let on_schedule = all && check.on_schedule == report.ok;
    let outcome = Outcome::new("retry")
        .metric(Metric::info("delivered/s", rate, "msgs/s").with_ratio(ctx.ceiling))
        .metric(Metric::check(
            "on schedule",
            check.on_schedule as f64,
            "msgs",
            "all: 3 attempts, retried 0,1,2, gaps >= 100 ms",
            on_schedule,
        ))
        .metric(Metric::info("attempt gap p50", check.gaps.p50_ms, "ms"))
        .metric(Metric::info("attempt gap p99", check.gaps.p99_ms, "ms"))
        .detail("check", &check);
    let outcome = outcome.detail("qpost_usage", usage.finish().await);
    Ok(with_load_details(outcome, &report))
}

/// How the attempts compare with the schedule.
#[derive(Debug, Default, Serialize)]
pub struct RetryCheck {
    pub messages: u64,
    pub on_schedule: u64,
    /// Messages not attempted exactly three times.
    pub wrong_attempt_count: u64,
    /// Messages whose `Upstash-Retried` was not 0, 1, 2.
    pub wrong_retried: u64,
    /// Gaps between attempts shorter than the retry delay.
    pub short_gaps: u64,
    pub min_gap_ms: f64,
    pub gaps: Summary,
}

/// Compares every message's attempts with "fail, fail, succeed, `min_gap_ns` apart".
fn judge(attempts: &HashMap<String, Vec<Attempt>>, min_gap_ns: u64) -> RetryCheck {
    let mut check = RetryCheck {
        messages: attempts.len() as u64,
        ..RetryCheck::default()
    };
    let mut gaps = histogram();
    let mut min_gap = u64::MAX;
    for tries in attempts.values() {
        let count_ok = tries.len() == FLAKY_FAILURES + 1;
        let retried_ok = tries
            .iter()
            .enumerate()
            .all(|(i, a)| a.retried == Some(i as u32));
        let mut gaps_ok = true;
        for pair in tries.windows(2) {
            let gap = pair[1].at_ns.saturating_sub(pair[0].at_ns);
            gaps.saturating_record(gap / 1000);
            min_gap = min_gap.min(gap);
            gaps_ok &= gap >= min_gap_ns;
            check.short_gaps += u64::from(gap < min_gap_ns);
        }
        check.wrong_attempt_count += u64::from(!count_ok);
        check.wrong_retried += u64::from(!retried_ok);
        check.on_schedule += u64::from(count_ok && retried_ok && gaps_ok);
    }
    check.min_gap_ms = if min_gap == u64::MAX {
        0.0
    } else {
        min_gap as f64 / 1e6
    };
    check.gaps = Summary::of(&gaps);
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tries(times_ms: &[u64], retried: &[u32]) -> Vec<Attempt> {
        times_ms
            .iter()
            .zip(retried)
            .map(|(&t, &r)| Attempt {
                at_ns: t * 1_000_000,
                retried: Some(r),
            })
            .collect()
    }

    #[test]
    fn three_attempts_counted_up_and_spaced_out_are_on_schedule() {
        let map = HashMap::from([("a".to_string(), tries(&[0, 100, 205], &[0, 1, 2]))]);
        let c = judge(&map, 99_000_000);
        assert_eq!((c.messages, c.on_schedule, c.short_gaps), (1, 1, 0));
        assert!((c.min_gap_ms - 100.0).abs() < 1e-9);
    }

    #[test]
    fn early_retries_wrong_counters_and_missing_attempts_are_each_caught() {
        let map = HashMap::from([
            ("early".to_string(), tries(&[0, 50, 200], &[0, 1, 2])),
            ("counter".to_string(), tries(&[0, 100, 200], &[0, 0, 1])),
            ("short".to_string(), tries(&[0, 100], &[0, 1])),
        ]);
        let c = judge(&map, 99_000_000);
        assert_eq!(c.on_schedule, 0);
        assert_eq!(
            (c.short_gaps, c.wrong_retried, c.wrong_attempt_count),
            (1, 1, 1)
        );
    }
}
