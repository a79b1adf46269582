//! Lambda platform lines of the text log format: INIT_START, START, END, REPORT (with its XRAY part),
//! INIT_REPORT, RESTORE_*, runtime errors and timeouts.

use std::sync::LazyLock;

use memchr::memmem::Finder;
use tracehose_tracecontext::{SpanId, TraceId};

use super::{is_request_id, ParsedLine, Severity, TraceContext};

/// Which platform event a line reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlatformEvent {
    InitStart,
    InitRuntimeDone,
    InitReport,
    Start,
    RuntimeDone,
    End,
    Report,
    RestoreStart,
    RestoreReport,
    Timeout,
    RuntimeError,
    Extension,
    Telemetry,
    LogsDropped,
    Other,
}

impl PlatformEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            PlatformEvent::InitStart => "init_start",
            PlatformEvent::InitRuntimeDone => "init_runtime_done",
            PlatformEvent::InitReport => "init_report",
            PlatformEvent::Start => "start",
            PlatformEvent::RuntimeDone => "runtime_done",
            PlatformEvent::End => "end",
            PlatformEvent::Report => "report",
            PlatformEvent::RestoreStart => "restore_start",
            PlatformEvent::RestoreReport => "restore_report",
            PlatformEvent::Timeout => "timeout",
            PlatformEvent::RuntimeError => "runtime_error",
            PlatformEvent::Extension => "extension",
            PlatformEvent::Telemetry => "telemetry",
            PlatformEvent::LogsDropped => "logs_dropped",
            PlatformEvent::Other => "other",
        }
    }

    /// The JSON log format's `type` (`platform.start`...) for the same event.
    pub(super) fn from_json_type(kind: &str) -> Self {
        match kind.strip_prefix("platform.").unwrap_or(kind) {
            "initStart" => PlatformEvent::InitStart,
            "initRuntimeDone" => PlatformEvent::InitRuntimeDone,
            "initReport" => PlatformEvent::InitReport,
            "start" => PlatformEvent::Start,
            "runtimeDone" => PlatformEvent::RuntimeDone,
            "report" => PlatformEvent::Report,
            "restoreStart" => PlatformEvent::RestoreStart,
            "restoreReport" | "restoreRuntimeDone" => PlatformEvent::RestoreReport,
            "extension" => PlatformEvent::Extension,
            "telemetrySubscription" => PlatformEvent::Telemetry,
            "logsDropped" => PlatformEvent::LogsDropped,
            _ => PlatformEvent::Other,
        }
    }
}

/// The numbers of a REPORT, INIT_REPORT or RESTORE_REPORT line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportMetrics {
    pub duration_ms: Option<f64>,
    pub billed_duration_ms: Option<f64>,
    pub memory_size_mb: Option<u64>,
    pub max_memory_used_mb: Option<u64>,
    pub init_duration_ms: Option<f64>,
    pub restore_duration_ms: Option<f64>,
    pub billed_restore_duration_ms: Option<f64>,
}

/// What a platform line says beyond its event and request id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlatformDetails {
    pub metrics: ReportMetrics,
    /// `success`, `error`, `timeout`, `failure`...; absent on a plain successful REPORT.
    pub status: Option<String>,
    pub error_type: Option<String>,
    /// `init` or `invoke`, on INIT_REPORT.
    pub phase: Option<String>,
    /// The function version of a START line.
    pub version: Option<String>,
    pub runtime_version: Option<String>,
    /// `Parent=` of the X-Ray header of a `platform.start` record: the span that called the invocation.
    pub xray_parent: Option<SpanId>,
}

impl PlatformDetails {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub(super) fn boxed(self) -> Option<Box<Self>> {
        (!self.is_empty()).then(|| Box::new(self))
    }

    pub(super) fn severity(&self) -> Severity {
        match self.status.as_deref() {
            Some("error" | "failure" | "timeout") => Severity::Error,
            _ if self.error_type.is_some() => Severity::Error,
            _ => Severity::Info,
        }
    }
}

