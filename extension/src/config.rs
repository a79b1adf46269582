//! The extension's configuration, read once at start from the environment. A mistake never stops the
//! function: the extension reports it (naming the variable) and goes on without the affected feature,
//! because an extension that fails init takes the whole function down with it.

use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use tracehose_export::config::destinations_from_env;
use tracehose_export::{Destination, Signal};

use crate::otlp::{int_attr, str_attr};

const DEFAULT_BUFFER_BYTES: u64 = 2 * 1024 * 1024;
const MAX_BUFFER_BYTES: u64 = 64 * 1024 * 1024;
/// Lambda's largest memory setting is 10,240 MB; this leaves room for whatever comes next.
const MAX_MEMORY_MB: u64 = 1024 * 1024;
/// The OTLP exporter default (`OTEL_EXPORTER_OTLP_TIMEOUT`).
const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// A whole number a variable must hold, and the default used when it does not.
#[derive(Debug, Clone, Copy)]
struct NumberRange {
    name: &'static str,
    default: u64,
    min: u64,
    max: u64,
    why: &'static str,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NumberError {
    #[error("{name}: {value:?} is not a whole number; using {default}")]
    NotANumber {
        name: &'static str,
        value: String,
        default: u64,
    },
    #[error("{name}: {value} is outside {min}..={max}{why}; using {default}")]
    OutOfRange {
        name: &'static str,
        value: u64,
        min: u64,
        max: u64,
        why: String,
        default: u64,
    },
}

impl NumberRange {
    fn new(name: &'static str, default: u64, min: u64, max: u64) -> Self {
        Self {
            name,
            default,
            min,
            max,
            why: "",
        }
    }

    fn because(self, why: &'static str) -> Self {
        Self { why, ..self }
    }

    /// The value, `default` when unset. Values past `u64` fail to parse and are reported like any other.
    fn check(&self, raw: Option<&str>) -> Result<u64, NumberError> {
        let Some(raw) = raw else {
            return Ok(self.default);
        };
        let value = raw.parse::<u64>().map_err(|_| NumberError::NotANumber {
            name: self.name,
            value: raw.chars().take(32).collect(),
            default: self.default,
        })?;
        if (self.min..=self.max).contains(&value) {
            return Ok(value);
        }
        Err(NumberError::OutOfRange {
            name: self.name,
            value,
            min: self.min,
            max: self.max,
            why: if self.why.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.why)
            },
            default: self.default,
        })
    }
}

/// Which flush strategy to use; `Auto` switches between the other two by invocation frequency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushStrategy {
    Auto,
    End,
    Periodic,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `AWS_LAMBDA_RUNTIME_API`, possibly with a path prefix (`cargo lambda` serves the API under `/.rt`).
    pub runtime_api: String,
    pub extension_name: String,
    pub telemetry_port: u16,
    /// The host Lambda can reach the listener at; the listener itself binds every interface.
    pub telemetry_host: String,
    /// `None` disables the local OTLP receiver.
    pub receiver_port: Option<u16>,
    pub ship_logs: bool,
    pub flush_strategy: FlushStrategy,
    /// Hard budget for the flush at the end of an invocation: the most the extension adds to it.
    pub flush_timeout: Duration,
    pub flush_interval: Duration,
    pub buffer_bytes: usize,
    pub traces: Vec<Destination>,
    pub logs: Vec<Destination>,
    pub resource: Vec<KeyValue>,
    pub function_name: String,
    pub function_version: String,
    pub region: String,
    pub memory_mb: Option<u64>,
    pub verbose: bool,
    /// Configuration mistakes found, each naming its variable; printed at start.
    pub errors: Vec<String>,
}

