//! Command-line flags of `qpost-bench`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::body::MIN_BODY;

/// A scenario that can be asked for by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScenarioName {
    /// Every scenario below.
    All,
    /// Publish only: accepted publishes per second.
    Publish,
    /// Published to delivered: messages per second from first publish to last delivery.
    E2e,
    /// Peak resident memory of qpost during the end-to-end run (runs `e2e`).
    Memory,
    /// Publish-to-delivery latency at a fixed rate.
    Latency,
    /// Many pending delayed messages, kill -9, restart, all still delivered.
    Delayed,
    /// A destination that fails twice, then succeeds.
    Retry,
    /// Publishing to a URL group of 10 endpoints.
    Fanout,
    /// Many schedules on the same minute.
    Cron,
    /// Both AWS-mode scenarios below (against the moto emulator).
    Aws,
    /// AWS mode: billable AWS requests per delivered message.
    AwsCost,
    /// AWS mode: each Lambda binary's size and init time.
    AwsInit,
}

impl ScenarioName {
    /// Whether the scenario runs qpost local mode (and so needs the ceiling and `qpost`).
    pub fn is_local(self) -> bool {
        !matches!(self, Self::Aws | Self::AwsCost | Self::AwsInit)
    }
}

/// Benchmarks qpost local mode, every throughput figure also given as a ratio to the
/// direct loopback HTTP ceiling measured in the same run; and AWS mode against the moto
/// emulator: requests per delivered message, and the Lambda binaries' init times.
#[derive(Parser, Debug, Clone)]
#[command(version, about, args_override_self = true)]
pub struct Args {
    /// Scenarios to run, comma-separated (the ceiling always runs first).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
    pub scenario: Vec<ScenarioName>,
    /// Keep-alive connections of the load generator.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Bytes per message body (at least 35: the body carries its send time).
    #[arg(long, default_value_t = 256)]
    pub body_size: usize,
    /// Requests per throughput run (ceiling, publish, e2e).
    #[arg(long, default_value_t = 100_000)]
    pub count: u64,
    /// Messages per second of the latency run.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Seconds the latency run lasts.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Pending delayed messages in the crash scenario.
    #[arg(long, default_value_t = 1_000_000)]
    pub pending: u64,
    /// Messages in the retry scenario.
    #[arg(long, default_value_t = 10_000)]
    pub retry_count: u64,
    /// Messages published to the URL group in the fan-out scenario (10 deliveries each).
    #[arg(long, default_value_t = 10_000)]
    pub fanout_count: u64,
    /// Schedules in the cron scenario.
    #[arg(long, default_value_t = 1_000)]
    pub schedules: u64,
    /// The qpost binary (default: `qpost` beside this binary, i.e. target/release/qpost).
    #[arg(long)]
    pub qpost_bin: Option<PathBuf>,
    /// Where qpost's scratch data directories go (default: the system temp dir).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Messages published in the AWS-mode request count (twice: one at a time, then at once).
    #[arg(long, default_value_t = 100)]
    pub aws_count: u64,
    /// Cold starts of each Lambda binary in the AWS-mode init measurement.
    #[arg(long, default_value_t = 10)]
    pub init_runs: usize,
    /// Where the AWS-mode binaries are: `qpost-<function>` and
    /// `examples/qpost-aws-local` (default: beside this binary, i.e. target/release).
    #[arg(long)]
    pub aws_bin_dir: Option<PathBuf>,
    /// The repository: its `.venv` (moto, boto3) and `infra/local/bootstrap.py` (default:
    /// the checkout this binary was built from).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Longest any single phase (a load run, a wait for deliveries) may take, in seconds.
    #[arg(long, default_value_t = 1800)]
    pub timeout: u64,
    /// Print only the JSON lines on stdout (no table).
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// Checks the flags that have a lower bound.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.body_size >= MIN_BODY,
            "--body-size must be at least {MIN_BODY}"
        );
        anyhow::ensure!(self.connections >= 1, "--connections must be at least 1");
        anyhow::ensure!(self.rate > 0.0, "--rate must be positive");
        anyhow::ensure!(
            self.count >= 1 && self.pending >= 1,
            "--count and --pending must be positive"
        );
        anyhow::ensure!(
            self.aws_count >= 1 && self.init_runs >= 1,
            "--aws-count and --init-runs must be positive"
        );
        Ok(())
    }

    /// Whether `name` was asked for (directly, or through `all` or `aws`).
    pub fn wants(&self, name: ScenarioName) -> bool {
        let aws = matches!(name, ScenarioName::AwsCost | ScenarioName::AwsInit);
        self.scenario
            .iter()
            .any(|s| *s == name || *s == ScenarioName::All || (aws && *s == ScenarioName::Aws))
    }

    /// Whether any local-mode scenario was asked for.
    pub fn wants_local(&self) -> bool {
        self.scenario
            .iter()
            .any(|s| *s == ScenarioName::All || s.is_local())
    }

    pub fn time_limit(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }

    /// The qpost binary to run.
    pub fn qpost_bin(&self) -> anyhow::Result<PathBuf> {
        if let Some(bin) = &self.qpost_bin {
            return Ok(bin.clone());
        }
        let me = std::env::current_exe()?;
        Ok(me.with_file_name("qpost"))
    }

    /// The directory of the AWS-mode binaries.
    pub fn aws_bin_dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.aws_bin_dir {
            return Ok(dir.clone());
        }
        let me = std::env::current_exe()?;
        Ok(me.parent().map(PathBuf::from).unwrap_or_default())
    }

    /// The repository root.
    pub fn root(&self) -> PathBuf {
        let root = self
            .root
            .clone()
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
        std::fs::canonicalize(&root).unwrap_or(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_selects_every_scenario_and_a_list_selects_only_its_members() {
        let all = Args::parse_from(["qpost-bench"]);
        assert!(all.wants(ScenarioName::Cron));
        let some = Args::parse_from(["qpost-bench", "--scenario", "publish,retry"]);
        assert!(some.wants(ScenarioName::Retry) && !some.wants(ScenarioName::E2e));
    }

    #[test]
    fn aws_selects_both_aws_scenarios_and_no_local_one() {
        let aws = Args::parse_from(["qpost-bench", "--scenario", "aws"]);
        assert!(aws.wants(ScenarioName::AwsCost) && aws.wants(ScenarioName::AwsInit));
        assert!(!aws.wants(ScenarioName::Publish) && !aws.wants_local());
        let init = Args::parse_from(["qpost-bench", "--scenario", "aws-init,e2e"]);
        assert!(!init.wants(ScenarioName::AwsCost) && init.wants_local());
        assert!(Args::parse_from(["qpost-bench"]).wants(ScenarioName::AwsInit));
    }

    #[test]
    fn bodies_too_small_for_the_stamps_are_refused() {
        let args = Args::parse_from(["qpost-bench", "--body-size", "8"]);
        assert!(args.validate().is_err());
    }
}
