//! `tracehose subscribe`: subscribes existing log groups, by name or by prefix, from a shell or a deploy pipeline.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args};

use super::apply::{client, Subscriber};
use super::error::{ConfigError, SubscribeError};
use super::event::CreateLogGroupEvent;
use super::report::RunReport;
use super::settings::{
    check_log_group_name, RawSettings, SourceNames, SubscribeSettings, DEFAULT_FILTER_NAME,
    ENV_DESTINATION_ARN, ENV_FILTER_NAME, ENV_FILTER_PATTERN, ENV_LAMBDA_LOG_GROUP, ENV_OWN_LOG_GROUP,
    ENV_ROLE_ARN,
};
use crate::aws::Aws;

const FLAG_SOURCES: SourceNames = SourceNames {
    destination_arn: "--destination (TRACEHOSE_SUBSCRIBE_DESTINATION_ARN)",
    role_arn: "--role-arn (TRACEHOSE_SUBSCRIBE_ROLE_ARN)",
    filter_pattern: "--filter-pattern (TRACEHOSE_SUBSCRIBE_FILTER_PATTERN)",
    filter_name: "--filter-name (TRACEHOSE_SUBSCRIBE_FILTER_NAME)",
    prefixes: "--prefix",
    own_log_group: "--own-log-group (TRACEHOSE_OWN_LOG_GROUP)",
};

/// Subscribe CloudWatch log groups to the forwarder (a Lambda function) or to a Firehose stream.
///
/// Idempotent: a filter of ours (same --filter-name) is updated in place, never duplicated; a group that already
/// sends to the destination under another filter is left alone; a group with two filters (the CloudWatch Logs
/// limit) is reported, not touched; the forwarder's own log group is never subscribed. Exits 1 when a group
/// could not be subscribed. AWS credentials, region and endpoint (AWS_ENDPOINT_URL) come from the usual AWS
/// environment variables and profiles.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("log_groups").required(true).args(["log_group", "prefix"])))]
pub struct SubscribeArgs {
    /// A log group to subscribe; repeat for several.
    #[arg(long = "log-group", value_name = "NAME")]
    pub log_group: Vec<String>,
    /// Subscribe every existing log group whose name starts with PREFIX; repeat for several.
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Vec<String>,
    /// ARN of the destination: the forwarder Lambda function, or a Firehose stream (needs --role-arn).
    #[arg(long, value_name = "ARN", env = ENV_DESTINATION_ARN)]
    pub destination: String,
    /// Role CloudWatch Logs assumes to write to a Firehose or Kinesis destination.
    #[arg(long, value_name = "ARN", env = ENV_ROLE_ARN)]
    pub role_arn: Option<String>,
    /// CloudWatch Logs filter pattern; empty forwards every event.
    #[arg(long, value_name = "PATTERN", env = ENV_FILTER_PATTERN, default_value = "")]
    pub filter_pattern: String,
    /// Name of our subscription filter: how tracehose recognises its own filter on later runs.
    #[arg(long, value_name = "NAME", env = ENV_FILTER_NAME, default_value = DEFAULT_FILTER_NAME)]
    pub filter_name: String,
    /// The forwarder's own log group, never subscribed (with a Lambda destination, /aws/lambda/<function> is
    /// excluded anyway).
    #[arg(long, value_name = "NAME", env = ENV_OWN_LOG_GROUP, value_delimiter = ',')]
    pub own_log_group: Vec<String>,
    /// Handle a saved EventBridge `CreateLogGroup` event as the Lambda handler does: subscribe its log group if
    /// one of the --prefix values covers it. For trying out the automatic subscription.
    #[arg(long, value_name = "FILE")]
    pub event: Option<PathBuf>,
    /// Report what would be done without changing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as one JSON object instead of lines of text.
    #[arg(long)]
    pub json: bool,
}

impl SubscribeArgs {
    /// Validates the arguments into settings, with errors naming the flag (and its environment variable).
    pub fn settings(&self) -> Result<SubscribeSettings, ConfigError> {
        if self.event.is_some() && self.prefix.is_empty() {
            return Err(ConfigError::Invalid {
                source_name: "--event",
                problem: "needs --prefix: the prefixes decide whether the event's log group is subscribed"
                    .into(),
            });
        }
        for name in &self.log_group {
            check_log_group_name(name).map_err(|problem| ConfigError::Invalid {
                source_name: "--log-group",
                problem,
            })?;
        }
        let mut own_log_groups = self.own_log_group.clone();
        if let Ok(lambda_group) = std::env::var(ENV_LAMBDA_LOG_GROUP) {
            own_log_groups.push(lambda_group);
        }
        let raw = RawSettings {
            destination_arn: Some(self.destination.clone()),
            role_arn: self.role_arn.clone(),
            filter_pattern: Some(self.filter_pattern.clone()),
            filter_name: Some(self.filter_name.clone()),
            prefixes: self.prefix.clone(),
            own_log_groups: own_log_groups
                .into_iter()
                .map(|g| g.trim().to_string())
                .filter(|g| !g.is_empty())
                .collect(),
        };
        SubscribeSettings::validate(raw, &FLAG_SOURCES)
    }
}

