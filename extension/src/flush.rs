//! When to flush. Rarely invoked functions flush at the end of each invocation, within a hard budget, because
//! a frozen sandbox may never run again. Frequently invoked ones flush in the background while the function
//! runs, at most once per interval, and add nothing after `runtimeDone`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::FlushStrategy;

/// Invocations remembered to judge the frequency.
const WINDOW_LEN: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    End,
    Periodic,
}

#[derive(Debug)]
pub struct FlushPolicy {
    strategy: FlushStrategy,
    interval: Duration,
    recent: VecDeque<Instant>,
    last_flush: Option<Instant>,
}

impl FlushPolicy {
    pub fn new(strategy: FlushStrategy, interval: Duration) -> Self {
        Self {
            strategy,
            interval,
            recent: VecDeque::with_capacity(WINDOW_LEN),
            last_flush: None,
        }
    }

    pub fn on_invoke(&mut self, now: Instant) {
        if self.recent.len() == WINDOW_LEN {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
    }

    /// Periodic once the last ten invocations came within six flush intervals of each other (by default one a
    /// minute or more often): then the next invocation is likely to come before the data gets old.
    pub fn mode(&self) -> Mode {
        match self.strategy {
            FlushStrategy::End => Mode::End,
            FlushStrategy::Periodic => Mode::Periodic,
            FlushStrategy::Auto => match (self.recent.front(), self.recent.back()) {
                (Some(first), Some(last))
                    if self.recent.len() == WINDOW_LEN
                        && last.duration_since(*first) <= self.interval.saturating_mul(6) =>
                {
                    Mode::Periodic
                }
                _ => Mode::End,
            },
        }
    }

    /// In periodic mode: whether a background flush is due now.
    pub fn due(&self, now: Instant, buffered_bytes: usize, high_water: usize) -> bool {
        buffered_bytes >= high_water
            || self
                .last_flush
                .is_none_or(|last| now.duration_since(last) >= self.interval)
    }

    pub fn flushed(&mut self, now: Instant) {
        self.last_flush = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_to_periodic_when_busy_and_back_when_quiet() {
        let interval = Duration::from_secs(10);
        let mut p = FlushPolicy::new(FlushStrategy::Auto, interval);
        let t0 = Instant::now();
        for i in 0..9 {
            p.on_invoke(t0 + Duration::from_secs(i));
            assert_eq!(p.mode(), Mode::End);
        }
        p.on_invoke(t0 + Duration::from_secs(9));
        assert_eq!(p.mode(), Mode::Periodic);
        p.on_invoke(t0 + Duration::from_secs(600));
        assert_eq!(p.mode(), Mode::End);
        assert_eq!(
            FlushPolicy::new(FlushStrategy::Periodic, interval).mode(),
            Mode::Periodic
        );
    }

    #[test]
    fn due_by_interval_or_size() {
        let mut p = FlushPolicy::new(FlushStrategy::Periodic, Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(p.due(t0, 0, 100));
        p.flushed(t0);
        assert!(!p.due(t0 + Duration::from_secs(1), 0, 100));
        assert!(p.due(t0 + Duration::from_secs(1), 100, 100));
        assert!(p.due(t0 + Duration::from_secs(10), 0, 100));
    }
}
