//! Carries out subscription plans against CloudWatch Logs. Any endpoint speaking its API works: the SDK honours
//! `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_CLOUDWATCH_LOGS`.

use std::collections::BTreeSet;

use aws_sdk_cloudwatchlogs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_cloudwatchlogs::Client;

use super::error::SubscribeError;
use super::event::CreateLogGroupEvent;
use super::plan::{matches_prefix, plan, ExistingFilter, Plan};
use super::report::{Action, GroupReport, RunReport};
use super::settings::SubscribeSettings;
use crate::aws::Aws;

/// A CloudWatch Logs client for the configured region and endpoint, as the AWS CLI would pick them.
pub async fn client(aws: &Aws) -> Result<Client, SubscribeError> {
    Ok(Client::new(aws.regional().await?))
}

/// Subscribes log groups to the configured destination. Build it once (in Lambda: at cold start) and reuse it.
#[derive(Debug, Clone)]
pub struct Subscriber {
    client: Client,
    settings: SubscribeSettings,
}

impl Subscriber {
    /// The automatic subscriber of the Lambda handler, from `TRACEHOSE_SUBSCRIBE_*` and the AWS environment;
    /// `Ok(None)` when `TRACEHOSE_SUBSCRIBE_PREFIXES` is not set. Call once, at cold start.
    pub async fn from_env(aws: &Aws) -> Result<Option<Self>, SubscribeError> {
        match SubscribeSettings::from_env()? {
            Some(settings) => Ok(Some(Self::new(client(aws).await?, settings))),
            None => Ok(None),
        }
    }

    pub fn new(client: Client, settings: SubscribeSettings) -> Self {
        Self { client, settings }
    }

    pub fn settings(&self) -> &SubscribeSettings {
        &self.settings
    }

    fn run_report(&self, dry_run: bool, log_groups: Vec<GroupReport>) -> RunReport {
        RunReport {
            destination_arn: self.settings.target.destination_arn.clone(),
            dry_run,
            log_groups,
        }
    }

    /// Subscribes the named log groups, one after the other; a failure on one does not stop the others.
    pub async fn subscribe_log_groups(&self, names: &[String], dry_run: bool) -> RunReport {
        let mut reports = Vec::with_capacity(names.len());
        let unique: BTreeSet<&String> = names.iter().collect();
        for name in unique {
            reports.push(self.subscribe_one(name, dry_run).await);
        }
        self.run_report(dry_run, reports)
    }

    /// Subscribes every existing log group whose name starts with one of `prefixes`.
    pub async fn subscribe_prefixes(
        &self,
        prefixes: &[String],
        dry_run: bool,
    ) -> Result<RunReport, SubscribeError> {
        let mut names = BTreeSet::new();
        for prefix in prefixes {
            names.extend(self.list_log_groups(prefix).await?);
        }
        let names: Vec<String> = names.into_iter().collect();
        Ok(self.subscribe_log_groups(&names, dry_run).await)
    }

    /// Decides and performs the subscription of the group a `CreateLogGroup` event announces, if a configured
    /// prefix covers it. A report whose action is not a success (see [`Action::is_success`]) is worth an error
    /// from the handler, so that EventBridge retries the invocation.
    pub async fn handle_create_log_group(&self, event: &CreateLogGroupEvent) -> GroupReport {
        self.handle_event(event, false).await
    }

    /// [`Self::handle_create_log_group`] without changing anything: what it would do.
    pub async fn handle_create_log_group_dry_run(&self, event: &CreateLogGroupEvent) -> GroupReport {
        self.handle_event(event, true).await
    }

    async fn handle_event(&self, event: &CreateLogGroupEvent, dry_run: bool) -> GroupReport {
        let name = &event.log_group_name;
        let action = if let Some(code) = &event.error_code {
            Some(Action::IgnoredFailedCall {
                error_code: code.clone(),
            })
        } else if !matches_prefix(name, &self.settings.prefixes) {
            Some(Action::NotMatched)
        } else {
            None
        };
        match action {
            Some(action) => self.group_report(name, dry_run, action),
            None => self.subscribe_one(name, dry_run).await,
        }
    }

    /// Plans and (unless `dry_run`) applies the subscription of one log group.
    pub async fn subscribe_one(&self, log_group: &str, dry_run: bool) -> GroupReport {
        let action = match self.plan_and_apply(log_group, dry_run).await {
            Ok(action) => action,
            Err(error) => Action::Failed {
                error: error.to_string(),
            },
        };
        self.group_report(log_group, dry_run, action)
    }

