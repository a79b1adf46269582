//! Progress: counters every worker adds to, a bar on stderr (objects, records, bytes, rate) drawn only when
//! stderr is a terminal, and the final summary line with the same counts.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Default)]
pub struct Stats {
    pub objects_listed: AtomicU64,
    /// Objects finished in this run (every line delivered, reported, or confirmed by an earlier run).
    pub objects_done: AtomicU64,
    /// Finished objects whose records were not all delivered (unreadable or refused): kept, never deleted.
    pub objects_incomplete: AtomicU64,
    /// Objects an earlier run had finished.
    pub objects_skipped: AtomicU64,
    pub objects_deleted: AtomicU64,
    /// Objects --delete-after left in place although every record was delivered: an earlier run confirmed
    /// some of them, or the object changed after it was read. Each is reported.
    pub objects_kept: AtomicU64,
    /// Records (backup lines, payloads) sent on, in this run.
    pub records: AtomicU64,
    /// Records that an earlier run had confirmed, read past without sending.
    pub records_resumed: AtomicU64,
    /// Records whose `dataId` was already sent in this run.
    pub duplicates: AtomicU64,
    /// Lines with nothing in them (empty or only whitespace): read past, counted, confirmed.
    pub blank_lines: AtomicU64,
    /// Checkpoint entries that did not fit the object (written for other content under the key, or past
    /// its end): each reported, and the object replayed from its start.
    pub checkpoint_mismatches: AtomicU64,
    /// Objects stopped, not done, because inflating them (the object and its records) spent their budget
    /// (`TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES`) or their deadline passed: each reported, never deleted.
    pub objects_over_budget: AtomicU64,
    /// Records that could not be read or decoded, or that a target refused for good: reported, counted.
    pub failed_records: AtomicU64,
    /// Object bytes read from S3 (as stored, before inflating).
    pub bytes: AtomicU64,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
}

impl Progress {
    pub fn new() -> Self {
        // `stderr()` draws nothing when stderr is not a terminal: logs and CI output stay clean.
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed_precise} {wide_msg}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(250));
        Self {
            bar,
            started: Instant::now(),
        }
    }

    /// No bar at all (the Lambda face).
    pub fn hidden() -> Self {
        Self {
            bar: ProgressBar::hidden(),
            started: Instant::now(),
        }
    }

    pub fn update(&self, stats: &Stats) {
        if self.bar.is_hidden() {
            return;
        }
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let records = stats.records.load(Relaxed);
        let bytes = stats.bytes.load(Relaxed);
        self.bar.set_message(format!(
            "objects {}/{} | records {} ({:.0}/s) | {:.1} MB ({:.1} MB/s) | failed {}",
            stats.objects_done.load(Relaxed) + stats.objects_skipped.load(Relaxed),
            stats.objects_listed.load(Relaxed),
            records,
            records as f64 / secs,
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / secs,
            stats.failed_records.load(Relaxed),
        ));
    }

    /// Runs `f` (which prints to stderr) with the bar out of the way.
    pub fn suspend(&self, f: impl FnOnce()) {
        if self.bar.is_hidden() {
            f();
        } else {
            self.bar.suspend(f);
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |c: &AtomicU64| c.load(Relaxed);
        write!(
            f,
            "objects_listed={} objects_done={} objects_incomplete={} objects_skipped={} objects_deleted={} \
             objects_kept={} records={} records_resumed={} duplicates={} blank_lines={} failed_records={} \
             checkpoint_mismatches={} objects_over_budget={} bytes={}",
            n(&self.objects_listed),
            n(&self.objects_done),
            n(&self.objects_incomplete),
            n(&self.objects_skipped),
            n(&self.objects_deleted),
            n(&self.objects_kept),
            n(&self.records),
            n(&self.records_resumed),
            n(&self.duplicates),
            n(&self.blank_lines),
            n(&self.failed_records),
            n(&self.checkpoint_mismatches),
            n(&self.objects_over_budget),
            n(&self.bytes),
        )
    }
}
