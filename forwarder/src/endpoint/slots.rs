//! Connection slots for `serve`: at most `--max-connections` open at once, and never kept out by idle
//! ones.
//!
//! An idle connection costs its client nothing to hold, so any fixed timeout lets whoever holds
//! `--max-connections` sockets (without a key, without sending a byte) keep every other client out for
//! that long, health checks included. Here, when every slot is taken, a new connection takes the slot of
//! the connection idle the longest: one with no request in progress, whether it never sent one or sits
//! between keep-alive requests. Closing it loses nothing (HTTP/1.1 lets a server close an idle persistent
//! connection at any time; a client that raced a request onto it sees the connection closed and retries).
//! Only connections with a request in progress hold their slot, and those are few: refusals are answered
//! at once, and at most `--max-concurrent-requests` are read or delivered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

#[derive(Debug)]
pub struct Slots {
    max: usize,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
    /// Raised when a slot frees or a connection goes idle: the accept loop may proceed.
    freed: Notify,
    /// Orders connections by when they were last active.
    ticks: AtomicU64,
}

/// One connection's state, shared by its slot and its task.
#[derive(Debug)]
pub struct Connection {
    id: u64,
    busy: AtomicBool,
    last_active: AtomicU64,
    evict: Notify,
}

/// The slot one connection holds; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    connection: Arc<Connection>,
}

/// What taking a slot did to make room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Free,
    /// The connection idle the longest was told to close.
    Evicted,
}

impl Slots {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            open: Mutex::new(HashMap::new()),
            freed: Notify::new(),
            ticks: AtomicU64::new(0),
        })
    }

    fn tick(&self) -> u64 {
        self.ticks.fetch_add(1, Ordering::Relaxed)
    }

    /// A slot for the next connection: a free one, else the slot of the connection idle the longest;
    /// waits only while every open connection has a request in progress.
    pub async fn acquire(self: &Arc<Self>) -> (Slot, Taken) {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before looking, so that a slot freed in between is not missed.
            freed.as_mut().enable();
            if let Some(taken) = self.try_acquire() {
                return taken;
            }
            freed.await;
        }
    }

    fn try_acquire(self: &Arc<Self>) -> Option<(Slot, Taken)> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let mut taken = Taken::Free;
        if open.len() >= self.max {
            let victim = open
                .values()
                .filter(|c| !c.busy.load(Ordering::SeqCst))
                .min_by_key(|c| c.last_active.load(Ordering::Relaxed))
                .map(|c| c.id)?;
            if let Some(victim) = open.remove(&victim) {
                victim.evict.notify_one();
            }
            taken = Taken::Evicted;
        }
        let id = self.tick();
        let connection = Arc::new(Connection {
            id,
            busy: AtomicBool::new(false),
            last_active: AtomicU64::new(id),
            evict: Notify::new(),
        });
        open.insert(id, Arc::clone(&connection));
        let slot = Slot {
            slots: Arc::clone(self),
            connection,
        };
        Some((slot, taken))
    }

    #[cfg(test)]
    fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Slot {
    /// Marks a request in progress on this connection until the guard is dropped: meanwhile its slot is
    /// not taken from it.
    pub fn request(&self) -> RequestGuard {
        self.connection.busy.store(true, Ordering::SeqCst);
        RequestGuard {
            slots: Arc::clone(&self.slots),
            connection: Arc::clone(&self.connection),
        }
    }

    /// Completes when the slot was given to a new connection.
    pub async fn evicted(&self) {
        self.connection.evict.notified().await;
    }

    /// Whether a request is in progress: an evicted connection then finishes it before closing.
    pub fn busy(&self) -> bool {
        self.connection.busy.load(Ordering::SeqCst)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.remove(&self.connection.id);
        drop(open);
        self.slots.freed.notify_one();
    }
}

#[derive(Debug)]
pub struct RequestGuard {
    slots: Arc<Slots>,
    connection: Arc<Connection>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let tick = self.slots.tick();
        self.connection.last_active.store(tick, Ordering::Relaxed);
        self.connection.busy.store(false, Ordering::SeqCst);
        self.slots.freed.notify_one();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_new_connection_takes_the_slot_idle_the_longest_never_a_busy_one() {
        let slots = Slots::new(3);
        let (a, _) = slots.acquire().await;
        let (b, _) = slots.acquire().await;
        let (c, _) = slots.acquire().await;
        // a is busy; b was active after c.
        let _busy = a.request();
        drop(b.request());
        let (d, taken) = slots.acquire().await;
        assert_eq!(taken, Taken::Evicted);
        assert_eq!(slots.open(), 3);
        // c was told to close: its eviction completes at once.
        c.evicted().await;
        let (_e, taken) = slots.acquire().await;
        assert_eq!(taken, Taken::Evicted);
        b.evicted().await;
        assert!(a.busy() && !d.busy());
        drop((a, b, c));
    }

    #[tokio::test]
    async fn with_every_connection_busy_the_next_waits_for_one_to_go_idle() {
        let slots = Slots::new(1);
        let (a, _) = slots.acquire().await;
        let busy = a.request();
        assert!(slots.try_acquire().is_none());
        let waiting = tokio::spawn({
            let slots = Arc::clone(&slots);
            async move { slots.acquire().await.1 }
        });
        drop(busy);
        assert_eq!(waiting.await.unwrap(), Taken::Evicted);
        a.evicted().await;
    }
}
