//! `*_SECRET_ARN` variables: each names a Secrets Manager secret whose value stands for another variable (the
//! token, key or headers themselves), read once at start. The values live only in the [`Settings`] overlay
//! the configuration is read through; they never reach the process environment, a log line or an error.

use std::collections::HashMap;
use std::fmt;

use thiserror::Error;

use crate::aws::Aws;

/// Each `*_SECRET_ARN` variable and the variable whose value its secret provides.
pub const SECRET_VARIABLES: [(&str, &str); 6] = [
    ("DT_CONNECTION_AUTH_TOKEN_SECRET_ARN", "DT_CONNECTION_AUTH_TOKEN"),
    // Dynatrace's own Lambda layer spells it this way; users already have it set.
    (
        "DT_CONNECTION_AUTH_TOKEN_SECRETS_MANAGER_ARN",
        "DT_CONNECTION_AUTH_TOKEN",
    ),
    (
        "DT_LOG_COLLECTION_AUTH_TOKEN_SECRET_ARN",
        "DT_LOG_COLLECTION_AUTH_TOKEN",
    ),
    ("DD_API_KEY_SECRET_ARN", "DD_API_KEY"),
    (
        "OTEL_EXPORTER_OTLP_HEADERS_SECRET_ARN",
        "OTEL_EXPORTER_OTLP_HEADERS",
    ),
    // The Firehose HTTP endpoint's access keys (comma-separated), the same secret the stream sends.
    ("TRACEHOSE_ACCESS_KEYS_SECRET_ARN", "TRACEHOSE_ACCESS_KEYS"),
];

#[derive(Debug, Error)]
pub enum SecretError {
    #[error("{var}: reading the secret failed: {reason}")]
    Read { var: &'static str, reason: String },
    #[error("{var}: the secret has no string value")]
    NotText { var: &'static str },
}

/// Configuration as the program sees it: the environment, with secrets read from Secrets Manager on top.
#[derive(Clone, Default)]
pub struct Settings {
    secrets: HashMap<&'static str, String>,
    env: Option<HashMap<String, String>>,
}

impl fmt::Debug for Settings {
    /// Names only: the values are secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Settings {
    /// The process environment as it is, secrets not yet read.
    pub fn from_env() -> Self {
        Self::default()
    }

    /// A fixed set of variables instead of the process environment: for tests and embedding.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self {
            secrets: HashMap::new(),
            env: Some(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect()),
        }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        if let Some(secret) = self.secrets.get(name) {
            return Some(secret.clone());
        }
        match &self.env {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
    }

    /// Which secret variables are set, and not already provided directly.
    fn wanted(&self) -> Vec<(&'static str, &'static str, String)> {
        SECRET_VARIABLES
            .iter()
            .filter_map(|&(var, target)| {
                let arn = self.get(var).filter(|a| !a.trim().is_empty())?;
                Some((var, target, arn.trim().to_owned()))
            })
            .collect()
    }

    /// Reads every secret a `*_SECRET_ARN` variable names, once. Does nothing (and needs no AWS
    /// credentials) when none is set.
    pub async fn resolve_secrets(mut self, aws: &Aws) -> Result<Self, SecretError> {
        let wanted = self.wanted();
        if wanted.is_empty() {
            return Ok(self);
        }
        let client = aws_sdk_secretsmanager::Client::new(aws.config().await);
        for (var, target, arn) in wanted {
            let output = client
                .get_secret_value()
                .secret_id(arn)
                .send()
                .await
                .map_err(|err| SecretError::Read {
                    var,
                    // The service's own message (access denied, not found...), never the value.
                    reason: aws_sdk_secretsmanager::error::DisplayErrorContext(&err).to_string(),
                })?;
            let value = output.secret_string().ok_or(SecretError::NotText { var })?;
            self.secrets.insert(target, value.trim().to_owned());
        }
        Ok(self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_values() {
        let mut settings = Settings::from_pairs([("DD_API_KEY", "plain-key")]);
        settings
            .secrets
            .insert("DT_CONNECTION_AUTH_TOKEN", "dt0c01.SECRET".into());
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains("SECRET") && !shown.contains("plain-key"),
            "{shown}"
        );
        assert_eq!(settings.get("DT_CONNECTION_AUTH_TOKEN").unwrap(), "dt0c01.SECRET");
        assert_eq!(settings.get("DD_API_KEY").unwrap(), "plain-key");
    }

    #[tokio::test]
    async fn nothing_to_resolve_needs_no_aws() {
        let settings = Settings::from_pairs([("DD_API_KEY", "k")])
            .resolve_secrets(&Aws::default())
            .await
            .unwrap();
        assert_eq!(settings.get("DD_API_KEY").unwrap(), "k");
    }

    #[test]
    fn secret_variables_are_wanted_only_when_set() {
        let settings = Settings::from_pairs([
            ("DD_API_KEY_SECRET_ARN", " arn:aws:secretsmanager:x "),
            ("DT_LOG_COLLECTION_AUTH_TOKEN_SECRET_ARN", ""),
        ]);
        let wanted = settings.wanted();
        assert_eq!(wanted.len(), 1);
        assert_eq!(wanted[0].1, "DD_API_KEY");
        assert_eq!(wanted[0].2, "arn:aws:secretsmanager:x");
    }
}
