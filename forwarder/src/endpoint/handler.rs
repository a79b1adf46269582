//! The handler both faces share: headers and body in, the spec's status and body out. The access key is
//! checked before anything is read, decompressed or parsed; the body is inflated (within the cap) and parsed
//! on the delivery stage's blocking thread; each record is one unit of the ledger, and 200 is answered only
//! once every destination accepted every line.
//!
//! A request is one input with one budget: the body's inflation and every record's draw on the same total
//! (`TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES`), and the deadline is checked between records and between
//! chunks of inflation, so a request of bombs stops after a bounded amount of work.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;

use super::counts::Counters;
use super::dedup::{Seen, Settled};
use super::errors::EndpointError;
use super::models::{
    now_ms, parse_common_attributes, Reply, RequestBody, RequestHeaders, MAX_REQUEST_ID_BYTES,
    SUPPORTED_PROTOCOL,
};
use super::Endpoint;
use crate::deliver::{DeliveryError, DeliverySink, Ledger};
use crate::input::decode::{gunzip_within, DecodeError};
use crate::input::{Budget, Clock, Shape, Stop, Unit, UnitData};
use crate::limits::Limits;
use crate::pipeline::{Pipeline, UnitOutcome, UnitWork};
use crate::summary::Summary;

/// What the pipeline's thread made of one request body.
#[derive(Debug, Default)]
struct Produced {
    records: usize,
    unreadable: usize,
    first_unreadable: Option<String>,
    summary: Summary,
    stopped: Option<DeliveryError>,
    /// Why the request stopped before its last record, and the first record not (fully) read.
    cut: Option<(Stop, usize)>,
}

/// Everything the pipeline's thread needs of the request, owned.
#[derive(Debug)]
struct Job {
    body: Bytes,
    gzip: bool,
    max_body_bytes: usize,
    request_id: String,
    firehose_arn: Option<Arc<str>>,
    region: Option<Arc<str>>,
    common_attributes: Arc<[(String, String)]>,
    clock: Clock,
}

impl Endpoint {
    /// What can be checked from the headers alone, before the body is read: the access key first, so
    /// that nothing else is looked at for a caller without it.
    pub fn admit(&self, headers: &RequestHeaders) -> Result<(), EndpointError> {
        self.keys.check(headers.access_key.as_deref())?;
        match headers.protocol_version.as_deref().map(str::trim) {
            Some(SUPPORTED_PROTOCOL) => {}
            Some(other) => return Err(EndpointError::Protocol(other.to_owned())),
            None => return Err(EndpointError::MissingProtocol),
        }
        match headers.request_id.as_deref() {
            None | Some("") => return Err(EndpointError::MissingRequestId),
            Some(id) if id.len() > MAX_REQUEST_ID_BYTES => {
                return Err(EndpointError::RequestIdTooLong(MAX_REQUEST_ID_BYTES))
            }
            Some(_) => {}
        }
        gzip(headers)?;
        Ok(())
    }

    /// Answers one request whose body has been read (within [`max_body_bytes`](Self::max_body_bytes)),
    /// delivering its lines by `deadline` at the latest.
    pub async fn handle(&self, headers: RequestHeaders, body: Bytes, deadline: Instant) -> Reply {
        self.handle_counted(headers, body, deadline).await.0
    }

    /// [`handle`](Self::handle), with the summary and ledger of what the request delivered (nothing for a
    /// request refused before delivery), for a face that prints them.
    pub async fn handle_counted(
        &self,
        headers: RequestHeaders,
        body: Bytes,
        deadline: Instant,
    ) -> (Reply, Summary, Ledger) {
        let echoed = echoed_id(&headers);
        let started = Instant::now();
        let handling = self.counters.handling();
        let mut counts = (Summary::default(), Ledger::default());
        let result = self.deliver(headers, body, deadline, &mut counts).await;
        let reply = match &result {
            Ok(()) => {
                handling.delivered();
                Reply::new(200, &echoed, None)
            }
            Err(err) => Reply::new(err.status(), &echoed, Some(&err.to_string())),
        };
        if self.config.log_requests || !reply.ok() {
            let outcome = result
                .err()
                .map_or_else(|| "delivered".to_owned(), |e| e.to_string());
            eprintln!(
                "tracehose: endpoint: request {echoed:?}: {} in {} ms: {outcome}",
                reply.status,
                started.elapsed().as_millis()
            );
        }
        (reply, counts.0, counts.1)
    }

