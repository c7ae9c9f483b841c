//! Items to model values and back. An item's metadata is the model's JSON in `meta`;
//! bodies are binary attributes beside it, or, over the claim check's threshold, the key of
//! an S3 object (`body_ref`, `response_ref`; [`super::bodies`]) with the object to write
//! first; the few fields a write changes or a query needs (`due`, `retried`, listing keys,
//! `expires`, `ttl`) are attributes of their own and win over the copy inside `meta`.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use qpost_core::events::Event;
use qpost_core::ids::MessageId;
use qpost_core::message::{DlqEntry, Message};
use qpost_core::ports::DedupKey;

use super::bodies::{Upload, dlq_body_key, dlq_response_key, message_body_key, spills};
use super::keys::{self, GSI1_PK, GSI1_SK, Key, PK, QUEUE, SK, TTL};
use crate::error::AwsError;

pub type Item = HashMap<String, AttributeValue>;

/// DynamoDB's item size limit: attribute names plus values.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

pub const META: &str = "meta";
pub const BODY: &str = "body";
pub const RESPONSE_BODY: &str = "response_body";
/// The S3 key of a body kept out of the item (the claim check).
pub const BODY_REF: &str = "body_ref";
/// The S3 key of a DLQ entry's response body kept out of the item.
pub const RESPONSE_REF: &str = "response_ref";
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

/// The S3 objects an item names instead of holding their bodies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refs {
    pub body: Option<String>,
    pub response: Option<String>,
}

impl Refs {
    pub fn of(item: &Item) -> Self {
        let key = |name: &str| match item.get(name) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        };
        Self {
            body: key(BODY_REF),
            response: key(RESPONSE_REF),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.body.is_none() && self.response.is_none()
    }

    /// Every object key, to delete once the item is gone.
    pub fn keys(self) -> Vec<String> {
        self.body.into_iter().chain(self.response).collect()
    }
}

/// An item to write, and the objects that must be written before it.
#[derive(Debug)]
pub struct Built<'a> {
    pub item: Item,
    pub uploads: Vec<Upload<'a>>,
}

/// Keeps `body` in the item under `inline`, or, when it spills, names the object `key`
/// under `reference` and adds the object's upload.
fn place<'a>(
    built: &mut Built<'a>,
    (inline, reference): (&str, &str),
    key: impl FnOnce() -> String,
    body: &'a [u8],
) {
    if spills(body.len()) {
        let key = key();
        built.item.insert(reference.into(), s(&key));
        built.uploads.push(Upload { key, bytes: body });
    } else {
        put_bin(&mut built.item, inline, body);
    }
}

/// Unix seconds for the TTL attribute from Unix milliseconds.
fn ttl_secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// The message's item (its body inline, or its object to write first), refused when it
/// still exceeds the item limit (metadata alone that large).
pub fn message_item(m: &Message) -> Result<Built<'_>, AwsError> {
    let mut built = Built {
        item: key_item(&keys::message(&m.id)),
        uploads: Vec::new(),
    };
    place(
        &mut built,
        (BODY, BODY_REF),
        || message_body_key(&m.id),
        &m.body,
    );
    let item = &mut built.item;
    item.insert(META.into(), s(serde_json::to_string(m)?));
    item.insert(DUE.into(), n(m.not_before));
    item.insert(RETRIED.into(), n(i64::from(m.retried)));
    let listing = keys::message_listing(&m.id, m.created_at);
    item.insert(GSI1_PK.into(), s(listing.pk));
    item.insert(GSI1_SK.into(), s(listing.sk));
    if let Some(queue) = m.queue_name.as_deref().filter(|q| !q.is_empty()) {
        item.insert(QUEUE.into(), s(queue));
    }
    built.item = fits(built.item, || format!("message {}", m.id))?;
    Ok(built)
}

/// A message from its item, or from its `by_created` projection (then without body). A body
/// kept in S3 is left empty: the caller redeems [`Refs::of`] the item.
pub fn message_from_item(item: &Item) -> Result<Message, AwsError> {
    let mut m: Message = serde_json::from_str(str_attr(item, META)?)?;
    m.body = bin_attr(item, BODY);
    m.not_before = num_attr(item, DUE)?;
    m.retried = u32::try_from(num_attr(item, RETRIED)?)
        .map_err(|_| AwsError::Corrupt(format!("retried out of range in {}", m.id)))?;
    Ok(m)
}

/// The DLQ entry's item, with objects of its own for large bodies (never its message's: an
/// object belongs to one item). An entry still over the item limit keeps only as much of an
/// inline response body as fits: moving a message to the DLQ must not fail on the size of a
/// diagnostic.
pub fn dlq_item(e: &DlqEntry) -> Result<Built<'_>, AwsError> {
    let key = keys::dlq(&e.dlq_id)
        .ok_or_else(|| AwsError::Corrupt(format!("{:?} is not a DLQ id", e.dlq_id)))?;
    let mut built = Built {
        item: key_item(&key),
        uploads: Vec::new(),
    };
    built.item.insert(META.into(), s(serde_json::to_string(e)?));
    place(
        &mut built,
        (BODY, BODY_REF),
        || dlq_body_key(&e.dlq_id),
        &e.message.body,
    );
    built.item.insert(EXPIRES.into(), n(e.expires_at));
    built.item.insert(TTL.into(), n(ttl_secs(e.expires_at)));
    let without_response = item_size(&built.item) + RESPONSE_BODY.len();
    let room = MAX_ITEM_BYTES.saturating_sub(without_response);
    let response = &e.response_body;
    let kept = if spills(response.len()) {
        &response[..]
    } else {
        &response[..response.len().min(room)]
    };
    place(
        &mut built,
        (RESPONSE_BODY, RESPONSE_REF),
        || dlq_response_key(&e.dlq_id),
        kept,
    );
    built.item = fits(built.item, || format!("DLQ entry {}", e.dlq_id))?;
    Ok(built)
}

