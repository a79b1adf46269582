//! Which destinations are configured, from the variables users already have (DESIGN.md, Configuration):
//! `DT_CONNECTION_BASE_URL` with `DT_LOG_COLLECTION_AUTH_TOKEN` (else `DT_CONNECTION_AUTH_TOKEN`) for
//! Dynatrace, the standard `OTEL_EXPORTER_OTLP_*` for OTLP, `DD_API_KEY`/`DD_SITE` (or the agent's
//! `DD_LOGS_CONFIG_LOGS_DD_URL`) for Datadog, `TRACEHOSE_STDOUT` and `TRACEHOSE_FILE` for NDJSON. Read and
//! validated once, at start, with errors that name the variable and never quote a secret.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use thiserror::Error;
use tracehose_export::config::{otlp_from_env, ConfigError as ExportConfigError};
use tracehose_export::{Compression, Destination, RetryPolicy, Signal};

use super::encode::datadog::{DatadogEncoder, DatadogSettings};
use super::encode::dynatrace::{DynatraceEncoder, DynatraceSettings};
use super::encode::otlp::{OtlpEncoder, OtlpSettings, OTLP_LIMITS};
use super::encode::{Encoder, RequestLimits};
use super::filter::{Filter, FilterError};
use super::secrets::Settings;
use super::sender::HttpDestination;
use crate::aws::Aws;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error(transparent)]
    Export(#[from] ExportConfigError),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error("{var}: {reason}")]
    Invalid { var: &'static str, reason: String },
    #[error(transparent)]
    Encoder(#[from] super::encode::SettingsError),
    #[error("{var} is set but {missing} is not")]
    Incomplete {
        var: &'static str,
        missing: &'static str,
    },
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the delivery stage needs, resolved.
#[derive(Debug, Clone)]
pub struct Destinations {
    pub http: Vec<HttpDestination>,
    /// NDJSON on stdout: explicitly asked for, or the embedded default when nothing else is configured.
    pub stdout: bool,
    /// NDJSON appended to this file.
    pub file: Option<std::path::PathBuf>,
    pub filter: Arc<Filter>,
    /// Requests in flight per destination (`TRACEHOSE_MAX_IN_FLIGHT`).
    pub max_in_flight: usize,
    /// Largest request body before compression, whatever a backend allows (`TRACEHOSE_BATCH_MAX_BYTES`):
    /// with the requests in flight, what bounds the stage's memory.
    pub batch_max_bytes: usize,
    pub retry: RetryPolicy,
    /// How many times a batch refused with 413 may be halved (`TRACEHOSE_SPLIT_DEPTH`).
    pub split_depth: u32,
}

impl Destinations {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let lookup = |name: &str| settings.get(name).filter(|v| !v.trim().is_empty());
        let mut http = Vec::new();
        if let Some(d) = dynatrace(&lookup)? {
            http.push(d);
        }
        if let Some(d) = otlp(&lookup)? {
            http.push(d);
        }
        if let Some(d) = datadog(&lookup)? {
            http.push(d);
        }
        let file = lookup("TRACEHOSE_FILE").map(std::path::PathBuf::from);
        let stdout = match lookup("TRACEHOSE_STDOUT") {
            Some(value) => parse_bool("TRACEHOSE_STDOUT", &value)?,
            None => http.is_empty() && file.is_none(),
        };
        Ok(Self {
            http,
            stdout,
            file,
            filter: Arc::new(Filter::from_lookup(&lookup)?),
            max_in_flight: number(&lookup, "TRACEHOSE_MAX_IN_FLIGHT", 4, 1..=64)?,
            batch_max_bytes: number(&lookup, "TRACEHOSE_BATCH_MAX_BYTES", 4 << 20, 1024..=(64 << 20))?,
            retry: RetryPolicy {
                max_attempts: number(&lookup, "TRACEHOSE_MAX_ATTEMPTS", 8, 1..=100)? as u32,
                initial_backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(10),
            },
            split_depth: number(&lookup, "TRACEHOSE_SPLIT_DEPTH", 4, 0..=16)? as u32,
        })
    }

    /// The names of the configured destinations, for the start-up line.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.http.iter().map(|d| d.encoder.name()).collect();
        if self.stdout {
            names.push("stdout");
        }
        if self.file.is_some() {
            names.push("file");
        }
        names
    }
}

fn parse_bool(var: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::Invalid {
            var,
            reason: "expected true or false".into(),
        }),
    }
}

fn number(
    lookup: &dyn Fn(&str) -> Option<String>,
    var: &'static str,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, ConfigError> {
    let Some(value) = lookup(var) else {
        return Ok(default);
    };
    value
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| ConfigError::Invalid {
            var,
            reason: format!(
                "expected a whole number from {} to {}",
                range.start(),
                range.end()
            ),
        })
}

