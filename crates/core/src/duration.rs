//! Duration strings of the wire (`Upstash-Delay`, `Upstash-Timeout`, flow-control `period`,
//! rate-limit reset headers): Go's `time.ParseDuration` grammar plus `d` for days.
//!
//! QStash documents only `<n><unit>` with `s m h d` (`"1d10h30m"`), but its service is
//! written in Go and destinations send Go-style values (`"6m5s"`, `"150ms"`), so the whole
//! Go grammar is accepted. A bare integer means seconds: SDKs never send one, and reading
//! it as seconds is the least surprising choice.

use std::time::Duration;

/// Longest duration accepted: 100 years of 365.25 days. Far beyond any plan limit, but it
/// keeps every later `SystemTime`/millisecond addition far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(36_525 * 86_400);

/// Digits of a fraction kept; Go drops the rest too. 18 digits keep the scaled fraction
/// below 10^18, so multiplying it by a unit (at most a day in ns) stays inside `u128`.
const MAX_FRACTION_DIGITS: u32 = 18;

/// Why a duration string was rejected; each variant names the input. Positions are
/// 1-based byte columns of the trimmed input, as in retry-delay expression errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("invalid duration {input:?}: empty")]
    Empty { input: String },
    #[error("invalid duration {input:?}: negative durations are not allowed")]
    Negative { input: String },
    #[error("invalid duration {input:?}: expected a number at {pos}")]
    ExpectedNumber { input: String, pos: usize },
    #[error("invalid duration {input:?}: missing unit after number at {pos}")]
    MissingUnit { input: String, pos: usize },
    #[error("invalid duration {input:?}: unknown unit {unit:?} (use ns, us, ms, s, m, h or d)")]
    UnknownUnit { input: String, unit: String },
    #[error("invalid duration {input:?}: number too large")]
    Overflow { input: String },
    #[error("invalid duration {input:?}: longer than 100 years")]
    TooLong { input: String },
}

/// Parses `"1d10h30m"`, `"1.5h"`, `"150ms"`, `"2h45m"`, `"30"` (= 30 s) and the like.
/// Surrounding whitespace is ignored; a leading `+` is allowed as in Go.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let input = s.trim();
    let err_input = || input.to_owned();
    let body = input.strip_prefix('+').unwrap_or(input);
    if input.starts_with('-') {
        return Err(DurationError::Negative { input: err_input() });
    }
    if body.is_empty() {
        return Err(DurationError::Empty { input: err_input() });
    }
    // Bare integer: seconds. Checked first so "30" is not a "missing unit" error.
    if body.bytes().all(|b| b.is_ascii_digit()) {
        let secs =
            parse_integer(body).ok_or_else(|| DurationError::Overflow { input: err_input() })?;
        let nanos = secs
            .checked_mul(NANOS_PER_SEC)
            .ok_or_else(|| DurationError::Overflow { input: err_input() })?;
        return to_duration(nanos, input);
    }
    let offset = input.len() - body.len();
    let mut total: u128 = 0;
    let mut rest = body;
    while !rest.is_empty() {
        let pos = offset + body.len() - rest.len();
        let (component, tail) = parse_component(rest, input, pos)?;
        total = total
            .checked_add(component)
            .ok_or_else(|| DurationError::Overflow { input: err_input() })?;
        // Stop early so one absurd component cannot make the next ones overflow first.
        if total > MAX_DURATION.as_nanos() {
            return Err(DurationError::TooLong { input: err_input() });
        }
        rest = tail;
    }
    to_duration(total, input)
}

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// One `<number><unit>` pair at the start of `s`, in nanoseconds, and what follows it.
/// `pos` is the 0-based byte offset of `s` in `input`, for error messages.
fn parse_component<'a>(
    s: &'a str,
    input: &str,
    pos: usize,
) -> Result<(u128, &'a str), DurationError> {
    let int_len = digit_run(s);
    let after_int = &s[int_len..];
    let (frac_digits, after_num) = match after_int.strip_prefix('.') {
        Some(f) => f.split_at(digit_run(f)),
        None => ("", after_int),
    };
    if int_len == 0 && frac_digits.is_empty() {
        // "abc", ".s", "h": no digits where a number must be (Go rejects them too).
        return Err(DurationError::ExpectedNumber {
            input: input.to_owned(),
            pos: pos + 1,
        });
    }
    let unit_len = after_num
        .find(|c: char| c.is_ascii_digit() || c == '.')
        .unwrap_or(after_num.len());
    let (unit, tail) = after_num.split_at(unit_len);
    let unit_pos = pos + s.len() - after_num.len();
    let unit_nanos = unit_nanos(unit, input, unit_pos + 1)?;
    let overflow = || DurationError::Overflow {
        input: input.to_owned(),
    };
    let int = parse_integer(&s[..int_len]).ok_or_else(overflow)?;
    let whole = int.checked_mul(unit_nanos).ok_or_else(overflow)?;
    Ok((whole + fraction_nanos(frac_digits, unit_nanos), tail))
}

