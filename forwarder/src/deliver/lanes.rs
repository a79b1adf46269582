//! The telemetry lanes (docs/formats.md, section 9): beside the log destinations, for each configured
//! backend, a lane of finished invocations. With metrics on (`TRACEHOSE_LAMBDA_METRICS`): OTLP `/v1/metrics`
//! (`OTEL_EXPORTER_OTLP_METRICS_*`, else the generic variables), Dynatrace's `{base}/api/v2/otlp/v1/metrics`
//! and Datadog's distribution points (`DD_DD_URL`, else `https://api.{DD_SITE}`). With invocation spans
//! (`TRACEHOSE_INVOCATION_SPANS` not `off`): OTLP `/v1/traces` and Dynatrace's `{base}/api/v2/otlp/v1/traces`.
//! Dynatrace's metrics and traces take `DT_CONNECTION_AUTH_TOKEN` only: the log token cannot ingest them.

use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderName};
use tracehose_export::config::{dynatrace_from_env, otlp_from_env, ConfigError as ExportConfigError};
use tracehose_export::{Compression, Destination, Signal};

use super::config::{http, secret_header, ConfigError, DEFAULT_TIMEOUT};
use super::dd_agent;
use super::encode::datadog::DatadogSettings;
use super::encode::dd_metrics::DatadogMetricsEncoder;
use super::encode::otlp::OtlpSettings;
use super::encode::otlp_metrics::OtlpMetricsEncoder;
use super::encode::otlp_spans::OtlpSpansEncoder;
use super::encode::InvocationEncoder;
use super::sender::{HttpDestination, LaneEncoder};
use crate::telemetry::SpanMode;

/// The telemetry lanes `telemetry` asks for, for each configured backend. A backend whose logs are configured
/// but whose telemetry needs more (Dynatrace without `DT_CONNECTION_AUTH_TOKEN`) is left out when telemetry
/// is on by default, and an error naming what is missing when it was asked for
/// (`TRACEHOSE_LAMBDA_METRICS`, `TRACEHOSE_INVOCATION_SPANS` set).
pub(super) fn telemetry_lanes(
    lookup: &dyn Fn(&str) -> Option<String>,
    telemetry: &crate::telemetry::Settings,
) -> Result<Vec<HttpDestination>, ConfigError> {
    let metrics = telemetry.metrics;
    let spans = telemetry.spans != SpanMode::Off;
    let asked = |var: &str| lookup(var).is_some();
    let mut lanes = Vec::new();
    if !metrics && !spans {
        return Ok(lanes);
    }
    let otlp_settings = || OtlpSettings::from_lookup(lookup);
    for (on, signal, asked_var) in [
        (metrics, Signal::Metrics, "TRACEHOSE_LAMBDA_METRICS"),
        (spans, Signal::Traces, "TRACEHOSE_INVOCATION_SPANS"),
    ] {
        if !on {
            continue;
        }
        let dynatrace = match dynatrace_from_env(signal, lookup) {
            Ok(destination) => destination,
            Err(ExportConfigError::Incomplete { .. }) if !asked(asked_var) => None,
            Err(err) => return Err(err.into()),
        };
        for (backend, destination) in [("otlp", otlp_from_env(signal, lookup)?), ("dynatrace", dynatrace)] {
            let Some(destination) = destination else {
                continue;
            };
            let (name, encoder) = otlp_lane(signal, backend, otlp_settings()?, destination.max_body_bytes);
            let max_body_bytes = encoder.limits().max_body_bytes;
            lanes.push(HttpDestination {
                destination: Destination {
                    name,
                    max_body_bytes,
                    ..destination
                },
                encoder: LaneEncoder::Invocations(encoder),
            });
        }
    }
    if metrics {
        if let Some(d) = datadog_metrics(lookup)? {
            lanes.push(d);
        }
    }
    Ok(lanes)
}

