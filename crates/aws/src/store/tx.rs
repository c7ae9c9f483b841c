//! Transactions: writes that must land together (a message with its deduplication key and
//! CREATED event; a transition with its DLQ entry and spawned messages) sent as one
//! `TransactWriteItems`, each write tagged with its role so that a cancellation tells
//! which condition refused. Conflicts with concurrent transactions on the same items
//! (real DynamoDB only; the emulator serialises everything) are retried with backoff.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::DynamoStore;
use super::item::{Item, key_item};
use super::keys::Key;
use crate::error::AwsError;

/// DynamoDB's limit of writes in one transaction.
pub const MAX_TX_ITEMS: usize = 100;
/// Attempts of a transaction that keeps hitting conflicts or throttling.
const MAX_ATTEMPTS: u32 = 5;
/// Cancellation reasons worth another attempt after a pause.
const TRANSIENT: &[&str] = &[
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
];

/// The condition "no item with this key exists".
pub const ABSENT: &str = "attribute_not_exists(#pk)";
/// The condition "the item exists".
pub const PRESENT: &str = "attribute_exists(#pk)";

/// What a write in a transaction stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Message,
    Dedup,
    FromDlq,
    DlqEntry,
    Spawned,
    Event,
}

/// An expression with its `:value` placeholders; `#name` placeholders stand for the
/// attribute of the same name and are filled in by [`names`].
#[derive(Clone, Debug)]
pub struct Expr {
    pub text: &'static str,
    pub values: Vec<(&'static str, AttributeValue)>,
}

impl Expr {
    pub fn new(text: &'static str) -> Self {
        Self {
            text,
            values: Vec::new(),
        }
    }

    pub fn value(mut self, name: &'static str, v: AttributeValue) -> Self {
        self.values.push((name, v));
        self
    }
}

/// `#attr` → `attr` for every placeholder in `texts`; `None` when there is none
/// (DynamoDB refuses empty and unused name maps alike).
pub fn names(texts: &[&str]) -> Option<HashMap<String, String>> {
    let mut out = HashMap::new();
    for text in texts {
        for part in text.split('#').skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(format!("#{name}"), name);
            }
        }
    }
    Some(out).filter(|m| !m.is_empty())
}

/// The `:value` map of expressions; `None` when empty.
pub fn values<'a>(
    exprs: impl IntoIterator<Item = &'a Expr>,
) -> Option<HashMap<String, AttributeValue>> {
    let out: HashMap<String, AttributeValue> = exprs
        .into_iter()
        .flat_map(|e| e.values.iter())
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Some(out).filter(|m| !m.is_empty())
}

/// A transaction being assembled.
pub struct Tx {
    table: String,
    writes: Vec<(Role, TransactWriteItem)>,
}

/// How a transaction ended when it did not fail.
pub enum Outcome {
    Committed,
    /// Conditions refused it; nothing was written. The refusing writes' roles, with the
    /// item they found when asked for.
    Refused(Vec<(Role, Option<Item>)>),
}

impl Outcome {
    pub fn refused(&self, role: Role) -> bool {
        matches!(self, Self::Refused(r) if r.iter().any(|(x, _)| *x == role))
    }

    /// The item found by the refusing write of `role`.
    pub fn found(&self, role: Role) -> Option<&Item> {
        match self {
            Self::Refused(r) => r.iter().find(|(x, _)| *x == role)?.1.as_ref(),
            Self::Committed => None,
        }
    }
}

