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

impl Severity {
    /// A level word as loggers print it: `INFO`, `info`, `Warning`, `CRITICAL`, `E`... Unknown words are `None`.
    pub fn from_word(word: &str) -> Option<Self> {
        let w = word.trim();
        if w.len() > 8 {
            return None;
        }
        let mut buf = [0u8; 8];
        let upper = &mut buf[..w.len()];
        upper.copy_from_slice(w.as_bytes());
        upper.make_ascii_uppercase();
        Some(match &*upper {
            b"TRACE" | b"VERBOSE" => Severity::Trace,
            b"DEBUG" | b"DBG" => Severity::Debug,
            b"INFO" | b"INF" | b"NOTICE" | b"LOG" => Severity::Info,
            b"WARN" | b"WARNING" | b"WRN" => Severity::Warn,
            b"ERROR" | b"ERR" | b"SEVERE" => Severity::Error,
            b"FATAL" | b"CRITICAL" | b"CRIT" | b"PANIC" | b"ALERT" | b"EMERG" => Severity::Fatal,
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
    }

    #[test]
    fn guesses_only_clear_shapes() {
        assert_eq!(guess("ERROR: disk full"), Severity::Error);
        assert_eq!(guess("[WARN] slow"), Severity::Warn);
        assert_eq!(guess("an error happened"), Severity::Unspecified);
        assert_eq!(guess("WARN"), Severity::Warn);
        assert_eq!(guess("[[[[WARN]"), Severity::Warn);
        assert_eq!(guess(&"E".repeat(1 << 20)), Severity::Unspecified);
        assert_eq!(guess("éééééé: x"), Severity::Unspecified);
        assert_eq!(
            guess("Traceback (most recent call last):\n  File"),
            Severity::Error
        );
    }
}
