//! qpost-aws-local: AWS mode on one machine, against an AWS emulator (moto), for the SDK
//! conformance suites. It serves `qpost_http::router` with `axum::serve` on the AWS
//! backend's services (DynamoDB, SQS, EventBridge Scheduler through `AWS_ENDPOINT_URL`),
//! and runs in-process what AWS would run around the functions: the SQS event source
//! mappings invoking the deliver and failure-callback handlers, and EventBridge
//! Scheduler's firings (moto never fires). The emulation is the end-to-end harness's
//! (`tests/emulator/e2e/{mapping,firing}.rs`), included by path.
//!
//! Configuration is the functions' (`Config::from_env`, the token from `QPOST_TOKEN` or
//! `QPOST_TOKEN_PARAMETER`), as `infra/local/bootstrap.py` prints it; signing keys are the
//! stored ones, or the public QStash dev-server keys on a fresh table, as in local mode.
//! Destinations on loopback are allowed. On start it prints the same `QSTASH_*` block as
//! the `qpost` binary; SIGINT or SIGTERM stops it gracefully. With `--count-requests` it
//! counts the AWS requests of the functions and of the emulated event sources and serves
//! the counts at `GET /_emulator/requests` (`counts`), for `qpost-bench --scenario aws-cost`.
//!
//! ```sh
//! eval "$(AWS_ENDPOINT_URL=http://127.0.0.1:5555 .venv/bin/python infra/local/bootstrap.py --prefix dev)"
//! AWS_ENDPOINT_URL=http://127.0.0.1:5555 cargo run -p qpost-aws --example qpost-aws-local -- --port 8080
//! ```
#![forbid(unsafe_code)]

#[path = "../../tests/emulator/e2e/firing.rs"]
mod firing;
#[path = "../../tests/emulator/e2e/mapping.rs"]
mod mapping;
#[path = "../../tests/emulator/e2e/serial.rs"]
mod serial;
// The tests' tally helpers are not all used here.
#[allow(dead_code)]
#[path = "../../tests/emulator/e2e/counting.rs"]
mod counting;
mod counts;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use qpost_aws::backend::sdk_loader;
use qpost_aws::lambda::Error;
use qpost_aws::lambda::api::TokenSource;
use qpost_aws::lambda::deliver::Deliver;
use qpost_aws::lambda::failure::FailureCallback;
use qpost_aws::{Backend, Config};
use qpost_core::clock::{Clock, SystemClock};
use qpost_core::config::Limits;
use qpost_core::signing::SigningKeys;
use qpost_http::{HttpConfig, shutdown_signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use firing::Scheduler;
use mapping::EventSource;

/// Concurrent pollers on the delivery queue (AWS scales its pollers with the backlog).
const DELIVERY_POLLERS: usize = 4;

/// Where to listen: `--bind <ip>` (default 127.0.0.1) and `--port <n>` (default 8080; 0
/// picks a free port); `--count-requests` counts AWS requests (`counts`).
struct Args {
    bind: IpAddr,
    port: u16,
    count_requests: bool,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut parsed = Self {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 8080,
            count_requests: false,
        };
        while let Some(flag) = args.next() {
            if flag == "--count-requests" {
                parsed.count_requests = true;
                continue;
            }
            let value = args.next().ok_or(format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--bind" => parsed.bind = value.parse().map_err(|e| format!("--bind: {e}"))?,
                "--port" => parsed.port = value.parse().map_err(|e| format!("--port: {e}"))?,
                _ => {
                    return Err(format!(
                        "unknown argument {flag} (use --bind, --port, --count-requests)"
                    ));
                }
            }
        }
        Ok(parsed)
    }
}

