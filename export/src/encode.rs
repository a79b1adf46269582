//! Protobuf encoding, optionally gzip-compressed: done once per payload and shared by every retry.

use std::io::Write;

use bytes::Bytes;
use flate2::{write::GzEncoder, Compression as Level};

use crate::Compression;

/// An encoded request body with the `Content-Type` and `Content-Encoding` it needs.
#[derive(Debug, Clone)]
pub struct Payload {
    pub body: Bytes,
    pub compression: Compression,
    pub content_type: &'static str,
}

const PROTOBUF: &str = "application/x-protobuf";

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("gzip-compressing a payload: {0}")]
    Gzip(#[from] std::io::Error),
}

/// Encodes `message` as protobuf and compresses it as asked. Level 1 gzip: most of the size gain for a
/// fraction of the CPU time, which is billed on Lambda.
pub fn encode<M: prost::Message>(message: &M, compression: Compression) -> Result<Payload, EncodeError> {
    compress(message.encode_to_vec(), compression, PROTOBUF)
}

/// A ready body of `content_type`, compressed as asked.
pub fn compress(
    raw: Vec<u8>,
    compression: Compression,
    content_type: &'static str,
) -> Result<Payload, EncodeError> {
    let body = match compression {
        Compression::None => Bytes::from(raw),
        Compression::Gzip => {
            let mut encoder = GzEncoder::new(Vec::with_capacity(raw.len() / 4 + 64), Level::fast());
            encoder.write_all(&raw)?;
            Bytes::from(encoder.finish()?)
        }
    };
    Ok(Payload {
        body,
        compression,
        content_type,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;
    use std::io::Read;

    #[test]
    fn gzip_round_trips() {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        name: "x".repeat(500),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let gz = encode(&request, Compression::Gzip).unwrap();
        assert_eq!(&gz.body[..2], &[0x1f, 0x8b]);
        let mut raw = Vec::new();
        GzDecoder::new(&gz.body[..]).read_to_end(&mut raw).unwrap();
        assert_eq!(ExportTraceServiceRequest::decode(&raw[..]).unwrap(), request);
        let plain = encode(&request, Compression::None).unwrap();
        assert_eq!(plain.body.to_vec(), raw);
        assert!(gz.body.len() < plain.body.len());
    }
}
