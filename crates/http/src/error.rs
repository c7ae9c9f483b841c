//! The one mapping from failures to HTTP answers: a status and `{"error": "..."}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A failed request as the client sees it. Internal failures carry only a generic text;
/// their details go to the log when the error is made.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl ApiError {
    /// An answer with `status` and `message` as its `error` text.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `error` text this answer carries (generic for internal failures).
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "missing or invalid token")
    }
}

impl From<qpost_core::Error> for ApiError {
    fn from(err: qpost_core::Error) -> Self {
        use qpost_core::Error as E;
        let status = match &err {
            E::BadRequest(_) => StatusCode::BAD_REQUEST,
            E::NotFound(_) => StatusCode::NOT_FOUND,
            E::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            E::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            E::Internal(_) => {
                tracing::error!(error = %err, "request failed");
                return Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
            }
        };
        Self::new(status, err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: &self.message,
            }),
        )
            .into_response()
    }
}

/// Fallback for paths no route matches.
pub(crate) async fn unknown_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not found")
}

/// Fallback for a known path called with a method it does not serve.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_core_error_kind_maps_to_its_status_with_its_message() {
        let cases = [
            (
                qpost_core::Error::bad_request("bad"),
                StatusCode::BAD_REQUEST,
            ),
            (qpost_core::Error::not_found("gone"), StatusCode::NOT_FOUND),
            (
                qpost_core::Error::PayloadTooLarge("big".into()),
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            (
                qpost_core::Error::PreconditionFailed("plan".into()),
                StatusCode::PRECONDITION_FAILED,
            ),
        ];
        for (err, status) in cases {
            let text = err.to_string();
            let api = ApiError::from(err);
            assert_eq!((api.status, api.message), (status, text));
        }
    }

    #[test]
    fn internal_errors_answer_500_without_their_details() {
        let api = ApiError::from(qpost_core::Error::internal("disk /var/db is full"));
        assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!api.message.contains("disk"));
    }
}
