//! OTLP/HTTP export shared by the tracehose extension and the forwarder's OTLP and Dynatrace destinations.
//!
//! Four small pieces, one per module: where to send and with which headers ([`config`], from the standard
//! `OTEL_EXPORTER_OTLP_*` variables and Dynatrace's `DT_CONNECTION_*`), how to encode ([`encode`]: protobuf,
//! optionally gzip), what a response means ([`status`]), and how to send with bounded retry inside a deadline
//! ([`send`]). No AWS SDK and no OpenTelemetry SDK: the extension must stay small, and the caller owns its
//! messages (any `prost::Message`).

pub mod config;
pub mod encode;
pub mod send;
pub mod status;

pub use config::{Compression, ConfigError, Destination, Signal};
pub use encode::{compress, encode, EncodeError, Payload, DEFAULT_GZIP_LEVEL};
pub use send::{http_client, send, send_for_response, Delivered, ExportError, RetryPolicy};
pub use status::{classify, parse_retry_after, Class};
