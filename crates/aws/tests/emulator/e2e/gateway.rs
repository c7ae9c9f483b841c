//! API Gateway HTTP API (payload format 2.0), emulated: a request becomes the JSON event
//! API Gateway sends (shaped like `infra/events/publish.json`), routed to the function
//! template.yaml routes its path to; the event is read by `lambda_http` into the request
//! the function's router serves (through the same adapter `lambda_http::run` uses, with
//! the caller-IP layer of `qpost_aws::lambda::api::serve`), and the function's answer is
//! read back from the JSON response API Gateway receives.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use lambda_http::request::LambdaRequest;
use lambda_runtime::{Context, LambdaEvent};
use qpost_aws::lambda::api::with_caller_ip;
use qpost_core::Services;
use qpost_http::{ApiState, HttpConfig};
use serde_json::{Value, json};
use tower::ServiceExt;

/// The API token every stack accepts (`bootstrap.py`'s default, the dev-server token).
pub const TOKEN: &str = "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0=";
/// The caller's address as API Gateway reports it.
pub const SOURCE_IP: &str = "203.0.113.7";

/// The three API functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiFunction {
    Publish,
    Schedules,
    Dlq,
}

impl ApiFunction {
    /// The function template.yaml routes `path` to.
    pub fn for_path(path: &str) -> Self {
        let area = path
            .trim_start_matches("/v2/")
            .split('/')
            .next()
            .unwrap_or("");
        match area {
            "schedules" | "Schedules" => Self::Schedules,
            "dlq" => Self::Dlq,
            _ => Self::Publish,
        }
    }

    /// The sub-routers the function mounts (`functions/<name>/src/main.rs`).
    fn routes(self) -> axum::Router<ApiState> {
        match self {
            Self::Publish => qpost_http::publish_routes()
                .merge(qpost_http::message_routes())
                .merge(qpost_http::topic_routes())
                .merge(qpost_http::batch_routes())
                .merge(qpost_http::queue_routes())
                .merge(qpost_http::flow_control_routes())
                .merge(qpost_http::log_routes())
                .merge(qpost_http::key_routes()),
            Self::Schedules => qpost_http::schedule_routes(),
            Self::Dlq => qpost_http::dlq_routes(),
        }
    }
}

/// One API request, as a client sends it.
#[derive(Clone, Debug)]
pub struct ApiRequest {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl ApiRequest {
    pub fn new(method: &str, path_and_query: &str) -> Self {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Self {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            headers: vec![("authorization".into(), format!("Bearer {TOKEN}"))],
            body: Vec::new(),
        }
    }

    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }

    pub fn delete(path: &str) -> Self {
        Self::new("DELETE", path)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn json(self, value: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(value.to_string())
    }

    /// The event API Gateway sends the function for this request.
    fn event(&self) -> Value {
        let route = route_key(&self.path);
        let mut headers: HashMap<String, String> = HashMap::new();
        headers.insert(
            "host".into(),
            "e2e.execute-api.us-east-1.amazonaws.com".into(),
        );
        headers.insert("x-forwarded-proto".into(), "https".into());
        headers.insert("content-length".into(), self.body.len().to_string());
        for (name, value) in &self.headers {
            // API Gateway joins repeated headers with commas.
            headers
                .entry(name.clone())
                .and_modify(|v| *v = format!("{v},{value}"))
                .or_insert_with(|| value.clone());
        }
        // ... and appends the source IP to whatever X-Forwarded-For the client sent.
        let forwarded = match headers.get("x-forwarded-for") {
            Some(sent) => format!("{sent}, {SOURCE_IP}"),
            None => SOURCE_IP.to_string(),
        };
        headers.insert("x-forwarded-for".into(), forwarded);
        let (body, encoded) = match std::str::from_utf8(&self.body) {
            Ok(text) => (text.to_string(), false),
            Err(_) => (STANDARD.encode(&self.body), true),
        };
        let proxy = route.contains("{proxy+}").then(|| {
            let prefix = route
                .trim_start_matches("ANY ")
                .trim_end_matches("{proxy+}");
            json!({ "proxy": self.path.strip_prefix(prefix).unwrap_or_default() })
        });
        let now = qpost_core::clock::Clock::now_ms(&qpost_core::clock::SystemClock);
        let mut event = json!({
            "version": "2.0",
            "routeKey": route,
            "rawPath": self.path,
            "rawQueryString": self.query,
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "e2e",
                "domainName": "e2e.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "e2e",
                "http": {
                    "method": self.method,
                    "path": self.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": SOURCE_IP,
                    "userAgent": "qpost-e2e"
                },
                "requestId": qpost_core::ids::random_token(12),
                "routeKey": route,
                "stage": "$default",
                "timeEpoch": now
            },
            "isBase64Encoded": encoded,
        });
        if !self.body.is_empty() {
            event["body"] = Value::String(body);
        }
        if let Some(proxy) = proxy {
            event["pathParameters"] = proxy;
        }
        event
    }
}

