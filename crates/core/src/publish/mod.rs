//! The one publish path: every message (published, retried from the DLQ, or a callback)
//! is created here, stored durably, then handed to the dispatcher.

mod options;

pub use options::{ConfigSource, PublishOptions, parse_url};

use bytes::Bytes;
use http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::Services;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::ids::MessageId;
use crate::message::Message;
use crate::ports::{DedupKey, Inserted, NewMessage, Wakeup};

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

/// Where a publish goes: a URL, or a URL group fanning out to its endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Url(String),
    Topic(String),
}

/// Resolves the path destination, re-attaching the destination's own query to a URL. A
/// fully percent-encoded URL (`https%3A%2F%2F…`) is decoded first; a bare name is a URL group.
pub fn parse_target(destination: &str, query: Option<String>) -> Result<Target> {
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
        if crate::flow::is_valid_name(destination) {
            return Ok(Target::Topic(destination.to_string()));
        }
        return Err(Error::bad_request(
            "invalid destination url: endpoint has invalid scheme, add http:// or https://",
        ));
    }
    let url = match query {
        Some(q) => format!("{destination}?{q}"),
        None => destination.to_string(),
    };
    parse_url("destination url", &url).map(Target::Url)
}

/// A fresh message to `url` with the defaults of `limits`, then `options` applied.
pub fn new_message(
    services: &Services,
    url: String,
    body: Vec<u8>,
    options: &PublishOptions,
) -> Message {
    let now = services.clock.now_ms();
    let mut message = Message::new(url, body, services.limits.default_retries, now);
    message.headers = options.forward.clone();
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
        if self.flow_control.is_some() {
            m.flow_control = self.flow_control.clone();
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
            // A group publish makes one message per endpoint under one id: the key is
            // per endpoint, so the id dedups a repeat of the publish, not its siblings.
            (Some(id), _) if m.topic_name.is_some() => format!("id:{id}:{}", m.url),
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

/// Everything a publish needs once the request is parsed; schedules keep one to fire.
#[derive(Clone, Debug)]
pub struct Draft {
    pub target: Target,
    pub options: PublishOptions,
    pub body: Vec<u8>,
    pub caller_ip: Option<String>,
    pub queue_name: Option<String>,
    pub schedule_id: Option<String>,
}

/// What a publish created: one message for a URL, one per endpoint for a URL group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishOutcome {
    /// Whether the target was a URL group (the response is then an array).
    pub to_group: bool,
    pub messages: Vec<Published>,
}

/// Publishes the request of `POST /v2/publish/{destination}` (or of an enqueue when
/// `queue_name` is given): parses, stores durably, dispatches.
pub async fn publish(
    services: &Services,
    req: PublishRequest,
    queue_name: Option<String>,
) -> Result<PublishOutcome> {
    let (dest_query, config) = split_query(req.raw_query.as_deref());
    let target = parse_target(&req.destination, dest_query)?;
    if req.body.len() > services.limits.max_body_bytes {
        return Err(Error::PayloadTooLarge(format!(
            "message body exceeds the limit of {} bytes",
            services.limits.max_body_bytes
        )));
    }
    let defaults = match &target {
        Target::Topic(name) => crate::topics::default_headers(services, name).await?,
        Target::Url(_) => HeaderMap::new(),
    };
    let headers = with_defaults(&req.headers, &defaults);
    let source = ConfigSource {
        headers: &headers,
        query: &config,
    };
    let options = PublishOptions::parse(&source, &services.limits)?;
    let draft = Draft {
        target,
        options,
        body: req.body.to_vec(),
        caller_ip: req.caller_ip,
        queue_name,
        schedule_id: None,
    };
    publish_draft(services, &draft).await
}

/// The request headers with a URL group's default headers added where absent.
pub(crate) fn with_defaults(headers: &HeaderMap, defaults: &HeaderMap) -> HeaderMap {
    let mut merged = headers.clone();
    for (name, value) in defaults {
        if !headers.contains_key(name) {
            merged.append(name, value.clone());
        }
    }
    merged
}

/// Creates, stores and dispatches the messages of a parsed publish.
pub async fn publish_draft(services: &Services, draft: &Draft) -> Result<PublishOutcome> {
    if let Some(queue) = &draft.queue_name {
        crate::queues::ensure(services, queue).await?;
    }
    let (to_group, destinations) = match &draft.target {
        Target::Url(url) => (false, vec![(url.clone(), None, None)]),
        Target::Topic(name) => (true, crate::topics::endpoints(services, name).await?),
    };
    check_egress(
        services,
        destinations.iter().map(|(url, _, _)| url.as_str()),
        &draft.options,
    )?;
    let expires = services.clock.now_ms() + services.limits.dedup_window.as_millis() as i64;
    let batch = destinations
        .into_iter()
        .map(|(url, topic_name, endpoint_name)| {
            let mut message = new_message(services, url, draft.body.clone(), &draft.options);
            message.caller_ip = draft.caller_ip.clone();
            message.queue_name = draft.queue_name.clone();
            message.schedule_id = draft.schedule_id.clone();
            message.topic_name = topic_name;
            message.endpoint_name = endpoint_name;
            let dedup = draft.options.dedup_key(&message, expires);
            new(message, dedup)
        })
        .collect();
    Ok(PublishOutcome {
        to_group,
        messages: store(services, batch).await?,
    })
}

/// With private destinations blocked, refuses literal private addresses up front.
pub(crate) fn check_egress<'a>(
    services: &Services,
    urls: impl Iterator<Item = &'a str>,
    options: &'a PublishOptions,
) -> Result<()> {
    if !services.limits.block_private_destinations {
        return Ok(());
    }
    let callbacks = [&options.callback, &options.failure_callback];
    for u in urls.chain(callbacks.into_iter().flatten().map(|c| c.url.as_str())) {
        crate::egress::check_literal(u).map_err(Error::bad_request)?;
    }
    Ok(())
}

/// A message to store, with its `CREATED` event.
pub fn new(message: Message, dedup: Option<DedupKey>) -> NewMessage {
    let events = vec![Event::created(&message)];
    NewMessage {
        message,
        dedup,
        from_dlq: None,
        events,
    }
}

/// Stores messages in one durable write, then wakes delivery of the created ones.
pub async fn store(services: &Services, batch: Vec<NewMessage>) -> Result<Vec<Published>> {
    let heads: Vec<(Wakeup, String)> = batch
        .iter()
        .map(|n| (Wakeup::of(&n.message), n.message.url.clone()))
        .collect();
    let results = services.messages.insert(batch).await?;
    let mut out = Vec::with_capacity(results.len());
    for ((wakeup, url), inserted) in heads.into_iter().zip(results) {
        match inserted {
            Inserted::Created => {
                let message_id = wakeup.id.clone();
                services.dispatcher.dispatch(wakeup).await?;
                out.push(Published {
                    message_id,
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

    fn destination_url(d: &str, q: Option<String>) -> Result<String> {
        match parse_target(d, q)? {
            Target::Url(u) => Ok(u),
            Target::Topic(t) => Err(Error::not_found(t)),
        }
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
