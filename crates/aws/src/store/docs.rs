//! Schedules, URL groups and queues: small JSON documents, one partition per kind sorted
//! by id, so a kind lists with one (paged) query. A schedule's body over the claim check's
//! threshold is an S3 object of its own (`super::bodies`), written before the document and
//! deleted once a delete or an update with another body replaced it. Queue lag is counted
//! on the sparse `by_queue` index, which holds only messages that belong to a queue.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnValue, Select};
use futures_util::{StreamExt, TryStreamExt, stream};
use qpost_core::ports::{QueueStore, ScheduleStore, TopicStore};
use qpost_core::queue::Queue;
use qpost_core::schedule::Schedule;
use qpost_core::topic::Topic;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::bodies::{Upload, schedule_body_key, spills};
use super::item::{BODY_REF, DOC, Item, Refs, doc_item, s, str_attr};
use super::keys::{self, BY_QUEUE};
use super::tx::names;
use super::{CONCURRENCY, DynamoStore};
use crate::error::AwsError;

const SCHEDULE: &str = "schedule";
const TOPIC: &str = "topic";
const QUEUE: &str = "queue";

impl DynamoStore {
    pub(crate) async fn put_doc<T: Serialize + Sync>(
        &self,
        kind: &str,
        id: &str,
        value: &T,
    ) -> Result<(), AwsError> {
        let item = doc_item(kind, id, serde_json::to_string(value)?)?;
        self.client
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| AwsError::sdk("PutItem", e))?;
        Ok(())
    }

    pub(crate) async fn get_doc<T: DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<T>, AwsError> {
        let item = self.get_item(&keys::doc(kind, id), None).await?;
        let doc = item.map(|i| serde_json::from_str(str_attr(&i, DOC)?).map_err(AwsError::from));
        doc.transpose()
    }

    pub(crate) async fn list_docs<T: DeserializeOwned>(
        &self,
        kind: &str,
    ) -> Result<Vec<T>, AwsError> {
        let items = self.doc_items(kind).await?;
        items
            .iter()
            .map(|item| Ok(serde_json::from_str(str_attr(item, DOC)?)?))
            .collect()
    }

    /// Every item of documents of `kind`, in id order.
    async fn doc_items(&self, kind: &str) -> Result<Vec<Item>, AwsError> {
        let condition = "#pk = :p";
        let pages = self
            .client
            .query()
            .table_name(self.table())
            .key_condition_expression(condition)
            .set_expression_attribute_names(names(&[condition]))
            .expression_attribute_values(":p", s(keys::doc_partition(kind)))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
        pages
            .into_iter()
            .map(|item| item.map_err(|e| AwsError::sdk("Query", e)))
            .collect()
    }
}

#[async_trait]
impl ScheduleStore for DynamoStore {
    async fn put_schedule(&self, schedule: &Schedule) -> qpost_core::Result<()> {
        Ok(self.put_schedule_doc(schedule).await?)
    }

    async fn get_schedule(&self, id: &str) -> qpost_core::Result<Option<Schedule>> {
        Ok(self.read_schedule(id).await?)
    }

    async fn list_schedules(&self) -> qpost_core::Result<Vec<Schedule>> {
        let items = self.doc_items(SCHEDULE).await?;
        let read: Vec<Option<Schedule>> = stream::iter(items)
            .map(|item| async move { self.schedule_from(&item).await })
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(read.into_iter().flatten().collect())
    }

    async fn delete_schedule(&self, id: &str) -> qpost_core::Result<bool> {
        // Deletes the body's object too, once the document is gone.
        Ok(self.delete_each(vec![keys::doc(SCHEDULE, id)]).await? == 1)
    }
}

#[async_trait]
impl TopicStore for DynamoStore {
    async fn put_topic(&self, topic: &Topic) -> qpost_core::Result<()> {
        Ok(self.put_doc(TOPIC, &topic.name, topic).await?)
    }

    async fn get_topic(&self, name: &str) -> qpost_core::Result<Option<Topic>> {
        Ok(self.get_doc(TOPIC, name).await?)
    }

    async fn list_topics(&self) -> qpost_core::Result<Vec<Topic>> {
        Ok(self.list_docs(TOPIC).await?)
    }

    async fn delete_topic(&self, name: &str) -> qpost_core::Result<bool> {
        Ok(self.delete_present(&keys::doc(TOPIC, name)).await?)
    }
}

#[async_trait]
impl QueueStore for DynamoStore {
    async fn put_queue(&self, queue: &Queue) -> qpost_core::Result<()> {
        Ok(self.put_doc(QUEUE, &queue.name, queue).await?)
    }

