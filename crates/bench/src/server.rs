//! The qpost server under test, run as a subprocess of the release binary on a data
//! directory of its own: started, probed until its API answers, and killed with SIGKILL
//! (for the crash scenario, then restarted on the same directory). The AWS-mode server
//! (`qpost-aws-local`) prints the same block and is run the same way.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http::{Method, StatusCode};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::load::{Conn, Target};

/// Longest wait for the `QSTASH_URL`/`QSTASH_TOKEN` lines after spawning.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// An authenticated route every qpost serves, used to see whether the API answers.
const PROBE_PATH: &str = "/v2/keys";

/// A running qpost process.
pub struct Qpost {
    child: Child,
    pub api: SocketAddr,
    token: String,
    spawned: Instant,
}

impl Qpost {
    /// Spawns `bin` on `data_dir` (port 0, 127.0.0.1), appending its log to `log`, and
    /// waits for it to print its address and token.
    pub async fn start(bin: &Path, data_dir: &Path, log: &Path) -> anyhow::Result<Self> {
        let mut command = Command::new(bin);
        command
            .args(["--port", "0", "--bind", "127.0.0.1", "--data-dir"])
            .arg(data_dir);
        Self::spawn(command, log).await
    }

    /// Spawns `command`, a server that prints qpost's `QSTASH_URL`/`QSTASH_TOKEN` block on
    /// stdout, appending its stderr to `log`, and waits for the block.
    pub async fn spawn(mut command: Command, log: &Path) -> anyhow::Result<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let spawned = Instant::now();
        let program = command.as_std().get_program().to_owned();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot run {}", program.display()))?;
        let stdout = child.stdout.take().context("qpost stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let (api, token) = tokio::time::timeout(START_TIMEOUT, read_env(&mut lines))
            .await
            .context("qpost did not print QSTASH_URL and QSTASH_TOKEN in time")??;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            api,
            token,
            spawned,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGKILL, then reaps the process.
    pub async fn kill9(&mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    /// Waits until the API answers an authenticated request; returns the time since spawn.
    pub async fn wait_answering(&self, limit: Duration) -> anyhow::Result<Duration> {
        let deadline = self.spawned + limit;
        let probe = self.api_target(PROBE_PATH)?;
        while Instant::now() < deadline {
            let mut conn = Conn::new(self.api);
            let left = deadline.saturating_duration_since(Instant::now());
            let answer =
                tokio::time::timeout(left, conn.send(probe.request(Method::GET, Bytes::new())))
                    .await;
            if let Ok(Ok(_)) = answer {
                return Ok(self.spawned.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::bail!("qpost API did not answer within {limit:?}")
    }

    /// An authenticated target for an API path.
    pub fn api_target(&self, path: &str) -> anyhow::Result<Target> {
        Target::new(self.api, path)?.with_header("authorization", &format!("Bearer {}", self.token))
    }

    /// Where to post to publish to `destination` (a URL or a URL-group name).
    pub fn publish_target(&self, destination: &str) -> anyhow::Result<Target> {
        self.api_target(&format!("/v2/publish/{destination}"))
    }

    /// One API call on a fresh connection.
    pub async fn call(
        &self,
        method: Method,
        target: &Target,
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        Conn::new(self.api).send(target.request(method, body)).await
    }
}

/// Reads stdout until both the URL and the token were printed.
async fn read_env(
    lines: &mut Lines<BufReader<ChildStdout>>,
) -> anyhow::Result<(SocketAddr, String)> {
    let (mut url, mut token) = (None, None);
    while let Some(line) = lines.next_line().await? {
        if let Some(v) = line.strip_prefix("QSTASH_URL=") {
            url = Some(v.trim_start_matches("http://").parse::<SocketAddr>()?);
        } else if let Some(v) = line.strip_prefix("QSTASH_TOKEN=") {
            token = Some(v.to_string());
        }
        if let (Some(url), Some(token)) = (url, &token) {
            return Ok((url, token.clone()));
        }
    }
    anyhow::bail!("qpost exited before printing QSTASH_URL and QSTASH_TOKEN")
}

/// A scratch directory for one qpost instance: data dir plus its log file.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new(parent: Option<&Path>, name: &str) -> anyhow::Result<Self> {
        let prefix = format!("qpost-bench-{name}-");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix);
        let dir = match parent {
            Some(p) => builder.tempdir_in(p)?,
            None => builder.tempdir()?,
        };
        Ok(Self { dir })
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("qpost.log")
    }

    /// Each file directly in the data directory (database, WAL) with its size in bytes.
    pub fn data_files(&self) -> Vec<(String, u64)> {
        let Ok(entries) = std::fs::read_dir(self.data_dir()) else {
            return Vec::new();
        };
        let sizes = entries.filter_map(|e| {
            let e = e.ok()?;
            Some((
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().ok()?.len(),
            ))
        });
        let mut files: Vec<_> = sizes.collect();
        files.sort();
        files
    }
}
