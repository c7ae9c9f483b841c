//! Filters of the bulk message and DLQ endpoints, parsed from the query string or a
//! legacy JSON body. Values of one filter are OR-ed, filters are AND-ed.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::message::{DlqEntry, Message};

/// Selection of messages by their fields (`/v2/messages`, `/v2/dlq`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MessageFilter {
    pub message_ids: Vec<String>,
    pub url: Vec<String>,
    pub host: Vec<String>,
    pub path: Vec<String>,
    pub topic_name: Vec<String>,
    pub queue_name: Vec<String>,
    pub schedule_id: Vec<String>,
    pub label: Vec<String>,
    pub flow_control_key: Vec<String>,
    pub caller_ip: Vec<String>,
    pub from_date: Option<i64>,
    pub to_date: Option<i64>,
}

/// Selection of DLQ entries: the message filter plus DLQ-only fields.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DlqFilter {
    pub dlq_ids: Vec<String>,
    pub message: MessageFilter,
    pub response_status: Vec<u16>,
}

/// Which endpoint family a filter is parsed for: the DLQ refuses `host`/`path`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Messages,
    Dlq,
}

/// Query parameters every list or bulk endpoint also takes, ignored by the filter.
const PAGING: &[&str] = &[
    "cursor",
    "count",
    "qstash_token",
    "order",
    "api",
    "trimBody",
];

fn push_values(target: &mut Vec<String>, value: &str) {
    target.extend(
        value
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from),
    );
}

fn parse_ms(name: &str, value: &str) -> Result<i64> {
    value.trim().parse::<i64>().map_err(|_| {
        Error::bad_request(format!(
            "{name} must be a Unix time in milliseconds, got {value:?}"
        ))
    })
}

impl MessageFilter {
    /// Applies one `name=value` pair; `Ok(false)` when the name is not a message filter.
    fn set(&mut self, name: &str, value: &str, scope: Scope) -> Result<bool> {
        let target = match name {
            "messageIds" | "messageId" => &mut self.message_ids,
            "url" => &mut self.url,
            "host" | "path" if scope == Scope::Dlq => {
                return Err(Error::bad_request(format!(
                    "the DLQ cannot be filtered by {name}"
                )));
            }
            "host" => &mut self.host,
            "path" => &mut self.path,
            "topicName" => &mut self.topic_name,
            "queueName" => &mut self.queue_name,
            "scheduleId" => &mut self.schedule_id,
            "label" | "labels" => &mut self.label,
            "flowControlKey" => &mut self.flow_control_key,
            "callerIp" | "callerIP" => &mut self.caller_ip,
            "fromDate" => {
                self.from_date = Some(parse_ms(name, value)?);
                return Ok(true);
            }
            "toDate" => {
                self.to_date = Some(parse_ms(name, value)?);
                return Ok(true);
            }
            _ => return Ok(false),
        };
        push_values(target, value);
        Ok(true)
    }

    /// Parses the query-string form of `/v2/messages` filters.
    pub fn from_query(pairs: &[(String, String)]) -> Result<Self> {
        let mut filter = Self::default();
        for (name, value) in pairs {
            if !filter.set(name, value, Scope::Messages)? && !PAGING.contains(&name.as_str()) {
                return Err(Error::bad_request(format!("unknown filter {name:?}")));
            }
        }
        Ok(filter)
    }

    /// Whether nothing narrows the selection (bulk cancel then means "all").
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn matches(&self, m: &Message) -> bool {
        self.matches_fields(&Fields {
            id: m.id.as_str(),
            url: &m.url,
            topic_name: m.topic_name.as_deref(),
            queue_name: m.queue_name.as_deref(),
            schedule_id: m.schedule_id.as_deref(),
            caller_ip: m.caller_ip.as_deref(),
            flow_control_key: m.flow_control.as_ref().map(|f| f.key.as_str()),
            labels: &m.labels,
            time: m.created_at,
        })
    }

