//! Schedules, URL groups, queues and flow-control keys: small JSON documents keyed by kind
//! and id.

use async_trait::async_trait;
use qpost_core::flow::limits::KeyLimits;
use qpost_core::ports::{QueueStore, ScheduleStore, TopicStore};
use qpost_core::queue::Queue;
use qpost_core::schedule::Schedule;
use qpost_core::topic::Topic;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{SqliteStore, StoreError};

const SCHEDULE: &str = "schedule";
const TOPIC: &str = "topic";
const QUEUE: &str = "queue";
const FLOW: &str = "flow";

/// A flow-control key's state as kept across restarts.
#[derive(serde::Serialize, serde::Deserialize)]
struct FlowDoc {
    key: String,
    limits: KeyLimits,
}

impl SqliteStore {
    /// Keeps the state of flow-control key `key` (its pause, pins and limits).
    pub async fn put_flow_limits(&self, key: &str, limits: &KeyLimits) -> Result<(), StoreError> {
        let doc = FlowDoc {
            key: key.to_string(),
            limits: limits.clone(),
        };
        self.put_doc(FLOW, key, &doc).await
    }

    /// Every kept flow-control key with its state, by key.
    pub async fn list_flow_limits(&self) -> Result<Vec<(String, KeyLimits)>, StoreError> {
        let docs: Vec<FlowDoc> = self.list_docs(FLOW).await?;
        Ok(docs.into_iter().map(|d| (d.key, d.limits)).collect())
    }

    async fn put_doc<T: Serialize>(
        &self,
        kind: &'static str,
        id: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let (id, json) = (id.to_string(), serde_json::to_string(value)?);
        self.run_write(move |c| {
            c.prepare_cached("INSERT OR REPLACE INTO docs (kind, id, value) VALUES (?1, ?2, ?3)")?
                .execute(params![kind, id, json])?;
            Ok(())
        })
        .await
    }

    async fn get_doc<T: DeserializeOwned + Send + 'static>(
        &self,
        kind: &'static str,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let id = id.to_string();
        self.read(move |c| {
            let raw: Option<String> = c
                .prepare_cached("SELECT value FROM docs WHERE kind = ?1 AND id = ?2")?
                .query_row(params![kind, id], |r| r.get(0))
                .optional()?;
            Ok(raw.map(|r| serde_json::from_str(&r)).transpose()?)
        })
        .await
    }

    async fn list_docs<T: DeserializeOwned + Send + 'static>(
        &self,
        kind: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        self.read(move |c| {
            let mut stmt =
                c.prepare_cached("SELECT value FROM docs WHERE kind = ?1 ORDER BY id")?;
            let rows = stmt.query_map([kind], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for raw in rows {
                out.push(serde_json::from_str(&raw?)?);
            }
            Ok(out)
        })
        .await
    }

    async fn delete_doc(&self, kind: &'static str, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.run_write(move |c| {
            let n = c
                .prepare_cached("DELETE FROM docs WHERE kind = ?1 AND id = ?2")?
                .execute(params![kind, id])?;
            Ok(n > 0)
        })
        .await
    }
}

#[async_trait]
impl ScheduleStore for SqliteStore {
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
        Ok(self.delete_doc(SCHEDULE, id).await?)
    }
}

#[async_trait]
impl TopicStore for SqliteStore {
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
        Ok(self.delete_doc(TOPIC, name).await?)
    }
}

#[async_trait]
impl QueueStore for SqliteStore {
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
        Ok(self.delete_doc(QUEUE, name).await?)
    }

    async fn queue_lag(&self, name: &str) -> qpost_core::Result<u64> {
        let name = name.to_string();
        let n = self
            .read(move |c| {
                let n: i64 = c
                    .prepare_cached("SELECT COUNT(*) FROM messages WHERE queue = ?1")?
                    .query_row([name], |r| r.get(0))?;
                Ok(n as u64)
            })
            .await?;
        Ok(n)
    }
}
