//! The command line: `tracehose <command>`. Each command lives in its own module; this file only wires
//! arguments to them.

use std::io::{self, ErrorKind};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};

use crate::aws::Aws;
use crate::deliver::{DeliveryError, DeliverySetup};
use crate::limits::Limits;
use crate::process;
use crate::telemetry::Origin;

/// Forwards AWS Lambda and CloudWatch logs with every line joined to its trace.
#[derive(Debug, Parser)]
#[command(name = "tracehose", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode CloudWatch Logs subscription data in any shape (direct subscription event, Firehose
    /// transformation event, Firehose HTTP endpoint body, raw or gzipped payloads, Firehose S3 objects and
    /// failed-data backups), correlate every line with its trace, and ship the records to the configured
    /// destinations (Dynatrace: DT_CONNECTION_BASE_URL; OTLP: OTEL_EXPORTER_OTLP_ENDPOINT; Datadog:
    /// DD_API_KEY; TRACEHOSE_FILE; TRACEHOSE_STDOUT), or write NDJSON to stdout when none is configured.
    /// Exits 1 when anything could not be read or delivered, 2 on a configuration error.
    Process(ProcessArgs),
    /// Replay Firehose S3 failed-data backups through the destinations or back into a Firehose stream.
    Replay(crate::replay::ReplayArgs),
    /// Subscribe log groups (by name or prefix) to the forwarder or a Firehose stream; idempotent.
    Subscribe(crate::subscribe::SubscribeArgs),
    /// Serve the Firehose HTTP endpoint: `POST /` takes Firehose deliveries (access key checked, 200 only
    /// once every line was delivered), `GET /healthz` answers liveness. Stops gracefully on SIGTERM.
    Serve(crate::endpoint::serve_cli::ServeArgs),
}

#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// Input files; `-` or none reads standard input. State carries across files in order, as it does
    /// across deliveries of a warm Lambda.
    pub files: Vec<PathBuf>,
    /// Refuse any single decompression larger than this (gzip-bomb cap); default 64 MiB, or what the
    /// function's memory allows inside Lambda. Overrides TRACEHOSE_MAX_DECOMPRESSED_BYTES, and sets the
    /// total per input to 16 times it unless TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES is set.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_decompressed_bytes: Option<u64>,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let limits = match Limits::from_env() {
        Ok(limits) => limits,
        Err(err) => {
            eprintln!("tracehose: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Process(args) => run_process(args, limits),
        Command::Replay(args) => crate::replay::main(args, limits),
        Command::Subscribe(args) => crate::subscribe::cli::main(&args),
        Command::Serve(args) => crate::endpoint::serve_cli::main(args, limits),
    }
}

/// Runs a face to completion on a current-thread runtime: the async side of every face is I/O (the pipeline
/// has a blocking thread of its own), and one thread keeps the footprint small.
pub(crate) fn block_on(face: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(face),
        Err(err) => {
            eprintln!("tracehose: cannot start the async runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run_process(args: ProcessArgs, mut limits: Limits) -> ExitCode {
    if let Some(max) = args.max_decompressed_bytes {
        let cap = usize::try_from(max).unwrap_or(usize::MAX);
        limits.set_max_decompressed_bytes(cap, |name| std::env::var(name).ok());
    }
    block_on(async move {
        let setup = match DeliverySetup::from_env(&Aws::default(), Origin::Reprocessed).await {
            Ok(setup) => setup,
            Err(err) => {
                eprintln!("tracehose: configuration error: {err}");
                return ExitCode::from(2);
            }
        };
        let deadline = Instant::now() + setup.timeout;
        let outcome = process::run(args.files, limits, &setup.destinations, &setup.client, deadline).await;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(err) => {
                eprintln!("tracehose: error: {err}");
                return ExitCode::FAILURE;
            }
        };
        // `tracehose process ... | head` closing the pipe is not a failure of ours, and needs no summary.
        let broken_pipe = outcome.ledger.reader_gone
            || matches!(&outcome.stopped, Some(DeliveryError::AllFailed(e)) if e.kind() == ErrorKind::BrokenPipe);
        if broken_pipe {
            return ExitCode::SUCCESS;
        }
        if let Some(err) = &outcome.stopped {
            eprintln!("tracehose: error: writing output: {err}");
        }
        // Nothing useful is left to do if stderr itself is gone.
        if !setup.destinations.http.is_empty() {
            let _ = process::write_line(
                &mut io::stderr(),
                format_args!("tracehose: delivery {}", outcome.ledger),
            );
        }
        let _ = process::print_summary(&mut io::stderr(), &outcome.summary);
        if outcome.stopped.is_some() || outcome.summary.has_failures() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    })
}
