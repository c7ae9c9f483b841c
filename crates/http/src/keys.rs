//! `/v2/keys`: the signing keys receivers verify with, and their rotation.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use qpost_core::keys;
use qpost_core::signing::SigningKeys;
use serde::Serialize;

use crate::ApiState;
use crate::error::ApiError;

/// `GET /v2/keys` and `POST /v2/keys/rotate`.
pub fn key_routes() -> Router<ApiState> {
    Router::new()
        .route("/v2/keys", get(current))
        .route("/v2/keys/", get(current))
        .route("/v2/keys/rotate", post(rotate))
        .route("/v2/keys/rotate/", post(rotate))
}

/// `{"current": "sig_…", "next": "sig_…"}`: the keys are the answer, so they are exposed here.
#[derive(Serialize)]
struct KeysView {
    current: String,
    next: String,
}

impl From<SigningKeys> for KeysView {
    fn from(keys: SigningKeys) -> Self {
        Self {
            current: keys.current.expose().to_string(),
            next: keys.next.expose().to_string(),
        }
    }
}

async fn current(State(state): State<ApiState>) -> Result<Json<KeysView>, ApiError> {
    Ok(Json(keys::get(&state.services).await?.into()))
}

async fn rotate(State(state): State<ApiState>) -> Result<Json<KeysView>, ApiError> {
    Ok(Json(keys::rotate(&state.services).await?.into()))
}
