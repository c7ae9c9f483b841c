//! Errors of the AWS adapters. Only size refusals reach clients (as 413); everything else
//! is an internal, retryable failure of qpost's own storage or queue.

use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// A request to an AWS service failed; `detail` carries the SDK's whole error chain.
    #[error("{operation} failed: {detail}")]
    Sdk {
        operation: &'static str,
        detail: String,
        #[source]
        source: BoxError,
    },
    #[error("cannot build a {0} request: {1}")]
    Build(&'static str, #[source] BuildError),
    #[error("corrupt stored item: {0}")]
    Corrupt(String),
    #[error("corrupt stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// An item would exceed DynamoDB's item size limit.
    #[error(
        "{what} needs {size} bytes of storage, over the {limit}-byte DynamoDB item limit of AWS mode (bodies go to S3; headers, callbacks and other metadata stay in the item)"
    )]
    TooLarge {
        what: String,
        size: usize,
        limit: usize,
    },
    #[error("the signing keys are missing from the table")]
    MissingKeys,
    #[error("the write kept conflicting with concurrent transactions ({0} attempts)")]
    Conflict(u32),
    /// A transaction was cancelled for a reason the caller does not handle.
    #[error("the transaction was cancelled: {0}")]
    Cancelled(String),
}

impl AwsError {
    pub fn sdk<E>(operation: &'static str, err: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Self::Sdk {
            operation,
            detail: DisplayErrorContext(&err).to_string(),
            source: Box::new(err),
        }
    }

    /// Whether trying again may succeed: service hiccups and conflicts may, refusals and
    /// corrupt data never do.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Sdk { .. } | Self::Conflict(_) | Self::Cancelled(_)
        )
    }
}

impl From<AwsError> for qpost_core::Error {
    fn from(e: AwsError) -> Self {
        match e {
            AwsError::TooLarge { .. } => Self::PayloadTooLarge(e.to_string()),
            other => Self::internal(other),
        }
    }
}
