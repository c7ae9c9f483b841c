//! Items to model values and back. An item's metadata is the model's JSON in `meta`;
//! bodies are binary attributes beside it; the few fields a write changes or a query
//! needs (`due`, `retried`, listing keys, `expires`, `ttl`) are attributes of their own and
//! win over the copy inside `meta`.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use qpost_core::events::Event;
use qpost_core::ids::MessageId;
use qpost_core::message::{DlqEntry, Message};
use qpost_core::ports::DedupKey;

use super::keys::{self, GSI1_PK, GSI1_SK, Key, PK, QUEUE, SK, TTL};
use crate::error::AwsError;

pub type Item = HashMap<String, AttributeValue>;

/// DynamoDB's item size limit: attribute names plus values.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

pub const META: &str = "meta";
pub const BODY: &str = "body";
pub const RESPONSE_BODY: &str = "response_body";
pub const DUE: &str = "due";
pub const RETRIED: &str = "retried";
pub const EXPIRES: &str = "expires";
pub const MESSAGE_ID: &str = "message_id";
pub const DOC: &str = "doc";
pub const KEYS: &str = "keys";

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn b(v: &[u8]) -> AttributeValue {
    AttributeValue::B(Blob::new(v))
}

/// An item holding only `key`.
pub fn key_item(key: &Key) -> Item {
    HashMap::from([(PK.into(), s(&key.pk)), (SK.into(), s(&key.sk))])
}

pub fn str_attr<'a>(item: &'a Item, name: &str) -> Result<&'a str, AwsError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(AwsError::Corrupt(format!(
            "string attribute {name} missing"
        ))),
    }
}

pub fn num_attr(item: &Item, name: &str) -> Result<i64, AwsError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| AwsError::Corrupt(format!("attribute {name} is not an integer: {v}"))),
        _ => Err(AwsError::Corrupt(format!(
            "number attribute {name} missing"
        ))),
    }
}

/// A binary attribute; absent means empty (DynamoDB items never hold empty values here).
fn bin_attr(item: &Item, name: &str) -> Vec<u8> {
    match item.get(name) {
        Some(AttributeValue::B(v)) => v.as_ref().to_vec(),
        _ => Vec::new(),
    }
}

fn put_bin(item: &mut Item, name: &str, v: &[u8]) {
    if !v.is_empty() {
        item.insert(name.into(), b(v));
    }
}

/// Unix seconds for the TTL attribute from Unix milliseconds.
fn ttl_secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// The message's item, refused when it exceeds the item limit.
pub fn message_item(m: &Message) -> Result<Item, AwsError> {
    let mut item = key_item(&keys::message(&m.id));
    item.insert(META.into(), s(serde_json::to_string(m)?));
    put_bin(&mut item, BODY, &m.body);
    item.insert(DUE.into(), n(m.not_before));
    item.insert(RETRIED.into(), n(i64::from(m.retried)));
    let listing = keys::message_listing(&m.id, m.created_at);
    item.insert(GSI1_PK.into(), s(listing.pk));
    item.insert(GSI1_SK.into(), s(listing.sk));
    if let Some(queue) = m.queue_name.as_deref().filter(|q| !q.is_empty()) {
        item.insert(QUEUE.into(), s(queue));
    }
    fits(item, || format!("message {}", m.id))
}

/// A message from its item, or from its `by_created` projection (then without body).
pub fn message_from_item(item: &Item) -> Result<Message, AwsError> {
    let mut m: Message = serde_json::from_str(str_attr(item, META)?)?;
    m.body = bin_attr(item, BODY);
    m.not_before = num_attr(item, DUE)?;
    m.retried = u32::try_from(num_attr(item, RETRIED)?)
        .map_err(|_| AwsError::Corrupt(format!("retried out of range in {}", m.id)))?;
    Ok(m)
}

/// The DLQ entry's item. An entry over the item limit keeps only as much of the response
/// body as fits: moving a message to the DLQ must not fail on the size of a diagnostic.
pub fn dlq_item(e: &DlqEntry) -> Result<Item, AwsError> {
    let key = keys::dlq(&e.dlq_id)
        .ok_or_else(|| AwsError::Corrupt(format!("{:?} is not a DLQ id", e.dlq_id)))?;
    let mut item = key_item(&key);
    item.insert(META.into(), s(serde_json::to_string(e)?));
    put_bin(&mut item, BODY, &e.message.body);
    item.insert(EXPIRES.into(), n(e.expires_at));
    item.insert(TTL.into(), n(ttl_secs(e.expires_at)));
    let without_response = item_size(&item) + RESPONSE_BODY.len();
    let room = MAX_ITEM_BYTES.saturating_sub(without_response);
    put_bin(
        &mut item,
        RESPONSE_BODY,
        &e.response_body[..e.response_body.len().min(room)],
    );
    fits(item, || format!("DLQ entry {}", e.dlq_id))
}

pub fn dlq_from_item(item: &Item) -> Result<DlqEntry, AwsError> {
    let mut e: DlqEntry = serde_json::from_str(str_attr(item, META)?)?;
    e.message.body = bin_attr(item, BODY);
    e.response_body = bin_attr(item, RESPONSE_BODY);
    e.expires_at = num_attr(item, EXPIRES)?;
    Ok(e)
}

