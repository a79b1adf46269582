//! Filtering and scrubbing, before anything leaves the process: include and exclude patterns on the message,
//! replacement rules, and ready presets for what most often leaks into logs (e-mail and IPv4 addresses,
//! `Authorization` headers and `api_key`-style secrets).
//!
//! Patterns use the `regex` crate, whose matching is linear in the text whatever the pattern, so no rule
//! can be made to hang the forwarder; each pattern is compiled once, at start, with a size limit.

use std::borrow::Cow;

use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use thiserror::Error;

/// Compiled patterns may not grow past this (the `regex` crate's own bound on a program's size).
const MAX_PATTERN_SIZE: usize = 1 << 20;

#[derive(Debug, Error)]
pub enum FilterError {
    #[error("{var}: invalid pattern: {source}")]
    Pattern {
        var: &'static str,
        #[source]
        source: Box<regex::Error>,
    },
    #[error("{var}: expected a JSON array of {{\"pattern\":\"...\",\"replacement\":\"...\"}}: {source}")]
    Rules {
        var: &'static str,
        source: serde_json::Error,
    },
    #[error("{var}: unknown preset {name:?} (use email, ipv4, secrets)")]
    Preset { var: &'static str, name: String },
}

#[derive(Debug, Clone)]
struct Replace {
    pattern: Regex,
    replacement: String,
}

/// The user's filter and scrub rules. The default keeps everything as it is.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Option<Regex>,
    exclude: Option<Regex>,
    replace: Vec<Replace>,
}

#[derive(Deserialize)]
struct RawRule {
    pattern: String,
    replacement: String,
}

const INCLUDE: &str = "TRACEHOSE_INCLUDE_PATTERN";
const EXCLUDE: &str = "TRACEHOSE_EXCLUDE_PATTERN";
const REDACT: &str = "TRACEHOSE_REDACT";
const REPLACE: &str = "TRACEHOSE_REPLACE";

impl Filter {
    /// `TRACEHOSE_INCLUDE_PATTERN`, `TRACEHOSE_EXCLUDE_PATTERN`, `TRACEHOSE_REDACT` (comma-separated presets)
    /// and `TRACEHOSE_REPLACE` (a JSON array of rules), each validated now.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, FilterError> {
        let set = |var: &str| lookup(var).filter(|v| !v.trim().is_empty());
        let include = set(INCLUDE).map(|p| compile(INCLUDE, &p)).transpose()?;
        let exclude = set(EXCLUDE).map(|p| compile(EXCLUDE, &p)).transpose()?;
        let mut replace = Vec::new();
        if let Some(presets) = set(REDACT) {
            for name in presets.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                replace.push(preset(name)?);
            }
        }
        if let Some(rules) = set(REPLACE) {
            let rules: Vec<RawRule> =
                serde_json::from_str(&rules).map_err(|source| FilterError::Rules { var: REPLACE, source })?;
            for rule in rules {
                replace.push(Replace {
                    pattern: compile(REPLACE, &rule.pattern)?,
                    replacement: rule.replacement,
                });
            }
        }
        Ok(Self {
            include,
            exclude,
            replace,
        })
    }

    pub fn is_noop(&self) -> bool {
        self.include.is_none() && self.exclude.is_none() && self.replace.is_empty()
    }

    /// Whether a message is forwarded at all.
    pub fn keeps(&self, message: &str) -> bool {
        self.include.as_ref().is_none_or(|p| p.is_match(message))
            && !self.exclude.as_ref().is_some_and(|p| p.is_match(message))
    }

    /// The message with every replacement rule applied, in order; borrowed when nothing matched.
    pub fn scrub<'a>(&self, message: &'a str) -> Cow<'a, str> {
        let mut text = Cow::Borrowed(message);
        for rule in &self.replace {
            if let Cow::Owned(replaced) = rule.pattern.replace_all(&text, rule.replacement.as_str()) {
                text = Cow::Owned(replaced);
            }
        }
        text
    }
}

fn compile(var: &'static str, pattern: &str) -> Result<Regex, FilterError> {
    RegexBuilder::new(pattern)
        .size_limit(MAX_PATTERN_SIZE)
        .build()
        .map_err(|source| FilterError::Pattern {
            var,
            source: Box::new(source),
        })
}

fn preset(name: &str) -> Result<Replace, FilterError> {
    let (pattern, replacement) = match name.to_ascii_lowercase().as_str() {
        "email" => (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", "[email]"),
        "ipv4" => (
            r"\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\b",
            "[ipv4]",
        ),
        // `Authorization: Bearer x`, `"api_key": "x"`, `password=x`, `x-api-key: x`...: the key stays, so the
        // line still says what was there.
        "secrets" => (
            r#"(?i)((?:authorization|proxy-authorization)["']?\s*[:=]\s*["']?(?:bearer|basic|api-token|token)?\s*|(?:api[_-]?key|apikey|access[_-]?token|secret|password|passwd|token)["']?\s*[:=]\s*["']?)[^\s"',;&]+"#,
            "${1}[redacted]",
        ),
        _ => {
            return Err(FilterError::Preset {
                var: REDACT,
                name: name.to_owned(),
            })
        }
    };
    Ok(Replace {
        pattern: compile(REDACT, pattern)?,
        replacement: replacement.to_owned(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn filter(vars: &[(&str, &str)]) -> Result<Filter, FilterError> {
        Filter::from_lookup(&|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn include_and_exclude_decide_what_is_kept() {
        let f = filter(&[(INCLUDE, "ERROR|WARN"), (EXCLUDE, "healthcheck")]).unwrap();
        assert!(f.keeps("ERROR boom"));
        assert!(!f.keeps("INFO fine"));
        assert!(!f.keeps("WARN healthcheck slow"));
        assert!(filter(&[]).unwrap().is_noop());
    }

    #[test]
    fn presets_scrub_what_leaks() {
        let f = filter(&[(REDACT, "email, ipv4,secrets")]).unwrap();
        let line = r#"user bob@example.com from 10.0.0.255 sent Authorization: Bearer abc.def and {"api_key": "s3cr3t"} password=hunter2 version 1.2.3.4567"#;
        let scrubbed = f.scrub(line);
        assert_eq!(
            scrubbed,
            r#"user [email] from [ipv4] sent Authorization: Bearer [redacted] and {"api_key": "[redacted]"} password=[redacted] version 1.2.3.4567"#
        );
        assert!(matches!(f.scrub("nothing to see"), Cow::Borrowed(_)));
    }

    #[test]
    fn replacement_rules_apply_in_order() {
        let f = filter(&[(REPLACE, r#"[{"pattern":"card=\\d+","replacement":"card=****"}]"#)]).unwrap();
        assert_eq!(f.scrub("paid card=4111111111111111 ok"), "paid card=**** ok");
    }

    #[test]
    fn bad_rules_are_refused_naming_the_variable() {
        let err = filter(&[(INCLUDE, "(unclosed")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("TRACEHOSE_INCLUDE_PATTERN: invalid pattern"),
            "{err}"
        );
        let err = filter(&[(REDACT, "email,phone")]).unwrap_err();
        assert!(err.to_string().contains("\"phone\""), "{err}");
        let err = filter(&[(REPLACE, "not json")]).unwrap_err();
        assert!(err.to_string().starts_with("TRACEHOSE_REPLACE"), "{err}");
        // Backreferences would need backtracking: the regex crate refuses them.
        assert!(filter(&[(EXCLUDE, r"(a+)\1")]).is_err());
    }
}
