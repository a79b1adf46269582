//! Random trace and span ids for invocations that arrive without an X-Ray header.
//!
//! std's `RandomState` is seeded from the operating system's random source once per process; hashing a
//! counter through it yields ids that are unpredictable across sandboxes and unique within one, without
//! pulling a random-number crate into the extension.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use tracehose_tracecontext::{SpanId, TraceId};

fn next_u64() -> u64 {
    static STATE: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let state = STATE.get_or_init(RandomState::new);
    state.hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub fn trace_id() -> TraceId {
    loop {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&next_u64().to_be_bytes());
        bytes[8..].copy_from_slice(&next_u64().to_be_bytes());
        if let Some(id) = TraceId::from_bytes(bytes) {
            return id;
        }
    }
}

pub fn span_id() -> SpanId {
    loop {
        if let Some(id) = SpanId::from_u64(next_u64()) {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_distinct() {
        let spans: HashSet<_> = (0..10_000).map(|_| span_id()).collect();
        assert_eq!(spans.len(), 10_000);
        assert_ne!(trace_id(), trace_id());
    }
}
