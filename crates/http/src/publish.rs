//! `POST /v2/publish/{destination}`: the raw destination, query, headers and body go to
//! the core publish use case untouched, so a URL keeps its `//` and its own query.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use qpost_core::publish::{self, PublishRequest};
use qpost_core::wire::PublishedView;

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::read_body;

const PREFIX: &str = "/v2/publish/";

/// `POST /v2/publish/{destination}`; an empty destination gets the same 400 as a bad one.
pub fn publish_routes() -> Router<ApiState> {
    Router::new()
        .route("/v2/publish/{*destination}", post(publish))
        .route(PREFIX, post(publish))
}

async fn publish(State(state): State<ApiState>, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let body = read_body(body, state.services.limits.max_body_bytes).await?;
    let request = PublishRequest {
        destination: raw_destination(parts.uri.path()).to_string(),
        raw_query: parts.uri.query().map(String::from),
        caller_ip: caller_ip(&parts),
        headers: parts.headers,
        body,
    };
    let published = publish::publish(&state.services, request).await?;
    let first = published
        .first()
        .ok_or_else(|| qpost_core::Error::internal("publishing to a URL created no message"))?;
    let status = if first.deduplicated {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(PublishedView::from(first))).into_response())
}

/// The path after `/v2/publish/`, not percent-decoded (the path extractor would decode it).
fn raw_destination(path: &str) -> &str {
    path.split_once(PREFIX)
        .map_or("", |(_, destination)| destination)
}

/// The first `X-Forwarded-For` entry, else the peer address when the server records it.
fn caller_ip(parts: &Parts) -> Option<String> {
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
            raw_destination("/v2/publish/https://example.com/a%20b/"),
            "https://example.com/a%20b/"
        );
        assert_eq!(raw_destination("/v2/publish/"), "");
    }
}