pub(super) fn parse(text: &str) -> Option<ParsedLine> {
    // Platform lines start with one of these capitals and timeout lines with a timestamp: everything else
    // (most application lines) is turned away without a search.
    match text.as_bytes().first() {
        Some(b'S' | b'E' | b'R' | b'I' | b'T') => {}
        Some(c) if c.is_ascii_digit() => return parse_timeout(text),
        _ => return None,
    }
    // The longest event word is 14 bytes: a line whose first word is longer is not a platform line, and
    // looking no further keeps a long unbroken line from being scanned here.
    let head = &text.as_bytes()[..text.len().min(16)];
    let word_end = match head.iter().position(|&c| c == b' ' || c == b'\t') {
        Some(end) => end,
        None if text.len() <= head.len() => text.len(),
        None => return parse_timeout(text),
    };
    let (word, rest) = text.split_at(word_end);
    let event = match word {
        "START" => PlatformEvent::Start,
        "END" => PlatformEvent::End,
        "REPORT" => PlatformEvent::Report,
        "INIT_START" => PlatformEvent::InitStart,
        "INIT_REPORT" => PlatformEvent::InitReport,
        "RESTORE_START" => PlatformEvent::RestoreStart,
        "RESTORE_REPORT" => PlatformEvent::RestoreReport,
        "EXTENSION" => PlatformEvent::Extension,
        "TELEMETRY" => PlatformEvent::Telemetry,
        "RequestId:" => PlatformEvent::RuntimeError,
        _ => return parse_timeout(text),
    };
    let request_id = if event == PlatformEvent::RuntimeError {
        first_token(rest)
    } else {
        request_id_after_label(text, rest)
    };
    if matches!(
        event,
        PlatformEvent::Start | PlatformEvent::End | PlatformEvent::Report
    ) && request_id.is_none()
    {
        // "START something" from an application is not a platform line.
        return None;
    }
    let mut details = PlatformDetails::default();
    let mut xray_trace = None;
    let mut xray_segment = None;
    for_each_field(rest, |key, value| match key {
        Key::Version => details.version = Some(value.to_owned()),
        Key::RuntimeVersion => details.runtime_version = Some(value.to_owned()),
        Key::Duration => details.metrics.duration_ms = number(value),
        Key::BilledDuration => details.metrics.billed_duration_ms = number(value),
        Key::MemorySize => details.metrics.memory_size_mb = number(value).map(|n| n as u64),
        Key::MaxMemoryUsed => details.metrics.max_memory_used_mb = number(value).map(|n| n as u64),
        Key::InitDuration => details.metrics.init_duration_ms = number(value),
        Key::RestoreDuration => details.metrics.restore_duration_ms = number(value),
        Key::BilledRestoreDuration => details.metrics.billed_restore_duration_ms = number(value),
        Key::Status => details.status = Some(value.to_owned()),
        Key::ErrorType => details.error_type = Some(value.to_owned()),
        Key::Phase => details.phase = Some(value.to_owned()),
        Key::XrayTraceId => xray_trace = TraceId::from_xray(value),
        Key::SegmentId => xray_segment = SpanId::from_hex(value),
        Key::RequestId | Key::RuntimeVersionArn | Key::Sampled => {}
    });
    let severity = if event == PlatformEvent::RuntimeError {
        Severity::Error
    } else {
        details.severity()
    };
    Some(ParsedLine {
        severity,
        request_id: request_id.map(super::shared_request_id),
        platform: Some(event),
        details: details.boxed(),
        xray: xray_trace.map(|trace_id| TraceContext {
            trace_id,
            span_id: xray_segment,
        }),
        ..ParsedLine::default()
    })
}

/// Where `Task timed out after` may start: a timestamp, a request id and some spacing come before it.
const TIMEOUT_WITHIN: usize = 128;

/// `2026-11-21T10:00:03.014Z 8f507cfc-... Task timed out after 3.00 seconds`.
fn parse_timeout(text: &str) -> Option<ParsedLine> {
    static TIMED_OUT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("Task timed out after "));
    // The message follows a timestamp and a request id: it is near the start or this is not the line.
    let head = &text.as_bytes()[..text.len().min(TIMEOUT_WITHIN)];
    let at = TIMED_OUT.find(head)?;
    let request_id = text[..at]
        .split_whitespace()
        .last()
        .filter(|id| is_request_id(id));
    Some(ParsedLine {
        severity: Severity::Error,
        request_id: request_id.map(super::shared_request_id),
        platform: Some(PlatformEvent::Timeout),
        details: PlatformDetails {
            status: Some("timeout".into()),
            ..Default::default()
        }
        .boxed(),
        ..ParsedLine::default()
    })
}