    async fn get_queue(&self, name: &str) -> qpost_core::Result<Option<Queue>> {
        Ok(self.get_doc(QUEUE, name).await?)
    }

    async fn list_queues(&self) -> qpost_core::Result<Vec<Queue>> {
        Ok(self.list_docs(QUEUE).await?)
    }

    async fn delete_queue(&self, name: &str) -> qpost_core::Result<bool> {
        Ok(self.delete_present(&keys::doc(QUEUE, name)).await?)
    }

    async fn queue_lag(&self, name: &str) -> qpost_core::Result<u64> {
        Ok(self.count_queue(name).await?)
    }
}

/// Reads of a schedule before giving up on a body object that keeps being replaced.
const SCHEDULE_READS: usize = 3;

impl DynamoStore {
    /// Stores `schedule`. A large body is written to its object first; the object of the
    /// body this replaces (the old document's, returned by the write) is deleted after.
    async fn put_schedule_doc(&self, schedule: &Schedule) -> Result<(), AwsError> {
        let object =
            spills(schedule.body.len()).then(|| schedule_body_key(&schedule.id, &schedule.body));
        let mut item = match &object {
            None => doc_item(SCHEDULE, &schedule.id, serde_json::to_string(schedule)?)?,
            Some(_) => {
                let slim = Schedule {
                    body: Vec::new(),
                    ..schedule.clone()
                };
                doc_item(SCHEDULE, &schedule.id, serde_json::to_string(&slim)?)?
            }
        };
        if let Some(key) = &object {
            let upload = Upload {
                key: key.clone(),
                bytes: &schedule.body,
            };
            self.bodies.put(&[upload]).await?;
            item.insert(BODY_REF.into(), s(key));
        }
        let old = self
            .client
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| AwsError::sdk("PutItem", e))?
            .attributes;
        let replaced = old.and_then(|o| Refs::of(&o).body);
        let replaced = replaced.filter(|k| Some(k) != object.as_ref());
        self.bodies.delete(replaced.into_iter().collect()).await;
        Ok(())
    }

    /// A listed schedule with its body; a body object that cannot be read (an update
    /// replaced it meanwhile) sends the schedule through [`Self::read_schedule`].
    async fn schedule_from(&self, item: &Item) -> Result<Option<Schedule>, AwsError> {
        let schedule: Schedule = serde_json::from_str(str_attr(item, DOC)?)?;
        let Some(object) = Refs::of(item).body else {
            return Ok(Some(schedule));
        };
        match self.bodies.get(&object).await {
            Ok(Some(body)) => Ok(Some(Schedule { body, ..schedule })),
            _ => self.read_schedule(&schedule.id).await,
        }
    }

    /// Schedule `id` with its body. When the body's object cannot be read, the document is
    /// read again: an update replaced it (read the new one), or it is gone (`None`), or it
    /// still names that object (the failure is reported).
    async fn read_schedule(&self, id: &str) -> Result<Option<Schedule>, AwsError> {
        let key = keys::doc(SCHEDULE, id);
        let mut failed: Option<(String, AwsError)> = None;
        for _ in 0..SCHEDULE_READS {
            let Some(item) = self.get_item(&key, None).await? else {
                return Ok(None);
            };
            let schedule: Schedule = serde_json::from_str(str_attr(&item, DOC)?)?;
            let Some(object) = Refs::of(&item).body else {
                return Ok(Some(schedule));
            };
            if let Some((seen, e)) = failed.take()
                && seen == object
            {
                return Err(e);
            }
            let error = match self.bodies.get(&object).await {
                Ok(Some(body)) => return Ok(Some(Schedule { body, ..schedule })),
                Ok(None) => AwsError::Corrupt(format!("schedule {id}'s body {object} is missing")),
                Err(e) => e,
            };
            failed = Some((object, error));
        }
        Err(failed.map_or_else(
            || AwsError::Corrupt(format!("schedule {id} could not be read")),
            |(_, e)| e,
        ))
    }

    /// Messages of queue `name`: a `COUNT` query on the keys-only `by_queue` index, paged
    /// (each page counts up to 1 MB of index entries).
    async fn count_queue(&self, name: &str) -> Result<u64, AwsError> {
        if name.is_empty() {
            return Ok(0); // index keys are never empty: no message has this queue
        }
        let condition = "#queue = :q";
        let (mut total, mut start) = (0u64, None);
        loop {
            let page = self
                .client
                .query()
                .table_name(self.table())
                .index_name(BY_QUEUE)
                .key_condition_expression(condition)
                .set_expression_attribute_names(names(&[condition]))
                .expression_attribute_values(":q", s(name))
                .select(Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| AwsError::sdk("Query", e))?;
            total += page.count().max(0) as u64;
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(total),
            }
        }
    }
}
