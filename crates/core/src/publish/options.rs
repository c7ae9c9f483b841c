//! Parsing of the publish configuration (`Upstash-*` headers and their lowercase
//! query-parameter form) into [`PublishOptions`]. Every field is optional so the same
//! options serve a fresh publish (absent = default) and a DLQ retry (absent = keep).

use http::HeaderMap;

use crate::config::Limits;
use crate::duration::parse_duration;
use crate::error::{Error, Result};
use crate::headers::Headers;
use crate::message::{CallbackSpec, Redaction};
use crate::retry::RetryDelayExpr;

/// Methods a message may be delivered with.
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Request headers never forwarded by `Upstash-Header-Forward: true`.
const NOT_FORWARDED: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
    "authorization",
    "accept-encoding",
];

/// The publish configuration of one request.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PublishOptions {
    pub method: Option<String>,
    pub delay_ms: Option<u64>,
    /// `Upstash-Not-Before`, Unix seconds; wins over the delay.
    pub not_before_secs: Option<i64>,
    pub retries: Option<u32>,
    pub retry_delay: Option<RetryDelayExpr>,
    pub timeout_ms: Option<u64>,
    /// Headers for the destination (forwarded ones and `Content-Type`).
    pub forward: Headers,
    pub callback: Option<CallbackSpec>,
    pub failure_callback: Option<CallbackSpec>,
    pub dedup_id: Option<String>,
    pub content_dedup: bool,
    pub labels: Option<Vec<String>>,
    pub redact: Option<Redaction>,
    pub flow_control: Option<crate::flow::FlowControl>,
}

/// Where config values come from: request headers first, then `upstash-*` query parameters.
pub struct ConfigSource<'a> {
    pub headers: &'a HeaderMap,
    /// Query parameters whose lowercase name starts with `upstash-`.
    pub query: &'a [(String, String)],
}

impl ConfigSource<'_> {
    fn value(&self, name: &str) -> Option<&str> {
        if let Some(v) = self.headers.get(name) {
            return v.to_str().ok().map(str::trim);
        }
        let lower = name.to_ascii_lowercase();
        self.query
            .iter()
            .find(|(k, _)| k.to_ascii_lowercase() == lower)
            .map(|(_, v)| v.trim())
    }

    /// Every (lowercase name, value) pair from both places.
    fn entries(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        out.extend(
            self.query
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone())),
        );
        out
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        _ => Err(Error::bad_request(format!(
            "{name} must be true or false, got {value:?}"
        ))),
    }
}

fn parse_method(name: &str, value: &str) -> Result<String> {
    let method = value.to_ascii_uppercase();
    if METHODS.contains(&method.as_str()) {
        Ok(method)
    } else {
        Err(Error::bad_request(format!(
            "{name} must be one of {}, got {value:?}",
            METHODS.join(", ")
        )))
    }
}

fn parse_retries(name: &str, value: &str, limits: &Limits) -> Result<u32> {
    let n: u32 = value.parse().map_err(|_| {
        Error::bad_request(format!(
            "{name} must be a non-negative integer, got {value:?}"
        ))
    })?;
    if n > limits.max_retries {
        return Err(Error::bad_request(format!(
            "{name} must be at most {}, got {n}",
            limits.max_retries
        )));
    }
    Ok(n)
}

fn parse_delay(name: &str, value: &str, limits: &Limits) -> Result<u64> {
    let d = parse_duration(value).map_err(|e| Error::bad_request(format!("{name}: {e}")))?;
    if d > limits.max_delay {
        return Err(Error::bad_request(format!(
            "{name} exceeds the maximum delay of {}s",
            limits.max_delay.as_secs()
        )));
    }
    Ok(d.as_millis() as u64)
}

/// A timeout can only shorten the configured maximum, so longer values are capped.
fn parse_timeout(name: &str, value: &str, limits: &Limits) -> Result<u64> {
    let d = parse_duration(value).map_err(|e| Error::bad_request(format!("{name}: {e}")))?;
    if d.is_zero() {
        return Err(Error::bad_request(format!("{name} must be positive")));
    }
    Ok(d.min(limits.max_timeout).as_millis() as u64)
}

