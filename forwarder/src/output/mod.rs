//! Output: where correlated records go. Each destination maps [`LogRecord`](crate::record::LogRecord) to its
//! own conventions.

pub(crate) mod json_text;
pub mod ndjson;

use crate::record::LogRecord;

/// A destination for records. A sink may buffer; `flush` makes everything written so far durable or
/// delivered, and only then may the source be told the data was handled.
pub trait Sink {
    type Error: std::error::Error + Send + Sync + 'static;

    fn write(&mut self, record: LogRecord<'_>) -> Result<(), Self::Error>;

    fn flush(&mut self) -> Result<(), Self::Error>;
}
