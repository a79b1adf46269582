//! One run per checkpoint: two runs on one file would each send what the other has not yet recorded, and
//! race on deletes. A run holds an OS advisory lock on `FILE.lock` from before it reads the checkpoint to its
//! exit, and writes there who it is (pid, host, start, command), so that a second run can name the holder.
//! The OS drops the lock with the process however it ends, so a run killed with `kill -9` blocks nothing;
//! its record stays in the file until the next run overwrites it. The file is never removed: removing it
//! would let a third run lock a new file while a second still holds the old one.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
use serde::{Deserialize, Serialize};

use super::checkpoint::CheckpointError;

/// More than any holder record this code writes: the file is outside data.
const MAX_HOLDER_BYTES: u64 = 4096;
/// The command line kept in the holder record.
const MAX_COMMAND_CHARS: usize = 512;

/// The lock, held while this value lives.
#[derive(Debug)]
pub struct CheckpointLock {
    _file: File,
}

#[derive(Debug, Serialize, Deserialize)]
struct Holder {
    pid: u32,
    host: String,
    /// Epoch seconds.
    started: i64,
    command: String,
}

/// `FILE.lock` next to the checkpoint.
pub fn lock_path(checkpoint: &Path) -> PathBuf {
    let mut name = checkpoint.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the lock for `checkpoint`, or says who holds it.
pub fn acquire(checkpoint: &Path) -> Result<CheckpointLock, CheckpointError> {
    let path = lock_path(checkpoint);
    let io_err = |source| CheckpointError::Io {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(CheckpointError::Locked {
                path: checkpoint.to_owned(),
                holder: describe_holder(&mut file),
            })
        }
        Err(TryLockError::Error(err)) => return Err(io_err(err)),
    }
    let holder = Holder {
        pid: std::process::id(),
        host: host_name(),
        started: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        command: std::env::args()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(MAX_COMMAND_CHARS)
            .collect(),
    };
    let mut record = serde_json::to_vec(&holder).map_err(|err| io_err(err.into()))?;
    record.push(b'\n');
    file.set_len(0).map_err(io_err)?;
    file.write_all(&record).map_err(io_err)?;
    Ok(CheckpointLock { _file: file })
}

/// The holder as a phrase, from what it wrote (it may not have written yet, or the file may be foreign).
fn describe_holder(file: &mut File) -> String {
    let mut text = String::new();
    let read = file.take(MAX_HOLDER_BYTES).read_to_string(&mut text);
    match read
        .ok()
        .and_then(|_| serde_json::from_str::<Holder>(text.trim()).ok())
    {
        Some(h) => format!(
            "pid {} on {}, started {}: {}",
            h.pid,
            h.host,
            format_utc(h.started),
            h.command
        ),
        None => "another process, which has not recorded who it is".to_owned(),
    }
}

fn host_name() -> String {
    let from_file = |path| std::fs::read_to_string(path).ok();
    from_file("/proc/sys/kernel/hostname")
        .or_else(|| from_file("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "an unknown host".to_owned())
}

/// `YYYY-MM-DDTHH:MM:SSZ` for epoch seconds, with the SDK's own date type (replay already speaks S3); a time
/// it cannot write (past year 9999) is given in seconds.
fn format_utc(secs: i64) -> String {
    DateTime::from_secs(secs)
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| format!("{secs} s after the epoch"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder_and_a_released_lock_is_taken_again() {
        let dir = std::env::temp_dir().join(format!("tracehose-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let checkpoint = dir.join("c.jsonl");
        let first = acquire(&checkpoint).unwrap();
        // flock belongs to the open file, not the process: a second open conflicts even in this process.
        let err = acquire(&checkpoint).unwrap_err().to_string();
        let pid = format!("pid {} on ", std::process::id());
        assert!(err.contains(&pid) && err.contains(&host_name()), "{err}");
        assert!(err.contains(&checkpoint.display().to_string()), "{err}");
        drop(first);
        // What the dead holder wrote stays until the next run overwrites it; it blocks nothing.
        let again = acquire(&checkpoint).unwrap();
        drop(again);
        std::fs::write(lock_path(&checkpoint), "not a holder").unwrap();
        let _third = acquire(&checkpoint).unwrap();
        let err = acquire(&checkpoint).unwrap_err().to_string();
        assert!(err.contains(&pid), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_holder_that_wrote_nothing_is_still_reported() {
        let dir = std::env::temp_dir().join(format!("tracehose-lock-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let checkpoint = dir.join("c.jsonl");
        let held = File::create(lock_path(&checkpoint)).unwrap();
        held.try_lock().unwrap();
        let err = acquire(&checkpoint).unwrap_err().to_string();
        assert!(err.contains("has not recorded who it is"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn times_are_written_in_utc() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(1_594_265_943), "2020-07-09T03:39:03Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
    }
}
