//! Flow control: per-key limits on parallel attempts and on attempts started per period,
//! as set by `Upstash-Flow-Control-Key` and `Upstash-Flow-Control-Value`.

pub mod limits;

use serde::{Deserialize, Serialize};

use crate::duration::parse_duration;
use crate::error::{Error, Result};

/// Longest rate period.
pub const MAX_PERIOD_SECS: u64 = 7 * 24 * 3600;
/// Rate period when none is given.
pub const DEFAULT_PERIOD_SECS: u64 = 1;

/// The limits a message asks for under its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowControl {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u32>,
    /// Rate period in seconds; `None` means [`DEFAULT_PERIOD_SECS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_secs: Option<u64>,
}

const VALUE_SHAPE: &str = "Upstash-Flow-Control-Value should be either rate=X or parallelism=Y, or both as comma-separated values";

/// Whether a user-chosen name (queue, URL group, schedule id, flow-control key) uses
/// only alphanumerics, `-`, `_` and `.`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn positive(name: &str, value: &str) -> Result<u32> {
    match value.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Error::bad_request(format!(
            "flow-control {name} must be a positive integer, got {value:?}"
        ))),
    }
}

impl FlowControl {
    /// Parses the key and value headers; both or neither must be given.
    pub fn parse(key: Option<&str>, value: Option<&str>) -> Result<Option<Self>> {
        let (key, value) = match (key.map(str::trim), value.map(str::trim)) {
            (None, None) => return Ok(None),
            (Some(k), Some(v)) => (k, v),
            (Some(_), None) => return Err(Error::bad_request(VALUE_SHAPE)),
            (None, Some(_)) => {
                return Err(Error::bad_request(
                    "Upstash-Flow-Control-Value needs Upstash-Flow-Control-Key",
                ));
            }
        };
        if !is_valid_name(key) {
            return Err(Error::bad_request(format!(
                "invalid flow-control key {key:?}: use only alphanumerics, '-', '_' and '.'"
            )));
        }
        let mut fc = Self {
            key: key.to_string(),
            parallelism: None,
            rate: None,
            period_secs: None,
        };
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, v) = part
                .split_once('=')
                .ok_or_else(|| Error::bad_request(VALUE_SHAPE))?;
            match name.trim().to_ascii_lowercase().as_str() {
                "parallelism" => fc.parallelism = Some(positive("parallelism", v)?),
                "rate" | "ratepersecond" => fc.rate = Some(positive("rate", v)?),
                "period" => fc.period_secs = Some(parse_period(v)?),
                _ => return Err(Error::bad_request(VALUE_SHAPE)),
            }
        }
        if fc.parallelism.is_none() && fc.rate.is_none() {
            return Err(Error::bad_request(VALUE_SHAPE));
        }
        Ok(Some(fc))
    }

    pub fn period(&self) -> u64 {
        self.period_secs.unwrap_or(DEFAULT_PERIOD_SECS)
    }
}

/// A rate period: a duration of at least 1 s and at most a week, whole seconds.
pub fn parse_period(value: &str) -> Result<u64> {
    let d = parse_duration(value)
        .map_err(|e| Error::bad_request(format!("flow-control period: {e}")))?;
    let secs = d.as_secs();
    if secs == 0 || secs > MAX_PERIOD_SECS {
        return Err(Error::bad_request(format!(
            "flow-control period must be between 1s and 7d, got {value:?}"
        )));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_take_any_subset_with_or_without_spaces() {
        let fc = FlowControl::parse(Some("k"), Some("parallelism=3, rate=10,period=1m"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (fc.parallelism, fc.rate, fc.period_secs),
            (Some(3), Some(10), Some(60))
        );
        let fc = FlowControl::parse(Some("k"), Some("rate=5"))
            .unwrap()
            .unwrap();
        assert_eq!((fc.parallelism, fc.rate, fc.period()), (None, Some(5), 1));
        assert_eq!(FlowControl::parse(None, None).unwrap(), None);
    }

    #[test]
    fn malformed_values_are_rejected_with_the_documented_text() {
        for v in [
            "",
            "period=1s",
            "speed=3",
            "parallelism",
            "parallelism=0",
            "rate=-1",
            "rate=2,period=8d",
        ] {
            assert!(FlowControl::parse(Some("k"), Some(v)).is_err(), "{v}");
        }
        let err = FlowControl::parse(Some("k"), Some("speed=3"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, VALUE_SHAPE);
        assert!(FlowControl::parse(Some("bad key"), Some("rate=1")).is_err());
        assert!(FlowControl::parse(None, Some("rate=1")).is_err());
    }

    #[test]
    fn names_allow_only_the_documented_characters() {
        assert!(is_valid_name("my-queue_1.v2"));
        assert!(!is_valid_name("my queue"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("a/b"));
    }
}

/// The state of one flow-control key, as `GET /v2/flowControl/{key}` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowControlInfo {
    pub flow_control_key: String,
    pub wait_list_size: u64,
    pub parallelism_max: u32,
    pub parallelism_count: u32,
    pub rate_max: u32,
    pub rate_count: u32,
    /// Seconds.
    pub rate_period: u64,
    /// Unix seconds.
    pub rate_period_start: i64,
    pub is_paused: bool,
    pub is_pinned_parallelism: bool,
    pub is_pinned_rate: bool,
}

/// `GET /v2/globalParallelism`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GlobalParallelism {
    pub parallelism_max: u32,
    pub parallelism_count: u32,
}

/// A management action on one flow-control key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowCommand {
    Pause,
    Resume,
    /// Fixes the given limits against what incoming messages ask for; resets the rate state.
    Pin {
        parallelism: Option<u32>,
        rate: Option<u32>,
        period_secs: Option<u64>,
    },
    Unpin {
        parallelism: bool,
        rate: bool,
    },
    /// Clears the rate count; a new period starts now.
    ResetRate,
    /// Clears the rate and parallelism counters.
    Reset,
}
