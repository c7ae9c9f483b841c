//! `qpost-bench`: runs the qpost benchmark scenarios against a release build (local mode,
//! and AWS mode against the moto emulator) and prints a table plus one JSON line per
//! scenario.
#![forbid(unsafe_code)]

mod body;
mod cli;
mod emulator;
mod load;
mod receiver;
mod report;
mod runtime_api;
mod scenarios;
mod server;
mod stats;
mod usage;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = cli::Args::parse();
    args.validate()?;
    let json_only = args.json;
    // Returning on a signal drops the running scenario, which kills its qpost child
    // (kill_on_drop) and removes its scratch directory.
    let outcomes = tokio::select! {
        outcomes = scenarios::run_all(args) => outcomes?,
        () = interrupted() => {
            eprintln!("qpost-bench: interrupted");
            std::process::exit(130);
        }
    };
    if !json_only {
        println!("\n{}", report::table(&outcomes));
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn interrupted() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
