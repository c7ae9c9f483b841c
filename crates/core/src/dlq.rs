//! The dead-letter queue use cases (`/v2/dlq`): list, read, delete and retry.

use crate::Services;
use crate::error::{Error, Result};
use crate::filter::DlqFilter;
use crate::ids::MessageId;
use crate::message::{DlqEntry, Origin};
use crate::ports::{NewMessage, Page};
use crate::publish::{PublishOptions, Published, store};

/// Default and largest page size of DLQ listings and bulk operations.
pub const MAX_PAGE: usize = 100;

/// Parses a page size: absent means [`MAX_PAGE`]; larger values are capped.
pub fn page_size(value: Option<&str>) -> Result<usize> {
    let Some(value) = value else {
        return Ok(MAX_PAGE);
    };
    match value.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n.min(MAX_PAGE)),
        _ => Err(Error::bad_request(format!(
            "count must be a positive integer, got {value:?}"
        ))),
    }
}

pub async fn list(
    services: &Services,
    filter: &DlqFilter,
    cursor: Option<&str>,
    count: usize,
) -> Result<Page<DlqEntry>> {
    let now = services.clock.now_ms();
    services
        .dlq
        .list_dlq(filter, cursor.filter(|c| !c.is_empty()), count, now)
        .await
}

pub async fn get(services: &Services, dlq_id: &str) -> Result<DlqEntry> {
    let now = services.clock.now_ms();
    services
        .dlq
        .get_dlq(dlq_id, now)
        .await?
        .ok_or_else(|| Error::not_found("dlq message not found"))
}

pub async fn delete(services: &Services, dlq_id: &str) -> Result<()> {
    match services.dlq.remove_dlq(&[dlq_id.to_string()]).await? {
        0 => Err(Error::not_found("dlq message not found")),
        _ => Ok(()),
    }
}

/// Deletes the listed ids, or one page of entries matching the filter; returns the
/// count and the cursor of the next page.
pub async fn delete_many(
    services: &Services,
    filter: &DlqFilter,
    cursor: Option<&str>,
    count: usize,
) -> Result<(u64, Option<String>)> {
    if !filter.dlq_ids.is_empty() {
        return Ok((services.dlq.remove_dlq(&filter.dlq_ids).await?, None));
    }
    let page = list(services, filter, cursor, count).await?;
    let ids: Vec<String> = page.items.iter().map(|e| e.dlq_id.clone()).collect();
    let deleted = if ids.is_empty() {
        0
    } else {
        services.dlq.remove_dlq(&ids).await?
    };
    Ok((deleted, page.cursor))
}

/// A new message from a DLQ entry: same destination, body and headers, a fresh id and
/// retry count, with any config the retry request carries applied on top.
fn revive(services: &Services, entry: &DlqEntry, overrides: &PublishOptions) -> NewMessage {
    let now = services.clock.now_ms();
    let mut message = entry.message.clone();
    message.id = MessageId::generate();
    message.retried = 0;
    message.created_at = now;
    message.origin = Origin::Publish;
    overrides.apply(&mut message, now);
    NewMessage {
        from_dlq: Some(entry.dlq_id.clone()),
        ..crate::publish::new(message, None)
    }
}

/// Retries one entry: it leaves the DLQ in the same write that creates the message.
pub async fn retry(
    services: &Services,
    dlq_id: &str,
    overrides: &PublishOptions,
) -> Result<Published> {
    let entry = get(services, dlq_id).await?;
    let mut published = store(services, vec![revive(services, &entry, overrides)]).await?;
    published
        .pop()
        .ok_or_else(|| Error::internal("the store returned no result"))
}

/// Retries the listed ids or one page of matching entries.
pub async fn retry_many(
    services: &Services,
    filter: &DlqFilter,
    cursor: Option<&str>,
    count: usize,
    overrides: &PublishOptions,
) -> Result<(Vec<Published>, Option<String>)> {
    let (entries, next) = if filter.dlq_ids.is_empty() {
        let page = list(services, filter, cursor, count).await?;
        (page.items, page.cursor)
    } else {
        let mut entries = Vec::new();
        for id in &filter.dlq_ids {
            entries.push(
                get(services, id)
                    .await
                    .map_err(|_| Error::not_found("Some messages were not found in the DLQ"))?,
            );
        }
        (entries, None)
    };
    let batch = entries
        .iter()
        .map(|e| revive(services, e, overrides))
        .collect();
    Ok((store(services, batch).await?, next))
}
