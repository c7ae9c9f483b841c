//! Request parts as the handlers want them, with every rejection answered as JSON:
//! query pairs, path ids, size-limited bodies, optional legacy JSON bodies and the
//! publish config headers of a DLQ retry.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use qpost_core::publish::{ConfigSource, PublishOptions};
use serde_json::Value;

use crate::ApiState;
use crate::error::ApiError;

/// The decoded query string as name/value pairs, repeated names kept in order.
pub(crate) struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    pub fn parse(query: Option<&str>) -> Self {
        let pairs = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
        Self(pairs)
    }

    /// The first value of `name`.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::parse(parts.uri.query()))
    }
}

/// The single `{id}` segment of a path, percent-decoded.
pub(crate) struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(Self(id)),
            Err(rejection) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                rejection.body_text(),
            )),
        }
    }
}

/// Reads a whole body, refusing with 413 (and without reading further) once it passes `max` bytes.
pub(crate) async fn read_body(body: Body, max: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => Err(too_large(max)),
        Err(err) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("could not read the request body: {err}"),
        )),
    }
}

fn too_large(max: usize) -> ApiError {
    qpost_core::Error::PayloadTooLarge(format!("the request body exceeds the limit of {max} bytes"))
        .into()
}

/// A legacy JSON body of the bulk endpoints: `None` when the body is empty.
pub(crate) struct JsonBody(pub Option<Value>);

impl FromRequest<ApiState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(request.into_body(), state.services.limits.max_body_bytes).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        let value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("malformed JSON body: {e}"))
        })?;
        Ok(Self(Some(value)))
    }
}

/// Publish config headers on a DLQ retry request; what they set overrides the original message.
pub(crate) struct RetryOverrides(pub PublishOptions);

impl FromRequestParts<ApiState> for RetryOverrides {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let source = ConfigSource {
            headers: &parts.headers,
            query: &[],
        };
        Ok(Self(PublishOptions::parse(
            &source,
            &state.services.limits,
        )?))
    }
}
