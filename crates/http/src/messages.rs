//! `/v2/messages`: read and cancel pending messages, one at a time or in bulk.

use axum::extract::State;
use axum::routing::{delete, get};
use axum::{Json, Router};
use qpost_core::filter::MessageFilter;
use qpost_core::messages;
use qpost_core::wire::MessageView;
use serde::Serialize;

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{Id, JsonBody, QueryPairs};

/// `GET|DELETE /v2/messages/{id}` and the bulk cancel `DELETE /v2/messages`.
pub fn message_routes() -> Router<ApiState> {
    Router::new()
        .route("/v2/messages", delete(cancel_many))
        .route("/v2/messages/", delete(cancel_many))
        .route("/v2/messages/{id}", get(read).delete(cancel))
}

/// The body of both cancel answers; the JS SDK parses it even for a single cancel.
#[derive(Serialize)]
struct Cancelled {
    cancelled: u64,
}

async fn read(State(state): State<ApiState>, Id(id): Id) -> Result<Json<MessageView>, ApiError> {
    let message = messages::get(&state.services, &id).await?;
    Ok(Json(MessageView::from(&message)))
}

async fn cancel(State(state): State<ApiState>, Id(id): Id) -> Result<Json<Cancelled>, ApiError> {
    let cancelled = messages::cancel(&state.services, &id).await?;
    Ok(Json(Cancelled { cancelled }))
}

async fn cancel_many(
    State(state): State<ApiState>,
    query: QueryPairs,
    JsonBody(body): JsonBody,
) -> Result<Json<Cancelled>, ApiError> {
    let filter = selection(&query, body.as_ref())?;
    let count = messages::cancel_count(query.first("count"))?;
    let cancelled = messages::cancel_many(&state.services, &filter, count).await?;
    Ok(Json(Cancelled { cancelled }))
}

/// Ids or filters from the query (current SDKs) or, when the query names none, from the
/// legacy JSON body (`{"messageIds": [...]}`; an empty list there means all).
fn selection(
    query: &QueryPairs,
    body: Option<&serde_json::Value>,
) -> Result<MessageFilter, ApiError> {
    let from_query = MessageFilter::from_query(&query.0)?;
    match body {
        Some(json) if from_query.is_empty() => Ok(MessageFilter::from_json(json)?),
        _ => Ok(from_query),
    }
}
