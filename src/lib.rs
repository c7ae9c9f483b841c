//! qpost local mode: one process serving the QStash-compatible API over a SQLite file,
//! with the in-process timer and delivery worker.
//!
//! [`LocalApp::build`] opens the store and binds the listener; [`LocalApp::run`] serves
//! until the shutdown future resolves, then lets in-flight attempts finish.
#![forbid(unsafe_code)]

pub mod cli;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use qpost_core::Services;
use qpost_core::clock::{Clock, SystemClock};
use qpost_core::config::Limits;
use qpost_core::services::delivery_client;
use qpost_core::signing::SigningKeys;
use qpost_embedded::{Gate, SqliteStore, Ticker, Timer, Worker};
use qpost_http::HttpConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use qpost_core::signing::{DEV_CURRENT_SIGNING_KEY, DEV_NEXT_SIGNING_KEY, DEV_TOKEN};

/// How often expired DLQ entries and deduplication keys are dropped.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Everything local mode can be told.
#[derive(Clone)]
pub struct Settings {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// Accepted API tokens; the first is the one printed.
    pub tokens: Vec<String>,
    /// Signing keys to force; `None` keeps the stored ones (dev keys on first start).
    pub keys: Option<SigningKeys>,
    pub limits: Limits,
    /// Attempts in flight at once.
    pub concurrency: usize,
    /// Where "now" comes from; `None` (the default) is the system clock. Tests inject a
    /// hand-moved clock to fire schedules without waiting for real minutes.
    pub clock: Option<Arc<dyn Clock>>,
}

impl fmt::Debug for Settings {
    /// Every field but the clock, which is only said to be injected or not.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("addr", &self.addr)
            .field("data_dir", &self.data_dir)
            .field("tokens", &format_args!("[{} hidden]", self.tokens.len()))
            .field("keys", &self.keys)
            .field("limits", &self.limits)
            .field("concurrency", &self.concurrency)
            .field("clock", &self.clock.as_ref().map(|_| "injected"))
            .finish()
    }
}

impl Settings {
    /// Defaults for `addr` and `data_dir`: dev token, stored or dev keys, default limits.
    pub fn new(addr: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            addr,
            data_dir,
            tokens: vec![DEV_TOKEN.to_string()],
            keys: None,
            limits: Limits::default(),
            concurrency: 256,
            clock: None,
        }
    }
}

/// The default signing keys of a fresh data directory.
pub fn dev_keys() -> SigningKeys {
    SigningKeys::dev()
}

/// A built, bound, not yet running local server.
pub struct LocalApp {
    listener: TcpListener,
    services: Arc<Services>,
    store: Arc<SqliteStore>,
    timer: Arc<Timer>,
    gate: Arc<Gate>,
    ticker: Arc<Ticker>,
    settings: Settings,
    keys: SigningKeys,
}

impl LocalApp {
    /// Opens the data directory and binds the address.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("cannot create data dir {}", settings.data_dir.display()))?;
        let path = settings.data_dir.join("qpost.db");
        let store = Arc::new(
            SqliteStore::open(&path).with_context(|| format!("cannot open {}", path.display()))?,
        );
        let keys = store.init_keys(settings.keys.clone(), dev_keys()).await?;
        let timer = Arc::new(Timer::new());
        let gate = Arc::new(Gate::new(settings.concurrency as u32));
        gate.persist_flows(store.clone());
        let ticker = Arc::new(Ticker::new());
        let clock: Arc<dyn Clock> = settings
            .clock
            .clone()
            .unwrap_or_else(|| Arc::new(SystemClock));
        let services = Arc::new(Services {
            messages: store.clone(),
            dlq: store.clone(),
            keys: store.clone(),
            dispatcher: timer.clone(),
            schedules: store.clone(),
            registry: ticker.clone(),
            topics: store.clone(),
            queues: store.clone(),
            events: store.clone(),
            admission: gate.clone(),
            clock,
            http: delivery_client(settings.limits.block_private_destinations),
            limits: settings.limits.clone(),
        });
        let listener = TcpListener::bind(settings.addr)
            .await
            .with_context(|| format!("cannot listen on {}", settings.addr))?;
        Ok(Self {
            listener,
            services,
            store,
            timer,
            gate,
            ticker,
            settings,
            keys,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.settings.addr)
    }

    /// The signing keys in force at start-up.
    pub fn keys(&self) -> &SigningKeys {
        &self.keys
    }

    /// The `QSTASH_*` block to paste into an application's environment.
    pub fn env_block(&self) -> String {
        let token = self
            .settings
            .tokens
            .first()
            .map(String::as_str)
            .unwrap_or_default();
        format!(
            "QSTASH_URL=http://{}\nQSTASH_TOKEN={token}\nQSTASH_CURRENT_SIGNING_KEY={}\nQSTASH_NEXT_SIGNING_KEY={}",
            self.local_addr(),
            self.keys.current.expose(),
            self.keys.next.expose(),
        )
    }

    /// Re-arms every stored message, queue and flow-control key after a start.
    async fn restore(&self) -> anyhow::Result<()> {
        for queue in self.services.queues.list_queues().await? {
            self.services.admission.queue_changed(&queue).await?;
        }
        let keys = self.gate.restore_flows().await?;
        tracing::info!(keys, "restored flow-control keys");
        // Streamed into the timer as read: no second copy of every pending wake-up.
        let timer = self.timer.clone();
        let pending = self.store.each_wakeup(move |w| timer.push(w)).await?;
        tracing::info!(pending, "rescheduled stored messages");
        let armed = qpost_core::schedules::arm_all(&self.services).await?;
        tracing::info!(armed, "armed stored schedules");
        Ok(())
    }

    /// Serves until `shutdown` resolves; then stops accepting, finishes in-flight
    /// requests and delivery attempts, and returns.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.restore().await?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let worker = Worker::new(
            self.services.clone(),
            self.timer.clone(),
            self.gate.clone(),
            self.settings.concurrency,
        );
        let worker = tokio::spawn(worker.run(stop_rx.clone()));
        let ticker = tokio::spawn(
            self.ticker
                .clone()
                .run(self.services.clone(), stop_rx.clone()),
        );
        let purger = tokio::spawn(purge_loop(
            self.services.clone(),
            self.store.clone(),
            stop_rx.clone(),
        ));
        let config = HttpConfig {
            tokens: self.settings.tokens.clone(),
        };
        let app = qpost_http::router(self.services.clone(), config);
        let mut http_stop = stop_rx;
        let serve = axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = http_stop.wait_for(|stop| *stop).await;
        });
        let serve = tokio::spawn(async move { serve.await });
        shutdown.await;
        tracing::info!("shutting down: finishing requests and attempts in flight");
        let _ = stop_tx.send(true);
        serve.await??;
        ticker.await?;
        worker.await?;
        purger.await?;
        Ok(())
    }
}

async fn purge_loop(
    services: Arc<Services>,
    store: Arc<SqliteStore>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let now = services.clock.now_ms();
        if let Err(e) = store.purge(now).await {
            tracing::warn!(error = %e, "purging expired DLQ entries failed");
        }
        let before = now - services.limits.event_retention.as_millis() as i64;
        if let Err(e) = services.events.purge_events(before).await {
            tracing::warn!(error = %e, "purging old log events failed");
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(PURGE_EVERY) => {}
        }
    }
}
