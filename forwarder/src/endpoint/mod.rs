//! The Firehose HTTP endpoint (docs/formats.md section 5; docs/architecture.md, "Faces of the Firehose HTTP
//! endpoint"): one handler ([`handler`]) behind two faces, a Lambda function URL or API Gateway event
//! ([`function_url`]) and `tracehose serve` ([`serve`]). Keys ([`auth`]) are checked before anything is
//! decoded, every failure becomes its status in one place ([`errors`]), answers carry the spec's body
//! ([`models`]), and retried request ids that were settled are answered without shipping again ([`dedup`]).

pub mod auth;
pub mod counts;
pub mod dedup;
pub mod errors;
pub mod function_url;
mod handler;
pub mod models;
pub mod serve;
pub mod serve_cli;
mod slots;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use thiserror::Error;

pub use self::auth::{AccessKeys, AuthConfigError};
pub use self::counts::Counts;
pub use self::errors::EndpointError;
pub use self::models::{Reply, RequestHeaders};
use crate::deliver::{DeliverySetup, Settings};
use crate::limits::Limits;
use crate::pipeline::Pipeline;

#[derive(Debug, Error)]
pub enum EndpointConfigError {
    #[error(transparent)]
    Auth(#[from] AuthConfigError),
    #[error("{var}: expected a whole number from {min} to {max}")]
    Number {
        var: &'static str,
        min: usize,
        max: usize,
    },
    #[error("{var}: expected true or false")]
    Bool { var: &'static str },
}

/// The endpoint's own bounds and switches, from `TRACEHOSE_ENDPOINT_*`.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Largest request body, as sent and after gzip (`TRACEHOSE_ENDPOINT_MAX_BODY_BYTES`): Firehose
    /// buffers at most 64 MiB before base64, which the JSON around it makes about 86 MiB.
    pub max_body_bytes: usize,
    /// Memory for remembered request ids, in bytes (`TRACEHOSE_ENDPOINT_DEDUP_BYTES`; 0 turns it off).
    pub dedup_bytes: usize,
    /// Longest a request may take to deliver (`TRACEHOSE_ENDPOINT_DEADLINE_MS`): Firehose waits 3 minutes
    /// for an answer, then retries.
    pub deadline: Duration,
    /// One line per request on stderr, not only per failure (`TRACEHOSE_ENDPOINT_LOG_REQUESTS`).
    pub log_requests: bool,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 96 << 20,
            dedup_bytes: 1 << 20,
            deadline: Duration::from_secs(170),
            log_requests: false,
        }
    }
}

impl EndpointConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, EndpointConfigError> {
        let defaults = Self::default();
        let number = |var: &'static str, default: usize, min: usize, max: usize| match settings
            .get(var)
            .filter(|v| !v.trim().is_empty())
        {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or(EndpointConfigError::Number { var, min, max }),
        };
        const LOG: &str = "TRACEHOSE_ENDPOINT_LOG_REQUESTS";
        let log_requests = match settings
            .get(LOG)
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(_) => return Err(EndpointConfigError::Bool { var: LOG }),
        };
        let deadline_ms = number("TRACEHOSE_ENDPOINT_DEADLINE_MS", 170_000, 1_000, 900_000)?;
        Ok(Self {
            max_body_bytes: number(
                "TRACEHOSE_ENDPOINT_MAX_BODY_BYTES",
                defaults.max_body_bytes,
                1024,
                1 << 30,
            )?,
            dedup_bytes: number("TRACEHOSE_ENDPOINT_DEDUP_BYTES", defaults.dedup_bytes, 0, 1 << 30)?,
            deadline: Duration::from_millis(deadline_ms as u64),
            log_requests,
        })
    }
}

/// The endpoint's state, shared by every request of the process.
#[derive(Debug)]
pub struct Endpoint {
    keys: AccessKeys,
    delivery: DeliverySetup,
    /// One pipeline, so that correlation state carries across requests. Records are decoded (base64,
    /// gzip, JSON) outside it; it is held only while one payload's lines are correlated and written, so
    /// concurrent requests interleave payload by payload and none waits behind another's inflation.
    pipeline: Arc<Mutex<Pipeline>>,
    limits: Limits,
    config: EndpointConfig,
    dedup: dedup::Dedup,
    counters: Arc<counts::Counters>,
    refusals: counts::RefusalLog,
    /// Raised when the process stops waiting for requests in flight: their pipeline threads stop within
    /// one chunk of work.
    cancel: Arc<AtomicBool>,
}

impl Endpoint {
    pub fn new(
        keys: AccessKeys,
        delivery: DeliverySetup,
        limits: Limits,
        default_region: Option<String>,
        config: EndpointConfig,
    ) -> Self {
        let pipeline = Pipeline::new(limits)
            .with_default_region(default_region)
            .with_telemetry(delivery.destinations.telemetry);
        Self {
            keys,
            delivery,
            pipeline: Arc::new(Mutex::new(pipeline)),
            limits,
            dedup: dedup::Dedup::new(config.dedup_bytes),
            config,
            counters: Arc::default(),
            refusals: counts::RefusalLog::default(),
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }

    /// What the endpoint did so far.
    pub fn counts(&self) -> Counts {
        self.counters.snapshot()
    }

    /// Stops the work of every request in flight (within one chunk of inflation or one correlation
    /// window): for a process that will not wait for their answers.
    pub fn cancel_work(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Writes the refusal counts not yet logged: when the process stops.
    pub fn flush_refusal_log(&self) {
        for line in self.refusals.flush(Instant::now()) {
            eprintln!("{line}");
        }
    }

    pub fn keys(&self) -> &AccessKeys {
        &self.keys
    }

    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    pub fn delivery(&self) -> &DeliverySetup {
        &self.delivery
    }
}
