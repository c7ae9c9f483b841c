//! The destination qpost delivers to: an HTTP/1.1 server on 127.0.0.1 that answers at
//! once and records what arrived. The path picks the behaviour:
//!
//! - `/sink…`  answers 200; counts and measures publish-to-delivery latency.
//! - `/track…` as `/sink`, and also counts each `Upstash-Message-Id` (duplicates) and how
//!   late or early each delivery was against the due time stamped in its body.
//! - `/flaky…` answers 500 to the first two attempts of a message id, 200 to the third,
//!   and keeps every attempt's arrival time and `Upstash-Retried` value.
//! - `/cron…`  answers 200 and keeps each `Upstash-Schedule-Id` with its arrival time.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::body::{decode, now_ns, unix_ms};
use crate::stats::{Summary, histogram};

/// Failed attempts a `/flaky` destination answers before succeeding.
pub const FLAKY_FAILURES: usize = 2;

/// One arrival at `/flaky`.
#[derive(Clone, Copy, Debug)]
pub struct Attempt {
    pub at_ns: u64,
    pub retried: Option<u32>,
}

/// What `/track` saw: distinct ids, repeats, and timing against the due time.
#[derive(Clone, Debug, Default)]
pub struct Tracked {
    pub unique: u64,
    pub duplicates: u64,
    /// Deliveries that arrived before their due time.
    pub early: u64,
    /// How long after the due time deliveries arrived.
    pub lateness: Summary,
}

