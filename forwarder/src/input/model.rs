//! The wire shapes of docs/formats.md sections 1 and 4-6, as they are deserialised: every field a [`Field`],
//! so a wrong type costs only the record or event that holds it, and every string borrowed from the input
//! unless it holds escapes.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::Deserialize;

use super::lenient::{lenient_object, Field, Id, Lenient, Millis, Wrong};

/// CloudWatch Logs' own limit on log group and log stream names. A longer name is not from CloudWatch, and
/// since names key the correlation state, accepting one would let a small input cost a lot of memory.
pub const MAX_NAME_LEN: usize = 512;

/// A CloudWatch Logs subscription payload (docs/formats.md section 1), checked: names within CloudWatch's
/// limits, every event readable. Events that were not are kept apart, counted and named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionPayload<'a> {
    pub message_type: Cow<'a, str>,
    pub owner: Option<Cow<'a, str>>,
    pub log_group: Cow<'a, str>,
    pub log_stream: Cow<'a, str>,
    pub log_events: Vec<LogEvent<'a>>,
    pub bad_events: Vec<BadEvent>,
}

impl SubscriptionPayload<'_> {
    pub fn is_control_message(&self) -> bool {
        self.message_type == "CONTROL_MESSAGE"
    }

    /// Every event received, readable or not.
    pub fn event_count(&self) -> u64 {
        (self.log_events.len() + self.bad_events.len()) as u64
    }

    /// One line naming the events that could not be read: the first few by index and id, then a count.
    pub fn describe_bad_events(&self) -> Option<String> {
        const NAMED: usize = 3;
        let first = self.bad_events.first()?;
        let mut text = format!(
            "{} of {} log events could not be read: {first}",
            self.bad_events.len(),
            self.event_count()
        );
        for bad in self.bad_events.iter().skip(1).take(NAMED - 1) {
            let _ = write!(text, "; {bad}");
        }
        if self.bad_events.len() > NAMED {
            let _ = write!(text, "; and {} more", self.bad_events.len() - NAMED);
        }
        Some(text)
    }
}

/// One log event. The CloudWatch event id is not kept: nothing downstream uses it, and for payloads of tiny
/// events it would be most of the memory; a bad event's id is kept in its [`BadEvent`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogEvent<'a> {
    pub timestamp: i64,
    pub message: Cow<'a, str>,
}

/// A log event that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEvent {
    pub index: usize,
    pub id: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for BadEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "logEvents[{}]", self.index)?;
        if let Some(id) = &self.id {
            write!(f, " (id {id})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// A payload whose envelope fields are unusable: its events, however readable, cannot be attributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPayload {
    pub reason: String,
    /// Events it held, all lost with it.
    pub events: u64,
}

/// The events of a payload, each judged as it is read.
#[derive(Debug, Default)]
pub(crate) struct Events<'a> {
    good: Vec<LogEvent<'a>>,
    bad: Vec<BadEvent>,
}

impl<'de: 'a, 'a> Lenient<'de> for Events<'a> {
    fn from_seq<A: serde::de::SeqAccess<'de>>(mut seq: A) -> Result<Result<Self, Wrong>, A::Error> {
        let mut events = Events::default();
        let mut index = 0;
        while let Some(item) = seq.next_element::<Field<RawEvent<'a>>>()? {
            let checked = match item.require("the event") {
                Ok(raw) => raw.check(),
                Err(reason) => Err((None, reason)),
            };
            match checked {
                Ok(event) => events.good.push(event),
                Err((id, reason)) => events.bad.push(BadEvent { index, id, reason }),
            }
            index += 1;
        }
        Ok(Ok(events))
    }
}

#[derive(Debug, Deserialize)]
struct RawEvent<'a> {
    #[serde(default, borrow)]
    id: Field<Id<'a>>,
    #[serde(default)]
    timestamp: Field<Millis>,
    #[serde(default, borrow)]
    message: Field<Cow<'a, str>>,
}
lenient_object!(RawEvent);

impl<'a> RawEvent<'a> {
    fn check(self) -> Result<LogEvent<'a>, (Option<String>, String)> {
        let RawEvent {
            id,
            timestamp,
            message,
        } = self;
        match (timestamp.require("timestamp"), message.require("message")) {
            (Ok(timestamp), Ok(message)) => Ok(LogEvent {
                timestamp: timestamp.0,
                message,
            }),
            (Err(reason), _) | (_, Err(reason)) => Err((id.ok().map(|id| id.0.into_owned()), reason)),
        }
    }
}

/// Every top-level JSON object tracehose accepts, with the fields that tell the shapes apart. Deserialising
/// once into this superset lets detection look at keys without parsing the input twice; a decoded record is
/// read the same way.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Envelope<'a> {
    // Direct subscription.
    #[serde(default, borrow)]
    pub awslogs: Field<AwsLogs<'a>>,
    // Firehose transformation and HTTP endpoint delivery.
    #[serde(default, borrow)]
    pub records: Field<Vec<Field<FirehoseRecord<'a>>>>,
    #[serde(default, borrow)]
    pub invocation_id: Field<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub delivery_stream_arn: Field<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub region: Field<Cow<'a, str>>,
    // Subscription payload.
    #[serde(default, borrow)]
    pub message_type: Field<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub owner: Field<Id<'a>>,
    #[serde(default, borrow)]
    pub log_group: Field<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub log_stream: Field<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub log_events: Field<Events<'a>>,
    // Firehose S3 failed-data backup line.
    #[serde(default, borrow)]
    pub raw_data: Field<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub data_id: Field<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub error_code: Field<Cow<'a, str>>,
    #[serde(default)]
    pub arrival_timestamp: Field<Millis>,
}
lenient_object!(Envelope);

