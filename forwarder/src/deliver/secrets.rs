//! `*_SECRET_ARN` variables: each names a Secrets Manager secret whose value stands for another variable (the
//! token, key or headers themselves), read once at start. The values live only in the [`Settings`] overlay
//! the configuration is read through; they never reach the process environment, a log line or an error.

use std::collections::HashMap;
use std::fmt;

use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
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

/// Why a secret could not be read: one line naming the variable and the kind of failure, never the secret's
/// value nor the service's whole response.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("{var}: not a Secrets Manager ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)")]
    BadArn { var: &'static str },
    #[error("{var}: no such secret in Secrets Manager")]
    NotFound { var: &'static str },
    #[error("{var}: access denied: the function's role may not read the secret ({code})")]
    AccessDenied { var: &'static str, code: String },
    #[error("{var}: Secrets Manager unreachable ({detail})")]
    Unreachable { var: &'static str, detail: &'static str },
    #[error("{var}: the request to Secrets Manager could not be made (AWS credentials, region or endpoint)")]
    Unsent { var: &'static str },
    #[error("{var}: Secrets Manager refused the request ({code})")]
    Refused { var: &'static str, code: String },
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

    /// The secrets to read: each `*_SECRET_ARN` variable that is set, unless its target is set directly (a
    /// value set directly wins) or an earlier variable of the list already provides it, as the extension
    /// reads them.
    fn wanted(&self) -> Vec<(&'static str, &'static str, String)> {
        let mut wanted: Vec<(&'static str, &'static str, String)> = Vec::new();
        for &(var, target) in &SECRET_VARIABLES {
            let Some(arn) = self.get(var).filter(|a| !a.trim().is_empty()) else {
                continue;
            };
            let direct = self.get(target).is_some_and(|v| !v.trim().is_empty());
            if direct || wanted.iter().any(|(_, t, _)| *t == target) {
                continue;
            }
            wanted.push((var, target, arn.trim().to_owned()));
        }
        wanted
    }

    /// Reads every secret a `*_SECRET_ARN` variable names, once, from the region in its ARN. Does nothing
    /// (and needs no AWS credentials) when none is set.
    pub async fn resolve_secrets(mut self, aws: &Aws) -> Result<Self, SecretError> {
        let wanted = self.wanted();
        if wanted.is_empty() {
            return Ok(self);
        }
        // Every ARN checked before the AWS configuration is even loaded.
        let wanted = wanted
            .into_iter()
            .map(|(var, target, arn)| {
                let region = arn_region(&arn).ok_or(SecretError::BadArn { var })?.to_owned();
                Ok((var, target, arn, region))
            })
            .collect::<Result<Vec<_>, SecretError>>()?;
        let shared = aws.config().await;
        for (var, target, arn, region) in wanted {
            let config = aws_sdk_secretsmanager::config::Builder::from(shared)
                .region(aws_sdk_secretsmanager::config::Region::new(region))
                .build();
            let output = aws_sdk_secretsmanager::Client::from_conf(config)
                .get_secret_value()
                .secret_id(&arn)
                .send()
                .await
                .map_err(|err| classify(var, &err))?;
            let value = output
                .secret_string()
                .filter(|v| !v.trim().is_empty())
                .ok_or(SecretError::NotText { var })?;
            self.secrets.insert(target, value.trim().to_owned());
        }
        Ok(self)
    }
}

/// The region of a Secrets Manager secret ARN, `None` for anything else.
fn arn_region(arn: &str) -> Option<&str> {
    let fields: Vec<&str> = arn.splitn(7, ':').collect();
    match fields.as_slice() {
        ["arn", partition, "secretsmanager", region, account, "secret", name]
            if !partition.is_empty() && !region.is_empty() && !account.is_empty() && !name.is_empty() =>
        {
            Some(region)
        }
        _ => None,
    }
}

/// The kind of failure, from the SDK's error: its code and category, never its message or raw response.
fn classify(var: &'static str, err: &SdkError<GetSecretValueError, HttpResponse>) -> SecretError {
    match err {
        SdkError::ServiceError(service) => {
            let error = service.err();
            if matches!(error, GetSecretValueError::ResourceNotFoundException(_)) {
                return SecretError::NotFound { var };
            }
            let code = error
                .code()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("HTTP {}", service.raw().status().as_u16()));
            match code.as_str() {
                "AccessDeniedException"
                | "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "ExpiredTokenException"
                | "KMSAccessDeniedException" => SecretError::AccessDenied { var, code },
                _ => SecretError::Refused { var, code },
            }
        }
        SdkError::TimeoutError(_) => SecretError::Unreachable {
            var,
            detail: "timed out",
        },
        SdkError::DispatchFailure(failure) if failure.is_io() || failure.is_timeout() => {
            SecretError::Unreachable {
                var,
                detail: "connection failed",
            }
        }
        SdkError::DispatchFailure(_) => SecretError::Unreachable {
            var,
            detail: "the request could not be sent",
        },
        SdkError::ResponseError(_) => SecretError::Unreachable {
            var,
            detail: "the answer was not a Secrets Manager response",
        },
        // Before anything was sent: no credentials or region to sign with, or an unusable endpoint.
        _ => SecretError::Unsent { var },
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

    /// As the extension reads them: a value set directly wins over its secret, and of the two names for the
    /// Dynatrace token's secret, tracehose's own is read.
    #[test]
    fn a_direct_value_wins_and_one_secret_per_variable_is_read() {
        let settings = Settings::from_pairs([
            ("DD_API_KEY", "direct"),
            (
                "DD_API_KEY_SECRET_ARN",
                "arn:aws:secretsmanager:eu-west-1:1:secret:dd",
            ),
            (
                "DT_CONNECTION_AUTH_TOKEN_SECRETS_MANAGER_ARN",
                "arn:aws:secretsmanager:eu-west-1:1:secret:layer",
            ),
            (
                "DT_CONNECTION_AUTH_TOKEN_SECRET_ARN",
                "arn:aws:secretsmanager:eu-west-1:1:secret:own",
            ),
        ]);
        let wanted: Vec<(&str, &str)> = settings.wanted().into_iter().map(|(v, t, _)| (v, t)).collect();
        assert_eq!(
            wanted,
            [("DT_CONNECTION_AUTH_TOKEN_SECRET_ARN", "DT_CONNECTION_AUTH_TOKEN")]
        );
    }

    #[test]
    fn arns_name_their_region() {
        assert_eq!(
            arn_region("arn:aws:secretsmanager:eu-central-1:123456789012:secret:dt-token-AbCdEf"),
            Some("eu-central-1")
        );
        assert_eq!(
            arn_region("arn:aws-cn:secretsmanager:cn-north-1:1:secret:a:b"),
            Some("cn-north-1")
        );
        for bad in [
            "dt-token",
            "arn:aws:secretsmanager::1:secret:x",
            "arn:aws:ssm:eu-west-1:1:parameter/x",
            "arn:aws:secretsmanager:eu-west-1:1:secret:",
        ] {
            assert_eq!(arn_region(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn a_bad_arn_is_named_before_aws_is_asked() {
        let err = Settings::from_pairs([("DD_API_KEY_SECRET_ARN", "my-datadog-key")])
            .resolve_secrets(&Aws::default())
            .await
            .unwrap_err();
        assert_eq!(
            err,
            SecretError::BadArn {
                var: "DD_API_KEY_SECRET_ARN"
            }
        );
        assert_eq!(
            err.to_string(),
            "DD_API_KEY_SECRET_ARN: not a Secrets Manager ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)"
        );
    }

    /// Nothing listens on the discard port: one line saying so, nothing of the SDK's error chain.
    #[tokio::test]
    async fn an_unreachable_endpoint_is_one_line() {
        use aws_sdk_secretsmanager::config::{Credentials, SharedCredentialsProvider};
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .credentials_provider(SharedCredentialsProvider::new(Credentials::for_tests()))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let err = Settings::from_pairs([(
            "DT_LOG_COLLECTION_AUTH_TOKEN_SECRET_ARN",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:t",
        )])
        .resolve_secrets(&Aws::from_config(config))
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                SecretError::Unreachable {
                    var: "DT_LOG_COLLECTION_AUTH_TOKEN_SECRET_ARN",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.to_string().contains('\n'));
    }
}
