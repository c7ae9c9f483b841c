//! Schedules, URL groups and queues: small JSON documents, one partition per kind sorted
//! by id, so a kind lists with one (paged) query. Queue lag is counted on the sparse
//! `by_queue` index, which holds only messages that belong to a queue.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::Select;
use qpost_core::ports::{QueueStore, ScheduleStore, TopicStore};
use qpost_core::queue::Queue;
use qpost_core::schedule::Schedule;
use qpost_core::topic::Topic;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::DynamoStore;
use super::item::{DOC, doc_item, s, str_attr};
use super::keys::{self, BY_QUEUE};
use super::tx::names;
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
        let mut out = Vec::with_capacity(pages.len());
        for item in pages {
            let item = item.map_err(|e| AwsError::sdk("Query", e))?;
            out.push(serde_json::from_str(str_attr(&item, DOC)?)?);
        }
        Ok(out)
    }
}

#[async_trait]
impl ScheduleStore for DynamoStore {
    async fn put_schedule(&self, schedule: &Schedule) -> qpost_core::Result<()> {
        Ok(self.put_doc(SCHEDULE, &schedule.id, schedule).await?)
    }

    async fn get_schedule(&self, id: &str) -> qpost_core::Result<Option<Schedule>> {
        Ok(self.get_doc(SCHEDULE, id).await?)
    }

    async fn list_schedules(&self) -> qpost_core::Result<Vec<Schedule>> {
        Ok(self.list_docs(SCHEDULE).await?)
    }

    async fn delete_schedule(&self, id: &str) -> qpost_core::Result<bool> {
        Ok(self.delete_present(&keys::doc(SCHEDULE, id)).await?)
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

impl DynamoStore {
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
