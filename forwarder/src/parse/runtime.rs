//! The prefixes Lambda runtimes and their default loggers put before application lines, which is where the
//! request id usually is, and where the application's own message (perhaps a JSON object) starts.
//!
//! - Python: `[INFO]\t2026-11-21T10:00:00.123Z\t<request id>\tmessage`
//! - Node.js and .NET: `2026-11-21T10:00:00.123Z\t<request id>\tINFO\tmessage`
//! - Java (aws-lambda-java-log4j2's default pattern): `2026-11-21 10:00:00 <request id> INFO Handler - message`
//! - Go's `log` package: `2026/11/21 10:00:00 message`; Rust's `tracing`: `2026-11-21T10:00:00.123Z  INFO message`
//! - Ruby's `Logger`: `I, [2026-11-21T10:00:00.123456 #8]  INFO -- : message`
//!
//! Go, Rust, Ruby and most others print no request id; a leading timestamp and level word still give the level.

use memchr::memmem;

use super::{is_request_id, Severity};

#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Prefix<'a> {
    pub request_id: Option<&'a str>,
    pub severity: Option<Severity>,
    /// The message after a recognised prefix: what the application printed. `None` without a prefix.
    pub body: Option<&'a str>,
}

/// How far into a line its prefix is looked for: two timestamp tokens, a request id, a level word and a
/// short logger name fit. Bounding it keeps the prefix's cost independent of the line's length.
const PREFIX_WITHIN: usize = 128;

pub(super) fn parse_prefix(text: &str) -> Prefix<'_> {
    match text.as_bytes() {
        [b'[', ..] => python(text),
        [c, ..] if c.is_ascii_digit() => timestamp_led(text),
        [c, b',', b' ', b'[', ..] if c.is_ascii_uppercase() => ruby(text),
        _ => Prefix::default(),
    }
}

fn python(text: &str) -> Prefix<'_> {
    let mut tokens = Tokens::new(text, Separators::Tab);
    let level = tokens.next().and_then(|l| l.strip_prefix('[')?.strip_suffix(']'));
    let Some(severity) = level.and_then(Severity::from_word) else {
        return Prefix::default();
    };
    let mut prefix = Prefix {
        request_id: None,
        severity: Some(severity),
        body: Some(tokens.rest()),
    };
    if tokens.next_if(looks_like_timestamp).is_some() {
        prefix.body = Some(tokens.rest());
        if let Some(id) = tokens.next_if(is_request_id) {
            prefix.request_id = Some(id);
            prefix.body = Some(tokens.rest());
        }
    }
    prefix
}

/// A line that starts with a timestamp (possibly date and time as two tokens), then maybe a request id, then
/// maybe a level word, then for Java a logger name and a dash.
fn timestamp_led(text: &str) -> Prefix<'_> {
    let mut tokens = Tokens::new(text, Separators::Blank);
    let mut timestamps = 0;
    while timestamps < 3 && tokens.next_if(looks_like_timestamp).is_some() {
        timestamps += 1;
    }
    if timestamps == 0 {
        return Prefix::default();
    }
    let request_id = tokens.next_if(is_request_id);
    let severity = tokens.next_if(|t| level_word(t).is_some()).and_then(level_word);
    let rest = tokens.rest();
    let body = if severity.is_some() {
        after_logger_name(rest).unwrap_or(rest)
    } else {
        rest
    };
    Prefix {
        request_id,
        severity,
        body: Some(body),
    }
}

fn level_word(token: &str) -> Option<Severity> {
    Severity::from_word(token.trim_matches(['[', ']', ':']))
}

/// Java's `Handler - message`: the message after a one-word logger name and ` - `, both within the head.
fn after_logger_name(rest: &str) -> Option<&str> {
    // log4j2 pads the level (`%-5p`): `INFO  Handler`.
    let rest = rest.trim_start_matches(' ');
    let head = &rest.as_bytes()[..rest.len().min(PREFIX_WITHIN)];
    let dash = memmem::find(head, b" - ")?;
    let logger = &head[..dash];
    let one_word = !logger.is_empty() && !logger.iter().any(|c| c.is_ascii_whitespace());
    // The dash is ASCII: the slice starts on a character boundary.
    one_word.then(|| rest.get(dash + " - ".len()..)).flatten()
}

/// Ruby's `Logger` default format: `I, [<timestamp> #<pid>]  INFO -- <progname>: message`.
fn ruby(text: &str) -> Prefix<'_> {
    let head = &text.as_bytes()[..text.len().min(PREFIX_WITHIN)];
    let parsed = (|| {
        let close = memchr::memchr(b']', head)?;
        let (timestamp, pid) = text.get(", [".len() + 1..close)?.split_once(" #")?;
        let stamped =
            looks_like_timestamp(timestamp) && !pid.is_empty() && pid.bytes().all(|c| c.is_ascii_digit());
        stamped.then_some(())?;
        let after = close + 1;
        let dashes = after + memmem::find(&head[after..], b" -- ")?;
        let severity = Severity::from_word(text.get(after..dashes)?)?;
        let progname_end = dashes + memmem::find(&head[dashes..], b": ")?;
        Some(Prefix {
            request_id: None,
            severity: Some(severity),
            body: text.get(progname_end + ": ".len()..),
        })
    })();
    parsed.unwrap_or_default()
}

