//! Unix cron (as qpost schedules take it) translated to EventBridge Scheduler expressions.
//!
//! EventBridge cron has six fields, `cron(minutes hours day-of-month month day-of-week
//! year)`, numbers weekdays 1-7 from Sunday, takes no `/` in the day-of-week field, and
//! needs `?` in one of the two day fields, so it cannot say "this day of the month *or*
//! this weekday". The translation starts from the sets of values the expression matches
//! (from the same parse that computes next times in `qpost-core`) and writes each field as
//! `*`, `start/step` or a list of values and ranges. A Unix cron restricting both day
//! fields (which matches either) becomes two expressions, one per day field.

use qpost_core::cron::{CalendarFields, CronError, CronExpr, CronShape};

const MINUTE_MS: i64 = 60_000;

/// One EventBridge schedule expression, and which of a pair it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expression {
    /// `None` for a single expression; `a` (day of month) or `b` (day of week) for a pair.
    pub part: Option<char>,
    /// `cron(...)` or `rate(...)`.
    pub expression: String,
    /// IANA zone the expression is read in.
    pub timezone: String,
}

/// Why a valid qpost cron has no EventBridge equivalent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error(transparent)]
    Cron(#[from] CronError),
    #[error(
        "cron expression {0:?} uses L, W or #, which AWS mode does not translate to EventBridge Scheduler yet"
    )]
    Modifiers(String),
    #[error(
        "cron expression {0:?} requires both the day of month and the weekday to match (+), which EventBridge Scheduler cannot express"
    )]
    BothDays(String),
}

impl From<TranslateError> for qpost_core::Error {
    fn from(e: TranslateError) -> Self {
        Self::bad_request(e)
    }
}

/// The EventBridge expressions that together fire on the minutes `cron` matches.
pub fn translate(cron: &str) -> Result<Vec<Expression>, TranslateError> {
    let expr = CronExpr::parse(cron)?;
    match expr.shape() {
        CronShape::Every { period_ms } => Ok(vec![every(period_ms)]),
        CronShape::Calendar(fields) => calendar(expr.as_str(), &fields),
    }
}

/// `@every`: counted from the Unix epoch, so periods that divide an hour or a day are
/// calendar expressions in UTC; other periods become `rate(...)`, which EventBridge counts
/// from the schedule's creation instead (same period, different phase).
fn every(period_ms: i64) -> Expression {
    let minutes = period_ms / MINUTE_MS;
    let utc = |expression: String| Expression {
        part: None,
        expression,
        timezone: "UTC".into(),
    };
    let steps = |step: i64, max: i64| -> Vec<u8> {
        (0..=max).step_by(step as usize).map(|v| v as u8).collect()
    };
    if 60 % minutes == 0 {
        let m = compact(&steps(minutes, 59), 0, 59, true);
        return utc(format!("cron({m} * * * ? *)"));
    }
    let hours = minutes / 60;
    if minutes % 60 == 0 && 24 % hours == 0 {
        let h = compact(&steps(hours, 23), 0, 23, true);
        return utc(format!("cron(0 {h} * * ? *)"));
    }
    utc(format!("rate({minutes} minutes)"))
}

/// Calendar fields: one expression, or two when both day fields restrict (either matches).
fn calendar(source: &str, f: &CalendarFields) -> Result<Vec<Expression>, TranslateError> {
    if f.modifiers {
        return Err(TranslateError::Modifiers(source.to_string()));
    }
    let days = days(f).ok_or_else(|| TranslateError::BothDays(source.to_string()))?;
    let minute = compact(&f.minutes, 0, 59, true);
    let hour = compact(&f.hours, 0, 23, true);
    let month = compact(&f.months, 1, 12, true);
    let pair = days.len() > 1;
    Ok(days
        .into_iter()
        .zip(['a', 'b'])
        .map(|((dom, dow), part)| Expression {
            part: pair.then_some(part),
            expression: format!("cron({minute} {hour} {dom} {month} {dow} *)"),
            timezone: f.zone.clone(),
        })
        .collect())
}

