//! The AWS backend assembled once per process (per Lambda container, outside the handler):
//! the SDK configuration and clients are built once and shared by the store, the
//! dispatcher, the EventBridge Scheduler registry and the admission port, and the limits
//! are clamped to what AWS mode can store.

use std::sync::Arc;

use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use qpost_core::Services;
use qpost_core::clock::Clock;
use qpost_core::config::Limits;
use qpost_core::ports::{Admission, ScheduleRegistry};
use qpost_core::signing::{SigningKey, SigningKeys};

use crate::admission::DynamoAdmission;
use crate::config::{Config, ConfigError};
use crate::dispatch::SqsDispatcher;
use crate::error::AwsError;
use crate::scheduler::EventBridgeScheduler;
use crate::store::DynamoStore;

/// Largest message body AWS mode accepts until bodies can go to S3. Chosen so that a
/// callback message, which carries the source body and the response body base64-encoded
/// (4/3 of their sizes), still fits a 400 KB DynamoDB item: 4/3 × (192 + 32) KiB ≈ 299 KiB.
pub const MAX_BODY_BYTES: usize = 192 * 1024;
/// Largest destination response body kept for callbacks and the DLQ in AWS mode (see
/// [`MAX_BODY_BYTES`]).
pub const MAX_RESPONSE_BODY_BYTES: usize = 32 * 1024;

/// `limits` with the body limits lowered to what a DynamoDB item holds; configured values
/// below them are kept.
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
            DynamoStore::new(dynamodb.clone(), &config.table)
                .with_event_retention(limits.event_retention),
        );
        let scheduler = Arc::new(EventBridgeScheduler::new(
            aws_sdk_scheduler::Client::new(sdk),
            &config,
        ));
        let dispatcher =
            SqsDispatcher::new(sqs.clone(), &config.delivery_queue_url, Arc::clone(&clock))
                .with_scheduler(Arc::clone(&scheduler));
        let admission = DynamoAdmission::new(Arc::clone(&store), config.global_parallelism);
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
            clock,
        }
    }

    /// Makes sure signing keys exist: stored keys win, and fresh ones are written once, by
    /// whichever function starts first (the write is conditional). Functions call it at
    /// cold start; `POST /v2/keys/rotate` replaces them later.
    pub async fn ensure_signing_keys(&self) -> Result<(), AwsError> {
        let fresh = SigningKeys {
            current: SigningKey::generate(),
            next: SigningKey::generate(),
        };
        self.store.init_keys(None, fresh).await?;
        Ok(())
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
    fn aws_limits_lower_body_limits_and_keep_smaller_ones() {
        let clamped = aws_limits(Limits::default());
        assert_eq!(clamped.max_body_bytes, MAX_BODY_BYTES);
        assert_eq!(clamped.max_response_body_bytes, MAX_RESPONSE_BODY_BYTES);
        let small = Limits {
            max_body_bytes: 1000,
            ..Limits::default()
        };
        assert_eq!(aws_limits(small).max_body_bytes, 1000);
    }

    #[test]
    fn a_callback_of_maximal_bodies_fits_an_item() {
        let base64 = |n: usize| n.div_ceil(3) * 4;
        let callback = base64(MAX_BODY_BYTES) + base64(MAX_RESPONSE_BODY_BYTES);
        assert!(callback + 16 * 1024 < crate::store::item::MAX_ITEM_BYTES);
    }
}
