//! Subscribing CloudWatch log groups to the forwarder or to a Firehose stream: by name or prefix from the
//! `subscribe` command, and automatically for each new log group whose `CreateLogGroup` event reaches the Lambda
//! handler through EventBridge.
//!
//! `plan` decides (pure), `apply` carries the decision out through CloudWatch Logs, `event` reads the EventBridge
//! event, `settings` reads the configuration, `report` tells what happened, `cli` is the command.

pub mod apply;
pub mod cli;
pub mod error;
pub mod event;
pub mod plan;
pub mod report;
pub mod settings;

pub use apply::{client, Subscriber};
pub use cli::SubscribeArgs;
pub use error::{ConfigError, SubscribeError};
pub use event::{is_create_log_group_event, CreateLogGroupEvent, EventError};
pub use report::{Action, GroupReport, RunReport};
pub use settings::SubscribeSettings;

/// Handles one EventBridge event for a CloudTrail-recorded `CreateLogGroup` call: subscribes the new group when a
/// configured prefix covers it. Check [`is_create_log_group_event`] first; an `Err` means the event claimed to be
/// one but lacks the log group name.
pub async fn handle_create_log_group_event(
    event: &serde_json::Value,
    subscriber: &Subscriber,
) -> Result<GroupReport, EventError> {
    let event = CreateLogGroupEvent::parse(event)?;
    Ok(subscriber.handle_create_log_group(&event).await)
}
