//! The logs use case (`GET /v2/events`, `GET /v2/logs`): parse a listing request, read a
//! page of the event log, and show each event as the official SDKs parse a log entry.

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use crate::Services;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::filter::EventFilter;
use crate::headers::Headers;
use crate::ports::Page;

/// Default and largest page size of a log listing (the SDKs document 1000).
pub const MAX_COUNT: usize = 1000;

/// Parses `count`: absent means [`MAX_COUNT`], larger values are capped, and anything
/// but a positive integer is refused.
pub fn page_size(value: Option<&str>) -> Result<usize> {
    let Some(value) = value else {
        return Ok(MAX_COUNT);
    };
    match value.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n.min(MAX_COUNT as u64) as usize),
        // Digits too many for u64 are still a positive count: cap them like the rest.
        Err(_) if is_long_number(value.trim()) => Ok(MAX_COUNT),
        _ => Err(Error::bad_request(format!(
            "count must be a positive integer, got {value:?}"
        ))),
    }
}

fn is_long_number(s: &str) -> bool {
    s.len() > 19 && s.bytes().all(|b| b.is_ascii_digit()) && s.bytes().any(|b| b != b'0')
}

/// A parsed log listing request: which events, from where, how many.
#[derive(Clone, Debug, PartialEq)]
pub struct LogQuery {
    pub filter: EventFilter,
    /// Where the previous page ended; `None` (or empty) starts at the newest event.
    pub cursor: Option<String>,
    pub count: usize,
}

impl LogQuery {
    /// Parses the query string; unknown parameters, states, dates and counts are refused.
    pub fn from_query(pairs: &[(String, String)]) -> Result<Self> {
        let first = |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        Ok(Self {
            filter: EventFilter::from_query(pairs)?,
            cursor: first("cursor")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from),
            count: page_size(first("count"))?,
        })
    }
}

/// One page of events matching the query, newest first.
pub async fn list(services: &Services, query: &LogQuery) -> Result<Page<Event>> {
    services
        .events
        .list_events(&query.filter, query.cursor.as_deref(), query.count)
        .await
}

/// One log entry as the SDKs read it. Where SDKs disagree on a name, both are sent:
/// `responseHeader` (Python) and `responseHeaders` (OpenAPI), `retryDelayExpr` (Python)
/// and `retryDelayExpression`; `label` is the first of `labels`.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct LogEntryView<'a> {
    pub time: i64,
    pub message_id: &'a str,
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_delivery_time: Option<i64>,
    pub url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<&'a Headers>,
    /// The request body, base64; redacted bodies are the base64 of `REDACTED:<sha256>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
    /// The response body, base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_header: Option<&'a Headers>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_headers: Option<&'a Headers>,
    /// Per-attempt timeout in milliseconds, when the message set one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    pub method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_headers: Option<&'a Headers>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_callback: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_callback_headers: Option<&'a Headers>,
    pub max_retries: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_delay_expression: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_delay_expr: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub labels: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_control_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<u32>,
    /// Rate period in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    #[serde(rename = "callerIP", skip_serializing_if = "Option::is_none")]
    pub caller_ip: Option<&'a str>,
}

impl<'a> From<&'a Event> for LogEntryView<'a> {
    fn from(e: &'a Event) -> Self {
        let retry_delay = e.retry_delay_expression.as_deref();
        Self {
            time: e.time,
            message_id: e.message_id.as_str(),
            state: e.state.as_str(),
            error: e.error.as_deref(),
            next_delivery_time: e.next_delivery_time,
            url: &e.url,
            topic_name: e.topic_name.as_deref(),
            endpoint_name: e.endpoint_name.as_deref(),
            schedule_id: e.schedule_id.as_deref(),
            queue_name: e.queue_name.as_deref(),
            header: e.header.as_ref(),
            body: e.body.as_deref(),
            response_status: e.response_status,
            response_body: e.response_body.as_deref(),
            response_header: e.response_header.as_ref(),
            response_headers: e.response_header.as_ref(),
            timeout: e.timeout_ms,
            method: &e.method,
            callback: e.callback.as_deref(),
            callback_headers: e.callback_header.as_ref(),
            failure_callback: e.failure_callback.as_deref(),
            failure_callback_headers: e.failure_callback_header.as_ref(),
            max_retries: e.max_retries,
            retry_delay_expression: retry_delay,
            retry_delay_expr: retry_delay,
            label: e.labels.first().map(String::as_str),
            labels: &e.labels,
            flow_control_key: e.flow_control_key.as_deref(),
            parallelism: e.parallelism,
            rate: e.rate,
            period: e.period,
            caller_ip: e.caller_ip.as_deref(),
        }
    }
}

/// A page of log entries: the same array under `events` (SDKs) and `logs` (OpenAPI);
/// `cursor` only while more entries match.
#[derive(Debug)]
pub struct LogPageView<'a> {
    pub entries: Vec<LogEntryView<'a>>,
    pub cursor: Option<&'a str>,
}

impl<'a> From<&'a Page<Event>> for LogPageView<'a> {
    fn from(page: &'a Page<Event>) -> Self {
        Self {
            entries: page.items.iter().map(LogEntryView::from).collect(),
            cursor: page.cursor.as_deref().filter(|c| !c.is_empty()),
        }
    }
}

