//! The prefixes Lambda runtimes put before application lines, which is where the request id usually is.
//!
//! - Python: `[INFO]\t2026-11-21T10:00:00.123Z\t<request id>\tmessage`
//! - Node.js and .NET: `2026-11-21T10:00:00.123Z\t<request id>\tINFO\tmessage`
//! - Java (aws-lambda-java-log4j2's default pattern): `2026-11-21 10:00:00 <request id> INFO Handler - message`
//! - Go, Rust and most others print no request id; a leading timestamp and level word still give the level.

use super::{is_request_id, Severity};

#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Prefix<'a> {
    pub request_id: Option<&'a str>,
    pub severity: Option<Severity>,
}

/// How far into a line its prefix is looked for: two timestamp tokens, a request id and a level word fit.
/// Bounding it keeps the prefix's cost independent of the line's length.
const PREFIX_WITHIN: usize = 128;

pub(super) fn parse_prefix(text: &str) -> Prefix<'_> {
    match text.as_bytes().first() {
        Some(b'[') => python(text),
        Some(c) if c.is_ascii_digit() => timestamp_led(text),
        _ => Prefix::default(),
    }
}

fn python(text: &str) -> Prefix<'_> {
    let mut tokens = Tokens::new(text, |c| c == b'\t');
    let level = tokens.next().and_then(|l| l.strip_prefix('[')?.strip_suffix(']'));
    let Some(severity) = level.and_then(Severity::from_word) else {
        return Prefix::default();
    };
    let request_id = match (tokens.next(), tokens.next()) {
        (Some(ts), Some(id)) if looks_like_timestamp(ts) && is_request_id(id) => Some(id),
        _ => None,
    };
    Prefix {
        request_id,
        severity: Some(severity),
    }
}

/// A line that starts with a timestamp (possibly date and time as two tokens), then maybe a request id, then
/// maybe a level word.
fn timestamp_led(text: &str) -> Prefix<'_> {
    let mut tokens = Tokens::new(text, |c| c == b' ' || c == b'\t')
        .filter(|t| !t.is_empty())
        .take(5)
        .peekable();
    let mut saw_timestamp = false;
    while tokens.peek().is_some_and(|t| looks_like_timestamp(t)) {
        tokens.next();
        saw_timestamp = true;
    }
    if !saw_timestamp {
        return Prefix::default();
    }
    let mut prefix = Prefix::default();
    if let Some(id) = tokens.next_if(|t| is_request_id(t)) {
        prefix.request_id = Some(id);
    }
    prefix.severity = tokens
        .next()
        .and_then(|t| Severity::from_word(t.trim_matches(['[', ']', ':'])));
    prefix
}

/// The tokens of the first [`PREFIX_WITHIN`] bytes of a line, split at ASCII separators; a token the bound
/// cuts short is not yielded, so that a cut word is never taken for a whole one.
struct Tokens<'a, F> {
    text: &'a str,
    head: usize,
    at: usize,
    is_separator: F,
}

impl<'a, F: Fn(u8) -> bool> Tokens<'a, F> {
    fn new(text: &'a str, is_separator: F) -> Self {
        Self {
            text,
            head: text.len().min(PREFIX_WITHIN),
            at: 0,
            is_separator,
        }
    }
}

impl<'a, F: Fn(u8) -> bool> Iterator for Tokens<'a, F> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        if self.at > self.head {
            return None;
        }
        let start = self.at;
        let end = match bytes[start..self.head]
            .iter()
            .position(|&c| (self.is_separator)(c))
        {
            Some(len) => start + len,
            None if self.head == self.text.len() => self.head,
            None => return None,
        };
        self.at = end + 1;
        // Both ends are at an ASCII separator or the end of the text: character boundaries.
        self.text.get(start..end)
    }
}

fn looks_like_timestamp(token: &str) -> bool {
    token.len() >= 8
        && token.as_bytes()[0].is_ascii_digit()
        && token
            .bytes()
            .all(|c| c.is_ascii_digit() || b"-:.TZ+,".contains(&c))
        && token.bytes().any(|c| c == b':' || c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "8f507cfc-1a2b-4697-b07a-ac58fc914c95";

    fn pp(text: &str) -> (Option<String>, Option<Severity>) {
        let p = parse_prefix(text);
        (p.request_id.map(str::to_owned), p.severity)
    }

    fn want(id: Option<&str>, severity: Option<Severity>) -> (Option<String>, Option<Severity>) {
        (id.map(str::to_owned), severity)
    }

    #[test]
    fn python_prefix() {
        let p = pp(&format!("[ERROR]\t2026-11-21T10:00:00.123Z\t{ID}\tboom"));
        assert_eq!(p, want(Some(ID), Some(Severity::Error)));
        let p = pp("[WARNING]\t2026-11-21T10:00:00.123Z\tnot-an-id\tboom");
        assert_eq!(p, want(None, Some(Severity::Warn)));
        assert_eq!(pp("[1, 2, 3]"), want(None, None));
    }

    #[test]
    fn node_dotnet_java_go() {
        let node = pp(&format!("2026-11-21T10:00:00.123Z\t{ID}\tINFO\tsome message"));
        assert_eq!(node, want(Some(ID), Some(Severity::Info)));
        let dotnet = pp(&format!("2026-11-21T10:00:00.123Z\t{ID}\twarn\tslow"));
        assert_eq!(dotnet.1, Some(Severity::Warn));
        let java = pp(&format!("2026-11-21 10:00:00 {ID} ERROR Handler - failed"));
        assert_eq!(java, want(Some(ID), Some(Severity::Error)));
        let go = pp("2026/11/21 10:00:00 hello");
        assert_eq!(go, want(None, None));
        let tracing = pp("2026-11-21T10:00:00.123Z  WARN handler: slow");
        assert_eq!(tracing, want(None, Some(Severity::Warn)));
        assert_eq!(pp("42 is the answer"), want(None, None));
    }

    /// Only the head of a line is read for its prefix, so a long line costs no more than a short one.
    #[test]
    fn long_lines_and_cut_tokens() {
        let long = format!("2026-11-21T10:00:00.123Z\t{ID}\tERROR\t{}", "x".repeat(1 << 20));
        assert_eq!(pp(&long), want(Some(ID), Some(Severity::Error)));
        let python = format!("[INFO]\t2026-11-21T10:00:00.123Z\t{ID}");
        assert_eq!(pp(&python), want(Some(ID), Some(Severity::Info)));
        assert_eq!(pp(&format!("[{}]", "I".repeat(1 << 20))), want(None, None));
        assert_eq!(pp(&"1".repeat(1 << 20)), want(None, None));
        assert_eq!(
            pp(&format!("2026-11-21T10:00:00Z{}INFO", " ".repeat(1 << 20))),
            want(None, None)
        );
        let cut = format!(
            "2026-11-21T10:00:00Z{}INFORMATION",
            " ".repeat(PREFIX_WITHIN - 24)
        );
        assert_eq!(pp(&cut), want(None, None));
    }
}
