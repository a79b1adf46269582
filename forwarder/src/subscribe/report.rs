//! What a subscribe run did (or, in a dry run, would do), per log group: printed for people, JSON for scripts.

use std::fmt;

use serde::Serialize;

use super::plan::MAX_FILTERS_PER_LOG_GROUP;

/// The outcome for one log group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Created,
    Updated {
        changed: Vec<&'static str>,
    },
    Unchanged,
    /// Left alone: another filter already delivers this group to the same destination. Named apart from
    /// [`GroupReport::filter_name`] (ours), with which it shares one flat JSON object.
    SubscribedByOtherFilter {
        other_filter: String,
    },
    SkippedOwnLogGroup,
    LimitReached {
        existing: Vec<String>,
    },
    /// A created log group that none of the configured prefixes covers.
    NotMatched,
    /// CloudTrail recorded a `CreateLogGroup` call that failed: there is no new group.
    IgnoredFailedCall {
        error_code: String,
    },
    Failed {
        error: String,
    },
}

impl Action {
    /// Whether the group ended where the user wanted it: subscribed, or deliberately left out.
    pub fn is_success(&self) -> bool {
        !matches!(self, Action::LimitReached { .. } | Action::Failed { .. })
    }
}

/// One log group's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupReport {
    pub log_group: String,
    pub filter_name: String,
    pub dry_run: bool,
    #[serde(flatten)]
    pub action: Action,
}

/// All outcomes of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunReport {
    pub destination_arn: String,
    pub dry_run: bool,
    pub log_groups: Vec<GroupReport>,
}

impl RunReport {
    /// False when any group failed or could not take another filter.
    pub fn succeeded(&self) -> bool {
        self.log_groups.iter().all(|g| g.action.is_success())
    }

    /// One line counting each kind of outcome.
    pub fn summary(&self) -> String {
        let count = |f: fn(&Action) -> bool| self.log_groups.iter().filter(|g| f(&g.action)).count();
        format!(
            "subscribe{}: {} log groups: {} created, {} updated, {} unchanged, {} skipped, {} at the filter limit, {} failed",
            if self.dry_run { " (dry run)" } else { "" },
            self.log_groups.len(),
            count(|a| matches!(a, Action::Created)),
            count(|a| matches!(a, Action::Updated { .. })),
            count(|a| matches!(a, Action::Unchanged)),
            count(|a| {
                matches!(
                    a,
                    Action::SubscribedByOtherFilter { .. }
                        | Action::SkippedOwnLogGroup
                        | Action::NotMatched
                        | Action::IgnoredFailedCall { .. }
                )
            }),
            count(|a| matches!(a, Action::LimitReached { .. })),
            count(|a| matches!(a, Action::Failed { .. })),
        )
    }
}