    fn group_report(&self, log_group: &str, dry_run: bool, action: Action) -> GroupReport {
        GroupReport {
            log_group: log_group.to_string(),
            filter_name: self.settings.target.filter_name.clone(),
            dry_run,
            action,
        }
    }

    async fn plan_and_apply(&self, log_group: &str, dry_run: bool) -> Result<Action, SubscribeError> {
        let settings = &self.settings;
        // Decided before any call: the own group is skipped even when it is unreadable.
        if settings.own_log_groups.iter().any(|own| own == log_group) {
            return Ok(Action::SkippedOwnLogGroup);
        }
        let existing = self.existing_filters(log_group).await?;
        let action = match plan(log_group, &existing, &settings.target, &settings.own_log_groups) {
            Plan::Create => Action::Created,
            Plan::Update { changed } => Action::Updated { changed },
            Plan::Unchanged => return Ok(Action::Unchanged),
            Plan::SubscribedByOtherFilter { other_filter } => {
                return Ok(Action::SubscribedByOtherFilter { other_filter })
            }
            Plan::OwnLogGroup => return Ok(Action::SkippedOwnLogGroup),
            Plan::LimitReached { existing } => return Ok(Action::LimitReached { existing }),
        };
        if !dry_run {
            if let Some(limit) = self.put_filter(log_group, &existing).await? {
                return Ok(limit);
            }
        }
        Ok(action)
    }

    async fn list_log_groups(&self, prefix: &str) -> Result<Vec<String>, SubscribeError> {
        let mut pages = self
            .client
            .describe_log_groups()
            .log_group_name_prefix(prefix)
            .into_paginator()
            .items()
            .send();
        let mut names = Vec::new();
        while let Some(item) = pages.next().await {
            let group = item.map_err(|err| SubscribeError::ListLogGroups {
                prefix: prefix.to_string(),
                detail: DisplayErrorContext(&err).to_string(),
            })?;
            if let Some(name) = group.log_group_name() {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    async fn existing_filters(&self, log_group: &str) -> Result<Vec<ExistingFilter>, SubscribeError> {
        let mut pages = self
            .client
            .describe_subscription_filters()
            .log_group_name(log_group)
            .into_paginator()
            .items()
            .send();
        let mut filters = Vec::new();
        while let Some(item) = pages.next().await {
            let filter = item.map_err(|err| {
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception())
                {
                    SubscribeError::LogGroupNotFound {
                        log_group: log_group.to_string(),
                    }
                } else {
                    SubscribeError::DescribeFilters {
                        log_group: log_group.to_string(),
                        detail: DisplayErrorContext(&err).to_string(),
                    }
                }
            })?;
            filters.push(ExistingFilter {
                filter_name: filter.filter_name().unwrap_or_default().to_string(),
                destination_arn: filter.destination_arn().unwrap_or_default().to_string(),
                role_arn: filter.role_arn().filter(|r| !r.is_empty()).map(str::to_string),
                filter_pattern: filter.filter_pattern().unwrap_or_default().to_string(),
            });
        }
        Ok(filters)
    }

    /// Puts our filter. A limit error from the service (a filter added between our read and write, or a service
    /// that counts differently) becomes a limit report rather than a failure.
    async fn put_filter(
        &self,
        log_group: &str,
        existing: &[ExistingFilter],
    ) -> Result<Option<Action>, SubscribeError> {
        let target = &self.settings.target;
        let result = self
            .client
            .put_subscription_filter()
            .log_group_name(log_group)
            .filter_name(&target.filter_name)
            .filter_pattern(&target.filter_pattern)
            .destination_arn(&target.destination_arn)
            .set_role_arn(target.role_arn.clone())
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(err) => match err.as_service_error() {
                Some(e) if e.is_limit_exceeded_exception() => Ok(Some(Action::LimitReached {
                    existing: existing.iter().map(|f| f.filter_name.clone()).collect(),
                })),
                Some(e) if e.is_resource_not_found_exception() => Err(SubscribeError::LogGroupNotFound {
                    log_group: log_group.to_string(),
                }),
                service => Err(SubscribeError::PutFilter {
                    log_group: log_group.to_string(),
                    filter_name: target.filter_name.clone(),
                    detail: match service.and_then(|e| e.message()) {
                        Some(message) => {
                            format!("{}: {message}", service.and_then(|e| e.code()).unwrap_or("error"))
                        }
                        None => DisplayErrorContext(&err).to_string(),
                    },
                }),
            },
        }
    }
}
