//! Sharded listings. A listing's items are spread over [`SHARDS`] partitions (`MSG#00`…,
//! `DLQ#00`…, `EVT#00`…), each sorted by its sort key; a listing queries every shard in
//! key order from a bound, keeps what the caller accepts, and merges the shards. Each
//! shard stops once it has `want` accepted items, so the merged first `want` are exact.

use std::collections::HashMap;

use futures_util::{StreamExt, TryStreamExt, stream};

use super::item::{Item, s, str_attr};
use super::keys::{SHARDS, shard_partition};
use super::tx::{Expr, names};
use super::{CONCURRENCY, DynamoStore};
use crate::error::AwsError;

/// Largest page asked of one query.
const MAX_PAGE: usize = 1000;
/// Smallest page asked of one query (filters may drop most items).
const MIN_PAGE: usize = 32;

/// Which items a listing reads, and in which order.
pub struct Listing {
    /// A secondary index, or the table itself when `None`.
    pub index: Option<&'static str>,
    /// Partition and sort key attributes (of the index when one is given).
    pub pk: &'static str,
    pub sk: &'static str,
    /// Shard prefix: partitions are `<prefix>#00` … `<prefix>#15`.
    pub prefix: &'static str,
    /// Ascending sort-key order when true, descending when false.
    pub forward: bool,
    /// Exclusive sort-key bound in the listing's direction.
    pub after: Option<String>,
    /// Attributes to read (`#name` placeholders); all projected ones when `None`.
    pub projection: Option<&'static str>,
    /// A filter DynamoDB applies before returning items.
    pub filter: Option<Expr>,
}

impl Listing {
    fn key_condition(&self) -> String {
        let (pk, sk) = (self.pk, self.sk);
        match (&self.after, self.forward) {
            (None, _) => format!("#{pk} = :p"),
            (Some(_), true) => format!("#{pk} = :p AND #{sk} > :a"),
            (Some(_), false) => format!("#{pk} = :p AND #{sk} < :a"),
        }
    }
}

impl DynamoStore {
    /// Up to `want` items accepted by `keep` (`Ok(None)` skips one), in the listing's
    /// order across all shards.
    pub(crate) async fn list<T, F>(
        &self,
        l: &Listing,
        want: usize,
        keep: F,
    ) -> Result<Vec<T>, AwsError>
    where
        T: Send,
        F: Fn(&Item) -> Result<Option<T>, AwsError> + Send + Sync,
    {
        if want == 0 {
            return Ok(Vec::new());
        }
        let keep = &keep;
        let shards: Vec<Vec<(String, T)>> = stream::iter(0..SHARDS)
            .map(|shard| self.list_shard(l, shard, want, keep))
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        let mut all: Vec<(String, T)> = shards.into_iter().flatten().collect();
        if l.forward {
            all.sort_by(|a, b| a.0.cmp(&b.0));
        } else {
            all.sort_by(|a, b| b.0.cmp(&a.0));
        }
        all.truncate(want);
        Ok(all.into_iter().map(|(_, t)| t).collect())
    }

    async fn list_shard<T, F>(
        &self,
        l: &Listing,
        shard: u32,
        want: usize,
        keep: &F,
    ) -> Result<Vec<(String, T)>, AwsError>
    where
        F: Fn(&Item) -> Result<Option<T>, AwsError>,
    {
        let key_condition = l.key_condition();
        let filter = l.filter.as_ref().map(|f| f.text).unwrap_or_default();
        let mut values: HashMap<String, _> = l
            .filter
            .iter()
            .flat_map(|f| f.values.iter())
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        values.insert(":p".into(), s(shard_partition(l.prefix, shard)));
        if let Some(after) = &l.after {
            values.insert(":a".into(), s(after));
        }
        let page = want.saturating_add(1).clamp(MIN_PAGE, MAX_PAGE) as i32;
        let (mut out, mut start) = (Vec::new(), None);
        loop {
            let got = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(l.index.map(String::from))
                .key_condition_expression(&key_condition)
                .set_filter_expression(l.filter.as_ref().map(|f| f.text.to_string()))
                .set_projection_expression(l.projection.map(String::from))
                .set_expression_attribute_names(names(&[
                    &key_condition,
                    filter,
                    l.projection.unwrap_or_default(),
                ]))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(l.forward)
                .consistent_read(l.index.is_none())
                .limit(page)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| AwsError::sdk("Query", e))?;
            for item in got.items() {
                if let Some(v) = keep(item)? {
                    out.push((str_attr(item, l.sk)?.to_string(), v));
                    if out.len() >= want {
                        return Ok(out);
                    }
                }
            }
            match got.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}
