//! `/v2/events` (what the SDKs call) and `/v2/logs` (what the OpenAPI file names): one
//! handler, one answer shape, so either path serves every client.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use qpost_core::logs::{self, LogPageView, LogQuery};

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::QueryPairs;

/// `GET /v2/events` and `GET /v2/logs`, with or without a trailing slash.
pub fn log_routes() -> Router<ApiState> {
    Router::new()
        .route("/v2/events", get(list))
        .route("/v2/events/", get(list))
        .route("/v2/logs", get(list))
        .route("/v2/logs/", get(list))
}

async fn list(State(state): State<ApiState>, query: QueryPairs) -> Result<Response, ApiError> {
    let query = LogQuery::from_query(&query.0)?;
    let page = logs::list(&state.services, &query).await?;
    Ok(Json(LogPageView::from(&page)).into_response())
}
