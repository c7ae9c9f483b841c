//! A plain view of what a cron expression matches, for backends that hand schedules to
//! another scheduler and must translate the expression (EventBridge Scheduler in AWS
//! mode). The sets come from the same parse that computes next times here, so a
//! translation cannot read a field differently.

use croner::CronPattern;

use super::{CronExpr, When};

/// What a [`CronExpr`] matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CronShape {
    /// Calendar fields on the wall clock of a zone.
    Calendar(CalendarFields),
    /// `@every`: a fixed period in whole minutes, counted from the Unix epoch.
    Every { period_ms: i64 },
}

/// The five calendar fields as sets of matching values, ascending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarFields {
    /// IANA name of the zone the fields are read in (`UTC` when none was given).
    pub zone: String,
    pub minutes: Vec<u8>,
    pub hours: Vec<u8>,
    pub days_of_month: Vec<u8>,
    pub months: Vec<u8>,
    /// 0 = Sunday … 6 = Saturday (a written 7 is Sunday too).
    pub days_of_week: Vec<u8>,
    /// The day-of-month field was `*` (or `?`): it is ignored when day-of-week is restricted.
    pub any_day_of_month: bool,
    /// The day-of-week field was `*` (or `?`): it is ignored when day-of-month is restricted.
    pub any_day_of_week: bool,
    /// When both day fields are restricted, a day must match both (`+` prefix on the
    /// day-of-week field) instead of either (the Vixie cron rule, the default).
    pub both_days: bool,
    /// A field uses `L`, `W` or `#`, whose matches depend on the month and are not in the
    /// sets above.
    pub modifiers: bool,
}

impl CronExpr {
    /// The sets of values the expression matches.
    pub fn shape(&self) -> CronShape {
        match &self.when {
            When::Every { period_ms } => CronShape::Every {
                period_ms: *period_ms,
            },
            When::Fields { cron, zone } => {
                CronShape::Calendar(calendar(&cron.pattern, zone.name()))
            }
        }
    }
}

fn calendar(p: &CronPattern, zone: &str) -> CalendarFields {
    let values = |c: &croner::CronComponent| -> Vec<u8> {
        c.values().into_iter().map(|v| v as u8).collect()
    };
    let mut days_of_week: Vec<u8> = values(&p.days_of_week).into_iter().map(|d| d % 7).collect();
    days_of_week.sort_unstable();
    days_of_week.dedup();
    CalendarFields {
        zone: zone.to_string(),
        minutes: values(&p.minutes),
        hours: values(&p.hours),
        days_of_month: values(&p.days),
        months: values(&p.months),
        days_of_week,
        any_day_of_month: p.is_dom_wildcard(),
        any_day_of_week: p.is_dow_wildcard(),
        both_days: p.matches_dom_and_dow(),
        modifiers: [&p.minutes, &p.hours, &p.days, &p.months, &p.days_of_week]
            .iter()
            .any(|c| c.has_modifiers()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(expr: &str) -> CalendarFields {
        match CronExpr::parse(expr).unwrap().shape() {
            CronShape::Calendar(f) => f,
            other => panic!("{expr}: expected calendar fields, got {other:?}"),
        }
    }

    #[test]
    fn fields_expand_to_the_values_they_match() {
        let f = fields("*/15 9-11 1,15 */6 1-5");
        assert_eq!(f.minutes, [0, 15, 30, 45]);
        assert_eq!(f.hours, [9, 10, 11]);
        assert_eq!(f.days_of_month, [1, 15]);
        assert_eq!(f.months, [1, 7]);
        assert_eq!(f.days_of_week, [1, 2, 3, 4, 5]);
        assert!(!f.any_day_of_month && !f.any_day_of_week && !f.both_days);
        assert!(!f.modifiers);
        assert_eq!(f.zone, "UTC");
    }

    #[test]
    fn sunday_is_zero_or_seven_and_names_work() {
        assert_eq!(fields("0 0 * * 7").days_of_week, [0]);
        assert_eq!(fields("0 0 * * 5-7").days_of_week, [0, 5, 6]);
        assert_eq!(fields("0 0 * * MON,SUN").days_of_week, [0, 1]);
        assert_eq!(fields("0 0 * JAN,DEC *").months, [1, 12]);
    }

    #[test]
    fn wildcards_zones_descriptors_and_modifiers_are_reported() {
        let f = fields("CRON_TZ=Europe/Berlin @daily");
        assert_eq!(
            (f.minutes.as_slice(), f.hours.as_slice()),
            (&[0][..], &[0][..])
        );
        assert!(f.any_day_of_month && f.any_day_of_week);
        assert_eq!(f.zone, "Europe/Berlin");
        assert!(fields("0 0 L * *").modifiers);
        assert!(fields("0 0 * * 5#2").modifiers);
        assert!(fields("0 0 1 * +1").both_days);
        assert_eq!(
            CronExpr::parse("@every 90m").unwrap().shape(),
            CronShape::Every {
                period_ms: 5_400_000
            }
        );
    }
}
