//! The load generator: a fixed number of keep-alive HTTP/1.1 connections, each driven by
//! one task, posting pre-built bodies either as fast as answers come back (a total count)
//! or on a fixed schedule (a rate). It is the same code for the direct ceiling and for
//! qpost, so any difference between the two is qpost's.
//!
//! Each task owns its connection (hyper's connection-level HTTP/1.1 client) instead of
//! sharing a pooled client: exactly `--connections` sockets stay open, and no pool
//! checkout or URI parsing happens per request. Bodies are copied from a pre-built
//! template with only the send stamp rewritten.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{SendRequest, handshake};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::{BodyTemplate, now_ns};
use crate::stats::{Summary, histogram, per_second};

/// Longest wait for one answer before the request counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where requests go: an address, a path and the headers every request carries.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub path: Uri,
    pub headers: HeaderMap,
}

impl Target {
    /// A target at `addr` + `path` with `Host` and a content type already set.
    pub fn new(addr: SocketAddr, path: &str) -> anyhow::Result<Self> {
        let path: Uri = path.parse().with_context(|| format!("bad path {path}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(&addr.to_string())?);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        Ok(Self {
            addr,
            path,
            headers,
        })
    }

    /// Adds a header every request carries.
    pub fn with_header(mut self, name: &'static str, value: &str) -> anyhow::Result<Self> {
        self.headers.insert(name, HeaderValue::from_str(value)?);
        Ok(self)
    }

    /// A POST of `body` to this target.
    pub fn post(&self, body: Bytes) -> Request<Full<Bytes>> {
        self.request(Method::POST, body)
    }

    pub fn request(&self, method: Method, body: Bytes) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = self.path.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// One keep-alive HTTP/1.1 connection, reopened after a failure.
pub struct Conn {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, sender: None }
    }

    /// Sends `req` and reads the whole answer; a transport failure drops the connection.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<(StatusCode, Bytes)> {
        let result = tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(req)).await;
        let result =
            result.unwrap_or_else(|_| Err(anyhow::anyhow!("no answer in {REQUEST_TIMEOUT:?}")));
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn exchange(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<(StatusCode, Bytes)> {
        let sender = self.ready().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    async fn ready(&mut self) -> anyhow::Result<&mut SendRequest<Full<Bytes>>> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.sender = Some(self.connect().await?);
        }
        let sender = self.sender.as_mut().context("connection just opened")?;
        sender.ready().await?;
        Ok(sender)
    }

    async fn connect(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let stream = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("cannot connect to {}", self.addr))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(sender)
    }
}

/// How requests are paced.
#[derive(Clone, Copy, Debug)]
pub enum Pace {
    /// `total` requests, each connection sending its next as soon as the last is answered.
    Count(u64),
    /// `total` requests at `per_sec`: request `i` starts at `i / per_sec` seconds.
    Rate { per_sec: f64, total: u64 },
}

impl Pace {
    fn total(self) -> u64 {
        match self {
            Pace::Count(n) | Pace::Rate { total: n, .. } => n,
        }
    }
}

/// One load run: what to send, how fast, and for at most how long.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    pub target: Target,
    pub connections: usize,
    pub body: BodyTemplate,
    pub pace: Pace,
    pub time_limit: Duration,
}

/// What a load run saw from the client side.
#[derive(Debug)]
pub struct LoadReport {
    /// Answered with 2xx.
    pub ok: u64,
    /// Non-2xx answers and transport failures.
    pub failed: u64,
    pub first_error: Option<String>,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Request-to-answer times of 2xx answers (µs).
    pub ack: Histogram<u64>,
}

impl LoadReport {
    /// 2xx answers per second over the whole run.
    pub fn ok_per_sec(&self) -> f64 {
        per_second(self.ok, self.end_ns.saturating_sub(self.start_ns))
    }

    pub fn ack_summary(&self) -> Summary {
        Summary::of(&self.ack)
    }
}

/// Shared by the connection tasks of one run.
struct Shared {
    spec: LoadSpec,
    next: AtomicU64,
    started: Instant,
    deadline: Instant,
}

impl Shared {
    /// The index of the next request to send, `None` when done or out of time.
    fn claim(&self) -> Option<u64> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.spec.pace.total() && Instant::now() < self.deadline).then_some(i)
    }

    /// Waits until request `i` is due (rate pacing only).
    async fn wait_turn(&self, i: u64) {
        if let Pace::Rate { per_sec, .. } = self.spec.pace {
            let at = self.started + Duration::from_secs_f64(i as f64 / per_sec);
            tokio::time::sleep_until(at.min(self.deadline).into()).await;
        }
    }
}

/// Runs the load to completion (or its time limit) and merges what every connection saw.
pub async fn run(spec: LoadSpec) -> LoadReport {
    let connections = spec.connections.max(1);
    let now = Instant::now();
    let shared = Arc::new(Shared {
        deadline: now + spec.time_limit,
        spec,
        next: AtomicU64::new(0),
        started: now,
    });
    let mut report = LoadReport::empty(now_ns());
    let tasks: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(drive(Arc::clone(&shared))))
        .collect();
    for task in tasks {
        match task.await {
            Ok(tally) => report.merge(tally),
            Err(e) => report.note_error(format!("connection task died: {e}")),
        }
    }
    report
}

impl LoadReport {
    fn empty(start_ns: u64) -> Self {
        Self {
            ok: 0,
            failed: 0,
            first_error: None,
            start_ns,
            end_ns: start_ns,
            ack: histogram(),
        }
    }

    fn merge(&mut self, other: LoadReport) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.end_ns = self.end_ns.max(other.end_ns);
        let _ = self.ack.add(&other.ack);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn note_error(&mut self, error: String) {
        self.failed += 1;
        self.first_error.get_or_insert(error);
    }
}

/// One connection's loop: claim, wait for its turn, send, record.
async fn drive(shared: Arc<Shared>) -> LoadReport {
    let spec = &shared.spec;
    let mut conn = Conn::new(spec.target.addr);
    let mut tally = LoadReport::empty(0);
    while let Some(i) = shared.claim() {
        shared.wait_turn(i).await;
        let sent = now_ns();
        let result = conn.send(spec.target.post(spec.body.stamp(sent))).await;
        tally.end_ns = now_ns();
        match result {
            Ok((status, _)) if status.is_success() => {
                tally.ok += 1;
                tally.ack.saturating_record((tally.end_ns - sent) / 1000);
            }
            Ok((status, body)) => {
                tally.note_error(format!("{status}: {}", String::from_utf8_lossy(&body)))
            }
            Err(e) => tally.note_error(format!("{e:#}")),
        }
    }
    tally
}
