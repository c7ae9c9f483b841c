//! Response shapes of the read APIs, as the official SDKs parse them: camelCase,
//! absent fields omitted, times in Unix ms, header maps of arrays, redaction applied.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::headers::Headers;
use crate::message::{CallbackSpec, DlqEntry, Message, Redaction};
use crate::ports::Page;
use crate::publish::Published;

/// `REDACTED:<sha256 hex>` of a value hidden by `Upstash-Redact-Fields`.
pub fn redacted(value: &[u8]) -> String {
    let hex: String = Sha256::digest(value)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("REDACTED:{hex}")
}

/// `headers` with the values `r` hides shown as their [`redacted`] hash.
pub fn redact_headers(headers: &Headers, r: &Redaction) -> Headers {
    let mut out = Headers::new();
    for (name, value) in headers.pairs() {
        let hide = r.all_headers || r.headers.iter().any(|h| h.eq_ignore_ascii_case(name));
        out.append(
            name,
            if hide {
                redacted(value.as_bytes())
            } else {
                value.to_string()
            },
        );
    }
    out
}

/// A body as `body` when it is UTF-8 text, else as `bodyBase64`.
pub fn text_or_base64(bytes: &[u8]) -> (Option<String>, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (Some(text.to_string()), None),
        Err(_) => (None, Some(STANDARD.encode(bytes))),
    }
}

/// `GET /v2/messages/{id}` and the message part of a DLQ entry.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    pub message_id: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_name: Option<String>,
    pub method: String,
    #[serde(skip_serializing_if = "Headers::is_empty")]
    pub header: Headers,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
    pub max_retries: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_delay_expression: Option<String>,
    pub not_before: i64,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_callback: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_header: Option<Headers>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_callback_header: Option<Headers>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_id: Option<String>,
    #[serde(rename = "callerIP", skip_serializing_if = "Option::is_none")]
    pub caller_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

fn callback_headers(spec: &Option<CallbackSpec>) -> Option<Headers> {
    spec.as_ref()
        .map(|s| s.headers.clone())
        .filter(|h| !h.is_empty())
}

impl From<&Message> for MessageView {
    fn from(m: &Message) -> Self {
        let (body, body_base64) = if m.redact.body {
            (Some(redacted(&m.body)), None)
        } else {
            text_or_base64(&m.body)
        };
        Self {
            message_id: m.id.to_string(),
            url: m.url.clone(),
            topic_name: m.topic_name.clone(),
            endpoint_name: m.endpoint_name.clone(),
            method: m.method.clone(),
            header: redact_headers(&m.headers, &m.redact),
            body,
            body_base64,
            max_retries: m.max_retries,
            retry_delay_expression: m.retry_delay.as_ref().map(|e| e.as_str().to_string()),
            not_before: m.not_before,
            created_at: m.created_at,
            callback: m.callback.as_ref().map(|c| c.url.clone()),
            failure_callback: m.failure_callback.as_ref().map(|c| c.url.clone()),
            callback_header: callback_headers(&m.callback),
            failure_callback_header: callback_headers(&m.failure_callback),
            queue_name: m.queue_name.clone(),
            schedule_id: m.schedule_id.clone(),
            caller_ip: m.caller_ip.clone(),
            label: m.labels.first().cloned(),
            labels: m.labels.clone(),
        }
    }
}

/// A DLQ entry: the message plus the last response.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct DlqMessageView {
    #[serde(flatten)]
    pub message: MessageView,
    pub dlq_id: String,
    /// 0 when the destination never answered (timeout, connection error).
    pub response_status: u16,
    #[serde(skip_serializing_if = "Headers::is_empty")]
    pub response_header: Headers,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<&DlqEntry> for DlqMessageView {
    fn from(e: &DlqEntry) -> Self {
        let (response_body, response_body_base64) = match e.response_body.is_empty() {
            true => (None, None),
            false => text_or_base64(&e.response_body),
        };
        Self {
            message: MessageView::from(&e.message),
            dlq_id: e.dlq_id.clone(),
            response_status: e.response_status.unwrap_or(0),
            response_header: e.response_headers.clone(),
            response_body,
            response_body_base64,
            error: e.error.clone(),
        }
    }
}

/// `GET /v2/dlq`.
#[derive(Serialize, Debug)]
pub struct DlqPageView {
    pub messages: Vec<DlqMessageView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

impl From<&Page<DlqEntry>> for DlqPageView {
    fn from(page: &Page<DlqEntry>) -> Self {
        Self {
            messages: page.items.iter().map(DlqMessageView::from).collect(),
            cursor: page.cursor.clone(),
        }
    }
}

/// One element of a publish response.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct PublishedView {
    pub message_id: String,
    pub url: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deduplicated: bool,
}

impl From<&Published> for PublishedView {
    fn from(p: &Published) -> Self {
        Self {
            message_id: p.message_id.to_string(),
            url: p.url.clone(),
            deduplicated: p.deduplicated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::message;

    #[test]
    fn redacted_fields_show_their_hash_and_others_stay_clear() {
        let mut m = message();
        m.body = b"secret".to_vec();
        m.headers.set("Authorization", "Bearer x");
        m.headers.set("X-Plain", "p");
        m.redact = Redaction {
            body: true,
            all_headers: false,
            headers: vec!["Authorization".into()],
        };
        let v = serde_json::to_value(MessageView::from(&m)).unwrap();
        assert_eq!(v["body"], redacted(b"secret"));
        assert!(v["body"].as_str().unwrap().starts_with("REDACTED:"));
        assert_eq!(v["header"]["Authorization"][0], redacted(b"Bearer x"));
        assert_eq!(v["header"]["X-Plain"][0], "p");
    }

    #[test]
    fn binary_bodies_are_base64_and_python_required_fields_are_present() {
        let mut m = message();
        m.body = vec![0xff, 0x00];
        let v = serde_json::to_value(MessageView::from(&m)).unwrap();
        assert_eq!(v["bodyBase64"], "/wA=");
        assert!(v.get("body").is_none());
        for field in [
            "messageId",
            "url",
            "method",
            "maxRetries",
            "notBefore",
            "createdAt",
        ] {
            assert!(v.get(field).is_some(), "{field}");
        }
    }
}
