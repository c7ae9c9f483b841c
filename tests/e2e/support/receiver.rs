//! The recording receiver: an HTTP server on `127.0.0.1:0` standing in for destinations
//! and callbacks. Each path answers from a script (a queue of replies, then a fallback
//! reply, 200 by default), and every request is recorded as it arrives.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;
use tokio::net::TcpListener;

use super::{eventually, now_ms};

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn ok() -> Self {
        Self::status(200)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path without the query.
    pub path: String,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When it arrived (monotonic, for gaps) ...
    pub at: Instant,
    /// ... and the same moment as Unix ms (for comparisons with server timestamps).
    pub at_ms: i64,
}

impl Recorded {
    /// The first value of header `name`, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body of {} is not JSON ({e}): {:?}", self.path, self.body))
    }
}

#[derive(Default)]
struct Script {
    queue: VecDeque<Reply>,
    fallback: Option<Reply>,
}

#[derive(Default)]
struct Inner {
    requests: Mutex<Vec<Recorded>>,
    scripts: Mutex<HashMap<String, Script>>,
}

impl Inner {
    fn next_reply(&self, path: &str) -> Reply {
        let mut scripts = self.scripts.lock().expect("scripts lock");
        let Some(script) = scripts.get_mut(path) else {
            return Reply::ok();
        };
        script
            .queue
            .pop_front()
            .or_else(|| script.fallback.clone())
            .unwrap_or_else(Reply::ok)
    }
}

/// A running receiver; it stops with the test's runtime.
pub struct Receiver {
    pub addr: SocketAddr,
    pub base_url: String,
    inner: Arc<Inner>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver address");
        let inner = Arc::new(Inner::default());
        let app = Router::new().fallback(record).with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            addr,
            base_url: format!("http://{addr}"),
            inner,
        }
    }

    /// The absolute URL of `path` (which may carry a query).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Queues replies for `path`, answered in order before its fallback.
    pub fn reply(&self, path: &str, replies: impl IntoIterator<Item = Reply>) {
        let mut scripts = self.inner.scripts.lock().expect("scripts lock");
        scripts
            .entry(path.to_string())
            .or_default()
            .queue
            .extend(replies);
    }

    /// Answers `path` with `reply` once its queue is empty (instead of 200).
    pub fn reply_always(&self, path: &str, reply: Reply) {
        let mut scripts = self.inner.scripts.lock().expect("scripts lock");
        scripts.entry(path.to_string()).or_default().fallback = Some(reply);
    }

    /// Every request so far to `path` (query ignored), in arrival order.
    pub fn requests(&self, path: &str) -> Vec<Recorded> {
        let all = self.inner.requests.lock().expect("requests lock");
        all.iter().filter(|r| r.path == path).cloned().collect()
    }

    fn summary(&self) -> Vec<String> {
        let all = self.inner.requests.lock().expect("requests lock");
        all.iter()
            .map(|r| format!("{} {}", r.method, r.path_and_query))
            .collect()
    }

    /// Waits until `path` has received at least `n` requests; returns them all.
    pub async fn wait_for(&self, path: &str, n: usize, deadline: Duration) -> Vec<Recorded> {
        let found = eventually(deadline, move || async move {
            let seen = self.requests(path);
            (seen.len() >= n).then_some(seen)
        });
        match found.await {
            Some(seen) => seen,
            None => panic!(
                "{path} got {} requests in {deadline:?}, wanted {n}; all: {:?}",
                self.requests(path).len(),
                self.summary()
            ),
        }
    }

    /// Asserts `path` receives nothing beyond its first `n` requests during `quiet`.
    /// Only for absence checks; never used to wait out a backoff.
    pub async fn assert_stays(&self, path: &str, n: usize, quiet: Duration) {
        let extra = eventually(quiet, move || async move {
            (self.requests(path).len() > n).then_some(())
        })
        .await;
        let seen = self.requests(path).len();
        assert!(
            extra.is_none() && seen == n,
            "{path} got {seen} requests, expected exactly {n}; all: {:?}",
            self.summary()
        );
    }
}

async fn record(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| path.clone(), |p| p.to_string());
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: path.clone(),
        path_and_query,
        headers: parts.headers,
        body,
        at: Instant::now(),
        at_ms: now_ms(),
    };
    inner.requests.lock().expect("requests lock").push(recorded);
    let reply = inner.next_reply(&path);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    response
        .body(Body::from(reply.body))
        .expect("valid scripted reply")
}
