//! The checkpoint: an append-only file of JSON lines, one per step (an object finished, a position inside
//! one), so that writing it costs one short line whatever was done before, and a crash mid-write tears at
//! most the last line, which loading ignores. The first line names the source, so that a checkpoint is
//! never applied to another bucket or prefix.

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

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
}

/// Lines of an object known to be delivered (numbered from 1): all before `next`, and `confirmed` ones
/// after it (delivered while an earlier line was not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub next: u64,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub confirmed: BTreeSet<u64>,
}

impl Default for Position {
    fn default() -> Self {
        Self {
            next: 1,
            confirmed: BTreeSet::new(),
        }
    }
}

impl Position {
    pub fn is_confirmed(&self, line: u64) -> bool {
        line < self.next || self.confirmed.contains(&line)
    }

    /// Adds a delivered line, moving `next` over every line now known to be done.
    pub fn confirm(&mut self, line: u64) {
        if line >= self.next {
            self.confirmed.insert(line);
        }
        while self.confirmed.remove(&self.next) {
            self.next += 1;
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Entry {
    Header {
        source: String,
        version: u32,
    },
    /// `complete`: every record was delivered, so the object may be deleted.
    Done {
        done: String,
        complete: bool,
    },
    Partial {
        partial: String,
        #[serde(flatten)]
        position: Position,
    },
}

/// What is known to be done; kept in memory, and appended to the file when there is one.
#[derive(Debug, Default)]
pub struct Checkpoint {
    done: HashMap<String, bool>,
    partial: HashMap<String, Position>,
    file: Option<(PathBuf, File)>,
}

impl Checkpoint {
    /// Loads `path` (created when missing, unless `read_only`) for `source` (`s3://bucket/prefix`); `None`
    /// keeps it in memory.
    pub fn open(path: Option<&Path>, source: &str, read_only: bool) -> Result<Self, CheckpointError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let io_err = |source| CheckpointError::Io {
            path: path.to_owned(),
            source,
        };
        let mut checkpoint = Self::default();
        let mut has_header = false;
        let mut torn = false;
        match File::open(path) {
            Ok(file) => {
                let lines: Vec<String> = BufReader::new(file)
                    .lines()
                    .collect::<Result<_, _>>()
                    .map_err(io_err)?;
                torn = std::fs::read(path)
                    .map_err(io_err)?
                    .last()
                    .is_some_and(|&b| b != b'\n');
                let mut first_error = None;
                for (i, line) in lines.iter().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let entry = match serde_json::from_str::<Entry>(line) {
                        Ok(entry) => entry,
                        // Each crash may tear the line it was writing; the entries after it still count.
                        Err(err) => {
                            first_error.get_or_insert((i + 1, err.to_string()));
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
                        Entry::Header { .. } => has_header = true,
                        Entry::Done { done, complete } => {
                            checkpoint.partial.remove(&done);
                            checkpoint.done.insert(done, complete);
                        }
                        Entry::Partial { partial, position } => {
                            checkpoint.partial.insert(partial, position);
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
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(io_err(err)),
        }
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
            let header = serde_json::json!({ "source": source, "version": 1 });
            writeln!(file, "{header}").map_err(io_err)?;
        }
        checkpoint.file = Some((path.to_owned(), file));
        Ok(checkpoint)
    }

    /// `Some(complete)` when the object was finished by an earlier step or run.
    pub fn done(&self, key: &str) -> Option<bool> {
        self.done.get(key).copied()
    }

    pub fn position(&self, key: &str) -> Option<&Position> {
        self.partial.get(key)
    }

    pub fn record_done(&mut self, key: &str, complete: bool) -> Result<(), CheckpointError> {
        self.partial.remove(key);
        self.done.insert(key.to_owned(), complete);
        self.append(&Entry::Done {
            done: key.to_owned(),
            complete,
        })
    }

    pub fn record_position(&mut self, key: &str, position: &Position) -> Result<(), CheckpointError> {
        if self.partial.get(key) == Some(position) {
            return Ok(());
        }
        self.partial.insert(key.to_owned(), position.clone());
        self.append(&Entry::Partial {
            partial: key.to_owned(),
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

    #[test]
    fn positions_advance_over_confirmed_lines_only() {
        let mut p = Position::default();
        p.confirm(2);
        p.confirm(4);
        assert_eq!((p.next, p.confirmed.len()), (1, 2));
        p.confirm(1);
        assert_eq!(p.next, 3);
        assert!(p.is_confirmed(4) && !p.is_confirmed(3));
        p.confirm(3);
        assert_eq!((p.next, p.confirmed.len()), (5, 0));
    }

    #[test]
    fn reopening_resumes_and_a_torn_line_or_other_source_is_handled() {
        let dir = std::env::temp_dir().join(format!("tracehose-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.jsonl");
        let _ = std::fs::remove_file(&path);
        {
            let mut c = Checkpoint::open(Some(&path), "s3://b/p", false).unwrap();
            c.record_done("a", true).unwrap();
            let mut p = Position::default();
            p.confirm(1);
            p.confirm(5);
            c.record_position("b", &p).unwrap();
            c.record_position("c", &p).unwrap();
            c.record_done("c", false).unwrap();
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"done\":\"x")
            .unwrap();
        let c = Checkpoint::open(Some(&path), "s3://b/p", false).unwrap();
        assert_eq!(c.done("a"), Some(true));
        assert_eq!(c.done("c"), Some(false));
        assert_eq!(c.done("x"), None);
        assert!(c.position("c").is_none());
        let b = c.position("b").unwrap();
        assert!(b.is_confirmed(1) && b.is_confirmed(5) && !b.is_confirmed(2));
        drop(c);
        // The torn line is followed by a fresh start, not glued to the next entry.
        let mut c = Checkpoint::open(Some(&path), "s3://b/p", false).unwrap();
        c.record_done("y", true).unwrap();
        assert_eq!(
            Checkpoint::open(Some(&path), "s3://b/p", false)
                .unwrap()
                .done("y"),
            Some(true)
        );
        assert!(matches!(
            Checkpoint::open(Some(&path), "s3://other/p", true),
            Err(CheckpointError::OtherSource { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
