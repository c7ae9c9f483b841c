//! One HTTP attempt: build the signed request, send it with its timeout, and classify
//! what came back. A failing destination is data here, never an `Err`.

use std::time::Duration;

use http::HeaderMap;

use crate::headers::Headers;
use crate::message::Message;
use crate::retry::{default_backoff, retry_after};
use crate::signing::{SigningKey, sign};

/// What the destination did with one attempt.
#[derive(Clone, Debug)]
pub enum Response {
    /// It answered (any status).
    Answered {
        status: u16,
        headers: HeaderMap,
        body: Vec<u8>,
    },
    /// No usable answer: timeout or connection failure.
    NoAnswer { error: String },
}

impl Response {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Answered { status, .. } => Some(*status),
            Self::NoAnswer { .. } => None,
        }
    }

    pub fn headers(&self) -> Headers {
        match self {
            Self::Answered { headers, .. } => Headers::from_http(headers),
            Self::NoAnswer { .. } => Headers::new(),
        }
    }

    pub fn body(&self) -> &[u8] {
        match self {
            Self::Answered { body, .. } => body,
            Self::NoAnswer { .. } => &[],
        }
    }

    pub fn error(&self) -> Option<&str> {
        match self {
            Self::Answered { .. } => None,
            Self::NoAnswer { error } => Some(error),
        }
    }
}

/// What the attempt means for the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Try again at this time (Unix ms).
    Retry(i64),
    /// No more attempts: retries exhausted or the destination refused retries.
    Failed,
}

/// Where the attempt goes and with what.
pub struct Attempt<'a> {
    pub message: &'a Message,
    pub key: &'a SigningKey,
    pub now_ms: i64,
    pub timeout: Duration,
    pub max_response_bytes: usize,
    /// Refuse literal non-public addresses (names are filtered by the client's resolver).
    pub block_private: bool,
}

/// Sends one attempt. Every destination failure comes back as [`Response::NoAnswer`].
pub async fn send(client: &reqwest::Client, a: Attempt<'_>) -> Response {
    let m = a.message;
    if a.block_private
        && let Err(error) = crate::egress::check_literal(&m.url)
    {
        return Response::NoAnswer { error };
    }
    let method = reqwest::Method::from_bytes(m.method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut req = client.request(method, &m.url).timeout(a.timeout);
    for (name, value) in m.headers.pairs() {
        req = req.header(name, value);
    }
    req = req
        .header("User-Agent", "Upstash-QStash")
        .header("Upstash-Message-Id", m.id.as_str())
        .header("Upstash-Retried", m.retried.to_string())
        .header(
            "Upstash-Signature",
            sign(a.key, &m.url, &m.body, a.now_ms.div_euclid(1000)),
        );
    for (name, value) in [
        ("Upstash-Caller-Ip", &m.caller_ip),
        ("Upstash-Schedule-Id", &m.schedule_id),
        ("Upstash-Topic-Name", &m.topic_name),
    ] {
        if let Some(value) = value {
            req = req.header(name, value);
        }
    }
    let result = async {
        let mut resp = req.body(m.body.clone()).send().await?;
        let status = resp.status().as_u16();
        let headers = std::mem::take(resp.headers_mut());
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            let room = a.max_response_bytes.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if room <= chunk.len() {
                break;
            }
        }
        Ok::<_, reqwest::Error>(Response::Answered {
            status,
            headers,
            body,
        })
    };
    result.await.unwrap_or_else(|e| Response::NoAnswer {
        error: describe(&e, a.timeout),
    })
}

/// A client-facing description of a transport failure, without qpost internals.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("request timed out after {}ms", timeout.as_millis());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// Decides success, retry or failure. `now_ms` is when the attempt ended.
pub fn classify(m: &Message, response: &Response, now_ms: i64) -> Verdict {
    if let Response::Answered {
        status, headers, ..
    } = response
    {
        if (200..300).contains(status) {
            return Verdict::Delivered;
        }
        if *status == 489 && non_retryable(headers) {
            return Verdict::Failed;
        }
    }
    if !m.has_retries_left() {
        return Verdict::Failed;
    }
    let wait = match response {
        Response::Answered { headers, .. } => retry_after(headers, now_ms),
        Response::NoAnswer { .. } => None,
    };
    let wait = wait.unwrap_or_else(|| match &m.retry_delay {
        Some(expr) => expr.eval(m.retried),
        None => default_backoff(m.retried + 1),
    });
    Verdict::Retry(now_ms.saturating_add(wait.as_millis() as i64))
}

fn non_retryable(headers: &HeaderMap) -> bool {
    headers
        .get("upstash-nonretryable-error")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::message;

    fn answered(status: u16, headers: &[(&str, &str)]) -> Response {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(http::HeaderName::try_from(*k).unwrap(), v.parse().unwrap());
        }
        Response::Answered {
            status,
            headers: map,
            body: vec![],
        }
    }

    #[test]
    fn any_2xx_is_delivered() {
        let m = message();
        for status in [200, 201, 204, 299] {
            assert_eq!(classify(&m, &answered(status, &[]), 0), Verdict::Delivered);
        }
    }

    #[test]
    fn non_2xx_answers_and_transport_errors_are_retried_with_default_backoff() {
        let m = message();
        assert_eq!(
            classify(&m, &answered(500, &[]), 1_000),
            Verdict::Retry(1_000 + 12_182)
        );
        assert_eq!(classify(&m, &answered(302, &[]), 0), Verdict::Retry(12_182));
        let timeout = Response::NoAnswer {
            error: "timed out".into(),
        };
        assert_eq!(classify(&m, &timeout, 0), Verdict::Retry(12_182));
    }

    #[test]
    fn the_second_retry_waits_longer() {
        let mut m = message();
        m.retried = 1;
        assert_eq!(
            classify(&m, &answered(500, &[]), 0),
            Verdict::Retry(148_413)
        );
    }

    #[test]
    fn a_489_with_the_non_retryable_header_fails_at_once() {
        let m = message();
        let v = classify(
            &m,
            &answered(489, &[("Upstash-NonRetryable-Error", "true")]),
            0,
        );
        assert_eq!(v, Verdict::Failed);
        assert!(matches!(
            classify(&m, &answered(489, &[]), 0),
            Verdict::Retry(_)
        ));
    }

    #[test]
    fn exhausted_retries_fail() {
        let mut m = message();
        m.retried = m.max_retries;
        assert_eq!(classify(&m, &answered(500, &[]), 0), Verdict::Failed);
    }

    #[test]
    fn retry_after_beats_the_expression_which_beats_the_default() {
        let mut m = message();
        m.retry_delay = Some(crate::retry::RetryDelayExpr::parse("1000 * (1 + retried)").unwrap());
        assert_eq!(classify(&m, &answered(500, &[]), 0), Verdict::Retry(1_000));
        m.retried = 2;
        assert_eq!(classify(&m, &answered(500, &[]), 0), Verdict::Retry(3_000));
        assert_eq!(
            classify(&m, &answered(429, &[("Retry-After", "7")]), 0),
            Verdict::Retry(7_000)
        );
    }
}
