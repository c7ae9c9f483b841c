//! Test harness: the real local server (`LocalApp`) on `127.0.0.1:0` over a temp data
//! directory, a recording receiver standing in for destinations and callbacks, an
//! independent signature verifier, and polling helpers that wait on events, never on
//! fixed sleeps.

pub mod binary;
pub mod jwt;
pub mod receiver;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use qpost::{LocalApp, Settings};
use qpost_core::signing::SigningKeys;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use receiver::{Receiver, Reply};

/// How long a helper waits for something that should happen "soon".
pub const SOON: Duration = Duration::from_secs(5);

/// A running local server and what a test needs to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base_url: String,
    pub token: String,
    /// Signing keys in force when the server (last) started.
    pub keys: SigningKeys,
    pub data_dir: TempDir,
    pub client: reqwest::Client,
    settings: Settings,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Starts the server with default settings on a fresh data directory.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the server with settings adjusted by `configure` (limits, tokens...).
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::new(loopback(), data_dir.path().to_path_buf());
    configure(&mut settings);
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let mut app = TestApp {
        addr: loopback(),
        base_url: String::new(),
        token: settings.tokens.first().cloned().unwrap_or_default(),
        keys: qpost::dev_keys(),
        data_dir,
        client,
        settings,
        shutdown: None,
        server: None,
    };
    app.start().await;
    app
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

impl TestApp {
    async fn start(&mut self) {
        self.settings.data_dir = self.data_dir.path().to_path_buf();
        let app = LocalApp::build(self.settings.clone())
            .await
            .expect("LocalApp::build");
        self.addr = app.local_addr();
        self.base_url = format!("http://{}", self.addr);
        self.keys = app.keys().clone();
        let (tx, rx) = oneshot::channel::<()>();
        self.shutdown = Some(tx);
        self.server = Some(tokio::spawn(app.run(async move {
            let _ = rx.await;
        })));
    }

    /// Graceful shutdown: resolves when the server has finished requests and attempts in flight.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task panicked")
                .expect("server stopped with an error");
        }
    }

    /// Stops gracefully and starts a new server on the same data directory (new port).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start().await;
    }

    /// Like [`TestApp::restart`], with the settings changed by `configure` first.
    pub async fn restart_with(&mut self, configure: impl FnOnce(&mut Settings)) {
        configure(&mut self.settings);
        self.restart().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(&self.token)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(&self.token)
    }

    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.client.delete(self.url(path)).bearer_auth(&self.token)
    }

    /// `POST /v2/publish/{destination}` with the token; the destination is joined raw,
    /// as the SDKs do.
    pub fn publish(&self, destination: &str) -> RequestBuilder {
        self.post(&format!("/v2/publish/{destination}"))
    }

    /// Publishes `body` with `headers` and returns the new message id; fails unless 200.
    pub async fn publish_ok(
        &self,
        destination: &str,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> String {
        let mut request = self.publish(destination).body(body.into());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("publish request");
        let status = response.status();
        let json: Value = response.json().await.expect("publish answers JSON");
        assert_eq!(
            status,
            StatusCode::OK,
            "publish to {destination} answered {json}"
        );
        json["messageId"].as_str().expect("messageId").to_string()
    }

    /// Status of `GET /v2/messages/{id}`.
    pub async fn message_status(&self, id: &str) -> StatusCode {
        self.get(&format!("/v2/messages/{id}"))
            .send()
            .await
            .expect("get message")
            .status()
    }

    /// Waits until `GET /v2/messages/{id}` answers 404 (delivered, failed or cancelled).
    pub async fn wait_until_gone(&self, id: &str) {
        let gone = eventually(SOON, move || async move {
            (self.message_status(id).await == StatusCode::NOT_FOUND).then_some(())
        });
        gone.await
            .unwrap_or_else(|| panic!("message {id} still readable after {SOON:?}"));
    }

    /// `GET /v2/dlq` (with `query`, e.g. `?url=...`) as JSON, asserting 200.
    pub async fn dlq(&self, query: &str) -> Value {
        let response = self
            .get(&format!("/v2/dlq{query}"))
            .send()
            .await
            .expect("list dlq");
        assert_eq!(response.status(), StatusCode::OK, "GET /v2/dlq{query}");
        response.json().await.expect("dlq JSON")
    }

    /// The entries of the whole DLQ (first page of 100).
    pub async fn dlq_entries(&self) -> Vec<Value> {
        self.dlq("").await["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until the DLQ holds at least `n` entries and returns them.
    pub async fn wait_for_dlq(&self, n: usize, deadline: Duration) -> Vec<Value> {
        let found = eventually(deadline, move || async move {
            let entries = self.dlq_entries().await;
            (entries.len() >= n).then_some(entries)
        });
        if let Some(entries) = found.await {
            return entries;
        }
        let last = self.dlq_entries().await;
        panic!(
            "DLQ holds {} entries after {deadline:?}, wanted {n}: {last:?}",
            last.len()
        )
    }

    /// The DLQ entry of message `id`, waiting for it to appear.
    pub async fn wait_for_dlq_entry(&self, id: &str) -> Value {
        let query = &format!("?messageId={id}");
        let found = eventually(SOON, move || async move {
            self.dlq(query).await["messages"]
                .as_array()
                .and_then(|m| m.first().cloned())
        });
        found
            .await
            .unwrap_or_else(|| panic!("no DLQ entry for {id} after {SOON:?}"))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Polls `probe` every 20 ms until it yields `Some`, or gives up after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(found) = probe().await {
            return Some(found);
        }
        if tokio::time::Instant::now() >= until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wall-clock Unix milliseconds, the unit of `createdAt`, `notBefore` and date filters.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// Asserts an error answer: `status` and a JSON body `{"error": "<non-empty>"}`.
pub async fn assert_error(response: reqwest::Response, status: StatusCode, what: &str) {
    let actual = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(actual, status, "{what}: body {text}");
    let json: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: body is not JSON: {text}"));
    let error = json["error"].as_str().unwrap_or_default();
    assert!(!error.is_empty(), "{what}: no error text in {text}");
}
