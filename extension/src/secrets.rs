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

/// One line naming the variable and the kind of failure, in the forwarder's words; never the secret's value
/// nor the service's whole answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("{var}: not a Secrets Manager ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)")]
    BadArn { var: String },
    #[error("{var}: no AWS credentials in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")]
    NoCredentials { var: String },
    #[error("{var}: the request to Secrets Manager could not be made ({reason})")]
    Unsent { var: String, reason: &'static str },
    #[error("{var}: Secrets Manager unreachable ({detail})")]
    Unreachable { var: String, detail: &'static str },
    #[error("{var}: no such secret in Secrets Manager")]
    NotFound { var: String },
    #[error("{var}: access denied: the function's role may not read the secret ({code})")]
    AccessDenied { var: String, code: String },
    #[error("{var}: Secrets Manager refused the request ({code})")]
    Refused { var: String, code: String },
    #[error("{var}: the secret has no string value")]
    NotText { var: String },
}

/// Which variables to resolve: (secret variable, target variable), for every `*_SECRET_ARN` in `names`. The
/// first of two for the same target is read: `DT_CONNECTION_AUTH_TOKEN_SECRET_ARN` before Dynatrace's alias,
/// as the forwarder reads them.
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
    out.sort_by(|a, b| {
        let alias = |name: &str| name == DYNATRACE_ALIAS.0;
        (&a.1, alias(&a.0), &a.0).cmp(&(&b.1, alias(&b.0), &b.0))
    });
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
    // The same ARNs the forwarder accepts: the secret's region is the one to ask.
    let fields: Vec<&str> = arn.splitn(7, ':').collect();
    let region = match fields.as_slice() {
        ["arn", partition, "secretsmanager", region, account, "secret", name]
            if !partition.is_empty() && !region.is_empty() && !account.is_empty() && !name.is_empty() =>
        {
            (*region).to_owned()
        }
        _ => return Err(SecretError::BadArn { var: var.into() }),
    };
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
    let url = reqwest::Url::parse(&endpoint).map_err(|_| SecretError::Unsent {
        var: var.into(),
        reason: "invalid endpoint URL",
    })?;
    let host = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => {
            return Err(SecretError::Unsent {
                var: var.into(),
                reason: "endpoint URL has no host",
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
    let unreachable = |err: reqwest::Error| SecretError::Unreachable {
        var: var.into(),
        detail: if err.is_timeout() {
            "timed out"
        } else if err.is_connect() {
            "connection failed"
        } else {
            "the answer could not be read"
        },
    };
    let mut response = request
        .header("authorization", auth)
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status().as_u16();
    let mut raw = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if raw.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(SecretError::Unreachable {
                var: var.into(),
                detail: "the answer is too large for a Secrets Manager response",
            });
        }
        raw.extend_from_slice(&chunk);
    }
    let value: Option<Value> = serde_json::from_slice(&raw).ok();
    if status != 200 {
        return Err(refusal(var, status, value.as_ref()));
    }
    value
        .as_ref()
        .and_then(|v| v.get("SecretString"))
        .and_then(Value::as_str)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| SecretError::NotText { var: var.into() })
}

/// A refused GetSecretValue, by the error code in its JSON body (`__type`, possibly namespaced
/// `com.amazonaws...#Code`), as the SDK reads it; the HTTP status when the body has none.
fn refusal(var: &str, status: u16, body: Option<&Value>) -> SecretError {
    let code = body
        .and_then(|b| b.get("__type"))
        .and_then(Value::as_str)
        .map(|t| t.rsplit('#').next().unwrap_or(t))
        .filter(|c| !c.is_empty() && c.len() <= 64 && c.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map_or_else(|| format!("HTTP {status}"), str::to_owned);
    let var = var.to_owned();
    match code.as_str() {
        "ResourceNotFoundException" => SecretError::NotFound { var },
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "ExpiredTokenException"
        | "KMSAccessDeniedException" => SecretError::AccessDenied { var, code },
        _ => SecretError::Refused { var, code },
    }
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
                    "DT_CONNECTION_AUTH_TOKEN_SECRET_ARN".to_owned(),
                    "DT_CONNECTION_AUTH_TOKEN".to_owned()
                ),
                (
                    "DT_CONNECTION_AUTH_TOKEN_SECRETS_MANAGER_ARN".to_owned(),
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

    #[test]
    fn tracehose_own_secret_name_is_read_before_the_dynatrace_alias() {
        let names = [
            "DT_CONNECTION_AUTH_TOKEN_SECRETS_MANAGER_ARN",
            "DT_LOG_COLLECTION_AUTH_TOKEN_SECRET_ARN",
            "DT_CONNECTION_AUTH_TOKEN_SECRET_ARN",
        ]
        .map(String::from);
        let order: Vec<String> = wanted(names).into_iter().map(|(var, _)| var).collect();
        assert_eq!(
            order,
            [
                "DT_CONNECTION_AUTH_TOKEN_SECRET_ARN",
                "DT_CONNECTION_AUTH_TOKEN_SECRETS_MANAGER_ARN",
                "DT_LOG_COLLECTION_AUTH_TOKEN_SECRET_ARN"
            ]
        );
    }

    #[test]
    fn refusals_are_named_by_their_kind_in_one_line() {
        let var = "DT_CONNECTION_AUTH_TOKEN_SECRET_ARN";
        let body = |t: &str| serde_json::json!({"__type": t, "message": "Secrets Manager can't find the specified secret."});
        assert_eq!(
            refusal(var, 400, Some(&body("ResourceNotFoundException"))).to_string(),
            "DT_CONNECTION_AUTH_TOKEN_SECRET_ARN: no such secret in Secrets Manager"
        );
        let denied = refusal(
            var,
            400,
            Some(&body("com.amazonaws.secretsmanager#AccessDeniedException")),
        );
        assert_eq!(
            denied,
            SecretError::AccessDenied {
                var: var.into(),
                code: "AccessDeniedException".into()
            }
        );
        assert_eq!(
            refusal(var, 400, Some(&body("DecryptionFailure"))).to_string(),
            "DT_CONNECTION_AUTH_TOKEN_SECRET_ARN: Secrets Manager refused the request (DecryptionFailure)"
        );
        // No usable code: the status, never the body.
        let odd = refusal(var, 502, Some(&body("<html>\nbad gateway")));
        assert_eq!(
            odd.to_string(),
            format!("{var}: Secrets Manager refused the request (HTTP 502)")
        );
        assert_eq!(
            refusal(var, 500, None).to_string(),
            format!("{var}: Secrets Manager refused the request (HTTP 500)")
        );
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_one_line() {
        let client = reqwest::Client::new();
        let env = |name: &str| match name {
            "D_SECRET_ARN" => Some("arn:aws:secretsmanager:eu-west-1:123456789012:secret:d".to_owned()),
            "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("testing".to_owned()),
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:9".to_owned()),
            _ => None,
        };
        let (values, errors) = resolve(&client, &env, &wanted(["D_SECRET_ARN".to_owned()])).await;
        assert!(values.is_empty());
        assert_eq!(
            errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["D_SECRET_ARN: Secrets Manager unreachable (connection failed)"]
        );
    }
}
