//! Input: detects the shape of what arrived and decodes it into CloudWatch Logs subscription payloads.
//!
//! Every shape of docs/formats.md ends up as a list of [`Unit`]s (one Firehose record, one backup line, one
//! raw payload...), each decoded on its own so that one bad record is reported by its location while the rest
//! of the batch goes on. Payloads borrow their text from the decoded bytes instead of copying every event.

pub mod budget;
pub mod decode;
mod detect;
mod lenient;
pub mod model;
mod unit;

pub use budget::{Budget, Clock, Stop};
pub use decode::DecodeError;
pub use detect::{split_input, Input, InputError, Shape, Unit, UnitData};
pub use model::{BadEvent, BadPayload, LogEvent, SubscriptionPayload, MAX_NAME_LEN};
pub use unit::{decode_unit, Decoded};

/// Reads one subscription payload, checked, from JSON text: for benchmarks and tests that start from a
/// payload rather than a whole input.
pub fn parse_payload(json: &[u8]) -> Result<SubscriptionPayload<'_>, String> {
    let envelope: model::Envelope = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    envelope.into_payload().map_err(|bad| bad.reason)
}
