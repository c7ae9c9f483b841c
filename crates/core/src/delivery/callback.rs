//! Callbacks and failure callbacks: the JSON body describing an attempt, and the
//! messages that carry it (signed and retried like any other message).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use super::attempt::Response;
use crate::headers::Headers;
use crate::message::{CallbackSpec, Message, Origin};

/// The body of a callback request, field for field as the hosted service sends it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackPayload<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Headers::is_empty")]
    pub header: Headers,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub body: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    #[serde(skip_serializing_if = "is_zero")]
    pub retried: u32,
    pub max_retries: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dlq_id: Option<&'a str>,
    pub source_message_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_name: Option<&'a str>,
    pub url: &'a str,
    pub method: &'a str,
    pub source_header: &'a Headers,
    pub source_body: String,
    pub not_before: i64,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_id: Option<&'a str>,
    #[serde(rename = "callerIP", skip_serializing_if = "Option::is_none")]
    pub caller_ip: Option<&'a str>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The callback body for an attempt of `m` (with `dlq_id` for the failure callback).
pub fn payload(m: &Message, response: &Response, dlq_id: Option<&str>) -> Vec<u8> {
    let p = CallbackPayload {
        status: response.status(),
        header: response.headers(),
        body: STANDARD.encode(response.body()),
        error: response.error(),
        retried: m.retried,
        max_retries: m.max_retries,
        dlq_id,
        source_message_id: m.id.as_str(),
        topic_name: m.topic_name.as_deref(),
        endpoint_name: m.endpoint_name.as_deref(),
        url: &m.url,
        method: &m.method,
        source_header: &m.headers,
        source_body: STANDARD.encode(&m.body),
        not_before: m.not_before,
        created_at: m.created_at,
        schedule_id: m.schedule_id.as_deref(),
        caller_ip: m.caller_ip.as_deref(),
    };
    serde_json::to_vec(&p).unwrap_or_default()
}

/// A message carrying `body` to a callback; unset config falls back to the source
/// message's retries and retry delay.
pub fn callback_message(
    source: &Message,
    spec: &CallbackSpec,
    body: Vec<u8>,
    origin: Origin,
    now: i64,
) -> Message {
    let mut m = Message::new(
        spec.url.clone(),
        body,
        spec.retries.unwrap_or(source.max_retries),
        now,
    );
    m.headers = spec.headers.clone();
    if m.headers.get("Content-Type").is_none() {
        m.headers.set("Content-Type", "application/json");
    }
    if let Some(method) = &spec.method {
        m.method = method.clone();
    }
    m.retry_delay = spec
        .retry_delay
        .clone()
        .or_else(|| source.retry_delay.clone());
    m.timeout_ms = spec.timeout_ms;
    m.not_before = now.saturating_add(spec.delay_ms.unwrap_or(0) as i64);
    m.caller_ip = source.caller_ip.clone();
    m.labels = source.labels.clone();
    // The body quotes the source's body and headers: if any of them is redacted, the
    // read APIs hide the whole callback body (the callback itself still gets it in clear).
    m.redact.body = !source.redact.is_empty();
    m.schedule_id = source.schedule_id.clone();
    m.origin = origin;
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::message;

    #[test]
    fn the_payload_has_arrays_for_headers_numbers_for_times_and_base64_bodies() {
        let mut m = message();
        m.body = "héllo".as_bytes().to_vec();
        m.headers.set("Content-Type", "text/plain");
        m.caller_ip = Some("1.2.3.4".into());
        let mut headers = http::HeaderMap::new();
        headers.insert("x-r", "1".parse().unwrap());
        let response = Response::Answered {
            status: 201,
            headers,
            body: b"ok".to_vec(),
        };
        let v: serde_json::Value =
            serde_json::from_slice(&payload(&m, &response, Some("1-0"))).unwrap();
        assert_eq!(v["status"], 201);
        assert_eq!(v["header"]["X-R"], serde_json::json!(["1"]));
        assert_eq!(v["body"], "b2s=");
        assert_eq!(v["sourceBody"], STANDARD.encode("héllo".as_bytes()));
        assert_eq!(
            v["sourceHeader"]["Content-Type"],
            serde_json::json!(["text/plain"])
        );
        assert_eq!(v["sourceMessageId"], m.id.as_str());
        assert_eq!(v["dlqId"], "1-0");
        assert_eq!(v["maxRetries"], 3);
        assert_eq!(v["notBefore"], m.not_before);
        assert_eq!(v["createdAt"], m.created_at);
        assert_eq!(v["callerIP"], "1.2.3.4");
        assert_eq!(v["url"], m.url);
        assert_eq!(v["method"], "POST");
        assert!(v.get("retried").is_none(), "retried is omitted when 0");
    }

    #[test]
    fn a_callback_inherits_retry_settings_unless_overridden() {
        let mut m = message();
        m.max_retries = 5;
        let spec = CallbackSpec {
            url: "https://cb".into(),
            ..Default::default()
        };
        let cb = callback_message(&m, &spec, b"{}".to_vec(), Origin::Callback, 10);
        assert_eq!(
            (cb.max_retries, cb.method.as_str(), cb.not_before),
            (5, "POST", 10)
        );
        assert_eq!(cb.headers.first("Content-Type"), Some("application/json"));
        assert!(cb.callback.is_none() && cb.failure_callback.is_none());
        let spec = CallbackSpec {
            retries: Some(0),
            delay_ms: Some(500),
            ..spec
        };
        let cb = callback_message(&m, &spec, vec![], Origin::Callback, 10);
        assert_eq!((cb.max_retries, cb.not_before), (0, 510));
    }
}