/// The (day-of-month, day-of-week) field pairs, following the Vixie cron rule that
/// `qpost-core` applies: a `*` day field is ignored when the other restricts; two
/// restricting fields match either (both with `+`). `None` when EventBridge cannot say it.
fn days(f: &CalendarFields) -> Option<Vec<(String, String)>> {
    let every_day = || vec![("*".to_string(), "?".to_string())];
    let dom_full = f.days_of_month.len() == 31;
    let dow_full = f.days_of_week.len() == 7;
    let dom = || (compact(&f.days_of_month, 1, 31, true), "?".to_string());
    let dow = || ("?".to_string(), weekdays(&f.days_of_week));
    let only_dom = || if dom_full { every_day() } else { vec![dom()] };
    let only_dow = || if dow_full { every_day() } else { vec![dow()] };
    Some(match (f.any_day_of_month, f.any_day_of_week) {
        (true, true) => every_day(),
        (true, false) => only_dow(),
        (false, true) => only_dom(),
        (false, false) if !f.both_days && (dom_full || dow_full) => every_day(),
        (false, false) if !f.both_days => vec![dom(), dow()],
        (false, false) if dom_full => only_dow(),
        (false, false) if dow_full => only_dom(),
        (false, false) => return None,
    })
}

/// Unix weekdays (0 = Sunday) as EventBridge writes them (1 = Sunday), without steps.
fn weekdays(days: &[u8]) -> String {
    let mut shifted: Vec<u8> = days.iter().map(|d| d + 1).collect();
    shifted.sort_unstable();
    compact(&shifted, 1, 7, false)
}

/// A field's values (ascending, within `min..=max`) in the shortest usual form: `*` for
/// all, `start/step` for a progression that runs to the end of the range (when `steps`),
/// else values and runs of three or more as ranges, comma-separated.
fn compact(values: &[u8], min: u8, max: u8, steps: bool) -> String {
    if values.len() == usize::from(max - min) + 1 {
        return "*".into();
    }
    if steps && let Some((start, step)) = progression(values, max) {
        return format!("{start}/{step}");
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let mut j = i;
        while j + 1 < values.len() && values[j + 1] == values[j] + 1 {
            j += 1;
        }
        match j - i {
            0 => parts.push(values[i].to_string()),
            1 => parts.extend([values[i].to_string(), values[j].to_string()]),
            _ => parts.push(format!("{}-{}", values[i], values[j])),
        }
        i = j + 1;
    }
    parts.join(",")
}