    fn matches_fields(&self, f: &Fields) -> bool {
        let parsed = url::Url::parse(f.url).ok();
        let host = parsed
            .as_ref()
            .and_then(|u| u.host_str())
            .unwrap_or_default();
        let path = parsed.as_ref().map(|u| u.path()).unwrap_or_default();
        any(&self.message_ids, Some(f.id))
            && any(&self.url, Some(f.url))
            && any(&self.host, Some(host))
            && any(&self.path, Some(path))
            && any(&self.topic_name, f.topic_name)
            && any(&self.queue_name, f.queue_name)
            && any(&self.schedule_id, f.schedule_id)
            && any(&self.caller_ip, f.caller_ip)
            && any(&self.flow_control_key, f.flow_control_key)
            && (self.label.is_empty() || f.labels.iter().any(|l| self.label.contains(l)))
            && in_range(self.from_date, self.to_date, f.time)
    }
}

/// The fields filters look at, read off a message or an event.
struct Fields<'a> {
    id: &'a str,
    url: &'a str,
    topic_name: Option<&'a str>,
    queue_name: Option<&'a str>,
    schedule_id: Option<&'a str>,
    caller_ip: Option<&'a str>,
    flow_control_key: Option<&'a str>,
    labels: &'a [String],
    /// Creation time for messages, event time for events.
    time: i64,
}

/// Selection of log events: the message filter plus states.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventFilter {
    pub message: MessageFilter,
    pub states: Vec<crate::events::EventState>,
    /// `IN_PROGRESS` was asked for: ACTIVE, RETRY or ERROR.
    pub in_progress: bool,
}

impl EventFilter {
    /// Parses the query string of `/v2/events` and `/v2/logs`.
    pub fn from_query(pairs: &[(String, String)]) -> Result<Self> {
        let mut filter = Self::default();
        for (name, value) in pairs {
            if name == "state" {
                for s in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if s.eq_ignore_ascii_case("IN_PROGRESS") {
                        filter.in_progress = true;
                        continue;
                    }
                    let state = crate::events::EventState::parse(s)
                        .ok_or_else(|| Error::bad_request(format!("unknown state {s:?}")))?;
                    filter.states.push(state);
                }
            } else if !filter.message.set(name, value, Scope::Messages)?
                && !PAGING.contains(&name.as_str())
            {
                return Err(Error::bad_request(format!("unknown filter {name:?}")));
            }
        }
        Ok(filter)
    }

    pub fn matches(&self, e: &crate::events::Event) -> bool {
        use crate::events::EventState::{Active, Error as ErrorState, Retry};
        let state_ok = (self.states.is_empty() && !self.in_progress)
            || self.states.contains(&e.state)
            || (self.in_progress && matches!(e.state, Active | Retry | ErrorState));
        state_ok
            && self.message.matches_fields(&Fields {
                id: e.message_id.as_str(),
                url: &e.url,
                topic_name: e.topic_name.as_deref(),
                queue_name: e.queue_name.as_deref(),
                schedule_id: e.schedule_id.as_deref(),
                caller_ip: e.caller_ip.as_deref(),
                flow_control_key: e.flow_control_key.as_deref(),
                labels: &e.labels,
                time: e.time,
            })
    }
}

fn any(wanted: &[String], actual: Option<&str>) -> bool {
    wanted.is_empty() || actual.is_some_and(|a| wanted.iter().any(|w| w == a))
}

fn in_range(from: Option<i64>, to: Option<i64>, t: i64) -> bool {
    from.is_none_or(|f| t >= f) && to.is_none_or(|to| t <= to)
}

impl DlqFilter {
    /// Parses the query-string form of `/v2/dlq` filters.
    pub fn from_query(pairs: &[(String, String)]) -> Result<Self> {
        let mut filter = Self::default();
        for (name, value) in pairs {
            filter.set(name, value)?;
        }
        Ok(filter)
    }

