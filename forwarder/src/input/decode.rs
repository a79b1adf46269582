//! Base64 and gzip with a hard cap on output size, so a gzip bomb costs bounded memory, drawing on the
//! input's [`Budget`] so that many bombs cost bounded time. Gzip members are inflated one at a time, so a
//! corrupt or truncated member costs only itself and what follows it, and the error says which member and
//! where; each member is inflated a chunk at a time, with the deadline checked between chunks.

use std::cell::Cell;
use std::io::{self, Cursor, Read};

use base64::Engine as _;
use flate2::bufread::GzDecoder;
use thiserror::Error;

use super::budget::{Budget, Stop};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// A record gzipped twice (a producer compressing what Firehose compresses again) is still read; deeper
/// nesting is not something any AWS path produces.
const MAX_GZIP_DEPTH: usize = 2;
/// Output inflated between two looks at the clock: about a millisecond of work.
const CHUNK: usize = 1 << 20;

#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("invalid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("invalid gzip: member {member} at byte {offset} is corrupt or truncated: {source}")]
    Gzip {
        member: usize,
        offset: usize,
        #[source]
        source: io::Error,
    },
    #[error("{len} bytes after the last gzip member (at byte {offset}) are not gzip")]
    TrailingBytes { offset: usize, len: usize },
    #[error("decompressed data exceeds the limit of {limit} bytes (TRACEHOSE_MAX_DECOMPRESSED_BYTES); refusing a possible gzip bomb")]
    TooLarge { limit: usize },
    #[error("gzip nested more than {MAX_GZIP_DEPTH} levels deep")]
    NestedTooDeep,
    #[error("not decompressed: {0}")]
    Stopped(#[from] Stop),
}

pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Standard base64. Whitespace anywhere is tolerated (MIME tools wrap at 76 columns); it is only stripped,
/// at the cost of a copy, when the strict decode fails.
pub fn base64_decode(text: &str) -> Result<Vec<u8>, DecodeError> {
    let engine = &base64::engine::general_purpose::STANDARD;
    let trimmed = text.trim();
    match engine.decode(trimmed.as_bytes()) {
        Ok(bytes) => Ok(bytes),
        Err(err) if trimmed.bytes().any(|b| b.is_ascii_whitespace()) => {
            let compact: Vec<u8> = trimmed.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            engine.decode(compact).map_err(|_| DecodeError::Base64(err))
        }
        Err(err) => Err(err.into()),
    }
}

/// Inflates every gzip member (Firehose writes many back to back) into at most `limit` bytes; any error
/// fails the whole.
pub fn gunzip_capped(compressed: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    gunzip_within(compressed, limit, &mut Budget::default())
}

/// [`gunzip_capped`], drawing on `budget` and stopping at its deadline.
pub fn gunzip_within(compressed: &[u8], limit: usize, budget: &mut Budget) -> Result<Vec<u8>, DecodeError> {
    match gunzip_partial_within(compressed, limit, budget) {
        (data, None) => Ok(data),
        (_, Some(err)) => Err(err),
    }
}

/// Inflates gzip members in order into at most `limit` bytes, and returns what came out together with the
/// error that stopped it, if any: everything before a bad member is good data.
pub fn gunzip_partial(compressed: &[u8], limit: usize) -> (Vec<u8>, Option<DecodeError>) {
    gunzip_partial_within(compressed, limit, &mut Budget::default())
}

/// [`gunzip_partial`], drawing on `budget`: every byte inflated is charged to it, and inflating stops
/// within one chunk once the budget is spent or its deadline has passed.
pub fn gunzip_partial_within(
    compressed: &[u8],
    limit: usize,
    budget: &mut Budget,
) -> (Vec<u8>, Option<DecodeError>) {
    if let Err(stop) = budget.check() {
        return (Vec::new(), Some(stop.into()));
    }
    let mut inflater = Inflater::take();
    let inflated = inflater.members(compressed, limit, budget);
    inflater.put_back();
    inflated
}

/// The thread's gzip decoder, reset for every member rather than made anew: zlib-rs allocates a new one's
/// state as one 47 KB block aligned to 64 bytes, and glibc cannot reuse the hole an aligned block leaves for
/// the next one, so one per record left freed memory stranded in every thread's arena until replay's peak
/// RSS grew with the records it parsed on a thread in one go, to 1.9x for large objects. The members are
/// read from a copy of the input, in a buffer the thread keeps while it is small.
struct Inflater {
    decoder: GzDecoder<Cursor<Vec<u8>>>,
}

