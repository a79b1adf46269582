//! Listing the backup objects: every page (no ceiling at 1,000 keys), filtered by the time in the key's
//! `YYYY/MM/dd/HH` path (Firehose's own layout), else by the object's last-modified time. Objects go out
//! through a bounded channel as pages arrive, so reading and processing start before listing ends.

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::Client;
use thiserror::Error;
use tokio::sync::mpsc;

use super::args::epoch_seconds;
use super::checkpoint::Identity;

#[derive(Debug, Error)]
pub enum ListError {
    #[error("listing s3://{bucket}/{prefix} failed: {detail}")]
    Api {
        bucket: String,
        prefix: String,
        detail: String,
    },
}

/// One object to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    /// Start of the hour the object belongs to, epoch seconds, when known.
    pub time: Option<i64>,
}

impl ObjectInfo {
    pub fn identity(&self) -> Identity {
        Identity::new(self.size, self.etag.as_deref())
    }
}

/// An S3 client; path-style addressing whenever a custom endpoint is set, since S3-compatible servers
/// (moto, MinIO...) rarely resolve bucket subdomains.
pub fn s3_client(config: &aws_config::SdkConfig) -> Client {
    let custom = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(custom)
        .build();
    Client::from_conf(s3)
}

/// Which objects a time window keeps: `since` inclusive, `until` exclusive, epoch seconds. An object is
/// kept when its hour overlaps the window; an object with no known time is kept.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl Window {
    pub fn keeps(&self, time: Option<i64>) -> bool {
        let Some(start) = time else { return true };
        self.since.is_none_or(|s| start + 3600 > s) && self.until.is_none_or(|u| start < u)
    }
}

/// The hour of a key laid out by Firehose, `.../YYYY/MM/dd/HH/name`: the last run of four such path
/// segments, so that a prefix made of digits cannot be mistaken for it.
pub fn key_hour(key: &str) -> Option<i64> {
    let parts: Vec<&str> = key.split('/').collect();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    parts.windows(4).rev().find_map(|w| {
        if !(digits(w[0], 4) && digits(w[1], 2) && digits(w[2], 2) && digits(w[3], 2)) {
            return None;
        }
        let n = |s: &str| s.parse::<i64>().ok();
        epoch_seconds(n(w[0])?, n(w[1])?, n(w[2])?, n(w[3])?, 0, 0)
    })
}

/// Lists every object under the prefix into `tx`, page by page, keeping those the window keeps. Stops
/// early, without error, when the receiver is gone.
pub async fn list(
    client: &Client,
    bucket: &str,
    prefix: &str,
    window: Window,
    tx: mpsc::Sender<ObjectInfo>,
) -> Result<u64, ListError> {
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    let mut listed = 0;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| ListError::Api {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            detail: DisplayErrorContext(&err).to_string(),
        })?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            // Zero-byte "folder" markers hold nothing to replay.
            if key.ends_with('/') {
                continue;
            }
            let time = key_hour(key).or_else(|| object.last_modified().map(|t| t.secs() - t.secs() % 3600));
            if !window.keeps(time) {
                continue;
            }
            let info = ObjectInfo {
                key: key.to_owned(),
                size: object.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                etag: object.e_tag().map(str::to_owned),
                time,
            };
            listed += 1;
            if tx.send(info).await.is_err() {
                return Ok(listed);
            }
        }
    }
    Ok(listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_come_from_firehose_keys() {
        let key = "errors/http-endpoint-failed/2020/07/09/03/s-1-2020-07-09-03-39-03-uuid";
        assert_eq!(key_hour(key), Some(1_594_263_600));
        assert_eq!(key_hour("2019/01/01/00/2020/07/09/03/x"), Some(1_594_263_600));
        assert_eq!(key_hour("plain/object.gz"), None);
        assert_eq!(key_hour("2020/13/09/03/x"), None);
    }

    #[test]
    fn windows_keep_overlapping_hours() {
        let w = Window {
            since: Some(10_000),
            until: Some(20_000),
        };
        assert!(w.keeps(Some(7_200)));
        assert!(!w.keeps(Some(6_400)));
        assert!(w.keeps(Some(19_999)));
        assert!(!w.keeps(Some(20_000)));
        assert!(w.keeps(None));
        assert!(Window::default().keeps(Some(0)));
    }
}
