//! The URL group (topic) model: a named set of endpoints a publish fans out to, and the
//! rules for editing it (endpoints are upserted by URL, names are unique in a group).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::headers::Headers;

/// One endpoint of a URL group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub url: String,
}

/// A URL group. `headers` are default publish headers (`PATCH /v2/topics/{name}`),
/// applied to every publish to the group unless the request sets them itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Topic {
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub endpoints: Vec<Endpoint>,
    #[serde(default, skip_serializing_if = "Headers::is_empty")]
    pub headers: Headers,
}

/// Which endpoint to remove: by URL, by name, or by both (then both must match).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct EndpointSelector {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

impl EndpointSelector {
    fn matches(&self, e: &Endpoint) -> bool {
        let url_ok = self.url.as_ref().is_none_or(|u| *u == e.url);
        let name_ok = self
            .name
            .as_ref()
            .is_none_or(|n| e.name.as_ref() == Some(n));
        url_ok && name_ok
    }

    /// What the selector names, for error messages.
    fn describe(&self) -> String {
        match (&self.url, &self.name) {
            (Some(url), Some(name)) => format!("url {url:?} named {name:?}"),
            (Some(url), None) => format!("url {url:?}"),
            (None, Some(name)) => format!("name {name:?}"),
            (None, None) => "nothing".into(),
        }
    }
}

impl Topic {
    /// An empty group created at `now`.
    pub fn new(name: &str, now: i64) -> Self {
        Self {
            name: name.to_string(),
            created_at: now,
            updated_at: now,
            endpoints: Vec::new(),
            headers: Headers::new(),
        }
    }

    /// Adds `endpoint`, or updates the endpoint with the same URL. An update without a
    /// name keeps the old name. A name held by another URL is refused and nothing changes.
    pub fn upsert(&mut self, endpoint: Endpoint) -> Result<()> {
        if let Some(name) = &endpoint.name {
            let taken = self
                .endpoints
                .iter()
                .find(|e| e.name.as_ref() == Some(name) && e.url != endpoint.url);
            if let Some(other) = taken {
                return Err(Error::bad_request(format!(
                    "endpoint name {name:?} is already used by {:?} in url group {:?}",
                    other.url, self.name
                )));
            }
        }
        match self.endpoints.iter_mut().find(|e| e.url == endpoint.url) {
            Some(existing) if endpoint.name.is_some() => existing.name = endpoint.name,
            Some(_) => {}
            None => self.endpoints.push(endpoint),
        }
        Ok(())
    }

    /// Removes every endpoint `selector` matches; a selector matching none is refused.
    pub fn remove(&mut self, selector: &EndpointSelector) -> Result<()> {
        if selector.url.is_none() && selector.name.is_none() {
            return Err(Error::bad_request(
                "each endpoint to remove needs a url or a name",
            ));
        }
        let before = self.endpoints.len();
        self.endpoints.retain(|e| !selector.matches(e));
        if self.endpoints.len() == before {
            return Err(Error::not_found(format!(
                "url group {:?} has no endpoint with {}",
                self.name,
                selector.describe()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str, name: Option<&str>) -> Endpoint {
        Endpoint {
            url: url.into(),
            name: name.map(String::from),
        }
    }

    fn select(url: Option<&str>, name: Option<&str>) -> EndpointSelector {
        EndpointSelector {
            url: url.map(String::from),
            name: name.map(String::from),
        }
    }

    #[test]
    fn upserting_an_existing_url_updates_its_name_instead_of_adding_it_twice() {
        let mut t = Topic::new("g", 1);
        t.upsert(endpoint("https://a", None)).unwrap();
        t.upsert(endpoint("https://a", Some("first"))).unwrap();
        t.upsert(endpoint("https://a", None)).unwrap();
        assert_eq!(t.endpoints, [endpoint("https://a", Some("first"))]);
    }

    #[test]
    fn a_name_already_used_by_another_url_is_refused_and_changes_nothing() {
        let mut t = Topic::new("g", 1);
        t.upsert(endpoint("https://a", Some("n"))).unwrap();
        let err = t.upsert(endpoint("https://b", Some("n"))).unwrap_err();
        assert!(matches!(err, Error::BadRequest(_)), "{err}");
        assert_eq!(t.endpoints, [endpoint("https://a", Some("n"))]);
    }

    #[test]
    fn endpoints_are_removed_by_url_by_name_or_by_both() {
        let mut t = Topic::new("g", 1);
        for (url, name) in [("https://a", "a"), ("https://b", "b"), ("https://c", "c")] {
            t.upsert(endpoint(url, Some(name))).unwrap();
        }
        t.remove(&select(Some("https://a"), None)).unwrap();
        t.remove(&select(None, Some("b"))).unwrap();
        let mismatch = t.remove(&select(Some("https://c"), Some("b")));
        assert!(matches!(mismatch, Err(Error::NotFound(_))));
        t.remove(&select(Some("https://c"), Some("c"))).unwrap();
        assert!(t.endpoints.is_empty());
    }

    #[test]
    fn an_empty_selector_is_a_bad_request() {
        let mut t = Topic::new("g", 1);
        t.upsert(endpoint("https://a", None)).unwrap();
        assert!(matches!(
            t.remove(&select(None, None)),
            Err(Error::BadRequest(_))
        ));
        assert_eq!(t.endpoints.len(), 1);
    }

    #[test]
    fn the_wire_shape_omits_absent_names_and_empty_default_headers() {
        let mut t = Topic::new("g", 5);
        t.upsert(endpoint("https://a", None)).unwrap();
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"name":"g","createdAt":5,"updatedAt":5,"endpoints":[{"url":"https://a"}]})
        );
    }
}
