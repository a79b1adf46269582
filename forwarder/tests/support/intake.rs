//! A local stand-in for the vendor log intakes (Dynatrace Log Ingest v2 and its OTLP endpoint, any OTLP/HTTP
//! backend, Datadog logs v2), all on one port, for tests and shell suites that cannot reach the hosted
//! services. Every request is checked against the vendor's documented contract (docs/formats.md section 7)
//! and recorded; faults (statuses, `Retry-After` in either form, redirects, partial successes, delays, hangs,
//! resets) can be scripted or drawn at random.
//!
//! ```ignore
//! let intake = Intake::start(IntakeConfig::new("dt-token", "dd-key")).await;
//! intake.script(Vendor::Datadog, vec![Answer::status(429).retry_after(1), Answer::Reset]);
//! // ... point the forwarder at intake.base_url() and run it ...
//! assert!(intake.violations().is_empty());
//! assert_eq!(intake.accepted_entries(Vendor::Datadog).len(), 3);
//! assert_eq!(intake.injected(Vendor::Datadog).resets, 1);
//! intake.shutdown().await;
//! ```
//!
//! Paths: `POST /api/v2/logs/ingest` (Dynatrace, 204), `POST /api/v2/otlp/v1/logs` (Dynatrace OTLP, 200),
//! `POST /v1/logs` (OTLP, 200), `POST /api/v2/logs` (Datadog, 202); the platform telemetry's (docs/formats.md
//! section 9): `POST /v1/metrics` and `/v1/traces` (OTLP, 200), `POST /api/v2/otlp/v1/metrics` and
//! `/api/v2/otlp/v1/traces` (Dynatrace OTLP, 200; cumulative metrics refused, as Dynatrace does) and
//! `POST /api/v1/distribution_points` (Datadog distributions, 202); anything else is a 404 and a violation.
//! Refusals: bad auth 401 (Datadog 403), over a size or count limit 413, anything else malformed 400.
//! An injected fault takes precedence over the contract's answer, but violations are recorded either way.

// Shared by the intake tests and the intake example, each of which uses only part of the API.
#![allow(dead_code)]

#[path = "intake/contract.rs"]
mod contract;
#[path = "intake/faults.rs"]
mod faults;
#[path = "intake/otlp_json.rs"]
mod otlp_json;
#[path = "intake/reply.rs"]
mod reply;
#[path = "intake/telemetry.rs"]
mod telemetry;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

pub use contract::{DatadogLimits, DynatraceLimits};
pub use faults::{Answer, Injected, RandomFaults};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Vendor {
    Dynatrace,
    DynatraceOtlp,
    Otlp,
    Datadog,
    OtlpMetrics,
    OtlpTraces,
    DynatraceOtlpMetrics,
    DynatraceOtlpTraces,
    DatadogMetrics,
}

impl Vendor {
    pub const ALL: [Vendor; 9] = [
        Vendor::Dynatrace,
        Vendor::DynatraceOtlp,
        Vendor::Otlp,
        Vendor::Datadog,
        Vendor::OtlpMetrics,
        Vendor::OtlpTraces,
        Vendor::DynatraceOtlpMetrics,
        Vendor::DynatraceOtlpTraces,
        Vendor::DatadogMetrics,
    ];

    /// The log intakes, which the log tests fault.
    pub const LOGS: [Vendor; 4] = [
        Vendor::Dynatrace,
        Vendor::DynatraceOtlp,
        Vendor::Otlp,
        Vendor::Datadog,
    ];

    /// Whether its body is an OTLP export request (of logs, metrics or traces).
    pub fn is_otlp(self) -> bool {
        matches!(
            self,
            Vendor::Otlp
                | Vendor::DynatraceOtlp
                | Vendor::OtlpMetrics
                | Vendor::OtlpTraces
                | Vendor::DynatraceOtlpMetrics
                | Vendor::DynatraceOtlpTraces
        )
    }

