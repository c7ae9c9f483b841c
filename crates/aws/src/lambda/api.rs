//! The HTTP API functions' edge: the API tokens read once at cold start, the caller's IP
//! taken from API Gateway's request context, and `qpost-http`'s router served under
//! `lambda_http` (API Gateway HTTP API, payload format 2.0).

use std::fmt;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use http::HeaderValue;
use lambda_http::request::RequestContext;

use super::Error;

/// The API token(s) themselves, comma-separated (local runs, `sam local`).
pub const TOKEN: &str = "QPOST_TOKEN";
/// Name or ARN of the SSM parameter holding the token(s), comma-separated (a SecureString,
/// decrypted on read). A Secrets Manager secret is read through SSM as
/// `/aws/reference/secretsmanager/<id>`.
pub const TOKEN_PARAMETER: &str = "QPOST_TOKEN_PARAMETER";

/// Why the token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("set {TOKEN_PARAMETER} (the SSM parameter holding the API token) or {TOKEN}")]
    Missing,
    #[error("reading the API token from SSM parameter {name:?} failed: {detail}")]
    Ssm { name: String, detail: String },
    #[error("{0} holds no token")]
    Empty(String),
}

/// Where the token comes from, from the environment.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// The token(s) themselves; `Debug` hides them.
    Value(String),
    Parameter(String),
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(_) => f.write_str("Value([hidden])"),
            Self::Parameter(name) => f.debug_tuple("Parameter").field(name).finish(),
        }
    }
}

impl TokenSource {
    /// `QPOST_TOKEN` wins over `QPOST_TOKEN_PARAMETER`; empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, TokenError> {
        let value = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        match (value(TOKEN), value(TOKEN_PARAMETER)) {
            (Some(token), _) => Ok(Self::Value(token.trim().to_string())),
            (None, Some(name)) => Ok(Self::Parameter(name.trim().to_string())),
            (None, None) => Err(TokenError::Missing),
        }
    }

    pub fn from_env() -> Result<Self, TokenError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The accepted tokens: the value, or the parameter read with decryption (once, at
    /// cold start), split at commas.
    pub async fn tokens(self, sdk: &aws_config::SdkConfig) -> Result<Vec<String>, TokenError> {
        let (text, source) = match self {
            Self::Value(text) => (text, TOKEN.to_string()),
            Self::Parameter(name) => (
                read_parameter(sdk, &name).await?,
                format!("SSM parameter {name:?}"),
            ),
        };
        let tokens = split_tokens(&text);
        if tokens.is_empty() {
            return Err(TokenError::Empty(source));
        }
        Ok(tokens)
    }
}

/// Tokens from a comma-separated list, trimmed, empty entries dropped.
fn split_tokens(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

async fn read_parameter(sdk: &aws_config::SdkConfig, name: &str) -> Result<String, TokenError> {
    let out = aws_sdk_ssm::Client::new(sdk)
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| TokenError::Ssm {
            name: name.to_string(),
            detail: aws_sdk_ssm::error::DisplayErrorContext(&e).to_string(),
        })?;
    Ok(out
        .parameter()
        .and_then(|p| p.value())
        .unwrap_or_default()
        .to_string())
}

/// `app` with the caller's IP, as API Gateway saw it, in `X-Forwarded-For` where the
/// router reads it. API Gateway appends the source IP to any `X-Forwarded-For` the client
/// sent, so the first entry could be forged: the request context's IP replaces it.
pub fn with_caller_ip(app: Router) -> Router {
    app.layer(middleware::from_fn(source_ip))
}

async fn source_ip(mut request: Request, next: Next) -> Response {
    let ip = request
        .extensions()
        .get::<RequestContext>()
        .and_then(context_ip)
        .and_then(|ip| HeaderValue::from_str(&ip).ok());
    if let Some(ip) = ip {
        request.headers_mut().insert("x-forwarded-for", ip);
    }
    next.run(request).await
}

fn context_ip(context: &RequestContext) -> Option<String> {
    match context {
        RequestContext::ApiGatewayV2(c) => c.http.source_ip.clone(),
        // Only API Gateway HTTP API events are compiled in.
        _ => None,
    }
}

/// Serves `app` (a mounted `qpost-http` router) until the runtime stops the function.
pub async fn serve(app: Router) -> Result<(), Error> {
    lambda_http::run(with_caller_ip(app)).await
}

#[cfg(test)]
mod tests {

    use aws_lambda_events::event::apigw::ApiGatewayV2httpRequestContext;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;
    use crate::config::tests::lookup;

    #[test]
    fn the_token_comes_from_the_value_else_the_parameter_else_an_error() {
        let both = lookup(&[(TOKEN, "t0k"), (TOKEN_PARAMETER, "/qpost/token")]);
        assert_eq!(
            TokenSource::from_lookup(both).unwrap(),
            TokenSource::Value("t0k".into())
        );
        let param = lookup(&[(TOKEN, " "), (TOKEN_PARAMETER, "/qpost/token")]);
        assert_eq!(
            TokenSource::from_lookup(param).unwrap(),
            TokenSource::Parameter("/qpost/token".into())
        );
        let secret = TokenSource::from_lookup(lookup(&[(TOKEN, "s3cret")])).unwrap();
        assert!(!format!("{secret:?}").contains("s3cret"));
        let err = TokenSource::from_lookup(lookup(&[])).unwrap_err();
        assert!(err.to_string().contains(TOKEN_PARAMETER), "{err}");
    }

    #[test]
    fn several_tokens_are_comma_separated() {
        assert_eq!(split_tokens(" a, b ,,c"), ["a", "b", "c"]);
        assert!(split_tokens(" , ").is_empty());
    }

    #[tokio::test]
    async fn the_request_context_ip_replaces_a_forwarded_for_the_client_sent() {
        let app = with_caller_ip(Router::new().route(
            "/",
            get(|request: Request| async move {
                request.headers()["x-forwarded-for"]
                    .to_str()
                    .unwrap()
                    .to_string()
            }),
        ));
        let mut context = ApiGatewayV2httpRequestContext::default();
        context.http.source_ip = Some("203.0.113.9".into());
        let request = http::Request::builder()
            .uri("/")
            .header("x-forwarded-for", "1.2.3.4, 203.0.113.9")
            .extension(RequestContext::ApiGatewayV2(context))
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(body, "203.0.113.9");
    }
}
