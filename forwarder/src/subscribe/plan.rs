//! The subscription decision for one log group, as a pure function of what exists and what is wanted, so every
//! rule (idempotence, the per-group filter limit, never feeding the forwarder its own logs) is testable without AWS.

use serde::Serialize;

/// CloudWatch Logs accepts at most this many subscription filters on one log group.
pub const MAX_FILTERS_PER_LOG_GROUP: usize = 2;

/// The subscription filter tracehose wants on a log group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterTarget {
    pub filter_name: String,
    pub destination_arn: String,
    pub role_arn: Option<String>,
    pub filter_pattern: String,
}

/// A subscription filter as CloudWatch Logs reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExistingFilter {
    pub filter_name: String,
    pub destination_arn: String,
    pub role_arn: Option<String>,
    pub filter_pattern: String,
}

/// What to do with one log group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// No filter of ours yet and room for one.
    Create,
    /// Our filter exists but differs; `changed` names the differing fields.
    Update { changed: Vec<&'static str> },
    /// Our filter exists exactly as wanted.
    Unchanged,
    /// Another filter already sends this group to our destination: a second one would deliver every event twice.
    SubscribedByOtherFilter { other_filter: String },
    /// The forwarder's own log group: subscribing it would feed the forwarder its own output in a loop.
    OwnLogGroup,
    /// The group already has the maximum number of filters, none of them ours.
    LimitReached { existing: Vec<String> },
}

/// Decides what to do with `log_group`, given its current filters.
pub fn plan(
    log_group: &str,
    existing: &[ExistingFilter],
    target: &FilterTarget,
    own_log_groups: &[String],
) -> Plan {
    if own_log_groups.iter().any(|own| own == log_group) {
        return Plan::OwnLogGroup;
    }
    if let Some(ours) = existing.iter().find(|f| f.filter_name == target.filter_name) {
        let changed = differences(ours, target);
        return if changed.is_empty() {
            Plan::Unchanged
        } else {
            Plan::Update { changed }
        };
    }
    if let Some(other) = existing
        .iter()
        .find(|f| f.destination_arn == target.destination_arn)
    {
        return Plan::SubscribedByOtherFilter {
            other_filter: other.filter_name.clone(),
        };
    }
    if existing.len() >= MAX_FILTERS_PER_LOG_GROUP {
        return Plan::LimitReached {
            existing: existing.iter().map(|f| f.filter_name.clone()).collect(),
        };
    }
    Plan::Create
}

fn differences(current: &ExistingFilter, target: &FilterTarget) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if current.destination_arn != target.destination_arn {
        changed.push("destination");
    }
    if current.filter_pattern != target.filter_pattern {
        changed.push("filter pattern");
    }
    if current.role_arn != target.role_arn {
        changed.push("role");
    }
    changed
}

/// Whether `log_group` falls under one of `prefixes`.
pub fn matches_prefix(log_group: &str, prefixes: &[String]) -> bool {
    prefixes.iter().any(|p| log_group.starts_with(p.as_str()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn target() -> FilterTarget {
        FilterTarget {
            filter_name: "tracehose".into(),
            destination_arn: "arn:aws:lambda:eu-west-1:123456789012:function:tracehose".into(),
            role_arn: None,
            filter_pattern: String::new(),
        }
    }

    fn filter(name: &str, destination: &str) -> ExistingFilter {
        ExistingFilter {
            filter_name: name.into(),
            destination_arn: destination.into(),
            role_arn: None,
            filter_pattern: String::new(),
        }
    }

    const OTHER: &str = "arn:aws:firehose:eu-west-1:123456789012:deliverystream/other";

    #[test]
    fn creates_when_nothing_exists() {
        assert_eq!(plan("/aws/lambda/app", &[], &target(), &[]), Plan::Create);
    }

    #[test]
    fn creates_beside_one_foreign_filter() {
        let existing = [filter("vendor", OTHER)];
        assert_eq!(plan("/aws/lambda/app", &existing, &target(), &[]), Plan::Create);
    }

    #[test]
    fn identical_filter_of_ours_is_left_alone() {
        let t = target();
        let existing = [filter("tracehose", &t.destination_arn)];
        assert_eq!(plan("/aws/lambda/app", &existing, &t, &[]), Plan::Unchanged);
    }

    #[test]
    fn our_filter_is_updated_in_place_naming_each_change() {
        let mut t = target();
        t.filter_pattern = "ERROR".into();
        t.role_arn = Some("arn:aws:iam::123456789012:role/cwl".into());
        let existing = [filter("vendor", OTHER), filter("tracehose", OTHER)];
        assert_eq!(
            plan("/aws/lambda/app", &existing, &t, &[]),
            Plan::Update {
                changed: vec!["destination", "filter pattern", "role"]
            }
        );
    }

    #[test]
    fn our_filter_is_updated_even_when_the_group_is_full() {
        let t = target();
        let existing = [filter("vendor", OTHER), filter("tracehose", OTHER)];
        assert!(matches!(
            plan("/aws/lambda/app", &existing, &t, &[]),
            Plan::Update { .. }
        ));
    }

    #[test]
    fn full_group_without_our_filter_reports_the_limit() {
        let existing = [filter("a", OTHER), filter("b", OTHER)];
        assert_eq!(
            plan("/aws/lambda/app", &existing, &target(), &[]),
            Plan::LimitReached {
                existing: vec!["a".into(), "b".into()]
            }
        );
    }

    #[test]
    fn foreign_filter_to_our_destination_is_not_duplicated() {
        let t = target();
        let existing = [filter("terraform-made", &t.destination_arn)];
        assert_eq!(
            plan("/aws/lambda/app", &existing, &t, &[]),
            Plan::SubscribedByOtherFilter {
                other_filter: "terraform-made".into()
            }
        );
    }

    #[test]
    fn own_log_group_is_never_subscribed_whatever_exists() {
        let own = vec!["/aws/lambda/tracehose".to_string()];
        assert_eq!(
            plan("/aws/lambda/tracehose", &[], &target(), &own),
            Plan::OwnLogGroup
        );
        assert_eq!(
            plan("/aws/lambda/tracehose-other", &[], &target(), &own),
            Plan::Create
        );
    }

    #[test]
    fn prefix_matching_is_plain_string_prefix() {
        let prefixes = vec!["/aws/lambda/".to_string(), "/ecs/app".to_string()];
        assert!(matches_prefix("/aws/lambda/x", &prefixes));
        assert!(matches_prefix("/ecs/app-1", &prefixes));
        assert!(!matches_prefix("/aws/lambd", &prefixes));
        assert!(!matches_prefix("/aws/lambda/x", &[]));
    }
}
