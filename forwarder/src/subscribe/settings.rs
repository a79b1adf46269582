//! Subscription settings, read and validated once (from `TRACEHOSE_SUBSCRIBE_*` inside Lambda, from flags in the
//! CLI), with errors that name the variable or flag at fault.

use super::error::ConfigError;
use super::plan::FilterTarget;

pub const ENV_PREFIXES: &str = "TRACEHOSE_SUBSCRIBE_PREFIXES";
pub const ENV_DESTINATION_ARN: &str = "TRACEHOSE_SUBSCRIBE_DESTINATION_ARN";
pub const ENV_ROLE_ARN: &str = "TRACEHOSE_SUBSCRIBE_ROLE_ARN";
pub const ENV_FILTER_PATTERN: &str = "TRACEHOSE_SUBSCRIBE_FILTER_PATTERN";
pub const ENV_FILTER_NAME: &str = "TRACEHOSE_SUBSCRIBE_FILTER_NAME";
/// Outside Lambda, the forwarder's log group (to exclude) must be told; inside, Lambda sets the next one.
pub const ENV_OWN_LOG_GROUP: &str = "TRACEHOSE_OWN_LOG_GROUP";
pub const ENV_LAMBDA_LOG_GROUP: &str = "AWS_LAMBDA_LOG_GROUP_NAME";

pub const DEFAULT_FILTER_NAME: &str = "tracehose";

// Service limits of PutSubscriptionFilter and CreateLogGroup.
const MAX_FILTER_NAME: usize = 512;
const MAX_FILTER_PATTERN: usize = 1024;
const MAX_LOG_GROUP_NAME: usize = 512;

/// Everything needed to subscribe log groups: the filter to put and the groups never to touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeSettings {
    pub target: FilterTarget,
    /// Log group name prefixes that new groups are matched against (the automatic, event-driven path).
    pub prefixes: Vec<String>,
    /// Groups never subscribed: the forwarder's own, given and derived from a Lambda destination.
    pub own_log_groups: Vec<String>,
}

/// Raw values with the names of where they came from, so errors can point at the right flag or variable.
#[derive(Debug, Clone, Default)]
pub struct RawSettings {
    pub destination_arn: Option<String>,
    pub role_arn: Option<String>,
    pub filter_pattern: Option<String>,
    pub filter_name: Option<String>,
    pub prefixes: Vec<String>,
    pub own_log_groups: Vec<String>,
}

/// Names of the sources of each setting, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct SourceNames {
    pub destination_arn: &'static str,
    pub role_arn: &'static str,
    pub filter_pattern: &'static str,
    pub filter_name: &'static str,
    pub prefixes: &'static str,
    pub own_log_group: &'static str,
}

pub const ENV_SOURCES: SourceNames = SourceNames {
    destination_arn: ENV_DESTINATION_ARN,
    role_arn: ENV_ROLE_ARN,
    filter_pattern: ENV_FILTER_PATTERN,
    filter_name: ENV_FILTER_NAME,
    prefixes: ENV_PREFIXES,
    own_log_group: ENV_OWN_LOG_GROUP,
};