/// `tracehose subscribe` for a synchronous caller: runs [`run`] on a runtime of its own and turns the outcome into
/// the exit status: 0 when every group is subscribed or deliberately left out, 1 when a group failed or is at the
/// filter limit, 2 for a configuration error.
pub fn main(args: &SubscribeArgs) -> ExitCode {
    crate::cli::block_on(async {
        match run(args).await {
            Ok(report) if report.succeeded() => ExitCode::SUCCESS,
            Ok(_) => ExitCode::FAILURE,
            Err(SubscribeError::Config(err)) => {
                eprintln!("tracehose subscribe: configuration error: {err}");
                ExitCode::from(2)
            }
            Err(err) => {
                eprintln!("tracehose subscribe: error: {err}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Runs `tracehose subscribe`: validates, subscribes, prints the report to stdout. The caller turns
/// [`RunReport::succeeded`] into the exit status.
pub async fn run(args: &SubscribeArgs) -> Result<RunReport, SubscribeError> {
    let settings = args.settings()?;
    let event = match &args.event {
        Some(path) => Some(read_event(path)?),
        None => None,
    };
    let subscriber = Subscriber::new(client(&Aws::default()).await?, settings);
    let report = if let Some(event) = event {
        let group = if args.dry_run {
            // The event path has no dry run of its own: plan the group as `--log-group` would, if covered.
            subscriber.handle_create_log_group_dry_run(&event).await
        } else {
            subscriber.handle_create_log_group(&event).await
        };
        RunReport {
            destination_arn: args.destination.clone(),
            dry_run: args.dry_run,
            log_groups: vec![group],
        }
    } else if args.prefix.is_empty() {
        subscriber
            .subscribe_log_groups(&args.log_group, args.dry_run)
            .await
    } else {
        subscriber.subscribe_prefixes(&args.prefix, args.dry_run).await?
    };
    print_report(&report, args.json);
    Ok(report)
}

fn read_event(path: &PathBuf) -> Result<CreateLogGroupEvent, ConfigError> {
    let invalid = |problem: String| ConfigError::Invalid {
        source_name: "--event",
        problem: format!("{}: {problem}", path.display()),
    };
    let text = std::fs::read_to_string(path).map_err(|err| invalid(err.to_string()))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|err| invalid(err.to_string()))?;
    CreateLogGroupEvent::parse(&value).map_err(|err| invalid(err.to_string()))
}

fn print_report(report: &RunReport, json: bool) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (`| head`) must not turn a completed subscription into a failure: write errors are ignored.
    if json {
        if let Ok(text) = serde_json::to_string(report) {
            let _ = writeln!(out, "{text}");
        }
        return;
    }
    for group in &report.log_groups {
        let _ = writeln!(out, "{group}");
    }
    let _ = writeln!(out, "{}", report.summary());
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: SubscribeArgs,
    }

    const LAMBDA: &str = "arn:aws:lambda:eu-west-1:123456789012:function:fwd";

    fn parse(argv: &[&str]) -> Result<SubscribeArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("subscribe").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn needs_log_groups_or_a_prefix_but_not_both() {
        assert!(parse(&["--destination", LAMBDA]).is_err());
        assert!(parse(&["--destination", LAMBDA, "--log-group", "/a", "--prefix", "/b"]).is_err());
        let args = parse(&["--destination", LAMBDA, "--log-group", "/a", "--log-group", "/b"]).unwrap();
        assert_eq!(args.log_group, vec!["/a", "/b"]);
        assert_eq!(args.filter_name, DEFAULT_FILTER_NAME);
        assert!(!args.dry_run);
    }

    #[test]
    fn event_needs_the_prefixes_that_decide_it() {
        let without_prefix =
            parse(&["--destination", LAMBDA, "--log-group", "/a", "--event", "e.json"]).unwrap();
        let err = without_prefix.settings().unwrap_err().to_string();
        assert!(err.starts_with("--event: needs --prefix"), "{err}");
        let args = parse(&["--destination", LAMBDA, "--prefix", "/aws/", "--event", "e.json"]).unwrap();
        assert_eq!(args.event, Some(PathBuf::from("e.json")));
    }

    #[test]
    fn unreadable_event_names_the_flag() {
        let err = read_event(&PathBuf::from("/nonexistent/event.json")).unwrap_err();
        assert!(
            err.to_string().starts_with("--event: /nonexistent/event.json"),
            "{err}"
        );
    }

    #[test]
    fn settings_name_the_flag_at_fault() {
        let args = parse(&["--destination", "not-an-arn", "--prefix", "/aws/"]).unwrap();
        let err = args.settings().unwrap_err().to_string();
        assert!(err.starts_with("--destination"), "{err}");
        let args = parse(&["--destination", LAMBDA, "--log-group", "bad name"]).unwrap();
        let err = args.settings().unwrap_err().to_string();
        assert!(err.starts_with("--log-group"), "{err}");
    }

    #[test]
    fn lambda_destination_excludes_its_log_group() {
        let args = parse(&[
            "--destination",
            LAMBDA,
            "--prefix",
            "/aws/lambda/",
            "--own-log-group",
            "/custom/a,/custom/b",
        ])
        .unwrap();
        let settings = args.settings().unwrap();
        assert!(settings.own_log_groups.contains(&"/custom/a".to_string()));
        assert!(settings.own_log_groups.contains(&"/custom/b".to_string()));
        assert!(settings.own_log_groups.contains(&"/aws/lambda/fwd".to_string()));
    }
}