/// Checks that a destination or callback is an absolute http(s) URL with a host.
pub fn parse_url(name: &str, value: &str) -> Result<String> {
    let invalid = |why: &str| Error::bad_request(format!("invalid {name}: {why}"));
    let url =
        url::Url::parse(value).map_err(|e| invalid(&format!("{value:?} is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(
            "endpoint has invalid scheme, add http:// or https://",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host"));
    }
    Ok(value.to_string())
}

fn parse_redact(value: &str) -> Result<Redaction> {
    let mut r = Redaction::default();
    for field in value.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let lower = field.to_ascii_lowercase();
        let inner = lower
            .strip_prefix("header[")
            .or_else(|| lower.strip_prefix("headers["))
            .and_then(|rest| rest.strip_suffix(']'));
        match (lower.as_str(), inner) {
            ("body", _) => r.body = true,
            ("header" | "headers", _) => r.all_headers = true,
            (_, Some(name)) if !name.is_empty() => {
                r.headers.push(crate::headers::canonical_name(name))
            }
            _ => {
                return Err(Error::bad_request(format!(
                    "Upstash-Redact-Fields: unknown field {field:?} (use body, header or header[Name])"
                )));
            }
        }
    }
    Ok(r)
}

fn parse_labels(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Config names of a callback, after the `Upstash-Callback-` or `Upstash-Failure-Callback-` prefix.
const CALLBACK_CONFIG: &[&str] = &["method", "timeout", "retries", "retry-delay", "delay"];

fn parse_callback(
    src: &ConfigSource,
    prefix: &str,
    limits: &Limits,
) -> Result<Option<CallbackSpec>> {
    let Some(url) = src.value(prefix) else {
        return Ok(None);
    };
    let display = crate::headers::canonical_name(prefix);
    let mut spec = CallbackSpec {
        url: parse_url(&format!("{display} url"), url)?,
        ..Default::default()
    };
    let sub = |key: &str| {
        src.value(&format!("{prefix}-{key}"))
            .map(|v| (format!("{display}-{key}"), v))
    };
    if let Some((n, v)) = sub("method") {
        spec.method = Some(parse_method(&n, v)?);
    }
    if let Some((n, v)) = sub("timeout") {
        spec.timeout_ms = Some(parse_timeout(&n, v, limits)?);
    }
    if let Some((n, v)) = sub("retries") {
        spec.retries = Some(parse_retries(&n, v, limits)?);
    }
    if let Some((_, v)) = sub("retry-delay") {
        spec.retry_delay = Some(RetryDelayExpr::parse(v)?);
    }
    if let Some((n, v)) = sub("delay") {
        spec.delay_ms = Some(parse_delay(&n, v, limits)?);
    }
    // Any other `<prefix>-<Name>` is a header for the callback request: `-Forward-<Name>`
    // as documented, and bare `<Name>` as the Python SDK sends its callback headers.
    let start = format!("{prefix}-");
    for (name, value) in src.entries() {
        let Some(rest) = name.strip_prefix(&start) else {
            continue;
        };
        let rest = rest.strip_prefix("forward-").unwrap_or(rest);
        if !CALLBACK_CONFIG.contains(&rest) && !rest.is_empty() {
            spec.headers.append(rest, value);
        }
    }
    Ok(Some(spec))
}

/// Collects the headers sent on to the destination.
fn forwarded(src: &ConfigSource, forward_all: bool) -> Headers {
    let mut out = Headers::new();
    for (name, value) in src.entries() {
        if let Some(rest) = name.strip_prefix("upstash-forward-") {
            if !rest.is_empty() {
                out.append(rest, value);
            }
        } else if name == "content-type"
            || (forward_all
                && !name.starts_with("upstash-")
                && !NOT_FORWARDED.contains(&name.as_str()))
        {
            out.append(&name, value);
        }
    }
    out
}

impl PublishOptions {
    /// Parses and validates every publish config header of a request.
    pub fn parse(src: &ConfigSource, limits: &Limits) -> Result<Self> {
        let v = |name: &str| src.value(name);
        let mut o = Self::default();
        if let Some(m) = v("upstash-method") {
            o.method = Some(parse_method("Upstash-Method", m)?);
        }
        if let Some(d) = v("upstash-delay") {
            o.delay_ms = Some(parse_delay("Upstash-Delay", d, limits)?);
        }
        if let Some(nb) = v("upstash-not-before") {
            let secs = nb.parse::<i64>().map_err(|_| {
                Error::bad_request(format!(
                    "Upstash-Not-Before must be a Unix time in seconds, got {nb:?}"
                ))
            })?;
            if secs < 0 {
                return Err(Error::bad_request(
                    "Upstash-Not-Before must not be negative",
                ));
            }
            o.not_before_secs = Some(secs);
        }
        if let Some(r) = v("upstash-retries") {
            o.retries = Some(parse_retries("Upstash-Retries", r, limits)?);
        }
        if let Some(e) = v("upstash-retry-delay") {
            o.retry_delay = Some(RetryDelayExpr::parse(e)?);
        }
        if let Some(t) = v("upstash-timeout") {
            o.timeout_ms = Some(parse_timeout("Upstash-Timeout", t, limits)?);
        }
        let forward_all = v("upstash-header-forward")
            .map(|f| parse_bool("Upstash-Header-Forward", f))
            .transpose()?;
        o.forward = forwarded(src, forward_all.unwrap_or(false));
        o.callback = parse_callback(src, "upstash-callback", limits)?;
        o.failure_callback = parse_callback(src, "upstash-failure-callback", limits)?;
        o.dedup_id = v("upstash-deduplication-id")
            .filter(|d| !d.is_empty())
            .map(String::from);
        if let Some(c) = v("upstash-content-based-deduplication") {
            o.content_dedup = parse_bool("Upstash-Content-Based-Deduplication", c)?;
        }
        o.labels = v("upstash-label").map(parse_labels);
        o.redact = v("upstash-redact-fields").map(parse_redact).transpose()?;
        o.flow_control = crate::flow::FlowControl::parse(
            v("upstash-flow-control-key"),
            v("upstash-flow-control-value"),
        )?;
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(headers: &[(&str, &str)]) -> Result<PublishOptions> {
        parse_with_query(headers, &[])
    }

    fn parse_with_query(
        headers: &[(&str, &str)],
        query: &[(&str, &str)],
    ) -> Result<PublishOptions> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(http::HeaderName::try_from(*k).unwrap(), v.parse().unwrap());
        }
        let query: Vec<_> = query
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        PublishOptions::parse(
            &ConfigSource {
                headers: &map,
                query: &query,
            },
            &Limits::default(),
        )
    }

    #[test]
    fn config_headers_are_parsed() {
        let o = parse(&[
            ("Upstash-Method", "put"),
            ("Upstash-Delay", "1m30s"),
            ("Upstash-Retries", "5"),
            ("Upstash-Retry-Delay", "pow(2, retried) * 1000"),
            ("Upstash-Timeout", "10s"),
            ("Upstash-Label", "a, b"),
            ("Upstash-Deduplication-Id", "d1"),
            ("Upstash-Content-Based-Deduplication", "True"),
        ])
        .unwrap();
        assert_eq!(o.method.as_deref(), Some("PUT"));
        assert_eq!(o.delay_ms, Some(90_000));
        assert_eq!(o.retries, Some(5));
        assert_eq!(o.retry_delay.unwrap().as_str(), "pow(2, retried) * 1000");
        assert_eq!(o.timeout_ms, Some(10_000));
        assert_eq!(o.labels.unwrap(), ["a", "b"]);
        assert_eq!(o.dedup_id.as_deref(), Some("d1"));
        assert!(o.content_dedup);
    }

    #[test]
    fn forwarded_headers_lose_their_prefix_and_are_canonical() {
        let o = parse(&[
            ("upstash-forward-test-header", "v"),
            ("Content-Type", "application/json"),
            ("x-not-forwarded", "no"),
            ("Upstash-Telemetry-Sdk", "js"),
        ])
        .unwrap();
        let pairs: Vec<_> = o.forward.pairs().collect();
        assert_eq!(
            pairs,
            [("Content-Type", "application/json"), ("Test-Header", "v")]
        );
    }

    #[test]
    fn header_forward_sends_every_plain_header_but_credentials() {
        let o = parse(&[
            ("Upstash-Header-Forward", "true"),
            ("stripe-signature", "t=1"),
            ("authorization", "Bearer x"),
            ("upstash-retries", "1"),
        ])
        .unwrap();
        let pairs: Vec<_> = o.forward.pairs().collect();
        assert_eq!(pairs, [("Stripe-Signature", "t=1")]);
    }

    #[test]
    fn query_parameters_carry_config_too() {
        let o =
            parse_with_query(&[], &[("upstash-retries", "2"), ("upstash-delay", "100s")]).unwrap();
        assert_eq!((o.retries, o.delay_ms), (Some(2), Some(100_000)));
    }

    #[test]
    fn callbacks_take_their_own_config_and_headers() {
        let o = parse(&[
            ("Upstash-Callback", "https://cb.example.com/x"),
            ("Upstash-Callback-Retries", "1"),
            ("Upstash-Callback-Method", "PUT"),
            ("Upstash-Callback-Forward-X-Token", "t"),
            ("Upstash-Callback-Plain", "p"),
            ("Upstash-Failure-Callback", "http://localhost:9/f"),
            ("Upstash-Failure-Callback-Delay", "5s"),
        ])
        .unwrap();
        let cb = o.callback.unwrap();
        assert_eq!(cb.url, "https://cb.example.com/x");
        assert_eq!((cb.retries, cb.method.as_deref()), (Some(1), Some("PUT")));
        assert_eq!(cb.headers.first("X-Token"), Some("t"));
        assert_eq!(cb.headers.first("Plain"), Some("p"));
        let fcb = o.failure_callback.unwrap();
        assert_eq!(fcb.delay_ms, Some(5_000));
        assert!(fcb.headers.is_empty());
    }

    #[test]
    fn redaction_accepts_every_spelling() {
        let o = parse(&[(
            "Upstash-Redact-Fields",
            "body, headers[authorization],header[X-Key]",
        )])
        .unwrap();
        let r = o.redact.unwrap();
        assert!(r.body && !r.all_headers);
        assert_eq!(r.headers, ["Authorization", "X-Key"]);
        assert!(
            parse(&[("Upstash-Redact-Fields", "header")])
                .unwrap()
                .redact
                .unwrap()
                .all_headers
        );
        assert!(parse(&[("Upstash-Redact-Fields", "colour")]).is_err());
    }

    #[test]
    fn invalid_values_are_rejected_with_the_header_named() {
        let cases = [
            ("Upstash-Method", "FETCH"),
            ("Upstash-Delay", "soon"),
            ("Upstash-Retries", "-1"),
            ("Upstash-Retries", "1000"),
            ("Upstash-Retry-Delay", "pow(2"),
            ("Upstash-Timeout", "0s"),
            ("Upstash-Not-Before", "tomorrow"),
            ("Upstash-Callback", "ftp://x"),
            ("Upstash-Callback", "not a url"),
            ("Upstash-Content-Based-Deduplication", "maybe"),
        ];
        for (name, value) in cases {
            let err = parse(&[(name, value)]).unwrap_err();
            assert!(matches!(err, Error::BadRequest(_)), "{name}: {value}");
        }
        let err = parse(&[("Upstash-Retries", "x")]).unwrap_err().to_string();
        assert!(err.contains("Upstash-Retries"), "{err}");
    }

    #[test]
    fn a_long_timeout_is_capped_at_the_maximum() {
        let o = parse(&[("Upstash-Timeout", "1d")]).unwrap();
        assert_eq!(o.timeout_ms, Some(15 * 60 * 1000));
    }
}
