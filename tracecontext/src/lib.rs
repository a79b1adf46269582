//! Trace and span ids and the text forms they travel in.
//!
//! Both tracehose programs speak these forms: the extension prints the invocation marker line and converts
//! X-Ray headers, the forwarder finds the same forms inside log lines. Keeping them in one dependency-free
//! crate keeps the marker contract (docs/architecture.md) in exactly one place and the extension small.
//!
//! Every parser here is strict: wrong length, a non-hex digit or an all-zero id yields `None`, because a
//! wrong join is worse than none.

mod ids;
mod marker;
mod w3c;
mod xray;

pub use ids::{SpanId, TraceId};
pub use marker::{invocation_marker_line, parse_invocation_marker, DynatraceMarker, InvocationMarker};
pub use w3c::TraceParent;
pub use xray::XrayHeader;
