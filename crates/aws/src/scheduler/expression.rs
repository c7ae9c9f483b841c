//! Unix cron (as qpost schedules take it) translated to EventBridge Scheduler expressions.
//!
//! EventBridge cron has six fields, `cron(minutes hours day-of-month month day-of-week
//! year)`, numbers weekdays 1-7 from Sunday, takes no `/` in the day-of-week field, and
//! needs `?` in one of the two day fields, so it cannot say "this day of the month *or*
//! this weekday". The translation starts from the sets of values the expression matches
//! (from the same parse that computes next times in `qpost-core`) and writes each field as
//! `*`, `start/step` or a list of values and ranges. A Unix cron restricting both day
//! fields (which matches either) becomes two expressions, one per day field.
//!
//! `L` (last day), `LW` (last weekday) and `<day>W` (nearest weekday) in the day of month,
//! `<weekday>#<n>` (nth weekday) and `<weekday>L` (last such weekday) in the day of week
//! are written as EventBridge writes them; EventBridge takes each only alone in its field.

use qpost_core::cron::{CalendarFields, CronError, CronExpr, CronShape};

const MINUTE_MS: i64 = 60_000;

/// Which EventBridge schedule of a qpost schedule an expression is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The only one.
    Whole,
    /// The day-of-month half of a pair (either day field matches).
    DaysOfMonth,
    /// The day-of-week half of a pair.
    Weekdays,
}

/// One EventBridge schedule expression, and which of a pair it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expression {
    pub part: Part,
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
        "cron expression {0:?} combines L, W or # with other values in its {1} field, which EventBridge Scheduler cannot express (it takes each of them only alone in its field)"
    )]
    Modifiers(String, &'static str),
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
        part: Part::Whole,
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
    let (dom, dow) = (day_of_month(f), day_of_week(f));
    let refusal = |field| TranslateError::Modifiers(source.to_string(), field);
    let days = days(f, dom.clone(), dow.clone()).ok_or_else(|| match (dom, dow) {
        (Days::Mixed, _) => refusal("day-of-month"),
        (_, Days::Mixed) => refusal("day-of-week"),
        _ => TranslateError::BothDays(source.to_string()),
    })?;
    let minute = compact(&f.minutes, 0, 59, true);
    let hour = compact(&f.hours, 0, 23, true);
    let month = compact(&f.months, 1, 12, true);
    Ok(days
        .into_iter()
        .map(|(part, dom, dow)| Expression {
            part,
            expression: format!("cron({minute} {hour} {dom} {month} {dow} *)"),
            timezone: f.zone.clone(),
        })
        .collect())
}

/// What one day field says: every day, some days (as EventBridge writes them), no day
/// (`L` alone in the day-of-week field, which croner, and so local mode, ignores), or days
/// EventBridge cannot say in one field (`L`, `W` or `#` beside other values).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Days {
    Every,
    Only(String),
    Never,
    Mixed,
}

impl Days {
    /// From a field's plain values (`full` when they are all of them) and its modifiers
    /// as EventBridge writes them.
    fn of(plain: String, full: bool, modifiers: Vec<String>) -> Self {
        if full {
            return Days::Every;
        }
        match (plain.is_empty(), modifiers.as_slice()) {
            (true, []) => Days::Never,
            (false, []) => Days::Only(plain),
            (true, [one]) => Days::Only(one.clone()),
            _ => Days::Mixed,
        }
    }
}

/// The day-of-month field: values, `L`, `LW` or `<day>W`.
fn day_of_month(f: &CalendarFields) -> Days {
    let mut modifiers: Vec<String> = f.nearest_weekdays.iter().map(|d| format!("{d}W")).collect();
    if f.last_day_of_month {
        modifiers.push("L".into());
    }
    if f.last_weekday_of_month {
        modifiers.push("LW".into());
    }
    let plain = match f.days_of_month.as_slice() {
        [] => String::new(),
        days => compact(days, 1, 31, true),
    };
    Days::of(plain, f.days_of_month.len() == 31, modifiers)
}

/// The day-of-week field (1 = Sunday): values, `<weekday>#<n>` or `<weekday>L`.
fn day_of_week(f: &CalendarFields) -> Days {
    let nth = f.nth_weekdays.iter().map(|(d, n)| format!("{}#{n}", d + 1));
    let last = f.last_weekdays.iter().map(|d| format!("{}L", d + 1));
    let plain = match f.days_of_week.as_slice() {
        [] => String::new(),
        days => weekdays(days),
    };
    Days::of(plain, f.days_of_week.len() == 7, nth.chain(last).collect())
}

