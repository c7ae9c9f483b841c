//! URL group use cases (`/v2/topics`) and what the publish path asks of a group: its
//! endpoints to fan out to and its default headers.
//!
//! Every edit of a group is a read-modify-write of one document, so edits of the same
//! group are serialised by a per-name lock: two concurrent `addEndpoints` both land.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use tokio::sync::OwnedMutexGuard;

use crate::Services;
use crate::error::{Error, Result};
use crate::flow::is_valid_name;
use crate::headers::Headers;
use crate::publish::{ConfigSource, PublishOptions, parse_url};
use crate::topic::{Endpoint, EndpointSelector, Topic};

/// A header value in a JSON body: one string, or a list of strings (`PATCH` examples
/// use both, `{"Upstash-Retries":"3","Upstash-Header-Forward":["true"]}`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum HeaderValues {
    One(String),
    Many(Vec<String>),
}

impl HeaderValues {
    fn values(&self) -> &[String] {
        match self {
            Self::One(v) => std::slice::from_ref(v),
            Self::Many(vs) => vs,
        }
    }
}

/// Request headers from a JSON object of names to values; an invalid name or value is
/// a bad request naming it.
pub fn header_map(headers: &BTreeMap<String, HeaderValues>) -> Result<HeaderMap> {
    let mut map = HeaderMap::new();
    for (name, values) in headers {
        let n = HeaderName::try_from(name.as_str())
            .map_err(|_| Error::bad_request(format!("invalid header name {name:?}")))?;
        for value in values.values() {
            let v = HeaderValue::try_from(value.as_str()).map_err(|_| {
                Error::bad_request(format!("invalid value {value:?} of header {name:?}"))
            })?;
            map.append(n.clone(), v);
        }
    }
    Ok(map)
}

/// Checks a URL group name: alphanumerics, `-`, `_` and `.`.
pub fn check_name(name: &str) -> Result<()> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "invalid url group name {name:?}: use only alphanumerics, '-', '_' and '.'"
        )))
    }
}

