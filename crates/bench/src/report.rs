//! Results: each scenario's metrics with their targets and verdicts, printed as a
//! human table and as one JSON line per scenario.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Map, Value};

/// The verdict of one metric or one scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// Reported, with no target to meet.
    Info,
    Skipped,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Info => "info",
            Status::Skipped => "skipped",
        }
    }
}

/// One measured figure.
#[derive(Clone, Debug, Serialize)]
pub struct Metric {
    pub name: Cow<'static, str>,
    pub value: f64,
    pub unit: &'static str,
    /// `value` divided by the direct loopback ceiling, for throughput figures.
    pub ratio: Option<f64>,
    pub target: String,
    pub status: Status,
}

impl Metric {
    /// A figure reported without a target.
    pub fn info(name: impl Into<Cow<'static, str>>, value: f64, unit: &'static str) -> Self {
        Self {
            name: name.into(),
            value,
            unit,
            ratio: None,
            target: "-".into(),
            status: Status::Info,
        }
    }

    /// A throughput figure that must reach `min_ratio` of `ceiling`.
    pub fn ratio_at_least(
        name: impl Into<Cow<'static, str>>,
        value: f64,
        unit: &'static str,
        ceiling: f64,
        min_ratio: f64,
    ) -> Self {
        let ratio = if ceiling > 0.0 { value / ceiling } else { 0.0 };
        let status = if ratio >= min_ratio {
            Status::Pass
        } else {
            Status::Fail
        };
        let target = format!(">= {:.0}% of ceiling", min_ratio * 100.0);
        Self {
            name: name.into(),
            value,
            unit,
            ratio: Some(ratio),
            target,
            status,
        }
    }

    /// A figure that must stay at or below `max`.
    pub fn at_most(
        name: impl Into<Cow<'static, str>>,
        value: f64,
        unit: &'static str,
        max: f64,
    ) -> Self {
        let status = if value <= max {
            Status::Pass
        } else {
            Status::Fail
        };
        let target = format!("<= {} {unit}", format_number(max));
        Self {
            name: name.into(),
            value,
            unit,
            ratio: None,
            target,
            status,
        }
    }

    /// A figure judged by a condition described by `target`.
    pub fn check(
        name: impl Into<Cow<'static, str>>,
        value: f64,
        unit: &'static str,
        target: &str,
        ok: bool,
    ) -> Self {
        let status = if ok { Status::Pass } else { Status::Fail };
        Self {
            name: name.into(),
            value,
            unit,
            ratio: None,
            target: target.into(),
            status,
        }
    }

    /// Sets the ratio to the ceiling of an informational throughput figure.
    pub fn with_ratio(mut self, ceiling: f64) -> Self {
        self.ratio = (ceiling > 0.0).then(|| self.value / ceiling);
        self
    }
}

/// What one scenario produced.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub scenario: &'static str,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub metrics: Vec<Metric>,
    pub details: Map<String, Value>,
}

impl Outcome {
    pub fn new(scenario: &'static str) -> Self {
        Self {
            scenario,
            status: Status::Info,
            note: None,
            metrics: Vec::new(),
            details: Map::new(),
        }
    }

    /// A scenario that could not run here, with the reason.
    pub fn skipped(scenario: &'static str, reason: &str) -> Self {
        let mut o = Self::new(scenario);
        o.status = Status::Skipped;
        o.note = Some(format!("skipped: {reason}"));
        o
    }

    /// A scenario that broke before it could measure.
    pub fn failed(scenario: &'static str, error: &anyhow::Error) -> Self {
        let mut o = Self::new(scenario);
        o.status = Status::Fail;
        o.note = Some(format!("error: {error:#}"));
        o
    }

    pub fn metric(mut self, m: Metric) -> Self {
        self.status = combine(self.status, m.status);
        self.metrics.push(m);
        self
    }

