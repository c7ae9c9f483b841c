//! `/v2/flowControl` and `/v2/globalParallelism`: read flow-control keys and pause,
//! resume, pin, unpin or reset one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use qpost_core::flow::{FlowCommand, FlowControlInfo, GlobalParallelism};
use qpost_core::flow_control;

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{Id, QueryPairs};

/// `GET /v2/flowControl[/{key}]`, `POST /v2/flowControl/{key}/{pause|resume|pin|unpin|resetRate|reset}`,
/// `GET /v2/globalParallelism`.
pub fn flow_control_routes() -> Router<ApiState> {
    Router::new()
        .route("/v2/flowControl", get(list))
        .route("/v2/flowControl/", get(list))
        .route("/v2/flowControl/{key}", get(read))
        .route("/v2/flowControl/{key}/pause", post(pause))
        .route("/v2/flowControl/{key}/resume", post(resume))
        .route("/v2/flowControl/{key}/pin", post(pin))
        .route("/v2/flowControl/{key}/unpin", post(unpin))
        .route("/v2/flowControl/{key}/resetRate", post(reset_rate))
        .route("/v2/flowControl/{key}/reset", post(reset))
        .route("/v2/globalParallelism", get(global))
}

async fn list(
    State(state): State<ApiState>,
    query: QueryPairs,
) -> Result<Json<Vec<FlowControlInfo>>, ApiError> {
    let keys = flow_control::list(&state.services, query.first("search")).await?;
    Ok(Json(keys))
}

async fn read(
    State(state): State<ApiState>,
    Id(key): Id,
) -> Result<Json<FlowControlInfo>, ApiError> {
    Ok(Json(flow_control::get(&state.services, &key).await?))
}

async fn send(state: &ApiState, key: &str, command: FlowCommand) -> Result<StatusCode, ApiError> {
    flow_control::command(&state.services, key, command).await?;
    Ok(StatusCode::OK)
}

async fn pause(State(state): State<ApiState>, Id(key): Id) -> Result<StatusCode, ApiError> {
    send(&state, &key, FlowCommand::Pause).await
}

async fn resume(State(state): State<ApiState>, Id(key): Id) -> Result<StatusCode, ApiError> {
    send(&state, &key, FlowCommand::Resume).await
}

async fn pin(
    State(state): State<ApiState>,
    Id(key): Id,
    query: QueryPairs,
) -> Result<StatusCode, ApiError> {
    let command = flow_control::pin(
        query.first("parallelism"),
        query.first("rate"),
        query.first("period"),
    )?;
    send(&state, &key, command).await
}

async fn unpin(
    State(state): State<ApiState>,
    Id(key): Id,
    query: QueryPairs,
) -> Result<StatusCode, ApiError> {
    let command = flow_control::unpin(query.first("parallelism"), query.first("rate"))?;
    send(&state, &key, command).await
}

async fn reset_rate(State(state): State<ApiState>, Id(key): Id) -> Result<StatusCode, ApiError> {
    send(&state, &key, FlowCommand::ResetRate).await
}

async fn reset(State(state): State<ApiState>, Id(key): Id) -> Result<StatusCode, ApiError> {
    send(&state, &key, FlowCommand::Reset).await
}

async fn global(State(state): State<ApiState>) -> Result<Json<GlobalParallelism>, ApiError> {
    Ok(Json(
        flow_control::global_parallelism(&state.services).await?,
    ))
}
