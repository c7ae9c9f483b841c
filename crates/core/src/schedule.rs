//! The schedule model: a cron expression and the publish it repeats, and its wire view
//! (`GET /v2/schedules[/{id}]`, `qstash-api.md` §8.2).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::headers::Headers;
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
    /// The publish headers, without deduplication (that applied to the creation).
    pub options: PublishOptions,
    #[serde(default)]
    pub queue_name: Option<String>,
    #[serde(default)]
    pub caller_ip: Option<String>,
    pub created_at: i64,
    #[serde(default)]
    pub paused: bool,
    /// When the last firing happened (Unix ms).
    #[serde(default)]
    pub last_schedule_time: Option<i64>,
    /// The next cron minute to fire (Unix ms); kept while paused.
    #[serde(default)]
    pub next_schedule_time: Option<i64>,
    /// Messages produced by the last firing, for `lastScheduleStates`.
    #[serde(default)]
    pub last_message_ids: Vec<MessageId>,
    /// Why the last firing failed to publish, if it did.
    #[serde(default)]
    pub last_error: Option<String>,
    /// The cron minute of the last firing, so a repeated trigger for it publishes nothing.
    #[serde(default)]
    pub last_slot: Option<i64>,
    /// The deduplication key the creation request carried, blocking equal creations
    /// within the deduplication window from `created_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
}

/// How a message of the last firing fared, as `lastScheduleStates` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScheduleState {
    InProgress,
    Success,
    Fail,
}

/// A schedule as the read APIs show it: camelCase, absent fields omitted, times in Unix ms,
/// `delay`, `timeout` and `period` in seconds, redacted fields as `REDACTED:<sha256>`.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleView {
    pub schedule_id: String,
    pub cron: String,
    pub created_at: i64,
    pub destination: String,
    pub method: String,
    #[serde(skip_serializing_if = "Headers::is_empty")]
    pub header: Headers,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
    pub retries: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_callback: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_header: Option<Headers>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_callback_header: Option<Headers>,
    /// Sent under both spellings the SDKs read (`qstash-api.md` §15).
    #[serde(rename = "callerIP", skip_serializing_if = "Option::is_none")]
    pub caller_ip: Option<String>,
    #[serde(rename = "callerIp", skip_serializing_if = "Option::is_none")]
    pub caller_ip_alias: Option<String>,
    pub is_paused: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_control_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_delay_expression: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_schedule_states: Option<BTreeMap<String, ScheduleState>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Milliseconds as whole seconds, rounded up so a sub-second value does not show as 0.