/// Logs to stderr (stdout carries the `QSTASH_*` block), level from `RUST_LOG` (default
/// `info`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let args = Args::parse(std::env::args().skip(1))?;
    let config = Config::from_env()?;
    let sdk = sdk_loader(&config.region).load().await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let requests = args.count_requests.then(counting::RequestLog::default);
    let (functions_sdk, sources_sqs) = counts::clients(requests.as_ref(), &sdk);
    // moto lacks DynamoDB's per-request atomicity, which flow-control leases rely on.
    let functions_sdk = serial::dynamodb_one_at_a_time(&functions_sdk);
    let backend = Backend::new(
        config,
        &functions_sdk,
        Arc::clone(&clock),
        Limits::default(),
    );
    let keys = backend.store.init_keys(None, SigningKeys::dev()).await?;
    backend.cached_keys.prime(keys.clone()).await;
    let tokens = TokenSource::from_env()?.tokens(&sdk).await?;
    let listener = tokio::net::TcpListener::bind((args.bind, args.port)).await?;
    let (stop, stopped) = watch::channel(false);
    let workers = emulate_aws(&backend, &sources_sqs, &sdk, clock, stopped).await?;
    let config = HttpConfig {
        tokens: tokens.clone(),
    };
    // One process: the API shares the consumers' key cache, so a rotation through the API
    // is what the next delivery signs with (on AWS, within `SIGNING_KEYS_TTL`).
    let mut app = qpost_http::router(Arc::new(backend.consumer_services()), config);
    if let Some(log) = requests {
        let queue = &backend.config.delivery_queue_url;
        app = app.merge(counts::router(log, workers.delivery.clone(), &sdk, queue));
    }
    // Handlers are installed before the block is printed: whoever reads it may signal.
    let shutdown = shutdown_signal()?;
    let addr = listener.local_addr()?;
    println!(
        "qpost (AWS mode, emulated) is running at http://{addr}\nQSTASH_URL=http://{addr}\nQSTASH_TOKEN={}\nQSTASH_CURRENT_SIGNING_KEY={}\nQSTASH_NEXT_SIGNING_KEY={}",
        tokens[0],
        keys.current.expose(),
        keys.next.expose()
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    let _ = stop.send(true);
    workers.finish().await;
    Ok(())
}

/// The running emulation of what AWS runs around the functions.
struct Emulation {
    delivery: EventSource,
    dead_letters: EventSource,
    ordered: EventSource,
    workers: Vec<JoinHandle<()>>,
}

impl Emulation {
    /// Waits for the workers (told to stop) and logs what the event sources handled.
    async fn finish(self) {
        for worker in self.workers {
            let _ = worker.await;
        }
        let (d, f) = (self.delivery.totals(), self.dead_letters.totals());
        let o = self.ordered.totals();
        tracing::info!(
            delivery_records = d.records,
            delivery_failed = d.failed,
            ordered_records = o.records,
            ordered_failed = o.failed,
            dead_letter_records = f.records,
            dead_letter_failed = f.failed,
            "stopped"
        );
    }
}

/// The event source mappings (delivery and ordered queues → deliver, their dead-letter
/// queues → failure callback), polling with `sources`, and the schedule group's firings,
/// until `stop` says so.
async fn emulate_aws(
    backend: &Backend,
    sources: &aws_sdk_sqs::Client,
    sdk: &aws_config::SdkConfig,
    clock: Arc<dyn Clock>,
    stop: watch::Receiver<bool>,
) -> Result<Emulation, Error> {
    let c = &backend.config;
    let delivery = EventSource::new(
        sources.clone(),
        &c.delivery_queue_url,
        &c.delivery_queue_arn,
        Arc::new(Deliver::new(backend)),
    );
    let dead_letters = EventSource::new(
        sources.clone(),
        &c.dead_letter_queue_url,
        &c.dead_letter_queue_arn,
        Arc::new(FailureCallback::new(backend)),
    );
    let scheduler = Scheduler::new(
        aws_sdk_scheduler::Client::new(sdk),
        aws_sdk_sqs::Client::new(sdk),
        &c.schedule_group,
    )
    .with_group(&c.secondary_schedule_group);
    let ordered_url = &c.ordered_queue_url;
    let ordered_dead_letters_url = mapping::dead_letter_queue(sources, ordered_url).await?;
    let ordered = EventSource::for_queue(
        sources.clone(),
        ordered_url,
        Arc::new(Deliver::new(backend)),
    )
    .await?;
    let ordered_dead_letters = EventSource::for_queue(
        sources.clone(),
        &ordered_dead_letters_url,
        Arc::new(FailureCallback::new(backend)),
    )
    .await?;
    let mut workers: Vec<JoinHandle<()>> = (0..DELIVERY_POLLERS)
        .flat_map(|_| [delivery.clone(), ordered.clone()])
        .map(|source| tokio::spawn(source.run(stop.clone())))
        .collect();
    for source in [dead_letters.clone(), ordered_dead_letters] {
        workers.push(tokio::spawn(source.run(stop.clone())));
    }
    workers.push(tokio::spawn(scheduler.run(clock, stop)));
    Ok(Emulation {
        delivery,
        dead_letters,
        ordered,
        workers,
    })
}
