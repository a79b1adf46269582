//! Input: detects the shape of what arrived and decodes it into CloudWatch Logs subscription payloads.
//!
//! Every shape of FORMATS.md ends up as a list of [`Unit`]s (one Firehose record, one backup line, one raw
//! payload...), each decoded on its own so that one bad record is reported by its location while the rest of
//! the batch goes on.

pub mod decode;
mod detect;
pub mod model;

pub use decode::DecodeError;
pub use detect::{decode_unit, split_input, InputError, Shape, Unit, UnitData};
pub use model::{LogEvent, SubscriptionPayload};
