//! JSON writing shared by the JSON encoders: strings escaped exactly as serde_json escapes them, cut to a
//! limit with a visible marker, and an object writer that keeps an entry within a count and a size.

use super::{Entries, JsonMessage, TRUNCATED};
use crate::record::{AttrValue, LogRecord};

pub(crate) use crate::output::json_text::push_str;
use crate::output::json_text::{push_escaped, ESCAPED_LEN};

/// Appends `s` as a JSON string of at most `max_text` bytes of text and `max_json` bytes of JSON (quotes and
/// escapes included). What does not fit is cut on a char boundary and replaced by [`TRUNCATED`], so the cut
/// text with its marker still keeps to both limits. Returns whether it cut.
///
/// Limits too small for the marker get as much of the marker as fits: the cut stays visible and in bounds.
pub(crate) fn push_str_within(out: &mut Vec<u8>, s: &str, max_text: usize, max_json: usize) -> bool {
    let bytes = s.as_bytes();
    let json_budget = max_json.saturating_sub(2);
    // Nearly every string fits even if every byte needed the longest escape: one pass, no counting.
    if bytes.len() <= max_text && bytes.len().saturating_mul(6) <= json_budget {
        push_str(out, s);
        return false;
    }
    let mut escaped = 0usize;
    // The longest prefix ending on a char boundary that leaves room for the marker, found in the same pass.
    let text_room = max_text.saturating_sub(TRUNCATED.len());
    let json_room = json_budget.saturating_sub(TRUNCATED.len());
    let mut cut = 0;
    for (i, &b) in bytes.iter().enumerate() {
        // A char starts here: the prefix before it is whole.
        if b & 0xc0 != 0x80 && i <= text_room && escaped <= json_room {
            cut = i;
        }
        escaped += usize::from(ESCAPED_LEN[usize::from(b)]);
    }
    if bytes.len() <= max_text && escaped <= json_budget {
        push_str(out, s);
        return false;
    }
    if bytes.len() <= text_room && escaped <= json_room {
        cut = bytes.len();
    }
    out.push(b'"');
    push_escaped(out, &bytes[..cut]);
    let marker_room = max_text.min(json_budget).saturating_sub(cut).min(TRUNCATED.len());
    out.extend_from_slice(&TRUNCATED.as_bytes()[..marker_room]);
    out.push(b'"');
    true
}

/// [`push_str_within`] for a record's message: the same bytes, copied from its shared escaped form when the
/// whole message fits.
pub(crate) fn push_message_within(
    out: &mut Vec<u8>,
    message: &JsonMessage<'_>,
    max_text: usize,
    max_json: usize,
) -> bool {
    if message.text().len() <= max_text {
        if let Some(escaped) = message.escaped() {
            if escaped.len() <= max_json.saturating_sub(2) {
                message.push(out);
                return false;
            }
        }
    }
    push_str_within(out, message.text(), max_text, max_json)
}

/// Appends one attribute value, a string cut to `max_text` bytes of text. Returns whether it cut.
pub(crate) fn push_value(out: &mut Vec<u8>, value: AttrValue<'_>, max_text: usize) -> bool {
    match value {
        AttrValue::Str(s) => return push_str_within(out, s, max_text, usize::MAX),
        AttrValue::UInt(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
        AttrValue::Float(x) if x.is_finite() => out.extend_from_slice(float_text(x).as_bytes()),
        AttrValue::Float(_) => out.extend_from_slice(b"null"),
        AttrValue::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
    }
    false
}

/// A finite float as serde_json prints it (NDJSON prints REPORT metrics the same way).
fn float_text(x: f64) -> String {
    serde_json::Number::from_f64(x).map_or_else(|| "null".to_owned(), |n| n.to_string())
}

/// Writes the members of one JSON object (the caller writes the braces), keeping to a number of members and
/// a number of bytes: a member that would break either is left out and the object is marked truncated.
#[derive(Debug)]
pub(crate) struct Members<'a> {
    pub out: &'a mut Vec<u8>,
    first: bool,
    count: usize,
    max_count: usize,
    /// `out.len()` may not pass this once a member is written.
    end: usize,
    pub truncated: bool,
}