    /// An answer for a request refused before its body was read (or with a body that could not be read).
    /// Counted always, logged at a bounded rate ([`RefusalLog`](super::counts::RefusalLog)): refusals
    /// are what a caller without a key can cause.
    pub fn refuse(&self, headers: &RequestHeaders, err: &EndpointError) -> Reply {
        let echoed = echoed_id(headers);
        let status = err.status();
        let lines = self.refusals.refusal(status, Instant::now(), || {
            format!(
                "tracehose: endpoint: request {echoed:?}: {status}: {err} (more refusals answered {status} \
                 within a minute are counted, not logged one by one)"
            )
        });
        self.counters.refused(!lines.is_empty());
        for line in lines {
            eprintln!("{line}");
        }
        Reply::new(status, &echoed, Some(&err.to_string()))
    }

    async fn deliver(
        &self,
        headers: RequestHeaders,
        body: Bytes,
        deadline: Instant,
        counts: &mut (Summary, Ledger),
    ) -> Result<(), EndpointError> {
        self.admit(&headers)?;
        let gzip = gzip(&headers)?;
        let max_body_bytes = self.config.max_body_bytes;
        if body.len() > max_body_bytes {
            return Err(EndpointError::TooLarge {
                limit: max_body_bytes,
            });
        }
        let common_attributes: Arc<[(String, String)]> = match &headers.common_attributes {
            Some(header) => parse_common_attributes(header)
                .map_err(EndpointError::CommonAttributes)?
                .into(),
            None => Arc::default(),
        };
        let request_id = headers.request_id.unwrap_or_default();
        let attempt = match self.dedup.begin(&request_id) {
            Seen::New(attempt) => attempt,
            Seen::InProgress => return Err(EndpointError::InProgress),
            Seen::Settled(Settled::Delivered) => return Ok(()),
            Seen::Settled(Settled::Refused { status, message }) => {
                return Err(EndpointError::Repeated { status, message })
            }
        };
        let firehose_arn = headers.source_arn.map(Arc::<str>::from);
        let region = firehose_arn
            .as_deref()
            .and_then(region_of_arn)
            .map(Arc::<str>::from);
        let job = Job {
            body,
            gzip,
            max_body_bytes,
            request_id,
            firehose_arn,
            region,
            common_attributes,
            clock: Clock::new(Some(deadline)).with_cancel(Arc::clone(&self.cancel)),
        };
        let pipeline = Arc::clone(&self.pipeline);
        let counters = Arc::clone(&self.counters);
        let limits = self.limits;
        let report = |message: String| eprintln!("tracehose: error: {message}");
        let (produced, ledger) = self
            .delivery
            .destinations
            .deliver(&self.delivery.client, deadline, report, move |sink| {
                let mut budget = Budget::for_input(&limits, job.clock.clone());
                produce(job, &pipeline, &limits, &mut budget, &counters, sink)
            })
            .await
            .map_err(|err| EndpointError::Internal(err.to_string()))?;
        // Nothing was shipped for a request that could not be parsed: a retry may come to parse.
        let mut produced = produced?;
        produced.summary.apply_ledger(&ledger);
        *counts = (produced.summary, ledger.clone());
        let outcome = if let Some(stopped) = produced.stopped {
            Err(EndpointError::Stopped(stopped.to_string()))
        } else if let Some((stop, first)) = produced.cut {
            Err(stopped_at(stop, first, produced.records))
        } else if ledger.retryable_lines() > 0 {
            Err(EndpointError::Undelivered {
                lines: ledger.retryable_lines(),
            })
        } else if !ledger.rejected.is_empty() {
            Err(EndpointError::Rejected {
                lines: ledger.rejected.len(),
            })
        } else if produced.unreadable > 0 {
            Err(EndpointError::Unreadable {
                count: produced.unreadable,
                records: produced.records,
                first: produced.first_unreadable.unwrap_or_default(),
            })
        } else if (0..produced.records).all(|unit| ledger.unit_complete(unit)) {
            Ok(())
        } else {
            Err(EndpointError::Undelivered {
                lines: ledger.failed_lines(),
            })
        };
        match &outcome {
            Ok(()) => attempt.finish(Settled::Delivered),
            Err(err) if err.is_settled() => attempt.finish(Settled::Refused {
                status: err.status(),
                message: err.to_string(),
            }),
            // Forgotten with the attempt: the retry ships again.
            Err(_) => {}
        }
        outcome
    }
}

/// The answer for a request that stopped at record `first` of `records`.
fn stopped_at(stop: Stop, first: usize, records: usize) -> EndpointError {
    let not_read = records.saturating_sub(first);
    match stop {
        Stop::Spent { limit } => EndpointError::OverBudget {
            limit,
            first,
            not_read,
            records,
        },
        Stop::Deadline => EndpointError::Deadline {
            read: format!("{not_read} of {records} records not read"),
        },
        Stop::Cancelled => EndpointError::ShuttingDown,
    }
}