/// One async lock per group name, dropped from the map once nobody holds or waits on it.
/// In-process only: it serialises edits within one server, which is all local mode needs.
#[derive(Default)]
struct NameLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl NameLocks {
    async fn lock(&self, name: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            map.retain(|_, l| Arc::strong_count(l) > 1);
            map.entry(name.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

static EDITS: LazyLock<NameLocks> = LazyLock::new(NameLocks::default);

async fn load(services: &Services, name: &str) -> Result<Topic> {
    services
        .topics
        .get_topic(name)
        .await?
        .ok_or_else(|| Error::not_found(format!("url group {name:?} not found")))
}

/// `GET /v2/topics/{name}`.
pub async fn get(services: &Services, name: &str) -> Result<Topic> {
    load(services, name).await
}

/// `GET /v2/topics`, by name.
pub async fn list(services: &Services) -> Result<Vec<Topic>> {
    services.topics.list_topics().await
}

/// An endpoint as `POST /v2/topics/{name}/endpoints` sends it, before validation.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct NewEndpoint {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

fn validate(endpoint: NewEndpoint) -> Result<Endpoint> {
    let url = endpoint
        .url
        .ok_or_else(|| Error::bad_request("each endpoint needs a url"))?;
    let url = parse_url("endpoint url", &url)?;
    let name = endpoint.name.filter(|n| !n.is_empty());
    if let Some(n) = &name
        && !is_valid_name(n)
    {
        return Err(Error::bad_request(format!(
            "invalid endpoint name {n:?}: use only alphanumerics, '-', '_' and '.'"
        )));
    }
    Ok(Endpoint { url, name })
}

/// `POST /v2/topics/{name}/endpoints`: creates the group if missing and upserts the
/// endpoints by URL. Any invalid endpoint refuses the whole request.
pub async fn add_endpoints(
    services: &Services,
    name: &str,
    endpoints: Vec<NewEndpoint>,
) -> Result<()> {
    check_name(name)?;
    if endpoints.is_empty() {
        return Err(Error::bad_request("endpoints must not be empty"));
    }
    let endpoints = endpoints
        .into_iter()
        .map(validate)
        .collect::<Result<Vec<_>>>()?;
    let _edit = EDITS.lock(name).await;
    let now = services.clock.now_ms();
    let mut topic = match services.topics.get_topic(name).await? {
        Some(topic) => topic,
        None => Topic::new(name, now),
    };
    for endpoint in endpoints {
        topic.upsert(endpoint)?;
    }
    topic.updated_at = now;
    services.topics.put_topic(&topic).await
}

/// `DELETE /v2/topics/{name}/endpoints`: removes endpoints by URL or name; removing the
/// last one deletes the group. A selector matching nothing refuses the whole request.
pub async fn remove_endpoints(
    services: &Services,
    name: &str,
    selectors: Vec<EndpointSelector>,
) -> Result<()> {
    if selectors.is_empty() {
        return Err(Error::bad_request("endpoints must not be empty"));
    }
    let _edit = EDITS.lock(name).await;
    let mut topic = load(services, name).await?;
    for selector in &selectors {
        topic.remove(selector)?;
    }
    if topic.endpoints.is_empty() {
        services.topics.delete_topic(name).await?;
        return Ok(());
    }
    topic.updated_at = services.clock.now_ms();
    services.topics.put_topic(&topic).await
}

/// `DELETE /v2/topics/{name}`. Messages already created for its endpoints stay.
pub async fn delete(services: &Services, name: &str) -> Result<()> {
    let _edit = EDITS.lock(name).await;
    if services.topics.delete_topic(name).await? {
        Ok(())
    } else {
        Err(Error::not_found(format!("url group {name:?} not found")))
    }
}

/// `PATCH /v2/topics/{name}`: replaces the group's default publish headers. They are
/// checked like a publish's headers now, so a bad default never fails publishes later.
pub async fn set_default_headers(
    services: &Services,
    name: &str,
    headers: &BTreeMap<String, HeaderValues>,
) -> Result<()> {
    let map = header_map(headers)?;
    let source = ConfigSource {
        headers: &map,
        query: &[],
    };
    PublishOptions::parse(&source, &services.limits)?;
    let _edit = EDITS.lock(name).await;
    let mut topic = load(services, name).await?;
    topic.headers = Headers::from_http(&map);
    topic.updated_at = services.clock.now_ms();
    services.topics.put_topic(&topic).await
}

/// The group's default publish headers, as request headers.
pub async fn default_headers(services: &Services, name: &str) -> Result<HeaderMap> {
    let topic = load(services, name).await?;
    let mut map = HeaderMap::new();
    for (name, value) in topic.headers.pairs() {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            map.append(n, v);
        }
    }
    Ok(map)
}

/// One (url, topic name, endpoint name) per endpoint of the group.
pub async fn endpoints(
    services: &Services,
    name: &str,
) -> Result<Vec<(String, Option<String>, Option<String>)>> {
    let topic = load(services, name).await?;
    if topic.endpoints.is_empty() {
        return Err(Error::not_found(format!(
            "url group {name:?} has no endpoints"
        )));
    }
    Ok(topic
        .endpoints
        .into_iter()
        .map(|e| (e.url, Some(topic.name.clone()), e.name))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, HeaderValues)]) -> BTreeMap<String, HeaderValues> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn header_values_may_be_a_string_or_a_list_of_strings() {
        let parsed: BTreeMap<String, HeaderValues> =
            serde_json::from_str(r#"{"Upstash-Retries":"3","X-A":["1","2"]}"#).unwrap();
        let map = header_map(&parsed).unwrap();
        assert_eq!(map.get("upstash-retries").unwrap(), "3");
        let xs: Vec<_> = map.get_all("x-a").iter().collect();
        assert_eq!(xs, ["1", "2"]);
    }

    #[test]
    fn invalid_header_names_and_values_are_bad_requests() {
        let bad_name = values(&[("bad name", HeaderValues::One("v".into()))]);
        assert!(matches!(header_map(&bad_name), Err(Error::BadRequest(_))));
        let bad_value = values(&[("X-A", HeaderValues::One("a\nb".into()))]);
        assert!(matches!(header_map(&bad_value), Err(Error::BadRequest(_))));
    }

    #[test]
    fn endpoints_need_an_http_url_and_a_valid_name() {
        let ok = validate(NewEndpoint {
            url: Some("https://example.com/a".into()),
            name: Some("ep-1".into()),
        })
        .unwrap();
        assert_eq!(ok.name.as_deref(), Some("ep-1"));
        for (url, name) in [
            (None, None),
            (Some("example.com"), None),
            (Some("ftp://x"), None),
            (Some("https://example.com"), Some("no spaces")),
        ] {
            let endpoint = NewEndpoint {
                url: url.map(String::from),
                name: name.map(String::from),
            };
            assert!(
                matches!(validate(endpoint), Err(Error::BadRequest(_))),
                "{url:?} {name:?}"
            );
        }
    }

    #[tokio::test]
    async fn edits_of_one_group_wait_for_each_other_but_other_groups_do_not() {
        let locks = NameLocks::default();
        let held = locks.lock("g").await;
        let other = tokio::time::timeout(std::time::Duration::from_secs(1), locks.lock("h")).await;
        assert!(other.is_ok(), "another group's lock is free");
        let same =
            tokio::time::timeout(std::time::Duration::from_millis(50), locks.lock("g")).await;
        assert!(same.is_err(), "the same group's lock is held");
        drop(held);
        let again = tokio::time::timeout(std::time::Duration::from_secs(1), locks.lock("g")).await;
        assert!(again.is_ok(), "released after the holder is done");
    }
}
