//! The checkpoint: an append-only file of JSON lines, one per step (an object finished, a position inside
//! one), so that writing it costs one short line whatever was done before, and a crash mid-write tears at
//! most the last line, which loading ignores. The first line names the source, so that a checkpoint is
//! never applied to another bucket or prefix; every entry names the object it was written for (size and
//! ETag), so that it is never applied to other content copied under the same key. A run holds the file's
//! [lock](super::lock) from before it reads it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::lock::{self, CheckpointLock};
use super::position::Position;

/// The format written: version 1 entries named no object, so they cannot be checked against one.
const VERSION: u32 = 2;
/// Longer than any entry this code writes (a position's ranges are bounded by one segment's gaps).
const MAX_LINE_BYTES: u64 = 16 << 20;

#[derive(Debug, Error)]
pub enum CheckpointError {
    #[error("checkpoint {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("checkpoint {path} belongs to {found}, not {source_url}: use another file")]
    OtherSource {
        path: PathBuf,
        found: String,
        source_url: String,
    },
    #[error("checkpoint {path}: line {line} is not a checkpoint entry: {reason}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error(
        "checkpoint {path} is version {found}, whose entries do not say which object they were written for, so \
         they cannot be checked against the objects now in S3: finish that replay with the tracehose that \
         wrote it, or use a new file"
    )]
    Version { path: PathBuf, found: u32 },
    #[error("checkpoint {path} is in use by {holder}; one run per checkpoint")]
    Locked { path: PathBuf, holder: String },
}

/// What an entry was written for: the object's size and ETag, as S3 returned them when it was read. Other
/// content copied under the same key (a restore, a re-upload) differs in one of them, unless it is the same
/// bytes uploaded the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

impl Identity {
    /// S3 quotes ETags; some S3-compatible servers do not.
    pub fn new(size: u64, etag: Option<&str>) -> Self {
        Self {
            size,
            etag: etag.map(|e| e.trim_matches('"').to_owned()),
        }
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.etag {
            Some(etag) => write!(f, "{} bytes, ETag {etag}", self.size),
            None => write!(f, "{} bytes, no ETag", self.size),
        }
    }
}

/// An object an earlier step or run finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// Every record in it was delivered.
    pub complete: bool,
    pub object: Identity,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Entry {
    Header {
        source: String,
        version: u32,
    },
    Done {
        done: String,
        complete: bool,
        #[serde(flatten)]
        object: Identity,
    },
    Partial {
        partial: String,
        #[serde(flatten)]
        object: Identity,
        #[serde(flatten)]
        position: Position,
    },
}

/// What is known to be done; kept in memory, and appended to the file when there is one.
#[derive(Debug, Default)]
pub struct Checkpoint {
    done: HashMap<String, Done>,
    partial: HashMap<String, (Identity, Position)>,
    file: Option<(PathBuf, File)>,
    _lock: Option<CheckpointLock>,
}

