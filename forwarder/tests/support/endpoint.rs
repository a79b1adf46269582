//! The harness the endpoint tests share: `tracehose serve` in the test's process with the local vendor intake
//! (tests/support/intake.rs, which the including test declares as `mod intake`) as its destinations, and
//! requests built to the Firehose HTTP endpoint spec.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use flate2::write::GzEncoder;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracehose_forwarder::deliver::{DeliverySetup, Settings};
use tracehose_forwarder::endpoint::serve::{self, ServeOptions};
use tracehose_forwarder::endpoint::{AccessKeys, Endpoint, EndpointConfig};
use tracehose_forwarder::limits::Limits;

pub use crate::intake::{Intake, IntakeConfig, Vendor};

pub const DT_TOKEN: &str = "dt0c01.test-token";
pub const DD_KEY: &str = "dd-test-key";
pub const KEY: &str = "firehose-access-key-1";
pub const ARN: &str = "arn:aws:firehose:eu-west-1:123456789012:deliverystream/logs";
/// Lines in samples/events/firehose-http-json-format.json, all correlated but the init line.
pub const SAMPLE_LINES: usize = 7;

pub struct Harness {
    pub intake: Intake,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub stop: Option<oneshot::Sender<()>>,
    pub server: JoinHandle<std::io::Result<()>>,
    pub endpoint: Arc<Endpoint>,
}

pub async fn start(extra: &[(&str, &str)], options: ServeOptions) -> Harness {
    let intake = Intake::start(IntakeConfig::new(DT_TOKEN, DD_KEY)).await;
    let base = intake.base_url();
    let mut vars = vec![
        ("DT_CONNECTION_BASE_URL".to_owned(), base.clone()),
        ("DT_LOG_COLLECTION_AUTH_TOKEN".to_owned(), DT_TOKEN.to_owned()),
        ("DD_API_KEY".to_owned(), DD_KEY.to_owned()),
        (
            "DD_LOGS_CONFIG_LOGS_DD_URL".to_owned(),
            format!("{base}/api/v2/logs"),
        ),
        // The platform metrics' host: never the real Datadog from a test.
        ("DD_DD_URL".to_owned(), base.clone()),
        ("TRACEHOSE_STDOUT".to_owned(), "false".to_owned()),
        ("TRACEHOSE_ACCESS_KEYS".to_owned(), format!("old-key,{KEY}")),
    ];
    vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let settings = Settings::from_pairs(vars);
    let delivery = DeliverySetup::from_settings(&settings).unwrap();
    let keys = AccessKeys::from_settings(&settings, false).unwrap();
    let config = EndpointConfig::from_settings(&settings).unwrap();
    let limits = Limits::from_lookup(|name| settings.get(name)).unwrap();
    let endpoint = Arc::new(Endpoint::new(keys, delivery, limits, None, config));
    let (listener, addr) = serve::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve::run(Arc::clone(&endpoint), listener, options, async move {
        let _ = stopped.await;
    }));
    Harness {
        intake,
        addr,
        client: reqwest::Client::new(),
        stop: Some(stop),
        server,
        endpoint,
    }
}

pub fn sample_body(request_id: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/events/firehose-http-json-format.json");
    let mut body: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    body["requestId"] = Value::from(request_id);
    serde_json::to_vec(&body).unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[derive(Debug, Clone)]
pub struct Send<'a> {
    pub id: &'a str,
    pub key: Option<&'a str>,
    pub gzip: bool,
    pub common: Option<&'a str>,
    pub body: Option<Vec<u8>>,
}

impl<'a> Send<'a> {
    pub fn new(id: &'a str) -> Self {
        Self {
            id,
            key: Some(KEY),
            gzip: false,
            common: None,
            body: None,
        }
    }
}

impl Harness {
    pub async fn post(&self, send: Send<'_>) -> Result<(u16, Value), reqwest::Error> {
        let body = send.body.unwrap_or_else(|| sample_body(send.id));
        let mut request = self
            .client
            .post(format!("http://{}/", self.addr))
            .header("Content-Type", "application/json")
            .header("X-Amz-Firehose-Protocol-Version", "1.0")
            .header("X-Amz-Firehose-Request-Id", send.id)
            .header("X-Amz-Firehose-Source-Arn", ARN);
        if let Some(key) = send.key {
            request = request.header("X-Amz-Firehose-Access-Key", key);
        }
        if let Some(common) = send.common {
            request = request.header("X-Amz-Firehose-Common-Attributes", common);
        }
        let body = if send.gzip {
            request = request.header("Content-Encoding", "gzip");
            gzip(&body)
        } else {
            body
        };
        let response = request.body(body).send().await?;
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(content_type, "application/json");
        let body: Value = serde_json::from_slice(&response.bytes().await?).unwrap();
        Ok((status, body))
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.server.await.unwrap().unwrap();
        assert!(
            self.intake.violations().is_empty(),
            "{:?}",
            self.intake.violations()
        );
    }
}

/// The spec's body: the request id echoed, a millisecond timestamp, an error message on failures only.
pub fn assert_spec_body(body: &Value, id: &str, error: bool) {
    assert_eq!(body["requestId"], id, "{body}");
    assert!(body["timestamp"].as_u64().unwrap() > 1_600_000_000_000, "{body}");
    assert_eq!(body.get("errorMessage").is_some(), error, "{body}");
}