impl Tx {
    pub fn new(table: &str) -> Self {
        Self {
            table: table.to_string(),
            writes: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Puts `item`, under `condition` when given; `return_old` asks a refusal to carry
    /// the item that refused.
    pub fn put(
        &mut self,
        role: Role,
        item: Item,
        condition: Option<Expr>,
        return_old: bool,
    ) -> Result<(), AwsError> {
        let cond = condition.as_ref();
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(cond.map(|c| c.text.to_string()))
            .set_expression_attribute_names(cond.and_then(|c| names(&[c.text])))
            .set_expression_attribute_values(values(cond))
            .set_return_values_on_condition_check_failure(
                return_old.then_some(ReturnValuesOnConditionCheckFailure::AllOld),
            )
            .build()
            .map_err(|e| AwsError::Build("Put", e))?;
        self.push(role, TransactWriteItem::builder().put(put).build());
        Ok(())
    }

    pub fn delete(
        &mut self,
        role: Role,
        key: &Key,
        condition: Option<Expr>,
    ) -> Result<(), AwsError> {
        self.delete_or_show(role, key, condition, false)
    }

    /// Deletes the item at `key` under `condition`; `return_old` asks a refusal to carry the
    /// item that refused (how a removal learns which objects an item names).
    pub fn delete_or_show(
        &mut self,
        role: Role,
        key: &Key,
        condition: Option<Expr>,
        return_old: bool,
    ) -> Result<(), AwsError> {
        let cond = condition.as_ref();
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .set_condition_expression(cond.map(|c| c.text.to_string()))
            .set_expression_attribute_names(cond.and_then(|c| names(&[c.text])))
            .set_expression_attribute_values(values(cond))
            .set_return_values_on_condition_check_failure(
                return_old.then_some(ReturnValuesOnConditionCheckFailure::AllOld),
            )
            .build()
            .map_err(|e| AwsError::Build("Delete", e))?;
        self.push(role, TransactWriteItem::builder().delete(delete).build());
        Ok(())
    }

    /// Updates the item at `key` with `set` when `condition` holds.
    pub fn update(
        &mut self,
        role: Role,
        key: &Key,
        set: Expr,
        condition: Expr,
    ) -> Result<(), AwsError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .update_expression(set.text)
            .condition_expression(condition.text)
            .set_expression_attribute_names(names(&[set.text, condition.text]))
            .set_expression_attribute_values(values([&set, &condition]))
            .build()
            .map_err(|e| AwsError::Build("Update", e))?;
        self.push(role, TransactWriteItem::builder().update(update).build());
        Ok(())
    }

    /// Drops the writes of `roles` (to re-run what remains after a refusal).
    pub fn drop_roles(&mut self, roles: &[Role]) {
        self.writes.retain(|(role, _)| !roles.contains(role));
    }

    fn push(&mut self, role: Role, write: TransactWriteItem) {
        self.writes.push((role, write));
    }

    fn items(&self) -> Vec<TransactWriteItem> {
        self.writes.iter().map(|(_, w)| w.clone()).collect()
    }

    /// Roles refused by the cancellation `reasons`, with the items they found.
    fn refusals(
        &self,
        reasons: &[aws_sdk_dynamodb::types::CancellationReason],
    ) -> Vec<(Role, Option<Item>)> {
        self.writes
            .iter()
            .zip(reasons)
            .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
            .map(|((role, _), r)| (*role, r.item().cloned()))
            .collect()
    }
}

impl DynamoStore {
    /// Runs `tx` as one transaction. Refusals by conditions are an outcome; conflicts are
    /// retried a few times, then an error (retryable).
    pub(crate) async fn commit(&self, tx: &Tx) -> Result<Outcome, AwsError> {
        if tx.writes.len() > MAX_TX_ITEMS {
            return Err(AwsError::Cancelled(format!(
                "{} writes, over the {MAX_TX_ITEMS} a transaction holds",
                tx.writes.len()
            )));
        }
        for attempt in 1..=MAX_ATTEMPTS {
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(tx.items()))
                .send()
                .await;
            let err = match sent {
                Ok(_) => return Ok(Outcome::Committed),
                Err(e) => e,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
                err.as_service_error()
            else {
                return Err(AwsError::sdk("TransactWriteItems", err));
            };
            let reasons = cancel.cancellation_reasons();
            let refused = tx.refusals(reasons);
            if !refused.is_empty() {
                return Ok(Outcome::Refused(refused));
            }
            let codes: Vec<&str> = reasons.iter().filter_map(|r| r.code()).collect();
            if !codes.iter().any(|c| TRANSIENT.contains(c)) {
                return Err(AwsError::Cancelled(codes.join(", ")));
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
        Err(AwsError::Conflict(MAX_ATTEMPTS))
    }
}

/// A randomised pause that doubles with each attempt, so two conflicting writers drift apart.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = 20u64 << attempt.min(6);
    Duration::from_millis(ceiling / 2 + rand::random_range(0..=ceiling / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_name_their_attributes_once() {
        let got = names(&[
            "attribute_exists(#pk) AND #retried < :r",
            "SET #due = :d, #retried = :r",
        ])
        .unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got["#retried"], "retried");
        assert_eq!(names(&["size < :x"]), None);
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        assert!(backoff(1) <= Duration::from_millis(40));
        assert!(backoff(5) >= Duration::from_millis(320));
        assert!(backoff(50) <= Duration::from_millis(1280));
    }
}
