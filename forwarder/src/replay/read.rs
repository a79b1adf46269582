//! Reading one object as a stream of chunks, never whole: the S3 body arrives in pieces over a bounded
//! channel, is inflated gzip member by member when it is gzip, and is cut into chunks, each one record:
//! a line (a backup line `{"rawData",...}`) or, when a member holds no newline, the member itself (a
//! CloudWatch-to-S3 object: one subscription payload per member, maybe several `}{`). Each chunk is capped,
//! so memory is bounded by the largest record, whatever the object's size.

use std::io::{self, BufRead, BufReader, Read};

use bytes::Bytes;
use flate2::bufread::GzDecoder;
use thiserror::Error;
use tokio::sync::mpsc;

const READ_BUFFER: usize = 256 << 10;

#[derive(Debug, Error)]
pub enum ChunkError {
    #[error("line {line} is larger than {limit} bytes (TRACEHOSE_MAX_DECOMPRESSED_BYTES); skipped")]
    TooLarge { line: u64, limit: usize },
    #[error("line {line}: gzip member {member} is corrupt or truncated: {source}")]
    Gzip {
        line: u64,
        member: u64,
        source: io::Error,
    },
    #[error("after gzip member {member}: bytes that are not gzip; the rest of the object is skipped")]
    Trailing { member: u64 },
    #[error("reading the object failed: {0}")]
    Io(io::Error),
}

/// A blocking `Read` over the pieces an async task receives from S3.
#[derive(Debug)]
pub struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl ChannelReader {
    pub fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        Self {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(piece)) => self.current = piece,
                Some(Err(err)) => return Err(err),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

enum Source<R: BufRead> {
    Plain(R),
    /// Inside a gzip member; the buffer reads the member's inflated bytes.
    Member(Box<BufReader<GzDecoder<R>>>),
    /// Between members: the compressed stream, at the start of the next member or at its end.
    Between(R),
    Done,
}

/// Chunks of one object, numbered from 1 (`line`) the same way on every run, so that a checkpoint's
/// position means the same thing when the object is read again.
pub struct ObjectReader<R: BufRead> {
    source: Source<R>,
    limit: usize,
    line: u64,
    member: u64,
}

impl<R: BufRead> std::fmt::Debug for ObjectReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectReader")
            .field("line", &self.line)
            .field("member", &self.member)
            .finish()
    }
}

impl ObjectReader<BufReader<ChannelReader>> {
    pub fn from_channel(rx: mpsc::Receiver<io::Result<Bytes>>, limit: usize) -> io::Result<Self> {
        Self::new(
            BufReader::with_capacity(READ_BUFFER, ChannelReader::new(rx)),
            limit,
        )
    }
}

impl<R: BufRead> ObjectReader<R> {
    /// `limit` caps each chunk (after inflating).
    pub fn new(mut inner: R, limit: usize) -> io::Result<Self> {
        let gzip = inner.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        Ok(Self {
            source: if gzip {
                Source::Between(inner)
            } else {
                Source::Plain(inner)
            },
            limit,
            line: 0,
            member: 0,
        })
    }

    /// The next chunk into `out` (cleared first): `Some(Ok(line))`, or an error that costs only that chunk
    /// (its line is skipped) or ends the object; `None` at the end.
    pub fn next_chunk(&mut self, out: &mut Vec<u8>) -> Option<Result<u64, ChunkError>> {
        out.clear();
        loop {
            match std::mem::replace(&mut self.source, Source::Done) {
                Source::Done => return None,
                Source::Plain(mut r) => {
                    let read = read_line_capped(&mut r, out, self.limit);
                    self.source = Source::Plain(r);
                    match read {
                        Ok(Line::End) => {
                            self.source = Source::Done;
                            return None;
                        }
                        Ok(line) => return Some(self.finish_line(line)),
                        Err(err) => {
                            self.source = Source::Done;
                            return Some(Err(ChunkError::Io(err)));
                        }
                    }
                }
                Source::Between(mut r) => match r.fill_buf() {
                    Ok([]) => return None,
                    Ok([0x1f, 0x8b, ..]) => {
                        self.member += 1;
                        self.source = Source::Member(Box::new(BufReader::with_capacity(
                            READ_BUFFER,
                            GzDecoder::new(r),
                        )));
                    }
                    Ok(_) => return Some(Err(ChunkError::Trailing { member: self.member })),
                    Err(err) => return Some(Err(ChunkError::Io(err))),
                },
                Source::Member(mut m) => match read_line_capped(&mut m, out, self.limit) {
                    Ok(Line::End) => {
                        self.source = Source::Between(m.into_inner().into_inner());
                    }
                    Ok(line) => {
                        self.source = Source::Member(m);
                        return Some(self.finish_line(line));
                    }
                    Err(source) => {
                        // A broken member cannot say where the next one starts: the object ends here.
                        self.line += 1;
                        return Some(Err(ChunkError::Gzip {
                            line: self.line,
                            member: self.member,
                            source,
                        }));
                    }
                },
            }
        }
    }

