//! The Datadog intake and body compression from the variables Datadog users already have, read the way the
//! Datadog Agent and its Lambda extension read them, so that a value copied from an agent's configuration
//! (a proxy, a private link, a Datadog-compatible backend) means the same here.
//!
//! `DD_LOGS_CONFIG_LOGS_DD_URL` is an address, never a path: `host:port` (https unless
//! `DD_LOGS_CONFIG_LOGS_NO_SSL` is true) or `http(s)://host[:port]`; the client appends `/api/v2/logs`. A value
//! that already ends in `/api/v2/logs` is taken as is. Without it, the intake of `DD_SITE`.
//! `DD_LOGS_CONFIG_USE_COMPRESSION` (default true) and `DD_LOGS_CONFIG_COMPRESSION_LEVEL` (0-9, default 6 as in
//! the agent) shape the body.
//!
//! Metrics (the Lambda enhanced metrics, [`metrics_url`]) go to the API host, `https://api.{DD_SITE}`, or to
//! `DD_DD_URL`, the agent's override of that host, read the same way: an address, the client appends
//! `/api/v1/distribution_points`.

use reqwest::Url;
use tracehose_export::Compression;

use super::config::ConfigError;

pub const URL: &str = "DD_LOGS_CONFIG_LOGS_DD_URL";
pub const NO_SSL: &str = "DD_LOGS_CONFIG_LOGS_NO_SSL";
pub const USE_COMPRESSION: &str = "DD_LOGS_CONFIG_USE_COMPRESSION";
pub const COMPRESSION_LEVEL: &str = "DD_LOGS_CONFIG_COMPRESSION_LEVEL";
pub const METRICS_URL: &str = "DD_DD_URL";
/// The agent's own default level, kept when `DD_LOGS_CONFIG_COMPRESSION_LEVEL` is unset. Measured by
/// `forwarder/benches/compress.rs` on 156,219 Lambda lines: 10.47 MB at the other destinations' level 1 against
/// 6.11 MB at 6, for three times the compression instructions; the Datadog Forwarder sends 5.77 MB for the same
/// lines. Datadog entries carry more fields per line than the Forwarder's, so a level below the agent's would
/// ship far more bytes per line than the tools Datadog users compare with.
pub const DEFAULT_LEVEL: u32 = 6;
const SITE: &str = "DD_SITE";
const PATH: &str = "/api/v2/logs";
const METRICS_PATH: &str = "/api/v1/distribution_points";

/// Where Datadog logs go and how their bodies are compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intake {
    pub url: String,
    pub compression: Compression,
}

impl Intake {
    /// `lookup` returns `None` for unset and blank variables alike.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let no_ssl = match lookup(NO_SSL) {
            Some(value) => agent_bool(NO_SSL, &value)?,
            None => false,
        };
        let url = match lookup(URL) {
            Some(address) => intake_url(URL, &address, no_ssl, PATH)?,
            None => site_url(lookup, "http-intake.logs", PATH)?,
        };
        // Validated even when compression is off: a mistake in it is still a mistake.
        let level = match lookup(COMPRESSION_LEVEL) {
            Some(value) => Some(
                value
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|level| *level <= 9)
                    .ok_or_else(|| ConfigError::Invalid {
                        var: COMPRESSION_LEVEL,
                        reason: "expected a gzip level from 0 to 9".into(),
                    })?,
            ),
            None => None,
        };
        let compress = match lookup(USE_COMPRESSION) {
            Some(value) => agent_bool(USE_COMPRESSION, &value)?,
            None => true,
        };
        let compression = match (compress, level) {
            (false, _) => Compression::None,
            (true, level) => Compression::GzipLevel(level.unwrap_or(DEFAULT_LEVEL)),
        };
        Ok(Self { url, compression })
    }
}

/// Where the distribution points of the enhanced metrics go: `DD_DD_URL` (`host:port` or
/// `http(s)://host[:port]`, as the agent reads it; the client appends `/api/v1/distribution_points`), else the
/// API host of `DD_SITE`. Metric bodies are always gzipped (the API takes gzip, and the logs' compression
/// variables are the logs').
pub fn metrics_url(lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    match lookup(METRICS_URL) {
        Some(address) => intake_url(METRICS_URL, &address, false, METRICS_PATH),
        None => site_url(lookup, "api", METRICS_PATH),
    }
}

/// `https://{host}.{DD_SITE}{path}`, `DD_SITE` defaulting to `datadoghq.com`.
fn site_url(lookup: &dyn Fn(&str) -> Option<String>, host: &str, path: &str) -> Result<String, ConfigError> {
    let site = lookup(SITE).unwrap_or_else(|| "datadoghq.com".into());
    let url = format!("https://{host}.{}{path}", site.trim());
    Url::parse(&url).map_err(|_| ConfigError::Invalid {
        var: SITE,
        reason: "not a domain (like datadoghq.eu)".into(),
    })?;
    Ok(url)
}