/// The id after `RequestId: `, which START, END and REPORT print first.
fn request_id_after_label<'a>(text: &'a str, rest: &'a str) -> Option<&'a str> {
    static LABEL: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("RequestId: "));
    if let Some(after) = rest.trim_start().strip_prefix("RequestId: ") {
        return first_token(after);
    }
    let at = LABEL.find(text.as_bytes())? + "RequestId: ".len();
    first_token(&text[at..])
}

fn first_token(text: &str) -> Option<&str> {
    text.split_whitespace()
        .next()
        .filter(|id| super::plausible_request_id(id))
}

/// The keys of platform lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    BilledRestoreDuration,
    RuntimeVersionArn,
    RestoreDuration,
    BilledDuration,
    MaxMemoryUsed,
    RuntimeVersion,
    InitDuration,
    XrayTraceId,
    MemorySize,
    ErrorType,
    RequestId,
    SegmentId,
    Duration,
    Version,
    Sampled,
    Status,
    Phase,
}

/// The keys by their last byte, longest first so that `Billed Duration` is not taken for `Duration`. Keys
/// tracehose does not keep (`RequestId`, `Runtime Version ARN`, `Sampled`) are here to end the value before
/// them. Looking a colon's key up by the byte before it turns most colons away at once.
fn keys_ending_in(last: u8) -> &'static [(&'static str, Key)] {
    match last {
        b'n' => &[
            ("Billed Restore Duration", Key::BilledRestoreDuration),
            ("Restore Duration", Key::RestoreDuration),
            ("Billed Duration", Key::BilledDuration),
            ("Runtime Version", Key::RuntimeVersion),
            ("Init Duration", Key::InitDuration),
            ("Duration", Key::Duration),
            ("Version", Key::Version),
        ],
        b'N' => &[("Runtime Version ARN", Key::RuntimeVersionArn)],
        b'd' => &[
            ("Max Memory Used", Key::MaxMemoryUsed),
            ("XRAY TraceId", Key::XrayTraceId),
            ("RequestId", Key::RequestId),
            ("SegmentId", Key::SegmentId),
            ("Sampled", Key::Sampled),
        ],
        b'e' => &[
            ("Memory Size", Key::MemorySize),
            ("Error Type", Key::ErrorType),
            ("Phase", Key::Phase),
        ],
        b's' => &[("Status", Key::Status)],
        _ => &[],
    }
}

/// Calls `f` with each known `Key: value` field of `rest`. Lambda separates fields with tabs and puts the XRAY
/// part on a new line, but log pipelines that rewrite tabs deliver the same fields separated by spaces: so a
/// field starts at a known key before a colon, and its value runs to the next known key, tab or newline.
/// Each colon is looked at once, against keys of bounded length: linear in the line.
fn for_each_field<'a>(rest: &'a str, mut f: impl FnMut(Key, &'a str)) {
    let bytes = rest.as_bytes();
    let mut open: Option<(Key, usize)> = None;
    for colon in memchr::memchr_iter(b':', bytes) {
        let Some((label, key)) = key_before(bytes, colon) else {
            continue;
        };
        if let Some((key, value_start)) = open {
            f(key, value(rest, value_start, colon - label.len()));
        }
        open = Some((key, colon + 1));
    }
    if let Some((key, value_start)) = open {
        f(key, value(rest, value_start, rest.len()));
    }
}

/// The known key that ends just before `colon` and starts the line or follows whitespace.
fn key_before(bytes: &[u8], colon: usize) -> Option<(&'static str, Key)> {
    let last = *bytes.get(colon.checked_sub(1)?)?;
    keys_ending_in(last).iter().copied().find(|(label, _)| {
        let Some(start) = colon.checked_sub(label.len()) else {
            return false;
        };
        bytes[start..colon] == *label.as_bytes()
            && start
                .checked_sub(1)
                .is_none_or(|i| bytes[i].is_ascii_whitespace())
    })
}

