//! What the endpoint did, counted (shown by `GET /healthz` and in the line `serve` prints when it stops),
//! and the refusal log: refusals are answered before any work, so without a limit on their lines anyone
//! who can reach the endpoint writes to its log (and, in Lambda, its log bill) at the rate they send.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Counters, shared by every request of the process.
#[derive(Debug, Default)]
pub struct Counters {
    handled: AtomicU64,
    delivered: AtomicU64,
    refused: AtomicU64,
    refusals_not_logged: AtomicU64,
    in_progress: AtomicU64,
    inflated_bytes: AtomicU64,
    records_not_read: AtomicU64,
    idle_connections_closed: AtomicU64,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Requests whose body was read and handled, whatever the answer.
    pub handled: u64,
    /// Of those, answered 200.
    pub delivered: u64,
    /// Requests answered before their body was handled (a wrong key, a bad path, too busy...).
    pub refused: u64,
    /// Of those, refusals that got no line of their own, only a count in a summary line.
    pub refusals_not_logged: u64,
    /// Requests being handled now.
    pub in_progress: u64,
    /// Bytes inflated from request bodies and records, every gzip level counted.
    pub inflated_bytes: u64,
    /// Records refused unread because their request's decompression budget was spent or its deadline
    /// passed.
    pub records_not_read: u64,
    /// Idle connections closed to make room for a new one (`serve`).
    pub idle_connections_closed: u64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub fn snapshot(&self) -> Counts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counts {
            handled: get(&self.handled),
            delivered: get(&self.delivered),
            refused: get(&self.refused),
            refusals_not_logged: get(&self.refusals_not_logged),
            in_progress: get(&self.in_progress),
            inflated_bytes: get(&self.inflated_bytes),
            records_not_read: get(&self.records_not_read),
            idle_connections_closed: get(&self.idle_connections_closed),
        }
    }

    pub(super) fn inflated(&self, bytes: usize) {
        add(&self.inflated_bytes, bytes as u64);
    }

    pub(super) fn not_read(&self, records: usize) {
        add(&self.records_not_read, records as u64);
    }

    pub(super) fn refused(&self, logged: bool) {
        add(&self.refused, 1);
        if !logged {
            add(&self.refusals_not_logged, 1);
        }
    }

    pub(super) fn idle_closed(&self) {
        add(&self.idle_connections_closed, 1);
    }

    /// Counts a request in progress until the guard is dropped, then as handled.
    pub(super) fn handling(&self) -> Handling<'_> {
        add(&self.in_progress, 1);
        Handling { counters: self }
    }
}

#[derive(Debug)]
pub(super) struct Handling<'a> {
    counters: &'a Counters,
}

impl Handling<'_> {
    pub fn delivered(&self) {
        add(&self.counters.delivered, 1);
    }
}

impl Drop for Handling<'_> {
    fn drop(&mut self) {
        self.counters.in_progress.fetch_sub(1, Ordering::Relaxed);
        add(&self.counters.handled, 1);
    }
}

/// How often each kind of refusal gets a line: the first of an interval in full, the rest as one count.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Rate-limits refusal lines per status: the first refusal of each status in an interval is logged in
/// full, the others of that interval are counted, and the count is logged as one line when the next
/// interval's first refusal of that status arrives, or when the process stops. So a flood costs at most two
/// lines per status per interval, and a rare refusal (a 413 among a flood of 401s) still gets its own line.
#[derive(Debug)]
pub struct RefusalLog {
    interval: Duration,
    windows: Mutex<BTreeMap<u16, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    opened: Instant,
    suppressed: u64,
}

impl Default for RefusalLog {
    fn default() -> Self {
        Self::new(REFUSAL_LOG_INTERVAL)
    }
}

impl RefusalLog {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            windows: Mutex::new(BTreeMap::new()),
        }
    }

    /// The lines to write for one refusal with `status` (none when it is only counted); `line` is
    /// built only when it is written.
    pub fn refusal(&self, status: u16, now: Instant, line: impl FnOnce() -> String) -> Vec<String> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let mut lines = Vec::new();
        match windows.get_mut(&status) {
            Some(window) if now.saturating_duration_since(window.opened) < self.interval => {
                window.suppressed += 1;
                return lines;
            }
            Some(window) => lines.extend(summary(status, *window, now)),
            None => {}
        }
        windows.insert(
            status,
            Window {
                opened: now,
                suppressed: 0,
            },
        );
        lines.push(line());
        lines
    }

    /// The counts not yet written, one line per status: when the process stops.
    pub fn flush(&self, now: Instant) -> Vec<String> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let lines = windows
            .iter()
            .filter_map(|(status, window)| summary(*status, *window, now))
            .collect();
        windows.clear();
        lines
    }
}

fn summary(status: u16, window: Window, now: Instant) -> Option<String> {
    (window.suppressed > 0).then(|| {
        format!(
            "tracehose: endpoint: {} more requests answered {status} in the {} s after the last one logged, \
             not logged one by one",
            window.suppressed,
            now.saturating_duration_since(window.opened).as_secs()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_costs_two_lines_per_status_per_interval_and_each_is_counted() {
        let log = RefusalLog::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let mut lines = Vec::new();
        for i in 0..801u64 {
            lines.extend(log.refusal(401, t0 + Duration::from_millis(i), || "wrong key".into()));
        }
        // A rare refusal of another kind still gets its own line.
        lines.extend(log.refusal(413, t0, || "too large".into()));
        assert_eq!(lines, ["wrong key", "too large"]);
        let later = t0 + Duration::from_secs(61);
        let next = log.refusal(401, later, || "wrong key again".into());
        assert_eq!(next.len(), 2, "{next:?}");
        assert!(next[0].contains("800 more requests answered 401"), "{next:?}");
        assert_eq!(next[1], "wrong key again");
        log.refusal(401, later, || unreachable!("counted, not built"));
        let flushed = log.flush(later);
        assert_eq!(flushed.len(), 1, "{flushed:?}");
        assert!(flushed[0].contains("1 more requests answered 401"), "{flushed:?}");
        assert!(log.flush(later).is_empty());
    }

    #[test]
    fn counters_count_requests_in_progress_until_handled() {
        let counters = Counters::default();
        {
            let handling = counters.handling();
            handling.delivered();
            assert_eq!(counters.snapshot().in_progress, 1);
        }
        counters.refused(false);
        let counts = counters.snapshot();
        assert_eq!((counts.in_progress, counts.handled, counts.delivered), (0, 1, 1));
        assert_eq!((counts.refused, counts.refusals_not_logged), (1, 1));
    }
}