/// `(start, step)` when `values` are `start, start+step, …` up to the last one that fits
/// under `max`, with at least three values and a step over one.
fn progression(values: &[u8], max: u8) -> Option<(u8, u8)> {
    let [first, second, ..] = values else {
        return None;
    };
    let step = second - first;
    let regular = values.windows(2).all(|w| w[1] - w[0] == step);
    let last = *values.last()?;
    let runs_to_end = u16::from(last) + u16::from(step) > u16::from(max);
    (values.len() >= 3 && step > 1 && regular && runs_to_end).then_some((*first, step))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(cron: &str) -> String {
        let mut all = translate(cron).unwrap();
        assert_eq!(all.len(), 1, "{cron} gave {all:?}");
        all.remove(0).expression
    }

    #[test]
    fn the_translation_table_holds() {
        let table = [
            ("* * * * *", "cron(* * * * ? *)"),
            ("*/5 * * * *", "cron(0/5 * * * ? *)"),
            ("5-59/15 * * * *", "cron(5/15 * * * ? *)"),
            ("0 */2 * * *", "cron(0 0/2 * * ? *)"),
            ("30 9 * * *", "cron(30 9 * * ? *)"),
            ("0 9-17 * * *", "cron(0 9-17 * * ? *)"),
            ("0,30 8,9,10,14 * * *", "cron(0,30 8-10,14 * * ? *)"),
            ("0 0 1 * *", "cron(0 0 1 * ? *)"),
            ("0 0 1,15 */3 *", "cron(0 0 1,15 1/3 ? *)"),
            ("0 12 * * 1-5", "cron(0 12 ? * 2-6 *)"),
            ("0 12 * * MON-FRI", "cron(0 12 ? * 2-6 *)"),
            ("0 0 * * 0", "cron(0 0 ? * 1 *)"),
            ("0 0 * * 7", "cron(0 0 ? * 1 *)"),
            ("0 0 * * 5-7", "cron(0 0 ? * 1,6,7 *)"),
            ("0 0 * * */2", "cron(0 0 ? * 1,3,5,7 *)"),
            ("0 0 * * 0-6", "cron(0 0 * * ? *)"),
            ("0 0 * JAN,JUL *", "cron(0 0 * 1,7 ? *)"),
            ("0 0 1-31 * *", "cron(0 0 * * ? *)"),
            ("0 0 ? * 1", "cron(0 0 ? * 2 *)"),
        ];
        for (unix, eventbridge) in table {
            assert_eq!(one(unix), eventbridge, "{unix}");
        }
    }

    #[test]
    fn descriptors_translate_like_their_fields() {
        let table = [
            ("@yearly", "cron(0 0 1 1 ? *)"),
            ("@annually", "cron(0 0 1 1 ? *)"),
            ("@monthly", "cron(0 0 1 * ? *)"),
            ("@weekly", "cron(0 0 ? * 1 *)"),
            ("@daily", "cron(0 0 * * ? *)"),
            ("@midnight", "cron(0 0 * * ? *)"),
            ("@hourly", "cron(0 * * * ? *)"),
        ];
        for (unix, eventbridge) in table {
            assert_eq!(one(unix), eventbridge, "{unix}");
        }
    }

    #[test]
    fn every_is_a_utc_calendar_when_the_period_divides_an_hour_or_a_day() {
        let table = [
            ("@every 1m", "cron(* * * * ? *)"),
            ("@every 15m", "cron(0/15 * * * ? *)"),
            ("@every 30m", "cron(0,30 * * * ? *)"),
            ("@every 1h", "cron(0 * * * ? *)"),
            ("@every 6h", "cron(0 0/6 * * ? *)"),
            ("@every 24h", "cron(0 0 * * ? *)"),
            ("@every 7m", "rate(7 minutes)"),
            ("@every 90m", "rate(90 minutes)"),
        ];
        for (unix, eventbridge) in table {
            let all = translate(unix).unwrap();
            assert_eq!(all[0].expression, eventbridge, "{unix}");
            assert_eq!(all[0].timezone, "UTC");
        }
    }

    #[test]
    fn both_day_fields_restricted_become_two_expressions() {
        let all = translate("0 9 1,15 * MON").unwrap();
        let got: Vec<(Option<char>, &str)> = all
            .iter()
            .map(|e| (e.part, e.expression.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (Some('a'), "cron(0 9 1,15 * ? *)"),
                (Some('b'), "cron(0 9 ? * 2 *)")
            ]
        );
    }

    #[test]
    fn a_day_field_matching_every_day_makes_the_pair_one_expression() {
        assert_eq!(one("0 9 */1 * MON"), "cron(0 9 * * ? *)");
        assert_eq!(one("0 9 1 * 0-6"), "cron(0 9 * * ? *)");
        assert_eq!(one("0 9 1-31 * +MON"), "cron(0 9 ? * 2 *)");
        assert_eq!(one("0 9 1 * +0-6"), "cron(0 9 1 * ? *)");
    }

    #[test]
    fn the_time_zone_prefix_becomes_the_expression_timezone() {
        let all = translate("CRON_TZ=America/New_York 0 9 * * 1-5").unwrap();
        assert_eq!(all[0].expression, "cron(0 9 ? * 2-6 *)");
        assert_eq!(all[0].timezone, "America/New_York");
        assert_eq!(
            translate("TZ=Asia/Tokyo @daily").unwrap()[0].timezone,
            "Asia/Tokyo"
        );
        assert_eq!(translate("0 0 * * *").unwrap()[0].timezone, "UTC");
    }

    #[test]
    fn what_eventbridge_cannot_express_is_refused_with_the_reason() {
        assert!(matches!(
            translate("0 0 L * *"),
            Err(TranslateError::Modifiers(_))
        ));
        assert!(matches!(
            translate("0 0 * * 5#2"),
            Err(TranslateError::Modifiers(_))
        ));
        assert!(matches!(
            translate("0 0 13 * +5"),
            Err(TranslateError::BothDays(_))
        ));
        assert!(matches!(
            translate("61 * * * *"),
            Err(TranslateError::Cron(_))
        ));
    }

    #[test]
    fn compaction_picks_star_steps_ranges_and_lists() {
        assert_eq!(compact(&(0..60).collect::<Vec<_>>(), 0, 59, true), "*");
        assert_eq!(compact(&[0, 20, 40], 0, 59, true), "0/20");
        assert_eq!(compact(&[0, 20, 40], 0, 59, false), "0,20,40");
        assert_eq!(
            compact(&[0, 20], 0, 59, true),
            "0,20",
            "two values are a list"
        );
        assert_eq!(
            compact(&[0, 10, 20], 0, 59, true),
            "0,10,20",
            "stops short of the end"
        );
        assert_eq!(compact(&[1, 2, 3, 7, 9, 10], 0, 59, true), "1-3,7,9,10");
    }
}
