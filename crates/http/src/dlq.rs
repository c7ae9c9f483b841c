//! `/v2/dlq`: list, read, delete and retry dead-lettered messages.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use qpost_core::dlq;
use qpost_core::filter::DlqFilter;
use qpost_core::publish::Published;
use qpost_core::wire::{DlqMessageView, DlqPageView};
use serde::Serialize;
use serde_json::{Value, json};

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{Id, JsonBody, QueryPairs, RetryOverrides};

/// `GET|DELETE /v2/dlq`, `GET|DELETE /v2/dlq/{dlqId}`, `POST /v2/dlq/retry[/{dlqId}]`.
pub fn dlq_routes() -> Router<ApiState> {
    Router::new()
        .route("/v2/dlq", get(list).delete(remove_many))
        .route("/v2/dlq/", get(list).delete(remove_many))
        .route("/v2/dlq/{dlq_id}", get(read).delete(remove))
        .route("/v2/dlq/retry", post(retry_many))
        .route("/v2/dlq/retry/", post(retry_many))
        .route("/v2/dlq/retry/{dlq_id}", post(retry))
}

#[derive(Serialize)]
struct Deleted {
    deleted: u64,
    /// Where the next bulk delete continues; absent when nothing matching is left.
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Retried {
    message_id: String,
}

impl From<&Published> for Retried {
    fn from(p: &Published) -> Self {
        Self {
            message_id: p.message_id.to_string(),
        }
    }
}

/// The bulk retry answer; `cursor` is `""` at the end, as the hosted service sends it.
#[derive(Serialize)]
struct RetriedMany {
    cursor: String,
    responses: Vec<Retried>,
}

/// The page a list or bulk request asks for: `cursor` and `count` from the query.
struct PageRequest<'a> {
    cursor: Option<&'a str>,
    count: usize,
}

impl<'a> PageRequest<'a> {
    fn from_query(query: &'a QueryPairs) -> Result<Self, ApiError> {
        Ok(Self {
            cursor: query.first("cursor"),
            count: dlq::page_size(query.first("count"))?,
        })
    }
}

async fn list(
    State(state): State<ApiState>,
    query: QueryPairs,
) -> Result<Json<DlqPageView>, ApiError> {
    let filter = DlqFilter::from_query(&query.0)?;
    let page = PageRequest::from_query(&query)?;
    let entries = dlq::list(&state.services, &filter, page.cursor, page.count).await?;
    Ok(Json(DlqPageView::from(&entries)))
}

async fn read(State(state): State<ApiState>, Id(id): Id) -> Result<Json<DlqMessageView>, ApiError> {
    let entry = dlq::get(&state.services, &id).await?;
    Ok(Json(DlqMessageView::from(&entry)))
}

async fn remove(State(state): State<ApiState>, Id(id): Id) -> Result<Json<Value>, ApiError> {
    dlq::delete(&state.services, &id).await?;
    Ok(Json(json!({})))
}

async fn remove_many(
    State(state): State<ApiState>,
    query: QueryPairs,
    JsonBody(body): JsonBody,
) -> Result<Json<Deleted>, ApiError> {
    let filter = selection(&query, body.as_ref())?;
    let page = PageRequest::from_query(&query)?;
    let (deleted, cursor) =
        dlq::delete_many(&state.services, &filter, page.cursor, page.count).await?;
    Ok(Json(Deleted { deleted, cursor }))
}

async fn retry(
    State(state): State<ApiState>,
    Id(id): Id,
    RetryOverrides(overrides): RetryOverrides,
) -> Result<(StatusCode, Json<Retried>), ApiError> {
    let published = dlq::retry(&state.services, &id, &overrides).await?;
    Ok((StatusCode::CREATED, Json(Retried::from(&published))))
}

async fn retry_many(
    State(state): State<ApiState>,
    query: QueryPairs,
    RetryOverrides(overrides): RetryOverrides,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<RetriedMany>), ApiError> {
    let filter = selection(&query, body.as_ref())?;
    let page = PageRequest::from_query(&query)?;
    let (published, next) = dlq::retry_many(
        &state.services,
        &filter,
        page.cursor,
        page.count,
        &overrides,
    )
    .await?;
    let responses = published.iter().map(Retried::from).collect();
    Ok((
        StatusCode::CREATED,
        Json(RetriedMany {
            cursor: next.unwrap_or_default(),
            responses,
        }),
    ))
}

/// Ids or filters from the query (current SDKs) or, when the query names none, from the
/// legacy JSON body (`{"dlqIds": [...]}`).
fn selection(query: &QueryPairs, body: Option<&Value>) -> Result<DlqFilter, ApiError> {
    let from_query = DlqFilter::from_query(&query.0)?;
    match body {
        Some(json) if from_query.is_empty() => Ok(DlqFilter::from_json(json)?),
        _ => Ok(from_query),
    }
}
