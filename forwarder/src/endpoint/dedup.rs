//! De-duplication of retried requests by `X-Amz-Firehose-Request-Id`, which Firehose keeps on every retry
//! of a batch. A request whose lines were all delivered is answered 200 again without shipping them again;
//! one that can only fail the same way is answered the same way; one still being delivered (Firehose gave
//! up waiting and retried) is answered 503. Per process, in bounded memory counted in bytes: the oldest
//! settled ids are forgotten first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// What the map costs per entry beyond the id itself (two copies of the id's `String` header, the hash
/// slot, the queue slot), rounded up.
const ENTRY_OVERHEAD: usize = 96;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    Delivered,
    /// Answered with this status and message, and a retry can only end the same.
    Refused {
        status: u16,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    InProgress,
    Done(Settled),
}

#[derive(Debug, Default)]
struct Inner {
    states: HashMap<String, State>,
    /// Settled ids, oldest first.
    order: VecDeque<String>,
    bytes: usize,
}

#[derive(Debug, Clone)]
pub struct Dedup {
    inner: Arc<Mutex<Inner>>,
    max_bytes: usize,
}

/// What a request id's earlier attempts came to.
#[derive(Debug)]
pub enum Seen {
    /// Not seen (or forgotten): go ahead; the guard marks it in progress until it is finished or dropped.
    New(Attempt),
    InProgress,
    Settled(Settled),
}

/// An attempt in progress. Dropped unfinished (the request failed in a way a retry may fix), the id is
/// forgotten, so that the retry ships again.
#[derive(Debug)]
pub struct Attempt {
    dedup: Dedup,
    id: Option<String>,
}

impl Dedup {
    /// `max_bytes` 0 turns de-duplication off.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            inner: Arc::default(),
            max_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Plain data: still consistent after a panic elsewhere.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn begin(&self, id: &str) -> Seen {
        if self.max_bytes == 0 {
            return Seen::New(Attempt {
                dedup: self.clone(),
                id: None,
            });
        }
        let mut inner = self.lock();
        match inner.states.get(id) {
            Some(State::InProgress) => Seen::InProgress,
            Some(State::Done(settled)) => Seen::Settled(settled.clone()),
            None => {
                inner.states.insert(id.to_owned(), State::InProgress);
                Seen::New(Attempt {
                    dedup: self.clone(),
                    id: Some(id.to_owned()),
                })
            }
        }
    }

    /// Bytes the settled entries hold.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn settle(&self, id: String, settled: Settled) {
        let cost = cost(&id, &settled);
        let mut inner = self.lock();
        if cost > self.max_bytes {
            inner.states.remove(&id);
            return;
        }
        while inner.bytes + cost > self.max_bytes {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(State::Done(old)) = inner.states.remove(&oldest) {
                inner.bytes -= self::cost(&oldest, &old);
            }
        }
        inner.bytes += cost;
        inner.order.push_back(id.clone());
        inner.states.insert(id, State::Done(settled));
    }
}

fn cost(id: &str, settled: &Settled) -> usize {
    let message = match settled {
        Settled::Delivered => 0,
        Settled::Refused { message, .. } => message.len(),
    };
    2 * id.len() + message + ENTRY_OVERHEAD
}

impl Attempt {
    pub fn finish(mut self, settled: Settled) {
        if let Some(id) = self.id.take() {
            self.dedup.settle(id, settled);
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.dedup.lock().states.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_ids_are_answered_again_and_in_progress_ones_are_told_apart() {
        let dedup = Dedup::new(1 << 20);
        let Seen::New(attempt) = dedup.begin("a") else {
            panic!()
        };
        assert!(matches!(dedup.begin("a"), Seen::InProgress));
        attempt.finish(Settled::Delivered);
        assert!(matches!(dedup.begin("a"), Seen::Settled(Settled::Delivered)));
        let Seen::New(attempt) = dedup.begin("b") else {
            panic!()
        };
        drop(attempt);
        assert!(matches!(dedup.begin("b"), Seen::New(_)));
    }

    #[test]
    fn memory_is_bounded_in_bytes_oldest_forgotten_first() {
        let max = 10 * (2 * 36 + ENTRY_OVERHEAD);
        let dedup = Dedup::new(max);
        for i in 0..1000 {
            let id = format!("{i:036}");
            let Seen::New(attempt) = dedup.begin(&id) else {
                panic!()
            };
            attempt.finish(Settled::Delivered);
            assert!(dedup.bytes() <= max);
        }
        assert!(matches!(dedup.begin(&format!("{:036}", 999)), Seen::Settled(_)));
        assert!(matches!(dedup.begin(&format!("{:036}", 0)), Seen::New(_)));
        assert_eq!(dedup.lock().order.len(), 10);
    }

    #[test]
    fn zero_bytes_turns_it_off() {
        let dedup = Dedup::new(0);
        let Seen::New(attempt) = dedup.begin("a") else {
            panic!()
        };
        attempt.finish(Settled::Delivered);
        assert!(matches!(dedup.begin("a"), Seen::New(_)));
    }
}
