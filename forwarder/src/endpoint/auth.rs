//! Access keys: `TRACEHOSE_ACCESS_KEYS` (comma-separated, so that a key can be rotated without downtime:
//! add the new one, switch the stream, remove the old one), or the same list from the secret that
//! `TRACEHOSE_ACCESS_KEYS_SECRET_ARN` names. Compared in constant time; never printed.

use std::fmt;

use thiserror::Error;

use super::errors::EndpointError;
use crate::deliver::Settings;

pub const KEYS_VAR: &str = "TRACEHOSE_ACCESS_KEYS";
pub const INSECURE_VAR: &str = "TRACEHOSE_INSECURE_NO_ACCESS_KEY";
/// Firehose allows access keys of up to 4096 bytes.
const MAX_KEY_BYTES: usize = 4096;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AuthConfigError {
    #[error("{KEYS_VAR}: a key is longer than {MAX_KEY_BYTES} bytes, which Firehose cannot send")]
    KeyTooLong,
    #[error("{INSECURE_VAR}: expected true or false")]
    Insecure,
}

/// Which requests are let in.
#[derive(Clone, PartialEq, Eq)]
pub enum AccessKeys {
    /// Any of these keys.
    Keys(Vec<Vec<u8>>),
    /// Anyone: explicitly asked for (`--insecure-no-access-key`, `TRACEHOSE_INSECURE_NO_ACCESS_KEY=true`).
    Open,
    /// Nothing configured: `serve` refuses to start, the Lambda face refuses every request.
    Unconfigured,
}

impl fmt::Debug for AccessKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessKeys::Keys(keys) => write!(f, "AccessKeys({} keys)", keys.len()),
            AccessKeys::Open => f.write_str("AccessKeys(open)"),
            AccessKeys::Unconfigured => f.write_str("AccessKeys(unconfigured)"),
        }
    }
}

impl AccessKeys {
    /// From resolved settings (secrets already read); `insecure` from the command line, or else
    /// `TRACEHOSE_INSECURE_NO_ACCESS_KEY`. Keys win over `insecure` when both are given.
    pub fn from_settings(settings: &Settings, insecure: bool) -> Result<Self, AuthConfigError> {
        let value = settings.get(KEYS_VAR).unwrap_or_default();
        let keys: Vec<Vec<u8>> = api_key_field(&value)
            .unwrap_or(&value)
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| k.as_bytes().to_vec())
            .collect();
        if keys.iter().any(|k| k.len() > MAX_KEY_BYTES) {
            return Err(AuthConfigError::KeyTooLong);
        }
        if !keys.is_empty() {
            return Ok(AccessKeys::Keys(keys));
        }
        let insecure = insecure
            || match settings.get(INSECURE_VAR).as_deref().map(str::trim) {
                None | Some("") => false,
                Some(v) if ["1", "true", "yes", "on"].contains(&v.to_ascii_lowercase().as_str()) => true,
                Some(v) if ["0", "false", "no", "off"].contains(&v.to_ascii_lowercase().as_str()) => false,
                Some(_) => return Err(AuthConfigError::Insecure),
            };
        Ok(if insecure {
            AccessKeys::Open
        } else {
            AccessKeys::Unconfigured
        })
    }

    /// Checks the presented key against every configured key, each compared in full, so that the time
    /// taken says nothing about how much of a key was right, nor which key matched.
    pub fn check(&self, presented: Option<&str>) -> Result<(), EndpointError> {
        let keys = match self {
            AccessKeys::Open => return Ok(()),
            AccessKeys::Unconfigured => return Err(EndpointError::NoKeyConfigured),
            AccessKeys::Keys(keys) => keys,
        };
        let presented = presented.ok_or(EndpointError::MissingKey)?;
        let mut matched = false;
        for key in keys {
            matched |= constant_time_eq(key, presented.as_bytes());
        }
        if matched {
            Ok(())
        } else {
            Err(EndpointError::WrongKey)
        }
    }
}

/// Firehose reads its access key from a secret shaped `{"api_key":"..."}`; the forwarder is given the same
/// secret, so that shape is read too. `None` for a plain list of keys.
fn api_key_field(value: &str) -> Option<&str> {
    #[derive(serde::Deserialize)]
    struct Secret<'a> {
        api_key: &'a str,
    }
    let value = value.trim();
    if !value.starts_with('{') {
        return None;
    }
    serde_json::from_str::<Secret<'_>>(value).ok().map(|s| s.api_key)
}

/// Equal lengths and equal bytes, in time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn keys(pairs: &[(&str, &str)], insecure: bool) -> Result<AccessKeys, AuthConfigError> {
        AccessKeys::from_settings(&Settings::from_pairs(pairs.iter().copied()), insecure)
    }

    #[test]
    fn any_listed_key_is_accepted_and_nothing_else() {
        let k = keys(&[(KEYS_VAR, " old-key , new-key ,")], false).unwrap();
        assert!(k.check(Some("old-key")).is_ok());
        assert!(k.check(Some("new-key")).is_ok());
        assert!(matches!(k.check(Some("new-ke")), Err(EndpointError::WrongKey)));
        assert!(matches!(k.check(Some("new-keyy")), Err(EndpointError::WrongKey)));
        assert!(matches!(k.check(Some("")), Err(EndpointError::WrongKey)));
        assert!(matches!(k.check(None), Err(EndpointError::MissingKey)));
        assert!(!format!("{k:?}").contains("key,"));
        assert!(!format!("{k:?}").contains("old"));
    }

    #[test]
    fn the_secret_firehose_reads_is_read_too() {
        let k = keys(&[(KEYS_VAR, r#"{"api_key":"from-secret"}"#)], false).unwrap();
        assert!(k.check(Some("from-secret")).is_ok());
        assert!(k.check(Some(r#"{"api_key":"from-secret"}"#)).is_err());
    }

    #[test]
    fn no_key_is_refused_unless_explicitly_open() {
        let k = keys(&[], false).unwrap();
        assert!(matches!(k.check(Some("x")), Err(EndpointError::NoKeyConfigured)));
        assert_eq!(keys(&[], true).unwrap(), AccessKeys::Open);
        assert_eq!(keys(&[(INSECURE_VAR, "true")], false).unwrap(), AccessKeys::Open);
        assert_eq!(
            keys(&[(INSECURE_VAR, "maybe")], false).unwrap_err(),
            AuthConfigError::Insecure
        );
        assert!(AccessKeys::Open.check(None).is_ok());
        let long = "k".repeat(4097);
        assert_eq!(
            keys(&[(KEYS_VAR, &long)], false).unwrap_err(),
            AuthConfigError::KeyTooLong
        );
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
