//! Destinations from environment variables, read through a lookup function so tests and other callers need
//! not touch the process environment.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// Which OTLP signal a destination receives: decides the URL path and the per-signal variable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Logs,
    /// Only the forwarder sends metrics (the Lambda platform metrics its REPORT lines make).
    Metrics,
}

impl Signal {
    fn path(self) -> &'static str {
        match self {
            Signal::Traces => "v1/traces",
            Signal::Logs => "v1/logs",
            Signal::Metrics => "v1/metrics",
        }
    }

    fn env_infix(self) -> &'static str {
        match self {
            Signal::Traces => "TRACES",
            Signal::Logs => "LOGS",
            Signal::Metrics => "METRICS",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    /// gzip at [`crate::encode::DEFAULT_GZIP_LEVEL`]: most of the size gain for a fraction of the CPU time,
    /// which is billed on Lambda.
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

/// Where and how to reach a Dynatrace environment, read the same way by both binaries.
#[derive(Clone)]
pub struct DynatraceConnection {
    /// `DT_CONNECTION_BASE_URL`, without a trailing slash.
    pub base: String,
    /// `Api-Token <token>`, marked sensitive.
    pub authorization: HeaderValue,
    /// The variable the token came from.
    pub token_var: &'static str,
}

impl std::fmt::Debug for DynatraceConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynatraceConnection")
            .field("base", &self.base)
            .field("token_var", &self.token_var)
            .finish()
    }
}

/// The variables that may hold the token for `signal`, preferred first, each with the `*_SECRET_ARN`
/// variables that stand for it. Logs prefer `DT_LOG_COLLECTION_AUTH_TOKEN`, the narrower token (scope
/// `logs.ingest`) Dynatrace's Lambda layer reads for logs; it cannot ingest traces or metrics, so those take
/// `DT_CONNECTION_AUTH_TOKEN` only. `DT_CONNECTION_AUTH_TOKEN_SECRETS_MANAGER_ARN` is the layer's own name.
pub fn dynatrace_token_vars(signal: Signal) -> &'static [(&'static str, &'static [&'static str])] {
    const CONNECTION: (&str, &[&str]) = (
        "DT_CONNECTION_AUTH_TOKEN",
        &[
            "DT_CONNECTION_AUTH_TOKEN_SECRET_ARN",
            "DT_CONNECTION_AUTH_TOKEN_SECRETS_MANAGER_ARN",
        ],
    );
    const LOG_COLLECTION: (&str, &[&str]) = (
        "DT_LOG_COLLECTION_AUTH_TOKEN",
        &["DT_LOG_COLLECTION_AUTH_TOKEN_SECRET_ARN"],
    );
    match signal {
        Signal::Logs => &[LOG_COLLECTION, CONNECTION],
        Signal::Traces | Signal::Metrics => &[CONNECTION],
    }
}

