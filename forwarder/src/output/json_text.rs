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

/// Whether any byte of the word is a control character, `"` or `\`: exact for the word (no false positive),
/// by the classic "has a byte less than n / equal to n" tricks.
fn needs_escape(word: u64) -> bool {
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    let quote = has_zero(word ^ (ONES * u64::from(b'"')));
    let backslash = has_zero(word ^ (ONES * u64::from(b'\\')));
    control | quote | backslash != 0
}

/// The index of the first byte at or after `from` that needs an escape.
fn next_escape(bytes: &[u8], mut from: usize) -> Option<usize> {
    while let Some(chunk) = bytes.get(from..from + 8) {
        let word = u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        if needs_escape(word) {
            break;
        }
        from += 8;
    }
    (from..bytes.len()).find(|&i| ESCAPED_LEN[usize::from(bytes[i])] != 1)
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
    fn the_word_test_is_exact() {
        for b in 0u8..=255 {
            let word = u64::from_le_bytes([b'a', b'a', b'a', b, b'a', b'a', b'a', b'a']);
            assert_eq!(
                needs_escape(word),
                ESCAPED_LEN[usize::from(b)] != 1,
                "byte {b:#x}"
            );
        }
    }
}
