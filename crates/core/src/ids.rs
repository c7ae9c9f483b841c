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

static DLQ_SEQ: AtomicU64 = AtomicU64::new(0);
static DLQ_BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// A new DLQ id `<unixMillis>-<seq>`, ordered by creation within one process. The
/// sequence starts at a random point per process, so processes running side by side
/// (several Lambdas) do not mint the same id in the same millisecond.
pub fn dlq_id(now_ms: i64) -> String {
    let base = *DLQ_BASE.get_or_init(|| rand::rng().random_range(0..1u64 << 40));
    let seq = base + DLQ_SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{now_ms}-{seq}")
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
    fn dlq_ids_sort_by_time_then_sequence() {
        let a = dlq_id(1_700_000_000_000);
        let b = dlq_id(1_700_000_000_000);
        assert!(dlq_sort_key(&a) < dlq_sort_key(&b));
        assert_eq!(dlq_sort_key("12-3"), Some((12, 3)));
        assert_eq!(dlq_sort_key("x"), None);
    }
}
