//! tracehose forwarder: CloudWatch Logs subscription data in, correlated log records out.
//!
//! The data flow, one module per stage: [`input`] (detect the shape, decode base64/gzip/JSON) -> [`parse`]
//! (what each line says) -> [`correlate`] (join each line to its invocation's trace) -> [`output`] (write
//! records). [`pipeline`] drives the stages and counts every outcome in a [`summary::Summary`].

pub mod aws;
pub mod cli;
pub mod correlate;
pub mod deliver;
pub mod endpoint;
pub mod input;
pub mod lambda;
pub mod limits;
pub mod output;
pub mod parse;
pub mod pipeline;
pub mod process;
pub mod record;
pub mod replay;
pub mod subscribe;
pub mod summary;
pub mod telemetry;
