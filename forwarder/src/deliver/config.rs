//! Which destinations are configured, from the variables users already have (docs/architecture.md,
//! Configuration): `DT_CONNECTION_BASE_URL` with `DT_LOG_COLLECTION_AUTH_TOKEN` (else
//! `DT_CONNECTION_AUTH_TOKEN`) for Dynatrace, read by `export` as the extension reads them, the standard
//! `OTEL_EXPORTER_OTLP_*` for OTLP, `DD_API_KEY`/`DD_SITE` (or the agent's `DD_LOGS_CONFIG_*`, see
//! [`dd_agent`]) for Datadog, `TRACEHOSE_STDOUT` and `TRACEHOSE_FILE` for NDJSON. Read and validated once, at
//! start, with errors that name the variable and never quote a secret.
//!
//! Platform telemetry (docs/formats.md, section 9) adds lanes beside the logs' (`lanes.rs`): with
//! metrics on, Datadog distribution points, OTLP `/v1/metrics` and Dynatrace's OTLP metrics; with invocation
//! spans, OTLP `/v1/traces` and Dynatrace's OTLP traces. Dynatrace's metrics and traces need
//! `DT_CONNECTION_AUTH_TOKEN` (the log token cannot ingest them).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use thiserror::Error;
use tracehose_export::config::{dynatrace_connection, otlp_from_env, ConfigError as ExportConfigError};
use tracehose_export::{Compression, Destination, RetryPolicy, Signal};

use super::dd_agent;
use super::encode::datadog::{DatadogEncoder, DatadogSettings};
use super::encode::dynatrace::{DynatraceEncoder, DynatraceSettings};
use super::encode::otlp::{OtlpEncoder, OtlpSettings, OTLP_LIMITS};
use super::encode::{Encoder, RequestLimits};
use super::filter::{Filter, FilterError};
use super::secrets::Settings;
use super::sender::{HttpDestination, LaneEncoder};
use crate::aws::Aws;
use crate::telemetry::Origin;

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
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::SettingsError),
    #[error("{var} is set but {missing} is not")]
    Incomplete {
        var: &'static str,
        missing: &'static str,
    },
}

pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the delivery stage needs, resolved.
#[derive(Debug, Clone)]
pub struct Destinations {
    /// The log destinations, then the telemetry lanes.
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
    /// Platform metrics and invocation spans (`TRACEHOSE_LAMBDA_METRICS`, `TRACEHOSE_INVOCATION_SPANS`).
    pub telemetry: crate::telemetry::Settings,
}

impl Destinations {
    /// The destinations of a face that reads live logs.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        Self::from_settings_for(settings, Origin::Live)
    }

    pub fn from_settings_for(settings: &Settings, origin: Origin) -> Result<Self, ConfigError> {
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
        let telemetry = crate::telemetry::Settings::from_lookup(&lookup, !http.is_empty(), origin)?;
        let stdout_default = http.is_empty();
        http.extend(super::lanes::telemetry_lanes(&lookup, &telemetry)?);
        let file = lookup("TRACEHOSE_FILE").map(std::path::PathBuf::from);
        let stdout = match lookup("TRACEHOSE_STDOUT") {
            Some(value) => parse_bool("TRACEHOSE_STDOUT", &value)?,
            None => stdout_default && file.is_none(),
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
            telemetry,
        })
    }

    /// The names of the configured destinations, for the start-up line.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.http.iter().map(|d| d.wire().name()).collect();
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

/// A header value that must never be printed (`Debug` of a `HeaderMap` hides sensitive values).
pub(super) fn secret_header(var: &'static str, value: String) -> Result<HeaderValue, ConfigError> {
    let mut value = HeaderValue::from_str(&value).map_err(|_| ConfigError::Invalid {
        var,
        reason: "not a valid HTTP header value".into(),
    })?;
    value.set_sensitive(true);
    Ok(value)
}

