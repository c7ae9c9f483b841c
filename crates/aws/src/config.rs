//! Typed configuration of the AWS backend, read once from the environment the stack gives
//! every function. A missing variable is named, all of them at once.

/// DynamoDB table holding all state.
pub const TABLE: &str = "QPOST_TABLE";
/// URL of the SQS queue delivery wake-ups go to.
pub const DELIVERY_QUEUE_URL: &str = "QPOST_DELIVERY_QUEUE_URL";
/// URL of the SQS FIFO queue carrying the wake-ups of messages in qpost queues, one message
/// group per queue (or per parallel lane of a queue), so SQS keeps their order.
pub const ORDERED_QUEUE_URL: &str = "QPOST_ORDERED_QUEUE_URL";
/// URL of the SQS dead-letter queue (failed messages and poison records).
pub const DEAD_LETTER_QUEUE_URL: &str = "QPOST_DEAD_LETTER_QUEUE_URL";
/// ARN of the delivery queue: the target of EventBridge Scheduler schedules.
pub const DELIVERY_QUEUE_ARN: &str = "QPOST_DELIVERY_QUEUE_ARN";
/// ARN of the dead-letter queue: where EventBridge Scheduler puts wake-ups it could not send.
pub const DEAD_LETTER_QUEUE_ARN: &str = "QPOST_DEAD_LETTER_QUEUE_ARN";
/// EventBridge Scheduler schedule group holding qpost's schedules, each named by its id.
pub const SCHEDULE_GROUP: &str = "QPOST_SCHEDULE_GROUP";
/// EventBridge Scheduler schedule group holding the one-time wake-ups and the weekday half
/// of a qpost schedule whose cron needs two expressions, each name starting with its kind,
/// so no name can collide with a qpost schedule's (named by its id in [`SCHEDULE_GROUP`]).
pub const SECONDARY_SCHEDULE_GROUP: &str = "QPOST_SECONDARY_SCHEDULE_GROUP";
/// IAM role EventBridge Scheduler assumes to send to the delivery queue.
pub const SCHEDULER_ROLE_ARN: &str = "QPOST_SCHEDULER_ROLE_ARN";
/// S3 bucket holding the bodies too large to keep in a DynamoDB item (the claim check).
pub const BODY_BUCKET: &str = "QPOST_BODY_BUCKET";
/// The region; Lambda sets it. `AWS_DEFAULT_REGION` is accepted in its place.
pub const REGION: &str = "AWS_REGION";
const DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";

/// Where the stack's resources are. The endpoint (`AWS_ENDPOINT_URL`) and credentials are
/// read by the SDK itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub table: String,
    pub delivery_queue_url: String,
    pub ordered_queue_url: String,
    pub dead_letter_queue_url: String,
    pub region: String,
    pub delivery_queue_arn: String,
    pub dead_letter_queue_arn: String,
    pub schedule_group: String,
    pub secondary_schedule_group: String,
    pub scheduler_role_arn: String,
    pub body_bucket: String,
    /// See [`GLOBAL_PARALLELISM`].
    pub global_parallelism: u32,
}

/// Optional: attempts the stack may run at once, as `GET /v2/globalParallelism` reports it
/// (the deliver function's maximum concurrency times its batch size). Default
/// [`DEFAULT_GLOBAL_PARALLELISM`].
pub const GLOBAL_PARALLELISM: &str = "QPOST_GLOBAL_PARALLELISM";
/// Lambda's default concurrency quota per account and region.
pub const DEFAULT_GLOBAL_PARALLELISM: u32 = 1000;

/// Required variables that are unset or empty, and variables whose value cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.missing, .invalid))]
pub struct ConfigError {
    pub missing: Vec<&'static str>,
    pub invalid: Vec<&'static str>,
}

