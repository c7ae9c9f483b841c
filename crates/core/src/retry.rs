//! Retry policy: when the next delivery attempt happens after a failed one.
//!
//! Three sources decide, all pure functions of their inputs so tests never sleep: a
//! destination's `Retry-After`-style headers ([`retry_after`]), the publisher's
//! `Upstash-Retry-Delay` expression ([`RetryDelayExpr`]) and QStash's exponential default
//! ([`default_backoff`]). The caller picks among them; this module only computes.

mod expr;

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, UNIX_EPOCH};

use http::HeaderMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::{DurationError, parse_duration};

pub use expr::{ExprError, MAX_DEPTH, MAX_SOURCE_LEN};

/// Longest wait between two attempts: one day, QStash's documented cap for the default
/// backoff and for `Retry-After`. Custom expressions are capped to it as well.
pub const MAX_BACKOFF: Duration = Duration::from_secs(86_400);

/// QStash's default delay before a retry: `min(1 day, e^(2.5·n))` seconds, where `n` is the
/// number of retries made once this one is (1 before the first retry). So 12.18 s, 148.4 s,
/// 30m8s, 6h7m6s, then one day from `n = 5` on. Millisecond precision.
pub fn default_backoff(retried: u32) -> Duration {
    // Large `n` gives +inf, which `millis_to_delay` caps; no NaN can arise.
    let secs = (2.5 * f64::from(retried)).exp();
    millis_to_delay(secs * 1000.0)
}

/// Rounds a computed delay to whole milliseconds inside `[0, MAX_BACKOFF]`. NaN and
/// negative values mean "no wait" rather than an error: the message must still be retried.
fn millis_to_delay(ms: f64) -> Duration {
    let max_ms = MAX_BACKOFF.as_millis() as f64;
    if ms.is_nan() || ms <= 0.0 {
        Duration::ZERO
    } else if ms >= max_ms {
        MAX_BACKOFF
    } else {
        // In range, so the cast neither saturates nor truncates anything but the fraction.
        Duration::from_millis(ms.round() as u64)
    }
}

/// A parsed `Upstash-Retry-Delay` expression: milliseconds as a function of `retried`
/// (0 before the first retry). Kept with its source, which is what the API echoes back as
/// `retryDelayExpression` and what (de)serialization uses.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryDelayExpr {
    src: String,
    ast: expr::Expr,
}

impl RetryDelayExpr {
    /// Parses an expression such as `pow(2, retried) * 1000`; see [`ExprError`] for the
    /// bounds ([`MAX_SOURCE_LEN`] bytes, [`MAX_DEPTH`] levels of nesting).
    pub fn parse(src: &str) -> Result<Self, ExprError> {
        let ast = expr::Expr::parse(src)?;
        Ok(Self {
            src: src.to_owned(),
            ast,
        })
    }

    /// The source text, exactly as given.
    pub fn as_str(&self) -> &str {
        &self.src
    }

    /// The delay before the retry that follows `retried` earlier retries, rounded to whole
    /// milliseconds. NaN or negative results give zero; results above [`MAX_BACKOFF`],
    /// including +inf, give [`MAX_BACKOFF`].
    pub fn eval(&self, retried: u32) -> Duration {
        millis_to_delay(self.ast.eval(f64::from(retried)))
    }
}

impl FromStr for RetryDelayExpr {
    type Err = ExprError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for RetryDelayExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.src)
    }
}

impl Serialize for RetryDelayExpr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.src)
    }
}

impl<'de> Deserialize<'de> for RetryDelayExpr {
    /// Re-parses, so a stored expression is checked again rather than trusted.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let src = String::deserialize(deserializer)?;
        Self::parse(&src).map_err(serde::de::Error::custom)
    }
}

/// Response headers that ask for a wait before the next attempt, in the order they are
/// honoured (§3.5 of the wire contract). The `X-RateLimit-Reset*` ones are common on
/// rate-limited APIs (GitHub sends an epoch, OpenAI sends Go-style durations).
const WAIT_HEADERS: [&str; 4] = [
    "retry-after",
    "x-ratelimit-reset",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
];

/// An integer at least this large is a Unix time in seconds (2001-09-09 onwards), not a
/// number of seconds to wait: no server asks for a 31-year wait.
const EPOCH_SECONDS_THRESHOLD: u64 = 1_000_000_000;

/// The wait a failed response asks for, from the first of `Retry-After`,
/// `X-RateLimit-Reset`, `X-RateLimit-Reset-Requests`, `X-RateLimit-Reset-Tokens` whose
/// value parses. Values: seconds (`10`, `1.5`), a Unix time in seconds, an HTTP date, or a
/// Go-style duration (`6m5s`). Times in the past give zero. `None` when no header parses,
/// or when the parsed wait exceeds [`MAX_BACKOFF`]: the caller then uses its usual backoff.
pub fn retry_after(headers: &HeaderMap, now_unix_ms: i64) -> Option<Duration> {
    WAIT_HEADERS
        .iter()
        .filter_map(|name| headers.get(*name)?.to_str().ok())
        .find_map(|value| parse_wait(value.trim(), now_unix_ms))
        .filter(|wait| *wait <= MAX_BACKOFF)
}

