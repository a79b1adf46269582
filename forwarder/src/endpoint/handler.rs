//! The handler both faces share: headers and body in, the spec's status and body out. The access key is
//! checked before anything is read, decompressed or parsed; the body is inflated (within the cap) and parsed
//! on the delivery stage's blocking thread; each record is one unit of the ledger, and 200 is answered only
//! once every destination accepted every line.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;

use super::dedup::{Seen, Settled};
use super::errors::EndpointError;
use super::models::{
    now_ms, parse_common_attributes, Reply, RequestBody, RequestHeaders, MAX_REQUEST_ID_BYTES,
    SUPPORTED_PROTOCOL,
};
use super::Endpoint;
use crate::deliver::{DeliveryError, DeliverySink, Ledger};
use crate::input::decode::{gunzip_capped, DecodeError};
use crate::input::{Shape, Unit, UnitData};
use crate::pipeline::{Pipeline, UnitOutcome};
use crate::summary::Summary;

/// What the pipeline's thread made of one request body.
#[derive(Debug, Default)]
struct Produced {
    records: usize,
    unreadable: usize,
    first_unreadable: Option<String>,
    summary: Summary,
    stopped: Option<DeliveryError>,
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
        let mut counts = (Summary::default(), Ledger::default());
        let result = self.deliver(headers, body, deadline, &mut counts).await;
        let reply = match &result {
            Ok(()) => Reply::new(200, &echoed, None),
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
    pub fn refuse(&self, headers: &RequestHeaders, err: &EndpointError) -> Reply {
        let echoed = echoed_id(headers);
        eprintln!("tracehose: endpoint: request {echoed:?}: {}: {err}", err.status());
        Reply::new(err.status(), &echoed, Some(&err.to_string()))
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
        };
        let pipeline = Arc::clone(&self.pipeline);
        let report = |message: String| eprintln!("tracehose: error: {message}");
        let (produced, ledger) = self
            .delivery
            .destinations
            .deliver(&self.delivery.client, deadline, report, move |sink| {
                produce(job, &pipeline, sink)
            })
            .await
            .map_err(|err| EndpointError::Internal(err.to_string()))?;
        // Nothing was shipped for a request that could not be parsed: a retry may come to parse.
        let mut produced = produced?;
        produced.summary.apply_ledger(&ledger);
        *counts = (produced.summary, ledger.clone());
        let outcome = if let Some(stopped) = produced.stopped {
            Err(EndpointError::Stopped(stopped.to_string()))
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

/// Runs on the delivery stage's blocking thread: inflate, parse, then each record through the pipeline.
fn produce(job: Job, pipeline: &Mutex<Pipeline>, sink: &mut DeliverySink) -> Result<Produced, EndpointError> {
    let inflated;
    let text: &[u8] = if job.gzip {
        inflated = gunzip_capped(&job.body, job.max_body_bytes).map_err(|err| match err {
            DecodeError::TooLarge { .. } => EndpointError::InflatesTooLarge {
                limit: job.max_body_bytes,
            },
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
    // One pipeline, so that lines of an invocation split across requests still join.
    let mut pipeline = pipeline.lock().unwrap_or_else(PoisonError::into_inner);
    for (i, record) in request.records.into_iter().enumerate() {
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
        let outcome = pipeline.process_unit_with(unit, common, sink, &mut produced.summary, &mut report);
        match outcome {
            Ok(UnitOutcome::Complete) => {}
            Ok(UnitOutcome::Incomplete) => {
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