/// An OTLP encoder of `signal` for `backend` (`otlp`, `dynatrace`), and its ledger name.
fn otlp_lane(
    signal: Signal,
    backend: &str,
    settings: OtlpSettings,
    max_body_bytes: usize,
) -> (&'static str, Arc<dyn InvocationEncoder>) {
    let name = match (backend, signal) {
        ("dynatrace", Signal::Traces) => "dynatrace-traces",
        ("dynatrace", _) => "dynatrace-metrics",
        (_, Signal::Traces) => "otlp-traces",
        _ => "otlp-metrics",
    };
    let encoder: Arc<dyn InvocationEncoder> = match signal {
        Signal::Traces => Arc::new(OtlpSpansEncoder::new(name, settings, max_body_bytes)),
        _ => Arc::new(OtlpMetricsEncoder::new(name, settings, max_body_bytes)),
    };
    (name, encoder)
}

/// Datadog distribution points, when `DD_API_KEY` is set (see [`dd_agent::metrics_url`]).
fn datadog_metrics(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<HttpDestination>, ConfigError> {
    const KEY: &str = "DD_API_KEY";
    let Some(key) = lookup(KEY) else {
        return Ok(None);
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("dd-api-key"),
        secret_header(KEY, key.trim().to_owned())?,
    );
    let encoder: Arc<dyn InvocationEncoder> =
        Arc::new(DatadogMetricsEncoder::new(&DatadogSettings::from_lookup(lookup)?));
    Ok(Some(http(
        LaneEncoder::Invocations(encoder),
        dd_agent::metrics_url(lookup)?,
        headers,
        Compression::Gzip,
        DEFAULT_TIMEOUT,
    )))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::deliver::config::{ConfigError, Destinations};
    use crate::deliver::secrets::Settings;
    use crate::telemetry::{Origin, SpanMode};

    fn destinations(pairs: &[(&str, &str)]) -> Result<Destinations, ConfigError> {
        Destinations::from_settings(&Settings::from_pairs(pairs.iter().copied()))
    }

    /// Every telemetry lane `pairs` configure: `(name, url, header holding the credential)`.
    fn lanes(pairs: &[(&str, &str)]) -> Vec<(&'static str, String, Option<String>)> {
        let found = destinations(pairs).unwrap();
        found
            .http
            .iter()
            .filter(|d| !d.carries_lines())
            .map(|d| {
                assert_eq!(d.destination.name, d.wire().name());
                let credential = ["authorization", "dd-api-key", "x-tenant"]
                    .iter()
                    .find_map(|h| d.destination.headers.get(*h))
                    .map(|v| v.to_str().unwrap().to_owned());
                (d.wire().name(), d.destination.url.clone(), credential)
            })
            .collect()
    }

    #[test]
    fn telemetry_lanes_follow_the_destinations_and_settings() {
        let dt = [
            ("DT_CONNECTION_BASE_URL", "https://abc.live.dynatrace.com"),
            ("DT_CONNECTION_AUTH_TOKEN", "dt0c01.CONN"),
            ("DT_LOG_COLLECTION_AUTH_TOKEN", "dt0c01.LOG"),
        ];
        let auth = Some("Api-Token dt0c01.CONN".to_owned());
        assert_eq!(
            lanes(&dt),
            [
                (
                    "dynatrace-metrics",
                    "https://abc.live.dynatrace.com/api/v2/otlp/v1/metrics".to_owned(),
                    auth.clone()
                ),
                (
                    "dynatrace-traces",
                    "https://abc.live.dynatrace.com/api/v2/otlp/v1/traces".to_owned(),
                    auth
                ),
            ]
        );
        // The log token alone cannot ingest metrics or traces: left out by default, an error when asked for.
        let log_only = [dt[0], dt[2]];
        assert!(lanes(&log_only).is_empty());
        for asked in [
            ("TRACEHOSE_LAMBDA_METRICS", "on"),
            ("TRACEHOSE_INVOCATION_SPANS", "all"),
        ] {
            let err = destinations(&[log_only[0], log_only[1], asked])
                .unwrap_err()
                .to_string();
            assert!(err.contains("DT_CONNECTION_AUTH_TOKEN"), "{asked:?}: {err}");
        }

        let otlp = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=t1"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://traces.example/in"),
        ];
        assert_eq!(
            lanes(&otlp),
            [
                (
                    "otlp-metrics",
                    "http://collector:4318/v1/metrics".to_owned(),
                    Some("t1".to_owned())
                ),
                (
                    "otlp-traces",
                    "https://traces.example/in".to_owned(),
                    Some("t1".to_owned())
                ),
            ]
        );
        let off = [
            otlp[0],
            ("TRACEHOSE_LAMBDA_METRICS", "off"),
            ("TRACEHOSE_INVOCATION_SPANS", "off"),
        ];
        assert!(lanes(&off).is_empty());
        let spans_off = [otlp[0], ("TRACEHOSE_INVOCATION_SPANS", "off")];
        assert_eq!(lanes(&spans_off).len(), 1);

        let dd = [("DD_API_KEY", "dd-key"), ("DD_SITE", "datadoghq.eu")];
        assert_eq!(
            lanes(&dd),
            [(
                "datadog-metrics",
                "https://api.datadoghq.eu/api/v1/distribution_points".to_owned(),
                Some("dd-key".to_owned())
            )]
        );
        let dd_url = [dd[0], ("DD_DD_URL", "http://127.0.0.1:9000")];
        assert_eq!(
            lanes(&dd_url)[0].1,
            "http://127.0.0.1:9000/api/v1/distribution_points"
        );
        let err = destinations(&[("DD_DD_URL", "http://127.0.0.1:9000")]).unwrap_err();
        assert_eq!(err.to_string(), "DD_DD_URL is set but DD_API_KEY is not");

        // Only logs to stdout: no telemetry unless asked, and stdout stays the default for the logs.
        let none = destinations(&[]).unwrap();
        assert!(none.http.is_empty() && none.stdout);
        let only_metrics = destinations(&[
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "http://m.example/v1/metrics",
            ),
            ("TRACEHOSE_LAMBDA_METRICS", "on"),
            ("TRACEHOSE_INVOCATION_SPANS", "off"),
        ])
        .unwrap();
        assert_eq!(only_metrics.names(), ["otlp-metrics", "stdout"]);
    }

    /// Logs read again (`process`, `replay`) make no telemetry unless a setting asks: their metrics were
    /// likely sent when the logs first went by.
    #[test]
    fn logs_read_again_make_telemetry_only_when_asked() {
        let reprocessed = |pairs: &[(&str, &str)]| {
            let settings = Settings::from_pairs(pairs.iter().copied());
            Destinations::from_settings_for(&settings, Origin::Reprocessed).unwrap()
        };
        let all = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("DD_API_KEY", "dd-key"),
            ("DT_CONNECTION_BASE_URL", "https://abc.live.dynatrace.com"),
            ("DT_CONNECTION_AUTH_TOKEN", "dt0c01.CONN"),
        ];
        let quiet = reprocessed(&all);
        assert_eq!(quiet.names(), ["dynatrace", "otlp", "datadog"]);
        assert!(!quiet.telemetry.metrics);
        assert_eq!(quiet.telemetry.spans, SpanMode::Off);
        assert_eq!(lanes(&all).len(), 5, "live logs make all five by default");

        let asked = reprocessed(&[
            all[0],
            ("TRACEHOSE_LAMBDA_METRICS", "on"),
            ("TRACEHOSE_INVOCATION_SPANS", "xray"),
        ]);
        assert_eq!(asked.names(), ["otlp", "otlp-metrics", "otlp-traces"]);
        assert!(asked.telemetry.metrics);
        assert_eq!(asked.telemetry.spans, SpanMode::Xray);
    }
}
