//! The platform telemetry's contracts (docs/formats.md section 9): OTLP metrics and traces decoded with the
//! real protobuf types, Dynatrace's refusal of cumulative temporality, and Datadog's distribution points
//! (`{"series":[{"metric","points":[[unix_s,[values]]],"tags","type":"distribution"}]}`). Each request's items
//! also become flat JSON objects, so tests can assert on them as on the log entries.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, AggregationTemporality};
use prost::Message;
use serde_json::{json, Map, Value};

use super::contract::{problem, Checked};
use super::otlp_json::hex;

/// Problems kept per request; past this only a count.
const MAX_PROBLEMS: usize = 5;

struct Problems<'a> {
    out: &'a mut Checked,
    more: usize,
}

impl Problems<'_> {
    fn push(&mut self, status: u16, message: String) {
        if self.out.problems.len() < MAX_PROBLEMS {
            self.out.problems.push(problem(status, message));
        } else {
            self.more += 1;
        }
    }
}

impl Drop for Problems<'_> {
    fn drop(&mut self) {
        if self.more > 0 {
            let status = self.out.problems.first().map_or(400, |p| p.status);
            let message = format!("... and {} more problems", self.more);
            self.out.problems.push(problem(status, message));
        }
    }
}

fn attributes(list: &[opentelemetry_proto::tonic::common::v1::KeyValue]) -> Map<String, Value> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    list.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Any::StringValue(s)) => json!(s),
                Some(Any::BoolValue(b)) => json!(b),
                Some(Any::IntValue(i)) => json!(i),
                Some(Any::DoubleValue(d)) => json!(d),
                Some(Any::ArrayValue(a)) => json!(a.values.len()),
                Some(other) => json!(format!("{other:?}")),
                None => Value::Null,
            };
            (kv.key.clone(), value)
        })
        .collect()
}

/// `ExportMetricsServiceRequest`: every data point counted; a point's time, a sum's or histogram's
/// temporality, a histogram's buckets and every value checked. `dynatrace`: cumulative is refused (400), as
/// Dynatrace's OTLP metrics API takes delta only.
pub(crate) fn metrics(body: &[u8], dynatrace: bool, minimal: bool, out: &mut Checked) {
    let request = match ExportMetricsServiceRequest::decode(body) {
        Ok(request) => request,
        Err(e) => {
            return out
                .problems
                .push(problem(400, format!("not an ExportMetricsServiceRequest: {e}")))
        }
    };
    let mut entries = Vec::new();
    let mut count = 0;
    let mut problems = Problems { out, more: 0 };
    let delta = AggregationTemporality::Delta as i32;
    let cumulative = AggregationTemporality::Cumulative as i32;
    for resource_metrics in &request.resource_metrics {
        let resource = resource_metrics
            .resource
            .as_ref()
            .map_or_else(Map::new, |r| attributes(&r.attributes));
        for scope_metrics in &resource_metrics.scope_metrics {
            for m in &scope_metrics.metrics {
                if m.name.is_empty() {
                    problems.push(400, "a metric without a name".into());
                }
                let (kind, temporality, points): (&str, i32, Vec<(u64, u64, f64)>) = match &m.data {
                    Some(metric::Data::Sum(s)) => {
                        let points = s.data_points.iter().map(|p| {
                            let value = match p.value {
                                Some(number_data_point::Value::AsInt(n)) => n as f64,
                                Some(number_data_point::Value::AsDouble(x)) => x,
                                None => f64::NAN,
                            };
                            (p.start_time_unix_nano, p.time_unix_nano, value)
                        });
                        ("sum", s.aggregation_temporality, points.collect())
                    }
                    Some(metric::Data::Histogram(h)) => {
                        for p in &h.data_points {
                            let buckets = p.bucket_counts.len();
                            if buckets != 0 && buckets != p.explicit_bounds.len() + 1 {
                                problems.push(
                                    400,
                                    format!(
                                        "{}: {buckets} buckets for {} bounds",
                                        m.name,
                                        p.explicit_bounds.len()
                                    ),
                                );
                            }
                            if p.bucket_counts.iter().sum::<u64>() != p.count && buckets != 0 {
                                problems.push(400, format!("{}: buckets do not add up to the count", m.name));
                            }
                        }
                        let points = h.data_points.iter().map(|p| {
                            (
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                                p.sum.unwrap_or(f64::NAN),
                            )
                        });
                        ("histogram", h.aggregation_temporality, points.collect())
                    }
                    Some(metric::Data::Gauge(g)) => {
                        let points = g.data_points.iter().map(|p| {
                            let value = match p.value {
                                Some(number_data_point::Value::AsInt(n)) => n as f64,
                                Some(number_data_point::Value::AsDouble(x)) => x,
                                None => f64::NAN,
                            };
                            (p.start_time_unix_nano, p.time_unix_nano, value)
                        });
                        ("gauge", delta, points.collect())
                    }
                    other => {
                        problems.push(400, format!("{}: unexpected data {other:?}", m.name));
                        continue;
                    }
                };
                if temporality != delta && temporality != cumulative {
                    problems.push(400, format!("{}: no aggregation temporality", m.name));
                }
                if dynatrace && temporality == cumulative {
                    problems.push(
                        400,
                        format!("{}: cumulative temporality (Dynatrace takes delta only)", m.name),
                    );
                }
                for (start, time, value) in points {
                    count += 1;
                    if time == 0 || start > time {
                        problems.push(400, format!("{}: point time {time}, start {start}", m.name));
                    }
                    if !value.is_finite() {
                        problems.push(400, format!("{}: value {value}", m.name));
                    }
                    if !minimal {
                        entries.push(json!({
                            "metric": m.name, "unit": m.unit, "kind": kind,
                            "temporality": if temporality == delta { "delta" } else { "cumulative" },
                            "value": value, "start_time_unix_nano": start, "time_unix_nano": time,
                            "resource": resource,
                        }));
                    }
                }
            }
        }
    }
    drop(problems);
    out.count = count;
    if !minimal {
        out.entries = entries;
        out.metrics = Some(request);
    }
}

