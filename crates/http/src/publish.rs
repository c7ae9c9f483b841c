//! `POST /v2/publish/{destination}`: the raw destination, query, headers and body go to
//! the core publish use case untouched, so a URL keeps its `//` and its own query.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use qpost_core::publish::{self, PublishOutcome, PublishRequest};
use qpost_core::wire::PublishedView;

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::read_body;

const PREFIX: &str = "/v2/publish/";
const ENQUEUE_PREFIX: &str = "/v2/enqueue/";

/// `POST /v2/publish/{destination}`; an empty destination gets the same 400 as a bad one.
pub fn publish_routes() -> Router<ApiState> {
    Router::new()
        .route("/v2/publish/{*destination}", post(publish))
        .route(PREFIX, post(publish))
        .route("/v2/enqueue/{*queue_and_destination}", post(enqueue))
}

async fn publish(State(state): State<ApiState>, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let destination = raw_destination(parts.uri.path(), PREFIX).to_string();
    publish_to(&state, parts, body, destination, None).await
}

/// `POST /v2/enqueue/{queue}/{destination}`: a publish through a queue, created if missing.
async fn enqueue(State(state): State<ApiState>, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let rest = raw_destination(parts.uri.path(), ENQUEUE_PREFIX);
    let (queue, destination) = rest.split_once('/').unwrap_or((rest, ""));
    let (queue, destination) = (queue.to_string(), destination.to_string());
    publish_to(&state, parts, body, destination, Some(queue)).await
}

async fn publish_to(
    state: &ApiState,
    parts: Parts,
    body: axum::body::Body,
    destination: String,
    queue: Option<String>,
) -> Result<Response, ApiError> {
    let body = read_body(body, state.services.limits.max_body_bytes).await?;
    let request = PublishRequest {
        destination,
        raw_query: parts.uri.query().map(String::from),
        caller_ip: caller_ip(&parts),
        headers: parts.headers,
        body,
    };
    let outcome = publish::publish(&state.services, request, queue).await?;
    Ok(published_response(&outcome))
}

/// One object for a URL (202 when deduplicated), an array for a URL group.
pub(crate) fn published_response(outcome: &PublishOutcome) -> Response {
    let views: Vec<PublishedView> = outcome.messages.iter().map(PublishedView::from).collect();
    let all_duplicates = !views.is_empty() && views.iter().all(|v| v.deduplicated);
    let status = if all_duplicates {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    match (outcome.to_group, views.into_iter().next()) {
        (false, Some(single)) => (status, Json(single)).into_response(),
        _ => {
            let views: Vec<PublishedView> =
                outcome.messages.iter().map(PublishedView::from).collect();
            (status, Json(views)).into_response()
        }
    }
}

/// The path after `prefix`, not percent-decoded (the path extractor would decode it).
fn raw_destination<'a>(path: &'a str, prefix: &str) -> &'a str {
    path.split_once(prefix)
        .map_or("", |(_, destination)| destination)
}

/// The first `X-Forwarded-For` entry, else the peer address when the server records it.
pub(crate) fn caller_ip(parts: &Parts) -> Option<String> {
    let forwarded = parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let first = forwarded
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|ip| !ip.is_empty());
    let peer = || {
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string())
    };
    first.map(String::from).or_else(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_destination_is_everything_after_the_prefix_byte_for_byte() {
        assert_eq!(
            raw_destination("/v2/publish/https://example.com/a%20b/", PREFIX),
            "https://example.com/a%20b/"
        );
        assert_eq!(raw_destination("/v2/publish/", PREFIX), "");
    }
}
