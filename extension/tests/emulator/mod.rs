//! An in-repository Lambda sandbox: the Extensions API and Telemetry API as Lambda serves them
//! (docs/formats.md section 8), an OTLP backend that records what it receives and can fail on demand, and the
//! real extension binary run as a subprocess. Shared by the integration tests and the benchmark.

#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use flate2::read::GzDecoder;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};

mod helpers;
mod records;
mod secrets;

pub use helpers::*;
pub use records::*;
pub use secrets::*;

pub const BINARY: &str = env!("CARGO_BIN_EXE_tracehose-extension");

type Reply = Response<Full<Bytes>>;

fn reply(status: u16, headers: &[(&str, String)], body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    for (name, value) in headers {
        response.headers_mut().insert(
            hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Reply> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, std::convert::Infallible>(handler(req).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

pub fn epoch_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

// ---------------------------------------------------------------------------------------------------------
// OTLP backend

#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Recorded {
    fn raw(&self) -> Vec<u8> {
        if self.headers.get("content-encoding").map(String::as_str) == Some("gzip") {
            let mut out = Vec::new();
            GzDecoder::new(&self.body[..]).read_to_end(&mut out).unwrap();
            out
        } else {
            self.body.clone()
        }
    }
}

/// 0 answers 200, 1 answers 503, 2 hangs without answering.
pub const HEALTHY: u8 = 0;
pub const FAILING: u8 = 1;
pub const HANGING: u8 = 2;

#[derive(Clone)]
pub struct Backend {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    pub mode: Arc<AtomicU8>,
    pub attempts: Arc<AtomicU64>,
}

impl Backend {
    pub async fn start() -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let mode = Arc::new(AtomicU8::new(HEALTHY));
        let attempts = Arc::new(AtomicU64::new(0));
        let (r, m, a) = (requests.clone(), mode.clone(), attempts.clone());
        let addr = serve(move |req: Request<Incoming>| {
            let (r, m, a) = (r.clone(), m.clone(), a.clone());
            async move {
                a.fetch_add(1, Ordering::SeqCst);
                let path = req.uri().path().to_owned();
                let headers = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                    .collect();
                let body = req
                    .into_body()
                    .collect()
                    .await
                    .map(|c| c.to_bytes().to_vec())
                    .unwrap_or_default();
                match m.load(Ordering::SeqCst) {
                    HEALTHY => {
                        r.lock().unwrap().push(Recorded { path, headers, body });
                        reply(200, &[], "")
                    }
                    FAILING => reply(503, &[("retry-after", "0".into())], ""),
                    _ => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        reply(200, &[], "")
                    }
                }
            }
        })
        .await;
        Self {
            url: format!("http://{addr}"),
            requests,
            mode,
            attempts,
        }
    }

    pub fn set_mode(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    pub fn recorded(&self, path: &str) -> Vec<Recorded> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    pub fn spans(&self) -> Vec<Span> {
        self.recorded("/v1/traces")
            .iter()
            .flat_map(|r| {
                assert_eq!(
                    r.headers.get("content-type").map(String::as_str),
                    Some("application/x-protobuf")
                );
                ExportTraceServiceRequest::decode(&r.raw()[..])
                    .unwrap()
                    .resource_spans
            })
            .flat_map(|rs| rs.scope_spans)
            .flat_map(|ss| ss.spans)
            .collect()
    }

    pub fn trace_requests(&self) -> Vec<ExportTraceServiceRequest> {
        self.recorded("/v1/traces")
            .iter()
            .map(|r| ExportTraceServiceRequest::decode(&r.raw()[..]).unwrap())
            .collect()
    }

    pub fn logs(&self) -> Vec<LogRecord> {
        self.recorded("/v1/logs")
            .iter()
            .flat_map(|r| {
                ExportLogsServiceRequest::decode(&r.raw()[..])
                    .unwrap()
                    .resource_logs
            })
            .flat_map(|rl| rl.scope_logs)
            .flat_map(|sl| sl.log_records)
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------------------
// Extensions API and Telemetry API

#[derive(Default)]
struct Api {
    registered: Mutex<Option<(String, Value)>>,
    subscription: Mutex<Option<Value>>,
    subscribed_at: Mutex<Option<Instant>>,
    errors: Mutex<Vec<String>>,
    next_calls: Mutex<Vec<Instant>>,
    changed: Notify,
    events: tokio::sync::Mutex<Option<mpsc::UnboundedReceiver<Value>>>,
    refuse_telemetry: bool,
}

pub struct Sandbox {
    pub backend: Backend,
    api: Arc<Api>,
    events: mpsc::UnboundedSender<Value>,
    child: Child,
    pub started: Instant,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    client: reqwest::Client,
}

pub struct Options {
    pub env: Vec<(String, String)>,
    /// Answer the telemetry subscription with 404, as `cargo lambda` does.
    pub refuse_telemetry: bool,
}

impl Sandbox {
    pub async fn start(backend: Backend, options: Options) -> Self {
        Self::start_binary(BINARY, backend, options).await
    }

    /// `start` with another build of the extension (`benches/builds.rs` compares two).
    pub async fn start_binary(
        binary: impl AsRef<std::ffi::OsStr>,
        backend: Backend,
        options: Options,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let api = Arc::new(Api {
            events: tokio::sync::Mutex::new(Some(rx)),
            refuse_telemetry: options.refuse_telemetry,
            ..Default::default()
        });
        let handler_api = api.clone();
        let addr = serve(move |req| handle_api(handler_api.clone(), req)).await;
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "orders")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_REGION", "eu-west-1")
            .env("TRACEHOSE_TELEMETRY_PORT", "0")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &backend.url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &options.env {
            command.env(k, v);
        }
        let started = Instant::now();
        let mut child = command.spawn().expect("spawn the extension");
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = lines(child.stderr.take().unwrap());
        Self {
            backend,
            api,
            events: tx,
            child,
            started,
            stdout,
            stderr,
            client: reqwest::Client::new(),
        }
    }

    /// Waits until the extension registered and (unless refused) subscribed; returns when that happened.
    pub async fn ready(&self) -> Instant {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.api.changed.notified();
            let done = self.api.registered.lock().unwrap().is_some()
                && (self.api.refuse_telemetry || self.api.subscription.lock().unwrap().is_some())
                && !self.api.next_calls.lock().unwrap().is_empty();
            if done {
                return Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "extension not ready; stderr: {:?}",
                self.stderr()
            );
            let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
        }
    }

    pub fn registration(&self) -> (String, Value) {
        self.api.registered.lock().unwrap().clone().unwrap()
    }

    pub fn subscription(&self) -> Value {
        self.api.subscription.lock().unwrap().clone().unwrap()
    }

    /// When the subscription request arrived: the extension is registered and subscribed from then on.
    pub fn subscribed_at(&self) -> Option<Instant> {
        *self.api.subscribed_at.lock().unwrap()
    }

    pub fn next_calls(&self) -> usize {
        self.api.next_calls.lock().unwrap().len()
    }

    /// Waits for the `n`-th call of `next` (1-based) and returns when it arrived.
    pub async fn wait_next_call(&self, n: usize, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.api.changed.notified();
            if let Some(at) = self.api.next_calls.lock().unwrap().get(n - 1) {
                return Some(*at);
            }
            if Instant::now() >= deadline {
                return None;
            }
            let _ = tokio::time::timeout(Duration::from_millis(20), notified).await;
        }
    }

    pub fn send_event(&self, event: Value) {
        self.events.send(event).unwrap();
    }

    pub fn invoke(&self, request_id: &str, tracing: Option<&str>, timeout: Duration) {
        let mut event = json!({
            "eventType": "INVOKE",
            "deadlineMs": epoch_ms() + timeout.as_millis() as u64,
            "requestId": request_id,
            "invokedFunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:orders",
        });
        if let Some(value) = tracing {
            event["tracing"] = json!({"type": "X-Amzn-Trace-Id", "value": value});
        }
        self.send_event(event);
    }

    pub fn shutdown(&self, reason: &str, budget: Duration) {
        self.send_event(json!({
            "eventType": "SHUTDOWN",
            "shutdownReason": reason,
            "deadlineMs": epoch_ms() + budget.as_millis() as u64,
        }));
    }

    fn telemetry_url(&self) -> String {
        let uri = self.subscription()["destination"]["URI"]
            .as_str()
            .unwrap()
            .to_owned();
        let port = uri.rsplit(':').next().unwrap().trim_end_matches('/');
        format!("http://127.0.0.1:{port}/")
    }

    /// POSTs a raw body to the telemetry listener; returns the status it answered.
    pub async fn post_telemetry_raw(&self, body: impl Into<reqwest::Body>) -> u16 {
        self.client
            .post(self.telemetry_url())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    pub async fn telemetry(&self, events: Value) {
        let status = self.post_telemetry_raw(events.to_string()).await;
        assert_eq!(status, 200);
    }

    /// POSTs an OTLP request to the extension's local receiver, as the function would.
    pub async fn function_spans(&self, port: u16, body: Vec<u8>, content_type: &str) -> u16 {
        self.client
            .post(format!("http://127.0.0.1:{port}/v1/traces"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Waits for the process to exit; `None` if it did not within `timeout` (it is then killed).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<(std::process::ExitStatus, Duration)> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some((status, start.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    pub fn api_errors(&self) -> Vec<String> {
        self.api.errors.lock().unwrap().clone()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn lines(stream: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = out.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            sink.lock().unwrap().push(line);
        }
    });
    out
}

async fn handle_api(api: Arc<Api>, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let name = header("lambda-extension-name");
    let id = header("lambda-extension-identifier");
    let error_type = header("lambda-extension-function-error-type");
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes().to_vec())
        .unwrap_or_default();
    let reply_value = match (method.as_str(), path.as_str()) {
        ("POST", "/2020-01-01/extension/register") => {
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            *api.registered.lock().unwrap() = Some((name.unwrap_or_default(), value));
            reply(
                200,
                &[("lambda-extension-identifier", "ext-id-1".into())],
                json!({"functionName":"orders","functionVersion":"$LATEST","handler":"bootstrap"})
                    .to_string(),
            )
        }
        ("PUT", "/2022-07-01/telemetry") => {
            assert_eq!(id.as_deref(), Some("ext-id-1"));
            if api.refuse_telemetry {
                reply(404, &[], "not implemented")
            } else {
                *api.subscription.lock().unwrap() = serde_json::from_slice(&body).ok();
                *api.subscribed_at.lock().unwrap() = Some(Instant::now());
                reply(200, &[], "OK")
            }
        }
        ("GET", "/2020-01-01/extension/event/next") => {
            assert_eq!(id.as_deref(), Some("ext-id-1"));
            api.next_calls.lock().unwrap().push(Instant::now());
            api.changed.notify_waiters();
            let mut guard = api.events.lock().await;
            let event = match guard.as_mut() {
                Some(rx) => rx.recv().await,
                None => None,
            };
            match event {
                Some(event) => reply(
                    200,
                    &[("lambda-extension-event-identifier", "evt".into())],
                    event.to_string(),
                ),
                None => {
                    // No more events: hold the call as Lambda holds a frozen sandbox.
                    drop(guard);
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    reply(500, &[], "")
                }
            }
        }
        ("POST", p) if p.ends_with("/init/error") || p.ends_with("/exit/error") => {
            api.errors.lock().unwrap().push(error_type.unwrap_or_default());
            reply(202, &[], "")
        }
        _ => reply(404, &[], "unknown path"),
    };
    api.changed.notify_waiters();
    reply_value
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