impl fmt::Display for GroupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let would = if self.dry_run { "would be " } else { "" };
        let group = &self.log_group;
        let name = &self.filter_name;
        match &self.action {
            Action::Created => write!(f, "{group}: filter {name:?} {would}created"),
            Action::Updated { changed } => write!(
                f,
                "{group}: filter {name:?} {would}updated ({} changed)",
                changed.join(", ")
            ),
            Action::Unchanged => write!(f, "{group}: filter {name:?} already up to date"),
            Action::SubscribedByOtherFilter { other_filter } => write!(
                f,
                "{group}: left alone, filter {other_filter:?} already sends it to the destination"
            ),
            Action::SkippedOwnLogGroup => write!(
                f,
                "{group}: skipped, it is the forwarder's own log group (subscribing it would loop)"
            ),
            Action::LimitReached { existing } => write!(
                f,
                "{group}: NOT subscribed, it already has {MAX_FILTERS_PER_LOG_GROUP} subscription filters \
                 ({}), the most CloudWatch Logs allows per log group; remove one of them or rename ours to it \
                 with --filter-name",
                existing.join(", ")
            ),
            Action::NotMatched => write!(f, "{group}: no configured prefix matches, not subscribed"),
            Action::IgnoredFailedCall { error_code } => {
                write!(f, "{group}: creation failed ({error_code}), nothing to subscribe")
            }
            Action::Failed { error } => write!(f, "{group}: FAILED: {error}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn group(name: &str, action: Action) -> GroupReport {
        GroupReport {
            log_group: name.into(),
            filter_name: "tracehose".into(),
            dry_run: false,
            action,
        }
    }

    #[test]
    fn limit_and_failure_make_the_run_fail_skips_do_not() {
        let mut report = RunReport {
            destination_arn: "arn:aws:lambda:r:1:function:f".into(),
            dry_run: false,
            log_groups: vec![
                group("/a", Action::Created),
                group("/b", Action::SkippedOwnLogGroup),
                group("/c", Action::NotMatched),
            ],
        };
        assert!(report.succeeded());
        report.log_groups.push(group(
            "/d",
            Action::LimitReached {
                existing: vec!["x".into(), "y".into()],
            },
        ));
        assert!(!report.succeeded());
        assert_eq!(
            report.summary(),
            "subscribe: 4 log groups: 1 created, 0 updated, 0 unchanged, 2 skipped, 1 at the filter limit, 0 failed"
        );
    }

    #[test]
    fn json_shape_is_flat_per_group() {
        let value = serde_json::to_value(group(
            "/a",
            Action::Updated {
                changed: vec!["role"],
            },
        ))
        .unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "log_group": "/a", "filter_name": "tracehose", "dry_run": false,
                "action": "updated", "changed": ["role"]
            })
        );
    }

    /// A JSON value whose objects never repeat a key: `serde_json` itself keeps the last of two silently,
    /// which is how a duplicate went unnoticed.
    struct UniqueKeys;

    impl<'de> serde::Deserialize<'de> for UniqueKeys {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(UniqueKeysVisitor)
        }
    }

    struct UniqueKeysVisitor;

    impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
        type Value = UniqueKeys;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
            Ok(UniqueKeys)
        }
        fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
            Ok(UniqueKeys)
        }
        fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
            Ok(UniqueKeys)
        }
        fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
            Ok(UniqueKeys)
        }
        fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
            Ok(UniqueKeys)
        }
        fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
            Ok(UniqueKeys)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
            while seq.next_element::<UniqueKeys>()?.is_some() {}
            Ok(UniqueKeys)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if !seen.insert(key.clone()) {
                    return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
                }
                map.next_value::<UniqueKeys>()?;
            }
            Ok(UniqueKeys)
        }
    }

    #[test]
    fn json_keys_are_unique_for_every_action() {
        assert!(serde_json::from_str::<UniqueKeys>(r#"{"a": [{"b": 1, "b": 2}]}"#).is_err());
        let actions = [
            Action::Created,
            Action::Updated {
                changed: vec!["role", "filter_pattern"],
            },
            Action::Unchanged,
            Action::SubscribedByOtherFilter {
                other_filter: "legacy".into(),
            },
            Action::SkippedOwnLogGroup,
            Action::LimitReached {
                existing: vec!["x".into(), "y".into()],
            },
            Action::NotMatched,
            Action::IgnoredFailedCall {
                error_code: "AccessDenied".into(),
            },
            Action::Failed {
                error: "throttled".into(),
            },
        ];
        let report = RunReport {
            destination_arn: "arn:aws:lambda:r:1:function:f".into(),
            dry_run: true,
            log_groups: actions.into_iter().map(|a| group("/g", a)).collect(),
        };
        let text = serde_json::to_string(&report).unwrap();
        if let Err(err) = serde_json::from_str::<UniqueKeys>(&text) {
            panic!("{err}: {text}");
        }
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["log_groups"][3]["filter_name"], "tracehose");
        assert_eq!(value["log_groups"][3]["other_filter"], "legacy");
    }

    #[test]
    fn dry_run_lines_say_would() {
        let mut g = group("/a", Action::Created);
        g.dry_run = true;
        assert_eq!(g.to_string(), "/a: filter \"tracehose\" would be created");
        let limit = group(
            "/b",
            Action::LimitReached {
                existing: vec!["x".into(), "y".into()],
            },
        );
        assert!(limit
            .to_string()
            .contains("already has 2 subscription filters (x, y)"));
    }
}
