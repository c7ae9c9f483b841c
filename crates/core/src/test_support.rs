//! Fixtures for the unit tests of this crate.

use crate::message::Message;

/// A plain message to `https://example.com/hook` with the default 3 retries.
pub fn message() -> Message {
    Message::new(
        "https://example.com/hook".into(),
        b"{}".to_vec(),
        3,
        1_700_000_000_000,
    )
}
