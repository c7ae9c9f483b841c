//! Flow-control key items: per key, one item with the key's limits, pause and rate window
//! (`state`: the JSON of the shared model, `qpost_core::flow::limits::KeyLimits`), the
//! attempts in flight as leases (`leases`: a map holder → expiry, Unix ms) and a `version`
//! that every write increments. Writes of the whole state are conditional on the version
//! they read (optimistic concurrency); releasing a lease removes only that map entry, and
//! increments the version too, so a writer holding an older read cannot bring it back.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use qpost_core::flow::limits::KeyLimits;

use super::item::{Item, key_item, n, num_attr, s, str_attr};
use super::keys::{self, FLOW_SHARDS, PK, SK};
use super::listing::Listing;
use super::tx::{ABSENT, names};
use super::{DynamoStore, conditional};
use crate::error::AwsError;

/// The key's limits model, as JSON.
pub const STATE: &str = "state";
/// The in-flight leases: a map holder → expiry (Unix ms).
pub const LEASES: &str = "leases";
/// Incremented by every write; 0 stands for "not stored yet".
pub const VERSION: &str = "version";

const WRITE: &str = "SET #state = :state, #leases = :leases, #version = :next";
const SAME_VERSION: &str = "#version = :version";
const RELEASE: &str = "REMOVE #leases.#holder ADD #version :one";
const HELD: &str = "attribute_exists(#leases.#holder)";

/// One flow-control key's stored state; see the module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowItem {
    /// The flow-control key's name.
    pub key: String,
    pub limits: KeyLimits,
    /// Holder (a message id) → when its lease expires (Unix ms).
    pub leases: BTreeMap<String, i64>,
    /// The version read; 0 when the item does not exist yet.
    pub version: i64,
}

impl FlowItem {
    /// A key with no stored item yet.
    pub fn new(key: &str) -> Self {
        Self {
            key: key.to_string(),
            ..Self::default()
        }
    }

    /// Leases that have not expired at `now`.
    pub fn live_leases(&self, now: i64) -> impl Iterator<Item = (&String, &i64)> {
        self.leases.iter().filter(move |(_, expiry)| **expiry > now)
    }
}

fn leases_attr(leases: &BTreeMap<String, i64>) -> AttributeValue {
    AttributeValue::M(leases.iter().map(|(h, t)| (h.clone(), n(*t))).collect())
}

fn leases_from(item: &Item) -> Result<BTreeMap<String, i64>, AwsError> {
    let Some(AttributeValue::M(map)) = item.get(LEASES) else {
        return Ok(BTreeMap::new());
    };
    map.iter()
        .map(|(holder, expiry)| match expiry {
            AttributeValue::N(v) => v.parse().map(|t| (holder.clone(), t)).map_err(|_| {
                AwsError::Corrupt(format!("lease expiry of {holder} is not an integer: {v}"))
            }),
            _ => Err(AwsError::Corrupt(format!(
                "lease expiry of {holder} is not a number"
            ))),
        })
        .collect()
}

fn flow_from_item(item: &Item) -> Result<FlowItem, AwsError> {
    Ok(FlowItem {
        key: str_attr(item, SK)?.to_string(),
        limits: serde_json::from_str(str_attr(item, STATE)?)?,
        leases: leases_from(item)?,
        version: num_attr(item, VERSION)?,
    })
}

/// Whether a conditional `UpdateItem` applied: true when written, false when its condition
/// refused it, an error otherwise.
fn applied<O>(
    sent: Result<O, aws_sdk_dynamodb::error::SdkError<UpdateItemError>>,
) -> Result<bool, AwsError> {
    let refused = UpdateItemError::is_conditional_check_failed_exception;
    Ok(conditional(sent, "UpdateItem", refused)?.is_some())
}

impl DynamoStore {
    /// The item of flow-control key `key`, read strongly consistent.
    pub async fn get_flow(&self, key: &str) -> Result<Option<FlowItem>, AwsError> {
        let item = self.get_item(&keys::flow(key), None).await?;
        item.as_ref().map(flow_from_item).transpose()
    }

    /// Writes `item` as version `item.version + 1` if the stored version is still
    /// `item.version` (or, for 0, nothing is stored); false when another write came first.
    pub async fn put_flow(&self, item: &FlowItem) -> Result<bool, AwsError> {
        let condition = if item.version == 0 {
            ABSENT
        } else {
            SAME_VERSION
        };
        let mut values = HashMap::from([
            (
                ":state".to_string(),
                s(serde_json::to_string(&item.limits)?),
            ),
            (":leases".to_string(), leases_attr(&item.leases)),
            (":next".to_string(), n(item.version + 1)),
        ]);
        if item.version != 0 {
            values.insert(":version".into(), n(item.version));
        }
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&keys::flow(&item.key))))
            .update_expression(WRITE)
            .condition_expression(condition)
            .set_expression_attribute_names(names(&[WRITE, condition]))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        applied(sent)
    }

    /// Removes `holder`'s lease under `key`; false when it held none (released already,
    /// reclaimed after it expired, or never granted).
    pub async fn release_lease(&self, key: &str, holder: &str) -> Result<bool, AwsError> {
        // The holder is a map key, not an attribute name `names` could derive.
        let attribute_names = HashMap::from([
            ("#leases".to_string(), LEASES.to_string()),
            ("#holder".to_string(), holder.to_string()),
            ("#version".to_string(), VERSION.to_string()),
        ]);
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(&keys::flow(key))))
            .update_expression(RELEASE)
            .condition_expression(HELD)
            .set_expression_attribute_names(Some(attribute_names))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        applied(sent)
    }

    /// Every flow-control key's item, by name within each shard (16 consistent queries).
    pub async fn list_flows(&self) -> Result<Vec<FlowItem>, AwsError> {
        let listing = Listing {
            index: None,
            pk: PK,
            sk: SK,
            prefix: FLOW_SHARDS,
            forward: true,
            after: None,
            projection: None,
            filter: None,
        };
        self.list(&listing, usize::MAX, |item| flow_from_item(item).map(Some))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_item_reads_back_its_leases_and_version() {
        let mut item = key_item(&keys::flow("k"));
        item.insert(STATE.into(), s("{\"paused\":true}"));
        let leases = BTreeMap::from([("msg_a".to_string(), 5), ("msg_b".to_string(), 9)]);
        item.insert(LEASES.into(), leases_attr(&leases));
        item.insert(VERSION.into(), n(3));
        let back = flow_from_item(&item).unwrap();
        assert_eq!((back.key.as_str(), back.version), ("k", 3));
        assert_eq!(back.leases, leases);
        assert!(back.limits.is_paused());
        assert_eq!(
            back.live_leases(5).count(),
            1,
            "a lease expiring now is over"
        );
    }

    #[test]
    fn a_lease_that_is_not_a_number_is_reported_as_corrupt() {
        let mut item = key_item(&keys::flow("k"));
        item.insert(STATE.into(), s("{}"));
        item.insert(
            LEASES.into(),
            AttributeValue::M(HashMap::from([("msg_a".to_string(), s("soon"))])),
        );
        item.insert(VERSION.into(), n(1));
        assert!(matches!(flow_from_item(&item), Err(AwsError::Corrupt(_))));
    }
}