/// The tokens of the first [`PREFIX_WITHIN`] bytes of a line, split at ASCII separators, empty ones skipped;
/// a token the bound cuts short is not yielded, so that a cut word is never taken for a whole one.
struct Tokens<'a> {
    text: &'a str,
    head: usize,
    at: usize,
    separators: Separators,
}

/// What splits a prefix into tokens. A closed set rather than a predicate, so that the next separator is
/// found with `memchr` instead of a call per byte: this runs for nearly every line.
#[derive(Clone, Copy)]
enum Separators {
    Tab,
    /// Space or tab.
    Blank,
}

impl Separators {
    fn find(self, bytes: &[u8]) -> Option<usize> {
        match self {
            Separators::Tab => memchr::memchr(b'\t', bytes),
            Separators::Blank => memchr::memchr2(b' ', b'\t', bytes),
        }
    }
}

impl<'a> Tokens<'a> {
    fn new(text: &'a str, separators: Separators) -> Self {
        Self {
            text,
            head: text.len().min(PREFIX_WITHIN),
            at: 0,
            separators,
        }
    }

    /// The next token, if `wanted`; otherwise nothing is consumed.
    fn next_if(&mut self, wanted: impl Fn(&str) -> bool) -> Option<&'a str> {
        let before = self.at;
        let token = self.next().filter(|t| wanted(t));
        if token.is_none() {
            self.at = before;
        }
        token
    }

    /// The text after the last token taken and its separator: always a character boundary, since both ends
    /// of a token are at an ASCII separator or the end of the text.
    fn rest(&self) -> &'a str {
        self.text.get(self.at.min(self.text.len())..).unwrap_or_default()
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        loop {
            if self.at > self.head {
                return None;
            }
            let start = self.at;
            let end = match self.separators.find(&bytes[start..self.head]) {
                Some(len) => start + len,
                None if self.head == self.text.len() => self.head,
                None => return None,
            };
            self.at = end + 1;
            if end > start {
                return self.text.get(start..end);
            }
        }
    }
}

fn looks_like_timestamp(token: &str) -> bool {
    // `matches!` rather than a slice's `contains`, which is a `memchr` call for every byte of the token.
    token.len() >= 8
        && token.as_bytes()[0].is_ascii_digit()
        && token
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b':' | b'.' | b'T' | b'Z' | b'+' | b',' | b'/'))
        && token.bytes().any(|c| matches!(c, b':' | b'-' | b'/'))
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
        let go = pp("2026/11/21 10:00:00 ERROR hello");
        assert_eq!(go, want(None, Some(Severity::Error)));
        let tracing = pp("2026-11-21T10:00:00.123Z  WARN handler: slow");
        assert_eq!(tracing, want(None, Some(Severity::Warn)));
        assert_eq!(pp("42 is the answer"), want(None, None));
    }

    fn body(text: &str) -> Option<&str> {
        parse_prefix(text).body
    }

    #[test]
    fn the_body_starts_after_each_prefix() {
        assert_eq!(
            body(&format!("[INFO]\t2026-11-21T10:00:00.123Z\t{ID}\t{{\"a\":1}}")),
            Some("{\"a\":1}")
        );
        assert_eq!(
            body("[INFO]\t2026-11-21T10:00:00.123Z\tno id here"),
            Some("no id here")
        );
        assert_eq!(body("[INFO]\tjust this"), Some("just this"));
        assert_eq!(
            body(&format!("2026-11-21T10:00:00.123Z\t{ID}\tINFO\tmsg")),
            Some("msg")
        );
        assert_eq!(body(&format!("2026-11-21T10:00:00.123Z\t{ID}\tmsg")), Some("msg"));
        assert_eq!(
            body(&format!("2026-11-21 10:00:00 {ID} INFO  Handler - msg - more")),
            Some("msg - more")
        );
        assert_eq!(body("2026-11-21 10:00:00  WARN Handler - msg"), Some("msg"));
        assert_eq!(body("2026/11/21 10:00:00.123456 msg"), Some("msg"));
        assert_eq!(
            body("2026-11-21T10:00:00.123Z  INFO handler: msg"),
            Some("handler: msg")
        );
        assert_eq!(
            body("I, [2026-11-21T10:00:00.123456 #8]  INFO -- : msg"),
            Some("msg")
        );
        assert_eq!(
            body("E, [2026-11-21T10:00:00.123456 #8] ERROR -- app: msg"),
            Some("msg")
        );
        assert_eq!(body("hello world"), None);
        assert_eq!(body("[1, 2, 3]"), None);
    }

    #[test]
    fn ruby_logger() {
        let p = pp("W, [2026-11-21T10:00:00.123456 #8]  WARN -- : slow");
        assert_eq!(p, want(None, Some(Severity::Warn)));
        for not_ruby in [
            "I, [2026-11-21T10:00:00.123456]  INFO -- : no pid",
            "I, [2026-11-21T10:00:00.123456 #8]  HELLO -- : no level",
            "I, [2026-11-21T10:00:00.123456 #8]  INFO no dashes",
            "I, [not a time #8]  INFO -- : x",
        ] {
            assert_eq!(parse_prefix(not_ruby), Prefix::default(), "{not_ruby}");
        }
        let far = format!(
            "I, [2026-11-21T10:00:00.123456 #8]{}INFO -- : x",
            " ".repeat(PREFIX_WITHIN)
        );
        assert_eq!(parse_prefix(&far), Prefix::default());
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