impl<'a> Members<'a> {
    pub fn new(out: &'a mut Vec<u8>, max_count: usize, max_bytes: usize) -> Self {
        let end = out.len().saturating_add(max_bytes);
        Self {
            out,
            first: true,
            count: 0,
            max_count,
            end,
            truncated: false,
        }
    }

    /// Writes `"key":` and lets `value` write the value; takes it back out if it broke a limit.
    /// `value` returns whether it cut something.
    pub fn member(&mut self, key: &str, value: impl FnOnce(&mut Vec<u8>) -> bool) {
        if self.count >= self.max_count {
            self.truncated = true;
            return;
        }
        let mark = self.out.len();
        if !self.first {
            self.out.push(b',');
        }
        push_str(self.out, key);
        self.out.push(b':');
        let cut = value(self.out);
        if self.out.len() > self.end {
            self.out.truncate(mark);
            self.truncated = true;
            return;
        }
        self.truncated |= cut;
        self.first = false;
        self.count += 1;
    }

    /// Appends members already encoded as `"key":value`, counting `members` of them; all or nothing.
    /// Returns whether they went in.
    pub fn encoded(&mut self, bytes: &[u8], members: usize) -> bool {
        if members == 0 {
            return true;
        }
        let separator = usize::from(!self.first);
        if self.count.saturating_add(members) > self.max_count
            || self.out.len() + separator + bytes.len() > self.end
        {
            self.truncated = true;
            return false;
        }
        if separator == 1 {
            self.out.push(b',');
        }
        self.out.extend_from_slice(bytes);
        self.first = false;
        self.count += members;
        true
    }

    /// The record's own attributes, each value cut to `max_value`: `kept` (the same members, made once for
    /// this kind of record) when they all fit, else member by member as they fit, so that both ways write the
    /// same bytes.
    pub fn own_attributes(&mut self, record: &LogRecord, kept: Option<&OwnMembers>, max_value: usize) {
        if let Some(kept) = kept {
            let separator = usize::from(!self.first && kept.count > 0);
            if self.count.saturating_add(kept.count) <= self.max_count
                && self.out.len() + separator + kept.bytes.len() <= self.end
            {
                self.encoded(&kept.bytes, kept.count);
                self.truncated |= kept.cut;
                return;
            }
        }
        record.visit_attributes(&mut |key, value| self.member(key, |o| push_value(o, value, max_value)));
    }

    /// Members written so far.
    pub fn count(&self) -> usize {
        self.count
    }

    pub fn is_first(&self) -> bool {
        self.first
    }
}

/// A record's own attributes ([`LogRecord::visit_attributes`]) as `"key":value` members, comma-separated, each
/// value cut to the same limit: made once per kind of record and copied into each entry of that kind.
#[derive(Debug)]
pub(crate) struct OwnMembers {
    bytes: Vec<u8>,
    count: usize,
    cut: bool,
}

impl OwnMembers {
    pub fn of(record: &LogRecord, max_value: usize) -> Self {
        let mut bytes = Vec::new();
        let mut m = Members::new(&mut bytes, usize::MAX, usize::MAX);
        record.visit_attributes(&mut |key, value| m.member(key, |o| push_value(o, value, max_value)));
        let (count, cut) = (m.count, m.truncated);
        Self { bytes, count, cut }
    }
}

