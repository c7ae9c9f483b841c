//! `POST /v2/batch`: many publishes and enqueues in one request. Each entry becomes the
//! publish request it describes and goes through the one publish path, so an entry is
//! parsed, limited and fanned out exactly like `POST /v2/publish` would; a bad entry
//! gets its own error while the others are created.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use crate::Services;
use crate::error::{Error, Result};
use crate::publish::{self, PublishOutcome, PublishRequest};
use crate::topics::{HeaderValues, header_map};

/// One entry of a batch body. `headers` are publish headers in any case (the JS SDK sends
/// them lower-cased); `body` and `queue` may be `null` (the Python SDK sends both keys).
#[derive(Clone, Debug, Deserialize)]
pub struct BatchEntry {
    pub destination: String,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, HeaderValues>>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub queue: Option<String>,
}

/// Publishes every entry in order (so entries for one queue keep their order) and
/// returns one result per entry, aligned with the request.
pub async fn publish_batch(
    services: &Services,
    entries: Vec<Value>,
    caller_ip: Option<String>,
) -> Vec<Result<PublishOutcome>> {
    let mut results = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        results.push(publish_entry(services, index, entry, caller_ip.clone()).await);
    }
    results
}

async fn publish_entry(
    services: &Services,
    index: usize,
    entry: Value,
    caller_ip: Option<String>,
) -> Result<PublishOutcome> {
    let entry: BatchEntry = serde_json::from_value(entry)
        .map_err(|e| Error::bad_request(format!("batch entry {index}: {e}")))?;
    let queue = entry.queue.clone();
    publish::publish(services, request(entry, caller_ip)?, queue).await
}

/// The publish request an entry stands for. The destination keeps any query of its own.
fn request(entry: BatchEntry, caller_ip: Option<String>) -> Result<PublishRequest> {
    let headers = header_map(&entry.headers.unwrap_or_default())?;
    Ok(PublishRequest {
        destination: entry.destination,
        raw_query: None,
        headers,
        body: Bytes::from(entry.body.unwrap_or_default()),
        caller_ip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(json: &str) -> BatchEntry {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn null_or_absent_body_queue_and_headers_are_accepted() {
        let e = entry(r#"{"destination":"https://a","body":null,"queue":null,"headers":null}"#);
        let req = request(e, None).unwrap();
        assert!(req.body.is_empty() && req.headers.is_empty());
        let e = entry(r#"{"destination":"https://a"}"#);
        assert!(e.queue.is_none() && e.body.is_none());
    }

    #[test]
    fn header_names_in_any_case_become_request_headers() {
        let e = entry(
            r#"{"destination":"g","headers":{"upstash-retries":"2","Upstash-Forward-X-A":"x"},"body":"b"}"#,
        );
        let req = request(e, Some("1.2.3.4".into())).unwrap();
        assert_eq!(req.headers.get("Upstash-Retries").unwrap(), "2");
        assert_eq!(req.headers.get("upstash-forward-x-a").unwrap(), "x");
        assert_eq!(&req.body[..], b"b");
        assert_eq!(req.caller_ip.as_deref(), Some("1.2.3.4"));
    }

    #[test]
    fn an_entry_without_a_destination_does_not_parse() {
        assert!(serde_json::from_str::<BatchEntry>(r#"{"body":"x"}"#).is_err());
    }
}
