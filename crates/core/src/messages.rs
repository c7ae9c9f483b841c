//! Reading and cancelling pending messages (`/v2/messages`).

use crate::Services;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::filter::MessageFilter;
use crate::ids::MessageId;
use crate::message::Message;

/// Largest `count` of a bulk cancel.
pub const MAX_CANCEL_COUNT: usize = 500;

/// A pending or retrying message; 404 once delivered, dead-lettered or cancelled.
pub async fn get(services: &Services, id: &str) -> Result<Message> {
    let id = MessageId::from_string(id.to_string());
    services
        .messages
        .get(&id)
        .await?
        .ok_or_else(|| Error::not_found("message not found"))
}

/// Cancels one message: it is removed and never delivered again.
pub async fn cancel(services: &Services, id: &str) -> Result<u64> {
    let removed = remove_logged(services, vec![MessageId::from_string(id.to_string())]).await?;
    if removed == 0 {
        return Err(Error::not_found("message not found"));
    }
    Ok(removed)
}

/// Removes messages and logs `CANCEL_REQUESTED` and `CANCELED` for each that existed.
async fn remove_logged(services: &Services, ids: Vec<MessageId>) -> Result<u64> {
    let mut found = Vec::with_capacity(ids.len());
    for id in &ids {
        if let Some(m) = services.messages.get(id).await? {
            found.push(m);
        }
    }
    if found.is_empty() {
        return Ok(0);
    }
    let ids: Vec<MessageId> = found.iter().map(|m| m.id.clone()).collect();
    let removed = services.messages.remove(&ids).await?;
    let now = services.clock.now_ms();
    let events = found
        .iter()
        .flat_map(|m| Event::cancelled(m, now))
        .collect();
    services.events.append(events).await?;
    Ok(removed)
}

/// Parses the `count` of a bulk cancel: 1 to 500, no limit when absent.
pub fn cancel_count(value: Option<&str>) -> Result<usize> {
    let Some(value) = value else {
        return Ok(usize::MAX);
    };
    match value.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_CANCEL_COUNT).contains(&n) => Ok(n),
        _ => Err(Error::bad_request(format!(
            "count must be between 1 and {MAX_CANCEL_COUNT}, got {value:?}"
        ))),
    }
}

/// Cancels the listed ids, or up to `count` messages matching the filter (all when empty).
pub async fn cancel_many(services: &Services, filter: &MessageFilter, count: usize) -> Result<u64> {
    let ids: Vec<MessageId> = if filter.message_ids.is_empty() {
        services.messages.find(filter, count).await?
    } else {
        filter
            .message_ids
            .iter()
            .map(|id| MessageId::from_string(id.clone()))
            .collect()
    };
    remove_logged(services, ids).await
}