    pub fn detail(mut self, key: &str, value: impl Serialize) -> Self {
        self.details.insert(
            key.into(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }

    /// The one-line JSON form.
    pub fn json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// A scenario fails if any metric fails; passes if any passes and none fails.
fn combine(scenario: Status, metric: Status) -> Status {
    match (scenario, metric) {
        (Status::Skipped, _) | (_, Status::Skipped) => Status::Skipped,
        (Status::Fail, _) | (_, Status::Fail) => Status::Fail,
        (Status::Pass, _) | (_, Status::Pass) => Status::Pass,
        _ => Status::Info,
    }
}

/// `12345.6` → `12,346`; small values keep two decimals unless they are whole.
pub fn format_number(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        let digits = format!("{:.0}", v.abs());
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if v < 0.0 { format!("-{out}") } else { out }
    } else {
        format!("{v:.2}")
    }
}

const HEADERS: [&str; 6] = [
    "scenario",
    "metric",
    "figure",
    "vs ceiling",
    "target",
    "result",
];

/// The human table of every scenario's metrics.
pub fn table(outcomes: &[Outcome]) -> String {
    let rows: Vec<[String; 6]> = outcomes.iter().flat_map(rows_of).collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    write_row(&mut out, &HEADERS.map(String::from), &widths);
    write_row(&mut out, &widths.map(|w| "-".repeat(w)), &widths);
    for row in &rows {
        write_row(&mut out, row, &widths);
    }
    out
}

fn rows_of(o: &Outcome) -> Vec<[String; 6]> {
    let name = o.scenario.to_string();
    let mut rows: Vec<[String; 6]> = o.metrics.iter().map(|m| metric_row(&name, m)).collect();
    if let Some(note) = &o.note {
        let result = if o.status == Status::Skipped {
            note.clone()
        } else {
            format!("{}: {note}", o.status.label())
        };
        rows.push([name, "-".into(), "-".into(), "-".into(), "-".into(), result]);
    }
    rows
}

fn metric_row(scenario: &str, m: &Metric) -> [String; 6] {
    let ratio = m.ratio.map_or("-".into(), |r| format!("{:.1}%", r * 100.0));
    [
        scenario.into(),
        m.name.to_string(),
        format!("{} {}", format_number(m.value), m.unit),
        ratio,
        m.target.clone(),
        m.status.label().into(),
    ]
}

fn write_row(out: &mut String, cells: &[String; 6], widths: &[usize; 6]) {
    let line: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(c, w)| format!("{c:<w$}"))
        .collect();
    let _ = writeln!(out, "{}", line.join("  ").trim_end());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_numbers_get_thousands_separators_and_small_ones_decimals() {
        assert_eq!(format_number(1_234_567.4), "1,234,567");
        assert_eq!(format_number(100.0), "100");
        assert_eq!(format_number(-2500.0), "-2,500");
        assert_eq!(format_number(1.5), "1.50");
        assert_eq!(format_number(0.0), "0");
    }

    #[test]
    fn a_ratio_target_passes_at_the_threshold_and_fails_below() {
        assert_eq!(
            Metric::ratio_at_least("r", 40.0, "msgs/s", 100.0, 0.40).status,
            Status::Pass
        );
        let low = Metric::ratio_at_least("r", 39.0, "msgs/s", 100.0, 0.40);
        assert_eq!((low.status, low.ratio), (Status::Fail, Some(0.39)));
        assert_eq!(low.target, ">= 40% of ceiling");
    }

    #[test]
    fn one_failing_metric_fails_the_scenario() {
        let o = Outcome::new("e2e")
            .metric(Metric::at_most("rss", 10.0, "MiB", 150.0))
            .metric(Metric::at_most("rss2", 200.0, "MiB", 150.0))
            .metric(Metric::info("x", 1.0, "s"));
        assert_eq!(o.status, Status::Fail);
    }

    #[test]
    fn the_table_aligns_columns_and_shows_skip_reasons() {
        let outcomes = [
            Outcome::new("publish").metric(Metric::ratio_at_least(
                "accepted", 4500.0, "msgs/s", 10_000.0, 0.4,
            )),
            Outcome::skipped("fanout", "URL groups not available"),
        ];
        let t = table(&outcomes);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(
            lines[2].contains("4,500 msgs/s")
                && lines[2].contains("45.0%")
                && lines[2].ends_with("PASS"),
            "{t}"
        );
        assert!(
            lines[3].ends_with("skipped: URL groups not available"),
            "{t}"
        );
        assert_eq!(lines[0].find("figure"), lines[2].find("4,500"));
    }

    #[test]
    fn the_json_line_is_one_line_with_the_scenario_and_status() {
        let line = Outcome::skipped("cron", "schedules not available").json_line();
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(v["scenario"], "cron");
        assert_eq!(v["status"], "skipped");
        assert_eq!(v["note"], "skipped: schedules not available");
    }
}
