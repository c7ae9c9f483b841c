//! Identifiers: message ids (`msg_…`), DLQ ids (`<unixMillis>-<seq>`) and JWT ids.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;
use serde::{Deserialize, Serialize};

const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// A random string over the base58 alphabet the hosted service's ids use.
pub fn random_token(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The current Unix millisecond as 8 base58 characters; the alphabet is in ASCII order,
/// so the prefixes sort like the times (until the year 8000).
fn time_prefix() -> String {
    let mut ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut out = [ALPHABET[0]; 8];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(ms % 58) as usize];
        ms /= 58;
    }
    out.iter().map(|&b| b as char).collect()
}

/// Id of a message, `msg_` followed by random characters. Opaque to clients.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(String);

impl MessageId {
    /// A new id: 8 characters of the current Unix millisecond, then 32 random ones.
    /// Ids made later sort later, so stores index them where the newest ones are
    /// (appending, not scattering writes over the whole index).
    pub fn generate() -> Self {
        Self(format!("msg_{}{}", time_prefix(), random_token(32)))
    }

    /// Wraps an id that came from a client or the store; ids are opaque, so any
    /// non-empty string is accepted and simply not found when it is not ours.
    pub fn from_string(id: String) -> Self {
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Bits of a DLQ id's sequence drawn at random for every id.
const DLQ_RANDOM_BITS: u32 = 32;
/// The per-process counter above them: 31 bits, so a sequence stays below 2^63 (the
/// SQLite store keeps it as a signed 64-bit integer).
const DLQ_COUNTER_MASK: u64 = (1 << 31) - 1;

/// The sequences of one process: a counter for order, random bits for uniqueness.
struct DlqSequence(AtomicU64);

impl DlqSequence {
    /// A counter starting at `start`; the process's one starts at a random point below
    /// 2^30, so it wraps (and reorders two ids of one millisecond) after 2^30 ids at the
    /// earliest.
    fn starting_at(start: u64) -> Self {
        Self(AtomicU64::new(start))
    }

    /// The counter in the high bits, then [`DLQ_RANDOM_BITS`] fresh random bits.
    fn next(&self) -> u64 {
        let count = self.0.fetch_add(1, Ordering::Relaxed) & DLQ_COUNTER_MASK;
        let random: u32 = rand::rng().random();
        (count << DLQ_RANDOM_BITS) | u64::from(random)
    }
}

static DLQ_SEQUENCE: std::sync::LazyLock<DlqSequence> =
    std::sync::LazyLock::new(|| DlqSequence::starting_at(rand::rng().random_range(0..1u64 << 30)));

/// A new DLQ id `<unixMillis>-<seq>`: ordered by time, then by creation within one
/// process. Every sequence carries 32 random bits and the process's counter starts at a
/// random point, so processes running side by side (several Lambdas) do not mint the
/// same id in the same millisecond, whatever their counters.
pub fn dlq_id(now_ms: i64) -> String {
    format!("{now_ms}-{}", DLQ_SEQUENCE.next())
}

/// The sort key of a DLQ id: ids compare by time, then by sequence.
pub fn dlq_sort_key(id: &str) -> Option<(i64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_prefixed_and_unique() {
        let a = MessageId::generate();
        let b = MessageId::generate();
        assert!(a.as_str().starts_with("msg_"));
        assert_eq!(a.as_str().len(), 44);
        assert_ne!(a, b);
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(MessageId::generate() > a, "later ids sort later");
    }

    #[test]
    fn dlq_ids_sort_by_time_then_by_creation_within_a_process() {
        let ids: Vec<String> = (0..100).map(|_| dlq_id(1_700_000_000_000)).collect();
        let keys: Vec<_> = ids.iter().map(|id| dlq_sort_key(id).unwrap()).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(dlq_sort_key(&dlq_id(1_700_000_000_001)) > keys.last().copied());
        assert!(dlq_sort_key(&dlq_id(1_699_999_999_999)) < keys.first().copied());
        assert_eq!(dlq_sort_key("12-3"), Some((12, 3)));
        assert_eq!(dlq_sort_key("x"), None);
    }

    #[test]
    fn processes_whose_counters_coincide_still_mint_different_dlq_ids() {
        // Two Lambdas dead-lettering in the same millisecond with the same counter.
        let (a, b) = (DlqSequence::starting_at(7), DlqSequence::starting_at(7));
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            assert!(seen.insert(format!("1700000000000-{}", a.next())));
            assert!(seen.insert(format!("1700000000000-{}", b.next())));
        }
    }

    #[test]
    fn dlq_sequences_stay_below_two_to_the_63_and_keep_order_until_the_counter_wraps() {
        let seq = DlqSequence::starting_at(DLQ_COUNTER_MASK - 1);
        let (a, b, c) = (seq.next(), seq.next(), seq.next());
        assert!(a < b, "the counter orders ids");
        assert!(a <= i64::MAX as u64 && b <= i64::MAX as u64 && c <= i64::MAX as u64);
        assert!(c < a, "the counter wrapped to 0");
        let id = dlq_id(1_700_000_000_000);
        let (_, seq) = dlq_sort_key(&id).unwrap();
        assert!(i64::try_from(seq).is_ok(), "{id}");
    }
}