pub(super) fn http(
    encoder: LaneEncoder,
    url: String,
    headers: HeaderMap,
    compression: Compression,
    timeout: Duration,
) -> HttpDestination {
    let (name, max_body_bytes) = (encoder.wire().name(), encoder.wire().limits().max_body_bytes);
    HttpDestination {
        destination: Destination {
            name,
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
    // Read exactly as the extension reads it, for the logs signal.
    let Some(connection) = dynatrace_connection(Signal::Logs, lookup)? else {
        return Ok(None);
    };
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, connection.authorization);
    let settings = DynatraceSettings::from_lookup(lookup)?;
    let encoder: Arc<dyn Encoder> = Arc::new(DynatraceEncoder::new(settings));
    Ok(Some(http(
        LaneEncoder::Lines(encoder),
        format!("{}/api/v2/logs/ingest", connection.base),
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
        encoder: LaneEncoder::Lines(encoder),
    }))
}

fn datadog(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<HttpDestination>, ConfigError> {
    const KEY: &str = "DD_API_KEY";
    let Some(key) = lookup(KEY) else {
        for var in [dd_agent::URL, dd_agent::METRICS_URL] {
            if lookup(var).is_some() {
                return Err(ConfigError::Incomplete { var, missing: KEY });
            }
        }
        return Ok(None);
    };
    let intake = dd_agent::Intake::from_lookup(lookup)?;
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("dd-api-key"),
        secret_header(KEY, key.trim().to_owned())?,
    );
    let settings = DatadogSettings::from_lookup(lookup)?;
    let encoder: Arc<dyn Encoder> = Arc::new(DatadogEncoder::new(settings));
    Ok(Some(http(
        LaneEncoder::Lines(encoder),
        intake.url,
        headers,
        intake.compression,
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
    pub async fn from_env(aws: &Aws, origin: Origin) -> Result<Self, SetupError> {
        let settings = Settings::from_env().resolve_secrets(aws).await?;
        Self::from_settings_for(&settings, origin)
    }

    /// The setup of a face that reads live logs.
    pub fn from_settings(settings: &Settings) -> Result<Self, SetupError> {
        Self::from_settings_for(settings, Origin::Live)
    }

    pub fn from_settings_for(settings: &Settings, origin: Origin) -> Result<Self, SetupError> {
        let lookup = |name: &str| settings.get(name).filter(|v| !v.trim().is_empty());
        let timeout_ms = number(&lookup, "TRACEHOSE_DELIVERY_TIMEOUT_MS", 300_000, 1..=86_400_000)?;
        let emf = match lookup("TRACEHOSE_EMF") {
            Some(value) => parse_bool("TRACEHOSE_EMF", &value)?,
            None => true,
        };
        Ok(Self {
            destinations: Destinations::from_settings_for(settings, origin)?,
            client: tracehose_export::http_client()?,
            timeout: Duration::from_millis(timeout_ms as u64),
            emf,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn destinations(pairs: &[(&str, &str)]) -> Result<Destinations, ConfigError> {
        Destinations::from_settings(&Settings::from_pairs(pairs.iter().copied()))
    }

    /// The one log destination `pairs` configure (telemetry lanes aside).
    fn one(pairs: &[(&str, &str)]) -> Destination {
        let found = destinations(pairs).unwrap();
        let lines: Vec<_> = found.http.iter().filter(|d| d.carries_lines()).collect();
        assert_eq!(lines.len(), 1, "{:?}", found.names());
        lines[0].destination.clone()
    }

    fn auth(d: &Destination, header: &str) -> String {
        d.headers.get(header).unwrap().to_str().unwrap().to_owned()
    }

    #[test]
    fn dynatrace_in_every_documented_form() {
        let base = ("DT_CONNECTION_BASE_URL", "https://abc.live.dynatrace.com/");
        let d = one(&[base, ("DT_LOG_COLLECTION_AUTH_TOKEN", "dt0c01.LOG")]);
        assert_eq!(d.url, "https://abc.live.dynatrace.com/api/v2/logs/ingest");
        assert_eq!(auth(&d, "authorization"), "Api-Token dt0c01.LOG");
        assert!(!format!("{d:?}").contains("dt0c01"));
        let d = one(&[base, ("DT_CONNECTION_AUTH_TOKEN", "dt0c01.CONN")]);
        assert_eq!(auth(&d, "authorization"), "Api-Token dt0c01.CONN");
        let both = [
            base,
            ("DT_CONNECTION_AUTH_TOKEN", "dt0c01.CONN"),
            ("DT_LOG_COLLECTION_AUTH_TOKEN", "dt0c01.LOG"),
        ];
        assert_eq!(auth(&one(&both), "authorization"), "Api-Token dt0c01.LOG");
        let err = destinations(&[base]).unwrap_err().to_string();
        assert_eq!(
            err,
            "DT_CONNECTION_BASE_URL is set but DT_LOG_COLLECTION_AUTH_TOKEN (or DT_CONNECTION_AUTH_TOKEN) is not"
        );
        let err = destinations(&[("DT_CONNECTION_BASE_URL", "abc.live.dynatrace.com")])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "DT_CONNECTION_BASE_URL: not an http(s) URL");
    }

    #[test]
    fn otlp_in_every_documented_form() {
        let d = one(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]);
        assert_eq!(d.url, "http://collector:4318/v1/logs");
        assert_eq!(d.compression, Compression::Gzip);
        let d = one(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "https://logs.example/ingest"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%3Db"),
            ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "x-tenant=t1"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
            ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "2500"),
        ]);
        assert_eq!(d.url, "https://logs.example/ingest");
        assert_eq!(auth(&d, "x-tenant"), "t1");
        assert!(d.headers.get("api-key").is_none(), "the per-signal headers win");
        assert_eq!(d.compression, Compression::None);
        assert_eq!(d.timeout, Duration::from_millis(2500));
    }

    #[test]
    fn datadog_in_every_documented_form() {
        let key = ("DD_API_KEY", "dd-key");
        let d = one(&[key]);
        assert_eq!(d.url, "https://http-intake.logs.datadoghq.com/api/v2/logs");
        assert_eq!(auth(&d, "dd-api-key"), "dd-key");
        assert!(!format!("{d:?}").contains("dd-key"));
        assert_eq!(d.compression, Compression::GzipLevel(dd_agent::DEFAULT_LEVEL));
        let d = one(&[key, ("DD_SITE", "us5.datadoghq.com")]);
        assert_eq!(d.url, "https://http-intake.logs.us5.datadoghq.com/api/v2/logs");
        for (address, no_ssl, want) in [
            (
                "agent-http-intake.logs.datadoghq.com:443",
                "",
                "https://agent-http-intake.logs.datadoghq.com/api/v2/logs",
            ),
            ("10.0.0.5:8282", "true", "http://10.0.0.5:8282/api/v2/logs"),
            ("http://10.0.0.5:8282", "", "http://10.0.0.5:8282/api/v2/logs"),
            (
                "https://intake.example/api/v2/logs",
                "",
                "https://intake.example/api/v2/logs",
            ),
        ] {
            let d = one(&[
                key,
                (dd_agent::URL, address),
                (dd_agent::NO_SSL, no_ssl),
                ("DD_SITE", "ignored.example"),
            ]);
            assert_eq!(d.url, want, "{address}");
        }
        let d = one(&[key, (dd_agent::USE_COMPRESSION, "false")]);
        assert_eq!(d.compression, Compression::None);
        let d = one(&[key, (dd_agent::COMPRESSION_LEVEL, "6")]);
        assert_eq!(d.compression, Compression::GzipLevel(6));
        let err = destinations(&[key, (dd_agent::COMPRESSION_LEVEL, "12")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "DD_LOGS_CONFIG_COMPRESSION_LEVEL: expected a gzip level from 0 to 9"
        );
        let err = destinations(&[(dd_agent::URL, "10.0.0.5:8282")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "DD_LOGS_CONFIG_LOGS_DD_URL is set but DD_API_KEY is not"
        );
    }
}
