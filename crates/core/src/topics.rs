//! URL group use cases (`/v2/topics`) and the fan-out of a publish to a group.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::Services;
use crate::error::{Error, Result};

async fn load(services: &Services, name: &str) -> Result<crate::topic::Topic> {
    services
        .topics
        .get_topic(name)
        .await?
        .ok_or_else(|| Error::not_found(format!("url group {name:?} not found")))
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