impl Serialize for LogPageView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut page = serializer.serialize_struct("LogPage", 3)?;
        match self.cursor {
            Some(cursor) => page.serialize_field("cursor", cursor)?,
            None => page.skip_field("cursor")?,
        }
        page.serialize_field("events", &self.entries)?;
        page.serialize_field("logs", &self.entries)?;
        page.end()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::delivery::attempt::Response;
    use crate::events::{AttemptEnd, EventState};
    use crate::flow::FlowControl;
    use crate::message::Redaction;
    use crate::test_support::message;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn view(e: &Event) -> Value {
        serde_json::to_value(LogEntryView::from(e)).unwrap()
    }

    #[test]
    fn count_defaults_to_1000_caps_larger_values_and_refuses_zero_or_garbage() {
        assert_eq!(page_size(None).unwrap(), 1000);
        assert_eq!(page_size(Some("5")).unwrap(), 5);
        assert_eq!(page_size(Some("1000")).unwrap(), 1000);
        assert_eq!(page_size(Some("5000")).unwrap(), 1000);
        assert_eq!(page_size(Some("99999999999999999999999")).unwrap(), 1000);
        for bad in ["0", "-1", "ten", "", "1.5", "000000000000000000000"] {
            assert!(
                matches!(page_size(Some(bad)), Err(Error::BadRequest(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_query_keeps_cursor_count_and_filters_and_refuses_unknown_names() {
        let query = LogQuery::from_query(&q(&[
            ("cursor", "42"),
            ("count", "7"),
            ("state", "CANCELLED,IN_PROGRESS"),
            ("label", "a"),
        ]))
        .unwrap();
        assert_eq!(query.cursor.as_deref(), Some("42"));
        assert_eq!(query.count, 7);
        assert_eq!(query.filter.states, [EventState::Canceled]);
        assert!(query.filter.in_progress);
        assert_eq!(query.filter.message.label, ["a"]);
        assert_eq!(
            LogQuery::from_query(&q(&[("cursor", "")])).unwrap().cursor,
            None
        );
        for bad in [
            ("colour", "red"),
            ("state", "SLEEPING"),
            ("fromDate", "yesterday"),
            ("count", "0"),
        ] {
            assert!(LogQuery::from_query(&q(&[bad])).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_entry_carries_both_spellings_of_the_fields_sdks_disagree_on() {
        let mut m = message();
        m.labels = vec!["first".into(), "second".into()];
        m.retry_delay = Some(crate::retry::RetryDelayExpr::parse("1000 * retried").unwrap());
        m.timeout_ms = Some(5_000);
        m.caller_ip = Some("1.2.3.4".into());
        m.flow_control = Some(FlowControl {
            key: "k".into(),
            parallelism: Some(2),
            rate: Some(5),
            period_secs: None,
        });
        let mut headers = http::HeaderMap::new();
        headers.insert("x-r", "1".parse().unwrap());
        let response = Response::Answered {
            status: 500,
            headers,
            body: b"boom".to_vec(),
        };
        let events = Event::attempt(&m, 1, 2, &response, AttemptEnd::Failed);
        let v = view(&events[1]);
        assert_eq!(v["state"], "ERROR");
        assert_eq!(v["responseStatus"], 500);
        assert_eq!(v["responseBody"], "Ym9vbQ==");
        assert_eq!(v["responseHeader"], json!({"X-R": ["1"]}));
        assert_eq!(v["responseHeaders"], v["responseHeader"]);
        assert_eq!(v["retryDelayExpression"], "1000 * retried");
        assert_eq!(v["retryDelayExpr"], "1000 * retried");
        assert_eq!(v["label"], "first");
        assert_eq!(v["labels"], json!(["first", "second"]));
        assert_eq!(v["timeout"], 5_000);
        assert_eq!(v["callerIP"], "1.2.3.4");
        assert_eq!(
            (
                &v["flowControlKey"],
                &v["parallelism"],
                &v["rate"],
                &v["period"]
            ),
            (&json!("k"), &json!(2), &json!(5), &json!(1))
        );
        for field in ["time", "messageId", "state", "url", "method", "maxRetries"] {
            assert!(v.get(field).is_some(), "{field}");
        }
    }

    #[test]
    fn a_created_entry_shows_redacted_fields_as_their_hash() {
        let mut m = message();
        m.body = b"secret".to_vec();
        m.headers.set("Authorization", "Bearer x");
        m.headers.set("X-Plain", "p");
        m.redact = Redaction {
            body: true,
            all_headers: false,
            headers: vec!["authorization".into()],
        };
        let v = view(&Event::created(&m));
        let hash = crate::wire::redacted(b"secret");
        let body = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            v["body"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(String::from_utf8(body).unwrap(), hash);
        assert_eq!(
            v["header"]["Authorization"][0],
            crate::wire::redacted(b"Bearer x")
        );
        assert_eq!(v["header"]["X-Plain"][0], "p");
    }

    #[test]
    fn a_page_puts_the_same_entries_under_events_and_logs_and_omits_a_final_cursor() {
        let m = message();
        let mut page = Page {
            items: Event::cancelled(&m, 5),
            cursor: None,
        };
        let v = serde_json::to_value(LogPageView::from(&page)).unwrap();
        assert_eq!(v["events"], v["logs"]);
        assert_eq!(v["events"][1]["state"], "CANCELED");
        assert!(v.get("cursor").is_none());
        page.cursor = Some("17".into());
        let v = serde_json::to_value(LogPageView::from(&page)).unwrap();
        assert_eq!(v["cursor"], "17");
    }
}
