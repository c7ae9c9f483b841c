//! A stand-in for the Lambda runtime API, for measuring a function binary's init time:
//! an HTTP server on 127.0.0.1 that notes when the function first asks for an event
//! (`GET /2018-06-01/runtime/invocation/next`), which is when its init is over, and then
//! holds that request open, as Lambda does while no event is queued. Any other request
//! is answered 202.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::receiver::serve_connection;

/// The path a function polls for its next event.
const NEXT: &str = "/2018-06-01/runtime/invocation/next";

/// One runtime API for one cold start; stops serving when dropped.
pub struct RuntimeApi {
    addr: SocketAddr,
    first_next: watch::Receiver<Option<Instant>>,
    server: JoinHandle<()>,
    /// Dropped with the API: held `next` requests are then answered and closed.
    _release: watch::Sender<()>,
}

struct State {
    first_next: watch::Sender<Option<Instant>>,
    release: watch::Receiver<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (first_tx, first_next) = watch::channel(None);
        let (release_tx, release) = watch::channel(());
        let state = Arc::new(State {
            first_next: first_tx,
            release,
        });
        let server = tokio::spawn(accept_loop(listener, state));
        Ok(Self {
            addr,
            first_next,
            server,
            _release: release_tx,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// When the function first asked for an event (waits for it).
    pub async fn first_next(&mut self) -> anyhow::Result<Instant> {
        let seen = self.first_next.wait_for(Option::is_some).await?;
        seen.ok_or_else(|| anyhow::anyhow!("no request seen"))
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve(stream, Arc::clone(&state)));
    }
}

async fn serve(stream: TcpStream, state: Arc<State>) {
    serve_connection(stream, move |req| handle(Arc::clone(&state), req)).await;
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() == Method::GET && req.uri().path() == NEXT {
        let now = Instant::now();
        state.first_next.send_if_modified(|first| {
            let unset = first.is_none();
            first.get_or_insert(now);
            unset
        });
        // No event is ever queued: hold the request until the API goes away.
        let mut release = state.release.clone();
        let _ = release.changed().await;
    }
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::ACCEPTED;
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{Conn, Target};

    #[tokio::test]
    async fn the_first_request_for_an_event_is_noted_and_held() {
        let mut api = RuntimeApi::start().await.expect("started");
        let addr: SocketAddr = api.host().parse().expect("host:port");
        let other = Target::new(addr, "/2018-06-01/runtime/init/error").expect("target");
        let (status, _) = Conn::new(addr)
            .send(other.request(Method::POST, Bytes::new()))
            .await
            .expect("answered");
        assert_eq!(status, StatusCode::ACCEPTED);
        let before = Instant::now();
        let next = Target::new(addr, NEXT).expect("target");
        let held = tokio::spawn(async move {
            Conn::new(addr)
                .send(next.request(Method::GET, Bytes::new()))
                .await
        });
        let seen = api.first_next().await.expect("seen");
        assert!(seen >= before);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!held.is_finished(), "the request for an event is held");
        drop(api);
        let _ = held.await;
    }
}