/// A value between its key's colon and the next key, cut at a tab or newline (which end every field of the
/// tab-separated form, including ones tracehose does not know).
fn value(rest: &str, start: usize, end: usize) -> &str {
    let raw = rest.get(start..end).unwrap_or_default();
    let cut = memchr::memchr3(b'\t', b'\n', b'\r', raw.as_bytes()).unwrap_or(raw.len());
    raw.get(..cut).unwrap_or_default().trim()
}

/// `15.74 ms` -> 15.74.
fn number(value: &str) -> Option<f64> {
    value
        .split_whitespace()
        .next()?
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ID: &str = "8f507cfc-1a2b-4697-b07a-ac58fc914c95";

    #[test]
    fn start_end() {
        let start = parse(&format!("START RequestId: {ID} Version: $LATEST")).unwrap();
        assert_eq!(start.platform, Some(PlatformEvent::Start));
        assert_eq!(start.request_id.as_deref(), Some(ID));
        assert_eq!(start.details.unwrap().version.as_deref(), Some("$LATEST"));
        let end = parse(&format!("END RequestId: {ID}")).unwrap();
        assert_eq!(end.platform, Some(PlatformEvent::End));
        assert!(end.details.is_none());
        assert!(parse("START the engines").is_none());
    }

    #[test]
    fn cold_report_with_xray() {
        let line = format!(
            "REPORT RequestId: {ID}\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB\tInit Duration: 130.49 ms\t\nXRAY TraceId: 1-5e34a614-10bd4a8ff1fb44f07bc535a1\tSegmentId: 07f5a12b2d3e4f56\tSampled: true\t"
        );
        let p = parse(&line).unwrap();
        let d = p.details.unwrap();
        assert_eq!(d.metrics.duration_ms, Some(15.74));
        assert_eq!(d.metrics.billed_duration_ms, Some(16.0));
        assert_eq!(d.metrics.memory_size_mb, Some(128));
        assert_eq!(d.metrics.max_memory_used_mb, Some(56));
        assert_eq!(d.metrics.init_duration_ms, Some(130.49));
        assert_eq!(p.severity, Severity::Info);
        let x = p.xray.unwrap();
        assert_eq!(x.trace_id.to_string(), "5e34a61410bd4a8ff1fb44f07bc535a1");
        assert_eq!(x.span_id.unwrap().to_string(), "07f5a12b2d3e4f56");
        assert!(
            p.context.is_none(),
            "the XRAY part is the invocation's, not the line's own context"
        );
    }

    #[test]
    fn report_variants() {
        let p = parse(&format!("REPORT RequestId: {ID}\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\tStatus: timeout")).unwrap();
        assert_eq!(p.details.as_ref().unwrap().status.as_deref(), Some("timeout"));
        assert_eq!(p.severity, Severity::Error);
        let p = parse(&format!("REPORT RequestId: {ID}\tDuration: 5.00 ms\tBilled Duration: 5 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\tStatus: error\tError Type: Runtime.ExitError")).unwrap();
        assert_eq!(
            p.details.as_ref().unwrap().error_type.as_deref(),
            Some("Runtime.ExitError")
        );
        let p = parse(&format!("REPORT RequestId: {ID}\tDuration: 5.00 ms\tBilled Duration: 5 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\tRestore Duration: 220.51 ms\tBilled Restore Duration: 110 ms")).unwrap();
        assert_eq!(p.details.unwrap().metrics.billed_restore_duration_ms, Some(110.0));
    }

    #[test]
    fn init_lines_errors_and_timeouts() {
        let p = parse("INIT_START Runtime Version: python:3.12.v27\tRuntime Version ARN: arn:aws:lambda:eu-west-1::runtime:abc").unwrap();
        assert_eq!(p.platform, Some(PlatformEvent::InitStart));
        assert_eq!(
            p.details.unwrap().runtime_version.as_deref(),
            Some("python:3.12.v27")
        );
        let p = parse(
            "INIT_REPORT Init Duration: 87.28 ms\tPhase: invoke\tStatus: error\tError Type: Runtime.Unknown",
        )
        .unwrap();
        assert_eq!(p.severity, Severity::Error);
        assert_eq!(p.details.unwrap().phase.as_deref(), Some("invoke"));
        let p = parse(&format!(
            "RequestId: {ID} Error: Runtime exited with error: exit status 1"
        ))
        .unwrap();
        assert_eq!(
            (p.platform, p.severity),
            (Some(PlatformEvent::RuntimeError), Severity::Error)
        );
        assert_eq!(p.request_id.as_deref(), Some(ID));
        let p = parse(&format!(
            "2026-11-21T10:00:03.014Z {ID} Task timed out after 3.00 seconds"
        ))
        .unwrap();
        assert_eq!(
            (p.platform, p.request_id.as_deref()),
            (Some(PlatformEvent::Timeout), Some(ID))
        );
    }

    /// Log pipelines that rewrite tabs deliver platform lines with spaces between the fields.
    #[test]
    fn fields_separated_by_spaces() {
        let line = format!("REPORT RequestId: {ID} Duration: 0.62 ms  Billed Duration: 100 ms Memory Size: 128 MB Max Memory Used: 51 MB  Init Duration: 1234 ms");
        let p = parse(&line).unwrap();
        assert_eq!(p.request_id.as_deref(), Some(ID));
        let m = &p.details.as_ref().unwrap().metrics;
        assert_eq!(
            (
                m.duration_ms,
                m.billed_duration_ms,
                m.memory_size_mb,
                m.max_memory_used_mb,
                m.init_duration_ms
            ),
            (Some(0.62), Some(100.0), Some(128), Some(51), Some(1234.0))
        );
        let p = parse("INIT_START Runtime Version: python:3.12.v27 Runtime Version ARN: arn:aws:lambda:eu-west-1::runtime:abc").unwrap();
        assert_eq!(
            p.details.unwrap().runtime_version.as_deref(),
            Some("python:3.12.v27")
        );
    }

    /// Every tab-separated line gives the same answer with its tabs and newlines turned into one or two spaces.
    #[test]
    fn spaces_give_what_tabs_give() {
        let xray =
            "XRAY TraceId: 1-5e34a614-10bd4a8ff1fb44f07bc535a1\tSegmentId: 07f5a12b2d3e4f56\tSampled: true\t";
        for line in [
            format!("REPORT RequestId: {ID}\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB\tInit Duration: 130.49 ms\t\n{xray}"),
            format!("REPORT RequestId: {ID}\tDuration: 5.00 ms\tBilled Duration: 5 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\tRestore Duration: 220.51 ms\tBilled Restore Duration: 110 ms\t"),
            format!("REPORT RequestId: {ID}\tDuration: 5.00 ms\tBilled Duration: 5 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\tStatus: error\tError Type: Runtime.ExitError"),
            format!("REPORT RequestId: {ID}\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\tStatus: timeout\n{xray}"),
            "INIT_REPORT Init Duration: 87.28 ms\tPhase: invoke\tStatus: error\tError Type: Runtime.Unknown".to_owned(),
            "INIT_START Runtime Version: python:3.12.v27\tRuntime Version ARN: arn:aws:lambda:eu-west-1::runtime:abc".to_owned(),
            "RESTORE_REPORT Restore Duration: 240.12 ms\tStatus: success".to_owned(),
            format!("START RequestId: {ID}\tVersion: 12"),
        ] {
            let tabs = parse(&line).unwrap();
            assert!(tabs.details.is_some(), "{line}");
            for sep in [" ", "  "] {
                let spaced = line.replace(['\t', '\n'], sep);
                assert_eq!(parse(&spaced).unwrap(), tabs, "{spaced}");
            }
        }
    }

    /// Issue 7: a mebibyte of what the field search keys on still parses, linearly, to the right answer.
    #[test]
    fn hostile_platform_lines() {
        const MIB: usize = 1 << 20;
        for filler in [
            "Duration: ",
            "Duration:",
            ":",
            " ",
            "\t",
            "Billed Restore Duration",
            "x",
        ] {
            let line = format!(
                "REPORT RequestId: {ID}\t{}\tMemory Size: 128 MB",
                filler.repeat(MIB / filler.len())
            );
            let p = parse(&line).unwrap();
            assert_eq!(p.details.unwrap().metrics.memory_size_mb, Some(128), "{filler}");
        }
        assert!(parse(&format!("{} Task timed out after 3.00 seconds", "1".repeat(MIB))).is_none());
        assert!(parse(&"S".repeat(MIB)).is_none());
        assert!(parse(&format!("START{}", "RequestId: ".repeat(MIB / 11))).is_none());
    }
}
