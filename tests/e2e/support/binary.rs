//! The real `qpost` binary as a child process, for crash tests: started with
//! `--port 0 --data-dir DIR`, its URL read from the `QSTASH_URL=` line on stdout.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

/// A running `qpost` process; killed (SIGKILL) when dropped.
pub struct BinaryServer {
    pub base_url: String,
    child: Child,
    /// Kept open so the child never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl BinaryServer {
    /// Starts `qpost` on a free port over `data_dir` and waits for its `QSTASH_URL` line.
    pub async fn start(data_dir: &Path) -> Self {
        let data_dir = data_dir.to_path_buf();
        let started = tokio::task::spawn_blocking(move || {
            let mut child = Command::new(env!("CARGO_BIN_EXE_qpost"))
                .args(["--port", "0", "--data-dir"])
                .arg(&data_dir)
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn the qpost binary");
            let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
            let base_url = read_url(&mut stdout);
            Self {
                base_url,
                child,
                _stdout: stdout,
            }
        });
        tokio::time::timeout(Duration::from_secs(20), started)
            .await
            .expect("qpost printed QSTASH_URL within 20 s")
            .expect("start task")
    }

    /// Kills the process with SIGKILL (no chance to clean up) and reaps it.
    pub fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

fn read_url(stdout: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let read = stdout.read_line(&mut line).expect("read qpost stdout");
        assert!(read > 0, "qpost exited before printing QSTASH_URL");
        if let Some(url) = line.trim().strip_prefix("QSTASH_URL=") {
            return url.trim_end_matches('/').to_string();
        }
    }
}

impl Drop for BinaryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
