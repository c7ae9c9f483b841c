//! The signing keys: one item, swapped only by a conditional put, so two concurrent
//! rotations (two Lambdas) cannot both win. Read strongly consistent on every call: a
//! rotation done by one function is seen by the next request of any other.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use qpost_core::ports::KeyStore;
use qpost_core::signing::SigningKeys;

use super::item::{Item, KEYS, key_item, s, str_attr};
use super::keys;
use super::tx::{ABSENT, names};
use super::{DynamoStore, conditional};
use crate::error::AwsError;

const UNCHANGED: &str = "#keys = :expected";

impl DynamoStore {
    /// Makes sure signing keys exist: `forced` replaces whatever is stored, otherwise
    /// stored keys win and `default` is written only when there are none.
    pub async fn init_keys(
        &self,
        forced: Option<SigningKeys>,
        default: SigningKeys,
    ) -> Result<SigningKeys, AwsError> {
        let stored = self.stored_keys().await?;
        match (forced, stored) {
            (Some(f), Some(s)) if f == s => Ok(f),
            (Some(f), _) => {
                self.put_keys(&f, None).await?;
                Ok(f)
            }
            (None, Some(s)) => Ok(s),
            (None, None) => match self.put_keys(&default, Some((ABSENT, None))).await? {
                true => Ok(default),
                false => self.stored_keys().await?.ok_or(AwsError::MissingKeys),
            },
        }
    }

    async fn stored_keys(&self) -> Result<Option<SigningKeys>, AwsError> {
        let item = self.get_item(&keys::signing_keys(), None).await?;
        let keys = item.map(|i| serde_json::from_str(str_attr(&i, KEYS)?).map_err(AwsError::from));
        keys.transpose()
    }

    /// Writes `keys` when `condition` (with its expected value) holds; returns whether it did.
    async fn put_keys(
        &self,
        keys: &SigningKeys,
        condition: Option<(&'static str, Option<&SigningKeys>)>,
    ) -> Result<bool, AwsError> {
        let mut item: Item = key_item(&keys::signing_keys());
        item.insert(KEYS.into(), s(serde_json::to_string(keys)?));
        let expected = match condition.and_then(|(_, e)| e) {
            Some(e) => Some([(":expected".to_string(), s(serde_json::to_string(e)?))].into()),
            None => None,
        };
        let sent = self
            .client
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .set_condition_expression(condition.map(|(c, _)| c.to_string()))
            .set_expression_attribute_names(condition.and_then(|(c, _)| names(&[c])))
            .set_expression_attribute_values(expected)
            .send()
            .await;
        let refused = PutItemError::is_conditional_check_failed_exception;
        Ok(conditional(sent, "PutItem", refused)?.is_some())
    }
}

#[async_trait]
impl KeyStore for DynamoStore {
    async fn keys(&self) -> qpost_core::Result<SigningKeys> {
        Ok(self.stored_keys().await?.ok_or(AwsError::MissingKeys)?)
    }

    async fn swap_keys(
        &self,
        expected: &SigningKeys,
        next: &SigningKeys,
    ) -> qpost_core::Result<SigningKeys> {
        if self
            .put_keys(next, Some((UNCHANGED, Some(expected))))
            .await?
        {
            return Ok(next.clone());
        }
        Ok(self.stored_keys().await?.ok_or(AwsError::MissingKeys)?)
    }
}
