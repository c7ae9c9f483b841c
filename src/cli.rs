//! Command-line flags and environment variables of the local server.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;
use qpost_core::duration::parse_duration;
use qpost_core::signing::{SigningKey, SigningKeys};

use crate::Settings;

/// Largest body limit that can be configured.
const MAX_BODY_LIMIT: usize = 10 << 20;

/// qpost: a QStash-compatible message queue and scheduler (local mode).
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    /// Address to listen on.
    #[arg(long, env = "QPOST_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, short, env = "QPOST_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Directory of the SQLite data file.
    #[arg(long, env = "QPOST_DATA_DIR", default_value = ".qpost")]
    pub data_dir: PathBuf,
    /// Accepted API token (repeat or comma-separate for several). Default: the public dev token.
    #[arg(long = "token", env = "QPOST_TOKEN", value_delimiter = ',')]
    pub tokens: Vec<String>,
    /// Current signing key to use (stored; default: the stored key, or the dev key).
    #[arg(long, env = "QPOST_CURRENT_SIGNING_KEY", requires = "next_signing_key")]
    pub current_signing_key: Option<String>,
    /// Next signing key to use.
    #[arg(long, env = "QPOST_NEXT_SIGNING_KEY", requires = "current_signing_key")]
    pub next_signing_key: Option<String>,
    /// Largest message body in bytes (at most 10 MiB).
    #[arg(long, env = "QPOST_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Retries of a message that does not set Upstash-Retries.
    #[arg(long, env = "QPOST_DEFAULT_RETRIES", default_value_t = 3)]
    pub default_retries: u32,
    /// Highest Upstash-Retries accepted.
    #[arg(long, env = "QPOST_MAX_RETRIES", default_value_t = 20)]
    pub max_retries: u32,
    /// Longest per-attempt timeout, and the timeout when none is given.
    #[arg(long, env = "QPOST_MAX_TIMEOUT", default_value = "15m")]
    pub max_timeout: String,
    /// How long a deduplication id blocks an equal one.
    #[arg(long, env = "QPOST_DEDUP_WINDOW", default_value = "10m")]
    pub dedup_window: String,
    /// How long DLQ entries are kept.
    #[arg(long, env = "QPOST_DLQ_RETENTION", default_value = "7d")]
    pub dlq_retention: String,
    /// Refuse destinations on loopback, link-local and private networks.
    #[arg(long, env = "QPOST_BLOCK_PRIVATE_DESTINATIONS")]
    pub block_private_destinations: bool,
    /// How long log events are kept.
    #[arg(long, env = "QPOST_EVENT_RETENTION", default_value = "7d")]
    pub event_retention: String,
    /// Delivery attempts in flight at once.
    #[arg(long, env = "QPOST_CONCURRENCY", default_value_t = 256)]
    pub concurrency: usize,
}

impl Cli {
    /// Validates the flags into settings, naming the flag that is wrong.
    pub fn into_settings(self) -> anyhow::Result<Settings> {
        let mut s = Settings::new(SocketAddr::new(self.bind, self.port), self.data_dir);
        if !self.tokens.is_empty() {
            s.tokens = self.tokens;
        }
        if let (Some(current), Some(next)) = (&self.current_signing_key, &self.next_signing_key) {
            let parse =
                |k: &str| SigningKey::parse(k).map_err(|e| anyhow::anyhow!("signing key: {e}"));
            s.keys = Some(SigningKeys {
                current: parse(current)?,
                next: parse(next)?,
            });
        }
        anyhow::ensure!(
            (1..=MAX_BODY_LIMIT).contains(&self.max_body_bytes),
            "--max-body-bytes must be between 1 and {MAX_BODY_LIMIT}"
        );
        anyhow::ensure!(
            self.default_retries <= self.max_retries,
            "--default-retries exceeds --max-retries"
        );
        let duration =
            |flag: &str, v: &str| parse_duration(v).map_err(|e| anyhow::anyhow!("--{flag}: {e}"));
        s.limits.max_body_bytes = self.max_body_bytes;
        s.limits.default_retries = self.default_retries;
        s.limits.max_retries = self.max_retries;
        s.limits.max_timeout = duration("max-timeout", &self.max_timeout)?;
        s.limits.dedup_window = duration("dedup-window", &self.dedup_window)?;
        s.limits.dlq_retention = duration("dlq-retention", &self.dlq_retention)?;
        s.limits.event_retention = duration("event-retention", &self.event_retention)?;
        anyhow::ensure!(
            !s.limits.max_timeout.is_zero(),
            "--max-timeout must be positive"
        );
        s.limits.block_private_destinations = self.block_private_destinations;
        s.concurrency = self.concurrency.max(1);
        Ok(s)
    }
}
