//! A record's message as a JSON string, escaped at most once however many destinations write it: the NDJSON
//! destinations and the JSON encoders (Datadog's `message`, Dynatrace's `content`) would otherwise each
//! escape the same bytes, and escaping is most of what writing a JSON log line costs.

use std::cell::OnceCell;

use super::json_text::{push_escaped, push_str};

/// One record's message, for the destinations that write it as a JSON string. When `shared`, the first
/// writer escapes it and every writer copies that; otherwise each writes it straight from the text.
#[derive(Debug)]
pub struct JsonMessage<'a> {
    text: &'a str,
    shared: bool,
    /// The inside of the JSON string (no quotes), once a shared message was first written.
    escaped: OnceCell<Vec<u8>>,
}

impl<'a> JsonMessage<'a> {
    /// `shared`: whether more than one destination may write it. A message nobody writes costs nothing.
    pub fn new(text: &'a str, shared: bool) -> Self {
        Self {
            text,
            shared,
            escaped: OnceCell::new(),
        }
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The escaped inside of the JSON string, made on first use; `None` when the message is not shared.
    pub(crate) fn escaped(&self) -> Option<&[u8]> {
        if !self.shared {
            return None;
        }
        Some(self.escaped.get_or_init(|| {
            // Most messages need few escapes: room for a handful avoids a regrowth.
            let mut escaped = Vec::with_capacity(self.text.len() + 16);
            push_escaped(&mut escaped, self.text.as_bytes());
            escaped
        }))
    }

    /// Appends the whole message as a JSON string, quotes included, escaped as serde_json escapes it.
    pub(crate) fn push(&self, out: &mut Vec<u8>) {
        match self.escaped() {
            Some(escaped) => {
                out.reserve(escaped.len() + 2);
                out.push(b'"');
                out.extend_from_slice(escaped);
                out.push(b'"');
            }
            None => push_str(out, self.text),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shared_or_not_it_writes_what_serde_json_writes() {
        for text in ["", "plain", "a \"quoted\"\n\\ line\u{1}é😀", &"x\t".repeat(100)] {
            let expected = serde_json::to_vec(text).unwrap();
            for shared in [false, true] {
                let message = JsonMessage::new(text, shared);
                for _ in 0..2 {
                    let mut out = b"{".to_vec();
                    message.push(&mut out);
                    assert_eq!(out[1..], expected[..], "{text:?} shared={shared}");
                }
                assert_eq!(message.escaped().is_some(), shared);
            }
        }
    }
}