/// `ExportTraceServiceRequest`: every span counted; ids of the right sizes and not zero, a name, an end not
/// before the start.
pub(crate) fn traces(body: &[u8], minimal: bool, out: &mut Checked) {
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(request) => request,
        Err(e) => {
            return out
                .problems
                .push(problem(400, format!("not an ExportTraceServiceRequest: {e}")))
        }
    };
    let mut entries = Vec::new();
    let mut count = 0;
    let mut problems = Problems { out, more: 0 };
    for resource_spans in &request.resource_spans {
        let resource = resource_spans
            .resource
            .as_ref()
            .map_or_else(Map::new, |r| attributes(&r.attributes));
        for scope_spans in &resource_spans.scope_spans {
            for span in &scope_spans.spans {
                count += 1;
                let zero = |id: &[u8]| id.iter().all(|b| *b == 0);
                if span.trace_id.len() != 16 || zero(&span.trace_id) {
                    problems.push(400, format!("span {count}: trace_id {}", hex(&span.trace_id)));
                }
                if span.span_id.len() != 8 || zero(&span.span_id) {
                    problems.push(400, format!("span {count}: span_id {}", hex(&span.span_id)));
                }
                if !matches!(span.parent_span_id.len(), 0 | 8) {
                    problems.push(
                        400,
                        format!(
                            "span {count}: parent_span_id of {} bytes",
                            span.parent_span_id.len()
                        ),
                    );
                }
                if span.name.is_empty() || span.end_time_unix_nano < span.start_time_unix_nano {
                    problems.push(400, format!("span {count}: no name, or ends before it starts"));
                }
                if !minimal {
                    let status = span.status.as_ref();
                    entries.push(json!({
                        "name": span.name, "kind": span.kind,
                        "trace_id": hex(&span.trace_id), "span_id": hex(&span.span_id),
                        "parent_span_id": hex(&span.parent_span_id),
                        "start_time_unix_nano": span.start_time_unix_nano,
                        "end_time_unix_nano": span.end_time_unix_nano,
                        "status_code": status.map_or(0, |s| s.code),
                        "status_message": status.map_or("", |s| s.message.as_str()),
                        "attributes": attributes(&span.attributes),
                        "resource": resource,
                    }));
                }
            }
        }
    }
    drop(problems);
    out.count = count;
    if !minimal {
        out.entries = entries;
        out.traces = Some(request);
    }
}

/// Datadog's `POST /api/v1/distribution_points`: an object with a `series` array, each series a non-empty
/// `metric`, `points` of `[unix seconds, [finite values]]`, `tags` of strings, and `type` `distribution`.
pub(crate) fn distributions(body: &[u8], minimal: bool, out: &mut Checked) {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => return out.problems.push(problem(400, format!("body is not JSON: {e}"))),
    };
    let Some(series) = value.get("series").and_then(Value::as_array) else {
        return out.problems.push(problem(400, "no `series` array"));
    };
    let series = series.clone();
    let mut problems = Problems { out, more: 0 };
    for (i, s) in series.iter().enumerate() {
        if s["metric"].as_str().is_none_or(str::is_empty) {
            problems.push(400, format!("series {i}: no `metric`"));
        }
        if s["type"] != "distribution" {
            problems.push(400, format!("series {i}: type {} is not distribution", s["type"]));
        }
        if !s["tags"]
            .as_array()
            .is_some_and(|t| t.iter().all(Value::is_string))
        {
            problems.push(400, format!("series {i}: `tags` is not an array of strings"));
        }
        let points_ok = s["points"].as_array().is_some_and(|points| {
            !points.is_empty()
                && points.iter().all(|p| {
                    p[0].as_i64().is_some_and(|t| t > 0)
                        && p[1].as_array().is_some_and(|v| {
                            !v.is_empty() && v.iter().all(|x| x.as_f64().is_some_and(f64::is_finite))
                        })
                })
        });
        if !points_ok {
            problems.push(
                400,
                format!(
                    "series {i}: `points` are not [[unix seconds, [numbers]]]: {}",
                    s["points"]
                ),
            );
        }
    }
    drop(problems);
    out.count = series.len();
    if !minimal {
        out.entries = series;
    }
}