impl<'a> Envelope<'a> {
    /// Whether this object is meant as a subscription payload.
    pub fn is_payload(&self) -> bool {
        self.log_events.is_present() || self.message_type.is_present()
    }

    /// The subscription payload this object holds, checked.
    pub fn into_payload(self) -> Result<SubscriptionPayload<'a>, BadPayload> {
        let events = match self.log_events {
            Field::Value(events) => events,
            Field::Missing | Field::Null => Events::default(),
            Field::Wrong(found) => {
                return Err(BadPayload {
                    reason: format!("logEvents is {found}"),
                    events: 0,
                })
            }
        };
        let count = (events.good.len() + events.bad.len()) as u64;
        let bad = |reason: String| BadPayload {
            reason,
            events: count,
        };
        let message_type = self.message_type.optional("messageType").map_err(bad)?;
        let log_group = name(self.log_group, "logGroup").map_err(bad)?;
        let log_stream = name(self.log_stream, "logStream").map_err(bad)?;
        Ok(SubscriptionPayload {
            message_type: message_type.unwrap_or_default(),
            owner: self.owner.ok().map(|id| id.0),
            log_group,
            log_stream,
            log_events: events.good,
            bad_events: events.bad,
        })
    }
}

fn name<'a>(field: Field<Cow<'a, str>>, key: &str) -> Result<Cow<'a, str>, String> {
    let name = field.optional(key)?.unwrap_or_default();
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "{key} is {} bytes long, more than CloudWatch's limit of {MAX_NAME_LEN}",
            name.len()
        ));
    }
    Ok(name)
}

#[derive(Debug, Deserialize)]
pub(crate) struct AwsLogs<'a> {
    #[serde(default, borrow)]
    pub data: Field<Cow<'a, str>>,
}
lenient_object!(AwsLogs);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FirehoseRecord<'a> {
    #[serde(default, borrow)]
    pub record_id: Field<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub data: Field<Cow<'a, str>>,
    #[serde(default)]
    pub approximate_arrival_timestamp: Field<Millis>,
}
lenient_object!(FirehoseRecord);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn payload(json: &str) -> Result<SubscriptionPayload<'_>, BadPayload> {
        serde_json::from_str::<Envelope>(json).unwrap().into_payload()
    }

    #[test]
    fn accepts_ids_as_strings_or_numbers_and_unknown_fields() {
        let p = payload(
            r#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"g","logStream":"s",
                "subscriptionFilters":["f"],"policyLevel":"ACCOUNT_LEVEL_POLICY","logEvents":[
                {"id":"36765107398567457283592375092183432929398395846291603456","timestamp":1,"message":"a"},
                {"id":42,"timestamp":2.0,"message":"b"}]}"#,
        )
        .unwrap();
        assert_eq!(p.log_events[1].timestamp, 2);
        assert_eq!(p.log_events[1].message, "b");
        assert!(matches!(p.log_group, Cow::Borrowed("g")));
        assert!(!p.is_control_message());
        assert!(p.bad_events.is_empty());
    }

    #[test]
    fn a_bad_event_costs_only_itself_and_is_named() {
        let p = payload(
            r#"{"messageType":"DATA_MESSAGE","logGroup":"g","logStream":"s","logEvents":[
                {"id":"1","timestamp":1,"message":"a"},{"id":"3","timestamp":"oops","message":"x"},
                {"id":"4","timestamp":1},7,{"id":"5","timestamp":5,"message":"e"}]}"#,
        )
        .unwrap();
        assert_eq!(p.log_events.len(), 2);
        assert_eq!(p.event_count(), 5);
        let described = p.describe_bad_events().unwrap();
        assert_eq!(
            described,
            "3 of 5 log events could not be read: logEvents[1] (id 3): timestamp is a string; \
             logEvents[2] (id 4): message is missing; logEvents[3]: the event is a number"
        );
    }

    #[test]
    fn bad_envelope_fields_fail_the_payload_with_its_event_count() {
        let long = "g".repeat(MAX_NAME_LEN + 1);
        let err = payload(&format!(
            r#"{{"logGroup":"{long}","logStream":"s","logEvents":[{{"timestamp":1,"message":"a"}}]}}"#
        ))
        .unwrap_err();
        assert_eq!(err.events, 1);
        assert!(
            err.reason.contains("logGroup is 513 bytes long"),
            "{}",
            err.reason
        );
        let err = payload(r#"{"messageType":7,"logEvents":[]}"#).unwrap_err();
        assert_eq!(err.reason, "messageType is a number");
        let err = payload(r#"{"messageType":"DATA_MESSAGE","logEvents":"x"}"#).unwrap_err();
        assert_eq!(err.reason, "logEvents is a string");
    }
}
