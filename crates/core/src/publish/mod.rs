//! The one publish path: every message (published, retried from the DLQ, or a callback)
//! is created here, stored durably, then handed to the dispatcher.

mod options;

pub use options::{ConfigSource, PublishOptions, parse_url};

use bytes::Bytes;
use http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::Services;
use crate::error::{Error, Result};
use crate::ids::MessageId;
use crate::message::{Message, Origin};
use crate::ports::{DedupKey, Inserted, NewMessage};

/// A publish request as it arrived, before any parsing.
#[derive(Clone, Debug)]
pub struct PublishRequest {
    /// The path after `/v2/publish/`, raw (a URL keeps its `//`).
    pub destination: String,
    /// The request's query string: the destination's own query plus config parameters.
    pub raw_query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub caller_ip: Option<String>,
}

/// One created (or deduplicated) message, as the publish response lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub message_id: MessageId,
    pub url: String,
    pub deduplicated: bool,
}

/// Whether a query parameter is qpost's own rather than part of the destination URL.
fn is_config_param(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "qstash_token" || lower.starts_with("upstash-")
}

/// Splits a publish query string into the destination's own part (kept byte for byte)
/// and the decoded `upstash-*` config parameters.
pub fn split_query(raw: Option<&str>) -> (Option<String>, Vec<(String, String)>) {
    let Some(raw) = raw.filter(|q| !q.is_empty()) else {
        return (None, Vec::new());
    };
    let mut kept = Vec::new();
    let mut config = Vec::new();
    for segment in raw.split('&') {
        let (name, value) = form_pair(segment);
        if is_config_param(&name) {
            if !name.eq_ignore_ascii_case("qstash_token") {
                config.push((name, value));
            }
        } else {
            kept.push(segment);
        }
    }
    let kept = (!kept.is_empty()).then(|| kept.join("&"));
    (kept, config)
}

fn form_pair(segment: &str) -> (String, String) {
    let mut parsed = url::form_urlencoded::parse(segment.as_bytes());
    parsed
        .next()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .unwrap_or_default()
}

/// Resolves the path destination to a URL, re-attaching the destination's query. A
/// fully percent-encoded URL (`https%3A%2F%2F…`) is decoded first.
fn destination_url(destination: &str, query: Option<String>) -> Result<String> {
    let decoded;
    let mut destination = destination;
    let lower = destination.to_ascii_lowercase();
    if lower.starts_with("http%3a%2f%2f") || lower.starts_with("https%3a%2f%2f") {
        decoded = url::form_urlencoded::parse(
            format!("d={}", destination.replace('+', "%2B")).as_bytes(),
        )
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
        destination = &decoded;
    }
    let lower = destination.to_ascii_lowercase();
    if !lower.starts_with("http://") && !lower.starts_with("https://") {
        if destination.contains(':') || destination.contains('/') || destination.is_empty() {
            return Err(Error::bad_request(
                "invalid destination url: endpoint has invalid scheme, add http:// or https://",
            ));
        }
        return Err(Error::not_found(format!(
            "url group {destination:?} not found"
        )));
    }
    let url = match query {
        Some(q) => format!("{destination}?{q}"),
        None => destination.to_string(),
    };
    parse_url("destination url", &url)
}

/// A fresh message to `url` with the defaults of `limits`, then `options` applied.
pub fn new_message(
    services: &Services,
    url: String,
    body: Vec<u8>,
    options: &PublishOptions,
) -> Message {
    let now = services.clock.now_ms();
    let mut message = Message {
        id: MessageId::generate(),
        url,
        method: "POST".into(),
        headers: options.forward.clone(),
        body,
        max_retries: services.limits.default_retries,
        retried: 0,
        retry_delay: None,
        timeout_ms: None,
        not_before: now,
        created_at: now,
        callback: None,
        failure_callback: None,
        caller_ip: None,
        labels: Vec::new(),
        redact: Default::default(),
        topic_name: None,
        endpoint_name: None,
        queue_name: None,
        schedule_id: None,
        origin: Origin::Publish,
    };
    options.apply(&mut message, now);
    message
}

impl PublishOptions {
    /// Overrides the fields of `m` that these options set (headers excepted); the due
    /// time is recomputed from `now`.
    pub fn apply(&self, m: &mut Message, now: i64) {
        if let Some(method) = &self.method {
            m.method = method.clone();
        }
        if let Some(r) = self.retries {
            m.max_retries = r;
        }
        if self.retry_delay.is_some() {
            m.retry_delay = self.retry_delay.clone();
        }
        if self.timeout_ms.is_some() {
            m.timeout_ms = self.timeout_ms;
        }
        if self.callback.is_some() {
            m.callback = self.callback.clone();
        }
        if self.failure_callback.is_some() {
            m.failure_callback = self.failure_callback.clone();
        }
        if let Some(labels) = &self.labels {
            m.labels = labels.clone();
        }
        if let Some(redact) = &self.redact {
            m.redact = redact.clone();
        }
        m.not_before = match (self.not_before_secs, self.delay_ms) {
            (Some(secs), _) => secs.saturating_mul(1000),
            (None, Some(delay)) => now.saturating_add(delay as i64),
            (None, None) => now,
        };
    }