/// A DLQ entry from its item; bodies kept in S3 are left empty (see [`message_from_item`]).
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

    use super::super::bodies::INLINE_MAX;
    use super::*;

    fn message(body_len: usize) -> Message {
        Message::new("https://example.com".into(), vec![7; body_len], 3, 1_000)
    }

    #[test]
    fn messages_round_trip_through_their_item_with_due_and_retried_winning() {
        let mut m = message(3);
        m.queue_name = Some("q".into());
        let built = message_item(&m).unwrap();
        assert!(built.uploads.is_empty(), "a small body stays inline");
        let mut item = built.item;
        assert_eq!(item.get(QUEUE), Some(&s("q")));
        item.insert(DUE.into(), n(99));
        item.insert(RETRIED.into(), n(2));
        let back = message_from_item(&item).unwrap();
        assert_eq!((back.not_before, back.retried), (99, 2));
        assert_eq!(back.body, m.body);
        assert!(Refs::of(&item).is_empty());
    }

    #[test]
    fn a_body_at_the_threshold_stays_in_the_item() {
        let m = message(INLINE_MAX);
        let built = message_item(&m).unwrap();
        assert!(built.uploads.is_empty());
        assert_eq!(message_from_item(&built.item).unwrap().body, m.body);
    }

    #[test]
    fn a_body_over_the_threshold_is_named_by_the_item_and_uploaded_first() {
        let m = message(INLINE_MAX + 1);
        let built = message_item(&m).unwrap();
        let key = message_body_key(&m.id);
        assert_eq!(
            built.uploads,
            [Upload {
                key: key.clone(),
                bytes: &m.body
            }]
        );
        assert_eq!(built.item.get(BODY), None);
        assert_eq!(Refs::of(&built.item).body, Some(key));
        assert!(item_size(&built.item) < 2048, "the item keeps only the key");
        assert!(message_from_item(&built.item).unwrap().body.is_empty());
    }

    #[test]
    fn a_message_larger_than_an_item_fits_once_its_body_is_in_s3() {
        let m = message(10 << 20);
        assert!(message_item(&m).is_ok());
    }

    #[test]
    fn a_message_whose_metadata_alone_exceeds_the_item_limit_is_refused_by_name() {
        let mut m = message(3);
        m.headers.append("X-Huge", "h".repeat(MAX_ITEM_BYTES));
        let err = message_item(&m).unwrap_err();
        assert!(matches!(err, AwsError::TooLarge { .. }));
        assert!(err.to_string().contains(m.id.as_str()));
    }

    fn entry(body_len: usize, response_len: usize) -> DlqEntry {
        DlqEntry {
            dlq_id: "5-1".into(),
            message: message(body_len),
            response_status: Some(500),
            response_headers: Default::default(),
            response_body: vec![1; response_len],
            error: None,
            expires_at: 10_000,
        }
    }

    #[test]
    fn a_dlq_entry_keeps_small_bodies_inline() {
        let e = entry(10, 20);
        let built = dlq_item(&e).unwrap();
        assert!(built.uploads.is_empty());
        let back = dlq_from_item(&built.item).unwrap();
        assert_eq!(num_attr(&built.item, TTL).unwrap(), 10);
        assert_eq!(back.message.body, e.message.body);
        assert_eq!(back.response_body, e.response_body);
    }

    #[test]
    fn a_dlq_entry_writes_each_large_body_to_an_object_of_its_own() {
        let e = entry(900 * 1024, 300 * 1024);
        let built = dlq_item(&e).unwrap();
        let keys: Vec<&str> = built.uploads.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(keys, ["dlq/5-1/body", "dlq/5-1/response"]);
        assert_eq!(built.uploads[1].bytes.len(), 300 * 1024, "kept whole");
        assert_eq!(
            Refs::of(&built.item).keys(),
            ["dlq/5-1/body", "dlq/5-1/response"]
        );
        let back = dlq_from_item(&built.item).unwrap();
        assert!(back.message.body.is_empty() && back.response_body.is_empty());
    }

    #[test]
    fn an_oversized_dlq_entry_keeps_only_the_inline_response_body_that_fits() {
        let mut e = entry(10, INLINE_MAX);
        let huge = "h".repeat(MAX_ITEM_BYTES - 4096);
        e.response_headers.append("X-Huge", huge);
        let built = dlq_item(&e).unwrap();
        assert!(item_size(&built.item) <= MAX_ITEM_BYTES);
        let back = dlq_from_item(&built.item).unwrap();
        assert!(!back.response_body.is_empty() && back.response_body.len() < INLINE_MAX);
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
