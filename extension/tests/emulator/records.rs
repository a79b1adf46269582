//! Telemetry API records as Lambda writes them (docs/formats.md section 8), for the emulator to send.

use serde_json::{json, Value};

/// RFC 3339 with milliseconds, as the Telemetry API writes it.
pub fn rfc3339(epoch_ms: u64) -> String {
    let secs = epoch_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant), valid for dates after 1970.
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        epoch_ms % 1000
    )
}

/// The telemetry of one invocation, split as Lambda sends it: what arrives while it runs, and the report
/// that follows once every extension has called `next`.
pub fn platform_start(request_id: &str, at_ms: u64, tracing: Option<&str>) -> Value {
    let mut record = json!({"requestId": request_id, "version": "$LATEST"});
    if let Some(value) = tracing {
        record["tracing"] = json!({"spanId": "0000000000000001", "type": "X-Amzn-Trace-Id", "value": value});
    }
    json!({"time": rfc3339(at_ms), "type": "platform.start", "record": record})
}

pub fn runtime_done(
    request_id: &str,
    start_ms: u64,
    duration_ms: u64,
    status: &str,
    error_type: Option<&str>,
) -> Value {
    let mut record = json!({
        "requestId": request_id,
        "status": status,
        "metrics": {"durationMs": duration_ms as f64, "producedBytes": 42},
        "spans": [
            {"name": "responseLatency", "start": rfc3339(start_ms), "durationMs": (duration_ms as f64) - 1.0},
            {"name": "responseDuration", "start": rfc3339(start_ms + duration_ms - 1), "durationMs": 1.0}
        ]
    });
    if let Some(e) = error_type {
        record["errorType"] = json!(e);
    }
    json!({"time": rfc3339(start_ms + duration_ms), "type": "platform.runtimeDone", "record": record})
}

pub fn report(
    request_id: &str,
    start_ms: u64,
    duration_ms: u64,
    status: &str,
    init_ms: Option<f64>,
) -> Value {
    let mut metrics = json!({
        "durationMs": duration_ms as f64 + 0.5,
        "billedDurationMs": duration_ms + 1,
        "memorySizeMB": 128,
        "maxMemoryUsedMB": 31
    });
    if let Some(init) = init_ms {
        metrics["initDurationMs"] = json!(init);
    }
    json!({
        "time": rfc3339(start_ms + duration_ms + 1),
        "type": "platform.report",
        "record": {"requestId": request_id, "status": status, "metrics": metrics,
                   "spans": [{"name": "extensionOverhead", "start": rfc3339(start_ms + duration_ms), "durationMs": 0.4}]}
    })
}
