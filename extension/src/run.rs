//! The event loop: start the listeners, register, subscribe, then for each event decide how long to hold
//! the invocation open. The only time the extension adds to an invocation is between `runtimeDone` and its
//! next `next` call, and that is bounded by the flush budget.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::api::{ApiError, ExtensionsApi, NextEvent};
use crate::clock::now_nanos;
use crate::config::Config;
use crate::diag;
use crate::export::Exporter;
use crate::flush::{FlushPolicy, Mode};
use crate::outbox::Outbox;
use crate::spans::FunctionInfo;
use crate::state::{print_markers, Shared, State};
use crate::{listener, receiver, secrets, server};
use tracehose_export::Signal;

/// Lambda gives all external extensions 2,000 ms at shutdown; stop this much before the deadline.
const SHUTDOWN_MARGIN: Duration = Duration::from_millis(100);
/// How long to wait at shutdown for the last reports the platform still owes.
const SHUTDOWN_TELEMETRY_WAIT: Duration = Duration::from_millis(500);
/// A background flush never runs longer than this, even in a long invocation.
const BACKGROUND_FLUSH_MAX: Duration = Duration::from_secs(5);
/// Drain budget when the Extensions API disappears: no deadline is known, Lambda's own shutdown budget is 2 s.
const API_LOST_DRAIN: Duration = Duration::from_millis(1_000);
/// How long a subscription that has delivered nothing yet is trusted to start delivering: Lambda buffers for
/// 25 ms (the setting this extension asks for).
const TELEMETRY_PROOF_WAIT: Duration = Duration::from_millis(100);
/// The end-of-invocation flush stops this long before the invocation's deadline.
const DEADLINE_MARGIN: Duration = Duration::from_millis(20);
/// Waiting for `runtimeDone` a little past the deadline lets a timeout's own report arrive.
const DEADLINE_GRACE: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Reads the configuration (resolving `*_SECRET_ARN` variables first) and runs until shutdown.
pub async fn run_from_env() -> Result<(), RunError> {
    let started = Instant::now();
    let client = tracehose_export::http_client()?;
    let wanted = secrets::wanted(std::env::vars_os().filter_map(|(name, _)| name.into_string().ok()));
    let process_env = |name: &str| std::env::var(name).ok();
    let (values, errors) = if wanted.is_empty() {
        Default::default()
    } else {
        secrets::resolve(&client, &process_env, &wanted).await
    };
    let lookup = |name: &str| values.get(name).cloned().or_else(|| std::env::var(name).ok());
    let mut config = Config::from_lookup(&lookup);
    config.errors.extend(errors.iter().map(ToString::to_string));
    run(client, config, started).await
}

