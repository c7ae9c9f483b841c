//! Resource usage of the qpost process, read from `/proc`: peak resident memory
//! (sampled in the background) and CPU time consumed while a scenario ran.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;

/// How often the process is sampled.
const EVERY: Duration = Duration::from_millis(100);
/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// What a process used between [`Sampler::start`] and [`Sampler::finish`].
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Usage {
    /// Highest resident set size seen, in MB (10^6 bytes).
    pub peak_rss_mb: f64,
    /// User + system CPU seconds consumed.
    pub cpu_s: f64,
}

/// A background sampler of one process.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    peak_kib: Arc<AtomicU64>,
    last_ticks: Arc<AtomicU64>,
    first_ticks: u64,
    task: JoinHandle<()>,
}

impl Sampler {
    /// Samples `pid` every 100 ms until finished or the process is gone.
    pub fn start(pid: Option<u32>) -> Self {
        let first_ticks = pid.and_then(cpu_ticks).unwrap_or(0);
        let stop = Arc::new(AtomicBool::new(false));
        let peak_kib = Arc::new(AtomicU64::new(0));
        let last_ticks = Arc::new(AtomicU64::new(first_ticks));
        let (s, p, t) = (
            Arc::clone(&stop),
            Arc::clone(&peak_kib),
            Arc::clone(&last_ticks),
        );
        let task = tokio::spawn(async move {
            while let Some(pid) = pid.filter(|_| !s.load(Ordering::SeqCst)) {
                let (Some(kib), Some(ticks)) = (rss_kib(pid), cpu_ticks(pid)) else {
                    return;
                };
                p.fetch_max(kib, Ordering::SeqCst);
                t.store(ticks, Ordering::SeqCst);
                tokio::time::sleep(EVERY).await;
            }
        });
        Self {
            stop,
            peak_kib,
            last_ticks,
            first_ticks,
            task,
        }
    }

    /// The peak resident memory seen so far, in MB.
    pub fn peak_mb(&self) -> f64 {
        kib_to_mb(self.peak_kib.load(Ordering::SeqCst))
    }

    /// Stops sampling; what was used since the start (up to the last sample).
    pub async fn finish(self) -> Usage {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
        let ticks = self
            .last_ticks
            .load(Ordering::SeqCst)
            .saturating_sub(self.first_ticks);
        Usage {
            peak_rss_mb: kib_to_mb(self.peak_kib.load(Ordering::SeqCst)),
            cpu_s: ticks as f64 / TICKS_PER_SEC,
        }
    }
}

fn kib_to_mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

/// Current resident memory of `pid` in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    parse_vm_rss(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// User + system CPU time of `pid` in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    parse_cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Fields 14 (utime) and 15 (stime) of `/proc/<pid>/stat`, counted after the `)` that
/// closes the command name (which may itself contain spaces).
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_kib_from_proc_status() {
        let status = "Name:\tqpost\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(12345));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn cpu_ticks_add_user_and_system_time_even_with_spaces_in_the_name() {
        let stat = "42 (q post) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 1 2 3";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
    }

    #[test]
    fn this_process_can_be_sampled() {
        let me = std::process::id();
        assert!(rss_kib(me).is_some_and(|kib| kib > 0));
        assert!(cpu_ticks(me).is_some());
    }
}
