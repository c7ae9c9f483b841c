//! The key schema of the one table: the partition and sort key of every item kind, the
//! listing shards, and the order-preserving encoding of numbers inside sort keys. These
//! strings are the stored format: changing any of them needs a migration.

use qpost_core::ids::{MessageId, dlq_sort_key};
use sha2::{Digest, Sha256};

/// Partition key attribute of the table.
pub const PK: &str = "pk";
/// Sort key attribute of the table.
pub const SK: &str = "sk";
/// Keys of the `by_created` index (message listing in creation order).
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
/// Key of the sparse `by_queue` index (queue lag); set only on messages of a queue.
pub const QUEUE: &str = "queue";
/// The TTL attribute (Unix seconds) DynamoDB expires items by.
pub const TTL: &str = "ttl";

pub const BY_CREATED: &str = "by_created";
pub const BY_QUEUE: &str = "by_queue";

/// Listings (messages by creation, DLQ by id, events by time) spread their items over
/// this many partitions so that no single partition key takes every write; a listing
/// queries all shards and merges. Part of the stored format.
pub const SHARDS: u32 = 16;

/// Longest partition-key value kept verbatim; longer dedup keys are hashed (DynamoDB
/// allows 2048 bytes for a partition key).
const MAX_VERBATIM_KEY: usize = 1024;

/// The primary key of one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

/// A listing shard's partition value, e.g. `MSG#07`.
pub fn shard_partition(prefix: &str, shard: u32) -> String {
    format!("{prefix}#{shard:02}")
}

/// The shard of a string: FNV-1a, which is stable across processes and releases (unlike
/// the standard library's randomly seeded hasher).
pub fn shard_of(s: &str) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in s.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(SHARDS)) as u32
}

/// A fixed-width decimal that sorts as text the way the number sorts (negatives too).
pub fn ordered(n: i64) -> String {
    format!("{:020}", (i128::from(n) - i128::from(i64::MIN)) as u128)
}

pub fn message(id: &MessageId) -> Key {
    Key::new(format!("MSG#{id}"), "MSG")
}

/// Where a message sits in the `by_created` index: shard by id, ordered by creation.
pub fn message_listing(id: &MessageId, created_at: i64) -> Key {
    Key::new(
        shard_partition("MSG", shard_of(id.as_str())),
        format!("{}#{id}", ordered(created_at)),
    )
}

pub const MESSAGE_SHARDS: &str = "MSG";
pub const DLQ_SHARDS: &str = "DLQ";
pub const EVENT_SHARDS: &str = "EVT";

/// A DLQ entry's key: shard by id, sorted by the id's (time, sequence); `None` for ids
/// that are not DLQ ids (they cannot exist).
pub fn dlq(dlq_id: &str) -> Option<Key> {
    Some(Key::new(
        shard_partition(DLQ_SHARDS, shard_of(dlq_id)),
        dlq_sort(dlq_id)?,
    ))
}

/// The sort key of a DLQ id, also the bound a cursor stands for.
pub fn dlq_sort(dlq_id: &str) -> Option<String> {
    let (ms, seq) = dlq_sort_key(dlq_id)?;
    Some(format!("{}#{seq:020}", ordered(ms)))
}

/// An event's key: shard by message, sorted by time, then by its place in the write that
/// logged it (so ERROR sorts before the RETRY logged at the same millisecond), then a
/// random suffix that keeps keys unique.
pub fn event(message_id: &MessageId, time: i64, index: usize) -> Key {
    Key::new(
        shard_partition(EVENT_SHARDS, shard_of(message_id.as_str())),
        format!(
            "{}#{index:04}#{}",
            ordered(time),
            qpost_core::ids::random_token(10)
        ),
    )
}

/// Whether `cursor` has the shape of an event sort key.
pub fn is_event_sort(cursor: &str) -> bool {
    let b = cursor.as_bytes();
    b.len() > 21 && b[..20].iter().all(u8::is_ascii_digit) && b[20] == b'#'
}

pub fn dedup(key: &str) -> Key {
    let pk = if key.len() > MAX_VERBATIM_KEY {
        let digest = Sha256::digest(key.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("DEDUP#sha256:{hex}")
    } else {
        format!("DEDUP#{key}")
    };
    Key::new(pk, "DEDUP")
}

pub const FLOW_SHARDS: &str = "FLOW";

/// A flow-control key's item: shard by the key's name, sorted by name, so every acquire
/// of one key hits one item and the keys list with one query per shard.
pub fn flow(name: &str) -> Key {
    Key::new(shard_partition(FLOW_SHARDS, shard_of(name)), name)
}

pub fn signing_keys() -> Key {
    Key::new("KEYS", "KEYS")
}

/// Partition of one document kind (schedules, URL groups, queues): small and few, so one
/// partition per kind lists them in id order with a single query.
pub fn doc_partition(kind: &str) -> String {
    format!("DOC#{kind}")
}

pub fn doc(kind: &str, id: &str) -> Key {
    Key::new(doc_partition(kind), id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_numbers_sort_as_text_like_numbers() {
        let values = [i64::MIN, -5, -1, 0, 1, 9, 10, 1_700_000_000_000, i64::MAX];
        let texts: Vec<String> = values.iter().map(|v| ordered(*v)).collect();
        let mut sorted = texts.clone();
        sorted.sort();
        assert_eq!(texts, sorted);
        assert!(texts.iter().all(|t| t.len() == 20));
    }

    #[test]
    fn dlq_keys_sort_by_time_then_sequence_and_refuse_foreign_ids() {
        let a = dlq_sort("1700000000000-9").unwrap();
        let b = dlq_sort("1700000000000-10").unwrap();
        let c = dlq_sort("1700000000001-0").unwrap();
        assert!(a < b && b < c);
        assert!(dlq("not-a-dlq-id").is_none());
    }

    #[test]
    fn shards_are_stable_and_in_range() {
        assert_eq!(shard_of("msg_abc"), shard_of("msg_abc"));
        assert_eq!(shard_of(""), (0xcbf2_9ce4_8422_2325u64 % 16) as u32);
        let spread: std::collections::HashSet<u32> =
            (0..200).map(|i| shard_of(&format!("msg_{i}"))).collect();
        assert_eq!(spread.len(), SHARDS as usize, "ids spread over every shard");
    }

    #[test]
    fn long_dedup_keys_are_hashed_to_fit_a_partition_key() {
        let long = "k".repeat(5000);
        let key = dedup(&long);
        assert!(key.pk.len() < 100);
        assert_eq!(key, dedup(&long));
        assert_eq!(dedup("id:a").pk, "DEDUP#id:a");
    }

    #[test]
    fn event_cursors_are_recognised_by_shape() {
        let key = event(&MessageId::generate(), 5, 1);
        assert!(is_event_sort(&key.sk));
        assert!(!is_event_sort("12"));
        assert!(!is_event_sort("abcdefghijklmnopqrst#x"));
    }
}
