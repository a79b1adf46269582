//! What one input may cost: an input (a Firehose HTTP endpoint request, a Lambda event, a file given to
//! `process`, a replayed object) gets one [`Budget`] that all of its decompressions draw from, and the
//! deadline of whoever is waiting for it.
//!
//! The per-decompression cap alone bounds memory, not time: a request of a thousand records that each
//! inflate to the cap costs a thousand times the cap, which is minutes of CPU for two kilobytes sent. The
//! budget bounds the total, and the deadline (checked between records, between correlation windows and
//! between chunks of one inflation) bounds the wall time, so a caller who stopped waiting stops costing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use thiserror::Error;

use crate::limits::Limits;

/// Why an input's processing stopped before its end. Every record not read because of it is refused and
/// counted by whoever reads the input.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    #[error(
        "the input's decompression budget of {limit} bytes (TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES) is spent"
    )]
    Spent { limit: usize },
    #[error("the deadline passed")]
    Deadline,
    #[error("the process is stopping")]
    Cancelled,
}

/// The time side of a budget: a deadline and a flag the process raises when it stops. Cheap to clone and
/// to check (one clock read), so it is checked often.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    deadline: Option<Instant>,
    cancel: Option<Arc<AtomicBool>>,
}

impl Clock {
    pub fn new(deadline: Option<Instant>) -> Self {
        Self {
            deadline,
            cancel: None,
        }
    }

    /// Stops as soon as `cancel` is raised, deadline or not.
    pub fn with_cancel(mut self, cancel: Arc<AtomicBool>) -> Self {
        self.cancel = Some(cancel);
        self
    }

    pub fn check(&self) -> Result<(), Stop> {
        if self.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Stop::Cancelled);
        }
        match self.deadline {
            Some(deadline) if Instant::now() >= deadline => Err(Stop::Deadline),
            _ => Ok(()),
        }
    }
}

/// Bytes all decompressions of one input may still produce, and its clock. Once stopped it stays stopped:
/// the rest of the input is refused without being looked at.
#[derive(Debug, Clone)]
pub struct Budget {
    limit: usize,
    inflated: usize,
    clock: Clock,
    stopped: Option<Stop>,
}

impl Default for Budget {
    /// No total and no deadline: each decompression is still capped on its own.
    fn default() -> Self {
        Self::new(usize::MAX, Clock::default())
    }
}

impl Budget {
    pub fn new(limit: usize, clock: Clock) -> Self {
        Self {
            limit,
            inflated: 0,
            clock,
            stopped: None,
        }
    }

    /// The configured total for one input (`TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES`), with `clock`.
    pub fn for_input(limits: &Limits, clock: Clock) -> Self {
        Self::new(limits.max_decompressed_total_bytes, clock)
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The same total under a new clock: for an input handed over in parts, each part waited for under a
    /// deadline of its own (a replayed object's segments, each one call of the delivery stage).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes produced by every decompression so far, including the one byte that proved a cap exceeded.
    pub fn inflated(&self) -> usize {
        self.inflated
    }

    /// What is left of the total.
    pub fn left(&self) -> usize {
        self.limit.saturating_sub(self.inflated)
    }

    /// Why the input stopped, if it did.
    pub fn stopped(&self) -> Option<Stop> {
        self.stopped
    }

    /// Checks the clock (and a stop already recorded): between records, windows and chunks.
    pub fn check(&mut self) -> Result<(), Stop> {
        if let Some(stop) = self.stopped {
            return Err(stop);
        }
        self.clock.check().map_err(|stop| self.stop(stop))
    }

    /// Records `bytes` produced; past the total, the input is stopped.
    pub fn charge(&mut self, bytes: usize) -> Result<(), Stop> {
        self.inflated = self.inflated.saturating_add(bytes);
        if self.inflated > self.limit {
            return Err(self.stop(Stop::Spent { limit: self.limit }));
        }
        Ok(())
    }

    /// Stops the input for `stop` (the first reason wins) and returns the reason in force.
    pub fn stop(&mut self, stop: Stop) -> Stop {
        *self.stopped.get_or_insert(stop)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_total_is_spent_once_and_stays_spent() {
        let mut budget = Budget::new(10, Clock::default());
        assert!(budget.charge(10).is_ok());
        assert_eq!(budget.left(), 0);
        assert_eq!(budget.charge(1), Err(Stop::Spent { limit: 10 }));
        assert_eq!(budget.check(), Err(Stop::Spent { limit: 10 }));
        assert_eq!(budget.inflated(), 11);
        // A later deadline does not change why it stopped.
        assert_eq!(budget.stop(Stop::Deadline), Stop::Spent { limit: 10 });
    }

    #[test]
    fn the_clock_stops_at_the_deadline_or_when_cancelled() {
        let past = Instant::now().checked_sub(Duration::from_millis(1));
        let mut late = Budget::new(usize::MAX, Clock::new(past));
        if past.is_some() {
            assert_eq!(late.check(), Err(Stop::Deadline));
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let far = Instant::now() + Duration::from_secs(3600);
        let mut budget = Budget::new(usize::MAX, Clock::new(Some(far)).with_cancel(Arc::clone(&cancel)));
        assert!(budget.check().is_ok());
        cancel.store(true, Ordering::Relaxed);
        assert_eq!(budget.check(), Err(Stop::Cancelled));
        assert!(Budget::default().check().is_ok());
        assert!(Budget::default().charge(usize::MAX).is_ok());
    }
}
