//! Typed configuration of the AWS backend, read once from the environment the stack gives
//! every function. A missing variable is named, all of them at once.

/// DynamoDB table holding all state.
pub const TABLE: &str = "QPOST_TABLE";
/// URL of the SQS queue delivery wake-ups go to.
pub const DELIVERY_QUEUE_URL: &str = "QPOST_DELIVERY_QUEUE_URL";
/// URL of the SQS dead-letter queue (failed messages and poison records).
pub const DEAD_LETTER_QUEUE_URL: &str = "QPOST_DEAD_LETTER_QUEUE_URL";
/// The region; Lambda sets it. `AWS_DEFAULT_REGION` is accepted in its place.
pub const REGION: &str = "AWS_REGION";
const DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";

/// Where the stack's resources are. The endpoint (`AWS_ENDPOINT_URL`) and credentials are
/// read by the SDK itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub table: String,
    pub delivery_queue_url: String,
    pub dead_letter_queue_url: String,
    pub region: String,
}

/// Required variables that are unset or empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("missing environment variable(s): {}", .missing.join(", "))]
pub struct ConfigError {
    pub missing: Vec<&'static str>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let value = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut missing = Vec::new();
        let mut take = |name: &'static str, found: Option<String>| {
            found.unwrap_or_else(|| {
                missing.push(name);
                String::new()
            })
        };
        let config = Self {
            table: take(TABLE, value(TABLE)),
            delivery_queue_url: take(DELIVERY_QUEUE_URL, value(DELIVERY_QUEUE_URL)),
            dead_letter_queue_url: take(DEAD_LETTER_QUEUE_URL, value(DEAD_LETTER_QUEUE_URL)),
            region: take(REGION, value(REGION).or_else(|| value(DEFAULT_REGION))),
        };
        if missing.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { missing })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn every_missing_variable_is_named_at_once() {
        let err = Config::from_lookup(lookup(&[(TABLE, "t"), (REGION, " ")])).unwrap_err();
        assert_eq!(
            err.missing,
            [DELIVERY_QUEUE_URL, DEAD_LETTER_QUEUE_URL, REGION]
        );
        assert_eq!(
            err.to_string(),
            "missing environment variable(s): QPOST_DELIVERY_QUEUE_URL, QPOST_DEAD_LETTER_QUEUE_URL, AWS_REGION"
        );
    }

    #[test]
    fn a_complete_environment_reads_into_the_config() {
        let config = Config::from_lookup(lookup(&[
            (TABLE, "qpost"),
            (DELIVERY_QUEUE_URL, "https://sqs/d"),
            (DEAD_LETTER_QUEUE_URL, "https://sqs/dlq"),
            (DEFAULT_REGION, "eu-west-1"),
        ]))
        .unwrap();
        assert_eq!(config.table, "qpost");
        assert_eq!(config.region, "eu-west-1", "AWS_DEFAULT_REGION stands in");
    }
}