    /// Whether it takes Dynatrace's `Api-Token`.
    pub fn is_dynatrace(self) -> bool {
        matches!(
            self,
            Vendor::Dynatrace
                | Vendor::DynatraceOtlp
                | Vendor::DynatraceOtlpMetrics
                | Vendor::DynatraceOtlpTraces
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Vendor::Dynatrace => "dynatrace",
            Vendor::DynatraceOtlp => "dynatrace_otlp",
            Vendor::Otlp => "otlp",
            Vendor::Datadog => "datadog",
            Vendor::OtlpMetrics => "otlp_metrics",
            Vendor::OtlpTraces => "otlp_traces",
            Vendor::DynatraceOtlpMetrics => "dynatrace_otlp_metrics",
            Vendor::DynatraceOtlpTraces => "dynatrace_otlp_traces",
            Vendor::DatadogMetrics => "datadog_metrics",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Vendor::Dynatrace => "/api/v2/logs/ingest",
            Vendor::DynatraceOtlp => "/api/v2/otlp/v1/logs",
            Vendor::Otlp => "/v1/logs",
            Vendor::Datadog => "/api/v2/logs",
            Vendor::OtlpMetrics => "/v1/metrics",
            Vendor::OtlpTraces => "/v1/traces",
            Vendor::DynatraceOtlpMetrics => "/api/v2/otlp/v1/metrics",
            Vendor::DynatraceOtlpTraces => "/api/v2/otlp/v1/traces",
            Vendor::DatadogMetrics => "/api/v1/distribution_points",
        }
    }

    /// The status of a partial success: Dynatrace's log ingest answers 200 instead of its usual 204.
    fn partial_success(self) -> u16 {
        match self {
            Vendor::Dynatrace => 200,
            other => other.success(),
        }
    }

    fn success(self) -> u16 {
        match self {
            Vendor::Dynatrace => 204,
            Vendor::Datadog | Vendor::DatadogMetrics => 202,
            _ => 200,
        }
    }

    fn route(method: &Method, path: &str) -> Option<Vendor> {
        (method == Method::POST)
            .then(|| Vendor::ALL.into_iter().find(|v| v.path() == path))
            .flatten()
    }
}

#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// 0 lets the OS pick.
    pub port: u16,
    pub dynatrace_token: String,
    pub datadog_key: String,
    /// Header name and value the generic OTLP endpoint requires, if any.
    pub otlp_header: Option<(String, String)>,
    pub dynatrace_limits: DynatraceLimits,
    /// Dynatrace's OTLP logs payload limit, on the body as sent.
    pub dynatrace_otlp_max_bytes: usize,
    pub datadog_limits: DatadogLimits,
    /// Bodies are never read or inflated past this, whatever the vendor's limit.
    pub body_cap: usize,
    /// The whole body must arrive within this long.
    pub read_deadline: Duration,
    /// Throughput mode: check auth and that the body decodes, count entries, keep no requests or bodies.
    pub minimal: bool,
}

impl IntakeConfig {
    pub fn new(dynatrace_token: &str, datadog_key: &str) -> Self {
        IntakeConfig {
            port: 0,
            dynatrace_token: dynatrace_token.into(),
            datadog_key: datadog_key.into(),
            otlp_header: None,
            dynatrace_limits: DynatraceLimits::default(),
            dynatrace_otlp_max_bytes: 2_000_000,
            datadog_limits: DatadogLimits::default(),
            body_cap: 64 << 20,
            read_deadline: Duration::from_secs(10),
            minimal: false,
        }
    }
}

/// How a request ended from the client's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Answered(u16),
    /// Connection closed after the body was read, no answer sent.
    Reset,
    /// No answer ever sent: the client gave up waiting.
    Hung,
}

/// One request as received. Not kept in minimal mode.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Order of arrival, from 0, across all vendors.
    pub seq: u64,
    /// `None` for a path no vendor serves.
    pub vendor: Option<Vendor>,
    pub method: String,
    pub path: String,
    /// Every header, name lowercased, repeated values joined with ", ".
    pub headers: BTreeMap<String, String>,
    pub wire_bytes: usize,
    pub decoded_bytes: usize,
    /// Entries, log records, metric data points, spans or distribution series in the body.
    pub count: usize,
    /// Of those, how many a partial-success answer said were refused (the last ones of the request).
    pub refused: usize,
    /// JSON vendors: the entries as sent (Datadog distributions: each series); OTLP: flat objects from
    /// `otlp_entries`, `metric_entries` (one per data point) or `span_entries`.
    pub entries: Vec<Value>,
    pub otlp: Option<ExportLogsServiceRequest>,
    pub metrics: Option<ExportMetricsServiceRequest>,
    pub traces: Option<ExportTraceServiceRequest>,
    pub violations: Vec<String>,
    pub injected: Option<Answer>,
    pub outcome: Outcome,
}