/// `ANY /v2/<area>` or `ANY /v2/<area>/{proxy+}`, as template.yaml declares the routes.
fn route_key(path: &str) -> String {
    let rest = path.trim_start_matches("/v2/");
    match rest.split_once('/') {
        Some((area, _)) => format!("ANY /v2/{area}/{{proxy+}}"),
        None => format!("ANY /v2/{rest}"),
    }
}

/// What API Gateway got back from the function.
#[derive(Clone, Debug)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl ApiResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the {} answer is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Panics unless the status is 2xx; returns the JSON body (`null` when empty).
    pub fn ok(&self) -> Value {
        assert!(
            (200..300).contains(&self.status),
            "expected a 2xx answer, got {}: {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        if self.body.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }
}

/// The API functions of one stack, each built once as at cold start.
pub struct Gateway {
    publish: Router,
    schedules: Router,
    dlq: Router,
}

impl Gateway {
    pub fn new(services: Arc<Services>) -> Self {
        let mount = |f: ApiFunction| {
            let config = HttpConfig {
                tokens: vec![TOKEN.to_string()],
            };
            with_caller_ip(qpost_http::mount(f.routes(), Arc::clone(&services), config))
        };
        Self {
            publish: mount(ApiFunction::Publish),
            schedules: mount(ApiFunction::Schedules),
            dlq: mount(ApiFunction::Dlq),
        }
    }

    /// Sends `request` through API Gateway to its function and returns the answer.
    pub async fn send(&self, request: ApiRequest) -> ApiResponse {
        let router = match ApiFunction::for_path(&request.path) {
            ApiFunction::Publish => self.publish.clone(),
            ApiFunction::Schedules => self.schedules.clone(),
            ApiFunction::Dlq => self.dlq.clone(),
        };
        let event: LambdaRequest = serde_json::from_value(request.event())
            .expect("lambda_http reads the API Gateway event");
        let adapter = lambda_http::Adapter::from(router);
        let answer = adapter
            .oneshot(LambdaEvent::new(event, Context::default()))
            .await
            .expect("the router never fails");
        let answer: ApiGatewayV2httpResponse = serde_json::to_value(answer)
            .and_then(serde_json::from_value)
            .expect("the function's answer is an API Gateway v2 response");
        read(answer)
    }
}

fn read(answer: ApiGatewayV2httpResponse) -> ApiResponse {
    let body = match answer.body {
        Some(lambda_http::Body::Text(text)) if answer.is_base64_encoded => {
            STANDARD.decode(text).expect("base64 body")
        }
        Some(lambda_http::Body::Text(text)) => text.into_bytes(),
        Some(lambda_http::Body::Binary(bytes)) => bytes,
        _ => Vec::new(),
    };
    ApiResponse {
        status: answer.status_code as u16,
        body,
    }
}