/// The (part, day-of-month, day-of-week) field pairs, following the Vixie cron rule that
/// `qpost-core` applies: a `*` day field is ignored when the other restricts; two
/// restricting fields match either (both with `+`). `None` when EventBridge cannot say it.
fn days(f: &CalendarFields, dom: Days, dow: Days) -> Option<Vec<(Part, String, String)>> {
    let either = !f.both_days;
    let both_restrict = !f.any_day_of_month && !f.any_day_of_week;
    let any = "?".to_string();
    let every_day = || vec![(Part::Whole, "*".to_string(), any.clone())];
    let only_dom = |d: String| vec![(Part::Whole, d, any.clone())];
    let only_dow = |d: String| vec![(Part::Whole, any.clone(), d)];
    let dom = if f.any_day_of_month { Days::Every } else { dom };
    let dow = if f.any_day_of_week { Days::Every } else { dow };
    Some(match (dom, dow) {
        (Days::Every, Days::Every) => every_day(),
        // A `*` field is ignored; with `+`, a field matching every day changes nothing.
        (Days::Every, Days::Only(d)) if f.any_day_of_month || f.both_days => only_dow(d),
        (Days::Only(d), Days::Every) if f.any_day_of_week || f.both_days => only_dom(d),
        // Either of two restricting fields: one matching every day matches every day.
        (Days::Every, _) | (_, Days::Every) if either && both_restrict => every_day(),
        (Days::Only(d), Days::Never) if either => only_dom(d),
        (Days::Never, Days::Only(d)) if either => only_dow(d),
        (Days::Only(dom), Days::Only(dow)) if either => vec![
            (Part::DaysOfMonth, dom, any.clone()),
            (Part::Weekdays, any.clone(), dow),
        ],
        _ => return None,
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
        let got: Vec<(Part, &str)> = all
            .iter()
            .map(|e| (e.part, e.expression.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (Part::DaysOfMonth, "cron(0 9 1,15 * ? *)"),
                (Part::Weekdays, "cron(0 9 ? * 2 *)")
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
    fn l_w_and_hash_are_written_as_eventbridge_writes_them() {
        let table = [
            ("0 12 L * *", "cron(0 12 L * ? *)"),
            ("0 12 LW * *", "cron(0 12 LW * ? *)"),
            ("0 12 15W * *", "cron(0 12 15W * ? *)"),
            ("0 12 1W 1-6 *", "cron(0 12 1W 1-6 ? *)"),
            ("0 12 * * 5#2", "cron(0 12 ? * 6#2 *)"),
            ("0 12 * * MON#1", "cron(0 12 ? * 2#1 *)"),
            ("0 12 * * 0#5", "cron(0 12 ? * 1#5 *)"),
            ("0 12 * * 7#5", "cron(0 12 ? * 1#5 *)"),
            ("0 12 * * 5L", "cron(0 12 ? * 6L *)"),
            ("0 12 * * 7L", "cron(0 12 ? * 1L *)"),
            ("CRON_TZ=Europe/Berlin 30 8 L * *", "cron(30 8 L * ? *)"),
            // `+` with a day field matching every day: the other field alone.
            ("0 12 1-31 * +5#2", "cron(0 12 ? * 6#2 *)"),
            ("0 12 L * +0-6", "cron(0 12 L * ? *)"),
            // `L` alone in the day of week matches no day in croner (local mode): the
            // day of month alone fires, as locally.
            ("0 12 1 * L", "cron(0 12 1 * ? *)"),
            // A field's plain values covering every day make its modifiers redundant,
            // and, either field matching, the other field's too.
            ("0 12 * * 0-6,5L", "cron(0 12 * * ? *)"),
            ("0 12 1,L * 0-6", "cron(0 12 * * ? *)"),
            ("0 12 1-31 * 1#1,3#3", "cron(0 12 * * ? *)"),
        ];
        for (unix, eventbridge) in table {
            assert_eq!(one(unix), eventbridge, "{unix}");
        }
    }

    #[test]
    fn modifiers_in_both_day_fields_become_two_expressions() {
        let got: Vec<(Part, String)> = translate("0 12 L * 1#1")
            .unwrap()
            .into_iter()
            .map(|e| (e.part, e.expression))
            .collect();
        assert_eq!(
            got,
            [
                (Part::DaysOfMonth, "cron(0 12 L * ? *)".to_string()),
                (Part::Weekdays, "cron(0 12 ? * 2#1 *)".to_string())
            ]
        );
        let pair = translate("0 12 15W * 5L").unwrap();
        assert_eq!(pair[0].expression, "cron(0 12 15W * ? *)");
        assert_eq!(pair[1].expression, "cron(0 12 ? * 6L *)");
    }

    #[test]
    fn what_eventbridge_cannot_express_is_refused_with_the_reason() {
        let combined = |cron: &str, field: &str| match translate(cron) {
            Err(e @ TranslateError::Modifiers(_, f)) => {
                assert_eq!(f, field, "{cron}");
                assert!(e.to_string().contains("only alone"), "{e}");
            }
            other => panic!("{cron}: {other:?}"),
        };
        combined("0 0 1,L * *", "day-of-month");
        combined("0 0 L,15W * *", "day-of-month");
        combined("0 0 1W,15W * *", "day-of-month");
        combined("0 0 10,15W * *", "day-of-month");
        combined("0 0 * * 1#1,3#3", "day-of-week");
        combined("0 0 * * 1L,5L", "day-of-week");
        combined("0 0 * * 1,5L", "day-of-week");
        combined("0 0 * * 1#1,5L", "day-of-week");
        combined("0 0 1-31 * +1#1,3#3", "day-of-week");
        combined("0 0 1,L * +0-6", "day-of-month");
        combined("0 0 1,L * 1", "day-of-month");
        assert!(matches!(
            translate("0 0 13 * +5"),
            Err(TranslateError::BothDays(_))
        ));
        assert!(matches!(
            translate("0 0 L * +5L"),
            Err(TranslateError::BothDays(_))
        ));
        let e = translate("0 0 13 * +5").unwrap_err().to_string();
        assert!(e.contains("cannot express"), "{e}");
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
