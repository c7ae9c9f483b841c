//! Queue use cases (`/v2/queues`, and the auto-creation of `/v2/enqueue`).
//!
//! Every change of a queue is a read-modify-write of its document followed by telling
//! admission about it, so changes are serialised by one in-process lock: the order the
//! store sees them is the order admission sees them, and a concurrent upsert and
//! auto-create cannot undo each other.

use std::sync::LazyLock;

use serde_json::Value;
use tokio::sync::Mutex;

use crate::Services;
use crate::error::{Error, Result};
use crate::flow::is_valid_name;
use crate::queue::{DEFAULT_PARALLELISM, Queue, QueueUpsert, QueueView};

/// Serialises queue changes (rare: upserts, pauses, first enqueues).
static EDITS: LazyLock<Mutex<()>> = LazyLock::new(|| Mutex::new(()));

/// Checks a queue name: alphanumerics, `-`, `_` and `.`.
pub fn check_name(name: &str) -> Result<()> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "invalid queue name {name:?}: use only alphanumerics, '-', '_' and '.'"
        )))
    }
}

/// Creates the queue with default settings if it does not exist (enqueue auto-creates).
pub async fn ensure(services: &Services, name: &str) -> Result<()> {
    check_name(name)?;
    if services.queues.get_queue(name).await?.is_some() {
        return Ok(());
    }
    let _edit = EDITS.lock().await;
    if services.queues.get_queue(name).await?.is_some() {
        return Ok(());
    }
    let queue = Queue::new(name, DEFAULT_PARALLELISM, services.clock.now_ms());
    save(services, &queue).await
}

async fn save(services: &Services, queue: &Queue) -> Result<()> {
    services.queues.put_queue(queue).await?;
    services.admission.queue_changed(queue).await
}

/// Parses the body of `POST /v2/queues`: `{"queueName", "parallelism"?, "paused"?}`.
pub fn parse_upsert(body: Option<&Value>) -> Result<QueueUpsert> {
    let Some(Value::Object(fields)) = body else {
        return Err(Error::bad_request(
            "the body must be a JSON object with a queueName",
        ));
    };
    let name = match fields.get("queueName") {
        Some(Value::String(name)) => name.clone(),
        _ => return Err(Error::bad_request("queueName must be a string")),
    };
    check_name(&name)?;
    let parallelism = match fields.get("parallelism") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    Error::bad_request(format!("parallelism must be a positive integer, got {v}"))
                })?,
        ),
    };
    let paused = match fields.get("paused") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(v) => {
            return Err(Error::bad_request(format!(
                "paused must be true or false, got {v}"
            )));
        }
    };
    Ok(QueueUpsert {
        name,
        parallelism,
        paused,
    })
}

/// `POST /v2/queues`: creates or updates a queue. A parallelism above the configured
/// maximum is refused with 412, as the hosted service does past a plan limit.
pub async fn upsert(services: &Services, req: QueueUpsert) -> Result<()> {
    check_name(&req.name)?;
    let max = services.limits.max_queue_parallelism;
    if let Some(p) = req.parallelism.filter(|p| *p > max) {
        return Err(Error::PreconditionFailed(format!(
            "parallelism {p} exceeds the maximum of {max}"
        )));
    }
    let _edit = EDITS.lock().await;
    let now = services.clock.now_ms();
    let mut queue = match services.queues.get_queue(&req.name).await? {
        Some(queue) => queue,
        None => Queue::new(&req.name, DEFAULT_PARALLELISM, now),
    };
    queue.parallelism = req.parallelism.unwrap_or(queue.parallelism);
    queue.paused = req.paused.unwrap_or(queue.paused);
    queue.updated_at = now;
    save(services, &queue).await
}

/// `POST /v2/queues/{name}/pause` and `/resume`. A paused queue still accepts messages.
pub async fn set_paused(services: &Services, name: &str, paused: bool) -> Result<()> {
    check_name(name)?;
    let _edit = EDITS.lock().await;
    let mut queue = load(services, name).await?;
    queue.paused = paused;
    queue.updated_at = services.clock.now_ms();
    save(services, &queue).await
}

async fn load(services: &Services, name: &str) -> Result<Queue> {
    services
        .queues
        .get_queue(name)
        .await?
        .ok_or_else(|| Error::not_found(format!("queue {name:?} not found")))
}

async fn view(services: &Services, queue: Queue) -> Result<QueueView> {
    let lag = services.queues.queue_lag(&queue.name).await?;
    Ok(QueueView { queue, lag })
}

/// Whether queue `name` exists and is paused (a deleted queue's messages are not held).
pub async fn is_paused(services: &Services, name: &str) -> Result<bool> {
    let queue = services.queues.get_queue(name).await?;
    Ok(queue.is_some_and(|q| q.paused))
}

/// `GET /v2/queues/{name}`, with its lag; 404 when unknown.
pub async fn get(services: &Services, name: &str) -> Result<QueueView> {
    check_name(name)?;
    let queue = load(services, name).await?;
    view(services, queue).await
}

/// `GET /v2/queues`, by name, each with its lag.
pub async fn list(services: &Services) -> Result<Vec<QueueView>> {
    let mut views = Vec::new();
    for queue in services.queues.list_queues().await? {
        views.push(view(services, queue).await?);
    }
    views.sort_by(|a, b| a.queue.name.cmp(&b.queue.name));
    Ok(views)
}

/// `DELETE /v2/queues/{name}`: succeeds whether or not the queue exists. Messages
/// already enqueued stay and are delivered (a later enqueue recreates the queue).
pub async fn delete(services: &Services, name: &str) -> Result<()> {
    check_name(name)?;
    let _edit = EDITS.lock().await;
    services.queues.delete_queue(name).await?;
    services.admission.queue_deleted(name).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<QueueUpsert> {
        parse_upsert(Some(&v))
    }

    #[test]
    fn an_upsert_body_takes_the_name_and_optional_settings() {
        let req = parse(json!({"queueName":"q-1","parallelism":3,"paused":true})).unwrap();
        assert_eq!(
            req,
            QueueUpsert {
                name: "q-1".into(),
                parallelism: Some(3),
                paused: Some(true)
            }
        );
        let req = parse(json!({"queueName":"q","parallelism":null})).unwrap();
        assert_eq!((req.parallelism, req.paused), (None, None));
    }

    #[test]
    fn bad_upsert_bodies_are_bad_requests() {
        for body in [
            json!({}),
            json!({"queueName": 3}),
            json!({"queueName": "bad name"}),
            json!({"queueName": "q", "parallelism": 0}),
            json!({"queueName": "q", "parallelism": -1}),
            json!({"queueName": "q", "parallelism": 1.5}),
            json!({"queueName": "q", "parallelism": "2"}),
            json!({"queueName": "q", "paused": "yes"}),
            json!(["q"]),
        ] {
            assert!(
                matches!(parse(body.clone()), Err(Error::BadRequest(_))),
                "{body}"
            );
        }
        assert!(matches!(parse_upsert(None), Err(Error::BadRequest(_))));
    }
}
