//! Filtering and scrubbing, before anything leaves the process: include and exclude patterns on the message,
//! replacement rules, and ready presets for what most often leaks into logs ([`redact`](super::redact)).
//!
//! Both see the whole message, before it is cut to `TRACEHOSE_MAX_MESSAGE_BYTES`: a cut could otherwise leave
//! half a secret that no rule matches, and decide what a pattern on the message sees.
//!
//! Patterns use the `regex` crate, whose matching is linear in the text whatever the pattern, so no rule
//! can be made to hang the forwarder; each pattern is compiled once, at start, with a size limit.

use std::borrow::Cow;

use regex::{Captures, Regex, RegexBuilder, Replacer};
use serde::Deserialize;
use thiserror::Error;

use super::redact::{self, SECRET_GROUP};
use crate::output::Sink;
use crate::record::LogRecord;

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
    rewrite: Rewrite,
}

#[derive(Debug, Clone)]
enum Rewrite {
    /// A user's rule: the replacement with its `$1`/`${name}` references.
    Template(String),
    /// A preset: the secret groups of each match (the whole match when there are none) become the label.
    Mask {
        secret_groups: Vec<usize>,
        label: &'static str,
    },
}

/// The user's filter and scrub rules. The default keeps everything as it is.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Option<Regex>,
    exclude: Option<Regex>,
    replace: Vec<Replace>,
}

/// A sink behind the user's filter and scrub rules, for a face that writes records itself instead of handing
/// them to the delivery stage (a Firehose transformation answers with its records): the same rules as every
/// destination, and the lines dropped counted.
#[derive(Debug)]
pub struct Filtered<'f, S> {
    pub inner: S,
    filter: &'f Filter,
    /// Lines the include and exclude patterns dropped.
    pub filtered: u64,
}

impl<'f, S> Filtered<'f, S> {
    pub fn new(inner: S, filter: &'f Filter) -> Self {
        Self {
            inner,
            filter,
            filtered: 0,
        }
    }
}

impl<S: Sink> Sink for Filtered<'_, S> {
    type Error = S::Error;

    fn admit<'a>(&mut self, message: Cow<'a, str>) -> Option<Cow<'a, str>> {
        let admitted = self.filter.admit(message);
        self.filtered += u64::from(admitted.is_none());
        admitted
    }

    fn write(&mut self, record: LogRecord<'_>) -> Result<(), Self::Error> {
        self.inner.write(record)
    }

    /// Invocations are not log lines: the patterns do not apply to them.
    fn invocation(&mut self, invocation: &crate::telemetry::Invocation) -> Result<(), Self::Error> {
        self.inner.invocation(invocation)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush()
    }
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
    /// `TRACEHOSE_INCLUDE_PATTERN`, `TRACEHOSE_EXCLUDE_PATTERN`, `TRACEHOSE_REDACT` (comma-separated presets,
    /// applied in the order listed) and `TRACEHOSE_REPLACE` (a JSON array of rules, applied after the
    /// presets), each validated now.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, FilterError> {
        let set = |var: &str| lookup(var).filter(|v| !v.trim().is_empty());
        let include = set(INCLUDE).map(|p| compile(INCLUDE, &p)).transpose()?;
        let exclude = set(EXCLUDE).map(|p| compile(EXCLUDE, &p)).transpose()?;
        let mut replace = Vec::new();
        if let Some(presets) = set(REDACT) {
            for name in presets.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let patterns =
                    redact::preset(&name.to_ascii_lowercase()).ok_or_else(|| FilterError::Preset {
                        var: REDACT,
                        name: name.to_owned(),
                    })?;
                for (pattern, label) in patterns {
                    let pattern = compile(REDACT, &pattern)?;
                    let secret_groups = pattern
                        .capture_names()
                        .enumerate()
                        .filter(|(_, name)| name.is_some_and(|n| n.starts_with(SECRET_GROUP)))
                        .map(|(i, _)| i)
                        .collect();
                    replace.push(Replace {
                        pattern,
                        rewrite: Rewrite::Mask { secret_groups, label },
                    });
                }
            }
        }
        if let Some(rules) = set(REPLACE) {
            let rules: Vec<RawRule> =
                serde_json::from_str(&rules).map_err(|source| FilterError::Rules { var: REPLACE, source })?;
            for rule in rules {
                replace.push(Replace {
                    pattern: compile(REPLACE, &rule.pattern)?,
                    rewrite: Rewrite::Template(rule.replacement),
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

    /// The whole message as it is to be forwarded, scrubbed, or `None` when it is filtered out. Runs before
    /// the message is cut to the size limit.
    pub fn admit<'a>(&self, message: Cow<'a, str>) -> Option<Cow<'a, str>> {
        if !self.keeps(&message) {
            return None;
        }
        Some(match self.scrub(&message) {
            Cow::Owned(scrubbed) => Cow::Owned(scrubbed),
            Cow::Borrowed(_) => message,
        })
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
            let replaced = match &rule.rewrite {
                Rewrite::Template(template) => rule.pattern.replace_all(&text, template.as_str()),
                Rewrite::Mask { secret_groups, label } => {
                    rule.pattern.replace_all(&text, Mask { secret_groups, label })
                }
            };
            if let Cow::Owned(replaced) = replaced {
                text = Cow::Owned(replaced);
            }
        }
        text
    }
}

/// Writes a match with its secret replaced by the label and everything around it kept.
struct Mask<'a> {
    secret_groups: &'a [usize],
    label: &'a str,
}

impl Replacer for Mask<'_> {
    fn replace_append(&mut self, caps: &Captures<'_>, dst: &mut String) {
        let Some(whole) = caps.get(0) else {
            return;
        };
        let secret = self
            .secret_groups
            .iter()
            .find_map(|&i| caps.get(i))
            .unwrap_or(whole);
        let text = whole.as_str();
        let (start, end) = (secret.start() - whole.start(), secret.end() - whole.start());
        dst.push_str(text.get(..start).unwrap_or_default());
        dst.push_str(self.label);
        dst.push_str(text.get(end..).unwrap_or_default());
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
