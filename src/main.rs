//! The qpost binary: local mode with sane defaults (`cargo run --release`).
#![forbid(unsafe_code)]

use clap::Parser;
use qpost::LocalApp;
use qpost::cli::Cli;
use qpost_http::shutdown_signal;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's malloc: allocation and freeing were about a sixth of the
/// async threads' CPU per message under load (BENCHMARKS.md, issue 5 profile).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let settings = Cli::parse().into_settings()?;
    let app = LocalApp::build(settings).await?;
    // Handlers are installed before the block is printed: whoever reads it may signal at once.
    let shutdown = shutdown_signal()?;
    println!(
        "qpost is running at http://{}\n{}",
        app.local_addr(),
        app.env_block()
    );
    app.run(shutdown).await
}
