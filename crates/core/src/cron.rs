//! Cron expressions of schedules (`Upstash-Cron`): standard five fields, the `@hourly`-style
//! descriptors, `@every <duration>`, and a `CRON_TZ=<IANA zone>` (or `TZ=`) prefix.
//!
//! The semantics follow robfig/cron's `ParseStandard`, which the hosted service appears to
//! use (`qstash-api.md` §1.3, §8.1). Field parsing and the next-time search are `croner`'s,
//! whose daylight-saving rules are Vixie cron's: a fixed time that falls into a
//! spring-forward gap runs at the first minute after the gap, one repeated by a fall-back
//! runs once; wildcard and step fields simply skip the gap and run in both passes.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::duration::parse_duration;

mod shape;
pub use shape::{CalendarFields, CronShape};

/// One minute, the resolution of schedules.
const MINUTE_MS: i64 = 60_000;

/// A parsed, valid cron expression. Parse it with [`CronExpr::parse`]; past that, every
/// expression can compute its next times.
#[derive(Clone, Debug)]
pub struct CronExpr {
    /// The expression as given, surrounding whitespace trimmed.
    source: String,
    when: When,
}

#[derive(Clone, Debug)]
enum When {
    /// Calendar fields, evaluated on the wall clock of a zone (UTC by default).
    Fields { cron: Box<Cron>, zone: Tz },
    /// `@every <duration>`: a fixed period in whole minutes, counted from the Unix epoch.
    Every { period_ms: i64 },
}

/// Why a cron expression was refused; the text names the problem for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error("Invalid cron expression empty spec string")]
    Empty,
    #[error("Invalid cron expression {0:?}: unknown time zone {1:?}")]
    UnknownZone(String, String),
    #[error("Invalid cron expression {0:?}: {1}")]
    Invalid(String, String),
    #[error("Invalid cron expression {0:?}: it never matches a time")]
    NeverMatches(String),
}

impl From<CronError> for crate::Error {
    fn from(err: CronError) -> Self {
        Self::bad_request(err)
    }
}

impl CronExpr {
    /// Parses `text` (trimmed first): an optional `CRON_TZ=<zone> ` or `TZ=<zone> ` prefix,
    /// then five fields (`min hour dom month dow`) or a descriptor (`@yearly`, `@annually`,
    /// `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`, `@every <duration>`).
    pub fn parse(text: &str) -> Result<Self, CronError> {
        let source = text.trim().to_string();
        if source.is_empty() {
            return Err(CronError::Empty);
        }
        let (zone, spec) = split_zone(&source)?;
        let invalid = |why: String| CronError::Invalid(source.clone(), why);
        if spec.is_empty() {
            return Err(invalid("no schedule after the time zone".into()));
        }
        let when = match spec.strip_prefix("@every") {
            Some(period) if zone.is_none() => every(period).map_err(invalid)?,
            Some(_) => return Err(invalid("@every takes no time zone".into())),
            None => When::Fields {
                cron: Box::new(fields(spec).map_err(invalid)?),
                zone: zone.unwrap_or(Tz::UTC),
            },
        };
        let expr = Self { source, when };
        // An expression such as `0 0 30 2 *` is well-formed but would never fire.
        match expr.next_after(0) {
            Some(_) => Ok(expr),
            None => Err(CronError::NeverMatches(expr.source)),
        }
    }

