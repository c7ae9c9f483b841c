//! The schedule model: a cron expression and the publish it repeats.

use serde::{Deserialize, Serialize};

use crate::ids::MessageId;
use crate::publish::PublishOptions;

/// A stored schedule. Firing it publishes `body` to `destination` with `options`, as a
/// publish request with those headers would.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    pub id: String,
    /// The cron expression as given, trimmed (may start with `CRON_TZ=` or `TZ=`).
    pub cron: String,
    /// A URL, or the name of a URL group.
    pub destination: String,
    #[serde(with = "body_base64")]
    pub body: Vec<u8>,
    pub options: PublishOptions,
    #[serde(default)]
    pub queue_name: Option<String>,
    #[serde(default)]
    pub caller_ip: Option<String>,
    pub created_at: i64,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub last_schedule_time: Option<i64>,
    #[serde(default)]
    pub next_schedule_time: Option<i64>,
    /// Messages produced by the last firing, for `lastScheduleStates`.
    #[serde(default)]
    pub last_message_ids: Vec<MessageId>,
    /// Why the last firing failed to publish, if it did.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// Bodies are bytes; in stored JSON they are base64.
mod body_base64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}