/// The answer for a request whose gzip body stopped inflating.
fn body_stopped(stop: Stop) -> EndpointError {
    match stop {
        Stop::Spent { limit } => EndpointError::InflatesOverBudget { limit },
        Stop::Deadline => EndpointError::Deadline {
            read: "its body was still being inflated".into(),
        },
        Stop::Cancelled => EndpointError::ShuttingDown,
    }
}

/// Runs on the delivery stage's blocking thread: inflate, parse, then each record decoded on its own and
/// run through the shared pipeline, all within `budget`.
fn produce(
    job: Job,
    pipeline: &Mutex<Pipeline>,
    limits: &Limits,
    budget: &mut Budget,
    counters: &Counters,
    sink: &mut DeliverySink,
) -> Result<Produced, EndpointError> {
    let inflated;
    let text: &[u8] = if job.gzip {
        let body = gunzip_within(&job.body, job.max_body_bytes, budget);
        counters.inflated(budget.inflated());
        inflated = body.map_err(|err| match err {
            DecodeError::TooLarge { .. } => EndpointError::InflatesTooLarge {
                limit: job.max_body_bytes,
            },
            DecodeError::Stopped(stop) => body_stopped(stop),
            other => EndpointError::Gzip(other.to_string()),
        })?;
        &inflated
    } else {
        &job.body
    };
    let request: RequestBody<'_> =
        serde_json::from_slice(text).map_err(|err| EndpointError::Json(err.to_string()))?;
    if request.request_id != job.request_id {
        return Err(EndpointError::RequestIdMismatch {
            header: job.request_id,
            body: request.request_id.into_owned(),
        });
    }
    // Bare-text records (Firehose's own decompression on) have no timestamp but the request's.
    let arrival_ms = request
        .timestamp
        .as_i64()
        .or_else(|| i64::try_from(now_ms()).ok());
    let mut produced = Produced {
        records: request.records.len(),
        ..Produced::default()
    };
    let mut never_begun = 0;
    for (i, record) in request.records.into_iter().enumerate() {
        if let Err(stop) = budget.check() {
            produced.cut = Some((stop, i));
            never_begun = produced.records - i;
            break;
        }
        sink.begin_unit();
        let unit = Unit {
            location: format!("records[{i}]"),
            shape: Shape::FirehoseHttpEndpoint,
            record_id: None,
            data: UnitData::Encoded(record.data),
            firehose_arn: job.firehose_arn.clone(),
            region: job.region.clone(),
            arrival_ms,
        };
        let mut first = None;
        let mut report = |message: String| {
            eprintln!("tracehose: error: request {}: {message}", job.request_id);
            first.get_or_insert(message);
        };
        let common = Arc::clone(&job.common_attributes);
        // Inflated without the pipeline; the pipeline is held per payload, while its lines are written.
        let before = budget.inflated();
        let work = UnitWork::decode(unit, common, limits, budget);
        counters.inflated(budget.inflated() - before);
        let outcome = work.run(pipeline, sink, &mut produced.summary, &mut report);
        match outcome {
            Ok(UnitOutcome::Complete) => {}
            Ok(UnitOutcome::Incomplete) => {
                // Cut by the budget or the clock rather than unreadable: the request stops here.
                if let Err(stop) = budget.check() {
                    produced.cut = Some((stop, i));
                    never_begun = produced.records - i - 1;
                    break;
                }
                produced.unreadable += 1;
                if produced.first_unreadable.is_none() {
                    produced.first_unreadable = first;
                }
            }
            Err(err) => {
                produced.stopped = Some(err);
                break;
            }
        }
    }
    // Records never begun are failed records; the one cut short was counted by the pipeline. Counted here,
    // on the pipeline's thread, so that a process that stops without waiting for the answer counts them.
    produced.summary.failed_records += never_begun as u64;
    if let Some((_, first)) = produced.cut {
        counters.not_read(produced.records - first);
    }
    Ok(produced)
}

/// `Content-Encoding`: gzip, or none.
fn gzip(headers: &RequestHeaders) -> Result<bool, EndpointError> {
    match headers.content_encoding.as_deref().map(str::trim) {
        None | Some("") => Ok(false),
        Some(e) if e.eq_ignore_ascii_case("identity") => Ok(false),
        Some(e) if e.eq_ignore_ascii_case("gzip") => Ok(true),
        Some(other) => Err(EndpointError::Encoding(other.chars().take(64).collect())),
    }
}

/// The request id to echo: the header's, unless it is too long to be one.
fn echoed_id(headers: &RequestHeaders) -> String {
    match headers.request_id.as_deref() {
        Some(id) if id.len() <= MAX_REQUEST_ID_BYTES => id.to_owned(),
        _ => String::new(),
    }
}

/// `arn:aws:firehose:eu-west-1:123456789012:deliverystream/x` -> `eu-west-1`.
fn region_of_arn(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}
