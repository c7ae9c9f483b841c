//! `/v2/queues`: create or update, list, read, delete, pause and resume FIFO queues.
//! Enqueueing lives with publishing (`POST /v2/enqueue/{queue}/{destination}`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use qpost_core::queue::QueueView;
use qpost_core::queues;

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{Id, JsonBody};

/// `GET|POST /v2/queues`, `GET|DELETE /v2/queues/{name}`, `POST /v2/queues/{name}/pause|resume`.
pub fn queue_routes() -> Router<ApiState> {
    Router::new()
        .route("/v2/queues", get(list).post(upsert))
        .route("/v2/queues/", get(list).post(upsert))
        .route("/v2/queues/{name}", get(read).delete(remove))
        .route("/v2/queues/{name}/pause", post(pause))
        .route("/v2/queues/{name}/resume", post(resume))
}

async fn upsert(
    State(state): State<ApiState>,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let request = queues::parse_upsert(body.as_ref())?;
    queues::upsert(&state.services, request).await?;
    Ok(StatusCode::OK)
}

async fn list(State(state): State<ApiState>) -> Result<Json<Vec<QueueView>>, ApiError> {
    Ok(Json(queues::list(&state.services).await?))
}

async fn read(State(state): State<ApiState>, Id(name): Id) -> Result<Json<QueueView>, ApiError> {
    Ok(Json(queues::get(&state.services, &name).await?))
}

async fn remove(State(state): State<ApiState>, Id(name): Id) -> Result<StatusCode, ApiError> {
    queues::delete(&state.services, &name).await?;
    Ok(StatusCode::OK)
}

async fn pause(State(state): State<ApiState>, Id(name): Id) -> Result<StatusCode, ApiError> {
    queues::set_paused(&state.services, &name, true).await?;
    Ok(StatusCode::OK)
}

async fn resume(State(state): State<ApiState>, Id(name): Id) -> Result<StatusCode, ApiError> {
    queues::set_paused(&state.services, &name, false).await?;
    Ok(StatusCode::OK)
}
