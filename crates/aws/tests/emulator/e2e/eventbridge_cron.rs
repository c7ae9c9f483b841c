//! EventBridge's cron fields, evaluated the way EventBridge documents them, for the
//! emulated EventBridge Scheduler (`firing.rs`): numbers, names, `*`, `?`, ranges, lists
//! and steps; `L` (last day), `LW` (last weekday) and `<day>W` (nearest weekday) in the
//! day of month; `L` (Saturday), `<weekday>L` (last such weekday) and `<weekday>#<n>` (nth
//! such weekday) in the day of week. Written from the documentation, not from croner or
//! the translation, so the tests below compare two independent readings.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// Whether the cron fields (the text inside `cron(...)`), read in `timezone`, match the
/// minute starting at `minute_ms`.
pub fn fires_on(fields: &str, timezone: &str, minute_ms: i64) -> bool {
    let zone: Option<Tz> = timezone.parse().ok();
    let utc = DateTime::<Utc>::from_timestamp_millis(minute_ms);
    match (zone, utc) {
        (Some(zone), Some(utc)) => cron_matches(fields, &utc.with_timezone(&zone)),
        _ => false,
    }
}

/// EventBridge's six cron fields against a local time: minutes, hours, day of month,
/// month, day of week (1-7 from Sunday), year; `?` in one day field means "any".
fn cron_matches<T: TimeZone>(fields: &str, t: &DateTime<T>) -> bool {
    let f: Vec<&str> = fields.split_whitespace().collect();
    let [minute, hour, dom, month, dow, year] = f[..] else {
        return false;
    };
    let day = Day::of(t.date_naive());
    field_matches(minute, t.minute(), 0, 59, &[])
        && field_matches(hour, t.hour(), 0, 23, &[])
        && day_of_month_matches(dom, &day)
        && field_matches(month, t.month(), 1, 12, &MONTHS)
        && weekday_matches(dow, &day)
        && field_matches(year, t.year() as u32, 1970, 2199, &[])
}

/// A date, with what `L`, `W` and `#` need to know of its month.
struct Day {
    day: u32,
    /// 1 = Sunday … 7 = Saturday.
    weekday: u32,
    month_len: u32,
}

impl Day {
    fn of(date: NaiveDate) -> Self {
        let first_of_next = match date.month() {
            12 => NaiveDate::from_ymd_opt(date.year() + 1, 1, 1),
            m => NaiveDate::from_ymd_opt(date.year(), m + 1, 1),
        };
        let last = first_of_next.and_then(|d| d.pred_opt()).unwrap_or(date);
        Self {
            day: date.day(),
            weekday: date.weekday().number_from_sunday(),
            month_len: last.day(),
        }
    }

    /// The weekday (1-7 from Sunday) of day `n` of the same month.
    fn weekday_of(&self, n: u32) -> u32 {
        let shift = (i64::from(n) - i64::from(self.day)).rem_euclid(7) as u32;
        (self.weekday - 1 + shift) % 7 + 1
    }

    /// The weekday (Monday to Friday) nearest day `n`, never leaving the month: a
    /// Saturday moves back a day (forward two on the 1st), a Sunday forward a day (back
    /// two on the last day). `None` for a day the month lacks.
    fn nearest_weekday(&self, n: u32) -> Option<u32> {
        if n == 0 || n > self.month_len {
            return None;
        }
        Some(match self.weekday_of(n) {
            7 if n == 1 => 3,
            7 => n - 1,
            1 if n == self.month_len => n - 2,
            1 => n + 1,
            _ => n,
        })
    }
}

/// The day-of-month field: `L` (last day), `LW` (last weekday), `<day>W` (the weekday
/// nearest that day), or values.
fn day_of_month_matches(field: &str, d: &Day) -> bool {
    match field {
        "L" => d.day == d.month_len,
        "LW" => d.nearest_weekday(d.month_len) == Some(d.day),
        _ => match field.strip_suffix('W') {
            Some(n) => n.parse().is_ok_and(|n| d.nearest_weekday(n) == Some(d.day)),
            None => field_matches(field, d.day, 1, 31, &[]),
        },
    }
}

