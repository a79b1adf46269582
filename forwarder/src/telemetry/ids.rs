//! Span ids derived from a request id, for invocations no tracer gave ids (`TRACEHOSE_INVOCATION_SPANS=all`,
//! docs/formats.md section 9). The same request id gives the same ids in every process and every version:
//! a replayed or duplicated REPORT makes the same span, and lines joined to it in an earlier delivery still
//! point at it. So the ids come from a fixed hash (SHA-256, from ring, already in the tree through rustls),
//! never from std's per-process hasher.

use ring::digest::{Context, SHA256};
use tracehose_tracecontext::{SpanId, TraceId};

/// Keeps derived ids apart from any other use of SHA-256 over the same text.
const DOMAIN: &[u8] = b"tracehose invocation span\n";

/// The trace and span id of the invocation `request_id`. A Lambda request id is a UUID: its 128 bits are
/// the trace id, so the trace can be found by the request id (a UUID's digits are the trace id's digits).
/// Any other id (a JSON logger's own) gives a trace id from the hash. `None` only if every candidate is the
/// invalid all-zero id, which SHA-256 does not give in practice.
pub fn derived(request_id: &str) -> Option<(TraceId, SpanId)> {
    let mut context = Context::new(&SHA256);
    context.update(DOMAIN);
    context.update(request_id.as_bytes());
    let mut digest = [0u8; 32];
    digest.copy_from_slice(context.finish().as_ref());
    let trace_id = uuid_bits(request_id)
        .and_then(TraceId::from_bytes)
        .or_else(|| TraceId::from_bytes(take(&digest, 0)))?;
    let span_id = [16, 24]
        .into_iter()
        .find_map(|at| SpanId::from_bytes(take(&digest, at)))?;
    Some((trace_id, span_id))
}

/// `N` bytes of the digest from `at`.
fn take<const N: usize>(digest: &[u8; 32], at: usize) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&digest[at..at + N]);
    out
}

/// The 16 bytes a UUID's 32 hex digits spell (`8f507cfc-1a2b-4697-b07a-ac58fc914c95`), in either case.
fn uuid_bits(id: &str) -> Option<[u8; 16]> {
    if !crate::parse::is_request_id(id) {
        return None;
    }
    let mut digits = id.bytes().filter(|&c| c != b'-');
    let mut out = [0u8; 16];
    for byte in &mut out {
        let high = hex_value(digits.next()?)?;
        let low = hex_value(digits.next()?)?;
        *byte = high << 4 | low;
    }
    Some(out)
}

fn hex_value(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ID: &str = "8f507cfc-1a2b-4697-b07a-ac58fc914c95";

    #[test]
    fn a_uuid_request_id_is_the_trace_id() {
        let (trace, span) = derived(ID).unwrap();
        assert_eq!(trace.to_string(), "8f507cfc1a2b4697b07aac58fc914c95");
        assert_eq!(derived(&ID.to_uppercase()).unwrap().0, trace);
        // Fixed by `printf 'tracehose invocation span\n<id>' | sha256sum`: a change here would break the
        // spans and joins already sent for these invocations.
        assert_eq!(span.to_string(), "038282ebfcfe50a3");
    }

    #[test]
    fn other_request_ids_hash_to_both_ids() {
        let (trace, span) = derived("r-1").unwrap();
        assert_eq!(trace.to_string(), "0ee9dc3ce4d3957d1047fa312704b8f2");
        assert_eq!(span.to_string(), "da752f7e6833bd07");
        // The all-zero UUID is not a valid trace id: the hash stands in.
        let (zero, _) = derived("00000000-0000-0000-0000-000000000000").unwrap();
        assert_ne!(zero.to_bytes(), [0; 16]);
    }

    #[test]
    fn same_id_same_ids_different_id_different_ids() {
        let names = ["a", "b", "r-1", "", ID, "00000000-0000-0000-0000-000000000000"];
        let ids: Vec<_> = names.iter().map(|id| derived(id).unwrap()).collect();
        for (i, a) in ids.iter().enumerate() {
            assert_eq!(derived(names[i]).unwrap(), *a);
            for b in &ids[i + 1..] {
                assert_ne!(a.0, b.0);
                assert_ne!(a.1, b.1);
            }
        }
    }
}
