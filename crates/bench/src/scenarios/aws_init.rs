//! AWS mode: each Lambda binary's size and init time, from process start until it asks
//! the Lambda runtime API for its first event. Each function binary (release build) is
//! started `--init-runs` times against a stand-in runtime API ([`RuntimeApi`]) with the
//! environment Lambda and the stack give it (the variables of a stack bootstrapped in the
//! emulator), so init includes what a cold start does: reading the configuration,
//! building the SDK clients, making sure of the signing keys (a DynamoDB read), and for
//! the API functions reading the token (an SSM read).
//!
//! The binaries measured are stripped copies, as `scripts/sam-build` packages them
//! (symbols and line tables are not loaded at run time, but they make the release
//! binaries several times larger). Without `strip` the release binaries are measured as
//! they are, and the outcome says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use tokio::process::Command;

use crate::report::{Metric, Outcome};
use crate::runtime_api::RuntimeApi;
use crate::scenarios::{Ctx, progress};
use crate::server::Scratch;
use crate::stats::median_max;

/// The five functions, by the name of their binary's suffix (`qpost-<name>`).
const FUNCTIONS: [&str; 5] = ["publish", "schedules", "dlq", "deliver", "failure-callback"];
/// The target for the median cold start.
const TARGET_MS: f64 = 50.0;
/// Longest a cold start may take before the run counts as failed.
const READY_LIMIT: Duration = Duration::from_secs(30);
/// What Lambda sets for every function, besides the runtime API's address.
const LAMBDA_ENV: [(&str, &str); 5] = [
    ("AWS_LAMBDA_FUNCTION_NAME", "qpost-bench-init"),
    ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
    ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/qpost-bench-init"),
    ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
];

/// What was measured for one function.
#[derive(Debug, Serialize)]
struct Measured {
    function: &'static str,
    size_mb: f64,
    release_size_mb: f64,
    stripped: bool,
    init_ms: Vec<f64>,
    median_ms: f64,
    max_ms: f64,
}

/// Measures every function's size and `--init-runs` cold starts.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let emulator = ctx.emulator().await?;
    let env = emulator.stack("init").await?;
    let dir = ctx.args.aws_bin_dir()?;
    let scratch = Scratch::new(ctx.args.work_dir.as_deref(), "aws-init")?;
    std::fs::create_dir_all(scratch.data_dir())?;
    let mut measured = Vec::new();
    for function in FUNCTIONS {
        progress(&format!("aws-init: {function}"));
        measured.push(measure(ctx, function, &dir, &scratch, &env).await?);
    }
    Ok(outcome(&measured, ctx.args.init_runs))
}

async fn measure(
    ctx: &Ctx,
    function: &'static str,
    dir: &Path,
    scratch: &Scratch,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<Measured> {
    let release = dir.join(format!("qpost-{function}"));
    anyhow::ensure!(
        release.is_file(),
        "no {} (scripts/bench builds it: cargo build --release -p qpost-fn-{function})",
        release.display()
    );
    let (binary, stripped) = stripped_copy(&release, &scratch.data_dir()).await;
    let mut init_ms = Vec::new();
    for _ in 0..ctx.args.init_runs {
        let took = cold_start(&binary, env, &scratch.log()).await?;
        init_ms.push(took.as_secs_f64() * 1000.0);
    }
    let (median_ms, max_ms) = median_max(&init_ms);
    Ok(Measured {
        function,
        size_mb: file_mb(&binary)?,
        release_size_mb: file_mb(&release)?,
        stripped,
        init_ms,
        median_ms,
        max_ms,
    })
}

/// A copy of `release` without symbols and debug information in `dir`, and true; or
/// `release` itself and false when `strip` is not there or fails.
async fn stripped_copy(release: &Path, dir: &Path) -> (PathBuf, bool) {
    let Some(name) = release.file_name() else {
        return (release.to_path_buf(), false);
    };
    let copy = dir.join(name);
    let status = Command::new("strip")
        .arg("-o")
        .arg(&copy)
        .arg(release)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    match status {
        Ok(s) if s.success() => (copy, true),
        _ => (release.to_path_buf(), false),
    }
}

fn file_mb(path: &Path) -> anyhow::Result<f64> {
    let bytes = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    Ok(bytes as f64 / 1e6)
}

/// Starts `binary` with a fresh runtime API; the time until its first request for an event.
async fn cold_start(
    binary: &Path,
    env: &BTreeMap<String, String>,
    log: &Path,
) -> anyhow::Result<Duration> {
    let mut api = RuntimeApi::start().await?;
    let log_file = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
    };
    let mut command = Command::new(binary);
    command
        .env_clear()
        .envs(env)
        .envs(LAMBDA_ENV)
        .env("AWS_LAMBDA_RUNTIME_API", api.host())
        .stdin(Stdio::null())
        .stdout(log_file()?)
        .stderr(log_file()?)
        .kill_on_drop(true);
    let started = std::time::Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    let ready = tokio::select! {
        ready = api.first_next() => ready?,
        status = child.wait() => return Err(exited(binary, status?, log)),
        () = tokio::time::sleep(READY_LIMIT) => {
            anyhow::bail!("{} did not ask for an event within {READY_LIMIT:?}", binary.display())
        }
    };
    child.start_kill()?;
    child.wait().await?;
    Ok(ready.saturating_duration_since(started))
}

/// The error of a function that stopped during init, with the end of its log.
fn exited(binary: &Path, status: ExitStatus, log: &Path) -> anyhow::Error {
    let said = std::fs::read_to_string(log).unwrap_or_default();
    let tail: String = said.lines().rev().take(10).collect::<Vec<_>>().join("\n");
    anyhow::anyhow!(
        "{} exited ({status}) before asking for an event:\n{tail}",
        binary.display()
    )
}

fn outcome(measured: &[Measured], runs: usize) -> Outcome {
    let mut outcome = Outcome::new("aws-init");
    for m in measured {
        let f = m.function;
        outcome = outcome
            .metric(Metric::info(format!("{f} binary size"), m.size_mb, "MB"))
            .metric(Metric::at_most(
                format!("{f} init median"),
                m.median_ms,
                "ms",
                TARGET_MS,
            ))
            .metric(Metric::info(format!("{f} init max"), m.max_ms, "ms"));
    }
    if measured.iter().any(|m| !m.stripped) {
        outcome.note = Some("strip was not available: sizes are of the release binaries".into());
    }
    outcome
        .detail("runs_per_function", runs)
        .detail("functions", measured)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(function: &'static str, median_ms: f64) -> Measured {
        Measured {
            function,
            size_mb: 12.0,
            release_size_mb: 150.0,
            stripped: true,
            init_ms: vec![median_ms],
            median_ms,
            max_ms: median_ms,
        }
    }

    #[test]
    fn a_function_whose_median_init_is_over_50_ms_fails_the_scenario() {
        let fine = outcome(&[measured("publish", 20.0)], 1);
        assert_eq!(fine.status, crate::report::Status::Pass);
        assert_eq!(fine.metrics.len(), 3);
        let slow = outcome(&[measured("publish", 20.0), measured("dlq", 50.5)], 1);
        assert_eq!(slow.status, crate::report::Status::Fail);
        assert_eq!(slow.metrics[4].name, "dlq init median");
    }
}