impl Recorded {
    pub fn success(&self) -> bool {
        matches!(self.outcome, Outcome::Answered(code) if (200..300).contains(&code))
    }

    /// A valid request that was reset or left unanswered: the vendor might or might not have kept it.
    pub fn unacknowledged(&self) -> bool {
        matches!(self.outcome, Outcome::Reset | Outcome::Hung) && self.violations.is_empty()
    }

    /// The entries the vendor kept: those of a successful request, less the ones its answer refused.
    pub fn kept(&self) -> &[Value] {
        if !self.success() {
            return &[];
        }
        let kept = self.count.saturating_sub(self.refused).min(self.entries.len());
        &self.entries[..kept]
    }
}

/// Kept violation messages; a flood (a benchmark sending garbage) is only counted past this.
const MAX_VIOLATIONS: usize = 10_000;

#[derive(Debug, Default)]
struct State {
    next_seq: u64,
    records: Vec<Recorded>,
    violations: Vec<String>,
    violations_dropped: u64,
    plans: BTreeMap<Vendor, faults::Plan>,
    /// (vendor or "unknown", status or "reset") -> requests.
    answered: BTreeMap<(&'static str, String), u64>,
    accepted: BTreeMap<Vendor, u64>,
}

#[derive(Debug)]
struct Shared {
    config: IntakeConfig,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind, still worth reading.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The running intake. Dropping it stops the server.
#[derive(Debug)]
pub struct Intake {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Intake {
    /// Binds 127.0.0.1 and serves until `shutdown` or drop. Panics if the port cannot be bound.
    pub async fn start(config: IntakeConfig) -> Intake {
        let listener = TcpListener::bind(("127.0.0.1", config.port))
            .await
            .unwrap_or_else(|e| panic!("intake cannot bind 127.0.0.1:{}: {e}", config.port));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("intake has no local address: {e}"));
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(State::default()),
        });
        let server = tokio::spawn(serve(listener, shared.clone()));
        Intake { addr, shared, server }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request so far, in order of arrival.
    pub fn requests(&self) -> Vec<Recorded> {
        let mut records = self.shared.state().records.clone();
        records.sort_by_key(|r| r.seq);
        records
    }

    /// Entries of the vendor's requests answered with success, in order of arrival, including those a
    /// partial success refused.
    pub fn accepted_entries(&self, vendor: Vendor) -> Vec<Value> {
        self.entries_where(vendor, Recorded::success)
    }

    /// Entries the vendor kept: those of successful requests less those their partial successes refused.
    pub fn kept_entries(&self, vendor: Vendor) -> Vec<Value> {
        let records = self.requests().into_iter();
        records
            .filter(|r| r.vendor == Some(vendor))
            .flat_map(|r| r.kept().to_vec())
            .collect()
    }

    /// Entries of valid requests that were reset after the body was read: delivered or not, nobody knows.
    pub fn unacknowledged_entries(&self, vendor: Vendor) -> Vec<Value> {
        self.entries_where(vendor, Recorded::unacknowledged)
    }

    /// The decoded protobuf of each successful OTLP request.
    pub fn accepted_otlp(&self, vendor: Vendor) -> Vec<ExportLogsServiceRequest> {
        let records = self.requests().into_iter();
        records
            .filter(|r| r.vendor == Some(vendor) && r.success())
            .filter_map(|r| r.otlp)
            .collect()
    }

    /// The decoded protobuf of each successful OTLP metrics request.
    pub fn accepted_metrics(&self, vendor: Vendor) -> Vec<ExportMetricsServiceRequest> {
        let records = self.requests().into_iter();
        records
            .filter(|r| r.vendor == Some(vendor) && r.success())
            .filter_map(|r| r.metrics)
            .collect()
    }

    /// The decoded protobuf of each successful OTLP traces request.
    pub fn accepted_traces(&self, vendor: Vendor) -> Vec<ExportTraceServiceRequest> {
        let records = self.requests().into_iter();
        records
            .filter(|r| r.vendor == Some(vendor) && r.success())
            .filter_map(|r| r.traces)
            .collect()
    }

