//! Reading one object as a stream of chunks, never whole: the S3 body arrives in pieces, read ahead by a
//! bounded number of bytes ([`super::body`]), is inflated gzip member by member when it is gzip, and is cut into chunks, each one record:
//! a line (a backup line `{"rawData",...}`) or, when a member holds no newline, the member itself (a
//! CloudWatch-to-S3 object: one subscription payload per member, maybe several `}{`). Each chunk is capped,
//! so memory is bounded by the largest record, whatever the object's size.
//!
//! The object's own inflation draws on the object's [`Budget`], as its records' inflations do: a small
//! object of one gzip member of newlines, or of one huge line over the cap, would otherwise cost unbounded
//! time before a single record was seen. Each read from a member is metered, so the reader stops within one
//! read buffer of the budget, even inside a line.

use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::GzDecoder;
use thiserror::Error;

use super::body::Body;

use crate::input::{Budget, Clock, Stop};

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
    #[error(
        "line {line}: after gzip member {member}, bytes that are not gzip; the rest of the object is skipped"
    )]
    Trailing { line: u64, member: u64 },
    #[error("reading the object failed: {0}")]
    Io(io::Error),
    /// The object's budget or deadline: the object is not done, and a re-run with more resumes it.
    #[error("{0}")]
    Stopped(Stop),
}

impl ChunkError {
    /// The line the error costs; `None` for a failure to read, which is not the data's.
    pub fn line(&self) -> Option<u64> {
        match self {
            Self::TooLarge { line, .. } | Self::Gzip { line, .. } | Self::Trailing { line, .. } => {
                Some(*line)
            }
            Self::Io(_) | Self::Stopped(_) => None,
        }
    }
}

/// Carried inside the `io::Error` a metered read fails with, so that the reader can tell its own stop
/// from a broken member; why it stopped is then in the object's budget.
#[derive(Debug, Error)]
#[error("the object's decompression budget is spent or its deadline passed")]
struct Halted;

/// A gzip member's inflated bytes, counted and allowed only up to what the object's budget has left, and
/// only before its deadline.
struct Metered<R: BufRead> {
    inner: GzDecoder<R>,
    /// Bytes this member may still produce before the budget is spent, set before each of the reader's
    /// calls (records between them draw on the same budget).
    allowed: usize,
    /// Bytes produced since the reader last charged them.
    produced: usize,
    clock: Clock,
}

impl<R: BufRead> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.clock.check().is_err() {
            return Err(io::Error::other(Halted));
        }
        let room = self.allowed.saturating_sub(self.produced);
        if room == 0 {
            // One byte more proves the budget exceeded; none means the member ended within it.
            let n = self.inner.read(&mut [0u8; 1])?;
            if n == 0 {
                return Ok(0);
            }
            self.produced += n;
            return Err(io::Error::other(Halted));
        }
        let take = buf.len().min(room);
        let n = self.inner.read(&mut buf[..take])?;
        self.produced += n;
        Ok(n)
    }
}

fn halted(err: &io::Error) -> bool {
    err.get_ref().is_some_and(|inner| inner.is::<Halted>())
}

enum Source<R: BufRead> {
    Plain(R),
    /// Inside a gzip member; the buffer reads the member's inflated bytes.
    Member(Box<BufReader<Metered<R>>>),
    /// Between members: the compressed stream, at the start of the next member or at its end.
    Between(R),
    Done,
}

/// What [`ObjectReader::next_run`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// A chunk, in the caller's buffer.
    Line(u64),
    /// A run of empty lines, `first..=last`: nothing copied, nothing to hold per line.
    Empty { first: u64, last: u64 },
}

/// Chunks of one object, numbered from 1 (`line`) the same way on every run, so that a checkpoint's
/// position means the same thing when the object is read again.
pub struct ObjectReader<R: BufRead> {
    source: Source<R>,
    limit: usize,
    line: u64,
    member: u64,
    /// An error met after a run of empty lines, given on the next call.
    pending: Option<ChunkError>,
    /// What inflating the object may cost, shared with its records' inflations.
    budget: Budget,
}

impl<R: BufRead> std::fmt::Debug for ObjectReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectReader")
            .field("line", &self.line)
            .field("member", &self.member)
            .finish()
    }
}

impl ObjectReader<BufReader<Body>> {
    pub fn from_channel(body: Body, limit: usize, budget: Budget) -> io::Result<Self> {
        Self::new(BufReader::with_capacity(READ_BUFFER, body), limit, budget)
    }
}