/// The running receiver; stops serving when dropped.
pub struct Receiver {
    addr: SocketAddr,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Receiver {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::new());
        let server = tokio::spawn(accept_loop(listener, Arc::clone(&state)));
        Ok(Self {
            addr,
            state,
            server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port><path>`, for use as a qpost destination.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Forgets everything recorded so far (between scenarios).
    pub fn reset(&self) {
        let s = &self.state;
        s.delivered.store(0, Ordering::SeqCst);
        s.last_ns.store(0, Ordering::SeqCst);
        *lock(&s.latency) = histogram();
        *lock(&s.tracked) = TrackState::default();
        lock(&s.flaky).clear();
        lock(&s.cron).clear();
    }

    /// Successful deliveries (2xx answers) since the last reset.
    pub fn delivered(&self) -> u64 {
        self.state.delivered.load(Ordering::SeqCst)
    }

    /// When the last successful delivery arrived (ns since the origin; 0 if none).
    pub fn last_ns(&self) -> u64 {
        self.state.last_ns.load(Ordering::SeqCst)
    }

    /// Send-to-arrival latency of successful deliveries.
    pub fn latency(&self) -> Summary {
        Summary::of(&lock(&self.state.latency))
    }

    pub fn tracked(&self) -> Tracked {
        lock(&self.state.tracked).report()
    }

    /// Distinct message ids delivered to `/track`.
    pub fn tracked_unique(&self) -> u64 {
        lock(&self.state.tracked).seen.len() as u64
    }

    /// Every `/flaky` attempt, by message id.
    pub fn attempts(&self) -> HashMap<String, Vec<Attempt>> {
        lock(&self.state.flaky).clone()
    }

    /// Every `/cron` arrival: schedule id and unix ms.
    pub fn cron_fires(&self) -> Vec<(String, u64)> {
        lock(&self.state.cron).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct State {
    delivered: AtomicU64,
    last_ns: AtomicU64,
    latency: Mutex<Histogram<u64>>,
    tracked: Mutex<TrackState>,
    flaky: Mutex<HashMap<String, Vec<Attempt>>>,
    cron: Mutex<Vec<(String, u64)>>,
}

#[derive(Default)]
struct TrackState {
    seen: HashSet<String>,
    duplicates: u64,
    early: u64,
    lateness: Option<Histogram<u64>>,
}

impl TrackState {
    fn record(&mut self, id: String, due_ms: Option<u64>, now_ms: u64) {
        if !self.seen.insert(id) {
            self.duplicates += 1;
        }
        let Some(due) = due_ms else { return };
        if now_ms < due {
            self.early += 1;
        }
        let late_us = now_ms.saturating_sub(due).saturating_mul(1000);
        self.lateness
            .get_or_insert_with(histogram)
            .saturating_record(late_us);
    }

    fn report(&self) -> Tracked {
        Tracked {
            unique: self.seen.len() as u64,
            duplicates: self.duplicates,
            early: self.early,
            lateness: self.lateness.as_ref().map(Summary::of).unwrap_or_default(),
        }
    }
}

/// Which behaviour a request path asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Sink,
    Track,
    Flaky,
    Cron,
}

impl Route {
    fn of(path: &str) -> Option<Self> {
        [
            ("/sink", Self::Sink),
            ("/track", Self::Track),
            ("/flaky", Self::Flaky),
            ("/cron", Self::Cron),
        ]
        .into_iter()
        .find_map(|(prefix, route)| path.starts_with(prefix).then_some(route))
    }
}

impl State {
    fn new() -> Self {
        Self {
            delivered: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
            latency: Mutex::new(histogram()),
            tracked: Mutex::default(),
            flaky: Mutex::default(),
            cron: Mutex::default(),
        }
    }

    /// Records one arrival and decides the answer.
    fn arrive(&self, route: Route, headers: &HeaderMap, body: &[u8]) -> StatusCode {
        let now = now_ns();
        let status = match route {
            Route::Sink => StatusCode::OK,
            Route::Track => self.track(headers, body),
            Route::Flaky => self.flaky(headers, now),
            Route::Cron => self.cron(headers),
        };
        if status.is_success() {
            self.success(body, now);
        }
        status
    }

    fn success(&self, body: &[u8], now: u64) {
        if let Some(stamps) = decode(body) {
            let us = now.saturating_sub(stamps.sent_ns) / 1000;
            lock(&self.latency).saturating_record(us);
        }
        self.last_ns.fetch_max(now, Ordering::SeqCst);
        self.delivered.fetch_add(1, Ordering::SeqCst);
    }

    fn track(&self, headers: &HeaderMap, body: &[u8]) -> StatusCode {
        let due = decode(body).and_then(|s| s.due_unix_ms);
        lock(&self.tracked).record(message_id(headers), due, unix_ms());
        StatusCode::OK
    }

    fn flaky(&self, headers: &HeaderMap, now: u64) -> StatusCode {
        let retried = header(headers, "upstash-retried").and_then(|v| v.parse().ok());
        let mut flaky = lock(&self.flaky);
        let attempts = flaky.entry(message_id(headers)).or_default();
        attempts.push(Attempt {
            at_ns: now,
            retried,
        });
        if attempts.len() <= FLAKY_FAILURES {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    }

    fn cron(&self, headers: &HeaderMap) -> StatusCode {
        let id = header(headers, "upstash-schedule-id")
            .unwrap_or_default()
            .to_string();
        lock(&self.cron).push((id, unix_ms()));
        StatusCode::OK
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn message_id(headers: &HeaderMap) -> String {
    header(headers, "upstash-message-id")
        .unwrap_or_default()
        .to_string()
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve(stream, Arc::clone(&state)));
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
}

async fn serve(stream: TcpStream, state: Arc<State>) {
    serve_connection(stream, move |req| handle(Arc::clone(&state), req)).await;
}

/// Serves one HTTP/1.1 connection with `handler`, replies sent without Nagle's delay.
pub async fn serve_connection<F, Fut>(stream: TcpStream, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let _ = stream.set_nodelay(true);
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service_fn(handler))
        .await;
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let route = Route::of(req.uri().path());
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let status = match route {
        Some(route) => state.arrive(route, &parts.headers, &body),
        None => StatusCode::NOT_FOUND,
    };
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_pick_their_behaviour_by_prefix() {
        assert_eq!(Route::of("/sink"), Some(Route::Sink));
        assert_eq!(Route::of("/track/a"), Some(Route::Track));
        assert_eq!(Route::of("/flaky"), Some(Route::Flaky));
        assert_eq!(Route::of("/cron/1"), Some(Route::Cron));
        assert_eq!(Route::of("/other"), None);
    }

    #[test]
    fn tracking_counts_repeats_and_early_arrivals() {
        let mut t = TrackState::default();
        t.record("a".into(), Some(1_000), 1_005);
        t.record("a".into(), Some(1_000), 1_010);
        t.record("b".into(), Some(1_000), 999);
        let r = t.report();
        assert_eq!((r.unique, r.duplicates, r.early), (2, 1, 1));
        assert!((r.lateness.max_ms - 10.0).abs() < 0.1, "{r:?}");
    }

    #[test]
    fn a_flaky_destination_fails_twice_then_succeeds() {
        let state = State::new();
        let mut headers = HeaderMap::new();
        headers.insert("upstash-message-id", "msg_1".parse().expect("valid"));
        let answers: Vec<_> = (0..3)
            .map(|_| state.arrive(Route::Flaky, &headers, b""))
            .collect();
        assert_eq!(
            answers,
            [
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::OK
            ]
        );
        assert_eq!(state.delivered.load(Ordering::SeqCst), 1);
    }
}
