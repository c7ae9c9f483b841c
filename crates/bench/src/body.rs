//! Message bodies that carry their own send time, so the receiver can measure
//! publish-to-delivery latency without any side channel.
//!
//! Layout (ASCII, so qpost stores and forwards it untouched):
//! `<20-digit send time, ns since the process origin>;<13-digit due time, unix ms or 0>;`
//! followed by `x` up to the body size.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};

const SENT_DIGITS: usize = 20;
const DUE_DIGITS: usize = 13;
/// Smallest body that holds both stamps and their separators.
pub const MIN_BODY: usize = SENT_DIGITS + 1 + DUE_DIGITS + 1;

static ORIGIN: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the process-wide monotonic origin (shared by generator and receiver).
pub fn now_ns() -> u64 {
    let origin = *ORIGIN.get_or_init(Instant::now);
    u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Wall-clock milliseconds since the Unix epoch (for due times qpost also sees).
pub fn unix_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// A pre-built body of fixed size; only the send stamp changes per request.
#[derive(Clone, Debug)]
pub struct BodyTemplate {
    bytes: Vec<u8>,
}

impl BodyTemplate {
    /// A `size`-byte body (at least [`MIN_BODY`]) with `due_unix_ms` (0 = none) stamped in.
    pub fn new(size: usize, due_unix_ms: u64) -> Self {
        let mut bytes = vec![b'x'; size.max(MIN_BODY)];
        write_digits(&mut bytes[..SENT_DIGITS], 0);
        bytes[SENT_DIGITS] = b';';
        write_digits(&mut bytes[SENT_DIGITS + 1..MIN_BODY - 1], due_unix_ms);
        bytes[MIN_BODY - 1] = b';';
        Self { bytes }
    }

    /// The body stamped with `sent_ns`.
    pub fn stamp(&self, sent_ns: u64) -> Bytes {
        let mut out = BytesMut::from(&self.bytes[..]);
        write_digits(&mut out[..SENT_DIGITS], sent_ns);
        out.freeze()
    }
}

/// The stamps read back from a delivered body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamps {
    pub sent_ns: u64,
    /// Unix milliseconds the message was due, if it was published with one.
    pub due_unix_ms: Option<u64>,
}

/// Reads the stamps of a body built by [`BodyTemplate`]; `None` for anything else.
pub fn decode(body: &[u8]) -> Option<Stamps> {
    if body.len() < MIN_BODY || body[SENT_DIGITS] != b';' || body[MIN_BODY - 1] != b';' {
        return None;
    }
    let sent_ns = read_digits(&body[..SENT_DIGITS])?;
    let due = read_digits(&body[SENT_DIGITS + 1..MIN_BODY - 1])?;
    Some(Stamps {
        sent_ns,
        due_unix_ms: (due > 0).then_some(due),
    })
}

/// Writes `value` as zero-padded decimal filling `out` (keeps the low digits if too long).
fn write_digits(out: &mut [u8], mut value: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

fn read_digits(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, d| {
        d.is_ascii_digit()
            .then(|| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamped_body_decodes_to_its_stamps_and_keeps_its_size() {
        let template = BodyTemplate::new(256, 1_700_000_000_123);
        let body = template.stamp(98_765_432_101);
        assert_eq!(body.len(), 256);
        assert_eq!(
            decode(&body),
            Some(Stamps {
                sent_ns: 98_765_432_101,
                due_unix_ms: Some(1_700_000_000_123)
            })
        );
    }

    #[test]
    fn a_body_without_due_time_decodes_to_none_due() {
        let body = BodyTemplate::new(64, 0).stamp(u64::MAX);
        let stamps = decode(&body).expect("decodes");
        assert_eq!(stamps.sent_ns, u64::MAX);
        assert_eq!(stamps.due_unix_ms, None);
    }

    #[test]
    fn bodies_too_small_are_grown_to_hold_the_stamps() {
        assert_eq!(BodyTemplate::new(4, 0).stamp(1).len(), MIN_BODY);
    }

    #[test]
    fn foreign_bodies_do_not_decode() {
        assert_eq!(decode(b"hello"), None);
        assert_eq!(decode(&[b'a'; 64]), None);
    }

    #[test]
    fn the_origin_clock_moves_forward() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a);
    }
}