/// The event's item, expiring `retention` after the event. An event over the item limit
/// drops its request and response bodies, then its headers: the log is a diagnostic and
/// must not fail the write it rides with.
pub fn event_item(e: &Event, index: usize, retention: Duration) -> Result<Item, AwsError> {
    let key = keys::event(&e.message_id, e.time, index);
    let ttl = ttl_secs(e.time).saturating_add(retention.as_secs() as i64);
    let build = |e: &Event| -> Result<Item, AwsError> {
        let mut item = key_item(&key);
        item.insert(META.into(), s(serde_json::to_string(e)?));
        item.insert(TTL.into(), n(ttl));
        Ok(item)
    };
    let item = build(e)?;
    if item_size(&item) <= MAX_ITEM_BYTES {
        return Ok(item);
    }
    let mut slim = e.clone();
    (slim.body, slim.response_body) = (None, None);
    let item = build(&slim)?;
    if item_size(&item) <= MAX_ITEM_BYTES {
        return Ok(item);
    }
    (slim.header, slim.response_header) = (None, None);
    fits(build(&slim)?, || {
        format!("event of message {}", e.message_id)
    })
}

pub fn event_from_item(item: &Item) -> Result<Event, AwsError> {
    Ok(serde_json::from_str(str_attr(item, META)?)?)
}

/// The deduplication key of message `id`, expiring with the key's window.
pub fn dedup_item(d: &DedupKey, id: &MessageId) -> Item {
    let mut item = key_item(&keys::dedup(&d.key));
    item.insert(MESSAGE_ID.into(), s(id.as_str()));
    item.insert(EXPIRES.into(), n(d.expires_at));
    item.insert(TTL.into(), n(ttl_secs(d.expires_at) + 1));
    item
}

/// A document (schedule, URL group, queue) as JSON under `kind`/`id`.
pub fn doc_item(kind: &str, id: &str, json: String) -> Result<Item, AwsError> {
    let mut item = key_item(&keys::doc(kind, id));
    item.insert(DOC.into(), s(json));
    fits(item, || format!("{kind} {id}"))
}

/// Refuses an item over the size limit, naming it with `what`.
fn fits(item: Item, what: impl FnOnce() -> String) -> Result<Item, AwsError> {
    let size = item_size(&item);
    if size > MAX_ITEM_BYTES {
        return Err(AwsError::TooLarge {
            what: what(),
            size,
            limit: MAX_ITEM_BYTES,
        });
    }
    Ok(item)
}

/// The size DynamoDB counts for an item, rounded up: names plus values, numbers at
/// their maximum of 21 bytes.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::N(_) => 21,
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use qpost_core::events::EventState;

    use super::*;

    fn message(body_len: usize) -> Message {
        Message::new("https://example.com".into(), vec![7; body_len], 3, 1_000)
    }

    #[test]
    fn messages_round_trip_through_their_item_with_due_and_retried_winning() {
        let mut m = message(3);
        m.queue_name = Some("q".into());
        let mut item = message_item(&m).unwrap();
        assert_eq!(item.get(QUEUE), Some(&s("q")));
        item.insert(DUE.into(), n(99));
        item.insert(RETRIED.into(), n(2));
        let back = message_from_item(&item).unwrap();
        assert_eq!((back.not_before, back.retried), (99, 2));
        assert_eq!(back.body, m.body);
    }

    #[test]
    fn a_message_over_the_item_limit_is_refused_by_name() {
        let m = message(MAX_ITEM_BYTES);
        let err = message_item(&m).unwrap_err();
        assert!(matches!(err, AwsError::TooLarge { .. }));
        assert!(err.to_string().contains(m.id.as_str()));
        assert!(message_item(&message(300 * 1024)).is_ok());
    }

    #[test]
    fn an_oversized_dlq_entry_keeps_only_the_response_body_that_fits() {
        let m = message(300 * 1024);
        let e = DlqEntry {
            dlq_id: "5-1".into(),
            message: m,
            response_status: Some(500),
            response_headers: Default::default(),
            response_body: vec![1; 300 * 1024],
            error: None,
            expires_at: 10_000,
        };
        let item = dlq_item(&e).unwrap();
        assert!(item_size(&item) <= MAX_ITEM_BYTES);
        let back = dlq_from_item(&item).unwrap();
        assert!(!back.response_body.is_empty() && back.response_body.len() < 300 * 1024);
        assert_eq!(back.message.body.len(), 300 * 1024);
        assert_eq!(num_attr(&item, TTL).unwrap(), 10);
    }

    #[test]
    fn an_oversized_event_drops_its_bodies_instead_of_failing() {
        let m = message(350 * 1024);
        let e = Event::created(&m);
        let item = event_item(&e, 0, Duration::from_secs(60)).unwrap();
        let back = event_from_item(&item).unwrap();
        assert_eq!(back.body, None);
        assert_eq!(back.state, EventState::Created);
        assert_eq!(num_attr(&item, TTL).unwrap(), 1 + 60);
    }
}