/// One header value as a wait; `None` if it is in none of the accepted forms. Waits too
/// large to represent come back as `Duration::MAX` so they count as "too long", not as
/// "unparsable".
fn parse_wait(value: &str, now_ms: i64) -> Option<Duration> {
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(integer_wait(value, now_ms));
    }
    decimal_seconds(value)
        .or_else(|| http_date_wait(value, now_ms))
        .or_else(|| duration_wait(value))
}

fn integer_wait(digits: &str, now_ms: i64) -> Duration {
    match digits.parse::<u64>() {
        Ok(secs) if secs >= EPOCH_SECONDS_THRESHOLD => wait_until(i128::from(secs) * 1000, now_ms),
        Ok(secs) => Duration::from_secs(secs),
        // Only digits, so the one failure is a number past u64: far more than a day.
        Err(_) => Duration::MAX,
    }
}

/// `<digits>.<digits>` seconds (either side may be empty, not both). Checked by hand
/// because `f64::from_str` would also take `inf`, `NaN` and `1e5`.
fn decimal_seconds(value: &str) -> Option<Duration> {
    let (int, frac) = value.split_once('.')?;
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !all_digits(frac) || (int.is_empty() && frac.is_empty()) {
        return None;
    }
    let secs: f64 = value.parse().ok()?;
    Some(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

/// An HTTP date (IMF-fixdate, RFC 850 or asctime, as `httpdate` reads them).
fn http_date_wait(value: &str, now_ms: i64) -> Option<Duration> {
    let at = httpdate::parse_http_date(value).ok()?;
    // A date before 1970 is simply in the past.
    let at_ms = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Some(wait_until(
        i128::try_from(at_ms).unwrap_or(i128::MAX),
        now_ms,
    ))
}

fn duration_wait(value: &str) -> Option<Duration> {
    match parse_duration(value) {
        Ok(wait) => Some(wait),
        Err(DurationError::TooLong { .. } | DurationError::Overflow { .. }) => Some(Duration::MAX),
        Err(_) => None,
    }
}

/// Time from `now_ms` until `target_ms`, zero if already past.
fn wait_until(target_ms: i128, now_ms: i64) -> Duration {
    let ms = target_ms.saturating_sub(i128::from(now_ms)).max(0);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn expr(src: &str) -> RetryDelayExpr {
        RetryDelayExpr::parse(src).unwrap_or_else(|e| panic!("{src:?} should parse: {e}"))
    }

    #[test]
    fn backoff_follows_the_documented_table() {
        assert_eq!(default_backoff(1), ms(12_182));
        assert_eq!(default_backoff(2), ms(148_413));
        assert_eq!(default_backoff(3), ms(1_808_042));
        assert_eq!(default_backoff(4), ms(22_026_466));
    }

    #[test]
    fn backoff_caps_at_one_day() {
        for n in [5, 6, 100, u32::MAX] {
            assert_eq!(default_backoff(n), MAX_BACKOFF, "n = {n}");
        }
        assert_eq!(default_backoff(0), ms(1_000));
    }

    #[test]
    fn documented_expressions_give_milliseconds() {
        assert_eq!(expr("1000").eval(5), ms(1_000));
        assert_eq!(expr("1000 * (1 + retried)").eval(2), ms(3_000));
        assert_eq!(expr("pow(2, retried) * 1000").eval(3), ms(8_000));
        assert_eq!(expr("max(1000, pow(2, retried) * 100)").eval(0), ms(1_000));
        assert_eq!(expr("max(1000, pow(2, retried) * 100)").eval(5), ms(3_200));
        assert_eq!(expr("pow(retried, 2) * 1000").eval(3), ms(9_000));
        assert_eq!(expr("1000 * retried").eval(0), Duration::ZERO);
        assert_eq!(expr("1000 * retried").eval(4), ms(4_000));
    }

    #[test]
    fn expression_results_round_to_whole_milliseconds() {
        assert_eq!(expr("1.4").eval(0), ms(1));
        assert_eq!(expr("1.5").eval(0), ms(2));
        assert_eq!(expr("0.3").eval(0), Duration::ZERO);
    }

    #[test]
    fn expression_results_are_clamped_to_zero_and_one_day() {
        assert_eq!(expr("pow(10, 400)").eval(0), MAX_BACKOFF);
        assert_eq!(expr("1 / 0").eval(0), MAX_BACKOFF);
        assert_eq!(expr("100000000").eval(0), MAX_BACKOFF);
        assert_eq!(expr("0 - 5").eval(0), Duration::ZERO);
        assert_eq!(expr("-1 / 0").eval(0), Duration::ZERO);
        assert_eq!(expr("sqrt(0-1)").eval(0), Duration::ZERO);
        assert_eq!(expr("0 / 0").eval(0), Duration::ZERO);
        assert_eq!(expr("pow(2, retried)").eval(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn expression_keeps_its_source_text() {
        let e = expr(" pow(2,retried) ");
        assert_eq!(e.as_str(), " pow(2,retried) ");
        assert_eq!(e.to_string(), " pow(2,retried) ");
        assert_eq!("1000".parse::<RetryDelayExpr>(), Ok(expr("1000")));
    }

    #[test]
    fn expression_serializes_as_its_source_and_reparses() {
        let e = expr("1000 * (1 + retried)");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#""1000 * (1 + retried)""#);
        assert_eq!(serde_json::from_str::<RetryDelayExpr>(&json).unwrap(), e);
        let bad = serde_json::from_str::<RetryDelayExpr>(r#""pow(2""#).unwrap_err();
        assert!(bad.to_string().contains("expected ')' at 6"), "{bad}");
    }

    #[test]
    fn expression_errors_are_reachable_from_this_module() {
        let err: ExprError = RetryDelayExpr::parse("nope").unwrap_err();
        assert!(matches!(err, ExprError::UnknownName { .. }));
    }

    const NOW_MS: i64 = 1_700_000_000_000;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn wait(pairs: &[(&'static str, &'static str)]) -> Option<Duration> {
        retry_after(&headers(pairs), NOW_MS)
    }

    #[test]
    fn retry_after_reads_integer_and_decimal_seconds() {
        assert_eq!(wait(&[("Retry-After", "0")]), Some(Duration::ZERO));
        assert_eq!(wait(&[("Retry-After", "10")]), Some(ms(10_000)));
        assert_eq!(wait(&[("Retry-After", " 1.5 ")]), Some(ms(1_500)));
        assert_eq!(wait(&[("Retry-After", ".25")]), Some(ms(250)));
    }

    #[test]
    fn retry_after_reads_large_integers_as_unix_times() {
        assert_eq!(
            wait(&[("X-RateLimit-Reset", "1700000060")]),
            Some(ms(60_000))
        );
        assert_eq!(
            wait(&[("X-RateLimit-Reset", "1600000000")]),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_reads_http_dates() {
        // NOW_MS is Tue, 14 Nov 2023 22:13:20 GMT.
        assert_eq!(
            wait(&[("Retry-After", "Tue, 14 Nov 2023 22:15:20 GMT")]),
            Some(ms(120_000))
        );
        assert_eq!(
            wait(&[("Retry-After", "Tuesday, 14-Nov-23 22:13:30 GMT")]),
            Some(ms(10_000))
        );
        assert_eq!(
            wait(&[("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")]),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_reads_go_durations() {
        assert_eq!(
            wait(&[("X-RateLimit-Reset-Requests", "6m5s")]),
            Some(ms(365_000))
        );
        assert_eq!(
            wait(&[("X-RateLimit-Reset-Tokens", "150ms")]),
            Some(ms(150))
        );
        assert_eq!(wait(&[("Retry-After", "1.5h")]), Some(ms(5_400_000)));
    }

    #[test]
    fn retry_after_takes_the_first_header_that_parses_in_order() {
        let both = [("X-RateLimit-Reset-Tokens", "3s"), ("Retry-After", "7")];
        assert_eq!(wait(&both), Some(ms(7_000)));
        let bad_first = [
            ("Retry-After", "soon"),
            ("X-RateLimit-Reset-Requests", "2s"),
        ];
        assert_eq!(wait(&bad_first), Some(ms(2_000)));
        assert_eq!(
            wait(&[("Retry-After", "-5"), ("X-RateLimit-Reset", "4")]),
            Some(ms(4_000))
        );
    }

    #[test]
    fn retry_after_beyond_one_day_falls_back_to_the_default() {
        assert_eq!(wait(&[("Retry-After", "86400")]), Some(MAX_BACKOFF));
        assert_eq!(wait(&[("Retry-After", "86401")]), None);
        assert_eq!(wait(&[("Retry-After", "2d")]), None);
        assert_eq!(wait(&[("Retry-After", "99999999999999999999999")]), None);
        assert_eq!(wait(&[("Retry-After", "99999999999999999999999.5")]), None);
        assert_eq!(wait(&[("Retry-After", "1000000h")]), None);
        assert_eq!(wait(&[("X-RateLimit-Reset", "1800000000")]), None);
    }

    #[test]
    fn retry_after_without_usable_headers_is_none() {
        assert_eq!(wait(&[]), None);
        assert_eq!(wait(&[("Retry-After", "")]), None);
        assert_eq!(
            wait(&[("Retry-After", "inf"), ("X-RateLimit-Reset", "NaN")]),
            None
        );
        assert_eq!(wait(&[("Retry-After", "1e3"), ("Retry-After", "5")]), None);
        let mut map = HeaderMap::new();
        map.insert("retry-after", HeaderValue::from_bytes(b"\xff10").unwrap());
        assert_eq!(retry_after(&map, NOW_MS), None);
    }
}
