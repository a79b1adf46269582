//! `*_SECRET_ARN` variables: each names a Secrets Manager secret whose string becomes the value of the variable
//! without the suffix (`DT_CONNECTION_AUTH_TOKEN_SECRET_ARN` gives `DT_CONNECTION_AUTH_TOKEN`). Read once at
//! start with a SigV4-signed GetSecretValue call and the function's own credentials, no AWS SDK. A value set
//! directly wins over its secret. Secret values never appear in output.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::sigv4::{amz_date, authorization, canonical_request, sha256_hex, Credentials};

const SUFFIX: &str = "_SECRET_ARN";
/// Dynatrace's own Lambda layer spells it this way; accepted as an alias.
const DYNATRACE_ALIAS: (&str, &str) = (
    "DT_CONNECTION_AUTH_TOKEN_SECRETS_MANAGER_ARN",
    "DT_CONNECTION_AUTH_TOKEN",
);
/// Secrets Manager allows 64 KiB per secret; the JSON envelope adds little.
const MAX_RESPONSE_BYTES: usize = 128 * 1024;
const TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{var}: not a Secrets Manager ARN")]
    BadArn { var: String },
    #[error("{var}: no AWS credentials in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")]
    NoCredentials { var: String },
    #[error("{var}: no region (neither in the ARN nor AWS_REGION)")]
    NoRegion { var: String },
    #[error("{var}: GetSecretValue failed: {reason}")]
    Request { var: String, reason: String },
    #[error("{var}: GetSecretValue answered HTTP {status}")]
    Status { var: String, status: u16 },
    #[error("{var}: the secret has no SecretString")]
    NotAString { var: String },
}

/// Which variables to resolve: (secret variable, target variable), for every `*_SECRET_ARN` in `names`.
pub fn wanted(names: impl IntoIterator<Item = String>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = names
        .into_iter()
        .filter_map(|name| {
            if name == DYNATRACE_ALIAS.0 {
                return Some((name, DYNATRACE_ALIAS.1.to_owned()));
            }
            let target = name.strip_suffix(SUFFIX).filter(|t| !t.is_empty())?.to_owned();
            Some((name, target))
        })
        .collect();
    out.sort();
    out
}

/// Resolves every wanted secret whose target is not already set. Returns the values by target variable and
/// the errors (one per secret that could not be read).
pub async fn resolve(
    client: &reqwest::Client,
    env: &dyn Fn(&str) -> Option<String>,
    wanted: &[(String, String)],
) -> (HashMap<String, String>, Vec<SecretError>) {
    let mut values = HashMap::new();
    let mut errors = Vec::new();
    for (var, target) in wanted {
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if set(target).is_some() || values.contains_key(target) {
            continue;
        }
        let Some(arn) = set(var) else { continue };
        match fetch(client, env, var, arn.trim()).await {
            Ok(value) => {
                values.insert(target.clone(), value);
            }
            Err(error) => errors.push(error),
        }
    }
    (values, errors)
}