/// The day-of-week field: `L` (Saturday, the week's last day), `<weekday>L` (the last
/// such weekday of the month), `<weekday>#<n>` (the nth of the month), or values.
fn weekday_matches(field: &str, d: &Day) -> bool {
    let weekday = |text: &str| -> Option<u32> {
        text.parse().ok().or_else(|| {
            let upper = text.to_ascii_uppercase();
            WEEKDAYS
                .iter()
                .position(|n| *n == upper)
                .map(|i| i as u32 + 1)
        })
    };
    if field == "L" {
        return d.weekday == 7;
    }
    if let Some((w, n)) = field.split_once('#') {
        let nth = (d.day - 1) / 7 + 1;
        return weekday(w) == Some(d.weekday) && n.parse() == Ok(nth);
    }
    match field.strip_suffix('L') {
        Some(w) => weekday(w) == Some(d.weekday) && d.day + 7 > d.month_len,
        None => field_matches(field, d.weekday, 1, 7, &WEEKDAYS),
    }
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One field: `*`, `?`, or a list of values, ranges and `start/step` items. Anything else
/// never matches.
fn field_matches(field: &str, value: u32, min: u32, max: u32, names: &[&str]) -> bool {
    if field == "*" || field == "?" {
        return true;
    }
    field
        .split(',')
        .any(|item| item_matches(item, value, min, max, names))
}

fn item_matches(item: &str, value: u32, min: u32, max: u32, names: &[&str]) -> bool {
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => match step.parse::<u32>() {
            Ok(step) if step > 0 => (range, step),
            _ => return false,
        },
        None => (item, 1),
    };
    let number = |text: &str| -> Option<u32> {
        text.parse().ok().or_else(|| {
            let upper = text.to_ascii_uppercase();
            let i = names.iter().position(|n| *n == upper)?;
            Some(min + i as u32)
        })
    };
    let bounds = match range.split_once('-') {
        _ if range == "*" => Some((min, max)),
        Some((a, b)) => number(a).zip(number(b)),
        // `5/10` runs from 5 to the end of the range; a bare value is itself.
        None => number(range).map(|a| if item.contains('/') { (a, max) } else { (a, a) }),
    };
    bounds.is_some_and(|(a, b)| (a..=b).contains(&value) && (value - a).is_multiple_of(step))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE_MS: i64 = 60_000;
    const DAY_MS: i64 = 24 * 60 * MINUTE_MS;
    /// 2024-01-01T09:00:00Z, a Monday.
    const MONDAY_9: i64 = 1_704_099_600_000;

    /// Whether `cron(...)` in `timezone` fires on the minute at `t`.
    fn fires_in(expression: &str, timezone: &str, t: i64) -> bool {
        let fields = expression
            .strip_prefix("cron(")
            .and_then(|e| e.strip_suffix(')'))
            .expect("a cron expression");
        fires_on(fields, timezone, t)
    }

    #[test]
    fn cron_fields_match_the_way_eventbridge_reads_them() {
        let fires = |e: &str, t: i64| fires_in(e, "UTC", t);
        assert!(fires("cron(0/5 * * * ? *)", MONDAY_9));
        assert!(!fires("cron(0/5 * * * ? *)", MONDAY_9 + MINUTE_MS));
        assert!(fires("cron(0 9-17 ? * 2-6 *)", MONDAY_9), "Monday is 2");
        assert!(!fires("cron(0 9 ? * 1,7 *)", MONDAY_9));
        assert!(fires("cron(0 9 ? * MON *)", MONDAY_9));
        assert!(fires("cron(0 9 1 JAN ? *)", MONDAY_9));
        assert!(!fires("cron(0 9 L * ? *)", MONDAY_9), "not the last day");
        assert!(fires("cron(0 9 L * ? *)", MONDAY_9 - DAY_MS), "2023-12-31");
        assert!(
            fires_in("cron(0 10 * * ? *)", "Europe/Berlin", MONDAY_9),
            "09:00 UTC is 10:00 in Berlin in winter"
        );
    }

    #[test]
    fn l_w_and_hash_fire_on_the_days_eventbridge_documents() {
        // 2024-06: the 1st a Saturday, the 30th a Sunday; 2024-09: the 1st a Sunday.
        let noon = |y, m, d| {
            let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            date.and_hms_opt(12, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp_millis()
        };
        let fires = |e: &str, t: i64| fires_in(e, "UTC", t);
        assert!(fires("cron(0 12 LW * ? *)", noon(2024, 6, 28)));
        assert!(!fires("cron(0 12 LW * ? *)", noon(2024, 6, 30)));
        assert!(
            fires("cron(0 12 1W * ? *)", noon(2024, 6, 3)),
            "Sat 1st: Mon 3rd"
        );
        assert!(
            fires("cron(0 12 1W * ? *)", noon(2024, 9, 2)),
            "Sun 1st: Mon 2nd"
        );
        assert!(
            fires("cron(0 12 30W * ? *)", noon(2024, 6, 28)),
            "Sun 30th: Fri"
        );
        assert!(
            fires("cron(0 12 15W * ? *)", noon(2024, 6, 14)),
            "Sat 15th: Fri"
        );
        assert!(
            fires("cron(0 12 ? * 6#3 *)", noon(2024, 6, 21)),
            "third Friday"
        );
        assert!(!fires("cron(0 12 ? * 6#3 *)", noon(2024, 6, 14)));
        assert!(fires("cron(0 12 ? * FRI#3 *)", noon(2024, 6, 21)));
        assert!(
            fires("cron(0 12 ? * 2L *)", noon(2024, 6, 24)),
            "last Monday"
        );
        assert!(!fires("cron(0 12 ? * 2L *)", noon(2024, 6, 17)));
        assert!(
            fires("cron(0 12 ? * L *)", noon(2024, 6, 29)),
            "L alone: Saturday"
        );
    }

    /// Crons with `L`, `W` and `#`: on every day of four years, the translated expressions
    /// fire exactly on the days the cron matches in local mode (croner).
    #[test]
    fn translated_modifiers_fire_on_the_days_the_cron_matches_locally() {
        let crons = [
            "0 12 L * *",
            "0 12 LW * *",
            "0 12 1W * *",
            "0 12 15W * *",
            "0 12 28W * *",
            "0 12 L 2 *",
            "0 12 * * 5#2",
            "0 12 * * 0#5",
            "0 12 * * 1L",
            "0 12 * * 7L",
            "0 12 L * 1#1",
            "0 12 15W * 5L",
            "0 12 1 * L",
            "0 12 1-31 * +5#2",
            "0 12 1,L * 0-6",
            "CRON_TZ=America/New_York 0 12 LW * *",
        ];
        let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        for cron in crons {
            let expr = qpost_core::cron::CronExpr::parse(cron).unwrap();
            let zone: Tz = expr
                .to_string()
                .strip_prefix("CRON_TZ=")
                .map_or(Tz::UTC, |rest| {
                    rest.split_whitespace().next().unwrap().parse().unwrap()
                });
            let translated = qpost_aws::scheduler::expression::translate(cron).unwrap();
            for date in start.iter_days().take(4 * 366) {
                let local = date.and_hms_opt(12, 0, 0).unwrap();
                let t = zone.from_local_datetime(&local).unwrap().timestamp_millis();
                let locally = expr.next_after(t - MINUTE_MS) == Some(t);
                let eventbridge = translated
                    .iter()
                    .any(|e| fires_in(&e.expression, &e.timezone, t));
                assert_eq!(locally, eventbridge, "{cron} on {date}");
            }
        }
    }
}
