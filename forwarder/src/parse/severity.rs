use std::fmt;

/// Log severity, named as OpenTelemetry names its severity texts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    #[default]
    Unspecified,
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

/// A word of up to 8 bytes as a little-endian integer, zero-padded.
const fn word(w: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let mut i = 0;
    while i < w.len() {
        buf[i] = w[i];
        i += 1;
    }
    u64::from_le_bytes(buf)
}

const TRACE: u64 = word(b"TRACE");
const VERBOSE: u64 = word(b"VERBOSE");
const DEBUG: u64 = word(b"DEBUG");
const DBG: u64 = word(b"DBG");
const INFO: u64 = word(b"INFO");
const INF: u64 = word(b"INF");
const NOTICE: u64 = word(b"NOTICE");
const LOG: u64 = word(b"LOG");
const WARN: u64 = word(b"WARN");
const WARNING: u64 = word(b"WARNING");
const WRN: u64 = word(b"WRN");
const ERROR: u64 = word(b"ERROR");
const ERR: u64 = word(b"ERR");
const SEVERE: u64 = word(b"SEVERE");
const FATAL: u64 = word(b"FATAL");
const CRITICAL: u64 = word(b"CRITICAL");
const CRIT: u64 = word(b"CRIT");
const PANIC: u64 = word(b"PANIC");
const ALERT: u64 = word(b"ALERT");
const EMERG: u64 = word(b"EMERG");

impl Severity {
    /// A level word as loggers print it: `INFO`, `info`, `Warning`, `CRITICAL`, `E`... Unknown words are `None`.
    pub fn from_word(word: &str) -> Option<Self> {
        let w = word.trim().as_bytes();
        // .NET's `LogLevel` (and with it the .NET Lambda runtime's JSON `level`) is the one long word in use.
        if w.eq_ignore_ascii_case(b"information") {
            return Some(Severity::Info);
        }
        if w.len() > 8 || w.contains(&0) {
            return None;
        }
        // Every level word fits in 8 bytes: compared as one integer rather than string by string, since this
        // runs for nearly every line. NUL is excluded above because it is the padding.
        let mut buf = [0u8; 8];
        buf[..w.len()].copy_from_slice(w);
        buf.make_ascii_uppercase();
        Some(match u64::from_le_bytes(buf) {
            TRACE | VERBOSE => Severity::Trace,
            DEBUG | DBG => Severity::Debug,
            INFO | INF | NOTICE | LOG => Severity::Info,
            WARN | WARNING | WRN => Severity::Warn,
            ERROR | ERR | SEVERE => Severity::Error,
            FATAL | CRITICAL | CRIT | PANIC | ALERT | EMERG => Severity::Fatal,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unspecified => "UNSPECIFIED",
            Severity::Trace => "TRACE",
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// For lines without a structured level: the few unmistakable shapes (Python tracebacks, a leading level
/// word). Anything else stays unspecified rather than guessed from words in the text.
pub(crate) fn guess(text: &str) -> Severity {
    if text.starts_with("Traceback (most recent call last)") {
        return Severity::Error;
    }
    // A level word is at most 8 bytes, after at most a bracket: the first word is looked for in a short head,
    // so a long line without separators is not scanned to its end.
    let head = &text.as_bytes()[..text.len().min(12)];
    let Some(end) = head
        .iter()
        .position(|c| matches!(c, b' ' | b'\t' | b':' | b']'))
        .or((head.len() == text.len()).then_some(head.len()))
    else {
        return Severity::Unspecified;
    };
    let first = text.get(..end).unwrap_or_default().trim_start_matches('[');
    Severity::from_word(first).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(Severity::from_word("info"), Some(Severity::Info));
        assert_eq!(Severity::from_word("Warning"), Some(Severity::Warn));
        assert_eq!(Severity::from_word("CRITICAL"), Some(Severity::Fatal));
        assert_eq!(Severity::from_word("information-ish"), None);
        assert_eq!(Severity::from_word("hello"), None);
        assert_eq!(Severity::from_word(" err "), Some(Severity::Error));
        assert_eq!(Severity::from_word("INFO\0"), None);
        assert_eq!(Severity::from_word(""), None);
        assert_eq!(Severity::from_word("VERBOSE"), Some(Severity::Trace));
        assert_eq!(Severity::from_word("Information"), Some(Severity::Info));
        assert_eq!(Severity::from_word("informations"), None);
    }

    #[test]
    fn guesses_only_clear_shapes() {
        assert_eq!(guess("ERROR: disk full"), Severity::Error);
        assert_eq!(guess("[WARN] slow"), Severity::Warn);
        assert_eq!(guess("an error happened"), Severity::Unspecified);
        assert_eq!(guess("WARN"), Severity::Warn);
        assert_eq!(guess("[[[[WARN]"), Severity::Warn);
        assert_eq!(guess("Information: started"), Severity::Info);
        assert_eq!(guess(&"E".repeat(1 << 20)), Severity::Unspecified);
        assert_eq!(guess("éééééé: x"), Severity::Unspecified);
        assert_eq!(
            guess("Traceback (most recent call last):\n  File"),
            Severity::Error
        );
    }
}