    /// The expression as given, trimmed; this is what the schedule shows as `cron`.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The first minute the expression matches strictly after `after_ms` (Unix ms), as Unix
    /// ms; `None` when there is none (before year 5000).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        match &self.when {
            When::Every { period_ms } => Some((after_ms.div_euclid(*period_ms) + 1) * period_ms),
            When::Fields { cron, zone } => {
                let start = zone.from_utc_datetime(&utc(after_ms)?.naive_utc());
                let next = cron.find_next_occurrence(&start, false).ok()?;
                Some(next.timestamp_millis())
            }
        }
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for CronExpr {
    type Err = CronError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn utc(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// Splits off a `CRON_TZ=<zone>` or `TZ=<zone>` prefix, returning the zone and the rest.
fn split_zone(source: &str) -> Result<(Option<Tz>, &str), CronError> {
    let Some(rest) = source
        .strip_prefix("CRON_TZ=")
        .or_else(|| source.strip_prefix("TZ="))
    else {
        return Ok((None, source));
    };
    let (name, spec) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let zone = Tz::from_str(name)
        .map_err(|_| CronError::UnknownZone(source.to_string(), name.to_string()))?;
    Ok((Some(zone), spec.trim_start()))
}

/// The five calendar fields, or a descriptor that stands for them.
fn fields(spec: &str) -> Result<Cron, String> {
    // croner knows every robfig descriptor but `@midnight`, an alias of `@daily`.
    let spec = if spec.eq_ignore_ascii_case("@midnight") {
        "@daily"
    } else {
        spec
    };
    if spec.starts_with('@') && spec.split_whitespace().count() > 1 {
        return Err(format!("unknown descriptor {spec:?}"));
    }
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    parser.parse(spec).map_err(|e| match e {
        croner::errors::CronError::InvalidPattern(_) if spec.starts_with('@') => {
            format!("unknown descriptor {spec:?}")
        }
        croner::errors::CronError::InvalidPattern(_) => format!(
            "expected exactly 5 fields (minute hour day-of-month month day-of-week), found {}",
            spec.split_whitespace().count()
        ),
        other => other.to_string(),
    })
}

/// `@every <duration>`: at least a minute, in whole minutes (schedules resolve to minutes).
fn every(period: &str) -> Result<When, String> {
    let period = period.trim();
    let d = parse_duration(period).map_err(|e| format!("@every {period:?}: {e}"))?;
    let period_ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    if period_ms < MINUTE_MS || period_ms % MINUTE_MS != 0 {
        return Err(format!(
            "@every needs a whole number of minutes, at least 1m, got {period:?}"
        ));
    }
    Ok(When::Every { period_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ms of a UTC time written `YYYY-MM-DDTHH:MM:SSZ`.
    fn at(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    fn next(expr: &str, after: &str) -> String {
        let ms = CronExpr::parse(expr)
            .unwrap()
            .next_after(at(after))
            .unwrap();
        utc(ms).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    fn error(expr: &str) -> String {
        CronExpr::parse(expr).unwrap_err().to_string()
    }

    #[test]
    fn five_fields_give_the_next_matching_minute_strictly_after_a_time() {
        assert_eq!(
            next("* * * * *", "2025-01-01T10:00:00Z"),
            "2025-01-01T10:01:00Z"
        );
        assert_eq!(
            next("* * * * *", "2025-01-01T10:00:30Z"),
            "2025-01-01T10:01:00Z"
        );
        assert_eq!(
            next("*/10 * * * *", "2025-01-01T10:05:00Z"),
            "2025-01-01T10:10:00Z"
        );
        assert_eq!(
            next("0 4 * * *", "2025-01-01T04:00:00Z"),
            "2025-01-02T04:00:00Z"
        );
        assert_eq!(
            next("30 9 * * MON-FRI", "2025-01-03T10:00:00Z"),
            "2025-01-06T09:30:00Z"
        );
        assert_eq!(
            next("0 0 1 jan *", "2025-06-01T00:00:00Z"),
            "2026-01-01T00:00:00Z"
        );
    }

    #[test]
    fn day_of_month_and_day_of_week_match_either_like_vixie_cron() {
        // The 13th, or any Friday: Friday 2025-01-03 comes first.
        assert_eq!(
            next("0 0 13 * 5", "2025-01-01T00:00:00Z"),
            "2025-01-03T00:00:00Z"
        );
        assert_eq!(
            next("0 0 * * 7", "2025-01-01T00:00:00Z"),
            "2025-01-05T00:00:00Z"
        );
    }

    #[test]
    fn l_w_and_hash_pick_days_that_depend_on_the_month() {
        // 2025-02: 28 days, the 28th a Friday; 2025-11: the 30th a Sunday, the 1st a Saturday.
        assert_eq!(
            next("0 12 L * *", "2025-02-01T00:00:00Z"),
            "2025-02-28T12:00:00Z"
        );
        assert_eq!(
            next("0 12 LW * *", "2025-11-01T00:00:00Z"),
            "2025-11-28T12:00:00Z"
        );
        assert_eq!(
            next("0 12 1W * *", "2025-10-31T00:00:00Z"),
            "2025-11-03T12:00:00Z"
        );
        assert_eq!(
            next("0 12 30W * *", "2025-11-01T00:00:00Z"),
            "2025-11-28T12:00:00Z"
        );
        assert_eq!(
            next("0 12 * * 5#2", "2025-02-01T00:00:00Z"),
            "2025-02-14T12:00:00Z"
        );
        assert_eq!(
            next("0 12 * * 1L", "2025-02-01T00:00:00Z"),
            "2025-02-24T12:00:00Z"
        );
        // Either day field, as for plain values: the 1st, or the last Monday.
        assert_eq!(
            next("0 12 1 * 1L", "2025-02-02T00:00:00Z"),
            "2025-02-24T12:00:00Z"
        );
    }

    #[test]
    fn descriptors_stand_for_their_fields() {
        let after = "2025-03-15T10:20:00Z";
        assert_eq!(next("@hourly", after), "2025-03-15T11:00:00Z");
        assert_eq!(next("@daily", after), "2025-03-16T00:00:00Z");
        assert_eq!(next("@midnight", after), "2025-03-16T00:00:00Z");
        assert_eq!(next("@weekly", after), "2025-03-16T00:00:00Z");
        assert_eq!(next("@monthly", after), "2025-04-01T00:00:00Z");
        assert_eq!(next("@yearly", after), "2026-01-01T00:00:00Z");
        assert_eq!(next("@annually", after), "2026-01-01T00:00:00Z");
        assert_eq!(next("@every 15m", after), "2025-03-15T10:30:00Z");
        assert_eq!(
            next("@every 1h30m", "2025-03-15T00:00:00Z"),
            "2025-03-15T01:30:00Z"
        );
    }

    #[test]
    fn surrounding_whitespace_is_trimmed_from_what_is_kept() {
        let expr = CronExpr::parse("*/10 * * * * ").unwrap();
        assert_eq!(expr.as_str(), "*/10 * * * *");
        assert_eq!(expr.to_string(), "*/10 * * * *");
    }

    #[test]
    fn a_time_zone_prefix_evaluates_the_fields_on_that_zones_wall_clock() {
        // 04:00 in New York is 09:00 UTC in winter (EST) and 08:00 UTC in summer (EDT).
        let ny = "CRON_TZ=America/New_York 0 4 * * *";
        assert_eq!(next(ny, "2025-01-10T12:00:00Z"), "2025-01-11T09:00:00Z");
        assert_eq!(next(ny, "2025-07-10T12:00:00Z"), "2025-07-11T08:00:00Z");
        assert_eq!(
            next("TZ=Asia/Tokyo 0 9 * * *", "2025-01-10T12:00:00Z"),
            "2025-01-11T00:00:00Z"
        );
        assert_eq!(
            next("CRON_TZ=UTC @hourly", "2025-01-10T12:00:00Z"),
            "2025-01-10T13:00:00Z"
        );
    }

    #[test]
    fn across_spring_forward_a_fixed_time_in_the_gap_runs_right_after_it() {
        // 2025-03-09: New York clocks jump from 02:00 EST (07:00Z) to 03:00 EDT.
        let gap = "CRON_TZ=America/New_York 30 2 * * *";
        assert_eq!(next(gap, "2025-03-08T12:00:00Z"), "2025-03-09T07:00:00Z");
        assert_eq!(next(gap, "2025-03-09T07:00:00Z"), "2025-03-10T06:30:00Z");
        // A time outside the gap moves by an hour in UTC, as the wall clock did.
        let daily = "CRON_TZ=America/New_York 0 4 * * *";
        assert_eq!(next(daily, "2025-03-08T12:00:00Z"), "2025-03-09T08:00:00Z");
        // An hourly job skips the missing hour instead of running twice.
        let hourly = "CRON_TZ=America/New_York 15 * * * *";
        assert_eq!(next(hourly, "2025-03-09T06:20:00Z"), "2025-03-09T07:15:00Z");
        assert_eq!(next(hourly, "2025-03-09T07:15:00Z"), "2025-03-09T08:15:00Z");
    }

    #[test]
    fn across_fall_back_a_fixed_time_in_the_repeated_hour_runs_once() {
        // 2025-11-02: New York clocks fall back from 02:00 EDT (06:00Z) to 01:00 EST.
        let repeated = "CRON_TZ=America/New_York 30 1 * * *";
        assert_eq!(
            next(repeated, "2025-11-01T12:00:00Z"),
            "2025-11-02T05:30:00Z"
        );
        assert_eq!(
            next(repeated, "2025-11-02T05:30:00Z"),
            "2025-11-03T06:30:00Z"
        );
        // A wildcard-hour job runs in both passes of the repeated hour.
        let hourly = "CRON_TZ=America/New_York 30 * * * *";
        assert_eq!(next(hourly, "2025-11-02T05:30:00Z"), "2025-11-02T06:30:00Z");
        assert_eq!(next(hourly, "2025-11-02T06:30:00Z"), "2025-11-02T07:30:00Z");
    }

    #[test]
    fn malformed_expressions_are_refused_with_the_problem_named() {
        assert!(error("").contains("empty spec string"));
        assert!(error("   ").contains("empty spec string"));
        assert!(
            error("* * * *").contains("5 fields"),
            "{}",
            error("* * * *")
        );
        assert!(error("0 * * * * *").contains("5 fields"));
        assert!(error("61 * * * *").contains("61 * * * *"));
        assert!(error("* * * * * * *").contains("5 fields"));
        assert!(error("hello world").contains("Invalid cron expression"));
        assert!(error("@fortnightly").contains("unknown descriptor"));
        assert!(error("@every 30s").contains("whole number of minutes"));
        assert!(error("@every soon").contains("@every"));
        assert!(error("0 0 30 2 *").contains("never matches"));
    }

    #[test]
    fn unknown_time_zones_are_refused_with_the_zone_named() {
        let e = error("CRON_TZ=Mars/Olympus 0 4 * * *");
        assert!(e.contains("unknown time zone \"Mars/Olympus\""), "{e}");
        assert!(error("TZ=Nowhere * * * * *").contains("Nowhere"));
        assert!(error("CRON_TZ=Europe/Paris").contains("no schedule"));
        assert!(matches!(
            CronExpr::parse("CRON_TZ=Europe/Paris").unwrap_err(),
            CronError::Invalid(..)
        ));
    }
}
