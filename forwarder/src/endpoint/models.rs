//! The Firehose HTTP endpoint's wire (docs/formats.md section 5): the request headers that matter, the
//! request body, and the one JSON body every answer carries, whatever its status.

use std::borrow::Cow;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

pub const ACCESS_KEY: &str = "x-amz-firehose-access-key";
pub const REQUEST_ID: &str = "x-amz-firehose-request-id";
pub const PROTOCOL_VERSION: &str = "x-amz-firehose-protocol-version";
pub const SOURCE_ARN: &str = "x-amz-firehose-source-arn";
pub const COMMON_ATTRIBUTES: &str = "x-amz-firehose-common-attributes";
pub const CONTENT_ENCODING: &str = "content-encoding";

/// The only protocol version Firehose speaks.
pub const SUPPORTED_PROTOCOL: &str = "1.0";
/// Firehose sends at most 50 common attributes.
pub const MAX_COMMON_ATTRIBUTES: usize = 50;
/// Firehose's request ids are GUIDs; anything much longer is not from Firehose, and would cost the
/// de-duplication memory.
pub const MAX_REQUEST_ID_BYTES: usize = 256;

/// The headers the endpoint reads, from either face. Names are looked up lower-case.
#[derive(Clone, Default)]
pub struct RequestHeaders {
    pub access_key: Option<String>,
    pub request_id: Option<String>,
    pub protocol_version: Option<String>,
    pub source_arn: Option<String>,
    pub common_attributes: Option<String>,
    pub content_encoding: Option<String>,
}

impl fmt::Debug for RequestHeaders {
    /// Everything but the access key, which is a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestHeaders")
            .field("access_key", &self.access_key.as_ref().map(|_| "<redacted>"))
            .field("request_id", &self.request_id)
            .field("protocol_version", &self.protocol_version)
            .field("source_arn", &self.source_arn)
            .field("common_attributes", &self.common_attributes)
            .field("content_encoding", &self.content_encoding)
            .finish()
    }
}

impl RequestHeaders {
    /// `lookup` takes a lower-case header name.
    pub fn from_lookup<'a>(lookup: impl Fn(&str) -> Option<&'a str>) -> Self {
        let get = |name: &str| lookup(name).map(str::to_owned);
        Self {
            access_key: get(ACCESS_KEY),
            request_id: get(REQUEST_ID).map(|id| id.trim().to_owned()),
            protocol_version: get(PROTOCOL_VERSION),
            source_arn: get(SOURCE_ARN)
                .map(|arn| arn.trim().to_owned())
                .filter(|a| !a.is_empty()),
            common_attributes: get(COMMON_ATTRIBUTES).filter(|a| !a.trim().is_empty()),
            content_encoding: get(CONTENT_ENCODING),
        }
    }
}

/// `{"requestId","timestamp","records":[{"data"}]}`. The record data borrow from the body: base64 has no
/// escapes, so nothing is copied.
#[derive(Debug, Deserialize)]
pub struct RequestBody<'a> {
    #[serde(rename = "requestId", borrow)]
    pub request_id: Cow<'a, str>,
    /// Present in every Firehose request; its value is not needed.
    #[allow(dead_code)]
    pub timestamp: serde_json::Number,
    #[serde(borrow)]
    pub records: Vec<RequestRecord<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct RequestRecord<'a> {
    #[serde(borrow)]
    pub data: Cow<'a, str>,
}

/// `{"commonAttributes":{"k":"v",...}}`, in the order configured on the stream.
pub fn parse_common_attributes(header: &str) -> Result<Vec<(String, String)>, String> {
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(rename = "commonAttributes")]
        common_attributes: Ordered,
    }
    serde_json::from_str::<Envelope>(header)
        .map(|e| e.common_attributes.0)
        .map_err(|err| err.to_string())
}

struct Ordered(Vec<(String, String)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor;
        impl<'de> Visitor<'de> for OrderedVisitor {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an object of at most {MAX_COMMON_ATTRIBUTES} string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, String>()? {
                    if out.len() == MAX_COMMON_ATTRIBUTES {
                        return Err(serde::de::Error::custom(format!(
                            "more than {MAX_COMMON_ATTRIBUTES} attributes"
                        )));
                    }
                    out.push(entry);
                }
                Ok(Ordered(out))
            }
        }
        deserializer.deserialize_map(OrderedVisitor)
    }
}

/// An answer of either face: the status and the spec's JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    /// `{"requestId":"<id>","timestamp":<ms>,"errorMessage":"..."}`, the message only when there is one.
    pub fn new(status: u16, request_id: &str, error: Option<&str>) -> Self {
        let timestamp = now_ms();
        let body = match error {
            Some(message) => serde_json::json!({
                "requestId": request_id, "timestamp": timestamp, "errorMessage": message,
            }),
            None => serde_json::json!({ "requestId": request_id, "timestamp": timestamp }),
        };
        Self {
            status,
            body: body.to_string(),
        }
    }

    pub fn ok(&self) -> bool {
        self.status == 200
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn common_attributes_keep_their_order_and_are_bounded() {
        let parsed = parse_common_attributes(r#"{"commonAttributes":{"team":"a","env":"prod"}}"#).unwrap();
        assert_eq!(
            parsed,
            [("team".into(), "a".into()), ("env".into(), "prod".into())]
        );
        let many: Vec<String> = (0..51).map(|i| format!("\"k{i}\":\"v\"")).collect();
        let header = format!("{{\"commonAttributes\":{{{}}}}}", many.join(","));
        assert!(parse_common_attributes(&header)
            .unwrap_err()
            .contains("more than 50"));
        assert!(parse_common_attributes(r#"{"commonAttributes":{"n":1}}"#).is_err());
        assert!(parse_common_attributes("not json").is_err());
    }

    #[test]
    fn replies_carry_the_spec_body() {
        let reply = Reply::new(401, "id-\"1\"", Some("wrong key"));
        let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(v["requestId"], "id-\"1\"");
        assert!(v["timestamp"].as_u64().unwrap() > 1_600_000_000_000);
        assert_eq!(v["errorMessage"], "wrong key");
        let ok: serde_json::Value = serde_json::from_str(&Reply::new(200, "x", None).body).unwrap();
        assert!(ok.get("errorMessage").is_none());
    }

    #[test]
    fn debug_hides_the_access_key() {
        let headers = RequestHeaders::from_lookup(|name| (name == ACCESS_KEY).then_some("s3cret-key"));
        assert!(!format!("{headers:?}").contains("s3cret"));
    }
}