impl Config {
    pub fn from_env() -> Self {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    pub fn from_lookup(env: &dyn Fn(&str) -> Option<String>) -> Self {
        let mut errors = Vec::new();
        let get = |name: &str| env(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        // Lambda's own; an absurd value is ignored rather than trusted to size the buffers below.
        let memory_mb = match get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").map(|v| v.parse::<u64>()) {
            None => None,
            Some(Ok(mb)) if (1..=MAX_MEMORY_MB).contains(&mb) => Some(mb),
            Some(_) => {
                errors.push(format!(
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE: not a size in MB from 1 to {MAX_MEMORY_MB}; ignored"
                ));
                None
            }
        };
        let mut number = |range: NumberRange| -> u64 {
            match range.check(get(range.name).as_deref()) {
                Ok(value) => value,
                Err(error) => {
                    errors.push(error.to_string());
                    range.default
                }
            }
        };
        let telemetry_port = number(NumberRange::new("TRACEHOSE_TELEMETRY_PORT", 4323, 0, 65535)) as u16;
        let receiver_port = number(
            NumberRange::new("TRACEHOSE_OTLP_RECEIVER_PORT", 4318, 1, 65535)
                .because("the function must know the port to send to"),
        ) as u16;
        let flush_timeout = Duration::from_millis(number(
            NumberRange::new("TRACEHOSE_FLUSH_TIMEOUT_MS", 80, 1, 60_000)
                .because("0 would never flush at the end of an invocation"),
        ));
        let flush_interval = Duration::from_millis(number(
            NumberRange::new("TRACEHOSE_FLUSH_INTERVAL_MS", 10_000, 100, 3_600_000)
                .because("shorter would flush on every invocation"),
        ));
        // Every buffer (spans, logs, each destination's queue) may hold this much: a sixteenth of the
        // function's memory at most.
        let buffer_max = memory_mb.map_or(MAX_BUFFER_BYTES, |mb| {
            (mb.saturating_mul(1024 * 1024) / 16).clamp(DEFAULT_BUFFER_BYTES, MAX_BUFFER_BYTES)
        });
        let buffer_bytes = number(
            NumberRange::new(
                "TRACEHOSE_BUFFER_BYTES",
                DEFAULT_BUFFER_BYTES,
                64 * 1024,
                buffer_max,
            )
            .because("at most 1/16 of the function's memory, at least room for one invocation's spans"),
        ) as usize;

        let mut flag = |name: &str| match get(name).map(|v| v.to_ascii_lowercase()) {
            None => false,
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => true,
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => false,
            Some(_) => {
                errors.push(format!("{name}: expected true or false; using false"));
                false
            }
        };
        let ship_logs = flag("TRACEHOSE_SHIP_LOGS");
        let verbose = flag("TRACEHOSE_DEBUG");
        let receiver_disabled = flag("TRACEHOSE_OTLP_RECEIVER_DISABLED");

        let flush_strategy = match get("TRACEHOSE_FLUSH_STRATEGY").map(|v| v.to_ascii_lowercase()) {
            None => FlushStrategy::Auto,
            Some(v) if v == "auto" => FlushStrategy::Auto,
            Some(v) if v == "end" => FlushStrategy::End,
            Some(v) if v == "periodic" => FlushStrategy::Periodic,
            Some(_) => {
                errors.push("TRACEHOSE_FLUSH_STRATEGY: expected auto, end or periodic; using auto".into());
                FlushStrategy::Auto
            }
        };

        // The export crate refuses a timeout it cannot use, and with it the whole destination. A mistake never
        // costs the extension a feature it can keep: a zero timeout is reported here and hidden, so that the
        // exporter's default applies.
        let zero_timeouts: Vec<&str> = [
            "OTEL_EXPORTER_OTLP_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
        ]
        .into_iter()
        .filter(|var| get(var).is_some_and(|v| v.parse::<u64>() == Ok(0)))
        .collect();
        for var in &zero_timeouts {
            errors.push(format!(
                "{var}: 0 would fail every export; using {} ms",
                DEFAULT_EXPORT_TIMEOUT.as_millis()
            ));
        }
        let export_env = |name: &str| {
            if zero_timeouts.contains(&name) {
                None
            } else {
                env(name)
            }
        };
        let (traces, trace_errors) = destinations_from_env(Signal::Traces, &export_env);
        let (logs, log_errors) = if ship_logs {
            destinations_from_env(Signal::Logs, &export_env)
        } else {
            (Vec::new(), Vec::new())
        };
        errors.extend(trace_errors.iter().map(ToString::to_string));
        errors.extend(log_errors.iter().map(ToString::to_string));

        let function_name = get("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
        let function_version = get("AWS_LAMBDA_FUNCTION_VERSION").unwrap_or_default();
        let region = get("AWS_REGION").unwrap_or_default();
        let service = get("OTEL_SERVICE_NAME").unwrap_or_else(|| {
            if function_name.is_empty() {
                "unknown_service".into()
            } else {
                function_name.clone()
            }
        });
        let mut resource = vec![
            str_attr("service.name", &service),
            str_attr("cloud.provider", "aws"),
            str_attr("cloud.platform", "aws_lambda"),
            str_attr("telemetry.sdk.name", "tracehose-extension"),
            str_attr("telemetry.sdk.language", "rust"),
            str_attr("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
        ];
        if !region.is_empty() {
            resource.push(str_attr("cloud.region", &region));
        }
        if !function_name.is_empty() {
            resource.push(str_attr("faas.name", &function_name));
        }
        if !function_version.is_empty() {
            resource.push(str_attr("faas.version", &function_version));
        }
        if let Some(mb) = memory_mb {
            resource.push(int_attr("faas.max_memory", mb.saturating_mul(1024 * 1024)));
        }
        match get("OTEL_RESOURCE_ATTRIBUTES").map(|v| parse_resource_attributes(&v)) {
            Some(Ok(extra)) => {
                for (key, value) in extra {
                    resource.retain(|kv| kv.key != key || key == "service.name");
                    if key != "service.name" {
                        resource.push(str_attr(&key, &value));
                    }
                }
            }
            Some(Err(index)) => errors.push(format!(
                "OTEL_RESOURCE_ATTRIBUTES: entry {index} is not key=value; ignoring the variable"
            )),
            None => {}
        }

        Self {
            runtime_api: get("AWS_LAMBDA_RUNTIME_API").unwrap_or_default(),
            extension_name: extension_name(),
            telemetry_port,
            telemetry_host: get("TRACEHOSE_TELEMETRY_HOST").unwrap_or_else(|| "sandbox.localdomain".into()),
            receiver_port: (!receiver_disabled).then_some(receiver_port),
            ship_logs,
            flush_strategy,
            flush_timeout,
            flush_interval,
            buffer_bytes,
            traces,
            logs,
            resource,
            function_name,
            function_version,
            region,
            memory_mb,
            verbose,
            errors,
        }
    }
}

/// Lambda requires the registered name to equal the executable's file name.
fn extension_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .map(std::path::Path::new)
        .and_then(std::path::Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tracehose-extension".into())
}

/// `k1=v1,k2=v2` with percent-encoded values; `Err(index)` of the first malformed entry.
fn parse_resource_attributes(value: &str) -> Result<Vec<(String, String)>, usize> {
    value
        .split(',')
        .enumerate()
        .filter(|(_, e)| !e.trim().is_empty())
        .map(|(i, entry)| {
            let (k, v) = entry.split_once('=').ok_or(i)?;
            let k = k.trim();
            if k.is_empty() {
                return Err(i);
            }
            Ok((k.to_owned(), percent_decode(v.trim()).ok_or(i)?))
        })
        .collect()
}

fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(&move |name| map.get(name).cloned())
    }

    fn attr<'a>(c: &'a Config, key: &str) -> Option<&'a KeyValue> {
        c.resource.iter().find(|kv| kv.key == key)
    }

    #[test]
    fn defaults_and_resource() {
        let c = config(&[
            ("AWS_LAMBDA_FUNCTION_NAME", "orders"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=prod%20eu,service.name=ignored",
            ),
        ]);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.receiver_port, Some(4318));
        assert_eq!(c.flush_timeout, Duration::from_millis(80));
        assert_eq!(c.flush_strategy, FlushStrategy::Auto);
        assert!(!c.ship_logs);
        assert!(c.traces.is_empty());
        assert!(attr(&c, "faas.name").is_some());
        assert!(attr(&c, "deployment.environment").is_some());
        let service = attr(&c, "service.name").unwrap();
        assert_eq!(service, &str_attr("service.name", "orders"));
        assert_eq!(
            attr(&c, "faas.max_memory"),
            Some(&int_attr("faas.max_memory", 128 * 1024 * 1024))
        );
    }

    #[test]
    fn mistakes_are_reported_by_name_and_do_not_stop_the_rest() {
        let c = config(&[
            ("TRACEHOSE_FLUSH_TIMEOUT_MS", "soon"),
            ("TRACEHOSE_SHIP_LOGS", "maybe"),
            ("TRACEHOSE_FLUSH_STRATEGY", "sometimes"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("DT_CONNECTION_BASE_URL", "https://x.example"),
        ]);
        assert_eq!(c.errors.len(), 4, "{:?}", c.errors);
        assert!(c.errors[0].starts_with("TRACEHOSE_FLUSH_TIMEOUT_MS"));
        assert_eq!(c.traces.len(), 1);
        assert_eq!(c.flush_timeout, Duration::from_millis(80));
    }

    /// The `DT_*` variables read as the forwarder reads them (both through `tracehose_export`): logs prefer
    /// `DT_LOG_COLLECTION_AUTH_TOKEN`, traces need `DT_CONNECTION_AUTH_TOKEN`, and a secret variable whose
    /// secret was not read is named, never replaced by the other token.
    #[test]
    fn dynatrace_variables_in_every_form() {
        let base = ("DT_CONNECTION_BASE_URL", "https://abc.live.dynatrace.com/");
        let conn = ("DT_CONNECTION_AUTH_TOKEN", "dt0c01.CONN");
        let log = ("DT_LOG_COLLECTION_AUTH_TOKEN", "dt0c01.LOG");
        let ship = ("TRACEHOSE_SHIP_LOGS", "true");
        let auth = |d: &Destination| d.headers["authorization"].to_str().unwrap().to_owned();

        let c = config(&[base, conn]);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(
            c.traces[0].url,
            "https://abc.live.dynatrace.com/api/v2/otlp/v1/traces"
        );
        assert_eq!(auth(&c.traces[0]), "Api-Token dt0c01.CONN");

        let c = config(&[base, conn, log, ship]);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(
            c.logs[0].url,
            "https://abc.live.dynatrace.com/api/v2/otlp/v1/logs"
        );
        assert_eq!(auth(&c.logs[0]), "Api-Token dt0c01.LOG");
        assert_eq!(auth(&c.traces[0]), "Api-Token dt0c01.CONN");

        let c = config(&[base, conn, ship]);
        assert_eq!(auth(&c.logs[0]), "Api-Token dt0c01.CONN");

        let c = config(&[base, log, ship]);
        assert_eq!(auth(&c.logs[0]), "Api-Token dt0c01.LOG");
        assert!(c.traces.is_empty());
        assert_eq!(
            c.errors,
            ["DT_CONNECTION_BASE_URL is set but DT_CONNECTION_AUTH_TOKEN (DT_LOG_COLLECTION_AUTH_TOKEN ingests logs only) is not"]
        );

        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:t";
        let c = config(&[base, conn, ship, ("DT_LOG_COLLECTION_AUTH_TOKEN_SECRET_ARN", arn)]);
        assert!(c.logs.is_empty());
        assert_eq!(c.traces.len(), 1);
        assert_eq!(
            c.errors,
            ["DT_LOG_COLLECTION_AUTH_TOKEN_SECRET_ARN is set but the secret it names was not read into DT_LOG_COLLECTION_AUTH_TOKEN"]
        );
        for secret in [
            "DT_CONNECTION_AUTH_TOKEN_SECRET_ARN",
            "DT_CONNECTION_AUTH_TOKEN_SECRETS_MANAGER_ARN",
        ] {
            let c = config(&[base, (secret, arn)]);
            assert!(c.traces.is_empty());
            assert!(c.errors[0].starts_with(secret), "{:?}", c.errors);
        }
    }

    /// Zero, the largest u64, one past it, negative and empty-looking values: each refused by name, with
    /// the default in force.
    #[test]
    fn extreme_numbers_are_refused_by_name_and_defaults_run() {
        let c = config(&[
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("TRACEHOSE_BUFFER_BYTES", "0"),
            ("TRACEHOSE_FLUSH_INTERVAL_MS", "0"),
            ("TRACEHOSE_FLUSH_TIMEOUT_MS", "18446744073709551615"),
            ("TRACEHOSE_OTLP_RECEIVER_PORT", "0"),
            ("TRACEHOSE_TELEMETRY_PORT", "18446744073709551616"),
        ]);
        let named: Vec<&str> = c.errors.iter().filter_map(|e| e.split(':').next()).collect();
        assert_eq!(
            named,
            [
                "TRACEHOSE_TELEMETRY_PORT",
                "TRACEHOSE_OTLP_RECEIVER_PORT",
                "TRACEHOSE_FLUSH_TIMEOUT_MS",
                "TRACEHOSE_FLUSH_INTERVAL_MS",
                "TRACEHOSE_BUFFER_BYTES"
            ],
            "{:?}",
            c.errors
        );
        assert_eq!(c.buffer_bytes, 2 * 1024 * 1024);
        assert_eq!(c.flush_interval, Duration::from_secs(10));
        assert_eq!(c.flush_timeout, Duration::from_millis(80));
        assert_eq!(c.receiver_port, Some(4318));
        assert_eq!(c.telemetry_port, 4323);

        // The buffer follows the function's memory: 64 MiB is too much for 128 MB, fine for 2 GB.
        let small = config(&[
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("TRACEHOSE_BUFFER_BYTES", "67108864"),
        ]);
        assert!(
            small.errors[0].contains("outside 65536..=8388608"),
            "{:?}",
            small.errors
        );
        let large = config(&[
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048"),
            ("TRACEHOSE_BUFFER_BYTES", "67108864"),
        ]);
        assert!(large.errors.is_empty(), "{:?}", large.errors);
        assert_eq!(large.buffer_bytes, 64 * 1024 * 1024);

        let odd = config(&[
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "0"),
            ("TRACEHOSE_FLUSH_INTERVAL_MS", "-5"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "0"),
        ]);
        assert_eq!(odd.errors.len(), 3, "{:?}", odd.errors);
        assert!(odd.errors[0].starts_with("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"));
        assert!(odd.errors[1].starts_with("TRACEHOSE_FLUSH_INTERVAL_MS: \"-5\""));
        assert!(odd.errors[2].starts_with("OTEL_EXPORTER_OTLP_TIMEOUT"));
        assert_eq!(odd.memory_mb, None);
        assert_eq!(odd.traces[0].timeout, DEFAULT_EXPORT_TIMEOUT);
    }
}
