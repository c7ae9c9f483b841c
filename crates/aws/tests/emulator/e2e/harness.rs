//! One AWS-mode stack per test, on moto: a fresh table, delivery queue, SQS dead-letter
//! queue (redrive policy), parked queue and schedule group from `infra/local/bootstrap.py`;
//! the backend every function builds at cold start; the three API functions behind the
//! emulated API Gateway; the deliver and failure-callback functions behind emulated event
//! source mappings (polling in the background unless a test drives them by hand); the
//! emulated EventBridge Scheduler (fired by the test); a recording receiver; and a clock a
//! test can move ahead. Every AWS request the functions and the event sources send is
//! counted (`counting`).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use qpost_aws::Backend;
use qpost_aws::lambda::deliver::Deliver;
use qpost_aws::lambda::failure::FailureCallback;
use qpost_core::clock::{Clock, SystemClock};
use qpost_core::config::Limits;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::counting::RequestLog;
use super::firing::Scheduler;
use super::gateway::{ApiRequest, ApiResponse, Gateway};
use super::mapping::{self, EventSource};
use super::receiver::Receiver;
use super::serial;
use crate::support;

/// The system clock plus an offset a test moves forward ("it is now 20 minutes later").
#[derive(Debug, Default)]
pub struct ShiftedClock(AtomicI64);

impl ShiftedClock {
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms() + self.0.load(Ordering::SeqCst)
    }
}

/// Waits until `probe` yields a value, failing with `what` after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Logs of the functions, shown with a failing test's output (`RUST_LOG`, default `warn`).
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Messages on a queue by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Depth {
    pub visible: u32,
    pub in_flight: u32,
    pub delayed: u32,
}

impl Depth {
    pub fn total(&self) -> u32 {
        self.visible + self.in_flight + self.delayed
    }
}

/// One stack and everything around it; stops its pollers when dropped.
pub struct Stack {
    pub backend: Backend,
    pub gateway: Gateway,
    pub receiver: Receiver,
    pub clock: Arc<ShiftedClock>,
    /// Requests of the functions (`"qpost"`) and the event sources (`"event source"`).
    pub requests: RequestLog,
    /// The deliver function on the delivery queue.
    pub delivery: EventSource,
    /// The failure-callback function on the SQS dead-letter queue.
    pub dead_letters: EventSource,
    /// The deliver function on the ordered (FIFO) queue of qpost queues' messages.
    pub ordered: EventSource,
    /// The failure-callback function on the ordered queue's dead-letter queue.
    pub ordered_dead_letters: EventSource,
    pub scheduler: Scheduler,
    /// Uncounted clients for the test's own looks at the queues and the table.
    sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    stop: watch::Sender<bool>,
    pollers: Vec<JoinHandle<()>>,
}

impl Stack {
    /// A stack whose event sources poll in the background.
    pub async fn start() -> Self {
        let mut stack = Self::idle().await;
        stack.start_pollers();
        stack
    }

    /// A stack whose event sources run only when the test calls `poll_once`.
    pub async fn idle() -> Self {
        init_logs();
        let clock = Arc::new(ShiftedClock::default());
        let config = support::fresh_stack().await;
        let sdk = support::sdk_config(&config.region).await;
        let requests = RequestLog::default();
        let functions_sdk = serial::dynamodb_one_at_a_time(&requests.wrap(&sdk, "qpost"));
        let poller_sdk = requests.wrap(&sdk, "event source");
        // Destinations are on loopback (the receiver): the Lambda limits would refuse them.
        let backend = Backend::new(config, &functions_sdk, clock.clone(), Limits::default());
        backend
            .ensure_signing_keys()
            .await
            .expect("signing keys are written");
        let services = Arc::new(backend.services());
        let poller_sqs = aws_sdk_sqs::Client::new(&poller_sdk);
        let c = &backend.config;
        let delivery = EventSource::new(
            poller_sqs.clone(),
            &c.delivery_queue_url,
            &c.delivery_queue_arn,
            Arc::new(Deliver::new(&backend)),
        );
        let dead_letters = EventSource::new(
            poller_sqs.clone(),
            &c.dead_letter_queue_url,
            &c.dead_letter_queue_arn,
            Arc::new(FailureCallback::new(&backend)),
        );
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let ordered_dead_letter_url = mapping::dead_letter_queue(&sqs, &c.ordered_queue_url)
            .await
            .expect("the ordered queue has a dead-letter queue");
        let deliver = Arc::new(Deliver::new(&backend));
        let ordered = EventSource::for_queue(poller_sqs.clone(), &c.ordered_queue_url, deliver)
            .await
            .expect("the ordered queue exists");
        let failure = Arc::new(FailureCallback::new(&backend));
        let ordered_dead_letters =
            EventSource::for_queue(poller_sqs.clone(), &ordered_dead_letter_url, failure)
                .await
                .expect("the ordered dead-letter queue exists");
        let scheduler = Scheduler::new(
            aws_sdk_scheduler::Client::new(&sdk),
            sqs.clone(),
            &c.schedule_group,
        )
        .with_group(&c.secondary_schedule_group);
        Self {
            gateway: Gateway::new(Arc::clone(&services)),
            receiver: Receiver::start().await,
            backend,
            clock,
            requests,
            delivery,
            dead_letters,
            ordered,
            ordered_dead_letters,
            scheduler,
            sqs,
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            stop: watch::channel(false).0,
            pollers: Vec::new(),
        }
    }

