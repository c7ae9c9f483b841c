//! Header maps as the wire shows them: Go-canonical names mapped to lists of values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Headers keyed by canonical name (`content-type` → `Content-Type`), values in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Headers(BTreeMap<String, Vec<String>>);

/// Go's `http.CanonicalHeaderKey`: upper-case the first letter and every letter after
/// a hyphen, lower-case the rest. Names with characters outside a token stay as given.
pub fn canonical_name(name: &str) -> String {
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b))
    {
        return name.to_string();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value under the canonical form of `name`.
    pub fn append(&mut self, name: &str, value: impl Into<String>) {
        self.0
            .entry(canonical_name(name))
            .or_default()
            .push(value.into());
    }

    /// Replaces every value of `name`.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.insert(canonical_name(name), vec![value.into()]);
    }

    pub fn get(&self, name: &str) -> Option<&[String]> {
        self.0.get(&canonical_name(name)).map(Vec::as_slice)
    }

    /// The first value of `name`.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.first()).map(String::as_str)
    }

    pub fn remove(&mut self, name: &str) -> Option<Vec<String>> {
        self.0.remove(&canonical_name(name))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Every (name, value) pair, one per value.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| (k.as_str(), v.as_str())))
    }

    /// Copies the headers of an HTTP response or request, values that are not UTF-8
    /// decoded lossily.
    pub fn from_http(map: &http::HeaderMap) -> Self {
        let mut out = Self::new();
        for (name, value) in map {
            out.append(name.as_str(), String::from_utf8_lossy(value.as_bytes()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_canonicalised_like_go() {
        assert_eq!(canonical_name("test-header"), "Test-Header");
        assert_eq!(canonical_name("CONTENT-TYPE"), "Content-Type");
        assert_eq!(
            canonical_name("bypass-tunnel-reminder"),
            "Bypass-Tunnel-Reminder"
        );
        assert_eq!(canonical_name("x y"), "x y");
    }

    #[test]
    fn values_of_one_name_in_any_case_are_kept_together() {
        let mut h = Headers::new();
        h.append("x-a", "1");
        h.append("X-A", "2");
        assert_eq!(h.get("x-A"), Some(&["1".to_string(), "2".to_string()][..]));
        assert_eq!(serde_json::to_string(&h).unwrap(), r#"{"X-A":["1","2"]}"#);
    }
}