thread_local! {
    static INFLATER: Cell<Option<GzDecoder<Cursor<Vec<u8>>>>> = const { Cell::new(None) };
}

/// Compressed input kept between calls for the copy; a larger buffer is freed after its call.
const KEEP_INPUT: usize = 256 << 10;

impl Inflater {
    fn take() -> Self {
        let decoder = INFLATER
            .with(Cell::take)
            .unwrap_or_else(|| GzDecoder::new(Cursor::new(Vec::new())));
        Self { decoder }
    }

    fn put_back(mut self) {
        let mut input = self.detach().into_inner();
        if input.capacity() > KEEP_INPUT {
            input = Vec::new();
        }
        input.clear();
        self.decoder.reset(Cursor::new(input));
        INFLATER.with(|slot| slot.set(Some(self.decoder)));
    }

    /// The decoder's input, leaving it an empty one.
    fn detach(&mut self) -> Cursor<Vec<u8>> {
        self.decoder.reset(Cursor::new(Vec::new()))
    }

    fn members(
        &mut self,
        compressed: &[u8],
        limit: usize,
        budget: &mut Budget,
    ) -> (Vec<u8>, Option<DecodeError>) {
        let mut out = Vec::with_capacity(expected_size(compressed).min(limit).min(budget.left()));
        let mut input = self.detach().into_inner();
        input.clear();
        input.extend_from_slice(compressed);
        let mut at = Cursor::new(input);
        let mut member = 0;
        loop {
            let offset = usize::try_from(at.position()).unwrap_or(usize::MAX);
            let rest = at.get_ref().get(offset..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            if !is_gzip(rest) {
                let len = rest.len();
                self.decoder.reset(at);
                return (out, Some(DecodeError::TrailingBytes { offset, len }));
            }
            member += 1;
            self.decoder.reset(at);
            loop {
                // One byte past the cap (or what is left of the budget) proves the data is larger than allowed.
                let room = limit
                    .saturating_sub(out.len())
                    .min(budget.left())
                    .saturating_add(1);
                let before = out.len();
                let read = read_chunk(&mut self.decoder, &mut out, room.min(CHUNK));
                let produced = out.len() - before;
                let charged = budget.charge(produced);
                if let Err(source) = read {
                    return (
                        out,
                        Some(DecodeError::Gzip {
                            member,
                            offset,
                            source,
                        }),
                    );
                }
                if out.len() > limit {
                    out.truncate(limit);
                    return (out, Some(DecodeError::TooLarge { limit }));
                }
                if let Err(stop) = charged.and_then(|()| budget.check()) {
                    return (out, Some(stop.into()));
                }
                if produced < room.min(CHUNK) {
                    break;
                }
            }
            at = self.detach();
        }
        self.decoder.reset(at);
        (out, None)
    }
}

/// Reads up to `want` bytes from `decoder` onto the end of `out`, until the data ends or `want` is reached.
/// The room read into is zeroed once, within the capacity already reserved while it lasts, and filled by
/// plain reads: `Read::take` with `read_to_end` added a probe read and its adaptive buffer sizing to every
/// call, which a Firehose event of many small records pays once per record.
fn read_chunk(decoder: &mut impl Read, out: &mut Vec<u8>, want: usize) -> io::Result<()> {
    /// Room zeroed at a time once the reserved capacity is used up: small outputs stay cheap, large
    /// ones grow geometrically.
    const MIN_STEP: usize = 32 << 10;
    let end = out.len().saturating_add(want);
    let mut filled = out.len();
    let result = loop {
        if filled >= end {
            break Ok(());
        }
        if filled == out.len() {
            let spare = out.capacity() - out.len();
            let step = if spare > 0 { spare } else { out.len().max(MIN_STEP) };
            out.resize(filled + step.min(end - filled), 0);
        }
        match decoder.read(&mut out[filled..]) {
            Ok(0) => break Ok(()),
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => break Err(err),
        }
    };
    out.truncate(filled);
    result
}

/// A good first capacity for the inflated data, to avoid regrowing a multi-megabyte buffer: the gzip
/// trailer's ISIZE (the last member's size mod 4 GiB), but at least 4x the input since several members may
/// follow each other. Only a hint: the cap is enforced while reading.
fn expected_size(compressed: &[u8]) -> usize {
    let isize = match compressed
        .len()
        .checked_sub(4)
        .and_then(|at| compressed.get(at..))
    {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]) as usize,
        _ => 0,
    };
    isize.max(compressed.len().saturating_mul(4))
}

