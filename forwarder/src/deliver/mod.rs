//! Delivery: the async stage after correlation (docs/architecture.md, Delivery). Records are filtered and
//! scrubbed ([`filter`], before the pipeline cuts an oversize message), encoded per destination ([`encode`])
//! into batches cut by that destination's limits ([`batch`]), sent with bounded concurrency and retries
//! within the caller's deadline ([`sender`], over `export`'s HTTP, compression and retry code shared with the
//! extension), and every line ends in the [`Ledger`], which each face turns into what its source needs.
//!
//! Finished invocations take the same way to the telemetry lanes (`lanes.rs`: platform metrics and invocation
//! spans, docs/formats.md section 9), each its own ledger row, counted apart from the lines.
//!
//! The pipeline is synchronous and CPU-bound; it runs on a blocking thread and writes into a
//! [`DeliverySink`], which hands sealed batches to the sender over a bounded channel. When the sender is
//! behind, the pipeline waits: memory is bounded by the batch limits and the batches in flight.

mod batch;
pub mod config;
mod dd_agent;
pub mod encode;
mod filter;
mod lanes;
mod ledger;
mod redact;
pub mod secrets;
mod sender;
mod sink;
mod stage;

pub use self::config::{ConfigError, DeliverySetup, Destinations, SetupError};
pub use self::filter::{Filter, FilterError, Filtered};
pub use self::ledger::{DestinationLedger, Ledger, LineSet};
pub use self::secrets::{SecretError, Settings};
pub use self::sender::{HttpDestination, LaneEncoder, SendOptions};
pub use self::sink::{DeliveryError, DeliverySink, LocalDestination};