    /// Starts polling: two pollers on the delivery queue and on the ordered queue, one on
    /// each dead-letter queue.
    pub fn start_pollers(&mut self) {
        let sources = [
            &self.delivery,
            &self.delivery,
            &self.dead_letters,
            &self.ordered,
            &self.ordered,
            &self.ordered_dead_letters,
        ];
        for source in sources {
            let source = source.clone();
            self.pollers
                .push(tokio::spawn(source.run(self.stop.subscribe())));
        }
    }

    /// Sends `request` through API Gateway.
    pub async fn api(&self, request: ApiRequest) -> ApiResponse {
        self.gateway.send(request).await
    }

    /// Publishes `body` to `destination` with `headers`; returns the message id.
    pub async fn publish(&self, destination: &str, headers: &[(&str, &str)]) -> String {
        let mut request = ApiRequest::post(&format!("/v2/publish/{destination}"))
            .header("content-type", "application/json")
            .body(r#"{"hello":"aws"}"#);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let answer = self.api(request).await.ok();
        answer["messageId"]
            .as_str()
            .unwrap_or_else(|| panic!("no messageId in {answer}"))
            .to_string()
    }

    /// The current signing key, as `GET /v2/keys` shows it.
    pub async fn signing_key(&self) -> String {
        let keys = self.api(ApiRequest::get("/v2/keys")).await.ok();
        keys["current"].as_str().expect("a current key").to_string()
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub async fn depth(&self, queue_url: &str) -> Depth {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .expect("GetQueueAttributes");
        let count = |name: QueueAttributeName| {
            out.attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Depth {
            visible: count(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        }
    }

    /// Waits until the queue holds nothing at all (every record deleted).
    pub async fn wait_until_empty(&self, queue_url: &str, within: Duration) {
        eventually(within, &format!("{queue_url} to be empty"), || async {
            (self.depth(queue_url).await.total() == 0).then_some(())
        })
        .await;
    }

    /// Sends `body` to `queue_url` as any producer would.
    pub async fn send_raw(&self, queue_url: &str, body: &str) {
        self.sqs
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .send()
            .await
            .expect("SendMessage");
    }

    /// Lowers `queue_url`'s redrive `maxReceiveCount` and visibility timeout (the stack's
    /// are 100 receives and 36 minutes), so a poison record reaches the next queue within
    /// a test. The redrive target stays the stack's.
    pub async fn shorten_redrive(&self, queue_url: &str, max_receives: u32, visibility_secs: u32) {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .expect("GetQueueAttributes");
        let policy = out
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
            .expect("the queue has a redrive policy");
        let mut policy: serde_json::Value = serde_json::from_str(policy).expect("JSON policy");
        policy["maxReceiveCount"] = max_receives.into();
        self.sqs
            .set_queue_attributes()
            .queue_url(queue_url)
            .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_secs.to_string(),
            )
            .send()
            .await
            .expect("SetQueueAttributes");
    }

    /// The queue the dead-letter queue's redrive policy parks records in.
    pub async fn parked_queue_url(&self) -> String {
        let dead_letters = &self.backend.config.dead_letter_queue_url;
        mapping::dead_letter_queue(&self.sqs, dead_letters)
            .await
            .expect("the dead-letter queue has a redrive policy")
    }

    /// Sets attribute `name` of the item (`pk`, `sk`) to the string `value`, bypassing
    /// qpost (to make an item unreadable, or to repair it).
    pub async fn overwrite(&self, pk: &str, sk: &str, name: &str, value: &str) {
        self.dynamodb
            .update_item()
            .table_name(&self.backend.config.table)
            .key("pk", AttributeValue::S(pk.into()))
            .key("sk", AttributeValue::S(sk.into()))
            .update_expression("SET #a = :v")
            .expression_attribute_names("#a", name)
            .expression_attribute_values(":v", AttributeValue::S(value.into()))
            .send()
            .await
            .expect("UpdateItem");
    }

    /// Reads attribute `name` of the item (`pk`, `sk`) as a string.
    pub async fn read_attribute(&self, pk: &str, sk: &str, name: &str) -> Option<String> {
        let out = self
            .dynamodb
            .get_item()
            .table_name(&self.backend.config.table)
            .key("pk", AttributeValue::S(pk.into()))
            .key("sk", AttributeValue::S(sk.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem");
        out.item()?.get(name)?.as_s().ok().cloned()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for poller in &self.pollers {
            poller.abort();
        }
    }
}
