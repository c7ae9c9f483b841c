//! Cron: many schedules due on the same minute must all fire within one second of it.
//! Reported as skipped while qpost has no schedules API.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use crate::body::unix_ms;
use crate::load::Conn;
use crate::report::{Metric, Outcome};
use crate::scenarios::{Ctx, not_available, progress};
use crate::server::Qpost;
use crate::stats::{Summary, histogram};

/// Fires every minute; the scenario watches the first minute after all are created.
const EVERY_MINUTE: &str = "* * * * *";
/// How far after the minute a firing still counts as on time.
const ON_TIME_MS: u64 = 1_000;
/// How long after the on-time window the scenario keeps counting late firings.
const GRACE: Duration = Duration::from_secs(5);

/// Creates `--schedules` schedules, waits for the next minute, checks every firing.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let (_scratch, qpost) = ctx.spawn("cron").await?;
    let Some(ids) = create_schedules(ctx, &qpost).await? else {
        return Ok(Outcome::skipped("cron", "schedules not available"));
    };
    let minute = (unix_ms() / 60_000 + 1) * 60_000;
    progress(&format!(
        "cron: {} schedules created; waiting for the minute",
        ids.len()
    ));
    let wait = Duration::from_millis(minute + ON_TIME_MS - unix_ms()) + GRACE;
    tokio::time::sleep(wait).await;
    let check = judge(&ids, &ctx.receiver.cron_fires(), minute);
    let all = check.on_time == ctx.args.schedules;
    Ok(Outcome::new("cron")
        .metric(Metric::check(
            "fired within 1 s",
            check.on_time as f64,
            "schedules",
            "all within 1 s of the minute",
            all,
        ))
        .metric(Metric::info("firing delay p99", check.delay.p99_ms, "ms"))
        .detail("check", &check))
}

/// Creates the schedules; `None` when qpost has no schedules API (404/405).
async fn create_schedules(ctx: &Ctx, qpost: &Qpost) -> anyhow::Result<Option<Vec<String>>> {
    let mut conn = Conn::new(qpost.api);
    let mut ids = Vec::new();
    for i in 0..ctx.args.schedules {
        let destination = ctx.receiver.url(&format!("/cron/{i}"));
        let target = qpost
            .api_target(&format!("/v2/schedules/{destination}"))?
            .with_header("upstash-cron", EVERY_MINUTE)?;
        let (status, answer) = conn.send(target.post(Bytes::new())).await?;
        if i == 0 && not_available(status) {
            return Ok(None);
        }
        anyhow::ensure!(
            status.is_success(),
            "creating a schedule answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
        let answer: serde_json::Value = serde_json::from_slice(&answer)?;
        let id = answer["scheduleId"].as_str().map(str::to_string);
        ids.push(id.ok_or_else(|| anyhow::anyhow!("no scheduleId in {answer}"))?);
    }
    Ok(Some(ids))
}

/// How the firings after `minute` compare with "each once, within 1 s".
#[derive(Debug, Default, Serialize)]
pub struct CronCheck {
    pub schedules: u64,
    pub on_time: u64,
    pub late: u64,
    pub missing: u64,
    /// Extra firings of a schedule within the watched minute.
    pub duplicates: u64,
    /// Firing time after the minute.
    pub delay: Summary,
}

fn judge(ids: &[String], fires: &[(String, u64)], minute: u64) -> CronCheck {
    let mut by_id: HashMap<&str, Vec<u64>> = HashMap::new();
    for (id, at) in fires
        .iter()
        .filter(|(_, at)| (minute..minute + 60_000).contains(at))
    {
        by_id.entry(id).or_default().push(*at);
    }
    let mut check = CronCheck {
        schedules: ids.len() as u64,
        ..CronCheck::default()
    };
    let mut delay = histogram();
    for id in ids {
        let Some(first) = by_id.get(id.as_str()).and_then(|v| v.iter().min()) else {
            check.missing += 1;
            continue;
        };
        let late_ms = first - minute;
        delay.saturating_record(late_ms * 1000);
        check.on_time += u64::from(late_ms <= ON_TIME_MS);
        check.late += u64::from(late_ms > ON_TIME_MS);
        check.duplicates += by_id[id.as_str()].len() as u64 - 1;
    }
    check.delay = Summary::of(&delay);
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firings_are_sorted_into_on_time_late_missing_and_repeated() {
        let ids: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let m = 120_000;
        let fires = [
            ("a".to_string(), m - 10), // previous minute: ignored
            ("a".to_string(), m + 200),
            ("b".to_string(), m + 1_500),
            ("d".to_string(), m + 900),
            ("d".to_string(), m + 950),
        ];
        let c = judge(&ids, &fires, m);
        assert_eq!((c.on_time, c.late, c.missing, c.duplicates), (2, 1, 1, 1));
    }
}
