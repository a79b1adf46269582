//! De-duplication by `dataId` within one run: Firehose may back the same record up more than once (a
//! retry that both failed and reached S3), and objects may overlap. Only a 128-bit fingerprint of each id is
//! kept, 16 bytes a record whatever the id's length.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Dedup {
    seen: Mutex<HashSet<u128>>,
}

impl Dedup {
    /// Whether `data_id` is new in this run; from now on it is seen.
    pub fn first_time(&self, data_id: &str) -> bool {
        let fingerprint = fingerprint(data_id);
        match self.seen.lock() {
            Ok(mut seen) => seen.insert(fingerprint),
            // A worker panicked while holding the lock: the set itself is still sound.
            Err(poisoned) => poisoned.into_inner().insert(fingerprint),
        }
    }
}

/// Two independent 64-bit SipHashes (the fixed keys of `DefaultHasher::new`, so stable within a run).
fn fingerprint(id: &str) -> u128 {
    let half = |salt: u8| {
        let mut h = DefaultHasher::new();
        salt.hash(&mut h);
        id.hash(&mut h);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_id_passes_once() {
        let d = Dedup::default();
        assert!(d.first_time("4960.0"));
        assert!(d.first_time("4960.1"));
        assert!(!d.first_time("4960.0"));
    }
}