impl SubscribeSettings {
    /// Reads the automatic-subscription settings from the process environment. `Ok(None)` when
    /// `TRACEHOSE_SUBSCRIBE_PREFIXES` is unset or empty: the feature is off.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Self::from_env`] over any variable lookup, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        let prefixes = split_list(lookup(ENV_PREFIXES).as_deref().unwrap_or(""));
        if prefixes.is_empty() {
            return Ok(None);
        }
        let own_log_groups = [ENV_LAMBDA_LOG_GROUP, ENV_OWN_LOG_GROUP]
            .iter()
            .filter_map(|name| lookup(name))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        let raw = RawSettings {
            destination_arn: lookup(ENV_DESTINATION_ARN),
            role_arn: lookup(ENV_ROLE_ARN),
            filter_pattern: lookup(ENV_FILTER_PATTERN),
            filter_name: lookup(ENV_FILTER_NAME),
            prefixes,
            own_log_groups,
        };
        Self::validate(raw, &ENV_SOURCES).map(Some)
    }

    /// Validates raw values; `sources` names where each came from.
    pub fn validate(raw: RawSettings, sources: &SourceNames) -> Result<Self, ConfigError> {
        let destination_arn = non_empty(raw.destination_arn).ok_or(ConfigError::Missing {
            source_name: sources.destination_arn,
        })?;
        let destination = parse_arn(&destination_arn).ok_or_else(|| ConfigError::Invalid {
            source_name: sources.destination_arn,
            problem: format!("{destination_arn:?} is not an ARN"),
        })?;
        let role_arn = non_empty(raw.role_arn);
        match destination.service {
            "lambda" => {
                if destination.function_name().is_none() {
                    return Err(ConfigError::Invalid {
                        source_name: sources.destination_arn,
                        problem: format!("{destination_arn:?} is not a Lambda function ARN"),
                    });
                }
            }
            "firehose" | "kinesis" | "logs" => {
                if role_arn.is_none() {
                    return Err(ConfigError::Invalid {
                        source_name: sources.role_arn,
                        problem: format!(
                            "a {} destination needs the ARN of a role CloudWatch Logs can assume",
                            destination.service
                        ),
                    });
                }
            }
            other => {
                return Err(ConfigError::Invalid {
                    source_name: sources.destination_arn,
                    problem: format!(
                        "service {other:?} cannot receive subscriptions (lambda, firehose, kinesis, logs can)"
                    ),
                })
            }
        }
        if let Some(role) = &role_arn {
            if parse_arn(role).is_none_or(|arn| arn.service != "iam") {
                return Err(ConfigError::Invalid {
                    source_name: sources.role_arn,
                    problem: format!("{role:?} is not an IAM role ARN"),
                });
            }
        }
        let filter_name = non_empty(raw.filter_name).unwrap_or_else(|| DEFAULT_FILTER_NAME.to_string());
        if filter_name.len() > MAX_FILTER_NAME || filter_name.contains(':') || filter_name.contains('*') {
            return Err(ConfigError::Invalid {
                source_name: sources.filter_name,
                problem: format!("a filter name has at most {MAX_FILTER_NAME} characters and no ':' or '*'"),
            });
        }
        let filter_pattern = raw.filter_pattern.unwrap_or_default();
        if filter_pattern.len() > MAX_FILTER_PATTERN {
            return Err(ConfigError::Invalid {
                source_name: sources.filter_pattern,
                problem: format!("a filter pattern has at most {MAX_FILTER_PATTERN} characters"),
            });
        }
        for prefix in &raw.prefixes {
            check_log_group_name(prefix).map_err(|problem| ConfigError::Invalid {
                source_name: sources.prefixes,
                problem,
            })?;
        }
        let mut own_log_groups = raw.own_log_groups;
        for own in &own_log_groups {
            check_log_group_name(own).map_err(|problem| ConfigError::Invalid {
                source_name: sources.own_log_group,
                problem,
            })?;
        }
        // Lambda's default log group for the destination function: excluded even when nobody said so.
        if let Some(function) = destination.function_name() {
            let derived = format!("/aws/lambda/{function}");
            if !own_log_groups.contains(&derived) {
                own_log_groups.push(derived);
            }
        }
        Ok(Self {
            target: FilterTarget {
                filter_name,
                destination_arn,
                role_arn,
                filter_pattern,
            },
            prefixes: raw.prefixes,
            own_log_groups,
        })
    }
}

