//! What a line says about how its invocation ended, beyond the REPORT: a runtime's out-of-memory message, a
//! `Task timed out` line (docs/formats.md section 9). Each signal counts once per request id, however many
//! lines repeat it.

use std::sync::LazyLock;

use memchr::memmem::Finder;

use crate::parse::{ParsedLine, PlatformEvent};

/// The messages runtimes print when they run out of memory: Go, Java, Node.js, Python, Ruby, .NET, and
/// Lambda's own error type (the Datadog Forwarder's list, with .NET and the error type added).
const OUT_OF_MEMORY: [&str; 7] = [
    "fatal error: runtime: out of memory",
    "java.lang.OutOfMemoryError",
    "JavaScript heap out of memory",
    "MemoryError",
    "failed to allocate memory (NoMemoryError)",
    "OutOfMemoryException",
    "Runtime.OutOfMemory",
];

/// Every message above contains it, so one search turns away nearly every line; only lines that mention
/// memory at all are searched for each message.
const COMMON: &str = "emory";

/// Signals of one line, for its invocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signals {
    pub timed_out: bool,
    pub out_of_memory: bool,
}

impl Signals {
    pub fn any(self) -> bool {
        self.timed_out || self.out_of_memory
    }
}

/// The signals of one line: `message` is the text parsed (cut to the message limit), `parsed` what parsing
/// found. Linear in the message: one search, and the seven only when it mentions memory.
pub fn of_line(message: &str, parsed: &ParsedLine) -> Signals {
    Signals {
        timed_out: parsed.platform == Some(PlatformEvent::Timeout),
        out_of_memory: out_of_memory(message, parsed),
    }
}

fn out_of_memory(message: &str, parsed: &ParsedLine) -> bool {
    static COMMON_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(COMMON));
    static FINDERS: LazyLock<Vec<Finder<'static>>> =
        LazyLock::new(|| OUT_OF_MEMORY.iter().map(Finder::new).collect());
    if parsed
        .details
        .as_ref()
        .and_then(|d| d.error_type.as_deref())
        .is_some_and(is_out_of_memory_error_type)
    {
        return true;
    }
    let bytes = message.as_bytes();
    let Some(first) = COMMON_FINDER.find(bytes) else {
        return false;
    };
    // Every message has at most 30 bytes before its "emory": no match can start earlier than that.
    let from = first.saturating_sub(32);
    FINDERS.iter().any(|f| f.find(&bytes[from..]).is_some())
}

/// `Runtime.OutOfMemory`, the error type of a REPORT or `platform.report` of an invocation killed for memory.
pub fn is_out_of_memory_error_type(error_type: &str) -> bool {
    error_type == "Runtime.OutOfMemory"
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::parse::parse_line;

    fn signals(line: &str) -> Signals {
        of_line(line, &parse_line(line))
    }

    #[test]
    fn every_runtime_out_of_memory_message() {
        for line in [
            "fatal error: runtime: out of memory",
            "Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space",
            "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
            "[ERROR] MemoryError\nTraceback (most recent call last):",
            "failed to allocate memory (NoMemoryError)",
            "Unhandled exception. System.OutOfMemoryException: Insufficient memory",
            "RequestId: 8f507cfc-1a2b-4697-b07a-ac58fc914c95 Error: Runtime exited with error: Runtime.OutOfMemory",
        ] {
            assert_eq!(
                signals(line),
                Signals {
                    timed_out: false,
                    out_of_memory: true
                },
                "{line}"
            );
        }
        // Mentions of memory that are no such message.
        for line in [
            "memory is fine",
            "REPORT RequestId: 8f507cfc-1a2b-4697-b07a-ac58fc914c95\tDuration: 1.00 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB",
            "OutOfMemor",
            "",
        ] {
            assert!(!signals(line).any(), "{line}");
        }
    }

    #[test]
    fn a_message_after_many_mentions_of_memory_is_found() {
        let line = format!("{}java.lang.OutOfMemoryError", "memory ".repeat(10_000));
        assert!(signals(&line).out_of_memory);
    }

    #[test]
    fn the_error_type_of_a_report() {
        let line = r#"{"type":"platform.report","record":{"requestId":"r-1","status":"error","errorType":"Runtime.OutOfMemory","metrics":{"durationMs":5}}}"#;
        assert!(signals(line).out_of_memory);
    }

    #[test]
    fn a_timeout_line() {
        let s = signals(
            "2026-11-21T10:00:03.014Z 5b3e8a71-0d4c-4e2f-9a61-7c2d3e4f5a6b Task timed out after 3.00 seconds",
        );
        assert_eq!(
            s,
            Signals {
                timed_out: true,
                out_of_memory: false
            }
        );
    }
}
