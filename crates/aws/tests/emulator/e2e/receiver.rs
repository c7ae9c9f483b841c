//! The recording receiver: an axum server on `127.0.0.1:0` standing in for destinations
//! and callbacks. Each path answers from a script of statuses (then 200), and every
//! request is recorded with its headers, body and arrival time.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub method: String,
    pub path: String,
    /// Header names lower-cased; repeated headers joined with `, `.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Delivery {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct Inner {
    scripts: HashMap<String, VecDeque<u16>>,
    /// How long requests to a path take to answer.
    delays: HashMap<String, Duration>,
    received: Vec<Delivery>,
}

/// A running receiver; cheap to clone.
#[derive(Clone)]
pub struct Receiver {
    base: String,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let addr = listener.local_addr().expect("a bound address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base: format!("http://{addr}"),
            inner,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Answers the next requests to `path` with `statuses`, then 200.
    pub fn script(&self, path: &str, statuses: &[u16]) {
        self.lock()
            .scripts
            .insert(path.to_string(), statuses.iter().copied().collect());
    }

    /// Answers requests to `path` only after `delay` (a slow destination).
    pub fn slow(&self, path: &str, delay: Duration) {
        self.lock().delays.insert(path.to_string(), delay);
    }

    /// The most requests to `path` that were being answered at once, each taking the
    /// path's delay from its arrival.
    pub fn most_at_once(&self, path: &str) -> usize {
        let delay = self.lock().delays.get(path).copied().unwrap_or_default();
        let got = self.to(path);
        got.iter()
            .map(|d| {
                got.iter()
                    .filter(|o| o.at <= d.at && d.at < o.at + delay)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    /// Every request to `path` so far.
    pub fn to(&self, path: &str) -> Vec<Delivery> {
        self.lock()
            .received
            .iter()
            .filter(|d| d.path == path)
            .cloned()
            .collect()
    }

    pub fn all(&self) -> Vec<Delivery> {
        self.lock().received.clone()
    }

    /// Waits until `path` got `count` requests (failing after `within`); returns them.
    pub async fn wait_for(&self, path: &str, count: usize, within: Duration) -> Vec<Delivery> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.to(path);
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{path} got {} of {count} requests within {within:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn answer(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut joined: HashMap<String, String> = HashMap::new();
    for (name, value) in &headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        joined
            .entry(name.as_str().to_string())
            .and_modify(|v| *v = format!("{v}, {value}"))
            .or_insert(value);
    }
    let (status, delay) = {
        let mut inner = inner.lock().unwrap_or_else(|e| e.into_inner());
        let path = uri.path().to_string();
        let status = inner
            .scripts
            .get_mut(&path)
            .and_then(VecDeque::pop_front)
            .unwrap_or(200);
        let delay = inner.delays.get(&path).copied();
        inner.received.push(Delivery {
            method: method.to_string(),
            path,
            headers: joined,
            body: body.to_vec(),
            at: Instant::now(),
        });
        (status, delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
