//! Output: where correlated records go. Each destination maps [`LogRecord`](crate::record::LogRecord) to its
//! own conventions.

pub mod json_message;
pub(crate) mod json_text;
pub mod ndjson;

use std::borrow::Cow;

use crate::record::LogRecord;
use crate::telemetry::Invocation;

/// A destination for records. A sink may buffer; `flush` makes everything written so far durable or
/// delivered, and only then may the source be told the data was handled.
pub trait Sink {
    type Error: std::error::Error + Send + Sync + 'static;

    /// What becomes of a message before the pipeline cuts it to the size limit: `None` drops the line (the
    /// sink counts it as filtered), otherwise the message to forward. Filtering and scrubbing happen here
    /// rather than in `write` so that they see the whole message. The default forwards it as it is.
    fn admit<'a>(&mut self, message: Cow<'a, str>) -> Option<Cow<'a, str>> {
        Some(message)
    }

    fn write(&mut self, record: LogRecord<'_>) -> Result<(), Self::Error>;

    /// A finished invocation's platform telemetry (metrics, its span). Sinks that carry none ignore it.
    fn invocation(&mut self, _invocation: &Invocation) -> Result<(), Self::Error> {
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Self::Error>;
}
