//! Queue use cases (`/v2/queues`, `/v2/enqueue`).

use crate::Services;
use crate::error::{Error, Result};
use crate::flow::is_valid_name;
use crate::queue::{DEFAULT_PARALLELISM, Queue};

/// Checks a queue name: alphanumerics, `-`, `_` and `.`.
pub fn check_name(name: &str) -> Result<()> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "invalid queue name {name:?}: use only alphanumerics, '-', '_' and '.'"
        )))
    }
}

/// Creates the queue with default settings if it does not exist (enqueue auto-creates).
pub async fn ensure(services: &Services, name: &str) -> Result<()> {
    check_name(name)?;
    if services.queues.get_queue(name).await?.is_some() {
        return Ok(());
    }
    let now = services.clock.now_ms();
    let queue = Queue {
        name: name.to_string(),
        created_at: now,
        updated_at: now,
        parallelism: DEFAULT_PARALLELISM,
        paused: false,
    };
    services.queues.put_queue(&queue).await?;
    services.admission.queue_changed(&queue).await
}
