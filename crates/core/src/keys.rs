//! Signing-key use cases (`/v2/keys`), and [`cached`], the keys' read-through cache.

pub mod cached;

use crate::Services;
use crate::error::Result;
use crate::signing::SigningKeys;

pub async fn get(services: &Services) -> Result<SigningKeys> {
    services.keys.keys().await
}

/// Next becomes current and a fresh key becomes next; concurrent rotations each
/// advance the keys once.
pub async fn rotate(services: &Services) -> Result<SigningKeys> {
    loop {
        let keys = services.keys.keys().await?;
        let rotated = keys.rotated();
        let after = services.keys.swap_keys(&keys, &rotated).await?;
        if after == rotated {
            return Ok(after);
        }
    }
}
