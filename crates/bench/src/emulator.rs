//! The AWS emulator the AWS-mode scenarios run against: moto, started from the
//! repository's `.venv` on a free loopback port (or the one `AWS_ENDPOINT_URL` names), and
//! stacks created in it by `infra/local/bootstrap.py`, the one definition of the stack's
//! tables and queues for emulators. The tool itself speaks no AWS API.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http::Method;
use tokio::process::{Child, Command};

use crate::body::unix_ms;
use crate::load::{Conn, Target};

/// Longest wait for moto to answer after it was started.
const START_LIMIT: Duration = Duration::from_secs(30);
/// The credentials and region every process talking to the emulator gets (any will do).
const CREDENTIALS: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
];

/// Why there is no emulator to run against: the AWS-mode scenarios are then skipped.
#[derive(Debug)]
pub struct Unavailable {
    moto: String,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no {} (scripts/test creates .venv with moto) and no AWS_ENDPOINT_URL",
            self.moto
        )
    }
}

impl std::error::Error for Unavailable {}

/// A running emulator; a moto started here is killed when this is dropped.
pub struct Emulator {
    pub endpoint: String,
    root: PathBuf,
    _moto: Option<(Child, tempfile::NamedTempFile)>,
}

impl Emulator {
    /// The emulator at `AWS_ENDPOINT_URL`, or a moto started from `<root>/.venv` (its
    /// log in a temporary file).
    pub async fn start(root: &Path) -> anyhow::Result<Self> {
        let root = root.to_path_buf();
        if let Some(endpoint) = std::env::var("AWS_ENDPOINT_URL")
            .ok()
            .filter(|v| !v.trim().is_empty())
        {
            return Ok(Self {
                endpoint,
                root,
                _moto: None,
            });
        }
        let moto = root.join(".venv/bin/moto_server");
        if !moto.is_file() {
            let moto = moto.display().to_string();
            return Err(Unavailable { moto }.into());
        }
        let addr = free_port()?;
        let log = tempfile::Builder::new()
            .prefix("qpost-bench-moto-")
            .tempfile()?;
        let child = Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &addr.port().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen()?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot run {}", moto.display()))?;
        if let Err(e) = wait_answering(addr).await {
            let said = std::fs::read_to_string(log.path()).unwrap_or_default();
            return Err(e.context(format!("moto_server said: {said}")));
        }
        Ok(Self {
            endpoint: format!("http://{addr}"),
            root,
            _moto: Some((child, log)),
        })
    }

    /// The variables a process needs to reach the emulator: endpoint, credentials, region.
    pub fn env(&self) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = CREDENTIALS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.insert("AWS_ENDPOINT_URL".into(), self.endpoint.clone());
        env
    }

    /// Creates a stack named after `name` with `bootstrap.py`; returns the variables the
    /// functions read (`QPOST_TABLE`, the queue URLs, ...) plus [`Emulator::env`].
    pub async fn stack(&self, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
        let prefix = format!("bench-{name}-{}", unix_ms() % 100_000_000);
        let out = Command::new(self.root.join(".venv/bin/python"))
            .arg(self.root.join("infra/local/bootstrap.py"))
            .args(["--prefix", &prefix])
            .envs(self.env())
            .output()
            .await
            .context("cannot run infra/local/bootstrap.py with .venv/bin/python")?;
        anyhow::ensure!(
            out.status.success(),
            "infra/local/bootstrap.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut env = self.env();
        env.extend(parse_env(&String::from_utf8_lossy(&out.stdout)));
        Ok(env)
    }
}

/// `KEY=value` lines, as `bootstrap.py` prints them.
fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect()
}

/// A loopback address whose port was free a moment ago.
fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Waits until moto answers its own API.
async fn wait_answering(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_LIMIT;
    let probe = Target::new(addr, "/moto-api/")?;
    while Instant::now() < deadline {
        let answer = Conn::new(addr)
            .send(probe.request(Method::GET, Bytes::new()))
            .await;
        if answer.is_ok_and(|(status, _)| status.is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("moto_server did not answer on {addr} within {START_LIMIT:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_output_is_read_as_variables() {
        let env =
            parse_env("QPOST_TABLE=t-state\nnoise\nQPOST_DELIVERY_QUEUE_URL=http://h/q?a=b\n");
        assert_eq!(env["QPOST_TABLE"], "t-state");
        assert_eq!(env["QPOST_DELIVERY_QUEUE_URL"], "http://h/q?a=b");
        assert_eq!(env.len(), 2);
    }
}