    /// The deduplication key of `m`, if the request asked for one.
    fn dedup_key(&self, m: &Message, expires_at: i64) -> Option<DedupKey> {
        let key = match (&self.dedup_id, self.content_dedup) {
            (Some(id), _) => format!("id:{id}"),
            (None, true) => format!("content:{}", content_hash(m)),
            (None, false) => return None,
        };
        Some(DedupKey { key, expires_at })
    }
}

/// Hash of destination, body and destination headers (which include `Content-Type`).
fn content_hash(m: &Message) -> String {
    let mut h = Sha256::new();
    h.update(m.url.as_bytes());
    h.update([0]);
    h.update(&m.body);
    for (name, value) in m.headers.pairs() {
        h.update([0]);
        h.update(name.as_bytes());
        h.update(b":");
        h.update(value.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Publishes to a URL: parses, stores durably, dispatches.
pub async fn publish(services: &Services, req: PublishRequest) -> Result<Vec<Published>> {
    let (dest_query, config) = split_query(req.raw_query.as_deref());
    let url = destination_url(&req.destination, dest_query)?;
    let source = ConfigSource {
        headers: &req.headers,
        query: &config,
    };
    let options = PublishOptions::parse(&source, &services.limits)?;
    if req.body.len() > services.limits.max_body_bytes {
        return Err(Error::PayloadTooLarge(format!(
            "message body exceeds the limit of {} bytes",
            services.limits.max_body_bytes
        )));
    }
    if services.limits.block_private_destinations {
        let callbacks = [&options.callback, &options.failure_callback];
        let urls = std::iter::once(url.as_str())
            .chain(callbacks.into_iter().flatten().map(|c| c.url.as_str()));
        for u in urls {
            crate::egress::check_literal(u).map_err(Error::bad_request)?;
        }
    }
    let mut message = new_message(services, url, req.body.to_vec(), &options);
    message.caller_ip = req.caller_ip;
    let expires = services.clock.now_ms() + services.limits.dedup_window.as_millis() as i64;
    let dedup = options.dedup_key(&message, expires);
    let published = store(
        services,
        vec![NewMessage {
            message,
            dedup,
            from_dlq: None,
        }],
    )
    .await?;
    Ok(published)
}

/// Stores messages in one durable write, then wakes delivery of the created ones.
pub async fn store(services: &Services, batch: Vec<NewMessage>) -> Result<Vec<Published>> {
    let heads: Vec<(MessageId, String, i64)> = batch
        .iter()
        .map(|n| {
            (
                n.message.id.clone(),
                n.message.url.clone(),
                n.message.not_before,
            )
        })
        .collect();
    let results = services.messages.insert(batch).await?;
    let mut out = Vec::with_capacity(results.len());
    for ((id, url, due), inserted) in heads.into_iter().zip(results) {
        match inserted {
            Inserted::Created => {
                services.dispatcher.dispatch(&id, due).await?;
                out.push(Published {
                    message_id: id,
                    url,
                    deduplicated: false,
                });
            }
            Inserted::Duplicate(original) => out.push(Published {
                message_id: original,
                url,
                deduplicated: true,
            }),
            Inserted::DlqEntryMissing => return Err(Error::not_found("dlq message not found")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_destination_keeps_its_own_query_and_loses_config_params() {
        let (q, config) = split_query(Some("asdasd=ooo&upstash-retries=2&qstash_token=t&b=%20x"));
        assert_eq!(q.as_deref(), Some("asdasd=ooo&b=%20x"));
        assert_eq!(config, [("upstash-retries".to_string(), "2".to_string())]);
        assert_eq!(split_query(Some("")), (None, vec![]));
    }

    #[test]
    fn destinations_need_an_http_scheme() {
        assert_eq!(
            destination_url("https://example.com/123/", Some("a=b".into())).unwrap(),
            "https://example.com/123/?a=b"
        );
        assert!(matches!(
            destination_url("ftp://x", None),
            Err(Error::BadRequest(_))
        ));
        assert!(matches!(
            destination_url("example.com/x", None),
            Err(Error::BadRequest(_))
        ));
        assert!(matches!(
            destination_url("https://", None),
            Err(Error::BadRequest(_))
        ));
        assert!(matches!(
            destination_url("my-group", None),
            Err(Error::NotFound(_))
        ));
        assert_eq!(
            destination_url("https%3A%2F%2Fexample.com%2Fa%3Fb%3Dc", None).unwrap(),
            "https://example.com/a?b=c"
        );
    }
}