/// A boolean as the agent's configuration reads one (Go's `strconv.ParseBool`, as Viper does): `true`,
/// `t`, `1`, `false`, `f`, `0`, in any case.
pub fn agent_bool(var: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "1" => Ok(true),
        "false" | "f" | "0" => Ok(false),
        _ => Err(ConfigError::Invalid {
            var,
            reason: "expected true or false (or t, f, 1, 0)".into(),
        }),
    }
}

/// The URL of `path` for an agent address in `var`: see the module's documentation.
fn intake_url(var: &'static str, address: &str, no_ssl: bool, path: &str) -> Result<String, ConfigError> {
    let address = address.trim();
    let invalid = |reason: &str| ConfigError::Invalid {
        var,
        reason: reason.to_owned(),
    };
    let lower = address.to_ascii_lowercase();
    let with_scheme = lower.starts_with("http://") || lower.starts_with("https://");
    let full = if with_scheme {
        address.to_owned()
    } else if address.contains("://") {
        return Err(invalid("the scheme must be http or https"));
    } else {
        // The agent requires the port when there is no scheme.
        let authority = address.split('/').next().unwrap_or_default();
        let port = authority.rsplit_once(':').map(|(_, port)| port);
        if !port.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
            return Err(invalid(
                "expected host:port or http(s)://host[:port], as the Datadog Agent reads it",
            ));
        }
        let scheme = if no_ssl { "http" } else { "https" };
        format!("{scheme}://{address}")
    };
    let mut url = Url::parse(&full)
        .map_err(|_| invalid("expected host:port or http(s)://host[:port], as the Datadog Agent reads it"))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "credentials do not belong in the URL (DD_API_KEY carries the key)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("takes no query or fragment"));
    }
    let given = url.path().trim_end_matches('/');
    if !given.is_empty() && given != path {
        return Err(invalid(&format!(
            "takes no path (the client appends {path}); a value ending in {path} is taken as is"
        )));
    }
    url.set_path(path);
    Ok(url.into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn intake(pairs: &[(&str, &str)]) -> Result<Intake, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Intake::from_lookup(&move |name| map.get(name).cloned().filter(|v| !v.trim().is_empty()))
    }

    fn url(pairs: &[(&str, &str)]) -> String {
        intake(pairs).unwrap().url
    }

    fn refused(pairs: &[(&str, &str)]) -> String {
        let err = intake(pairs).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{message}");
        message
    }

    #[test]
    fn site_default_and_other_sites() {
        assert_eq!(url(&[]), "https://http-intake.logs.datadoghq.com/api/v2/logs");
        assert_eq!(
            url(&[("DD_SITE", "datadoghq.eu")]),
            "https://http-intake.logs.datadoghq.eu/api/v2/logs"
        );
        assert!(refused(&[("DD_SITE", "bad site")]).starts_with("DD_SITE: "));
    }

    #[test]
    fn host_and_port_is_https_unless_no_ssl() {
        let host = (URL, "agent-http-intake.logs.datadoghq.com:443");
        assert_eq!(
            url(&[host]),
            "https://agent-http-intake.logs.datadoghq.com/api/v2/logs"
        );
        assert_eq!(
            url(&[(URL, "proxy.internal:3834")]),
            "https://proxy.internal:3834/api/v2/logs"
        );
        assert_eq!(
            url(&[(URL, "10.0.0.5:8282"), (NO_SSL, "true")]),
            "http://10.0.0.5:8282/api/v2/logs"
        );
        assert_eq!(
            url(&[(URL, "[::1]:8282"), (NO_SSL, "T")]),
            "http://[::1]:8282/api/v2/logs"
        );
        // The agent requires the port without a scheme.
        assert!(refused(&[(URL, "proxy.internal")]).starts_with("DD_LOGS_CONFIG_LOGS_DD_URL: "));
        assert!(refused(&[(URL, "[::1]")]).starts_with("DD_LOGS_CONFIG_LOGS_DD_URL: "));
        assert!(refused(&[(URL, "proxy.internal:")]).starts_with("DD_LOGS_CONFIG_LOGS_DD_URL: "));
    }

    #[test]
    fn scheme_host_and_port_keeps_its_scheme_whatever_no_ssl_says() {
        assert_eq!(
            url(&[(URL, "http://10.0.0.5:8282")]),
            "http://10.0.0.5:8282/api/v2/logs"
        );
        assert_eq!(
            url(&[(URL, "http://10.0.0.5:8282/")]),
            "http://10.0.0.5:8282/api/v2/logs"
        );
        assert_eq!(
            url(&[(URL, "https://pl.example.com"), (NO_SSL, "true")]),
            "https://pl.example.com/api/v2/logs"
        );
        assert_eq!(url(&[(URL, "HTTP://Proxy:80")]), "http://proxy/api/v2/logs");
        assert!(refused(&[(URL, "tcp://intake:10516")]).contains("http or https"));
        assert!(refused(&[(URL, "https://u:p@proxy:443")]).contains("credentials"));
        assert!(!refused(&[(URL, "https://u:p@proxy:443")]).contains("u:p"));
    }

    #[test]
    fn a_value_ending_in_the_intake_path_is_taken_as_is_any_other_path_is_refused() {
        assert_eq!(
            url(&[(URL, "http://127.0.0.1:9000/api/v2/logs")]),
            "http://127.0.0.1:9000/api/v2/logs"
        );
        assert_eq!(
            url(&[(URL, "intake.example:443/api/v2/logs/")]),
            "https://intake.example/api/v2/logs"
        );
        for value in [
            "https://proxy.example/datadog",
            "proxy.example:443/v1/input",
            "https://proxy.example/api/v2/logs?dd-api-key=x",
        ] {
            let message = refused(&[(URL, value)]);
            assert!(message.starts_with("DD_LOGS_CONFIG_LOGS_DD_URL: "), "{message}");
            assert!(
                !message.contains("proxy.example"),
                "the value is not echoed: {message}"
            );
        }
    }

    #[test]
    fn metrics_go_to_the_api_host_or_the_agents_dd_url() {
        let metrics = |pairs: &[(&str, &str)]| {
            let map: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            metrics_url(&move |name| map.get(name).cloned().filter(|v| !v.trim().is_empty()))
        };
        let ok = |pairs: &[(&str, &str)]| metrics(pairs).unwrap();
        assert_eq!(ok(&[]), "https://api.datadoghq.com/api/v1/distribution_points");
        assert_eq!(
            ok(&[("DD_SITE", "datadoghq.eu")]),
            "https://api.datadoghq.eu/api/v1/distribution_points"
        );
        assert_eq!(
            ok(&[
                (METRICS_URL, "http://127.0.0.1:9000/"),
                ("DD_SITE", "ignored.example")
            ]),
            "http://127.0.0.1:9000/api/v1/distribution_points"
        );
        assert_eq!(
            ok(&[(METRICS_URL, "proxy.internal:3834")]),
            "https://proxy.internal:3834/api/v1/distribution_points"
        );
        assert_eq!(
            ok(&[(METRICS_URL, "https://m.example/api/v1/distribution_points")]),
            "https://m.example/api/v1/distribution_points"
        );
        for bad in [
            "https://m.example/api/v2/logs",
            "https://u:p@m.example",
            "proxy.internal",
            "ftp://m:1",
        ] {
            let message = metrics(&[(METRICS_URL, bad)]).unwrap_err().to_string();
            assert!(message.starts_with("DD_DD_URL: "), "{bad}: {message}");
            assert!(
                !message.contains("m.example") && !message.contains("u:p"),
                "{message}"
            );
        }
        // The logs' no-SSL switch is the logs'.
        assert_eq!(
            ok(&[(METRICS_URL, "h:1"), (NO_SSL, "true")]),
            "https://h:1/api/v1/distribution_points"
        );
    }

    #[test]
    fn booleans_in_the_agents_spellings() {
        for (value, want) in [
            ("true", true),
            ("TRUE", true),
            ("True", true),
            ("t", true),
            ("1", true),
            ("false", false),
            ("False", false),
            ("F", false),
            ("0", false),
        ] {
            assert_eq!(agent_bool(NO_SSL, value).unwrap(), want, "{value}");
        }
        for value in ["yes", "on", "2", "enabled"] {
            let message = agent_bool(USE_COMPRESSION, value).unwrap_err().to_string();
            assert!(
                message.starts_with("DD_LOGS_CONFIG_USE_COMPRESSION: "),
                "{message}"
            );
        }
        assert!(refused(&[(URL, "h:1"), (NO_SSL, "yes")]).starts_with("DD_LOGS_CONFIG_LOGS_NO_SSL: "));
    }

    #[test]
    fn compression_on_by_default_off_on_request_at_the_level_asked() {
        assert_eq!(
            intake(&[]).unwrap().compression,
            Compression::GzipLevel(DEFAULT_LEVEL)
        );
        assert_eq!(
            intake(&[(USE_COMPRESSION, "false")]).unwrap().compression,
            Compression::None
        );
        assert_eq!(
            intake(&[(USE_COMPRESSION, "0"), (COMPRESSION_LEVEL, "9")])
                .unwrap()
                .compression,
            Compression::None
        );
        assert_eq!(
            intake(&[(COMPRESSION_LEVEL, "6")]).unwrap().compression,
            Compression::GzipLevel(6)
        );
        assert_eq!(
            intake(&[(USE_COMPRESSION, "t"), (COMPRESSION_LEVEL, " 0 ")])
                .unwrap()
                .compression,
            Compression::GzipLevel(0)
        );
        for level in ["10", "-1", "fast", "99999999999"] {
            let message = refused(&[(COMPRESSION_LEVEL, level)]);
            assert_eq!(
                message,
                "DD_LOGS_CONFIG_COMPRESSION_LEVEL: expected a gzip level from 0 to 9"
            );
        }
        // A bad level is named even with compression off.
        refused(&[(USE_COMPRESSION, "false"), (COMPRESSION_LEVEL, "10")]);
    }
}
