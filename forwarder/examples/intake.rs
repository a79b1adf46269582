//! The local vendor intake (tests/support/intake.rs) as a process, for shell suites and benchmarks:
//!
//! `cargo run -p tracehose-forwarder --example intake -- --port 0 --dt-token T --dd-key K`
//!
//! Prints `listening on http://127.0.0.1:PORT` first, then serves Dynatrace (`/api/v2/logs/ingest`,
//! `/api/v2/otlp/v1/logs`), OTLP (`/v1/logs`) and Datadog (`/api/v2/logs`) until SIGTERM or SIGINT, or until
//! standard input closes when it is a pipe or a terminal (not when it is /dev/null, as for a background job
//! of a script). On exit it prints one JSON summary line: requests per vendor and status, entries accepted
//! per vendor, injected faults and contract violations.
//!
//! `--fail-fraction F --seed S` fails that fraction of every vendor's requests in mixed ways; `--accept-all`
//! checks only auth and that bodies decode and keeps no bodies, so that it is never a benchmark's bottleneck.

#[path = "../tests/support/intake.rs"]
mod intake;

use std::io::IsTerminal;
use std::os::unix::fs::FileTypeExt;

use clap::Parser;
use intake::{Intake, IntakeConfig, RandomFaults, Vendor};
use tokio::io::AsyncReadExt;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Debug, Parser)]
#[command(about = "A local stand-in for the Dynatrace, OTLP and Datadog log intakes")]
struct Cli {
    /// 0 lets the OS pick; the chosen port is printed.
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[arg(long, default_value = "dt-token")]
    dt_token: String,
    #[arg(long, default_value = "dd-key")]
    dd_key: String,
    /// `name=value` the generic OTLP endpoint requires.
    #[arg(long, value_parser = parse_header)]
    otlp_header: Option<(String, String)>,
    /// Fraction of requests to fail, per vendor.
    #[arg(long)]
    fail_fraction: Option<f64>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Minimal checking, entries counted only, no bodies kept.
    #[arg(long)]
    accept_all: bool,
}

fn parse_header(value: &str) -> Result<(String, String), String> {
    let (name, value) = value.split_once('=').ok_or("expected name=value")?;
    Ok((name.trim().to_ascii_lowercase(), value.trim().to_string()))
}

fn main() {
    let cli = Cli::parse();
    // Two workers: enough to keep up with a benchmark's client on the small machines this runs on.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("cannot start the runtime: {e}")));
    let summary = runtime.block_on(run(cli));
    println!("{summary}");
    // The stdin reader may still be blocked in a read that nothing can cancel.
    std::process::exit(0);
}

fn fail(message: &str) -> ! {
    eprintln!("intake: {message}");
    std::process::exit(2);
}

async fn run(cli: Cli) -> serde_json::Value {
    let mut config = IntakeConfig::new(&cli.dt_token, &cli.dd_key);
    config.port = cli.port;
    config.otlp_header = cli.otlp_header;
    config.minimal = cli.accept_all;
    let intake = Intake::start(config).await;
    if let Some(fraction) = cli.fail_fraction {
        for (i, vendor) in Vendor::ALL.into_iter().enumerate() {
            // A distinct stream per vendor, all derived from the one seed.
            let faults = RandomFaults::new(fraction, cli.seed.wrapping_add(i as u64));
            intake.random_faults(vendor, Some(faults));
        }
    }
    println!("listening on {}", intake.base_url());

    let mut terminate = signal(SignalKind::terminate()).unwrap_or_else(|e| fail(&format!("SIGTERM: {e}")));
    let mut interrupt = signal(SignalKind::interrupt()).unwrap_or_else(|e| fail(&format!("SIGINT: {e}")));
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
        _ = stdin_closed() => {}
    }
    let summary = intake.summary();
    intake.shutdown().await;
    summary
}

/// Resolves when standard input reaches its end, or never if it is not a pipe or a terminal: /dev/null or a
/// file would end at once and stop the intake as it starts.
async fn stdin_closed() {
    let watched = std::io::stdin().is_terminal()
        || std::fs::metadata("/proc/self/fd/0").is_ok_and(|m| m.file_type().is_fifo());
    if !watched {
        return std::future::pending().await;
    }
    let mut stdin = tokio::io::stdin();
    let mut buffer = [0u8; 4096];
    while let Ok(n) = stdin.read(&mut buffer).await {
        if n == 0 {
            return;
        }
    }
}
