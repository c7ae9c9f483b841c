//! The token check in front of every route: `Authorization: Bearer <token>` or
//! `?qstash_token=<token>`, compared without revealing where a guess goes wrong.

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ApiState;
use crate::error::ApiError;

/// Middleware: runs the request when it carries an accepted token, else answers 401.
pub(crate) async fn require_token(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    let presented = [
        bearer(request.headers()),
        query_token(request.uri().query()),
    ];
    let accepted = presented
        .iter()
        .flatten()
        .fold(false, |ok, token| ok | accepts(&state.tokens, token));
    if accepted {
        next.run(request).await
    } else {
        ApiError::unauthorized().into_response()
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// The `qstash_token` query parameter, decoded.
fn query_token(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == "qstash_token")
        .map(|(_, v)| v.into_owned())
}

/// Whether `presented` equals one of `tokens`; every token is compared, none skipped.
fn accepts(tokens: &[String], presented: &str) -> bool {
    tokens.iter().fold(false, |ok, token| {
        ok | same_bytes(token.as_bytes(), presented.as_bytes())
    })
}

/// Equality that reads every byte instead of stopping at the first difference, so the
/// answer time does not tell how much of a guessed token was right.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    diff == 0 && a.len() == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_tokens_match_and_any_difference_or_length_change_does_not() {
        assert!(same_bytes(b"secret", b"secret"));
        assert!(!same_bytes(b"secret", b"secreT"));
        assert!(!same_bytes(b"secret", b"secret2"));
        assert!(!same_bytes(b"", b"x"));
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_other_schemes_are_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, "bearer abc".parse().unwrap());
        assert_eq!(bearer(&headers).as_deref(), Some("abc"));
        headers.insert(AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }

    #[test]
    fn the_query_token_is_percent_decoded() {
        assert_eq!(
            query_token(Some("a=1&qstash_token=ab%3D")).as_deref(),
            Some("ab=")
        );
        assert_eq!(query_token(Some("a=1")), None);
        assert_eq!(query_token(None), None);
    }
}