/// `DT_CONNECTION_BASE_URL` and the token for `signal` (see [`dynatrace_token_vars`]); `None` when no base
/// URL is set. The caller resolves `*_SECRET_ARN` variables into the variables they name first: a secret
/// variable whose token is still unset is an error, never a silent fall-back to the next token.
pub fn dynatrace_connection(
    signal: Signal,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<DynatraceConnection>, ConfigError> {
    const BASE: &str = "DT_CONNECTION_BASE_URL";
    let candidates = dynatrace_token_vars(signal);
    let mut token = None;
    for &(var, secrets) in candidates {
        if let Some(value) = non_empty(env(var)) {
            token = Some((var, value));
            break;
        }
        if let Some(secret) = secrets.iter().find(|s| non_empty(env(s)).is_some()) {
            return Err(ConfigError::SecretUnresolved {
                var: (*secret).into(),
                target: var.into(),
            });
        }
    }
    let Some(base) = non_empty(env(BASE)) else {
        return Ok(None);
    };
    let base = check_url(BASE, base)?.trim_end_matches('/').to_owned();
    let (token_var, token) = token.ok_or_else(|| ConfigError::Incomplete {
        var: BASE.into(),
        missing: match signal {
            Signal::Logs => "DT_LOG_COLLECTION_AUTH_TOKEN (or DT_CONNECTION_AUTH_TOKEN)".into(),
            Signal::Traces | Signal::Metrics => {
                "DT_CONNECTION_AUTH_TOKEN (DT_LOG_COLLECTION_AUTH_TOKEN ingests logs only)".into()
            }
        },
    })?;
    let authorization = HeaderValue::from_str(&format!("Api-Token {}", token.trim())).map_err(|_| {
        ConfigError::BadHeader {
            var: token_var.into(),
            index: 0,
        }
    })?;
    Ok(Some(DynatraceConnection {
        base,
        authorization: mark_sensitive(authorization),
        token_var,
    }))
}

/// Dynatrace's OTLP endpoint, `{DT_CONNECTION_BASE_URL}/api/v2/otlp/v1/<signal>` with `Api-Token` auth.
/// Dynatrace accepts protobuf only; payload limits are 8 MB for traces and 2 MB for logs (metrics are held to
/// the logs' 2 MB: the smaller of the two documented limits).
pub fn dynatrace_from_env(
    signal: Signal,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Destination>, ConfigError> {
    let Some(connection) = dynatrace_connection(signal, env)? else {
        return Ok(None);
    };
    let mut headers = HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, connection.authorization);
    let max_body_bytes = match signal {
        Signal::Traces => 8_000_000,
        Signal::Logs | Signal::Metrics => 2_000_000,
    };
    Ok(Some(Destination {
        name: "dynatrace",
        url: join_path(&connection.base, &format!("api/v2/otlp/{}", signal.path())),
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
    fn metrics_have_their_own_path_and_variables() {
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-tenant=m"),
            ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "1500"),
        ]);
        let d = otlp_from_env(Signal::Metrics, &e).unwrap().unwrap();
        assert_eq!(d.url, "http://collector:4318/v1/metrics");
        assert_eq!(d.headers.get("x-tenant").unwrap(), "m");
        assert_eq!(d.timeout, Duration::from_millis(1500));
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "https://metrics.example/in",
            ),
        ]);
        let d = otlp_from_env(Signal::Metrics, &e).unwrap().unwrap();
        assert_eq!(d.url, "https://metrics.example/in");
        let e = env(&[
            ("DT_CONNECTION_BASE_URL", "https://abc.live.dynatrace.com"),
            ("DT_LOG_COLLECTION_AUTH_TOKEN", "dt0c01.LOG"),
        ]);
        // The log token cannot ingest metrics.
        assert!(matches!(
            dynatrace_from_env(Signal::Metrics, &e),
            Err(ConfigError::Incomplete { .. })
        ));
        let e = env(&[
            ("DT_CONNECTION_BASE_URL", "https://abc.live.dynatrace.com"),
            ("DT_CONNECTION_AUTH_TOKEN", "dt0c01.CONN"),
        ]);
        let d = dynatrace_from_env(Signal::Metrics, &e).unwrap().unwrap();
        assert_eq!(d.url, "https://abc.live.dynatrace.com/api/v2/otlp/v1/metrics");
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

    /// Every documented form of the Dynatrace variables, per signal: the extension and the forwarder both
    /// read them through [`dynatrace_connection`].
    #[test]
    fn dynatrace_token_per_signal_in_every_form() {
        let base = ("DT_CONNECTION_BASE_URL", "https://abc.live.dynatrace.com/");
        let log = ("DT_LOG_COLLECTION_AUTH_TOKEN", "dt0c01.LOG");
        let conn = ("DT_CONNECTION_AUTH_TOKEN", " dt0c01.CONN ");
        let token = |signal, pairs: &[(&str, &str)]| {
            let c = dynatrace_connection(signal, &env(pairs)).unwrap().unwrap();
            assert_eq!(c.base, "https://abc.live.dynatrace.com");
            assert!(!format!("{c:?}").contains("dt0c01"));
            (c.token_var, c.authorization.to_str().unwrap().to_owned())
        };
        assert_eq!(
            token(Signal::Logs, &[base, log]),
            ("DT_LOG_COLLECTION_AUTH_TOKEN", "Api-Token dt0c01.LOG".into())
        );
        assert_eq!(
            token(Signal::Logs, &[base, conn]),
            ("DT_CONNECTION_AUTH_TOKEN", "Api-Token dt0c01.CONN".into())
        );
        assert_eq!(
            token(Signal::Logs, &[base, log, conn]).0,
            "DT_LOG_COLLECTION_AUTH_TOKEN"
        );
        assert_eq!(
            token(Signal::Traces, &[base, log, conn]).0,
            "DT_CONNECTION_AUTH_TOKEN"
        );
        // The log token cannot ingest traces: named, not used.
        let err = dynatrace_connection(Signal::Traces, &env(&[base, log])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "DT_CONNECTION_BASE_URL is set but DT_CONNECTION_AUTH_TOKEN (DT_LOG_COLLECTION_AUTH_TOKEN \
             ingests logs only) is not"
        );
        let err = dynatrace_connection(Signal::Logs, &env(&[base])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "DT_CONNECTION_BASE_URL is set but DT_LOG_COLLECTION_AUTH_TOKEN (or DT_CONNECTION_AUTH_TOKEN) is not"
        );
        assert!(dynatrace_connection(Signal::Logs, &env(&[log]))
            .unwrap()
            .is_none());
        // A secret that was not read never falls back to another token.
        for (signal, secret, others) in [
            (
                Signal::Logs,
                "DT_LOG_COLLECTION_AUTH_TOKEN_SECRET_ARN",
                &[base, conn][..],
            ),
            (Signal::Logs, "DT_CONNECTION_AUTH_TOKEN_SECRET_ARN", &[base][..]),
            (
                Signal::Logs,
                "DT_CONNECTION_AUTH_TOKEN_SECRETS_MANAGER_ARN",
                &[base][..],
            ),
            (
                Signal::Traces,
                "DT_CONNECTION_AUTH_TOKEN_SECRET_ARN",
                &[base, log][..],
            ),
            (
                Signal::Traces,
                "DT_CONNECTION_AUTH_TOKEN_SECRETS_MANAGER_ARN",
                &[base][..],
            ),
        ] {
            let mut pairs = others.to_vec();
            pairs.push((secret, "arn:aws:secretsmanager:eu-west-1:1:secret:t"));
            let err = dynatrace_connection(signal, &env(&pairs)).unwrap_err();
            assert!(
                matches!(&err, ConfigError::SecretUnresolved { var, .. } if var == secret),
                "{signal:?} {secret}: {err}"
            );
        }
        // Resolved, the secret's value is the token.
        let resolved = [base, ("DT_LOG_COLLECTION_AUTH_TOKEN_SECRET_ARN", "arn:..."), log];
        assert_eq!(token(Signal::Logs, &resolved).0, "DT_LOG_COLLECTION_AUTH_TOKEN");
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