    fn finish_line(&mut self, line: Line) -> Result<u64, ChunkError> {
        self.line += 1;
        match line {
            Line::TooLarge => Err(ChunkError::TooLarge {
                line: self.line,
                limit: self.limit,
            }),
            _ => Ok(self.line),
        }
    }
}

enum Line {
    Full,
    TooLarge,
    End,
}

/// One line (without its `\n`) or what is left before the end; a line over `limit` is consumed but not
/// kept. `Line::End` only when nothing at all was left.
fn read_line_capped(r: &mut impl BufRead, out: &mut Vec<u8>, limit: usize) -> io::Result<Line> {
    let mut seen = false;
    let mut too_large = false;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(match (seen, too_large) {
                (false, _) => Line::End,
                (true, true) => Line::TooLarge,
                (true, false) => Line::Full,
            });
        }
        seen = true;
        let (take, done) = match memchr::memchr(b'\n', buf) {
            Some(at) => (at, true),
            None => (buf.len(), false),
        };
        if !too_large {
            if out.len() + take > limit {
                too_large = true;
                out.clear();
            } else {
                out.extend_from_slice(&buf[..take]);
            }
        }
        r.consume(take + usize::from(done));
        if done {
            return Ok(if too_large { Line::TooLarge } else { Line::Full });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use flate2::Compression;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn chunks(bytes: &[u8], limit: usize) -> Vec<Result<(u64, String), String>> {
        let mut reader = ObjectReader::new(bytes, limit).unwrap();
        let mut out = Vec::new();
        let mut all = Vec::new();
        while let Some(next) = reader.next_chunk(&mut out) {
            all.push(
                next.map(|line| (line, String::from_utf8_lossy(&out).into_owned()))
                    .map_err(|e| e.to_string()),
            );
        }
        all
    }

    #[test]
    fn plain_lines_are_chunks_and_the_last_needs_no_newline() {
        let got = chunks(b"{\"a\":1}\n{\"b\":2}\n\n{\"c\":3}", 100);
        let lines: Vec<_> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            lines,
            [
                (1, "{\"a\":1}".into()),
                (2, "{\"b\":2}".into()),
                (3, String::new()),
                (4, "{\"c\":3}".into())
            ]
        );
    }

    #[test]
    fn each_member_without_newlines_is_a_chunk_and_lines_inside_members_split() {
        let mut object = gzip(b"{\"m\":1}{\"m\":2}");
        object.extend(gzip(b"{\"m\":3}"));
        object.extend(gzip(b"{\"l\":1}\n{\"l\":2}\n"));
        let got: Vec<_> = chunks(&object, 100).into_iter().map(Result::unwrap).collect();
        assert_eq!(
            got,
            [
                (1, "{\"m\":1}{\"m\":2}".into()),
                (2, "{\"m\":3}".into()),
                (3, "{\"l\":1}".into()),
                (4, "{\"l\":2}".into())
            ]
        );
    }

    #[test]
    fn a_line_over_the_cap_costs_only_itself() {
        let mut text = b"ok\n".to_vec();
        text.extend(vec![b'x'; 1000]);
        text.extend(b"\nafter\n");
        let got = chunks(&gzip(&text), 100);
        assert_eq!(got[0], Ok((1, "ok".into())));
        assert!(got[1]
            .as_ref()
            .unwrap_err()
            .starts_with("line 2 is larger than 100 bytes"));
        assert_eq!(got[2], Ok((3, "after".into())));
    }

    #[test]
    fn a_broken_member_or_trailing_garbage_ends_the_object_named() {
        let mut object = gzip(b"{\"a\":1}");
        let mut broken = gzip(b"{\"b\":2} and some more text to make it longer");
        broken.truncate(broken.len() - 12);
        object.extend(broken);
        let got = chunks(&object, 100);
        assert_eq!(got[0], Ok((1, "{\"a\":1}".into())));
        assert!(got[1].as_ref().unwrap_err().contains("gzip member 2"), "{got:?}");
        assert_eq!(got.len(), 2);

        let mut object = gzip(b"{\"a\":1}");
        object.extend(b"junk");
        let got = chunks(&object, 100);
        assert_eq!(got.len(), 2);
        assert!(got[1].as_ref().unwrap_err().contains("not gzip"));
    }

    #[test]
    fn the_channel_reader_joins_pieces() {
        let (tx, rx) = mpsc::channel(4);
        std::thread::spawn(move || {
            for piece in [&b"{\"a\""[..], b":1}\n{", b"\"b\":2}"] {
                tx.blocking_send(Ok(Bytes::copy_from_slice(piece))).unwrap();
            }
        });
        let mut reader = ObjectReader::from_channel(rx, 100).unwrap();
        let mut out = Vec::new();
        assert_eq!(reader.next_chunk(&mut out).unwrap().unwrap(), 1);
        assert_eq!(out, b"{\"a\":1}");
        assert_eq!(reader.next_chunk(&mut out).unwrap().unwrap(), 2);
        assert_eq!(out, b"{\"b\":2}");
        assert!(reader.next_chunk(&mut out).is_none());
    }
}
