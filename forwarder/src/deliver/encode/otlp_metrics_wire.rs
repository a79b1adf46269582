//! The OTLP metrics of one invocation (see `otlp_metrics.rs`) written straight to protobuf, the bytes prost
//! writes for the generated types (fields in tag order, proto3 defaults left out): what every metric always
//! holds (its name and unit, a histogram's bounds, the scope) is encoded once, when the encoder is made, so
//! that an invocation only writes its timestamps, values and bucket counts, and no message tree is built.

use prost::encoding::{encode_varint, WireType};

use super::figures::{estimated_cost_usd, mib_to_bytes, nanos_of_ms, sane, seconds};
use super::otlp_invocation::{push_entry_with, scope};
use super::proto::{framed, string_field};
use crate::telemetry::{Invocation, Outcome};

/// Bucket bounds of the duration histograms, in seconds: the conventions' advice for request durations,
/// extended to Lambda's 15-minute limit.
pub(super) const SECONDS_BOUNDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0, 300.0, 900.0,
];

/// Bucket bounds of `faas.mem_usage`, in bytes: Lambda's memory sizes, 128 MiB to its 10 GiB limit.
pub(super) const BYTES_BOUNDS: &[f64] = &[
    134_217_728.0,
    268_435_456.0,
    536_870_912.0,
    1_073_741_824.0,
    2_147_483_648.0,
    4_294_967_296.0,
    8_589_934_592.0,
    10_737_418_240.0,
];

/// `AggregationTemporality::Delta`: every point is one invocation, counted once.
const DELTA: u8 = 1;

/// The most metrics one invocation has: five counts, four histograms and the cost.
const MAX_METRICS: usize = 10;

/// One metric's constant part: its `Metric.name` and `Metric.unit` fields, encoded.
#[derive(Debug)]
struct Head(Vec<u8>);

impl Head {
    fn new(name: &str, unit: &str) -> Self {
        let mut bytes = Vec::with_capacity(framed(name.len()) + framed(unit.len()));
        // Metric.name = 1, Metric.unit = 3 (description = 2 is empty, so left out)
        string_field(&mut bytes, 1, name);
        string_field(&mut bytes, 3, unit);
        Self(bytes)
    }
}

/// A histogram's constant part: its head, its bucket count, and its `explicit_bounds` field, packed.
#[derive(Debug)]
struct HistogramHead {
    head: Head,
    bounds: &'static [f64],
    bounds_field: Vec<u8>,
}

impl HistogramHead {
    fn new(name: &str, unit: &str, bounds: &'static [f64]) -> Self {
        let mut bounds_field = Vec::with_capacity(framed(bounds.len() * 8));
        // HistogramDataPoint.explicit_bounds = 7, packed doubles
        frame(&mut bounds_field, 7, bounds.len() * 8);
        for bound in bounds {
            bounds_field.extend_from_slice(&bound.to_le_bytes());
        }
        Self {
            head: Head::new(name, unit),
            bounds,
            bounds_field,
        }
    }

    /// Bytes of the packed `bucket_counts` field's payload: one fixed64 per bucket, one more than the bounds.
    fn buckets_len(&self) -> usize {
        (self.bounds.len() + 1) * 8
    }
}

/// Every metric of an invocation, encoded as far as it does not depend on the invocation.
#[derive(Debug)]
pub(super) struct MetricsWire {
    /// `ScopeMetrics.scope` (field 1), key and length included.
    scope_field: Vec<u8>,
    invocations: Head,
    errors: Head,
    timeouts: Head,
    coldstarts: Head,
    out_of_memory: Head,
    invoke_duration: HistogramHead,
    init_duration: HistogramHead,
    mem_usage: HistogramHead,
    billed_duration: HistogramHead,
    estimated_cost: Head,
}

impl Default for MetricsWire {
    fn default() -> Self {
        let mut scope_field = Vec::new();
        prost::encoding::message::encode(1, &scope(), &mut scope_field);
        Self {
            scope_field,
            invocations: Head::new("faas.invocations", "{invocation}"),
            errors: Head::new("faas.errors", "{error}"),
            timeouts: Head::new("faas.timeouts", "{timeout}"),
            coldstarts: Head::new("faas.coldstarts", "{coldstart}"),
            out_of_memory: Head::new("aws.lambda.out_of_memory", "{invocation}"),
            invoke_duration: HistogramHead::new("faas.invoke_duration", "s", SECONDS_BOUNDS),
            init_duration: HistogramHead::new("faas.init_duration", "s", SECONDS_BOUNDS),
            mem_usage: HistogramHead::new("faas.mem_usage", "By", BYTES_BOUNDS),
            billed_duration: HistogramHead::new("aws.lambda.billed_duration", "s", SECONDS_BOUNDS),
            estimated_cost: Head::new("aws.lambda.estimated_cost", "USD"),
        }
    }
}