/// Gunzips while the bytes are gzip (Firehose may have decompressed already, a producer may have compressed
/// twice), within the cap.
pub fn maybe_gunzip(bytes: Vec<u8>, limit: usize) -> Result<Vec<u8>, DecodeError> {
    maybe_gunzip_within(bytes, limit, &mut Budget::default())
}

/// [`maybe_gunzip`], every level drawing on `budget`.
pub fn maybe_gunzip_within(
    mut bytes: Vec<u8>,
    limit: usize,
    budget: &mut Budget,
) -> Result<Vec<u8>, DecodeError> {
    for _ in 0..MAX_GZIP_DEPTH {
        if !is_gzip(&bytes) {
            break;
        }
        bytes = gunzip_within(&bytes, limit, budget)?;
    }
    if is_gzip(&bytes) {
        return Err(DecodeError::NestedTooDeep);
    }
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use flate2::{write::GzEncoder, Compression};

    use super::super::budget::Clock;
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn reads_all_members() {
        let mut both = gzip(b"{\"a\":1}");
        both.extend(gzip(b"{\"b\":2}"));
        assert_eq!(gunzip_capped(&both, 1024).unwrap(), b"{\"a\":1}{\"b\":2}");
    }

    #[test]
    fn caps_a_bomb() {
        let bomb = gzip(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 20_000);
        assert!(
            matches!(gunzip_capped(&bomb, 1 << 20), Err(DecodeError::TooLarge { limit }) if limit == 1 << 20)
        );
        assert_eq!(gunzip_capped(&gzip(&[7; 100]), 100).unwrap().len(), 100);
        // The cap holds across members too.
        let mut two = gzip(&[1; 60]);
        two.extend(gzip(&[2; 60]));
        assert!(matches!(
            gunzip_capped(&two, 100),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn extreme_limits_do_not_wrap() {
        assert_eq!(gunzip_capped(&gzip(b"abc"), usize::MAX).unwrap(), b"abc");
        assert_eq!(maybe_gunzip(b"abc".to_vec(), usize::MAX).unwrap(), b"abc");
    }

    #[test]
    fn members_before_a_bad_one_still_come_out_and_the_bad_one_is_named() {
        let first = gzip(b"{\"a\":1}");
        let mut broken = gzip(b"{\"b\":2} and more text so the member is long enough");
        broken.truncate(broken.len() - 10);
        let mut object = first.clone();
        object.extend(&broken);
        let (data, err) = gunzip_partial(&object, 1 << 20);
        assert!(data.starts_with(b"{\"a\":1}"));
        let err = err.unwrap();
        assert!(
            matches!(err, DecodeError::Gzip { member: 2, offset, .. } if offset == first.len()),
            "{err}"
        );
        assert!(
            err.to_string().starts_with("invalid gzip: member 2 at byte"),
            "{err}"
        );
    }

    #[test]
    fn trailing_bytes_are_named() {
        let mut data = gzip(b"x");
        let end = data.len();
        data.extend(b"junk");
        let (out, err) = gunzip_partial(&data, 100);
        assert_eq!(out, b"x");
        assert!(
            matches!(err, Some(DecodeError::TrailingBytes { offset, len: 4 }) if offset == end),
            "{err:?}"
        );
    }

    #[test]
    fn double_gzip_is_read_and_deeper_nesting_named() {
        assert_eq!(maybe_gunzip(gzip(&gzip(b"hi")), 100).unwrap(), b"hi");
        assert!(matches!(
            maybe_gunzip(gzip(&gzip(&gzip(b"hi"))), 100),
            Err(DecodeError::NestedTooDeep)
        ));
    }

    #[test]
    fn wrapped_base64_is_accepted() {
        let long = base64::engine::general_purpose::STANDARD.encode(vec![42u8; 200]);
        let wrapped: String = long
            .as_bytes()
            .chunks(76)
            .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
            .collect();
        assert_eq!(base64_decode(&wrapped).unwrap(), vec![42u8; 200]);
        assert!(matches!(base64_decode("@@@"), Err(DecodeError::Base64(_))));
        assert!(matches!(base64_decode("ab c@"), Err(DecodeError::Base64(_))));
    }

    #[test]
    fn every_level_draws_on_the_budget_and_a_spent_budget_stops_inflating() {
        let bomb = gzip(&gzip(&vec![0u8; 4 << 20]));
        let mut budget = Budget::new(64 << 20, Clock::default());
        assert_eq!(
            maybe_gunzip_within(bomb.clone(), 8 << 20, &mut budget)
                .unwrap()
                .len(),
            4 << 20
        );
        // The inner member and the outer one both count.
        let outer = gunzip_capped(&bomb, 8 << 20).unwrap().len();
        assert_eq!(budget.inflated(), outer + (4 << 20));
        let mut small = Budget::new(3 << 20, Clock::default());
        let err = maybe_gunzip_within(bomb, 8 << 20, &mut small).unwrap_err();
        assert!(
            matches!(err, DecodeError::Stopped(Stop::Spent { limit }) if limit == 3 << 20),
            "{err}"
        );
        // Stopped one byte past the total.
        assert_eq!(small.inflated(), (3 << 20) + 1);
        assert!(matches!(
            gunzip_within(&gzip(b"x"), 10, &mut small),
            Err(DecodeError::Stopped(Stop::Spent { .. }))
        ));
    }

    #[test]
    fn a_past_deadline_stops_inflating_between_chunks() {
        let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let mut budget = Budget::new(usize::MAX, Clock::new(None).with_cancel(cancel));
        let (out, err) = gunzip_partial_within(&gzip(&vec![0u8; 8 << 20]), 16 << 20, &mut budget);
        assert!(out.is_empty());
        assert!(
            matches!(err, Some(DecodeError::Stopped(Stop::Cancelled))),
            "{err:?}"
        );
        assert_eq!(budget.inflated(), 0);
    }

    #[test]
    fn reports_corruption() {
        let mut broken = gzip(b"hello world, hello world");
        let n = broken.len();
        broken.truncate(n - 6);
        assert!(matches!(
            gunzip_capped(&broken, 1024),
            Err(DecodeError::Gzip { .. })
        ));
        assert_eq!(maybe_gunzip(b"plain".to_vec(), 10).unwrap(), b"plain");
        assert!(matches!(
            maybe_gunzip(b"plain".to_vec(), 3),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    /// What the thread's decoder holds between calls: its input buffer, if it kept one.
    fn kept_input() -> Option<usize> {
        let decoder = INFLATER.with(Cell::take)?;
        let kept = decoder.get_ref().get_ref().capacity();
        INFLATER.with(|slot| slot.set(Some(decoder)));
        Some(kept)
    }

    #[test]
    fn the_thread_s_decoder_is_reused_after_every_kind_of_failure() {
        let good = gzip(b"after the failures");
        let mut corrupt = gzip(b"hello world, hello world");
        let n = corrupt.len();
        corrupt.truncate(n - 6);
        let mut trailing = gzip(b"ok");
        trailing.extend_from_slice(b"junk");
        let bomb = gzip(&[0u8; 1 << 16]);
        let mut spent = Budget::new(10, Clock::default());
        let failures: [&dyn Fn() -> bool; 4] = [
            &|| matches!(gunzip_capped(&corrupt, 1024), Err(DecodeError::Gzip { .. })),
            &|| {
                matches!(
                    gunzip_capped(&trailing, 1024),
                    Err(DecodeError::TrailingBytes { .. })
                )
            },
            &|| {
                matches!(
                    gunzip_capped(&bomb, 100),
                    Err(DecodeError::TooLarge { limit: 100 })
                )
            },
            &|| matches!(gunzip_capped(b"\x1f\x8b", 100), Err(DecodeError::Gzip { .. })),
        ];
        for failed in failures {
            assert!(failed());
            assert_eq!(gunzip_capped(&good, 1024).unwrap(), b"after the failures");
        }
        assert!(gunzip_within(&bomb, 1 << 20, &mut spent).is_err());
        let two = [good.clone(), good].concat();
        assert_eq!(
            gunzip_capped(&two, 1024).unwrap(),
            b"after the failuresafter the failures"
        );
    }

    #[test]
    fn the_thread_keeps_a_small_input_buffer_and_frees_a_large_one() {
        let small = gzip(b"small");
        gunzip_capped(&small, 1024).unwrap();
        let kept = kept_input().unwrap();
        assert!((small.len()..=KEEP_INPUT).contains(&kept), "{kept}");
        // Incompressible, so that the compressed input itself is larger than what the thread keeps.
        let mut noise = Vec::with_capacity(KEEP_INPUT * 2);
        let mut x = 0x9e37_79b9_u32;
        while noise.len() < KEEP_INPUT * 2 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            noise.extend_from_slice(&x.to_le_bytes());
        }
        let large = gzip(&noise);
        assert!(large.len() > KEEP_INPUT);
        assert_eq!(gunzip_capped(&large, noise.len()).unwrap(), noise);
        assert_eq!(kept_input(), Some(0));
    }
}
