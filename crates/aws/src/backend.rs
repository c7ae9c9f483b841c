//! The AWS backend assembled once per process (per Lambda container, outside the handler):
//! the SDK configuration and clients are built once and shared by the store, the
//! dispatcher, the EventBridge Scheduler registry and the admission port, and the limits
//! are clamped to what AWS mode can store.

use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use qpost_core::Services;
use qpost_core::clock::Clock;
use qpost_core::config::Limits;
use qpost_core::keys::cached::CachedKeys;
use qpost_core::ports::{Admission, ScheduleRegistry};
use qpost_core::signing::{SigningKey, SigningKeys};

use crate::admission::DynamoAdmission;
use crate::config::{Config, ConfigError};
use crate::dispatch::SqsDispatcher;
use crate::error::AwsError;
use crate::scheduler::EventBridgeScheduler;
use crate::store::DynamoStore;
use crate::store::bodies::Bodies;

/// Largest message body AWS mode accepts: local mode's ceiling for `max_body_bytes` (the
/// default, 1 MiB, applies as in local mode). Bodies over the claim check's threshold live
/// in S3, so the DynamoDB item limit no longer bounds them. Requests through API Gateway and
/// Lambda are bounded further: 6 MB per synchronous invocation, binary bodies counted
/// base64-encoded.
pub const MAX_BODY_BYTES: usize = 10 << 20;
/// Largest destination response body kept for callbacks and the DLQ in AWS mode: local
/// mode's default. A DLQ entry is read back through a Lambda response (6 MB at most) with
/// its message body and this response body, base64-encoded when binary: with 1 MiB bodies,
/// 4/3 × 2 MiB ≈ 2.7 MB leaves room; a larger kept response would put that at risk.
pub const MAX_RESPONSE_BODY_BYTES: usize = 1 << 20;
/// How long the queue consumers (deliver, failure callback) sign with signing keys they
/// read before reading them again. Without a cache each delivery attempt reads them: one
/// more DynamoDB request per message. A rotation made by an API function reaches the
/// consumers' deliveries within this time; until then they sign with the previous current
/// key, which receivers still hold (they verify with current and next) unless they were
/// updated within a minute of the rotation. A minute keeps that window short while a
/// container delivering a message every few seconds reads the keys once per dozens of
/// deliveries.
pub const SIGNING_KEYS_TTL: Duration = Duration::from_secs(60);

/// `limits` with the body limits capped at what AWS mode serves; configured values below
/// the caps are kept.
pub fn aws_limits(mut limits: Limits) -> Limits {
    limits.max_body_bytes = limits.max_body_bytes.min(MAX_BODY_BYTES);
    limits.max_response_body_bytes = limits.max_response_body_bytes.min(MAX_RESPONSE_BODY_BYTES);
    limits
}

/// An SDK config loader for `region` using the crate's HTTPS client (hyper + rustls on
/// ring). Credentials and `AWS_ENDPOINT_URL` come from the environment as usual.
pub fn sdk_loader(region: &str) -> ConfigLoader {
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .http_client(https)
}

/// Every AWS-side piece a function needs, built once.
pub struct Backend {
    pub config: Config,
    /// The loaded SDK configuration, for clients only some functions need (SSM).
    pub sdk: SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub store: Arc<DynamoStore>,
    /// Long wake-ups go through the scheduler.
    pub dispatcher: Arc<SqsDispatcher>,
    /// The schedule registry, and the one-time wake-ups of long waits.
    pub scheduler: Arc<EventBridgeScheduler>,
    pub admission: Arc<DynamoAdmission>,
    /// The limits to serve with, already passed through [`aws_limits`].
    pub limits: Limits,
    pub clock: Arc<dyn Clock>,
    /// The store's signing keys cached for [`SIGNING_KEYS_TTL`]; see [`Backend::consumer_services`].
    pub cached_keys: Arc<CachedKeys>,
}

