//! Running the stage for one call: the pipeline on a blocking thread (or the caller's, when a lone face writes
//! only local outputs), the sender on the caller's task.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::batch::Batcher;
use super::sender::{self, LaneEncoder};
use super::{DeliverySink, Destinations, Ledger, LocalDestination, SendOptions};

/// Sealed batches waiting for the sender, per destination: with the requests in flight, what the stage
/// may hold.
const QUEUED_PER_DESTINATION: usize = 2;

impl Destinations {
    /// Runs `produce` (the pipeline, writing into the sink) on a blocking thread while the sender delivers
    /// what it produces; returns what `produce` returned and the ledger once every request has ended or
    /// `deadline` has passed. `report` hears each distinct delivery error once.
    pub async fn deliver<R: Send + 'static>(
        &self,
        client: &reqwest::Client,
        deadline: Instant,
        report: impl Fn(String),
        produce: impl FnOnce(&mut DeliverySink) -> R + Send + 'static,
    ) -> io::Result<(R, Ledger)> {
        let lanes = self.http.len().max(1);
        let (tx, rx) = mpsc::channel(lanes * QUEUED_PER_DESTINATION);
        let (mut batchers, mut telemetry) = (Vec::new(), Vec::new());
        for (lane, d) in self.http.iter().enumerate() {
            match &d.encoder {
                LaneEncoder::Lines(encoder) => {
                    batchers.push(Batcher::new(lane, Arc::clone(encoder), self.batch_max_bytes));
                }
                LaneEncoder::Invocations(encoder) => {
                    telemetry.push(Batcher::new(lane, Arc::clone(encoder), self.batch_max_bytes));
                }
            }
        }
        let mut sink = DeliverySink::new(Arc::clone(&self.filter), batchers, telemetry, self.local()?, tx);
        let producer = tokio::task::spawn_blocking(move || {
            let produced = produce(&mut sink);
            // A failure here means the sender is gone; its ledger says what became of the lines.
            let _ = sink.finish();
            produced
        });
        let sending = sender::run(
            rx,
            self.http.clone().into(),
            client.clone(),
            self.options(deadline),
            report,
        );
        let (ledger, produced) = tokio::join!(sending, producer);
        let produced =
            produced.map_err(|err| io::Error::other(format!("the pipeline thread failed: {err}")))?;
        Ok((produced, ledger))
    }

    /// [`deliver`](Self::deliver) for a face with nothing else to serve meanwhile (`process`): when every
    /// destination is local, `produce` runs on the caller's thread, where a thread of its own would only add
    /// its start to a short run.
    pub async fn deliver_alone<R: Send + 'static>(
        &self,
        client: &reqwest::Client,
        deadline: Instant,
        report: impl Fn(String),
        produce: impl FnOnce(&mut DeliverySink) -> R + Send + 'static,
    ) -> io::Result<(R, Ledger)> {
        if !self.http.is_empty() {
            return self.deliver(client, deadline, report, produce).await;
        }
        // With no batcher, finishing sends only the sink's report, which the channel has room for.
        let (tx, rx) = mpsc::channel(1);
        let mut sink = DeliverySink::new(
            Arc::clone(&self.filter),
            Vec::new(),
            Vec::new(),
            self.local()?,
            tx,
        );
        let produced = produce(&mut sink);
        let _ = sink.finish();
        let ledger = sender::run(rx, Arc::new([]), client.clone(), self.options(deadline), report).await;
        Ok((produced, ledger))
    }

    fn options(&self, deadline: Instant) -> SendOptions {
        SendOptions {
            max_in_flight: self.max_in_flight,
            retry: self.retry,
            deadline,
            split_depth: self.split_depth,
        }
    }

    fn local(&self) -> io::Result<Vec<LocalDestination>> {
        let mut local = Vec::new();
        if self.stdout {
            local.push(LocalDestination::new("stdout", Box::new(io::stdout())));
        }
        if let Some(path) = &self.file {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|err| {
                    io::Error::new(err.kind(), format!("TRACEHOSE_FILE {}: {err}", path.display()))
                })?;
            local.push(LocalDestination::new(
                "file",
                Box::new(file) as Box<dyn Write + Send>,
            ));
        }
        Ok(local)
    }
}
