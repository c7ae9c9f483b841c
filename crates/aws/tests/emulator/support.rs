//! The emulator under test: its endpoint from `AWS_ENDPOINT_URL`, and a fresh set of
//! resources per call, created by `infra/local/bootstrap.py` (the one definition of the
//! stack's tables and queues for emulators).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::Credentials;
use qpost_aws::backend::sdk_loader;
use qpost_aws::{Backend, Config};
use qpost_core::clock::{Clock, SystemClock};
use qpost_core::config::Limits;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The emulator's URL; a test without one fails here, naming what to do.
pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| {
            panic!(
                "AWS_ENDPOINT_URL is not set: the qpost-aws tests run against the moto emulator. \
                 Run scripts/test, or start `.venv/bin/moto_server -H 127.0.0.1 -p 5555` and \
                 export AWS_ENDPOINT_URL=http://127.0.0.1:5555"
            )
        })
}

/// The Python that has boto3: `QPOST_PYTHON`, else the repository's `.venv`.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("QPOST_PYTHON") {
        return p.into();
    }
    let venv = root().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run scripts/test once (it creates the venv with moto and boto3) or set QPOST_PYTHON",
        venv.display()
    );
    venv
}

/// Creates a table and queues with fresh names and returns their configuration.
pub async fn fresh_stack() -> Config {
    let prefix = format!(
        "qpost-test-{}-{}",
        std::process::id(),
        qpost_core::ids::random_token(10)
    );
    let out = tokio::process::Command::new(python())
        .arg(root().join("infra/local/bootstrap.py"))
        .args(["--prefix", &prefix])
        .env("AWS_ENDPOINT_URL", endpoint())
        .output()
        .await
        .expect("infra/local/bootstrap.py could not be started");
    assert!(
        out.status.success(),
        "infra/local/bootstrap.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vars: HashMap<String, String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|name| vars.get(name).cloned()).expect("bootstrap.py printed a config")
}

/// SDK configuration for the emulator (any credentials do).
pub async fn sdk_config(region: &str) -> SdkConfig {
    sdk_loader(region)
        .endpoint_url(endpoint())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await
}

/// A backend on fresh resources, with the system clock and default limits.
pub async fn backend() -> Backend {
    backend_with_clock(Arc::new(SystemClock)).await
}

pub async fn backend_with_clock(clock: Arc<dyn Clock>) -> Backend {
    let config = fresh_stack().await;
    let sdk = sdk_config(&config.region).await;
    Backend::new(config, &sdk, clock, Limits::default())
}

/// The emulator's whole state (moto's inspection API), for what AWS APIs do not show.
/// moto serializes its live state while other tests' requests change it, and answers 500
/// when an object changed under it: such answers are retried.
pub async fn emulator_state() -> serde_json::Value {
    let url = format!("{}/moto-api/data.json", endpoint().trim_end_matches('/'));
    let mut attempts = 0;
    let response = loop {
        let response = reqwest::get(&url).await.and_then(|r| r.error_for_status());
        attempts += 1;
        match response {
            Err(e) if attempts < 5 && e.is_status() => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => break other.expect("moto's /moto-api/data.json answers"),
        }
    };
    let text = response.text().await.expect("moto's state is readable");
    serde_json::from_str(&text).expect("moto's state is JSON")
}