/// The entries `range` as one JSON array.
pub(crate) fn json_array(entries: &Entries, range: std::ops::Range<usize>) -> Vec<u8> {
    let range = range.start.min(entries.len())..range.end.min(entries.len());
    let bytes = if range.is_empty() {
        0
    } else {
        entries.ends[range.end - 1] - range.start.checked_sub(1).map_or(0, |i| entries.ends[i])
    };
    let mut body = Vec::with_capacity(bytes + range.len() + 2);
    body.push(b'[');
    for i in range.clone() {
        if i != range.start {
            body.push(b',');
        }
        body.extend_from_slice(entries.entry(i));
    }
    body.push(b']');
    body
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn within(s: &str, max_text: usize, max_json: usize) -> (String, bool) {
        let mut out = Vec::new();
        let cut = push_str_within(&mut out, s, max_text, max_json);
        assert!(out.len() <= max_json, "{} > {max_json}", out.len());
        let text: String = serde_json::from_slice(&out).unwrap();
        assert!(text.len() <= max_text);
        (text, cut)
    }

    #[test]
    fn escapes_as_serde_json_does() {
        let all: String = (0u8..0x80).map(char::from).chain("é€😀\u{7f}".chars()).collect();
        let mut out = Vec::new();
        push_str(&mut out, &all);
        assert_eq!(out, serde_json::to_vec(&all).unwrap());
    }

    #[test]
    fn cuts_on_char_boundaries_with_the_marker() {
        assert_eq!(within("short", 100, 100), ("short".to_owned(), false));
        let long = "é".repeat(100);
        let (text, cut) = within(&long, 50, usize::MAX);
        assert!(cut && text.ends_with(TRUNCATED) && text.starts_with("éé"));
        let escapes = "\u{1}".repeat(100);
        let (text, cut) = within(&escapes, usize::MAX, 100);
        assert!(cut && text.ends_with(TRUNCATED));
        assert_eq!(text.len(), (100 - 2 - TRUNCATED.len()) / 6 + TRUNCATED.len());
        for limit in 0..40 {
            let (text, cut) = within("😀😀😀😀😀😀😀😀😀😀😀😀", limit, limit + 2);
            assert!(cut);
            assert!(TRUNCATED.starts_with(text.trim_start_matches('😀')) || text.ends_with(TRUNCATED));
        }
    }

    #[test]
    fn a_shared_message_is_cut_exactly_as_its_text() {
        let texts = ["short", "é\n\"\u{1}tail", &"\u{1}é".repeat(40)];
        for text in texts {
            for max_text in [0, 5, 11, 30, 200, usize::MAX] {
                for max_json in [0, 2, 9, 30, 31, 100, 500, usize::MAX] {
                    let mut expected = Vec::new();
                    let cut = push_str_within(&mut expected, text, max_text, max_json);
                    for shared in [false, true] {
                        let mut out = Vec::new();
                        let message = JsonMessage::new(text, shared);
                        assert_eq!(push_message_within(&mut out, &message, max_text, max_json), cut);
                        assert_eq!(out, expected, "{text:?} {max_text} {max_json} {shared}");
                    }
                }
            }
        }
    }

    #[test]
    fn members_keep_to_count_and_size() {
        let mut out = b"{".to_vec();
        let mut m = Members::new(&mut out, 2, 30);
        m.member("a", |o| push_value(o, AttrValue::UInt(1), 10));
        m.member("b", |o| {
            push_value(o, AttrValue::Str("0123456789012345678901234567890"), 100)
        });
        m.member("c", |o| push_value(o, AttrValue::Float(1.5), 10));
        m.member("d", |o| push_value(o, AttrValue::Bool(true), 10));
        assert!(m.truncated);
        out.push(b'}');
        assert_eq!(out, br#"{"a":1,"c":1.5}"#);
    }

    #[test]
    fn own_attributes_made_once_write_what_member_by_member_writes_under_every_limit() {
        use crate::deliver::encode::testing::{lambda_source, line};
        use crate::parse::PlatformEvent;

        let source = lambda_source("checkout");
        let mut record = line(&source, "m");
        record.platform = Some(PlatformEvent::Start);
        let kept = OwnMembers::of(&record, 4);
        assert_eq!(kept.count, 3, "cold start, platform event and join");
        assert!(kept.cut, "a value longer than 4 bytes is cut");
        let write = |kept: Option<&OwnMembers>, max_count: usize, max_bytes: usize| {
            let mut out = b"{".to_vec();
            let mut m = Members::new(&mut out, max_count, max_bytes);
            m.member("before", |o| push_value(o, AttrValue::UInt(1), 4));
            m.own_attributes(&record, kept, 4);
            let (count, truncated) = (m.count(), m.truncated);
            (out, count, truncated)
        };
        for max_count in 0..6 {
            for max_bytes in 0..kept.bytes.len() + 16 {
                assert_eq!(
                    write(Some(&kept), max_count, max_bytes),
                    write(None, max_count, max_bytes),
                    "{max_count} members, {max_bytes} bytes"
                );
            }
        }
    }
}
