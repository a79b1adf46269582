//! The wire shapes of FORMATS.md sections 1 and 4-6, as they are deserialised.

use serde::{de, Deserialize, Deserializer};

/// A CloudWatch Logs subscription payload (FORMATS.md section 1). Unknown fields such as `policyLevel` are
/// ignored by design.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionPayload {
    #[serde(default)]
    pub message_type: String,
    #[serde(default, deserialize_with = "string_or_number")]
    pub owner: Option<String>,
    #[serde(default)]
    pub log_group: String,
    #[serde(default)]
    pub log_stream: String,
    #[serde(default)]
    pub subscription_filters: Vec<String>,
    #[serde(default)]
    pub log_events: Vec<LogEvent>,
}

impl SubscriptionPayload {
    pub fn is_control_message(&self) -> bool {
        self.message_type == "CONTROL_MESSAGE"
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct LogEvent {
    /// A 56-digit decimal string in AWS; some emulators send a number.
    #[serde(default, deserialize_with = "string_or_number")]
    pub id: Option<String>,
    #[serde(deserialize_with = "epoch_millis")]
    pub timestamp: i64,
    pub message: String,
}

/// Every top-level JSON object tracehose accepts, with the fields that tell the shapes apart. Deserialising
/// once into this superset lets detection look at keys without parsing the input twice.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Envelope {
    // Direct subscription.
    pub awslogs: Option<AwsLogs>,
    // Firehose transformation and HTTP endpoint delivery.
    pub records: Option<Vec<FirehoseRecord>>,
    pub invocation_id: Option<String>,
    pub delivery_stream_arn: Option<String>,
    pub region: Option<String>,
    // Raw subscription payload.
    pub message_type: Option<String>,
    #[serde(default, deserialize_with = "string_or_number")]
    pub owner: Option<String>,
    pub log_group: Option<String>,
    pub log_stream: Option<String>,
    pub subscription_filters: Option<Vec<String>>,
    pub log_events: Option<Vec<LogEvent>>,
    // Firehose S3 failed-data backup line.
    pub raw_data: Option<String>,
    pub data_id: Option<String>,
    pub error_code: Option<String>,
    pub arrival_timestamp: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct AwsLogs {
    pub data: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FirehoseRecord {
    pub record_id: Option<String>,
    pub data: String,
    pub approximate_arrival_timestamp: Option<i64>,
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        S(String),
        U(u64),
        I(i64),
        F(f64),
    }
    Ok(Option::<Id>::deserialize(d)?.map(|id| match id {
        Id::S(s) => s,
        Id::U(n) => n.to_string(),
        Id::I(n) => n.to_string(),
        Id::F(n) => n.to_string(),
    }))
}

/// Epoch milliseconds as an integer; a float (seen from some producers) is truncated, anything else refused.
fn epoch_millis<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct Millis;
    impl de::Visitor<'_> for Millis {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("epoch milliseconds")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom("timestamp out of range"))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            if v.is_finite() && v.abs() < 9.0e15 {
                Ok(v as i64)
            } else {
                Err(E::custom("timestamp out of range"))
            }
        }
    }
    d.deserialize_any(Millis)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ids_as_strings_or_numbers_and_unknown_fields() {
        let p: SubscriptionPayload = serde_json::from_str(
            r#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"g","logStream":"s",
                "subscriptionFilters":["f"],"policyLevel":"ACCOUNT_LEVEL_POLICY","logEvents":[
                {"id":"36765107398567457283592375092183432929398395846291603456","timestamp":1,"message":"a"},
                {"id":42,"timestamp":2.0,"message":"b"}]}"#,
        )
        .unwrap();
        assert_eq!(p.log_events[1].id.as_deref(), Some("42"));
        assert_eq!(p.log_events[1].timestamp, 2);
        assert!(!p.is_control_message());
    }

    #[test]
    fn refuses_a_missing_message() {
        let err = serde_json::from_str::<LogEvent>(r#"{"id":"1","timestamp":1}"#).unwrap_err();
        assert!(err.to_string().contains("message"), "{err}");
    }
}
