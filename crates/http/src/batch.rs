//! `POST /v2/batch`: a JSON array of publishes and enqueues, answered with an array
//! aligned with it — an object per URL entry, an array per URL-group entry, and
//! `{"error": "..."}` for an entry that was refused while the others were created.
//!
//! The whole request may be up to 100 times the message body limit (100 MiB with the
//! default 1 MiB), since it carries many messages; each entry's body is still held to
//! the message body limit by the publish path.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use qpost_core::batch;
use qpost_core::publish::PublishOutcome;
use qpost_core::wire::PublishedView;
use serde_json::{Value, json};

use crate::ApiState;
use crate::error::ApiError;
use crate::extract::read_body;
use crate::publish::caller_ip;

/// How many message bodies' worth of bytes one batch request may carry.
const BATCH_BODY_FACTOR: usize = 100;

/// `POST /v2/batch`.
pub fn batch_routes() -> Router<ApiState> {
    Router::new().route("/v2/batch", post(publish_batch))
}

async fn publish_batch(
    State(state): State<ApiState>,
    request: Request,
) -> Result<Json<Vec<Value>>, ApiError> {
    let (parts, body) = request.into_parts();
    let limit = state
        .services
        .limits
        .max_body_bytes
        .saturating_mul(BATCH_BODY_FACTOR);
    let bytes = read_body(body, limit).await?;
    let entries = entries(&bytes)?;
    let results = batch::publish_batch(&state.services, entries, caller_ip(&parts)).await;
    Ok(Json(results.into_iter().map(element).collect()))
}

/// The entries of a batch body; anything but a JSON array is refused before any entry runs.
fn entries(bytes: &[u8]) -> Result<Vec<Value>, ApiError> {
    let bad = |why: String| ApiError::new(StatusCode::BAD_REQUEST, why);
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Array(entries)) => Ok(entries),
        Ok(_) => Err(bad("the batch body must be a JSON array of messages".into())),
        Err(e) => Err(bad(format!("malformed JSON body: {e}"))),
    }
}

/// One response element: the publish answer of the entry, or its error.
fn element(result: Result<PublishOutcome, qpost_core::Error>) -> Value {
    match result {
        Ok(outcome) => {
            let views: Vec<PublishedView> =
                outcome.messages.iter().map(PublishedView::from).collect();
            match (outcome.to_group, views.as_slice()) {
                (false, [single]) => json!(single),
                _ => json!(views),
            }
        }
        Err(err) => json!({ "error": ApiError::from(err).message() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qpost_core::ids::MessageId;
    use qpost_core::publish::Published;

    fn published(url: &str) -> Published {
        Published {
            message_id: MessageId::generate(),
            url: url.into(),
            deduplicated: false,
        }
    }

    #[test]
    fn a_url_entry_answers_an_object_and_a_group_entry_an_array() {
        let single = element(Ok(PublishOutcome {
            to_group: false,
            messages: vec![published("https://a")],
        }));
        assert_eq!(single["url"], "https://a");
        let group = element(Ok(PublishOutcome {
            to_group: true,
            messages: vec![published("https://a"), published("https://b")],
        }));
        assert_eq!(group.as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn a_refused_entry_answers_its_error_text_and_internal_details_stay_hidden() {
        let bad = element(Err(qpost_core::Error::bad_request("invalid destination")));
        assert_eq!(bad, json!({"error": "invalid destination"}));
        let internal = element(Err(qpost_core::Error::internal("disk full")));
        assert!(!internal["error"].as_str().unwrap().contains("disk"));
    }

    #[test]
    fn only_a_json_array_is_a_batch() {
        assert_eq!(entries(b"[]").unwrap().len(), 0);
        for body in [&b"{}"[..], b"\"x\"", b"[1,", b""] {
            let err = entries(body).unwrap_err();
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
    }
}