impl<R: BufRead> ObjectReader<R> {
    /// `limit` caps each chunk (after inflating); `budget` bounds all of the object's inflation together.
    pub fn new(mut inner: R, limit: usize, budget: Budget) -> io::Result<Self> {
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
            pending: None,
            budget,
        })
    }

    /// The object's budget: its records' inflations draw on it between the reader's calls.
    pub fn budget_mut(&mut self) -> &mut Budget {
        &mut self.budget
    }

    /// Lets the member in progress inflate what the budget has left, until its deadline.
    fn arm(&mut self) {
        let (allowed, clock) = (self.budget.left(), self.budget.clock().clone());
        if let Source::Member(m) = &mut self.source {
            let meter = m.get_mut();
            meter.allowed = allowed;
            meter.clock = clock;
        }
    }

    /// Charges what the member in progress produced since it was armed.
    fn settle(&mut self) {
        if let Source::Member(m) = &mut self.source {
            let produced = std::mem::take(&mut m.get_mut().produced);
            self.settle_bytes(produced);
        }
    }

    fn settle_bytes(&mut self, produced: usize) {
        // A spent budget is recorded in it, and seen by the next check.
        let _ = self.budget.charge(produced);
    }

    /// The reader's own stop (budget or deadline), as the object's budget recorded it; the object ends.
    fn halt(&mut self) -> ChunkError {
        self.source = Source::Done;
        let stop = self.budget.check().err().unwrap_or(Stop::Spent {
            limit: self.budget.limit(),
        });
        ChunkError::Stopped(self.budget.stop(stop))
    }

    /// Like [`next_chunk`](Self::next_chunk), but up to `max_empty` empty lines in a row come back as one
    /// [`Chunk::Empty`], found by a scan of the buffer rather than a call per line: an object of nothing
    /// but newlines costs its bytes, not a step per line. Lines are numbered as `next_chunk` numbers them.
    pub fn next_run(&mut self, out: &mut Vec<u8>, max_empty: u64) -> Option<Result<Chunk, ChunkError>> {
        // Never `None` once stopped: the caller must not take a stopped object for a finished one.
        if let Err(stop) = self.budget.check() {
            self.source = Source::Done;
            self.pending = None;
            return Some(Err(ChunkError::Stopped(stop)));
        }
        self.arm();
        let next = self.next_run_within(out, max_empty);
        self.settle();
        next
    }

    fn next_run_within(&mut self, out: &mut Vec<u8>, max_empty: u64) -> Option<Result<Chunk, ChunkError>> {
        if let Some(err) = self.pending.take() {
            return Some(Err(err));
        }
        if max_empty > 0 {
            let first = self.line + 1;
            let skipped = self.skip_empty_lines(max_empty);
            if skipped > 0 {
                return Some(Ok(Chunk::Empty {
                    first,
                    last: first + skipped - 1,
                }));
            }
            if let Some(err) = self.pending.take() {
                return Some(Err(err));
            }
        }
        self.next_chunk(out).map(|r| r.map(Chunk::Line))
    }

    /// Reads past up to `max` `\n` right at the start of a line (each an empty line); an error ends the
    /// object as in `next_chunk`, and waits in `pending`.
    fn skip_empty_lines(&mut self, max: u64) -> u64 {
        let (skipped, failed) = match &mut self.source {
            Source::Plain(r) => count_newlines(r, max),
            Source::Member(m) => count_newlines(m.as_mut(), max),
            Source::Between(_) | Source::Done => return 0,
        };
        self.line += skipped;
        if let Some(err) = failed {
            if halted(&err) {
                self.settle();
                self.pending = Some(self.halt());
                return skipped;
            }
            let in_member = matches!(self.source, Source::Member(_));
            self.source = Source::Done;
            self.pending = Some(if in_member {
                self.line += 1;
                ChunkError::Gzip {
                    line: self.line,
                    member: self.member,
                    source: err,
                }
            } else {
                ChunkError::Io(err)
            });
        }
        skipped
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
                        let meter = Metered {
                            inner: GzDecoder::new(r),
                            allowed: self.budget.left(),
                            produced: 0,
                            clock: self.budget.clock().clone(),
                        };
                        self.source = Source::Member(Box::new(BufReader::with_capacity(READ_BUFFER, meter)));
                    }
                    // Numbered as a line of its own, so that the object's lines are the same on every run.
                    Ok(_) => {
                        self.line += 1;
                        return Some(Err(ChunkError::Trailing {
                            line: self.line,
                            member: self.member,
                        }));
                    }
                    Err(err) => return Some(Err(ChunkError::Io(err))),
                },
                Source::Member(mut m) => match read_line_capped(&mut m, out, self.limit) {
                    Ok(Line::End) => {
                        let meter = m.into_inner();
                        self.settle_bytes(meter.produced);
                        self.source = Source::Between(meter.inner.into_inner());
                    }
                    Ok(line) => {
                        self.source = Source::Member(m);
                        return Some(self.finish_line(line));
                    }
                    Err(source) => {
                        let produced = m.get_mut().produced;
                        self.settle_bytes(produced);
                        if halted(&source) {
                            return Some(Err(self.halt()));
                        }
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

    /// Lines (chunks) numbered so far: the object's last line once `next_chunk` returned `None`.
    pub fn lines_read(&self) -> u64 {
        self.line
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

/// Consumes up to `max` `\n` in a row; how many, and the error that stopped it if one did.
fn count_newlines(r: &mut impl BufRead, max: u64) -> (u64, Option<io::Error>) {
    const NEWLINES: u64 = u64::from_ne_bytes([b'\n'; 8]);
    let mut count = 0;
    while count < max {
        let buf = match r.fill_buf() {
            Ok([]) => break,
            Ok(buf) => buf,
            Err(err) => return (count, Some(err)),
        };
        let want = usize::try_from(max - count).unwrap_or(usize::MAX).min(buf.len());
        // Eight bytes a step: a run of newlines is the whole point of this function.
        let mut n = buf[..want]
            .chunks_exact(8)
            .take_while(|w| <[u8; 8]>::try_from(*w).is_ok_and(|w| u64::from_ne_bytes(w) == NEWLINES))
            .count()
            * 8;
        n += buf[n..want].iter().take_while(|&&b| b == b'\n').count();
        r.consume(n);
        count += n as u64;
        if n < want {
            break;
        }
    }
    (count, None)
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
        let mut reader = ObjectReader::new(bytes, limit, Budget::default()).unwrap();
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

    type Lines = Vec<Result<(u64, String), String>>;

    /// Every line as `(line, text)`, blank runs expanded, read with `next_run`; and the calls it took.
    fn runs(bytes: &[u8], max_empty: u64) -> (Lines, usize) {
        let mut reader = ObjectReader::new(bytes, 100, Budget::default()).unwrap();
        let mut out = Vec::new();
        let (mut all, mut calls) = (Vec::new(), 0);
        while let Some(next) = reader.next_run(&mut out, max_empty) {
            calls += 1;
            match next {
                Ok(Chunk::Line(line)) => all.push(Ok((line, String::from_utf8_lossy(&out).into_owned()))),
                Ok(Chunk::Empty { first, last }) => {
                    assert!(first <= last && last - first < max_empty);
                    all.extend((first..=last).map(|l| Ok((l, String::new()))));
                }
                Err(err) => all.push(Err(err.to_string())),
            }
        }
        (all, calls)
    }

    #[test]
    fn runs_of_empty_lines_are_numbered_as_lines_one_by_one_are() {
        let mut members = gzip(b"\n\n{\"a\":1}\n\n\n\n");
        members.extend(gzip(b"\n\n\n"));
        members.extend(gzip(b"{\"m\":1}"));
        let mut long = b"x\n".to_vec();
        long.extend(vec![b'\n'; 100_000]);
        long.extend(b" \n\r\nlast");
        let inputs: [&[u8]; 6] = [b"", b"\n", b"\n\n\na\n\nb\n\n", b"a\n\n\n", &members, &long];
        for input in inputs {
            for max in [1, 3, 8, 1 << 20] {
                assert_eq!(
                    runs(input, max).0,
                    chunks(input, 100),
                    "{max} {:?}",
                    &input[..input.len().min(20)]
                );
            }
        }
        // 100,000 empty lines in a handful of steps, never more than asked for at once.
        assert!(runs(&long, 1 << 20).1 < 10);
        assert!(runs(&long, 1000).1 >= 100);
        assert!(runs(&gzip(&long), 1 << 20).1 < 10);
    }

    #[test]
    fn an_error_after_a_run_of_empty_lines_comes_next_and_ends_the_object() {
        let mut broken = gzip(&[b'\n'; 5000]);
        broken.truncate(broken.len() - 9);
        let (got, _) = runs(&broken, 1 << 20);
        let last = got.last().unwrap().as_ref().unwrap_err();
        assert!(last.contains("gzip member 1"), "{last}");
        assert!(got[..got.len() - 1].iter().all(Result::is_ok));
        assert_eq!(got.len() as u64, chunks(&broken, 100).len() as u64);
    }

    /// Reads everything `next_run` gives until it ends or the budget stops it; the lines with text in them.
    fn read_within(bytes: &[u8], limit: usize, budget: Budget) -> (Vec<u64>, Option<Stop>, Budget) {
        let mut reader = ObjectReader::new(bytes, limit, budget).unwrap();
        let mut out = Vec::new();
        let mut lines = Vec::new();
        while let Some(next) = reader.next_run(&mut out, 1 << 20) {
            match next {
                Ok(Chunk::Line(line)) if !out.is_empty() => lines.push(line),
                Ok(_) | Err(ChunkError::TooLarge { .. }) => {}
                Err(ChunkError::Stopped(stop)) => {
                    // Stopped stays stopped: never taken for the object's end.
                    assert!(matches!(
                        reader.next_run(&mut out, 1),
                        Some(Err(ChunkError::Stopped(_)))
                    ));
                    return (lines, Some(stop), reader.budget);
                }
                Err(err) => panic!("{err}"),
            }
        }
        (lines, None, reader.budget)
    }

    #[test]
    fn the_objects_own_inflation_stops_at_its_budget_even_inside_one_line() {
        // One member: a line, then 16 MiB without a newline (over the 1 MiB line cap, so never kept).
        let mut text = b"{\"a\":1}\n".to_vec();
        text.extend(vec![b'x'; 16 << 20]);
        let object = gzip(&text);
        let limit = 2 << 20;
        let (lines, stop, budget) = read_within(&object, 1 << 20, Budget::new(limit, Clock::default()));
        assert_eq!(lines, [1]);
        assert_eq!(stop, Some(Stop::Spent { limit }));
        assert!(
            budget.inflated() > limit && budget.inflated() <= limit + 1,
            "{}",
            budget.inflated()
        );

        // The same object within a budget that holds it is read to its end.
        let (_, stop, budget) = read_within(&object, 1 << 20, Budget::new(text.len(), Clock::default()));
        assert_eq!((stop, budget.inflated()), (None, text.len()));
    }

    #[test]
    fn blank_lines_and_later_members_draw_on_the_same_budget() {
        let mut object = gzip(&vec![b'\n'; 3 << 20]);
        object.extend(gzip(b"{\"late\":1}\n"));
        let limit = 1 << 20;
        let (lines, stop, budget) = read_within(&object, 1 << 20, Budget::new(limit, Clock::default()));
        assert!(lines.is_empty());
        assert_eq!(stop, Some(Stop::Spent { limit }));
        assert_eq!(budget.inflated(), limit + 1);
        // What a record inflated between the reader's calls leaves that much less for the object.
        let mut spent = Budget::new(4 << 20, Clock::default());
        spent.charge((4 << 20) - 100).unwrap();
        let (lines, stop, _) = read_within(&object, 1 << 20, spent);
        assert_eq!((lines.len(), stop), (0, Some(Stop::Spent { limit: 4 << 20 })));
        // A plain object costs no inflation at all.
        let plain = vec![b'\n'; 3 << 20];
        let (_, stop, budget) = read_within(&plain, 1 << 20, Budget::new(10, Clock::default()));
        assert_eq!((stop, budget.inflated()), (None, 0));
    }

    #[test]
    fn the_body_s_pieces_are_joined() {
        let (tx, body) = crate::replay::body::channel(8);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async move {
                for piece in [&b"{\"a\""[..], b":1}\n{", b"\"b\":2}"] {
                    tx.send(Ok(bytes::Bytes::copy_from_slice(piece))).await.unwrap();
                }
            });
        });
        let mut reader = ObjectReader::from_channel(body, 100, Budget::default()).unwrap();
        let mut out = Vec::new();
        assert_eq!(reader.next_chunk(&mut out).unwrap().unwrap(), 1);
        assert_eq!(out, b"{\"a\":1}");
        assert_eq!(reader.next_chunk(&mut out).unwrap().unwrap(), 2);
        assert_eq!(out, b"{\"b\":2}");
        assert!(reader.next_chunk(&mut out).is_none());
    }
}
