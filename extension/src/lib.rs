//! tracehose-extension: a Lambda extension that records one span per invocation from the Extensions and
//! Telemetry APIs, relays the function's own OTLP spans, prints the invocation marker line the tracehose
//! forwarder joins logs with, and exports traces (and optionally logs) over OTLP/HTTP.
//!
//! The pieces, one idea each: `config` (environment), `api` (Extensions API client), `listener` and
//! `telemetry` (Telemetry API), `receiver` and `bounded` (local OTLP endpoint), `invocation` (per-invocation state),
//! `spans` and `logs` (OTLP records), `state` (shared buffers), `flush` (when), `export` and `outbox` (how),
//! `run` (the event loop).

pub mod api;
pub mod bounded;
pub mod clock;
pub mod config;
pub mod export;
pub mod flush;
pub mod ids;
pub mod invocation;
pub mod listener;
pub mod logs;
pub mod otlp;
pub mod outbox;
pub mod receiver;
pub mod run;
pub mod secrets;
pub mod server;
pub mod sigv4;
pub mod spans;
pub mod state;
pub mod telemetry;

/// Diagnostics go to stderr, never stdout: stdout carries only the marker lines.
#[macro_export]
macro_rules! diag {
    ($($arg:tt)*) => {
        eprintln!("tracehose-extension: {}", format_args!($($arg)*))
    };
}