fn secs(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

impl ScheduleView {
    /// The view of `s`; `default_retries` stands in when the schedule set none, and
    /// `states` are the outcomes of the last firing's messages (omitted when empty).
    pub fn new(
        s: &Schedule,
        default_retries: u32,
        states: BTreeMap<String, ScheduleState>,
    ) -> Self {
        let o = &s.options;
        let redact = o.redact.clone().unwrap_or_default();
        let (body, body_base64) = match (s.body.is_empty(), redact.body) {
            (true, _) => (None, None),
            (false, true) => (Some(crate::wire::redacted(&s.body)), None),
            (false, false) => crate::wire::text_or_base64(&s.body),
        };
        let callback_header = |c: &Option<crate::message::CallbackSpec>| {
            c.as_ref()
                .map(|c| c.headers.clone())
                .filter(|h| !h.is_empty())
        };
        let fc = o.flow_control.as_ref();
        let labels = o.labels.clone().unwrap_or_default();
        Self {
            schedule_id: s.id.clone(),
            cron: s.cron.clone(),
            created_at: s.created_at,
            destination: s.destination.clone(),
            method: o.method.clone().unwrap_or_else(|| "POST".into()),
            header: crate::wire::redact_headers(&o.forward, &redact),
            body,
            body_base64,
            retries: o.retries.unwrap_or(default_retries),
            delay: o.delay_ms.map(secs),
            timeout: o.timeout_ms.map(secs),
            callback: o.callback.as_ref().map(|c| c.url.clone()),
            failure_callback: o.failure_callback.as_ref().map(|c| c.url.clone()),
            callback_header: callback_header(&o.callback),
            failure_callback_header: callback_header(&o.failure_callback),
            caller_ip: s.caller_ip.clone(),
            caller_ip_alias: s.caller_ip.clone(),
            is_paused: s.paused,
            queue_name: s.queue_name.clone(),
            flow_control_key: fc.map(|f| f.key.clone()),
            parallelism: fc.and_then(|f| f.parallelism),
            rate: fc.and_then(|f| f.rate),
            period: fc.filter(|f| f.rate.is_some()).map(|f| f.period()),
            retry_delay_expression: o.retry_delay.as_ref().map(|e| e.as_str().to_string()),
            label: labels.first().cloned(),
            labels,
            last_schedule_time: s.last_schedule_time,
            next_schedule_time: s.next_schedule_time,
            last_schedule_states: Some(states).filter(|m| !m.is_empty()),
            error: s.last_error.clone(),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Redaction;

    fn schedule() -> Schedule {
        Schedule {
            id: "scd_1".into(),
            cron: "* * * * *".into(),
            destination: "https://example.com/hook".into(),
            body: b"hello".to_vec(),
            options: PublishOptions::default(),
            queue_name: None,
            caller_ip: Some("127.0.0.1".into()),
            created_at: 1_700_000_000_000,
            paused: false,
            last_schedule_time: None,
            next_schedule_time: Some(1_700_000_060_000),
            last_message_ids: Vec::new(),
            last_error: None,
            last_slot: None,
            dedup_key: None,
        }
    }

    #[test]
    fn the_view_has_every_field_the_python_sdk_requires_and_both_ip_spellings() {
        let v = serde_json::to_value(ScheduleView::new(&schedule(), 3, BTreeMap::new())).unwrap();
        for field in [
            "scheduleId",
            "destination",
            "cron",
            "createdAt",
            "method",
            "retries",
            "isPaused",
        ] {
            assert!(v.get(field).is_some(), "{field} missing from {v}");
        }
        assert_eq!(v["method"], "POST");
        assert_eq!(v["retries"], 3);
        assert_eq!(v["body"], "hello");
        assert_eq!(
            (&v["callerIP"], &v["callerIp"]),
            (&v["callerIp"], &"127.0.0.1".into())
        );
        assert!(v.get("lastScheduleStates").is_none());
        assert!(v.get("lastScheduleTime").is_none());
    }

    #[test]
    fn durations_show_in_seconds_and_an_empty_body_is_absent() {
        let mut s = schedule();
        s.body.clear();
        s.options.delay_ms = Some(25_000);
        s.options.timeout_ms = Some(1_500);
        let v = serde_json::to_value(ScheduleView::new(&s, 3, BTreeMap::new())).unwrap();
        assert_eq!(
            (v["delay"].as_u64(), v["timeout"].as_u64()),
            (Some(25), Some(2))
        );
        assert!(v.get("body").is_none() && v.get("bodyBase64").is_none());
    }

    #[test]
    fn redacted_fields_show_their_hash() {
        let mut s = schedule();
        s.options.forward.set("Authorization", "Bearer x");
        s.options.redact = Some(Redaction {
            body: true,
            all_headers: false,
            headers: vec!["Authorization".into()],
        });
        let v = serde_json::to_value(ScheduleView::new(&s, 3, BTreeMap::new())).unwrap();
        assert_eq!(v["body"], crate::wire::redacted(b"hello"));
        assert_eq!(
            v["header"]["Authorization"][0],
            crate::wire::redacted(b"Bearer x")
        );
    }

    #[test]
    fn last_schedule_states_use_the_sdk_spelling() {
        let states = BTreeMap::from([
            ("msg_a".to_string(), ScheduleState::InProgress),
            ("msg_b".to_string(), ScheduleState::Success),
            ("msg_c".to_string(), ScheduleState::Fail),
        ]);
        let v = serde_json::to_value(ScheduleView::new(&schedule(), 3, states)).unwrap();
        assert_eq!(
            v["lastScheduleStates"],
            serde_json::json!({"msg_a": "IN_PROGRESS", "msg_b": "SUCCESS", "msg_c": "FAIL"})
        );
    }
}