impl Backend {
    /// Reads [`Config`] from the environment and connects.
    pub async fn from_env(clock: Arc<dyn Clock>, limits: Limits) -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        let sdk = sdk_loader(&config.region).load().await;
        Ok(Self::new(config, &sdk, clock, limits))
    }

    /// Builds the clients from a loaded SDK configuration (tests point it at an emulator).
    pub fn new(config: Config, sdk: &SdkConfig, clock: Arc<dyn Clock>, limits: Limits) -> Self {
        let limits = aws_limits(limits);
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let store = Arc::new(
            DynamoStore::new(
                dynamodb.clone(),
                &config.table,
                Bodies::new(Bodies::client(sdk), &config.body_bucket),
            )
            .with_event_retention(limits.event_retention),
        );
        let scheduler = Arc::new(EventBridgeScheduler::new(
            aws_sdk_scheduler::Client::new(sdk),
            &config,
        ));
        let dispatcher =
            SqsDispatcher::new(sqs.clone(), &config.delivery_queue_url, Arc::clone(&clock))
                .with_scheduler(Arc::clone(&scheduler))
                .with_ordered_queue(&config.ordered_queue_url, store.clone());
        let admission = DynamoAdmission::new(Arc::clone(&store), config.global_parallelism)
            .with_clock(Arc::clone(&clock));
        let cached_keys = CachedKeys::new(store.clone(), Arc::clone(&clock), SIGNING_KEYS_TTL);
        let cached_keys = Arc::new(cached_keys);
        Self {
            config,
            sdk: sdk.clone(),
            dynamodb,
            sqs,
            store,
            dispatcher: Arc::new(dispatcher),
            scheduler,
            admission: Arc::new(admission),
            limits,
            cached_keys,
            clock,
        }
    }

    /// Makes sure signing keys exist: stored keys win, and fresh ones are written once, by
    /// whichever function starts first (the write is conditional). Functions call it at
    /// cold start; `POST /v2/keys/rotate` replaces them later. The keys read or written
    /// prime [`Backend::cached_keys`], so a consumer's first delivery reads none.
    pub async fn ensure_signing_keys(&self) -> Result<(), AwsError> {
        let fresh = SigningKeys {
            current: SigningKey::generate(),
            next: SigningKey::generate(),
        };
        let keys = self.store.init_keys(None, fresh).await?;
        self.cached_keys.prime(keys).await;
        Ok(())
    }

    /// [`Backend::services`] for the queue consumers (deliver, failure callback), which
    /// sign every delivery: the signing keys are read through [`Backend::cached_keys`], at
    /// most once per [`SIGNING_KEYS_TTL`]. The API functions keep reading the store, so
    /// `GET /v2/keys` always shows the stored keys.
    pub fn consumer_services(&self) -> Services {
        Services {
            keys: self.cached_keys.clone(),
            ..self.services()
        }
    }

    /// The use cases' bundle on this backend: EventBridge Scheduler fires schedules, the
    /// AWS admission port answers the flow-control API.
    pub fn services(&self) -> Services {
        self.services_with(self.scheduler.clone(), self.admission.clone())
    }

    /// [`Backend::services`] with another schedule registry and admission (tests).
    pub fn services_with(
        &self,
        registry: Arc<dyn ScheduleRegistry>,
        admission: Arc<dyn Admission>,
    ) -> Services {
        Services {
            messages: self.store.clone(),
            dlq: self.store.clone(),
            keys: self.store.clone(),
            dispatcher: self.dispatcher.clone(),
            schedules: self.store.clone(),
            registry,
            topics: self.store.clone(),
            queues: self.store.clone(),
            events: self.store.clone(),
            admission,
            clock: Arc::clone(&self.clock),
            http: qpost_core::services::delivery_client(self.limits.block_private_destinations),
            limits: self.limits.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_mode_takes_local_modes_default_body_limits() {
        let defaults = Limits::default();
        let served = aws_limits(defaults.clone());
        assert_eq!(served.max_body_bytes, defaults.max_body_bytes);
        assert_eq!(
            served.max_response_body_bytes,
            defaults.max_response_body_bytes
        );
        let small = Limits {
            max_body_bytes: 1000,
            ..Limits::default()
        };
        assert_eq!(aws_limits(small).max_body_bytes, 1000);
    }

    #[test]
    fn aws_limits_cap_configured_bodies_at_what_aws_mode_serves() {
        let large = Limits {
            max_body_bytes: 64 << 20,
            max_response_body_bytes: 64 << 20,
            ..Limits::default()
        };
        let served = aws_limits(large);
        assert_eq!(served.max_body_bytes, MAX_BODY_BYTES);
        assert_eq!(served.max_response_body_bytes, MAX_RESPONSE_BODY_BYTES);
    }
}
