//! Counting AWS requests at the HTTP level: the SDK's HTTP client wrapped so that every
//! request it sends (retries included) is recorded with who sent it, the service (from the
//! SigV4 credential scope) and the operation (the `X-Amz-Target` header of the JSON
//! protocols DynamoDB and SQS use, or the method and path of EventBridge Scheduler's REST
//! API). Nothing inside qpost is changed to count. Requests answered with a server error
//! (5xx) or not answered at all are also noted apart: moto answers 500 to some concurrent
//! transactions, which the SDK then retries, and AWS would not.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;

/// One request.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    /// Which client sent it: `"qpost"` (the functions) or `"event source"` (the poller).
    pub sender: &'static str,
    pub service: String,
    pub operation: String,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}.{}", self.sender, self.service, self.operation)
    }
}

/// Every request the wrapped clients sent, in order, and those that failed.
#[derive(Clone, Default)]
pub struct RequestLog {
    sent: Arc<Mutex<Vec<Call>>>,
    failed: Arc<Mutex<Vec<Call>>>,
}

impl RequestLog {
    /// `sdk` with its HTTP client wrapped to record into this log as `sender`.
    pub fn wrap(&self, sdk: &SdkConfig, sender: &'static str) -> SdkConfig {
        let inner = sdk
            .http_client()
            .expect("the SDK config has an HTTP client");
        let log = self.clone();
        let counting = http_client_fn(move |settings, components| {
            SharedHttpConnector::new(Counting {
                inner: inner.http_connector(settings, components),
                log: log.clone(),
                sender,
            })
        });
        sdk.to_builder().http_client(counting).build()
    }

    pub fn clear(&self) {
        lock(&self.sent).clear();
        lock(&self.failed).clear();
    }

    pub fn calls(&self) -> Vec<Call> {
        lock(&self.sent).clone()
    }

    /// Requests per (sender, service, operation).
    pub fn tally(&self) -> BTreeMap<Call, usize> {
        tally(&lock(&self.sent))
    }

    /// Of those, the requests answered with a server error (5xx) or not answered.
    pub fn failed(&self) -> BTreeMap<Call, usize> {
        tally(&lock(&self.failed))
    }

    fn record(&self, call: Call) {
        lock(&self.sent).push(call);
    }

    fn record_failed(&self, call: Call) {
        lock(&self.failed).push(call);
    }
}

fn lock(calls: &Mutex<Vec<Call>>) -> std::sync::MutexGuard<'_, Vec<Call>> {
    calls.lock().unwrap_or_else(|e| e.into_inner())
}

fn tally(calls: &[Call]) -> BTreeMap<Call, usize> {
    let mut tally = BTreeMap::new();
    for call in calls {
        *tally.entry(call.clone()).or_default() += 1;
    }
    tally
}

#[derive(Debug)]
struct Counting {
    inner: SharedHttpConnector,
    log: RequestLog,
    sender: &'static str,
}

impl fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestLog({} calls)", lock(&self.sent).len())
    }
}

impl HttpConnector for Counting {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (service, operation) = describe(&request);
        let call = Call {
            sender: self.sender,
            service,
            operation,
        };
        self.log.record(call.clone());
        let answer = self.inner.call(request);
        let log = self.log.clone();
        HttpConnectorFuture::new(async move {
            let answer = answer.await;
            let failed = match &answer {
                Ok(response) => response.status().is_server_error(),
                Err(_) => true,
            };
            if failed {
                log.record_failed(call);
            }
            answer
        })
    }
}

/// The service and operation of a signed SDK request.
fn describe(request: &HttpRequest) -> (String, String) {
    let headers = request.headers();
    let service = headers
        .get("authorization")
        .and_then(credential_scope_service)
        .unwrap_or("unknown")
        .to_string();
    let operation = match headers.get("x-amz-target") {
        Some(target) => target.rsplit('.').next().unwrap_or(target).to_string(),
        None => rest_operation(request.method(), request.uri()),
    };
    (service, operation)
}

/// `service` of `Credential=<key>/<date>/<region>/<service>/aws4_request`.
fn credential_scope_service(authorization: &str) -> Option<&str> {
    let scope = authorization.split("Credential=").nth(1)?;
    let scope = scope.split(',').next()?;
    scope.split('/').nth(3)
}

/// EventBridge Scheduler's REST operations by method and path.
fn rest_operation(method: &str, uri: &str) -> String {
    let path = uri
        .split("://")
        .nth(1)
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or(uri);
    let path = path.split('?').next().unwrap_or(path);
    let named = path.trim_start_matches('/').split('/').count() > 1;
    match (method, path.starts_with("/schedules"), named) {
        ("POST", true, true) => "CreateSchedule".into(),
        ("PUT", true, true) => "UpdateSchedule".into(),
        ("GET", true, true) => "GetSchedule".into(),
        ("DELETE", true, true) => "DeleteSchedule".into(),
        ("GET", true, false) => "ListSchedules".into(),
        _ => format!("{method} {path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_operations_are_named_from_method_and_path() {
        let uri = "http://127.0.0.1:5555/schedules/wake.msg_1.17?groupName=g";
        assert_eq!(rest_operation("POST", uri), "CreateSchedule");
        assert_eq!(rest_operation("DELETE", uri), "DeleteSchedule");
        assert_eq!(
            rest_operation("GET", "http://h/schedules?groupName=g"),
            "ListSchedules"
        );
        let auth = "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/scheduler/aws4_request, SignedHeaders=host";
        assert_eq!(credential_scope_service(auth), Some("scheduler"));
    }
}