fn url(var: &'static str, value: &str) -> Result<String, ConfigError> {
    let value = value.trim();
    let ok =
        (value.starts_with("https://") || value.starts_with("http://")) && reqwest::Url::parse(value).is_ok();
    if !ok {
        return Err(ConfigError::Invalid {
            var,
            reason: "not an http(s) URL".into(),
        });
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// A header value that must never be printed (`Debug` of a `HeaderMap` hides sensitive values).
fn secret_header(var: &'static str, value: String) -> Result<HeaderValue, ConfigError> {
    let mut value = HeaderValue::from_str(&value).map_err(|_| ConfigError::Invalid {
        var,
        reason: "not a valid HTTP header value".into(),
    })?;
    value.set_sensitive(true);
    Ok(value)
}

fn http(
    encoder: Arc<dyn Encoder>,
    url: String,
    headers: HeaderMap,
    compression: Compression,
    timeout: Duration,
) -> HttpDestination {
    let max_body_bytes = encoder.limits().max_body_bytes;
    HttpDestination {
        destination: Destination {
            name: encoder.name(),
            url,
            headers,
            compression,
            timeout,
            max_body_bytes,
        },
        encoder,
    }
}

fn dynatrace(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<HttpDestination>, ConfigError> {
    const BASE: &str = "DT_CONNECTION_BASE_URL";
    let Some(base) = lookup(BASE) else {
        return Ok(None);
    };
    let base = url(BASE, &base)?;
    // The log-ingest token is the narrower one (scope logs.ingest): preferred when both are set.
    let (var, token) = ["DT_LOG_COLLECTION_AUTH_TOKEN", "DT_CONNECTION_AUTH_TOKEN"]
        .into_iter()
        .find_map(|var| lookup(var).map(|token| (var, token)))
        .ok_or(ConfigError::Incomplete {
            var: BASE,
            missing: "DT_LOG_COLLECTION_AUTH_TOKEN (or DT_CONNECTION_AUTH_TOKEN)",
        })?;
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        secret_header(var, format!("Api-Token {}", token.trim()))?,
    );
    let settings = DynatraceSettings::from_lookup(lookup)?;
    let encoder: Arc<dyn Encoder> = Arc::new(DynatraceEncoder::new(settings));
    Ok(Some(http(
        encoder,
        format!("{base}/api/v2/logs/ingest"),
        headers,
        Compression::Gzip,
        DEFAULT_TIMEOUT,
    )))
}

fn otlp(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<HttpDestination>, ConfigError> {
    let Some(destination) = otlp_from_env(Signal::Logs, lookup)? else {
        return Ok(None);
    };
    let settings = OtlpSettings::from_lookup(lookup)?;
    let limits = RequestLimits {
        max_body_bytes: destination.max_body_bytes.min(OTLP_LIMITS.max_body_bytes),
        ..OTLP_LIMITS
    };
    let encoder: Arc<dyn Encoder> = Arc::new(OtlpEncoder::new(settings, limits));
    Ok(Some(HttpDestination {
        destination: Destination {
            max_body_bytes: encoder.limits().max_body_bytes,
            ..destination
        },
        encoder,
    }))
}

fn datadog(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<HttpDestination>, ConfigError> {
    const KEY: &str = "DD_API_KEY";
    const URL: &str = "DD_LOGS_CONFIG_LOGS_DD_URL";
    let Some(key) = lookup(KEY) else {
        if lookup(URL).is_some() {
            return Err(ConfigError::Incomplete {
                var: URL,
                missing: KEY,
            });
        }
        return Ok(None);
    };
    let intake = match lookup(URL) {
        Some(full) => url(URL, &full)?,
        None => {
            let site = lookup("DD_SITE").unwrap_or_else(|| "datadoghq.com".into());
            url(
                "DD_SITE",
                &format!("https://http-intake.logs.{}/api/v2/logs", site.trim()),
            )?
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("dd-api-key"),
        secret_header(KEY, key.trim().to_owned())?,
    );
    let settings = DatadogSettings::from_lookup(lookup)?;
    let encoder: Arc<dyn Encoder> = Arc::new(DatadogEncoder::new(settings));
    Ok(Some(http(
        encoder,
        intake,
        headers,
        Compression::Gzip,
        DEFAULT_TIMEOUT,
    )))
}

#[derive(Debug, Error)]
pub enum SetupError {
    #[error(transparent)]
    Secret(#[from] super::secrets::SecretError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The delivery stage as configured for this process: destinations, one HTTP client reused by every call
/// (connections stay warm across Lambda invocations), and how long a call may take at most.
#[derive(Debug, Clone)]
pub struct DeliverySetup {
    pub destinations: Destinations,
    pub client: reqwest::Client,
    /// The deadline of a call outside Lambda (`TRACEHOSE_DELIVERY_TIMEOUT_MS`); inside Lambda the
    /// invocation's own deadline, less a margin, is used instead.
    pub timeout: Duration,
    /// Whether the Lambda face prints the ledger in CloudWatch Embedded Metric Format (`TRACEHOSE_EMF`).
    pub emf: bool,
}

impl DeliverySetup {
    /// Reads the secrets the environment names, then every setting; at start, once.
    pub async fn from_env(aws: &Aws) -> Result<Self, SetupError> {
        let settings = Settings::from_env().resolve_secrets(aws).await?;
        Self::from_settings(&settings)
    }

    pub fn from_settings(settings: &Settings) -> Result<Self, SetupError> {
        let lookup = |name: &str| settings.get(name).filter(|v| !v.trim().is_empty());
        let timeout_ms = number(&lookup, "TRACEHOSE_DELIVERY_TIMEOUT_MS", 300_000, 1..=86_400_000)?;
        let emf = match lookup("TRACEHOSE_EMF") {
            Some(value) => parse_bool("TRACEHOSE_EMF", &value)?,
            None => true,
        };
        Ok(Self {
            destinations: Destinations::from_settings(settings)?,
            client: tracehose_export::http_client()?,
            timeout: Duration::from_millis(timeout_ms as u64),
            emf,
        })
    }
}
