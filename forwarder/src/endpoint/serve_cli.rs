//! `tracehose serve --listen ADDR`: configuration read once at start (destinations, access keys, bounds),
//! then the server until SIGTERM or SIGINT.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::auth::AccessKeys;
use super::serve::{self, ServeOptions};
use super::{Endpoint, EndpointConfig};
use crate::aws::Aws;
use crate::deliver::{DeliverySetup, Settings};
use crate::limits::Limits;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 lets the OS choose (the address is printed on stderr).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Serve without an access key: anyone who can reach the port can send logs. Without it, `serve`
    /// refuses to start unless TRACEHOSE_ACCESS_KEYS or TRACEHOSE_ACCESS_KEYS_SECRET_ARN is set.
    #[arg(long)]
    pub insecure_no_access_key: bool,
    /// Requests read or delivered at once; one more is answered 503, which Firehose retries.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub max_concurrent_requests: u16,
    /// Open connections at most. A new one takes the slot of the connection idle the longest (idle
    /// sockets keep nobody out); it waits in the listen backlog only while every connection has a request
    /// in progress.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_connections: u16,
    /// Seconds a client has to send a request's headers (and to keep an idle connection open).
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout: u64,
    /// Seconds a client has to send a whole body.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout: u64,
    /// Seconds requests in flight get to finish after SIGTERM; what is left is stopped and dropped
    /// unanswered, so that Firehose retries it.
    #[arg(long, value_name = "SECONDS", default_value_t = 25, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_timeout: u64,
}

/// How long the runtime waits, once serving stopped, for pipeline threads to end. Work cut by the shutdown
/// deadline is cancelled and stops within one chunk, so this is only a backstop.
const THREADS_GRACE: Duration = Duration::from_secs(5);

pub fn main(args: ServeArgs, limits: Limits) -> ExitCode {
    // One thread for the server and the sending; each request's pipeline runs on a blocking thread.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("tracehose: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let (code, endpoint) = runtime.block_on(run(args, limits));
    // The pipeline threads have ended (or were abandoned): the counts are final.
    runtime.shutdown_timeout(THREADS_GRACE);
    if let Some(endpoint) = endpoint {
        let counts = endpoint.counts();
        eprintln!(
            "tracehose: serve: counts: requests handled {} (delivered {}), refused {} ({} of them counted \
             without a line each), records not read {}, bytes inflated {}, idle connections closed {}",
            counts.handled,
            counts.delivered,
            counts.refused,
            counts.refusals_not_logged,
            counts.records_not_read,
            counts.inflated_bytes,
            counts.idle_connections_closed
        );
    }
    code
}

/// Serves until a signal; the endpoint comes back once it started, for its final counts.
async fn run(args: ServeArgs, limits: Limits) -> (ExitCode, Option<Arc<Endpoint>>) {
    let settings = match Settings::from_env().resolve_secrets(&Aws::default()).await {
        Ok(settings) => settings,
        Err(err) => return (config_error(&err), None),
    };
    let delivery = match DeliverySetup::from_settings(&settings) {
        Ok(delivery) => delivery,
        Err(err) => return (config_error(&err), None),
    };
    let keys = match AccessKeys::from_settings(&settings, args.insecure_no_access_key) {
        Ok(AccessKeys::Unconfigured) => {
            eprintln!(
                "tracehose: configuration error: no access key: set TRACEHOSE_ACCESS_KEYS or \
                 TRACEHOSE_ACCESS_KEYS_SECRET_ARN, or pass --insecure-no-access-key"
            );
            return (ExitCode::from(2), None);
        }
        Ok(keys) => keys,
        Err(err) => return (config_error(&err), None),
    };
    let config = match EndpointConfig::from_settings(&settings) {
        Ok(config) => config,
        Err(err) => return (config_error(&err), None),
    };
    let (listener, addr) = match serve::bind(&args.listen).await {
        Ok(bound) => bound,
        Err(err) => {
            eprintln!("tracehose: serve: cannot listen on {}: {err}", args.listen);
            return (ExitCode::FAILURE, None);
        }
    };
    let options = ServeOptions {
        max_concurrent_requests: usize::from(args.max_concurrent_requests),
        max_connections: usize::from(args.max_connections),
        header_timeout: Duration::from_secs(args.header_timeout),
        body_timeout: Duration::from_secs(args.body_timeout),
        shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
    };
    eprintln!(
        "tracehose: serve: destinations: {}; access: {keys:?}; body cap {} bytes; {} requests at once",
        delivery.destinations.names().join(", "),
        config.max_body_bytes,
        options.max_concurrent_requests
    );
    let endpoint = Arc::new(Endpoint::new(
        keys,
        delivery,
        limits,
        settings.get("AWS_REGION"),
        config,
    ));
    eprintln!("tracehose: serve: listening on http://{addr}");
    let code = match serve::run(Arc::clone(&endpoint), listener, options, stop_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tracehose: serve: {err}");
            ExitCode::FAILURE
        }
    };
    (code, Some(endpoint))
}

fn config_error(err: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("tracehose: configuration error: {err}");
    ExitCode::from(2)
}

/// SIGTERM (ECS, Kubernetes, systemd) or SIGINT (a terminal).
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        // Without signal handlers the default action (exit) applies: nothing to wait for here.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