/// Length in bytes of the run of ASCII digits at the start of `s`.
fn digit_run(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

/// A run of ASCII digits as a number no larger than `u64::MAX` (like Go's int64 limit, a
/// number with more digits is an overflow, not a rounding). Empty means 0.
fn parse_integer(digits: &str) -> Option<u128> {
    digits.bytes().try_fold(0u128, |acc, b| {
        let next = acc * 10 + u128::from(b - b'0');
        (next <= u128::from(u64::MAX)).then_some(next)
    })
}

/// Nanoseconds of the fraction `0.<digits>` of a unit, truncated like Go.
fn fraction_nanos(digits: &str, unit_nanos: u128) -> u128 {
    let kept = &digits[..digits.len().min(MAX_FRACTION_DIGITS as usize)];
    let scale = 10u128.pow(kept.len() as u32);
    let numerator = parse_integer(kept).unwrap_or(0);
    numerator * unit_nanos / scale
}

/// Nanoseconds in one `unit`, which starts at column `pos`. Both micro signs (U+00B5 and U+03BC) are accepted, as in Go.
fn unit_nanos(unit: &str, input: &str, pos: usize) -> Result<u128, DurationError> {
    Ok(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SEC,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3_600 * NANOS_PER_SEC,
        "d" => 86_400 * NANOS_PER_SEC,
        "" => {
            return Err(DurationError::MissingUnit {
                input: input.to_owned(),
                pos,
            });
        }
        other => {
            return Err(DurationError::UnknownUnit {
                input: input.to_owned(),
                unit: other.to_owned(),
            });
        }
    })
}