    /// Entries kept so far (partial successes' refusals excepted); also counted in minimal mode.
    pub fn accepted_count(&self, vendor: Vendor) -> u64 {
        self.shared.state().accepted.get(&vendor).copied().unwrap_or(0)
    }

    /// Every contract violation so far, each prefixed with the request's sequence number and vendor.
    pub fn violations(&self) -> Vec<String> {
        let state = self.shared.state();
        let mut all = state.violations.clone();
        if state.violations_dropped > 0 {
            all.push(format!("... and {} more violations", state.violations_dropped));
        }
        all
    }

    /// Replaces the vendor's script: the next requests get these answers in order, then the random mode if
    /// set, else normal behaviour.
    pub fn script(&self, vendor: Vendor, answers: Vec<Answer>) {
        self.shared
            .state()
            .plans
            .entry(vendor)
            .or_default()
            .set_script(answers);
    }

    /// Starts (or with `None` stops) the random mode for the vendor; the seed restarts the sequence.
    pub fn random_faults(&self, vendor: Vendor, faults: Option<RandomFaults>) {
        self.shared
            .state()
            .plans
            .entry(vendor)
            .or_default()
            .set_random(faults);
    }

    /// What was injected for the vendor so far.
    pub fn injected(&self, vendor: Vendor) -> Injected {
        let state = self.shared.state();
        state
            .plans
            .get(&vendor)
            .map(|p| p.injected.clone())
            .unwrap_or_default()
    }

    /// Requests per vendor and answer, entries accepted, injections and violations, as one JSON object.
    pub fn summary(&self) -> Value {
        let state = self.shared.state();
        let mut requests: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
        for ((vendor, answer), n) in &state.answered {
            requests.entry(vendor).or_default().insert(answer, *n);
        }
        let accepted: BTreeMap<&str, u64> = state.accepted.iter().map(|(v, n)| (v.name(), *n)).collect();
        let injected: BTreeMap<&str, Value> = (state.plans.iter())
            .map(|(vendor, plan)| {
                let statuses: BTreeMap<String, u64> = plan
                    .injected
                    .statuses
                    .iter()
                    .map(|(code, n)| (code.to_string(), *n))
                    .collect();
                let i = &plan.injected;
                (
                    vendor.name(),
                    json!({"statuses": statuses, "resets": i.resets, "delayed": i.delayed,
                           "partial": i.partial, "hangs": i.hangs}),
                )
            })
            .collect();
        json!({
            "requests": requests,
            "entries_accepted": accepted,
            "injected": injected,
            "violations": state.violations,
            "violations_dropped": state.violations_dropped,
        })
    }

    /// Stops accepting and drops every open connection.
    pub async fn shutdown(mut self) {
        self.server.abort();
        let _ = (&mut self.server).await;
    }

