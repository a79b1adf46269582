//! The EventBridge event CloudTrail emits when a log group is created: the trigger for subscribing new log groups
//! the moment they appear, instead of on a schedule.

use serde_json::Value;
use thiserror::Error;

pub const DETAIL_TYPE: &str = "AWS API Call via CloudTrail";
pub const EVENT_SOURCE: &str = "logs.amazonaws.com";
pub const EVENT_NAME: &str = "CreateLogGroup";

/// A `CreateLogGroup` call as recorded by CloudTrail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateLogGroupEvent {
    pub log_group_name: String,
    /// Set when the call failed (for example `ResourceAlreadyExistsException`): no new group to subscribe.
    pub error_code: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
}

/// Why an event that claims to be a `CreateLogGroup` call could not be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EventError {
    #[error(
        "not a CloudTrail CreateLogGroup event (detail-type, detail.eventSource or detail.eventName differ)"
    )]
    NotCreateLogGroup,
    #[error("CreateLogGroup event without detail.requestParameters.logGroupName")]
    MissingLogGroupName,
}

/// Whether `event` is an EventBridge event for a CloudTrail-recorded `CreateLogGroup` call. Cheap: the Lambda
/// handler can call it on every event before trying other shapes.
pub fn is_create_log_group_event(event: &Value) -> bool {
    event.get("detail-type").and_then(Value::as_str) == Some(DETAIL_TYPE)
        && event.pointer("/detail/eventSource").and_then(Value::as_str) == Some(EVENT_SOURCE)
        && event.pointer("/detail/eventName").and_then(Value::as_str) == Some(EVENT_NAME)
}

impl CreateLogGroupEvent {
    /// Reads the fields tracehose needs from an EventBridge event.
    pub fn parse(event: &Value) -> Result<Self, EventError> {
        if !is_create_log_group_event(event) {
            return Err(EventError::NotCreateLogGroup);
        }
        let text = |pointer: &str| event.pointer(pointer).and_then(Value::as_str).map(str::to_string);
        let log_group_name = text("/detail/requestParameters/logGroupName")
            .filter(|name| !name.is_empty())
            .ok_or(EventError::MissingLogGroupName)?;
        Ok(Self {
            log_group_name,
            error_code: text("/detail/errorCode"),
            account: text("/account"),
            region: text("/region").or_else(|| text("/detail/awsRegion")),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn sample(log_group: &str) -> Value {
        json!({
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.logs",
            "account": "123456789012",
            "time": "2026-11-21T22:00:00Z",
            "region": "eu-west-1",
            "resources": [],
            "detail": {
                "eventVersion": "1.08",
                "eventTime": "2026-11-21T22:00:00Z",
                "eventSource": "logs.amazonaws.com",
                "eventName": "CreateLogGroup",
                "awsRegion": "eu-west-1",
                "requestParameters": { "logGroupName": log_group },
                "responseElements": null,
                "eventType": "AwsApiCall"
            }
        })
    }

    #[test]
    fn parses_a_cloudtrail_create_log_group_event() {
        let event = CreateLogGroupEvent::parse(&sample("/aws/lambda/app")).unwrap();
        assert_eq!(
            event,
            CreateLogGroupEvent {
                log_group_name: "/aws/lambda/app".into(),
                error_code: None,
                account: Some("123456789012".into()),
                region: Some("eu-west-1".into()),
            }
        );
    }

    #[test]
    fn failed_calls_carry_their_error_code() {
        let mut value = sample("/aws/lambda/app");
        value["detail"]["errorCode"] = json!("ResourceAlreadyExistsException");
        let event = CreateLogGroupEvent::parse(&value).unwrap();
        assert_eq!(
            event.error_code.as_deref(),
            Some("ResourceAlreadyExistsException")
        );
    }

    #[test]
    fn other_events_are_not_mistaken_for_it() {
        let mut delete = sample("/x");
        delete["detail"]["eventName"] = json!("DeleteLogGroup");
        let mut other_source = sample("/x");
        other_source["detail"]["eventSource"] = json!("lambda.amazonaws.com");
        let subscription = json!({"awslogs": {"data": "H4sI"}});
        let scheduled = json!({"detail-type": "Scheduled Event", "detail": {}});
        for value in [delete, other_source, subscription, scheduled] {
            assert!(!is_create_log_group_event(&value), "{value}");
            assert_eq!(
                CreateLogGroupEvent::parse(&value),
                Err(EventError::NotCreateLogGroup)
            );
        }
    }

    #[test]
    fn missing_group_name_is_an_error_not_a_skip() {
        let mut value = sample("/x");
        value["detail"]["requestParameters"] = json!({});
        assert!(is_create_log_group_event(&value));
        assert_eq!(
            CreateLogGroupEvent::parse(&value),
            Err(EventError::MissingLogGroupName)
        );
    }
}