/// Checks the 100-year bound and converts; `u128` nanoseconds below it fit a `Duration`.
fn to_duration(nanos: u128, input: &str) -> Result<Duration, DurationError> {
    if nanos > MAX_DURATION.as_nanos() {
        return Err(DurationError::TooLong {
            input: input.to_owned(),
        });
    }
    let secs = (nanos / NANOS_PER_SEC) as u64;
    let sub = (nanos % NANOS_PER_SEC) as u32;
    Ok(Duration::new(secs, sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        parse_duration(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn documented_upstash_forms_parse() {
        assert_eq!(ok("10s"), secs(10));
        assert_eq!(ok("1m"), secs(60));
        assert_eq!(ok("30m"), secs(1_800));
        assert_eq!(ok("2h"), secs(7_200));
        assert_eq!(ok("7d"), secs(7 * 86_400));
        assert_eq!(ok("1d10h30m"), secs(86_400 + 10 * 3_600 + 30 * 60));
        assert_eq!(ok("3d5h12m"), secs(3 * 86_400 + 5 * 3_600 + 12 * 60));
    }

    #[test]
    fn go_units_parse() {
        assert_eq!(ok("150ns"), Duration::from_nanos(150));
        assert_eq!(ok("150us"), Duration::from_micros(150));
        assert_eq!(ok("150µs"), Duration::from_micros(150));
        assert_eq!(ok("150\u{3bc}s"), Duration::from_micros(150));
        assert_eq!(ok("150ms"), Duration::from_millis(150));
        assert_eq!(ok("6m5s"), secs(365));
        assert_eq!(ok("2h45m"), secs(2 * 3_600 + 45 * 60));
    }

    #[test]
    fn decimals_parse_and_truncate_below_a_nanosecond() {
        assert_eq!(ok("1.5h"), secs(5_400));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("5.s"), secs(5));
        assert_eq!(ok("1.5s250ms"), Duration::from_millis(1_750));
        assert_eq!(ok("0.0000000019s"), Duration::from_nanos(1));
        assert_eq!(ok("1.0000000000000000000000009s"), secs(1));
    }

    #[test]
    fn bare_integer_means_seconds() {
        assert_eq!(ok("30"), secs(30));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("007"), secs(7));
    }

    #[test]
    fn whitespace_around_is_ignored_and_plus_sign_allowed() {
        assert_eq!(ok("  5s\t"), secs(5));
        assert_eq!(ok("+5s"), secs(5));
        assert_eq!(ok(" 30 "), secs(30));
    }

    #[test]
    fn empty_and_blank_are_rejected() {
        assert!(matches!(
            parse_duration(""),
            Err(DurationError::Empty { .. })
        ));
        assert!(matches!(
            parse_duration("   "),
            Err(DurationError::Empty { .. })
        ));
        assert!(matches!(
            parse_duration("+"),
            Err(DurationError::Empty { .. })
        ));
    }

    #[test]
    fn negative_durations_are_rejected() {
        assert!(matches!(
            parse_duration("-5s"),
            Err(DurationError::Negative { .. })
        ));
        assert!(matches!(
            parse_duration("-0"),
            Err(DurationError::Negative { .. })
        ));
    }

    #[test]
    fn unknown_units_are_rejected_by_name() {
        let err = parse_duration("2w").unwrap_err();
        assert_eq!(
            err,
            DurationError::UnknownUnit {
                input: "2w".into(),
                unit: "w".into()
            }
        );
        assert!(matches!(
            parse_duration("5 s"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_duration("5S"),
            Err(DurationError::UnknownUnit { .. })
        ));
        // Like Go, a unit is every byte up to the next digit or dot.
        assert!(matches!(
            parse_duration("1h-2m"),
            Err(DurationError::UnknownUnit { .. })
        ));
    }

    #[test]
    fn a_number_without_unit_inside_a_compound_is_rejected() {
        let err = parse_duration("1h30").unwrap_err();
        assert_eq!(
            err,
            DurationError::MissingUnit {
                input: "1h30".into(),
                pos: 5
            }
        );
        assert!(matches!(
            parse_duration("1.5"),
            Err(DurationError::MissingUnit { .. })
        ));
    }

    #[test]
    fn text_without_digits_is_rejected() {
        for s in ["abc", "h", ".s", ".", "1h.m"] {
            assert!(
                matches!(parse_duration(s), Err(DurationError::ExpectedNumber { .. })),
                "{s}"
            );
        }
    }

    #[test]
    fn overflowing_numbers_are_rejected() {
        let huge = "99999999999999999999999s";
        assert!(matches!(
            parse_duration(huge),
            Err(DurationError::Overflow { .. })
        ));
        assert!(matches!(
            parse_duration("99999999999999999999999"),
            Err(DurationError::Overflow { .. })
        ));
    }

    #[test]
    fn totals_above_a_hundred_years_are_rejected() {
        assert_eq!(ok("36525d"), MAX_DURATION);
        assert!(matches!(
            parse_duration("36525d1ns"),
            Err(DurationError::TooLong { .. })
        ));
        assert!(matches!(
            parse_duration("18446744073709551615h"),
            Err(DurationError::TooLong { .. })
        ));
        assert!(matches!(
            parse_duration("4000000000"),
            Err(DurationError::TooLong { .. })
        ));
    }

    #[test]
    fn error_text_names_the_input() {
        let err = parse_duration("abc").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid duration "abc": expected a number at 1"#
        );
    }

    #[test]
    fn odd_inputs_never_panic() {
        for s in [
            "µ", "1µ", "1é", "1.é", "..", "1..2s", "٣s", "1\u{0}s", "ms", "1ms.", "1ms1",
        ] {
            assert!(parse_duration(s).is_err(), "{s:?}");
        }
    }
}
