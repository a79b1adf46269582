//! Base64 and gzip with a hard cap on output size, so a gzip bomb costs bounded memory.

use std::io::{self, Read};

use base64::Engine as _;
use flate2::read::MultiGzDecoder;
use thiserror::Error;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("invalid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("invalid gzip: {0}")]
    Gzip(#[source] io::Error),
    #[error("decompressed data exceeds the limit of {limit} bytes (TRACEHOSE_MAX_DECOMPRESSED_BYTES); refusing a possible gzip bomb")]
    TooLarge { limit: usize },
}

pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Standard base64, tolerating surrounding whitespace (some tools wrap or pad the field).
pub fn base64_decode(text: &str) -> Result<Vec<u8>, DecodeError> {
    Ok(base64::engine::general_purpose::STANDARD.decode(text.trim().as_bytes())?)
}

/// Inflates every gzip member (Firehose writes many back to back) into at most `limit` bytes.
pub fn gunzip_capped(compressed: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(expected_size(compressed).min(limit));
    // Read one byte past the limit: seeing it proves the data is larger than allowed.
    let read = MultiGzDecoder::new(compressed)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(DecodeError::Gzip)?;
    if read > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(out)
}

/// A good first capacity for the inflated data, to avoid regrowing a multi-megabyte buffer: the gzip
/// trailer's ISIZE (the last member's size mod 4 GiB), but at least 4x the input since several members may
/// follow each other. Only a hint: the cap is enforced while reading.
fn expected_size(compressed: &[u8]) -> usize {
    let trailer = compressed
        .len()
        .checked_sub(4)
        .and_then(|at| compressed.get(at..));
    let isize = trailer.map_or(0, |t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]) as usize);
    isize.max(compressed.len().saturating_mul(4))
}

/// Gunzips when the bytes are gzip, passes them through otherwise (Firehose may have decompressed already).
pub fn maybe_gunzip(bytes: Vec<u8>, limit: usize) -> Result<Vec<u8>, DecodeError> {
    if is_gzip(&bytes) {
        gunzip_capped(&bytes, limit)
    } else if bytes.len() > limit {
        Err(DecodeError::TooLarge { limit })
    } else {
        Ok(bytes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use flate2::{write::GzEncoder, Compression};

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
    }

    #[test]
    fn reports_corruption() {
        let mut broken = gzip(b"hello world, hello world");
        let n = broken.len();
        broken.truncate(n - 6);
        assert!(matches!(gunzip_capped(&broken, 1024), Err(DecodeError::Gzip(_))));
        assert!(matches!(base64_decode("@@@"), Err(DecodeError::Base64(_))));
        assert_eq!(maybe_gunzip(b"plain".to_vec(), 10).unwrap(), b"plain");
        assert!(matches!(
            maybe_gunzip(b"plain".to_vec(), 3),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}