fn describe(missing: &[&str], invalid: &[&str]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!(
            "missing environment variable(s): {}",
            missing.join(", ")
        ));
    }
    if !invalid.is_empty() {
        parts.push(format!(
            "invalid environment variable(s): {}",
            invalid.join(", ")
        ));
    }
    parts.join("; ")
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
        let mut config = Self {
            table: take(TABLE, value(TABLE)),
            delivery_queue_url: take(DELIVERY_QUEUE_URL, value(DELIVERY_QUEUE_URL)),
            ordered_queue_url: take(ORDERED_QUEUE_URL, value(ORDERED_QUEUE_URL)),
            dead_letter_queue_url: take(DEAD_LETTER_QUEUE_URL, value(DEAD_LETTER_QUEUE_URL)),
            region: take(REGION, value(REGION).or_else(|| value(DEFAULT_REGION))),
            delivery_queue_arn: take(DELIVERY_QUEUE_ARN, value(DELIVERY_QUEUE_ARN)),
            dead_letter_queue_arn: take(DEAD_LETTER_QUEUE_ARN, value(DEAD_LETTER_QUEUE_ARN)),
            schedule_group: take(SCHEDULE_GROUP, value(SCHEDULE_GROUP)),
            secondary_schedule_group: take(
                SECONDARY_SCHEDULE_GROUP,
                value(SECONDARY_SCHEDULE_GROUP),
            ),
            scheduler_role_arn: take(SCHEDULER_ROLE_ARN, value(SCHEDULER_ROLE_ARN)),
            body_bucket: take(BODY_BUCKET, value(BODY_BUCKET)),
            global_parallelism: DEFAULT_GLOBAL_PARALLELISM,
        };
        let mut invalid = Vec::new();
        match value(GLOBAL_PARALLELISM).map(|v| v.trim().parse::<u32>()) {
            None => {}
            Some(Ok(n)) if n > 0 => config.global_parallelism = n,
            Some(_) => invalid.push(GLOBAL_PARALLELISM),
        }
        if missing.is_empty() && invalid.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { missing, invalid })
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use super::*;

    /// An environment holding exactly `pairs`, for the `from_lookup` readers.
    pub(crate) fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn every_missing_variable_is_named_at_once() {
        let err = Config::from_lookup(lookup(&[
            (TABLE, "t"),
            (REGION, " "),
            (DELIVERY_QUEUE_ARN, "arn:d"),
            (DEAD_LETTER_QUEUE_ARN, "arn:dlq"),
            (SCHEDULER_ROLE_ARN, "arn:role"),
        ]))
        .unwrap_err();
        assert_eq!(
            err.missing,
            [
                DELIVERY_QUEUE_URL,
                ORDERED_QUEUE_URL,
                DEAD_LETTER_QUEUE_URL,
                REGION,
                SCHEDULE_GROUP,
                SECONDARY_SCHEDULE_GROUP,
                BODY_BUCKET
            ]
        );
        assert_eq!(
            err.to_string(),
            "missing environment variable(s): QPOST_DELIVERY_QUEUE_URL, QPOST_ORDERED_QUEUE_URL, QPOST_DEAD_LETTER_QUEUE_URL, AWS_REGION, QPOST_SCHEDULE_GROUP, QPOST_SECONDARY_SCHEDULE_GROUP, QPOST_BODY_BUCKET"
        );
    }

    #[test]
    fn a_complete_environment_reads_into_the_config() {
        let config = Config::from_lookup(lookup(&[
            (TABLE, "qpost"),
            (DELIVERY_QUEUE_URL, "https://sqs/d"),
            (ORDERED_QUEUE_URL, "https://sqs/o.fifo"),
            (DEAD_LETTER_QUEUE_URL, "https://sqs/dlq"),
            (DEFAULT_REGION, "eu-west-1"),
            (DELIVERY_QUEUE_ARN, "arn:aws:sqs:eu-west-1:1:d"),
            (DEAD_LETTER_QUEUE_ARN, "arn:aws:sqs:eu-west-1:1:dlq"),
            (SCHEDULE_GROUP, "qpost"),
            (SECONDARY_SCHEDULE_GROUP, "qpost-secondary"),
            (SCHEDULER_ROLE_ARN, "arn:aws:iam::1:role/s"),
            (BODY_BUCKET, "qpost-bodies"),
        ]))
        .unwrap();
        assert_eq!(config.table, "qpost");
        assert_eq!(config.region, "eu-west-1", "AWS_DEFAULT_REGION stands in");
        assert_eq!(config.schedule_group, "qpost");
        assert_eq!(config.secondary_schedule_group, "qpost-secondary");
        assert_eq!(config.global_parallelism, DEFAULT_GLOBAL_PARALLELISM);
    }

    #[test]
    fn an_unreadable_global_parallelism_is_named() {
        let err = Config::from_lookup(lookup(&[(GLOBAL_PARALLELISM, "many")])).unwrap_err();
        assert_eq!(err.invalid, [GLOBAL_PARALLELISM]);
        assert!(
            err.to_string()
                .ends_with("; invalid environment variable(s): QPOST_GLOBAL_PARALLELISM"),
            "{err}"
        );
    }
}
