//! The URL group (topic) model: a named set of endpoints a publish fans out to.

use serde::{Deserialize, Serialize};

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