    fn set(&mut self, name: &str, value: &str) -> Result<()> {
        match name {
            "dlqIds" | "dlqId" => push_values(&mut self.dlq_ids, value),
            "responseStatus" => {
                for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                    let status = v.parse().map_err(|_| {
                        Error::bad_request(format!(
                            "responseStatus must be an HTTP status, got {v:?}"
                        ))
                    })?;
                    self.response_status.push(status);
                }
            }
            _ => {
                if !self.message.set(name, value, Scope::Dlq)? && !PAGING.contains(&name) {
                    return Err(Error::bad_request(format!("unknown filter {name:?}")));
                }
            }
        }
        Ok(())
    }

    /// Parses a legacy JSON body (`{"dlqIds": [...]}` and the filter fields).
    pub fn from_json(body: &Value) -> Result<Self> {
        let mut filter = Self::default();
        for (name, value) in json_pairs(body)? {
            filter.set(&name, &value)?;
        }
        Ok(filter)
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn matches(&self, e: &DlqEntry) -> bool {
        let failed_at = crate::ids::dlq_sort_key(&e.dlq_id).map_or(e.message.created_at, |k| k.0);
        let mut message = self.message.clone();
        let (from, to) = (message.from_date.take(), message.to_date.take());
        any(&self.dlq_ids, Some(&e.dlq_id))
            && (self.response_status.is_empty()
                || e.response_status
                    .is_some_and(|s| self.response_status.contains(&s)))
            && message.matches(&e.message)
            && in_range(from, to, failed_at)
    }
}

impl MessageFilter {
    /// Parses a legacy JSON body (`{"messageIds": [...]}` and the filter fields).
    pub fn from_json(body: &Value) -> Result<Self> {
        let mut filter = Self::default();
        for (name, value) in json_pairs(body)? {
            if !filter.set(&name, &value, Scope::Messages)? && !PAGING.contains(&name.as_str()) {
                return Err(Error::bad_request(format!("unknown filter {name:?}")));
            }
        }
        Ok(filter)
    }
}

/// Flattens a JSON object of strings, numbers and arrays of them into name/value pairs.
fn json_pairs(body: &Value) -> Result<Vec<(String, String)>> {
    let Value::Object(map) = body else {
        return Err(Error::bad_request("the request body must be a JSON object"));
    };
    let mut pairs = Vec::new();
    for (name, value) in map {
        let values = match value {
            Value::Array(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            other => vec![other],
        };
        for v in values {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => {
                    return Err(Error::bad_request(format!(
                        "{name} must be a string or a number"
                    )));
                }
            };
            pairs.push((name.clone(), text));
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn repeated_and_comma_separated_values_are_both_accepted() {
        let f = MessageFilter::from_query(&q(&[("label", "a,b"), ("label", "c"), ("count", "5")]))
            .unwrap();
        assert_eq!(f.label, ["a", "b", "c"]);
    }

    #[test]
    fn the_dlq_refuses_host_and_path_filters() {
        assert!(DlqFilter::from_query(&q(&[("host", "example.com")])).is_err());
        assert!(MessageFilter::from_query(&q(&[("host", "example.com")])).is_ok());
    }

    #[test]
    fn unknown_filters_and_bad_dates_are_rejected() {
        assert!(MessageFilter::from_query(&q(&[("colour", "red")])).is_err());
        assert!(DlqFilter::from_query(&q(&[("fromDate", "yesterday")])).is_err());
        assert!(DlqFilter::from_query(&q(&[("responseStatus", "abc")])).is_err());
    }

    #[test]
    fn legacy_json_bodies_become_filters() {
        let body = serde_json::json!({"dlqIds": ["1-0", "2-0"], "url": "https://x"});
        let f = DlqFilter::from_json(&body).unwrap();
        assert_eq!(f.dlq_ids, ["1-0", "2-0"]);
        assert_eq!(f.message.url, ["https://x"]);
        assert!(DlqFilter::from_json(&serde_json::json!([1])).is_err());
    }
}
