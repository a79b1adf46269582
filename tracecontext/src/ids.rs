use std::fmt;

/// A 16-byte W3C trace id. Never all zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId([u8; 16]);

/// An 8-byte W3C span id. Never all zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId([u8; 8]);

impl TraceId {
    /// The id from raw bytes; `None` for the invalid all-zero id.
    pub fn from_bytes(bytes: [u8; 16]) -> Option<Self> {
        (bytes != [0; 16]).then_some(Self(bytes))
    }

    /// Exactly 32 hex digits, either case.
    pub fn from_hex(s: &str) -> Option<Self> {
        decode_hex::<16>(s).and_then(Self::from_bytes)
    }

    /// A Datadog 64-bit trace id: Datadog and OpenTelemetry agree that it is the low half of a 128-bit id.
    pub fn from_u64(low: u64) -> Option<Self> {
        let mut bytes = [0; 16];
        bytes[8..].copy_from_slice(&low.to_be_bytes());
        Self::from_bytes(bytes)
    }

    pub fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// The low 64 bits, which is what Datadog calls the trace id.
    pub fn low_u64(self) -> u64 {
        let mut low = [0; 8];
        low.copy_from_slice(&self.0[8..]);
        u64::from_be_bytes(low)
    }
}

impl SpanId {
    pub fn from_bytes(bytes: [u8; 8]) -> Option<Self> {
        (bytes != [0; 8]).then_some(Self(bytes))
    }

    /// Exactly 16 hex digits, either case.
    pub fn from_hex(s: &str) -> Option<Self> {
        decode_hex::<8>(s).and_then(Self::from_bytes)
    }

    pub fn from_u64(id: u64) -> Option<Self> {
        Self::from_bytes(id.to_be_bytes())
    }

    pub fn to_bytes(self) -> [u8; 8] {
        self.0
    }

    pub fn to_u64(self) -> u64 {
        u64::from_be_bytes(self.0)
    }
}

fn decode_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let digits = s.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Lowercase hex of `bytes` into `out` (twice as long), through a table: ids are written for every log line.
fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
}

impl TraceId {
    /// The lowercase hex form as ASCII bytes, for writers that need no formatting machinery.
    pub fn hex(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        hex_into(&self.0, &mut out);
        out
    }
}

impl SpanId {
    /// The lowercase hex form as ASCII bytes.
    pub fn hex(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        hex_into(&self.0, &mut out);
        out
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, hex: &[u8]) -> fmt::Result {
    // Only ASCII hex digits were written.
    f.write_str(std::str::from_utf8(hex).map_err(|_| fmt::Error)?)
}

impl fmt::Display for TraceId {
    /// Lowercase hex, the form every tracehose output uses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.hex())
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.hex())
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_normalises_case() {
        let id = TraceId::from_hex("0AF7651916CD43DD8448EB211C80319C").unwrap();
        assert_eq!(id.to_string(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(
            SpanId::from_hex("00F067AA0BA902B7").unwrap().to_string(),
            "00f067aa0ba902b7"
        );
    }

    #[test]
    fn rejects_wrong_length_non_hex_and_zero() {
        assert!(TraceId::from_hex("0af7651916cd43dd8448eb211c80319").is_none());
        assert!(TraceId::from_hex("0af7651916cd43dd8448eb211c80319c0").is_none());
        assert!(TraceId::from_hex("0af7651916cd43dd8448eb211c80319g").is_none());
        assert!(TraceId::from_hex(&"0".repeat(32)).is_none());
        assert!(SpanId::from_hex(&"0".repeat(16)).is_none());
        assert!(TraceId::from_hex("é".repeat(16).as_str()).is_none());
        assert!(TraceId::from_u64(0).is_none());
    }

    #[test]
    fn datadog_ids_are_the_low_half() {
        let id = TraceId::from_u64(4887065908816661012).unwrap();
        assert_eq!(id.to_string(), "000000000000000043d2588d20f04a14");
        assert_eq!(id.low_u64(), 4887065908816661012);
        assert_eq!(SpanId::from_u64(1).unwrap().to_string(), "0000000000000001");
    }
}
