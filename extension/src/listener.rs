//! The Telemetry API listener. It answers 200 to every batch, parsed or not: Lambda redelivers anything
//! else forever, and a broken batch cannot become valid by being sent again.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use crate::logs::log_record;
use crate::server::{read_body, reply, BodyError, BodyLimits, Reply};
use crate::state::{print_markers, Shared, Stats};
use crate::telemetry::{parse_batch, Event};

/// Lambda's largest buffering setting is 1 MiB; batches can overshoot it by one record (up to 256 KiB).
pub const MAX_BATCH_BYTES: usize = 2 * 1024 * 1024;
/// Lambda POSTs a whole buffered batch at once; a body still arriving after seconds will not be completed.
pub const LIMITS: BodyLimits = BodyLimits {
    max: MAX_BATCH_BYTES,
    drain: 4 * MAX_BATCH_BYTES,
    deadline: Duration::from_secs(5),
};
/// Lambda delivers one batch at a time per subscriber; a few more leave room for retries.
pub const MAX_CONNECTIONS: usize = 4;

pub async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Reply {
    let ok = || reply(StatusCode::OK, "", "");
    let (parts, body) = request.into_parts();
    let body = match read_body(&parts.headers, body, LIMITS).await {
        Ok(body) => body,
        Err(BodyError::TooLarge(_)) => {
            Stats::add(&shared.stats.telemetry_oversize, 1);
            return ok();
        }
        Err(BodyError::Read(_) | BodyError::Timeout(_)) => {
            Stats::add(&shared.stats.telemetry_unparseable, 1);
            return ok();
        }
    };
    Stats::add(&shared.stats.telemetry_batches, 1);
    let (events, unusable) = match parse_batch(&body) {
        Ok(parsed) => parsed,
        Err(_) => {
            Stats::add(&shared.stats.telemetry_unparseable, 1);
            return ok();
        }
    };
    Stats::add(&shared.stats.telemetry_items_unusable, unusable);
    apply(&shared, events);
    ok()
}

/// Feeds events to the tracker, prints due markers, wakes the event loop.
pub fn apply(shared: &Shared, events: Vec<Event>) {
    let mut markers = Vec::new();
    {
        let mut state = shared.lock();
        // The subscription works: from now on invocations complete by their reports, not by the next one.
        state.tracker.set_telemetry(true);
        for event in events {
            match event {
                Event::Function(log) => {
                    if shared.ship_logs {
                        let record = log_record(log, &mut state.tracker);
                        shared.push_log(&mut state, record);
                    }
                }
                Event::LogsDropped { .. } => Stats::add(&shared.stats.platform_logs_dropped, 1),
                other => markers.extend(state.tracker.on_event(other)),
            }
        }
    }
    markers.extend(shared.collect_complete(false));
    print_markers(&markers);
    shared.changed.notify_waiters();
}