impl Checkpoint {
    /// Loads `path` (created when missing, unless `read_only`) for `source` (`s3://bucket/prefix`); `None`
    /// keeps it in memory. Unless `read_only`, the file stays locked while the value lives.
    pub fn open(path: Option<&Path>, source: &str, read_only: bool) -> Result<Self, CheckpointError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let io_err = |source| CheckpointError::Io {
            path: path.to_owned(),
            source,
        };
        let lock = if read_only {
            None
        } else {
            Some(lock::acquire(path)?)
        };
        let mut checkpoint = Self::default();
        let (has_header, torn) = match File::open(path) {
            Ok(file) => checkpoint.load(path, source, file)?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => (false, false),
            Err(err) => return Err(io_err(err)),
        };
        if read_only {
            return Ok(checkpoint);
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io_err)?;
        // A torn last line must not glue itself to the next entry.
        if torn {
            writeln!(file).map_err(io_err)?;
        }
        if !has_header {
            let header = serde_json::json!({ "source": source, "version": VERSION });
            writeln!(file, "{header}").map_err(io_err)?;
        }
        checkpoint.file = Some((path.to_owned(), file));
        checkpoint._lock = lock;
        Ok(checkpoint)
    }

    /// Reads every entry; returns whether there was a header and whether the last line was torn.
    fn load(&mut self, path: &Path, source: &str, file: File) -> Result<(bool, bool), CheckpointError> {
        let mut reader = BufReader::new(file);
        let mut line = Vec::new();
        let mut has_header = false;
        let mut torn = false;
        let mut first_error = None;
        for number in 1.. {
            line.clear();
            let read = reader
                .by_ref()
                .take(MAX_LINE_BYTES + 1)
                .read_until(b'\n', &mut line)
                .map_err(|source| CheckpointError::Io {
                    path: path.to_owned(),
                    source,
                })?;
            if read == 0 {
                break;
            }
            torn = line.last() != Some(&b'\n');
            if torn && read as u64 > MAX_LINE_BYTES {
                return Err(CheckpointError::Corrupt {
                    path: path.to_owned(),
                    line: number,
                    reason: format!("longer than {MAX_LINE_BYTES} bytes"),
                });
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let entry = match serde_json::from_slice::<Entry>(&line) {
                Ok(entry) => entry,
                // Each crash may tear the line it was writing; the entries after it still count.
                Err(err) => {
                    first_error.get_or_insert((number, err.to_string()));
                    continue;
                }
            };
            match entry {
                Entry::Header { source: found, .. } if found != source => {
                    return Err(CheckpointError::OtherSource {
                        path: path.to_owned(),
                        found,
                        source_url: source.to_owned(),
                    })
                }
                Entry::Header { version, .. } if version != VERSION => {
                    return Err(CheckpointError::Version {
                        path: path.to_owned(),
                        found: version,
                    })
                }
                Entry::Header { .. } => has_header = true,
                Entry::Done {
                    done,
                    complete,
                    object,
                } => {
                    self.partial.remove(&done);
                    self.done.insert(done, Done { complete, object });
                }
                Entry::Partial {
                    partial,
                    object,
                    position,
                } => {
                    self.done.remove(&partial);
                    self.partial.insert(partial, (object, position));
                }
            }
        }
        // Torn lines only ever follow a header: without one, this is some other file.
        if let (false, Some((line, reason))) = (has_header, first_error) {
            return Err(CheckpointError::Corrupt {
                path: path.to_owned(),
                line,
                reason,
            });
        }
        Ok((has_header, torn))
    }

    /// The object's entry when an earlier step or run finished it.
    pub fn done(&self, key: &str) -> Option<&Done> {
        self.done.get(key)
    }

    /// Where an earlier step or run left the object, and which object that was.
    pub fn position(&self, key: &str) -> Option<&(Identity, Position)> {
        self.partial.get(key)
    }

    pub fn record_done(
        &mut self,
        key: &str,
        complete: bool,
        object: &Identity,
    ) -> Result<(), CheckpointError> {
        self.partial.remove(key);
        let done = Done {
            complete,
            object: object.clone(),
        };
        if self.done.get(key) == Some(&done) {
            return Ok(());
        }
        self.done.insert(key.to_owned(), done);
        self.append(&Entry::Done {
            done: key.to_owned(),
            complete,
            object: object.clone(),
        })
    }

    pub fn record_position(
        &mut self,
        key: &str,
        object: &Identity,
        position: &Position,
    ) -> Result<(), CheckpointError> {
        let entry = (object.clone(), position.clone());
        if self.partial.get(key) == Some(&entry) {
            return Ok(());
        }
        self.done.remove(key);
        self.partial.insert(key.to_owned(), entry);
        self.append(&Entry::Partial {
            partial: key.to_owned(),
            object: object.clone(),
            position: position.clone(),
        })
    }

    /// One line per entry, written in one call so that a crash tears at most that line.
    fn append(&mut self, entry: &Entry) -> Result<(), CheckpointError> {
        let Some((path, file)) = &mut self.file else {
            return Ok(());
        };
        let mut line = serde_json::to_vec(entry).map_err(|err| CheckpointError::Io {
            path: path.clone(),
            source: err.into(),
        })?;
        line.push(b'\n');
        file.write_all(&line).map_err(|source| CheckpointError::Io {
            path: path.clone(),
            source,
        })
    }

    /// Makes the file durable (a process crash loses nothing written; this covers the machine's).
    pub fn sync(&mut self) -> Result<(), CheckpointError> {
        match &mut self.file {
            Some((path, file)) => file.sync_data().map_err(|source| CheckpointError::Io {
                path: path.clone(),
                source,
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tracehose-ckpt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reopening_resumes_and_a_torn_line_or_other_source_is_handled() {
        let dir = scratch("reopen");
        let path = dir.join("c.jsonl");
        let a = Identity::new(10, Some("\"abc\""));
        let b = Identity::new(20, None);
        {
            let mut c = Checkpoint::open(Some(&path), "s3://b/p", false).unwrap();
            c.record_done("a", true, &a).unwrap();
            let mut p = Position::default();
            p.confirm(1);
            p.confirm(5);
            c.record_position("b", &b, &p).unwrap();
            c.record_position("c", &b, &p).unwrap();
            c.record_done("c", false, &b).unwrap();
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"done\":\"x")
            .unwrap();
        let c = Checkpoint::open(Some(&path), "s3://b/p", false).unwrap();
        assert_eq!(
            c.done("a"),
            Some(&Done {
                complete: true,
                object: a.clone()
            })
        );
        assert_eq!(c.done("a").unwrap().object.etag.as_deref(), Some("abc"));
        assert_eq!(c.done("c").map(|d| d.complete), Some(false));
        assert_eq!(c.done("x"), None);
        assert!(c.position("c").is_none());
        let (object, p) = c.position("b").unwrap();
        assert_eq!(object, &b);
        assert!(p.is_confirmed(1) && p.is_confirmed(5) && !p.is_confirmed(2));
        drop(c);
        // The torn line is followed by a fresh start, not glued to the next entry.
        let mut c = Checkpoint::open(Some(&path), "s3://b/p", false).unwrap();
        c.record_done("y", true, &a).unwrap();
        drop(c);
        assert!(Checkpoint::open(Some(&path), "s3://b/p", false)
            .unwrap()
            .done("y")
            .is_some());
        assert!(matches!(
            Checkpoint::open(Some(&path), "s3://other/p", true),
            Err(CheckpointError::OtherSource { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_second_open_is_refused_while_the_first_lives_and_a_dry_run_takes_no_lock() {
        let dir = scratch("lock");
        let path = dir.join("c.jsonl");
        let first = Checkpoint::open(Some(&path), "s3://b/p", false).unwrap();
        let err = Checkpoint::open(Some(&path), "s3://b/p", false).unwrap_err();
        assert!(matches!(err, CheckpointError::Locked { .. }), "{err}");
        assert!(Checkpoint::open(Some(&path), "s3://b/p", true).is_ok());
        drop(first);
        assert!(Checkpoint::open(Some(&path), "s3://b/p", false).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_version_1_file_or_an_overlong_line_is_refused_named() {
        let dir = scratch("old");
        let path = dir.join("c.jsonl");
        std::fs::write(
            &path,
            "{\"source\":\"s3://b/p\",\"version\":1}\n{\"done\":\"a\",\"complete\":true}\n",
        )
        .unwrap();
        let err = Checkpoint::open(Some(&path), "s3://b/p", false).unwrap_err();
        assert!(matches!(err, CheckpointError::Version { found: 1, .. }), "{err}");
        let mut long = b"{\"source\":\"s3://b/p\",\"version\":2}\n".to_vec();
        long.resize(long.len() + MAX_LINE_BYTES as usize + 10, b'x');
        std::fs::write(&path, long).unwrap();
        let err = Checkpoint::open(Some(&path), "s3://b/p", true).unwrap_err();
        assert!(matches!(err, CheckpointError::Corrupt { line: 2, .. }), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_later_entry_for_a_key_replaces_an_earlier_one() {
        let dir = scratch("later");
        let path = dir.join("c.jsonl");
        let old = Identity::new(10, Some("old"));
        let new = Identity::new(12, Some("new"));
        {
            let mut c = Checkpoint::open(Some(&path), "s3://b/p", false).unwrap();
            c.record_done("k", true, &old).unwrap();
            c.record_position("k", &new, &Position::default()).unwrap();
        }
        let c = Checkpoint::open(Some(&path), "s3://b/p", true).unwrap();
        assert!(c.done("k").is_none());
        assert_eq!(c.position("k").map(|(o, _)| o), Some(&new));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
