//! `/v2/schedules`: create (or replace) a schedule, list, read, delete, pause and resume.
//!
//! One wildcard route per method, because a create's destination is a raw URL with its own
//! slashes (`/v2/schedules/https://example.com/a/pause` is a create) while
//! `/v2/schedules/{id}/pause` is not: a schedule id or URL-group name has no `:` or `/`.
//! Pause and resume answer to both PATCH (every SDK) and POST (the docs). The Go SDK's
//! `/v2/Schedules` spelling is served too.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use qpost_core::publish::PublishRequest;
use qpost_core::schedule::ScheduleView;
use qpost_core::schedules;
use serde::Serialize;

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::read_body;
use crate::publish::caller_ip;

/// Every schedule route, under both spellings of the prefix.
pub fn schedule_routes() -> Router<ApiState> {
    let mut router = Router::new();
    for prefix in ["/v2/schedules", "/v2/Schedules"] {
        router = router
            .route(prefix, get(list))
            .route(&format!("{prefix}/"), get(list))
            .route(
                &format!("{prefix}/{{*rest}}"),
                get(read)
                    .delete(remove)
                    .patch(command)
                    .post(create_or_command),
            );
    }
    router
}

/// The create answer; `deduplicated` only when an equal creation made this one a no-op.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatedView {
    schedule_id: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    deduplicated: bool,
}

/// What follows the prefix in a request path, raw (not percent-decoded).
fn rest(path: &str) -> &str {
    let after = path
        .strip_prefix("/v2/schedules/")
        .or_else(|| path.strip_prefix("/v2/Schedules/"));
    after.unwrap_or_default()
}

/// A bare schedule id, or 404 for a deeper path.
fn id(path: &str) -> Result<&str, ApiError> {
    let id = rest(path);
    if id.is_empty() || id.contains('/') {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not found"));
    }
    Ok(id)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    Pause,
    Resume,
}

/// `{id}/pause` or `{id}/resume`; `None` for anything else (such as a destination URL).
fn command_of(rest: &str) -> Option<(&str, Command)> {
    let (id, verb) = rest.split_once('/')?;
    if id.is_empty() || id.contains(':') || verb.contains('/') {
        return None;
    }
    match verb {
        "pause" => Some((id, Command::Pause)),
        "resume" => Some((id, Command::Resume)),
        _ => None,
    }
}

async fn list(State(state): State<ApiState>) -> Result<Json<Vec<ScheduleView>>, ApiError> {
    Ok(Json(schedules::list(&state.services).await?))
}

async fn read(State(state): State<ApiState>, uri: Uri) -> Result<Json<ScheduleView>, ApiError> {
    let id = id(uri.path())?;
    Ok(Json(schedules::view(&state.services, id).await?))
}

async fn remove(State(state): State<ApiState>, uri: Uri) -> Result<StatusCode, ApiError> {
    schedules::delete(&state.services, id(uri.path())?).await?;
    Ok(StatusCode::OK)
}

/// `PATCH /v2/schedules/{id}/pause|resume`.
async fn command(State(state): State<ApiState>, uri: Uri) -> Result<StatusCode, ApiError> {
    let (id, command) = command_of(rest(uri.path()))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not found"))?;
    run(&state, id, command).await
}

async fn run(state: &ApiState, id: &str, command: Command) -> Result<StatusCode, ApiError> {
    match command {
        Command::Pause => schedules::pause(&state.services, id).await?,
        Command::Resume => schedules::resume(&state.services, id).await?,
    }
    Ok(StatusCode::OK)
}

/// `POST /v2/schedules/{id}/pause|resume`, else `POST /v2/schedules/{destination}`.
async fn create_or_command(
    State(state): State<ApiState>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    if let Some((id, command)) = command_of(rest(parts.uri.path())) {
        return Ok(run(&state, id, command).await?.into_response());
    }
    let body = read_body(body, state.services.limits.max_body_bytes).await?;
    let request = PublishRequest {
        destination: rest(parts.uri.path()).to_string(),
        raw_query: parts.uri.query().map(String::from),
        caller_ip: caller_ip(&parts),
        headers: parts.headers,
        body,
    };
    let created = schedules::create(&state.services, request).await?;
    let status = match created.deduplicated {
        true => StatusCode::ACCEPTED,
        false => StatusCode::OK,
    };
    let view = CreatedView {
        schedule_id: created.schedule_id,
        deduplicated: created.deduplicated,
    };
    Ok((status, Json(view)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_and_resume_paths_are_told_apart_from_destination_urls() {
        assert_eq!(command_of("scd_1/pause"), Some(("scd_1", Command::Pause)));
        assert_eq!(
            command_of("my.job/resume"),
            Some(("my.job", Command::Resume))
        );
        assert_eq!(command_of("https://example.com/pause"), None);
        assert_eq!(command_of("https:/pause"), None);
        assert_eq!(command_of("scd_1/pause/x"), None);
        assert_eq!(command_of("scd_1/stop"), None);
        assert_eq!(command_of("my-group"), None);
    }

    #[test]
    fn the_rest_of_the_path_is_kept_raw_under_either_prefix() {
        assert_eq!(
            rest("/v2/schedules/https://example.com/a%20b?x"),
            "https://example.com/a%20b?x"
        );
        assert_eq!(rest("/v2/Schedules/scd_1"), "scd_1");
        assert!(id("/v2/schedules/a/b").is_err());
        assert_eq!(id("/v2/schedules/scd_1").unwrap(), "scd_1");
    }
}