    fn entries_where(&self, vendor: Vendor, keep: fn(&Recorded) -> bool) -> Vec<Value> {
        let records = self.requests().into_iter();
        records
            .filter(|r| r.vendor == Some(vendor) && keep(r))
            .flat_map(|r| r.entries)
            .collect()
    }
}

impl Drop for Intake {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    // Dropped with this task on shutdown, which aborts every connection.
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors or similar: back off instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| handle(shared.clone(), request));
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Reply = Response<Full<Bytes>>;

/// Returning an error makes hyper close the connection without answering: that is how a reset is injected.
async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Reply, std::io::Error> {
    let seq = {
        let mut state = shared.state();
        state.next_seq += 1;
        state.next_seq - 1
    };
    let config = &shared.config;
    let (parts, body) = request.into_parts();
    let vendor = Vendor::route(&parts.method, parts.uri.path());
    let label = vendor.map_or("unknown", Vendor::name);
    let mut violations = Vec::new();
    let (wire, read_failure) = match read_body(body, config).await {
        Ok(wire) => (wire, None),
        Err((status, message)) => {
            violations.push(message);
            (Bytes::new(), Some(status))
        }
    };
    let checked = match (vendor, read_failure) {
        (Some(vendor), None) => contract::check(vendor, config, &parts.headers, &wire, config.minimal),
        (Some(_), Some(_)) => contract::Checked::default(),
        (None, _) => {
            violations.push(format!("no endpoint for {} {}", parts.method, parts.uri.path()));
            contract::Checked::default()
        }
    };
    violations.extend(checked.problems.iter().map(|p| p.message.clone()));

    // Recorded before answering, so a client that has its answer always finds the request recorded.
    let (injected, outcome, refused) = {
        let mut state = shared.state();
        // A body that never fully arrived cannot be answered in any other way than the failure itself.
        let injected = (vendor.filter(|_| read_failure.is_none()))
            .and_then(|v| state.plans.entry(v).or_default().next(checked.decoded_bytes));
        let outcome = match (&injected, read_failure, vendor) {
            (Some(Answer::Reset), _, _) => Outcome::Reset,
            (Some(Answer::Hang), _, _) => Outcome::Hung,
            (Some(Answer::Status { code, .. } | Answer::Redirect { code, .. }), _, _) => {
                Outcome::Answered(*code)
            }
            (Some(Answer::Partial { .. }), _, Some(vendor)) => Outcome::Answered(vendor.partial_success()),
            (_, Some(status), _) => Outcome::Answered(status),
            (_, None, None) => Outcome::Answered(404),
            (_, None, Some(vendor)) => {
                Outcome::Answered(checked.problems.first().map_or(vendor.success(), |p| p.status))
            }
        };
        note_violations(&mut state, seq, label, &violations);
        let answer = match outcome {
            Outcome::Answered(code) => code.to_string(),
            Outcome::Reset => "reset".into(),
            Outcome::Hung => "hung".into(),
        };
        let refused = match (&injected, vendor) {
            (Some(Answer::Partial { refused }), Some(vendor)) if vendor.is_otlp() => {
                (*refused).min(checked.count)
            }
            // Dynatrace's documented partial success does not say how many: none of the request counts.
            (Some(Answer::Partial { .. }), Some(Vendor::Dynatrace)) => checked.count,
            _ => 0,
        };
        *state.answered.entry((label, answer)).or_default() += 1;
        let record = Recorded {
            seq,
            vendor,
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            headers: headers(&parts.headers),
            wire_bytes: wire.len(),
            decoded_bytes: checked.decoded_bytes,
            count: checked.count,
            refused,
            entries: checked.entries,
            otlp: checked.otlp,
            metrics: checked.metrics,
            traces: checked.traces,
            violations: violations.clone(),
            injected: injected.clone(),
            outcome,
        };
        if let (Some(vendor), true) = (vendor, record.success()) {
            *state.accepted.entry(vendor).or_default() += (record.count - record.refused) as u64;
        }
        if !config.minimal {
            state.records.push(record);
        }
        (injected, outcome, refused)
    };

    if let Some(wait) = injected.as_ref().and_then(Answer::wait) {
        tokio::time::sleep(wait).await;
    }
    let code = match outcome {
        Outcome::Answered(code) => code,
        Outcome::Reset => return Err(std::io::Error::other("injected reset")),
        // Longer than any client here waits; the connection ends with the client, or with the intake.
        Outcome::Hung => {
            tokio::time::sleep(reply::HANG).await;
            return Err(std::io::Error::other("injected hang"));
        }
    };
    Ok(reply::reply(
        vendor,
        code,
        &violations,
        injected.as_ref(),
        refused,
    ))
}

/// The whole body within the configured cap and deadline, or the status and violation to answer with.
async fn read_body(body: Incoming, config: &IntakeConfig) -> Result<Bytes, (u16, String)> {
    let read = Limited::new(body, config.body_cap).collect();
    match tokio::time::timeout(config.read_deadline, read).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err((
            413,
            format!("body over the intake's {}-byte cap", config.body_cap),
        )),
        Ok(Err(e)) => Err((400, format!("reading the body: {e}"))),
        Err(_) => Err((
            408,
            format!("body not complete within {:?}", config.read_deadline),
        )),
    }
}

fn note_violations(state: &mut State, seq: u64, label: &str, violations: &[String]) {
    for violation in violations {
        if state.violations.len() < MAX_VIOLATIONS {
            state.violations.push(format!("#{seq} {label}: {violation}"));
        } else {
            state.violations_dropped += 1;
        }
    }
}

fn headers(map: &hyper::HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in map {
        let value = String::from_utf8_lossy(value.as_bytes());
        out.entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    out
}
