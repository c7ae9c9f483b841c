//! `/v2/topics`: URL groups — list, read, delete, add and remove endpoints, and set the
//! default headers every publish to the group gets.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use qpost_core::topic::{EndpointSelector, Topic};
use qpost_core::topics::{self, HeaderValues, NewEndpoint};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::{Id, JsonBody};

/// Every URL group route.
pub fn topic_routes() -> Router<ApiState> {
    Router::new()
        .route("/v2/topics", get(list))
        .route("/v2/topics/", get(list))
        .route(
            "/v2/topics/{name}",
            get(read).delete(remove).patch(set_headers),
        )
        .route(
            "/v2/topics/{name}/endpoints",
            post(add_endpoints).delete(remove_endpoints),
        )
}

#[derive(Deserialize)]
struct Endpoints<T> {
    endpoints: Vec<T>,
}

#[derive(Deserialize)]
struct DefaultHeaders {
    headers: BTreeMap<String, HeaderValues>,
}

/// The JSON body as `T`; an empty or mismatched body is a 400 naming the problem.
fn parse<T: DeserializeOwned>(body: Option<serde_json::Value>, what: &str) -> Result<T, ApiError> {
    let value = body.ok_or_else(|| bad_request(format!("a JSON body with {what} is required")))?;
    serde_json::from_value(value).map_err(|e| bad_request(format!("invalid {what}: {e}")))
}

fn bad_request(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

async fn list(State(state): State<ApiState>) -> Result<Json<Vec<Topic>>, ApiError> {
    Ok(Json(topics::list(&state.services).await?))
}

async fn read(State(state): State<ApiState>, Id(name): Id) -> Result<Json<Topic>, ApiError> {
    Ok(Json(topics::get(&state.services, &name).await?))
}

async fn remove(State(state): State<ApiState>, Id(name): Id) -> Result<StatusCode, ApiError> {
    topics::delete(&state.services, &name).await?;
    Ok(StatusCode::OK)
}

async fn set_headers(
    State(state): State<ApiState>,
    Id(name): Id,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let DefaultHeaders { headers } = parse(body, "\"headers\"")?;
    topics::set_default_headers(&state.services, &name, &headers).await?;
    Ok(StatusCode::OK)
}

async fn add_endpoints(
    State(state): State<ApiState>,
    Id(name): Id,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let Endpoints { endpoints } = parse::<Endpoints<NewEndpoint>>(body, "\"endpoints\"")?;
    topics::add_endpoints(&state.services, &name, endpoints).await?;
    Ok(StatusCode::OK)
}

async fn remove_endpoints(
    State(state): State<ApiState>,
    Id(name): Id,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let Endpoints { endpoints } = parse::<Endpoints<EndpointSelector>>(body, "\"endpoints\"")?;
    topics::remove_endpoints(&state.services, &name, endpoints).await?;
    Ok(StatusCode::OK)
}
