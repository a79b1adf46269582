//! Decoding one unit into the subscription payloads it holds: normally one; several when records were
//! concatenated; a synthetic one when Firehose's own decompression and message extraction left bare text.

use std::borrow::Cow;

use super::budget::Budget;
use super::decode::{base64_decode, maybe_gunzip_within, DecodeError};
use super::detect::{InputError, Shape, UnitData};
use super::model::{Envelope, LogEvent, SubscriptionPayload};
use crate::limits::Limits;

/// A unit's data after base64 and gzip: the costly half of decoding, which needs no pipeline state, so
/// that a pipeline shared by concurrent requests is not held while a record inflates.
#[derive(Debug)]
pub enum Decoded<'a> {
    /// It arrived as a payload (a line of an S3 object, a file).
    Payload(SubscriptionPayload<'a>),
    Bytes(Vec<u8>),
    Failed(InputError),
}

/// Decodes one unit's data, every decompression drawing on the input's `budget`.
pub fn decode_unit<'a>(
    data: UnitData<'a>,
    location: &str,
    limits: &Limits,
    budget: &mut Budget,
) -> Decoded<'a> {
    let encoded = match data {
        UnitData::Decoded(payload) => return Decoded::Payload(payload),
        UnitData::Malformed(bad) => {
            return Decoded::Failed(InputError::Malformed {
                location: location.to_owned(),
                reason: bad.reason,
                events: bad.events,
            })
        }
        UnitData::Encoded(text) => text,
    };
    // A stopped input refuses the rest without even decoding its base64.
    let decoded = budget
        .check()
        .map_err(DecodeError::from)
        .and_then(|()| base64_decode(&encoded))
        .and_then(|b| maybe_gunzip_within(b, limits.max_decompressed_bytes, budget));
    match decoded {
        Ok(bytes) => Decoded::Bytes(bytes),
        Err(source) => Decoded::Failed(InputError::Decode {
            location: location.to_owned(),
            source,
        }),
    }
}

impl Decoded<'_> {
    /// Hands each payload to `each`, in order, or the error that stopped it. Payloads borrow the decoded
    /// bytes, which live only for the call: nothing is copied per event.
    pub fn for_each_payload(
        self,
        shape: Shape,
        location: &str,
        arrival_ms: Option<i64>,
        mut each: impl FnMut(Result<SubscriptionPayload<'_>, InputError>),
    ) {
        let bytes = match self {
            Decoded::Payload(payload) => return each(Ok(payload)),
            Decoded::Failed(err) => return each(Err(err)),
            Decoded::Bytes(bytes) => bytes,
        };
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first == Some(&b'{') {
            return json_payloads(&bytes, location, &mut each);
        }
        // A direct subscription always carries a gzipped JSON payload: text there is malformed, not a message.
        if shape == Shape::DirectSubscription {
            return each(Err(match std::str::from_utf8(&bytes) {
                Ok(_) => InputError::TextNotPayload {
                    location: location.to_owned(),
                },
                Err(_) => InputError::Binary {
                    location: location.to_owned(),
                },
            }));
        }
        match std::str::from_utf8(&bytes) {
            Ok(text) => each(Ok(bare_text_payload(text, arrival_ms.unwrap_or(0)))),
            Err(_) => each(Err(InputError::Binary {
                location: location.to_owned(),
            })),
        }
    }
}

/// One or more payloads back to back. A syntax error ends the record: its remaining bytes cannot be trusted
/// to be where the producer put them.
fn json_payloads(
    bytes: &[u8],
    location: &str,
    each: &mut impl FnMut(Result<SubscriptionPayload<'_>, InputError>),
) {
    for next in serde_json::Deserializer::from_slice(bytes).into_iter::<Envelope>() {
        let envelope = match next {
            Ok(envelope) => envelope,
            Err(source) => {
                return each(Err(InputError::Json {
                    location: location.to_owned(),
                    source,
                }))
            }
        };
        if !envelope.is_payload() {
            return each(Err(InputError::NotAPayload {
                location: location.to_owned(),
            }));
        }
        each(envelope.into_payload().map_err(|bad| InputError::Malformed {
            location: location.to_owned(),
            reason: bad.reason,
            events: bad.events,
        }));
    }
}

fn bare_text_payload(text: &str, timestamp: i64) -> SubscriptionPayload<'_> {
    let log_events = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| LogEvent {
            timestamp,
            message: Cow::Borrowed(line),
        })
        .collect();
    SubscriptionPayload {
        message_type: Cow::Borrowed("DATA_MESSAGE"),
        log_events,
        ..Default::default()
    }
}
