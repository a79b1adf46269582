//! Destinations from environment variables, read through a lookup function so tests and other callers need
//! not touch the process environment.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// Which OTLP signal a destination receives: decides the URL path and the per-signal variable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Logs,
}

impl Signal {
    fn path(self) -> &'static str {
        match self {
            Signal::Traces => "v1/traces",
            Signal::Logs => "v1/logs",
        }
    }

    fn env_infix(self) -> &'static str {
        match self {
            Signal::Traces => "TRACES",
            Signal::Logs => "LOGS",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    /// gzip at level 1: most of the size gain for a fraction of the CPU time, which is billed on Lambda.
    Gzip,
    /// gzip at a level from 0 to 9 the user chose (the Datadog Agent's `DD_LOGS_CONFIG_COMPRESSION_LEVEL`).
    GzipLevel(u32),
}

/// One place to POST a signal to, fully resolved.
#[derive(Clone)]
pub struct Destination {
    /// Short name for diagnostics (`otlp`, `dynatrace`); never contains a secret.
    pub name: &'static str,
    pub url: String,
    pub headers: HeaderMap,
    pub compression: Compression,
    /// Per-request cap; the caller's deadline can only shorten it.
    pub timeout: Duration,
    /// The largest (encoded) body this backend accepts.
    pub max_body_bytes: usize,
}

