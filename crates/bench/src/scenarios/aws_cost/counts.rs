//! The request counts `qpost-aws-local --count-requests` serves, and what a phase cost:
//! the requests answered between two readings, by operation, with the event source's
//! receives split into those that returned records (billable per message) and the idle
//! long polls, and the requests the emulator failed counted apart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The event source's receive, which it makes whether records come or not.
const RECEIVE: &str = "event source sqs.ReceiveMessage";

/// What `/_emulator/requests` answers.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Snapshot {
    pub requests: Vec<Counted>,
    pub delivery: Totals,
    pub delivery_queue: Option<Depth>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Counted {
    pub sender: String,
    pub service: String,
    pub operation: String,
    pub count: u64,
    /// Of `count`, answered with a server error or not at all.
    #[serde(default)]
    pub failed: u64,
}

/// What the delivery queue's event source handled.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct Totals {
    pub batches: u64,
    pub records: u64,
    pub failed: u64,
}

impl Totals {
    /// Records deleted: handed to the function and not reported failed.
    pub fn deleted(&self) -> u64 {
        self.records.saturating_sub(self.failed)
    }
}

#[derive(Clone, Copy, Debug, Deserialize)]
pub struct Depth {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

impl Depth {
    pub fn empty(&self) -> bool {
        self.visible + self.in_flight + self.delayed == 0
    }
}

impl Snapshot {
    /// Answered requests, and failed ones, by `"<sender> <service>.<operation>"`.
    fn by_label(&self) -> BTreeMap<String, (u64, u64)> {
        let mut by = BTreeMap::new();
        for r in &self.requests {
            let label = format!("{} {}.{}", r.sender, r.service, r.operation);
            let entry = by.entry(label).or_insert((0, 0));
            entry.0 += r.count.saturating_sub(r.failed);
            entry.1 += r.failed;
        }
        by
    }
}

/// The billable requests between two snapshots, by operation, and the idle receives.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Cost {
    pub billable: BTreeMap<String, u64>,
    /// Receives that returned nothing (idle long polls of the queues).
    pub idle_receives: u64,
    /// Requests the emulator answered with a server error (sent again by the SDK).
    pub emulator_errors: u64,
}

impl Cost {
    /// Requests answered between `before` and `after`; of the event source's receives
    /// only those that returned records (`batches`) are billable per message.
    pub fn between(before: &Snapshot, after: &Snapshot) -> Self {
        let earlier = before.by_label();
        let batches = after
            .delivery
            .batches
            .saturating_sub(before.delivery.batches);
        let mut cost = Self::default();
        for (label, (answered, failed)) in after.by_label() {
            let (answered_before, failed_before) = earlier.get(&label).copied().unwrap_or_default();
            cost.emulator_errors += failed.saturating_sub(failed_before);
            let sent = answered.saturating_sub(answered_before);
            if label == RECEIVE {
                cost.idle_receives = sent.saturating_sub(batches);
                cost.billable.insert(label, sent.min(batches));
            } else if sent > 0 {
                cost.billable.insert(label, sent);
            }
        }
        cost
    }

    pub fn total(&self) -> u64 {
        self.billable.values().sum()
    }
}

/// `count` per message (0 when there were none).
pub fn per(count: u64, messages: u64) -> f64 {
    if messages == 0 {
        return 0.0;
    }
    count as f64 / messages as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(requests: &[(&str, &str, u64)], batches: u64) -> Snapshot {
        let requests = requests
            .iter()
            .map(|(sender, op, count)| {
                let (service, operation) = op.split_once('.').expect("service.operation");
                Counted {
                    sender: sender.to_string(),
                    service: service.into(),
                    operation: operation.into(),
                    count: *count,
                    failed: 0,
                }
            })
            .collect();
        Snapshot {
            requests,
            delivery: Totals {
                batches,
                records: batches,
                failed: 0,
            },
            delivery_queue: None,
        }
    }

    #[test]
    fn only_receives_that_returned_records_are_billed_and_the_rest_are_idle() {
        let before = snapshot(
            &[
                ("qpost", "dynamodb.GetItem", 1),
                ("event source", "sqs.ReceiveMessage", 40),
            ],
            0,
        );
        let after = snapshot(
            &[
                ("qpost", "dynamodb.GetItem", 3),
                ("qpost", "dynamodb.TransactWriteItems", 4),
                ("qpost", "sqs.SendMessage", 2),
                ("event source", "sqs.ReceiveMessage", 55),
                ("event source", "sqs.DeleteMessageBatch", 2),
            ],
            2,
        );
        let cost = Cost::between(&before, &after);
        assert_eq!(cost.billable[RECEIVE], 2);
        assert_eq!(cost.idle_receives, 13);
        assert_eq!(cost.billable["qpost dynamodb.GetItem"], 2);
        assert_eq!(cost.total(), 2 + 4 + 2 + 2 + 2);
        assert_eq!(per(cost.total(), 2), 6.0);
    }

    #[test]
    fn requests_the_emulator_failed_are_left_out_and_counted_apart() {
        let before = snapshot(&[("qpost", "dynamodb.TransactWriteItems", 10)], 0);
        let mut after = snapshot(&[("qpost", "dynamodb.TransactWriteItems", 15)], 0);
        after.requests[0].failed = 2;
        let cost = Cost::between(&before, &after);
        assert_eq!(cost.billable["qpost dynamodb.TransactWriteItems"], 3);
        assert_eq!(cost.emulator_errors, 2);
    }

    #[test]
    fn operations_with_no_new_requests_are_left_out() {
        let before = snapshot(&[("qpost", "ssm.GetParameter", 1)], 0);
        let after = snapshot(&[("qpost", "ssm.GetParameter", 1)], 0);
        assert_eq!(Cost::between(&before, &after), Cost::default());
    }

    #[test]
    fn the_counts_answer_is_read_as_a_snapshot() {
        let json = r#"{"requests":[{"sender":"qpost","service":"sqs","operation":"SendMessage","count":3}],
            "delivery":{"batches":1,"records":3,"failed":1},
            "delivery_queue":{"visible":0,"in_flight":1,"delayed":0}}"#;
        let s: Snapshot = serde_json::from_str(json).expect("valid");
        assert_eq!(s.by_label()["qpost sqs.SendMessage"], (3, 0));
        assert_eq!(s.delivery.deleted(), 2);
        assert!(!s.delivery_queue.expect("depth").empty());
    }
}