/// One metric of one invocation: which, and its single point.
#[derive(Debug, Clone, Copy)]
enum Point<'a> {
    /// A delta monotonic sum of an int: 0 or 1.
    Count(&'a Head, bool),
    /// A delta monotonic sum of a double.
    Amount(&'a Head, f64),
    /// A histogram of one observation, finite and not negative.
    Observation(&'a HistogramHead, f64),
}

/// A field's key. Every field written here has a tag under 16, so its key is one byte.
const fn key(tag: u8, wire_type: WireType) -> u8 {
    tag << 3 | wire_type as u8
}

/// `aggregation_temporality` (2) DELTA, then `is_monotonic` (3) true: how a `Sum` ends.
const SUM_TAIL: [u8; 4] = [key(2, WireType::Varint), DELTA, key(3, WireType::Varint), 1];

/// `aggregation_temporality` (2) DELTA: how a `Histogram` ends.
const HISTOGRAM_TAIL: [u8; 2] = [key(2, WireType::Varint), DELTA];

/// Bytes of a fixed64 field, left out when zero.
fn fixed64_len(value: u64) -> usize {
    if value == 0 {
        0
    } else {
        9
    }
}

fn fixed64(out: &mut Vec<u8>, tag: u8, value: u64) {
    if value != 0 {
        always64(out, tag, value.to_le_bytes());
    }
}

/// A 64-bit field written even when zero: a oneof member or an `optional` field.
fn always64(out: &mut Vec<u8>, tag: u8, bytes: [u8; 8]) {
    let mut field = [key(tag, WireType::SixtyFourBit); 9];
    field[1..].copy_from_slice(&bytes);
    out.extend_from_slice(&field);
}

/// The key and length of a length-delimited field; the lengths here are mostly under 128, one byte.
fn frame(out: &mut Vec<u8>, tag: u8, len: usize) {
    match u8::try_from(len) {
        Ok(short) if short < 0x80 => out.extend_from_slice(&[key(tag, WireType::LengthDelimited), short]),
        _ => {
            out.push(key(tag, WireType::LengthDelimited));
            encode_varint(len as u64, out);
        }
    }
}

impl Point<'_> {
    /// Bytes of the point's data message (`NumberDataPoint`, `HistogramDataPoint`) between `start` and `time`.
    fn data_point_len(&self, (start, time): (u64, u64)) -> usize {
        let times = fixed64_len(start) + fixed64_len(time);
        match self {
            // The value oneof: as_int (6, sfixed64) or as_double (4).
            Self::Count(..) | Self::Amount(..) => times + 9,
            Self::Observation(histogram, _) => {
                // count (4), sum (5), min (11) and max (12), then the two packed fields.
                times + 4 * 9 + framed(histogram.buckets_len()) + histogram.bounds_field.len()
            }
        }
    }

    /// Bytes of the `Sum` or `Histogram` message around a data point of `point_len` bytes.
    fn data_len(&self, point_len: usize) -> usize {
        match self {
            Self::Count(..) | Self::Amount(..) => framed(point_len) + SUM_TAIL.len(),
            Self::Observation(..) => framed(point_len) + HISTOGRAM_TAIL.len(),
        }
    }

    fn head(&self) -> &Head {
        match self {
            Self::Count(head, _) | Self::Amount(head, _) => head,
            Self::Observation(histogram, _) => &histogram.head,
        }
    }

    /// Bytes of the `Metric` message.
    fn len(&self, at: (u64, u64)) -> usize {
        self.head().0.len() + framed(self.data_len(self.data_point_len(at)))
    }

    /// Writes the `Metric` message, [`Self::len`] bytes.
    fn write(&self, at: (u64, u64), out: &mut Vec<u8>) {
        let (start, time) = at;
        let point_len = self.data_point_len(at);
        out.extend_from_slice(&self.head().0);
        let data_len = self.data_len(point_len);
        match *self {
            // NumberDataPoint.as_int = 6 (sfixed64) or as_double = 4.
            Self::Count(_, value) => sum(out, (data_len, point_len), at, 6, i64::from(value).to_le_bytes()),
            Self::Amount(_, value) => sum(out, (data_len, point_len), at, 4, value.to_le_bytes()),
            Self::Observation(histogram, value) => {
                // Metric.histogram = 9; Histogram.data_points = 1
                frame(out, 9, data_len);
                frame(out, 1, point_len);
                fixed64(out, 2, start);
                fixed64(out, 3, time);
                // count (4) 1, sum (5)
                always64(out, 4, 1u64.to_le_bytes());
                always64(out, 5, value.to_le_bytes());
                // bucket_counts (6): zeros, but for a little-endian 1 in the observation's bucket (always one
                // of them). Bucket i holds (bounds[i-1], bounds[i]]; the last one everything above.
                let bucket = histogram.bounds.partition_point(|&b| b < value);
                frame(out, 6, histogram.buckets_len());
                let counts = out.len();
                out.resize(counts + histogram.buckets_len(), 0);
                if let Some(one) = out.get_mut(counts + bucket * 8) {
                    *one = 1;
                }
                out.extend_from_slice(&histogram.bounds_field);
                // min (11), max (12)
                always64(out, 11, value.to_le_bytes());
                always64(out, 12, value.to_le_bytes());
                out.extend_from_slice(&HISTOGRAM_TAIL);
            }
        }
    }
}

/// A `Metric.sum` of one point whose value is field `value_tag`, its `Sum` and point `data_len` and
/// `point_len` bytes.
fn sum(
    out: &mut Vec<u8>,
    (data_len, point_len): (usize, usize),
    (start, time): (u64, u64),
    value_tag: u8,
    value: [u8; 8],
) {
    // Metric.sum = 7; Sum.data_points = 1
    frame(out, 7, data_len);
    frame(out, 1, point_len);
    fixed64(out, 2, start);
    fixed64(out, 3, time);
    always64(out, value_tag, value);
    out.extend_from_slice(&SUM_TAIL);
}

/// When the points of one invocation start and end, OTLP nanoseconds: its start, never after the REPORT.
pub(super) fn interval(invocation: &Invocation) -> (u64, u64) {
    let time = nanos_of_ms(invocation.report_ms as f64);
    let start = nanos_of_ms(invocation.start_ms);
    (start.min(time), time)
}

impl MetricsWire {
    /// The invocation's metrics, in the order they are sent. A figure the REPORT did not give, or that is
    /// not a finite non-negative number, is left out; a Lambda Managed Instance has neither a billed duration
    /// nor a cost.
    fn points<'a>(&'a self, invocation: &Invocation) -> ([Point<'a>; MAX_METRICS], usize) {
        let mut points = [Point::Count(&self.invocations, false); MAX_METRICS];
        let mut n = 0;
        let mut push = |point| {
            if let Some(slot) = points.get_mut(n) {
                *slot = point;
                n += 1;
            }
        };
        push(Point::Count(&self.invocations, true));
        push(Point::Count(&self.errors, invocation.outcome != Outcome::Success));
        push(Point::Count(&self.timeouts, invocation.timed_out));
        push(Point::Count(&self.coldstarts, invocation.cold_start));
        push(Point::Count(&self.out_of_memory, invocation.out_of_memory));
        if let Some(duration) = seconds(invocation.duration_ms) {
            push(Point::Observation(&self.invoke_duration, duration));
        }
        if let Some(init) = invocation.init_duration_ms.and_then(seconds) {
            push(Point::Observation(&self.init_duration, init));
        }
        let used = invocation.max_memory_used_mb.and_then(mib_to_bytes);
        if let Some(used) = used.and_then(|b| sane(b as f64)) {
            push(Point::Observation(&self.mem_usage, used));
        }
        if !invocation.managed_instances {
            if let Some(billed) = invocation.billed_duration_ms.and_then(seconds) {
                push(Point::Observation(&self.billed_duration, billed));
            }
        }
        if let Some(cost) = estimated_cost_usd(invocation) {
            push(Point::Amount(&self.estimated_cost, cost));
        }
        (points, n)
    }

    /// Appends the invocation's entry: a `ResourceMetrics` of the encoded `resource` and one `ScopeMetrics`.
    pub(super) fn push_entry(&self, resource: &[u8], invocation: &Invocation, out: &mut Vec<u8>) {
        let at = interval(invocation);
        let (points, n) = self.points(invocation);
        let points = points.get(..n).unwrap_or_default();
        let mut lens = [0usize; MAX_METRICS];
        for (len, point) in lens.iter_mut().zip(points) {
            *len = point.len(at);
        }
        // ScopeMetrics.metrics = 2, each framed.
        let scope_len = self.scope_field.len() + lens.iter().take(n).map(|&l| framed(l)).sum::<usize>();
        let scope_field = framed(scope_len);
        push_entry_with(resource, scope_field, out, |out| {
            // ResourceMetrics.scope_metrics = 2
            frame(out, 2, scope_len);
            out.extend_from_slice(&self.scope_field);
            for (point, &len) in points.iter().zip(&lens) {
                frame(out, 2, len);
                point.write(at, out);
            }
        });
    }
}
