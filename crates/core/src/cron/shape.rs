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
    Calendar(Box<CalendarFields>),
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
    /// sets above; the fields below say which.
    pub modifiers: bool,
    /// `L` in the day-of-month field: the last day of the month.
    pub last_day_of_month: bool,
    /// `LW` in the day-of-month field: the last weekday (Monday to Friday) of the month.
    pub last_weekday_of_month: bool,
    /// `<day>W` in the day-of-month field: the weekday nearest that day, within its month
    /// (a Saturday 1st moves to Monday the 3rd, a Sunday last day to the Friday before).
    pub nearest_weekdays: Vec<u8>,
    /// `<weekday>#<n>` in the day-of-week field: the nth such weekday of the month, n in
    /// 1..=5, as (weekday, n) with 0 = Sunday.
    pub nth_weekdays: Vec<(u8, u8)>,
    /// `<weekday>L` in the day-of-week field: the last such weekday of the month.
    pub last_weekdays: Vec<u8>,
}

/// croner's bits for the modifiers (`croner::component`, private there): the nth
/// occurrence of a weekday (bit n), the last one, the nearest weekday. The tests below
/// fail if a croner release moves them.
const NTH_BITS: [u8; 5] = [1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5];
const LAST_BIT: u8 = 1 << 6;
const NEAREST_WEEKDAY_BIT: u8 = 1 << 7;

impl CronExpr {
    /// The sets of values the expression matches.
    pub fn shape(&self) -> CronShape {
        match &self.when {
            When::Every { period_ms } => CronShape::Every {
                period_ms: *period_ms,
            },
            When::Fields { cron, zone } => {
                CronShape::Calendar(Box::new(calendar(&cron.pattern, zone.name())))
            }
        }
    }
}

fn calendar(p: &CronPattern, zone: &str) -> CalendarFields {
    let values = |c: &croner::CronComponent| -> Vec<u8> {
        c.values().into_iter().map(|v| v as u8).collect()
    };
    // `L` alone enables "last" on the whole day-of-month field; `LW` adds "nearest weekday".
    let last = p.days.is_feature_enabled(LAST_BIT);
    let nearest = p.days.is_feature_enabled(NEAREST_WEEKDAY_BIT);
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
        last_day_of_month: last && !nearest,
        last_weekday_of_month: last && nearest,
        nearest_weekdays: bits(&p.days, NEAREST_WEEKDAY_BIT),
        nth_weekdays: nth_weekdays(&p.days_of_week),
        last_weekdays: bits(&p.days_of_week, LAST_BIT),
    }
}

/// The values of component `c` carrying `bit`.
fn bits(c: &croner::CronComponent, bit: u8) -> Vec<u8> {
    c.get_set_values(bit).into_iter().map(|v| v as u8).collect()
}

/// `(weekday, n)` for every `<weekday>#<n>`, by weekday then n.
fn nth_weekdays(c: &croner::CronComponent) -> Vec<(u8, u8)> {
    let mut all: Vec<(u8, u8)> = (1..=5u8)
        .zip(NTH_BITS)
        .flat_map(|(n, bit)| bits(c, bit).into_iter().map(move |d| (d, n)))
        .collect();
    all.sort_unstable();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(expr: &str) -> CalendarFields {
        match CronExpr::parse(expr).unwrap().shape() {
            CronShape::Calendar(f) => *f,
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
        assert!(!fields("0 0 1 * 1").modifiers);
        assert!(fields("0 0 1 * +1").both_days);
        assert_eq!(
            CronExpr::parse("@every 90m").unwrap().shape(),
            CronShape::Every {
                period_ms: 5_400_000
            }
        );
    }

    #[test]
    fn day_of_month_modifiers_are_reported_apart_from_the_plain_days() {
        let l = fields("0 0 L * *");
        assert!(l.last_day_of_month && !l.last_weekday_of_month);
        assert!(l.days_of_month.is_empty() && l.nearest_weekdays.is_empty());
        let lw = fields("0 0 LW * *");
        assert!(lw.last_weekday_of_month && !lw.last_day_of_month);
        let w = fields("0 0 15W * *");
        assert_eq!(w.nearest_weekdays, [15]);
        assert!(w.days_of_month.is_empty() && !w.last_day_of_month);
        let mixed = fields("0 0 1,L * *");
        assert_eq!(mixed.days_of_month, [1]);
        assert!(mixed.last_day_of_month);
        let plain = fields("0 0 1,15 * *");
        assert!(!plain.last_day_of_month && !plain.last_weekday_of_month);
        assert!(plain.nearest_weekdays.is_empty());
    }

    #[test]
    fn day_of_week_modifiers_are_reported_with_sunday_as_zero() {
        let nth = fields("0 0 * * 5#2");
        assert_eq!(nth.nth_weekdays, [(5, 2)]);
        assert!(nth.days_of_week.is_empty() && nth.last_weekdays.is_empty());
        assert_eq!(fields("0 0 * * MON#1").nth_weekdays, [(1, 1)]);
        assert_eq!(fields("0 0 * * 7#5").nth_weekdays, [(0, 5)]);
        let last = fields("0 0 * * 5L");
        assert_eq!(last.last_weekdays, [5]);
        assert!(last.nth_weekdays.is_empty() && last.days_of_week.is_empty());
        assert_eq!(fields("0 0 * * 7L").last_weekdays, [0]);
        let mixed = fields("0 0 * * 1,3#2");
        assert_eq!(
            (mixed.days_of_week, mixed.nth_weekdays),
            (vec![1], vec![(3, 2)])
        );
    }
}