/// Checks a log group name (or prefix) against the characters and length CloudWatch Logs accepts.
pub fn check_log_group_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_LOG_GROUP_NAME {
        return Err(format!(
            "{name:?}: a log group name has 1 to {MAX_LOG_GROUP_NAME} characters"
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_-/.#".contains(c);
    match name.chars().find(|c| !allowed(*c)) {
        Some(bad) => Err(format!(
            "{name:?}: {bad:?} is not allowed in a log group name (letters, digits, _ - / . #)"
        )),
        None => Ok(()),
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The parts of an ARN this module needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'a> {
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// The function name of a Lambda function ARN (qualifier dropped).
    pub fn function_name(&self) -> Option<&'a str> {
        if self.service != "lambda" {
            return None;
        }
        let rest = self.resource.strip_prefix("function:")?;
        let name = rest.split(':').next()?;
        (!name.is_empty()).then_some(name)
    }
}

/// Splits `arn:partition:service:region:account:resource`; `None` for anything else.
pub fn parse_arn(arn: &str) -> Option<Arn<'_>> {
    let mut parts = arn.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    let partition = parts.next()?;
    let service = parts.next()?;
    let region = parts.next()?;
    let account = parts.next()?;
    let resource = parts.next()?;
    if partition.is_empty() || service.is_empty() || resource.is_empty() {
        return None;
    }
    Some(Arn {
        service,
        region,
        account,
        resource,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const LAMBDA: &str = "arn:aws:lambda:eu-west-1:123456789012:function:tracehose";
    const FIREHOSE: &str = "arn:aws:firehose:eu-west-1:123456789012:deliverystream/logs";
    const ROLE: &str = "arn:aws:iam::123456789012:role/cwl-to-firehose";

    fn from(vars: &[(&str, &str)]) -> Result<Option<SubscribeSettings>, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        SubscribeSettings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn off_without_prefixes() {
        assert_eq!(from(&[(ENV_DESTINATION_ARN, LAMBDA)]).unwrap(), None);
        assert_eq!(from(&[(ENV_PREFIXES, " , ")]).unwrap(), None);
    }

    #[test]
    fn lambda_destination_with_defaults_excludes_its_own_groups() {
        let s = from(&[
            (ENV_PREFIXES, "/aws/lambda/, /ecs/"),
            (ENV_DESTINATION_ARN, LAMBDA),
            (ENV_LAMBDA_LOG_GROUP, "/custom/tracehose"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(s.prefixes, vec!["/aws/lambda/", "/ecs/"]);
        assert_eq!(s.target.filter_name, DEFAULT_FILTER_NAME);
        assert_eq!(s.target.filter_pattern, "");
        assert_eq!(s.target.role_arn, None);
        assert_eq!(
            s.own_log_groups,
            vec!["/custom/tracehose", "/aws/lambda/tracehose"]
        );
    }

    #[test]
    fn qualified_lambda_arn_derives_the_unqualified_group() {
        let arn = parse_arn("arn:aws:lambda:eu-west-1:1:function:fwd:live").unwrap();
        assert_eq!(arn.function_name(), Some("fwd"));
    }

    #[test]
    fn missing_destination_names_the_variable() {
        let err = from(&[(ENV_PREFIXES, "/aws/")]).unwrap_err();
        assert!(err.to_string().contains(ENV_DESTINATION_ARN), "{err}");
    }

    #[test]
    fn firehose_needs_a_role() {
        let err = from(&[(ENV_PREFIXES, "/aws/"), (ENV_DESTINATION_ARN, FIREHOSE)]).unwrap_err();
        assert!(err.to_string().contains(ENV_ROLE_ARN), "{err}");
        let ok = from(&[
            (ENV_PREFIXES, "/aws/"),
            (ENV_DESTINATION_ARN, FIREHOSE),
            (ENV_ROLE_ARN, ROLE),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(ok.target.role_arn.as_deref(), Some(ROLE));
        assert!(ok.own_log_groups.is_empty());
    }

    #[test]
    fn rejects_bad_values_naming_the_variable() {
        let cases: [(&[(&str, &str)], &str); 5] = [
            (&[(ENV_DESTINATION_ARN, "tracehose")], ENV_DESTINATION_ARN),
            (
                &[(ENV_DESTINATION_ARN, "arn:aws:sqs:eu-west-1:1:queue")],
                ENV_DESTINATION_ARN,
            ),
            (
                &[(ENV_DESTINATION_ARN, LAMBDA), (ENV_ROLE_ARN, LAMBDA)],
                ENV_ROLE_ARN,
            ),
            (
                &[(ENV_DESTINATION_ARN, LAMBDA), (ENV_FILTER_NAME, "a:b")],
                ENV_FILTER_NAME,
            ),
            (
                &[(ENV_DESTINATION_ARN, LAMBDA), (ENV_OWN_LOG_GROUP, "bad group")],
                ENV_OWN_LOG_GROUP,
            ),
        ];
        for (vars, variable) in cases {
            let mut all = vars.to_vec();
            all.push((ENV_PREFIXES, "/aws/"));
            let err = from(&all).unwrap_err();
            assert!(err.to_string().contains(variable), "{variable}: {err}");
        }
        let err = from(&[(ENV_PREFIXES, "/aws/ lambda"), (ENV_DESTINATION_ARN, LAMBDA)]).unwrap_err();
        assert!(err.to_string().contains(ENV_PREFIXES), "{err}");
    }

    #[test]
    fn arn_parsing() {
        let arn = parse_arn(FIREHOSE).unwrap();
        assert_eq!(arn.service, "firehose");
        assert_eq!(arn.region, "eu-west-1");
        assert_eq!(arn.account, "123456789012");
        assert_eq!(arn.resource, "deliverystream/logs");
        assert_eq!(arn.function_name(), None);
        assert!(parse_arn("arn:aws:lambda").is_none());
        assert!(parse_arn("nope:aws:lambda:r:a:x").is_none());
        assert!(parse_arn("arn:aws:lambda:r:a:function:")
            .unwrap()
            .function_name()
            .is_none());
    }
}