impl std::fmt::Debug for Destination {
    /// Headers carry tokens: show only their names.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("compression", &self.compression)
            .field("timeout", &self.timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

/// A configuration mistake, naming the variable; never quoting a secret value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{var}: not an http(s) URL")]
    BadUrl { var: String },
    #[error("{var}: entry {index} is not `key=value` with a valid header name and value")]
    BadHeader { var: String, index: usize },
    #[error("{var}: unsupported compression {value:?} (use gzip or none)")]
    BadCompression { var: String, value: String },
    #[error("{var}: unsupported protocol {value:?} (only http/protobuf is implemented)")]
    BadProtocol { var: String, value: String },
    #[error("{var}: not a positive number of milliseconds")]
    BadTimeout { var: String },
    #[error("{var} is set but {missing} is not")]
    Incomplete { var: String, missing: String },
    /// The caller resolves `*_SECRET_ARN` variables into the variables they name before calling this module;
    /// this one was not (the secret could not be read, or the caller does not resolve secrets).
    #[error("{var} is set but the secret it names was not read into {target}")]
    SecretUnresolved { var: String, target: String },
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The OTLP specification sets no size limit; 4 MiB keeps one request inside common collector defaults.
const OTLP_MAX_BODY: usize = 4 * 1024 * 1024;

/// The generic OTLP destination, from `OTEL_EXPORTER_OTLP_{SIGNAL_}{ENDPOINT,HEADERS,COMPRESSION,TIMEOUT,PROTOCOL}`.
/// `None` when no endpoint is configured. The per-signal endpoint is used as is (the specification says so);
/// the generic one gets `/v1/<signal>` appended. Compression defaults to gzip, which every OTLP/HTTP receiver
/// must accept and which cuts Lambda's egress time.
pub fn otlp_from_env(
    signal: Signal,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Destination>, ConfigError> {
    let specific = |suffix: &str| format!("OTEL_EXPORTER_OTLP_{}_{suffix}", signal.env_infix());
    let generic = |suffix: &str| format!("OTEL_EXPORTER_OTLP_{suffix}");
    let pick = |suffix: &str| -> Option<(String, String)> {
        let names = [specific(suffix), generic(suffix)];
        names
            .into_iter()
            .find_map(|name| non_empty(env(&name)).map(|value| (name, value)))
    };

    let url = if let Some(url) = non_empty(env(&specific("ENDPOINT"))) {
        check_url(&specific("ENDPOINT"), url)?
    } else if let Some(base) = non_empty(env(&generic("ENDPOINT"))) {
        join_path(&check_url(&generic("ENDPOINT"), base)?, signal.path())
    } else {
        return Ok(None);
    };

    if let Some((var, value)) = pick("PROTOCOL") {
        if value != "http/protobuf" {
            return Err(ConfigError::BadProtocol { var, value });
        }
    }
    let headers = match pick("HEADERS") {
        Some((var, value)) => parse_headers(&var, &value)?,
        None => HeaderMap::new(),
    };
    let compression = match pick("COMPRESSION") {
        Some((var, value)) => parse_compression(&var, &value)?,
        None => Compression::Gzip,
    };
    let timeout = match pick("TIMEOUT") {
        Some((var, value)) => value
            .trim()
            .parse::<u64>()
            .ok()
            // A timeout of zero would fail every export: refused like any other unusable value.
            .filter(|&ms| ms > 0)
            .map(Duration::from_millis)
            .ok_or(ConfigError::BadTimeout { var })?,
        None => DEFAULT_TIMEOUT,
    };
    Ok(Some(Destination {
        name: "otlp",
        url,
        headers,
        compression,
        timeout,
        max_body_bytes: OTLP_MAX_BODY,
    }))
}

/// Dynatrace's OTLP endpoint, `{DT_CONNECTION_BASE_URL}/api/v2/otlp/v1/<signal>` with `Api-Token` auth.
/// Dynatrace accepts protobuf only; payload limits are 8 MB for traces and 2 MB for logs.
pub fn dynatrace_from_env(
    signal: Signal,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Destination>, ConfigError> {
    const BASE: &str = "DT_CONNECTION_BASE_URL";
    const TOKEN: &str = "DT_CONNECTION_AUTH_TOKEN";
    for var in [
        "DT_CONNECTION_AUTH_TOKEN_SECRET_ARN",
        "DT_CONNECTION_AUTH_TOKEN_SECRETS_MANAGER_ARN",
    ] {
        if non_empty(env(var)).is_some() && non_empty(env(TOKEN)).is_none() {
            return Err(ConfigError::SecretUnresolved {
                var: var.into(),
                target: TOKEN.into(),
            });
        }
    }
    let Some(base) = non_empty(env(BASE)) else {
        return Ok(None);
    };
    let base = check_url(BASE, base)?;
    let token = non_empty(env(TOKEN)).ok_or_else(|| ConfigError::Incomplete {
        var: BASE.into(),
        missing: TOKEN.into(),
    })?;
    let mut headers = HeaderMap::new();
    let auth = HeaderValue::from_str(&format!("Api-Token {}", token.trim())).map_err(|_| {
        ConfigError::BadHeader {
            var: TOKEN.into(),
            index: 0,
        }
    })?;
    headers.insert(reqwest::header::AUTHORIZATION, mark_sensitive(auth));
    let max_body_bytes = match signal {
        Signal::Traces => 8_000_000,
        Signal::Logs => 2_000_000,
    };
    Ok(Some(Destination {
        name: "dynatrace",
        url: join_path(&base, &format!("api/v2/otlp/{}", signal.path())),
        headers,
        compression: Compression::Gzip,
        timeout: DEFAULT_TIMEOUT,
        max_body_bytes,
    }))
}

/// Every destination configured for `signal`, or the errors that kept some of them out. Both are returned so
/// that a caller that must not fail (the extension) can report the errors and go on with the rest.
pub fn destinations_from_env(
    signal: Signal,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Vec<Destination>, Vec<ConfigError>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for result in [otlp_from_env(signal, env), dynatrace_from_env(signal, env)] {
        match result {
            Ok(Some(destination)) => found.push(destination),
            Ok(None) => {}
            Err(error) => errors.push(error),
        }
    }
    (found, errors)
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn check_url(var: &str, url: String) -> Result<String, ConfigError> {
    let url = url.trim().to_owned();
    let ok = (url.starts_with("http://") || url.starts_with("https://")) && reqwest::Url::parse(&url).is_ok();
    if ok {
        Ok(url)
    } else {
        Err(ConfigError::BadUrl { var: var.into() })
    }
}

fn join_path(base: &str, path: &str) -> String {
    format!("{}/{path}", base.trim_end_matches('/'))
}

fn parse_compression(var: &str, value: &str) -> Result<Compression, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "gzip" => Ok(Compression::Gzip),
        "none" => Ok(Compression::None),
        _ => Err(ConfigError::BadCompression {
            var: var.into(),
            value: value.into(),
        }),
    }
}

/// The W3C Baggage-like list the specification uses: `k1=v1,k2=v2`, values percent-encoded.
fn parse_headers(var: &str, value: &str) -> Result<HeaderMap, ConfigError> {
    let mut headers = HeaderMap::new();
    for (index, entry) in value.split(',').enumerate() {
        if entry.trim().is_empty() {
            continue;
        }
        let bad = || ConfigError::BadHeader {
            var: var.into(),
            index,
        };
        let (key, raw) = entry.split_once('=').ok_or_else(bad)?;
        let name = HeaderName::from_bytes(key.trim().as_bytes()).map_err(|_| bad())?;
        let decoded = percent_decode(raw.trim()).ok_or_else(bad)?;
        let value = HeaderValue::from_str(&decoded).map_err(|_| bad())?;
        headers.append(name, mark_sensitive(value));
    }
    Ok(headers)
}

/// Headers configured by users usually carry credentials: keep them out of any debug output.
fn mark_sensitive(mut value: HeaderValue) -> HeaderValue {
    value.set_sensitive(true);
    value
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
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
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn generic_endpoint_gets_signal_path_and_specific_wins() {
        let e = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]);
        let d = otlp_from_env(Signal::Traces, &e).unwrap().unwrap();
        assert_eq!(d.url, "http://collector:4318/v1/traces");
        assert_eq!(d.compression, Compression::Gzip);
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "https://logs.example/custom"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
        ]);
        let d = otlp_from_env(Signal::Logs, &e).unwrap().unwrap();
        assert_eq!(d.url, "https://logs.example/custom");
        assert_eq!(d.compression, Compression::None);
        assert!(otlp_from_env(Signal::Logs, &env(&[])).unwrap().is_none());
    }

    #[test]
    fn headers_are_percent_decoded_and_hidden_from_debug() {
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s%3Dcret, x-tenant = t1"),
        ]);
        let d = otlp_from_env(Signal::Traces, &e).unwrap().unwrap();
        assert_eq!(d.headers.get("api-key").unwrap(), "s=cret");
        assert_eq!(d.headers.get("x-tenant").unwrap(), "t1");
        assert!(!format!("{d:?}").contains("s=cret"));
    }

    #[test]
    fn errors_name_the_variable() {
        let e = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]);
        assert_eq!(
            otlp_from_env(Signal::Traces, &e).unwrap_err(),
            ConfigError::BadUrl {
                var: "OTEL_EXPORTER_OTLP_ENDPOINT".into()
            }
        );
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "novalue"),
        ]);
        let err = otlp_from_env(Signal::Traces, &e).unwrap_err();
        assert!(err.to_string().starts_with("OTEL_EXPORTER_OTLP_TRACES_HEADERS"));
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]);
        assert!(matches!(
            otlp_from_env(Signal::Traces, &e),
            Err(ConfigError::BadProtocol { .. })
        ));
        for timeout in ["0", "-1", "18446744073709551616"] {
            let e = env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", timeout),
            ]);
            assert_eq!(
                otlp_from_env(Signal::Logs, &e).unwrap_err(),
                ConfigError::BadTimeout {
                    var: "OTEL_EXPORTER_OTLP_TIMEOUT".into()
                }
            );
        }
    }

    #[test]
    fn dynatrace_endpoint_and_token() {
        let e = env(&[
            ("DT_CONNECTION_BASE_URL", "https://abc123.live.dynatrace.com/"),
            ("DT_CONNECTION_AUTH_TOKEN", "dt0c01.SECRET"),
        ]);
        let d = dynatrace_from_env(Signal::Traces, &e).unwrap().unwrap();
        assert_eq!(d.url, "https://abc123.live.dynatrace.com/api/v2/otlp/v1/traces");
        assert_eq!(d.headers.get("authorization").unwrap(), "Api-Token dt0c01.SECRET");
        assert!(!format!("{d:?}").contains("SECRET"));
        let missing = env(&[("DT_CONNECTION_BASE_URL", "https://x.example")]);
        let err = dynatrace_from_env(Signal::Traces, &missing).unwrap_err();
        assert!(err.to_string().contains("DT_CONNECTION_AUTH_TOKEN"));
        let arn = env(&[
            ("DT_CONNECTION_BASE_URL", "https://x.example"),
            (
                "DT_CONNECTION_AUTH_TOKEN_SECRET_ARN",
                "arn:aws:secretsmanager:...",
            ),
        ]);
        assert!(matches!(
            dynatrace_from_env(Signal::Traces, &arn),
            Err(ConfigError::SecretUnresolved { .. })
        ));
    }

    #[test]
    fn all_destinations_with_partial_errors() {
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("DT_CONNECTION_BASE_URL", "nonsense"),
            ("DT_CONNECTION_AUTH_TOKEN", "t"),
        ]);
        let (found, errors) = destinations_from_env(Signal::Traces, &e);
        assert_eq!(found.len(), 1);
        assert_eq!(errors.len(), 1);
    }
}
