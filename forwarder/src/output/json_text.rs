//! JSON strings written exactly as serde_json writes them (NDJSON's contract, and what the JSON encoders
//! send), but faster on the long clean runs that log messages are: eight bytes are checked at a time for
//! anything that needs an escape, and clean runs are copied whole.

/// Bytes each input byte takes once escaped: 2 for `\"`, `\\`, `\n`..., 6 for `\u00XX`, else 1.
pub(crate) const ESCAPED_LEN: [u8; 256] = {
    let mut table = [1u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = 6;
        b += 1;
    }
    table[b'\n' as usize] = 2;
    table[b'\r' as usize] = 2;
    table[b'\t' as usize] = 2;
    table[0x08] = 2;
    table[0x0c] = 2;
    table[b'"' as usize] = 2;
    table[b'\\' as usize] = 2;
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// A mask whose lowest set bit is the high bit of the word's first byte (in memory order) that is a control
/// character, `"` or `\`, and zero when none is: the classic "has a byte less than n / equal to n" tricks.
/// A borrow can only set bits above a true match, so the lowest one is exact.
fn escape_mask(word: u64) -> u64 {
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    let quote = has_zero(word ^ (ONES * u64::from(b'"')));
    let backslash = has_zero(word ^ (ONES * u64::from(b'\\')));
    control | quote | backslash
}

/// The index of the first byte at or after `from` that needs an escape. Sixteen bytes are checked at a
/// time, and the position comes from the mask, so a hit costs no byte-by-byte search.
fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    let word = |chunk: &[u8]| {
        chunk
            .first_chunk::<8>()
            .map_or(0, |w| escape_mask(u64::from_le_bytes(*w)))
    };
    let first = |mask: u64| (mask.trailing_zeros() / 8) as usize;
    let mut pairs = rest.chunks_exact(16);
    let mut at = from;
    for pair in &mut pairs {
        let (low, high) = pair.split_at(8);
        let (low, high) = (word(low), word(high));
        if low | high != 0 {
            return Some(at + if low != 0 { first(low) } else { 8 + first(high) });
        }
        at += 16;
    }
    // The last bytes, padded with a byte that needs no escape.
    for tail in pairs.remainder().chunks(8) {
        let mut padded = [b'a'; 8];
        padded[..tail.len()].copy_from_slice(tail);
        let mask = escape_mask(u64::from_le_bytes(padded));
        if mask != 0 {
            return Some(at + first(mask));
        }
        at += tail.len();
    }
    None
}

/// Appends `s` as a JSON string, quotes included.
pub(crate) fn push_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    push_escaped(out, s.as_bytes());
    out.push(b'"');
}

/// Appends `bytes` (UTF-8) escaped for the inside of a JSON string.
pub(crate) fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut run = 0;
    while let Some(i) = next_escape(bytes, run) {
        out.extend_from_slice(&bytes[run..i]);
        run = i + 1;
        match bytes[i] {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
    }
    out.extend_from_slice(&bytes[run..]);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn escapes_exactly_as_serde_json_does() {
        let all: String = (0u32..0x800).filter_map(char::from_u32).collect();
        let mut samples = vec![all, String::new(), "plain".repeat(9)];
        // Every position of an escape within and across the eight-byte words.
        for at in 0..24 {
            for special in ['"', '\\', '\n', '\u{1}', '\u{1f}', '\u{7f}', 'é', ' '] {
                let mut s = "abcdefgh".repeat(3);
                s.insert(at, special);
                samples.push(s);
            }
        }
        for s in samples {
            let mut ours = Vec::new();
            push_str(&mut ours, &s);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&s).unwrap(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn the_word_test_finds_exactly_the_first_byte_to_escape() {
        for b in 0u8..=255 {
            let needs = ESCAPED_LEN[usize::from(b)] != 1;
            for at in 0..8 {
                let mut bytes = [b'a'; 8];
                bytes[at] = b;
                // A byte that needs an escape after it must not move the answer.
                let mut two = bytes;
                if at < 7 {
                    two[7] = b'"';
                }
                let found = |bytes: [u8; 8]| match escape_mask(u64::from_le_bytes(bytes)) {
                    0 => None,
                    mask => Some((mask.trailing_zeros() / 8) as usize),
                };
                assert_eq!(found(bytes), needs.then_some(at), "byte {b:#x} at {at}");
                let expected = if needs {
                    Some(at)
                } else if at < 7 {
                    Some(7)
                } else {
                    None
                };
                assert_eq!(found(two), expected, "byte {b:#x} at {at}, quote after");
            }
        }
    }

    #[test]
    fn next_escape_agrees_with_the_table_at_every_length_and_start() {
        for len in 0..40 {
            for special in [None, Some(b'"'), Some(b'\n'), Some(0x7f), Some(0xc3)] {
                for at in 0..len.max(1) {
                    let mut bytes = vec![b'x'; len];
                    if let (Some(special), Some(slot)) = (special, bytes.get_mut(at)) {
                        *slot = special;
                    }
                    for from in 0..=len {
                        let expected = (from..len).find(|&i| ESCAPED_LEN[usize::from(bytes[i])] != 1);
                        assert_eq!(next_escape(&bytes, from), expected, "{bytes:?} from {from}");
                    }
                }
            }
        }
    }
}