async fn fetch(
    client: &reqwest::Client,
    env: &dyn Fn(&str) -> Option<String>,
    var: &str,
    arn: &str,
) -> Result<String, SecretError> {
    let fields: Vec<&str> = arn.split(':').collect();
    if fields.len() < 7 || fields[0] != "arn" || fields[2] != "secretsmanager" || fields[5] != "secret" {
        return Err(SecretError::BadArn { var: var.into() });
    }
    let region = Some(fields[3].to_owned())
        .filter(|r| !r.is_empty())
        .or_else(|| env("AWS_REGION"))
        .ok_or_else(|| SecretError::NoRegion { var: var.into() })?;
    let credentials = Credentials {
        access_key_id: env("AWS_ACCESS_KEY_ID").unwrap_or_default(),
        secret_access_key: env("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
        session_token: env("AWS_SESSION_TOKEN").filter(|t| !t.is_empty()),
    };
    if credentials.access_key_id.is_empty() || credentials.secret_access_key.is_empty() {
        return Err(SecretError::NoCredentials { var: var.into() });
    }
    // The SDKs' service-specific endpoint override, so tests (and VPC endpoints) can redirect the call.
    let endpoint = env("AWS_ENDPOINT_URL_SECRETS_MANAGER")
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|| format!("https://secretsmanager.{region}.amazonaws.com"));
    let url = reqwest::Url::parse(&endpoint).map_err(|_| SecretError::Request {
        var: var.into(),
        reason: "invalid endpoint URL".into(),
    })?;
    let host = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => {
            return Err(SecretError::Request {
                var: var.into(),
                reason: "endpoint URL has no host".into(),
            })
        }
    };

    let body = json!({ "SecretId": arn }).to_string();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let date = amz_date(now);
    let mut headers = vec![
        ("content-type".to_owned(), "application/x-amz-json-1.1".to_owned()),
        ("host".to_owned(), host),
        ("x-amz-date".to_owned(), date.clone()),
        (
            "x-amz-target".to_owned(),
            "secretsmanager.GetSecretValue".to_owned(),
        ),
    ];
    if let Some(token) = &credentials.session_token {
        headers.push(("x-amz-security-token".to_owned(), token.clone()));
    }
    let (canonical, signed) = canonical_request("POST", "/", "", &headers, &sha256_hex(body.as_bytes()));
    let auth = authorization(
        &credentials,
        &date,
        &region,
        "secretsmanager",
        &canonical,
        &signed,
    );

    let mut request = client.post(url).timeout(TIMEOUT).body(body);
    for (name, value) in headers.iter().filter(|(name, _)| name != "host") {
        request = request.header(name.as_str(), value.as_str());
    }
    let request_error = |reason: String| SecretError::Request {
        var: var.into(),
        reason,
    };
    let mut response = request
        .header("authorization", auth)
        .send()
        .await
        .map_err(|e| request_error(e.without_url().to_string()))?;
    let status = response.status().as_u16();
    let mut raw = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| request_error(e.without_url().to_string()))?
    {
        if raw.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(request_error("response too large".into()));
        }
        raw.extend_from_slice(&chunk);
    }
    if status != 200 {
        return Err(SecretError::Status {
            var: var.into(),
            status,
        });
    }
    let value: Value =
        serde_json::from_slice(&raw).map_err(|_| request_error("response is not JSON".into()))?;
    value
        .get("SecretString")
        .and_then(Value::as_str)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| SecretError::NotAString { var: var.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_secret_variables_and_their_targets() {
        let names = [
            "PATH",
            "DT_CONNECTION_AUTH_TOKEN_SECRET_ARN",
            "DT_CONNECTION_AUTH_TOKEN_SECRETS_MANAGER_ARN",
            "_SECRET_ARN",
            "OTEL_EXPORTER_OTLP_HEADERS_SECRET_ARN",
        ]
        .map(String::from);
        assert_eq!(
            wanted(names),
            vec![
                (
                    "DT_CONNECTION_AUTH_TOKEN_SECRETS_MANAGER_ARN".to_owned(),
                    "DT_CONNECTION_AUTH_TOKEN".to_owned()
                ),
                (
                    "DT_CONNECTION_AUTH_TOKEN_SECRET_ARN".to_owned(),
                    "DT_CONNECTION_AUTH_TOKEN".to_owned()
                ),
                (
                    "OTEL_EXPORTER_OTLP_HEADERS_SECRET_ARN".to_owned(),
                    "OTEL_EXPORTER_OTLP_HEADERS".to_owned()
                ),
            ]
        );
    }

    #[tokio::test]
    async fn bad_configuration_is_named_without_a_request() {
        let client = reqwest::Client::new();
        let env = |name: &str| match name {
            "A_SECRET_ARN" => Some("not-an-arn".to_owned()),
            "B_SECRET_ARN" => Some("arn:aws:secretsmanager:eu-west-1:123456789012:secret:b".to_owned()),
            "C_SECRET_ARN" => Some("arn:aws:secretsmanager:eu-west-1:123456789012:secret:c".to_owned()),
            "C" => Some("set directly".to_owned()),
            _ => None,
        };
        let wanted = wanted(["A_SECRET_ARN", "B_SECRET_ARN", "C_SECRET_ARN"].map(String::from));
        let (values, errors) = resolve(&client, &env, &wanted).await;
        assert!(values.is_empty());
        assert_eq!(errors.len(), 2);
        assert!(matches!(&errors[0], SecretError::BadArn { var } if var == "A_SECRET_ARN"));
        assert!(matches!(&errors[1], SecretError::NoCredentials { var } if var == "B_SECRET_ARN"));
    }
}