pub async fn run(client: reqwest::Client, config: Config, started: Instant) -> Result<(), RunError> {
    for error in &config.errors {
        diag!("configuration: {error}");
    }
    let function = FunctionInfo {
        name: config.function_name.clone(),
        version: config.function_version.clone(),
        region: config.region.clone(),
        memory_mb: config.memory_mb,
    };
    let shared = Arc::new(Shared::new(
        function,
        config.resource.clone(),
        config.buffer_bytes,
        config.ship_logs,
        config.verbose,
    ));

    // Listeners first: Lambda may deliver telemetry as soon as the subscription is accepted.
    let telemetry_port = match TcpListener::bind(("0.0.0.0", config.telemetry_port)).await {
        Ok(listener) => {
            let port = listener
                .local_addr()
                .map(|a| a.port())
                .unwrap_or(config.telemetry_port);
            let state = shared.clone();
            tokio::spawn(server::serve(
                listener,
                listener::MAX_CONNECTIONS,
                move |request| listener::handle(state.clone(), request),
            ));
            Some(port)
        }
        Err(error) => {
            diag!(
                "cannot listen for telemetry on port {}: {error}",
                config.telemetry_port
            );
            None
        }
    };
    if let Some(port) = config.receiver_port {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => {
                let state = shared.clone();
                tokio::spawn(server::serve(
                    listener,
                    receiver::MAX_CONNECTIONS,
                    move |request| receiver::handle(state.clone(), request),
                ));
            }
            Err(error) => diag!("cannot start the OTLP receiver on 127.0.0.1:{port}: {error}"),
        }
    }

    let api = ExtensionsApi::register(client.clone(), &config.runtime_api, &config.extension_name).await?;
    let mut telemetry = false;
    if let Some(port) = telemetry_port {
        let types: &[&str] = if config.ship_logs {
            &["platform", "function"]
        } else {
            &["platform"]
        };
        let uri = format!("http://{}:{port}", config.telemetry_host);
        match api.subscribe_telemetry(&uri, types).await {
            Ok(()) => telemetry = true,
            Err(error) => diag!("Telemetry API unavailable ({error}); span end times will be estimated"),
        }
    }
    if config.verbose {
        diag!(
            "registered as {} (telemetry subscription {}) {} µs after start",
            config.extension_name,
            if telemetry { "accepted" } else { "unavailable" },
            started.elapsed().as_micros()
        );
    }
    if config.ship_logs && config.logs.is_empty() {
        diag!("TRACEHOSE_SHIP_LOGS is on but no log destination is configured: log records are counted, not exported");
    }
    if config.traces.is_empty() {
        diag!("no trace destination configured (OTEL_EXPORTER_OTLP_ENDPOINT or DT_CONNECTION_BASE_URL): spans are counted, not exported");
    }

    let exporter = Arc::new(Exporter::new(
        client,
        shared.clone(),
        Outbox::new(config.traces.clone(), config.buffer_bytes, Signal::Traces),
        Outbox::new(config.logs.clone(), config.buffer_bytes, Signal::Logs),
    ));
    let mut policy = FlushPolicy::new(config.flush_strategy, config.flush_interval);
    let mut background: Option<JoinHandle<()>> = None;

    loop {
        let event = match api.next().await {
            Ok(event) => event,
            Err(error) => {
                // The API is gone (or broken): the backend may still be there, so drain briefly anyway.
                api.report_error(false, "Extension.NextFailed").await;
                let deadline = Instant::now() + API_LOST_DRAIN;
                drain(&shared, &exporter, background.take(), deadline, "API lost").await;
                return Err(error.into());
            }
        };
        match event {
            NextEvent::Invoke {
                request_id,
                deadline_ms,
                function_arn,
                tracing,
            } => {
                let now = Instant::now();
                let markers = shared.lock().tracker.on_invoke(
                    &request_id,
                    tracing.as_deref(),
                    function_arn,
                    now_nanos(),
                );
                print_markers(&markers);
                if !shared.lock().tracker.telemetry() {
                    print_markers(&shared.collect_complete(false));
                }
                policy.on_invoke(now);
                let deadline = deadline_instant(deadline_ms, now).unwrap_or(now + Duration::from_secs(900));
                match policy.mode() {
                    Mode::Periodic => {
                        let idle = background.as_ref().is_none_or(JoinHandle::is_finished);
                        if idle && policy.due(now, shared.buffered_bytes(), config.buffer_bytes / 2) {
                            policy.flushed(now);
                            let exporter = exporter.clone();
                            let until = deadline.min(now + BACKGROUND_FLUSH_MAX);
                            background =
                                Some(tokio::spawn(
                                    async move { exporter.flush(until, false, false).await },
                                ));
                        }
                    }
                    Mode::End => {
                        if telemetry && !shared.lock().tracker.telemetry() {
                            // Subscribed, but nothing has arrived yet: some emulators (cargo lambda) accept the
                            // subscription and never deliver. Waiting for runtimeDone from them would hold every
                            // invocation until its deadline.
                            wait_until(&shared, |s| s.tracker.telemetry(), now + TELEMETRY_PROOF_WAIT).await;
                        }
                        if shared.lock().tracker.telemetry() {
                            let id = request_id.as_str();
                            wait_until(&shared, |s| s.tracker.runtime_done(id), deadline + DEADLINE_GRACE)
                                .await;
                        }
                        let done = Instant::now();
                        // The invoke phase lasts until every extension calls next: a flush that ran past the
                        // function's deadline would turn a success into a timeout.
                        let budget_end = (done + config.flush_timeout)
                            .min(deadline.checked_sub(DEADLINE_MARGIN).unwrap_or(done));
                        if budget_end > done {
                            exporter.flush(budget_end, false, false).await;
                        }
                        policy.flushed(Instant::now());
                        if shared.verbose {
                            diag!(
                                "{request_id}: added {} µs after runtimeDone",
                                done.elapsed().as_micros()
                            );
                        }
                    }
                }
            }
            NextEvent::Shutdown { reason, deadline_ms } => {
                let now = Instant::now();
                let hard = deadline_instant(deadline_ms, now)
                    .unwrap_or(now + Duration::from_millis(1_500))
                    .min(now + Duration::from_secs(2));
                let deadline = hard.checked_sub(SHUTDOWN_MARGIN).unwrap_or(now).max(now);
                if shared.lock().tracker.telemetry() {
                    let wait = deadline.min(now + SHUTDOWN_TELEMETRY_WAIT);
                    wait_until(&shared, |s| s.tracker.all_reported(), wait).await;
                }
                drain(&shared, &exporter, background.take(), deadline, &reason).await;
                return Ok(());
            }
        }
    }
}

/// Completes every invocation, sends everything left until `deadline` and prints the summary.
async fn drain(
    shared: &Shared,
    exporter: &Exporter,
    background: Option<JoinHandle<()>>,
    deadline: Instant,
    reason: &str,
) {
    print_markers(&shared.collect_complete(true));
    // A background flush may hold a payload mid-send; its queue keeps it, so stopping it loses nothing.
    if let Some(task) = background {
        task.abort();
        let _ = task.await;
    }
    exporter.flush(deadline, true, true).await;
    let left = exporter.pending().await;
    diag!(
        "shutdown ({reason}): {} payloads_undelivered={left}",
        shared.stats.summary()
    );
}

/// Waits until `done` holds or `deadline` passes, woken by every telemetry batch.
async fn wait_until(shared: &Shared, done: impl Fn(&State) -> bool, deadline: Instant) {
    loop {
        let notified = shared.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if done(&shared.lock()) {
            return;
        }
        if tokio::time::timeout_at(deadline.into(), notified).await.is_err() {
            return;
        }
    }
}

/// The API's deadlines are epoch milliseconds; timers need instants.
/// A deadline already past when the event arrives is not one: emulators (cargo lambda) send such values, and
/// trusting them would skip every flush.
fn deadline_instant(deadline_ms: Option<u64>, now: Instant) -> Option<Instant> {
    let deadline_ms = deadline_ms?;
    let now_ms = now_nanos() / 1_000_000;
    let left = deadline_ms.checked_sub(now_ms).filter(|left| *left > 0)?;
    Some(now + Duration::from_millis(left.min(86_400_000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_in_the_past_are_unknown() {
        let now = Instant::now();
        let now_ms = now_nanos() / 1_000_000;
        assert!(
            deadline_instant(Some(now_ms + 60_000), now).is_some_and(|d| d > now + Duration::from_secs(50))
        );
        assert!(deadline_instant(Some(now_ms.saturating_sub(5)), now).is_none());
        assert!(deadline_instant(Some(0), now).is_none());
        assert!(deadline_instant(None, now).is_none());
        assert!(deadline_instant(Some(u64::MAX), now).is_some_and(|d| d <= now + Duration::from_secs(86_400)));
    }
}
