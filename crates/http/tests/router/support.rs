//! The app under test, request builders and message fixtures.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::header::AUTHORIZATION;
use axum::http::{Request, StatusCode, request};
use qpost_core::Services;
use qpost_core::clock::ManualClock;
use qpost_core::config::Limits;
use qpost_core::ids::MessageId;
use qpost_core::message::{DlqEntry, Message};
use qpost_core::services::delivery_client;
use qpost_embedded::{Gate, SqliteStore, Ticker};
use qpost_http::{HttpConfig, router};
use serde_json::Value;
use tower::ServiceExt;

use crate::fakes::Memory;

pub const TOKEN: &str = "test-token";
pub const NOW: i64 = 1_700_000_000_000;
/// The body limit of the app under test.
pub const MAX_BODY: usize = 1024;

pub struct App {
    pub router: Router,
    pub memory: Arc<Memory>,
    /// Holds the SQLite file behind the areas the fakes do not cover.
    _dir: tempfile::TempDir,
}

pub fn app() -> App {
    let clock = Arc::new(ManualClock::new(NOW));
    let memory = Arc::new(Memory::new(clock.clone()));
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("q.db")).unwrap());
    let services = Services {
        messages: memory.clone(),
        dlq: memory.clone(),
        keys: memory.clone(),
        dispatcher: memory.clone(),
        schedules: store.clone(),
        registry: Arc::new(Ticker::new()),
        topics: store.clone(),
        queues: store.clone(),
        events: store,
        admission: Arc::new(Gate::new(8)),
        clock,
        http: delivery_client(false),
        limits: Limits {
            max_body_bytes: MAX_BODY,
            ..Limits::default()
        },
    };
    let config = HttpConfig {
        tokens: vec!["other-token".into(), TOKEN.into()],
    };
    App {
        router: router(Arc::new(services), config),
        memory,
        _dir: dir,
    }
}

/// A request carrying the accepted bearer token.
pub fn authed(method: &str, uri: &str) -> request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(AUTHORIZATION, format!("Bearer {TOKEN}"))
}

pub fn empty(builder: request::Builder) -> Request<Body> {
    builder.body(Body::empty()).unwrap()
}

pub fn json_body(builder: request::Builder, json: &str) -> Request<Body> {
    builder
        .header("content-type", "application/json")
        .body(Body::from(json.to_string()))
        .unwrap()
}

impl App {
    /// Sends one request; every answer must be JSON (an empty body reads as `null`).
    pub async fn call(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        if bytes.is_empty() {
            return (status, Value::Null);
        }
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("{status}: not JSON: {}", String::from_utf8_lossy(&bytes)));
        (status, json)
    }

    pub fn seed_message(&self, id: &str, url: &str) {
        self.memory.messages.lock().unwrap().push(message(id, url));
    }

    pub fn seed_dlq(&self, dlq_id: &str, url: &str) {
        let entry = DlqEntry {
            dlq_id: dlq_id.into(),
            message: message(&format!("msg_{dlq_id}"), url),
            response_status: Some(500),
            response_headers: Default::default(),
            response_body: b"boom".to_vec(),
            error: None,
            expires_at: NOW + 86_400_000,
        };
        self.memory.dlq.lock().unwrap().push(entry);
    }
}

pub fn message(id: &str, url: &str) -> Message {
    Message {
        id: MessageId::from_string(id.into()),
        url: url.into(),
        not_before: NOW,
        created_at: NOW,
        ..qpost_core::test_support::message()
    }
}
