//! Latency histograms (microseconds, HdrHistogram) and their percentile summaries.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest value a histogram tracks: one hour in microseconds (larger values saturate).
const MAX_US: u64 = 3_600_000_000;

/// An empty microsecond histogram with 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("static histogram bounds are valid")
}

/// Percentiles of a histogram, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Summary {
    /// Summarises a microsecond histogram; all zero when it is empty.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// Events per second over `nanos` (0 when no time passed).
pub fn per_second(events: u64, nanos: u64) -> f64 {
    if nanos == 0 {
        return 0.0;
    }
    events as f64 * 1e9 / nanos as f64
}

/// The median (the mean of the middle two for an even count) and the maximum of
/// `values`; both 0 when there are none.
pub fn median_max(values: &[f64]) -> (f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = match n {
        0 => 0.0,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    };
    (median, sorted.last().copied().unwrap_or(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_uniform_spread_land_where_expected() {
        let mut h = histogram();
        for us in 1..=1000u64 {
            h.record(us * 10).expect("in range");
        }
        let s = Summary::of(&h);
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 5.0).abs() < 0.01, "{s:?}");
        assert!((s.p99_ms - 9.9).abs() < 0.01, "{s:?}");
        assert!((s.max_ms - 10.0).abs() < 0.01, "{s:?}");
    }

    #[test]
    fn an_empty_histogram_summarises_to_zero() {
        assert_eq!(Summary::of(&histogram()), Summary::default());
    }

    #[test]
    fn values_beyond_an_hour_saturate_instead_of_failing() {
        let mut h = histogram();
        h.saturating_record(u64::MAX);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn the_median_is_the_middle_value_or_the_mean_of_the_middle_two() {
        assert_eq!(median_max(&[3.0, 1.0, 2.0]), (2.0, 3.0));
        assert_eq!(median_max(&[4.0, 1.0, 2.0, 3.0]), (2.5, 4.0));
        assert_eq!(median_max(&[]), (0.0, 0.0));
    }

    #[test]
    fn rate_is_events_over_seconds() {
        assert_eq!(per_second(500, 250_000_000), 2000.0);
        assert_eq!(per_second(5, 0), 0.0);
    }
}
