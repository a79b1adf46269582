//! `tracehose replay` arguments: where the backups are, where they go, which ones.

use std::path::PathBuf;

use clap::Args;
use thiserror::Error;

/// Replay Firehose S3 failed-data backups (and plain CloudWatch-to-S3 objects) through the configured
/// destinations, or back into a Firehose stream. Resumable (--checkpoint), idempotent per record
/// (`dataId`), and an object is deleted (--delete-after) only once every record in it was delivered.
/// AWS credentials, region and endpoints come from the usual AWS variables (AWS_ENDPOINT_URL,
/// AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_FIREHOSE; a custom S3 endpoint is addressed path-style).
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// `s3://BUCKET/PREFIX`: every object under the prefix, e.g. `s3://backups/http-endpoint-failed/`.
    pub source: String,
    /// `destinations` (the configured ones, as live data; NDJSON on stdout when none is configured) or
    /// `firehose:STREAM` (the original records, back into that stream with PutRecordBatch).
    #[arg(long, default_value = "destinations", value_name = "TARGET")]
    pub to: String,
    /// Only objects of this hour or later: `2026-05-01`, `2026-05-01T13`, `2026-05-01T13:20:00Z`, or epoch
    /// seconds. Taken from the key's `YYYY/MM/dd/HH` path, else from the object's last-modified time.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only objects before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// List what would be replayed (objects, sizes, where a checkpoint resumes) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Append-only progress file: finished objects and the position inside unfinished ones. A re-run with
    /// the same file skips what was confirmed.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Delete each object once every record in it was confirmed delivered (never before; an object with
    /// a record that could not be read or was refused is kept).
    #[arg(long)]
    pub delete_after: bool,
    /// Objects replayed at once (and PutRecordBatch calls in flight with --to firehose:STREAM).
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Destinations,
    Firehose(String),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ArgError {
    #[error("{0:?} is not an S3 location: expected s3://BUCKET/PREFIX")]
    Source(String),
    #[error("--to {0:?}: expected `destinations` or `firehose:STREAM`")]
    Target(String),
    #[error("--{flag} {value:?}: expected YYYY-MM-DD[THH[:MM[:SS]]][Z] or epoch seconds")]
    Time { flag: &'static str, value: String },
    #[error("--since is after --until")]
    EmptyWindow,
}

/// `s3://bucket/prefix` split in two; the prefix may be empty.
pub fn parse_source(source: &str) -> Result<(String, String), ArgError> {
    let rest = source
        .strip_prefix("s3://")
        .ok_or_else(|| ArgError::Source(source.to_owned()))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(ArgError::Source(source.to_owned()));
    }
    Ok((bucket.to_owned(), prefix.to_owned()))
}

pub fn parse_target(to: &str) -> Result<Target, ArgError> {
    match to.split_once(':') {
        None if to == "destinations" => Ok(Target::Destinations),
        Some(("firehose", stream)) if !stream.is_empty() => Ok(Target::Firehose(stream.to_owned())),
        _ => Err(ArgError::Target(to.to_owned())),
    }
}

/// The time window, in epoch seconds: `since` inclusive, `until` exclusive.
pub fn parse_window(
    since: Option<&str>,
    until: Option<&str>,
) -> Result<(Option<i64>, Option<i64>), ArgError> {
    let parse = |flag, value: Option<&str>| {
        value
            .map(|v| {
                parse_time(v).ok_or_else(|| ArgError::Time {
                    flag,
                    value: v.to_owned(),
                })
            })
            .transpose()
    };
    let window = (parse("since", since)?, parse("until", until)?);
    if let (Some(s), Some(u)) = window {
        if s > u {
            return Err(ArgError::EmptyWindow);
        }
    }
    Ok(window)
}

/// Epoch seconds from `YYYY-MM-DD[THH[:MM[:SS]]][Z]` (UTC; a space may stand for `T`) or plain epoch seconds.
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut date = date.split('-');
    let (y, m, d) = (
        num(date.next()?, 4)?,
        num(date.next()?, 2)?,
        num(date.next()?, 2)?,
    );
    if date.next().is_some() {
        return None;
    }
    let mut hms = [0i64; 3];
    if let Some(time) = time {
        let parts: Vec<&str> = time.split(':').collect();
        if parts.is_empty() || parts.len() > 3 {
            return None;
        }
        for (slot, part) in hms.iter_mut().zip(&parts) {
            *slot = num(part, 2)?;
        }
    }
    epoch_seconds(y, m, d, hms[0], hms[1], hms[2])
}

fn num(text: &str, digits: usize) -> Option<i64> {
    (text.len() == digits && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// Seconds since the epoch for a UTC civil time, or `None` when a field is out of range.
pub fn epoch_seconds(y: i64, m: i64, d: i64, h: i64, min: i64, s: i64) -> Option<i64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || min > 59 || s > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm): exact for every proleptic Gregorian date.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + min * 60 + s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sources_targets_and_times() {
        assert_eq!(parse_source("s3://b/p/q/").unwrap(), ("b".into(), "p/q/".into()));
        assert_eq!(parse_source("s3://b").unwrap(), ("b".into(), String::new()));
        assert!(parse_source("b/p").is_err());
        assert!(parse_source("s3:///p").is_err());
        assert_eq!(parse_target("destinations").unwrap(), Target::Destinations);
        assert_eq!(parse_target("firehose:s").unwrap(), Target::Firehose("s".into()));
        assert!(parse_target("firehose:").is_err());
        assert!(parse_target("stdout").is_err());
        assert_eq!(parse_time("1970-01-01"), Some(0));
        assert_eq!(parse_time("2020-07-09T03:39:03Z"), Some(1_594_265_943));
        assert_eq!(parse_time("2020-07-09T03"), Some(1_594_263_600));
        assert_eq!(parse_time("2020-07-09 03:39"), Some(1_594_265_940));
        assert_eq!(parse_time("1594265943"), Some(1_594_265_943));
        assert_eq!(parse_time("2020-13-01"), None);
        assert_eq!(parse_time("2020-1-01"), None);
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(
            parse_window(Some("2021-01-01"), Some("2020-01-01")),
            Err(ArgError::EmptyWindow)
        );
    }
}
