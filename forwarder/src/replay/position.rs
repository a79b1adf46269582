//! Where an object stands: which of its lines (numbered from 1) are known to be delivered. Lines are held as
//! `next` (every line before it) and disjoint ranges after it, so that a run of lines confirmed together (a
//! run of blank lines, every line after one a destination refused for now) costs one entry, not one a line:
//! what a position holds is bounded by the gaps in it, never by the object's size.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Every line before it is confirmed.
    pub next: u64,
    /// Confirmed lines after `next`: start to end, inclusive; disjoint, never adjacent, all above `next`.
    ranges: BTreeMap<u64, u64>,
}

impl Default for Position {
    fn default() -> Self {
        Self {
            next: 1,
            ranges: BTreeMap::new(),
        }
    }
}

impl Position {
    pub fn is_confirmed(&self, line: u64) -> bool {
        line < self.next
            || self
                .ranges
                .range(..=line)
                .next_back()
                .is_some_and(|(_, &end)| end >= line)
    }

    pub fn confirm(&mut self, line: u64) {
        self.confirm_range(line, line);
    }

    /// Adds lines `first..=last`, merging with the ranges they touch and moving `next` over every line now
    /// known to be done.
    pub fn confirm_range(&mut self, first: u64, last: u64) {
        if last < self.next || first > last {
            return;
        }
        let mut start = first.max(self.next);
        let mut end = last;
        if let Some((&s, &e)) = self.ranges.range(..=start).next_back() {
            if e.saturating_add(1) >= start {
                start = s;
                end = end.max(e);
            }
        }
        while let Some((&s, &e)) = self.ranges.range(start..=end.saturating_add(1)).next() {
            self.ranges.remove(&s);
            end = end.max(e);
        }
        if start == self.next {
            self.next = end.saturating_add(1);
        } else {
            self.ranges.insert(start, end);
        }
    }

    /// Every line of `other` added to this one.
    pub fn absorb(&mut self, other: &Position) {
        if other.next > 1 {
            self.confirm_range(1, other.next - 1);
        }
        for (&s, &e) in &other.ranges {
            self.confirm_range(s, e);
        }
    }

    /// The highest line confirmed, 0 when none is.
    pub fn last_line(&self) -> u64 {
        self.ranges
            .last_key_value()
            .map_or(self.next - 1, |(_, &end)| end)
    }

    pub fn is_empty(&self) -> bool {
        self.next == 1 && self.ranges.is_empty()
    }

    /// Ranges after `next`: what this position costs to hold and to write.
    pub fn gaps(&self) -> usize {
        self.ranges.len()
    }
}

/// In a checkpoint: `{"next":N,"confirmed":[7,[9,4000]]}`, a lone line as a number, a run as a pair.
#[derive(Serialize, Deserialize)]
struct Wire {
    next: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    confirmed: Vec<WireRange>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum WireRange {
    One(u64),
    Run([u64; 2]),
}

impl Serialize for Position {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let confirmed = self
            .ranges
            .iter()
            .map(|(&s, &e)| {
                if s == e {
                    WireRange::One(s)
                } else {
                    WireRange::Run([s, e])
                }
            })
            .collect();
        Wire {
            next: self.next,
            confirmed,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Position {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        if wire.next == 0 {
            return Err(serde::de::Error::custom("`next` is 0: lines are numbered from 1"));
        }
        let mut position = Position {
            next: wire.next,
            ranges: BTreeMap::new(),
        };
        for range in wire.confirmed {
            let (s, e) = match range {
                WireRange::One(line) => (line, line),
                WireRange::Run([s, e]) if s <= e => (s, e),
                WireRange::Run([s, e]) => {
                    return Err(serde::de::Error::custom(format!(
                        "range [{s},{e}] ends before it starts"
                    )))
                }
            };
            position.confirm_range(s, e);
        }
        Ok(position)
    }
}

/// One object's lines during a run: what the checkpoint says an earlier run confirmed (`earlier`), and what
/// this run confirmed (`here`). Kept apart so that a checkpoint proved wrong for the object can be dropped
/// without forgetting what this run sent, and so that an object is deleted only when this run confirmed
/// every line of it.
#[derive(Debug, Clone, Default)]
pub struct Standing {
    earlier: Position,
    here: Position,
}

impl Standing {
    pub fn new(earlier: Position) -> Self {
        Self {
            earlier,
            here: Position::default(),
        }
    }

    /// A line to read past without sending it: confirmed by an earlier run or earlier in this one.
    pub fn skips(&self, line: u64) -> bool {
        self.here.is_confirmed(line) || self.earlier.is_confirmed(line)
    }

    /// The highest line either run confirmed: no line after it is read past.
    pub fn last_line(&self) -> u64 {
        self.here.last_line().max(self.earlier.last_line())
    }

    /// A line read past because an earlier run confirmed it.
    pub fn resumes(&self, line: u64) -> bool {
        self.earlier.is_confirmed(line) && !self.here.is_confirmed(line)
    }

    pub fn confirm(&mut self, line: u64) {
        self.here.confirm(line);
    }

    pub fn confirm_range(&mut self, first: u64, last: u64) {
        self.here.confirm_range(first, last);
    }

    /// What the checkpoint holds for the object: both sets of lines.
    pub fn position(&self) -> Position {
        let mut all = self.here.clone();
        all.absorb(&self.earlier);
        all
    }

    /// The first line neither run confirmed.
    pub fn next(&self) -> u64 {
        self.position().next
    }

    /// Whether the checkpoint claims lines of an object that ends at `last_line`: then it was not written for
    /// this object, and none of what it says can be trusted.
    pub fn past_end(&self, last_line: u64) -> bool {
        self.earlier.last_line() > last_line
    }

    /// Whether an earlier run confirmed some lines: then this run did not confirm every line itself.
    pub fn resumed(&self) -> bool {
        !self.earlier.is_empty()
    }

    pub fn forget_earlier(&mut self) {
        self.earlier = Position::default();
    }

    pub fn forget_all(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn positions_advance_over_confirmed_lines_only() {
        let mut p = Position::default();
        p.confirm(2);
        p.confirm(4);
        assert_eq!((p.next, p.gaps()), (1, 2));
        p.confirm(1);
        assert_eq!(p.next, 3);
        assert!(p.is_confirmed(4) && !p.is_confirmed(3));
        p.confirm(3);
        assert_eq!((p.next, p.gaps()), (5, 0));
    }

    #[test]
    fn a_run_of_lines_is_one_range_whatever_its_length() {
        let mut p = Position::default();
        p.confirm_range(3, 1_000_000_000);
        p.confirm(1_000_000_002);
        assert_eq!(p.gaps(), 2);
        assert!(p.is_confirmed(3) && p.is_confirmed(999_999_999) && !p.is_confirmed(1_000_000_001));
        // Filling the hole joins the neighbours; lines already held change nothing.
        p.confirm(1_000_000_001);
        p.confirm_range(10, 20);
        assert_eq!(p.gaps(), 1);
        assert_eq!(p.last_line(), 1_000_000_002);
        p.confirm_range(1, 2);
        assert_eq!((p.next, p.gaps()), (1_000_000_003, 0));
        // Overlapping and adjacent ranges merge whichever way round they come.
        let mut q = Position::default();
        q.confirm_range(20, 30);
        q.confirm_range(5, 9);
        q.confirm_range(10, 25);
        q.confirm_range(31, 31);
        assert_eq!(q.gaps(), 1);
        assert_eq!(q.last_line(), 31);
        assert!(!q.is_confirmed(4));
    }

    #[test]
    fn positions_round_trip_and_bad_ones_are_refused() {
        let mut p = Position::default();
        p.confirm_range(1, 4);
        p.confirm(7);
        p.confirm_range(9, 4000);
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(text, r#"{"next":5,"confirmed":[7,[9,4000]]}"#);
        assert_eq!(serde_json::from_str::<Position>(&text).unwrap(), p);
        assert_eq!(
            serde_json::to_string(&Position::default()).unwrap(),
            r#"{"next":1}"#
        );
        assert!(serde_json::from_str::<Position>(r#"{"next":0}"#).is_err());
        assert!(serde_json::from_str::<Position>(r#"{"next":1,"confirmed":[[9,3]]}"#).is_err());
        // Unordered or overlapping entries are normalised, not trusted as written.
        let q: Position = serde_json::from_str(r#"{"next":1,"confirmed":[[5,8],2,[1,1],[6,9]]}"#).unwrap();
        assert_eq!((q.next, q.gaps(), q.last_line()), (3, 1, 9));
    }

    #[test]
    fn a_standing_keeps_the_two_runs_apart() {
        let mut earlier = Position::default();
        earlier.confirm_range(1, 3);
        earlier.confirm(6);
        let mut s = Standing::new(earlier);
        assert!(s.resumed() && s.skips(2) && !s.skips(4));
        s.confirm(4);
        assert_eq!(s.next(), 5);
        assert_eq!(s.position().next, 5);
        assert!(s.position().is_confirmed(6));
        assert!(!s.past_end(6) && s.past_end(5));
        s.forget_earlier();
        assert!(!s.resumed() && !s.skips(2) && s.skips(4));
        assert_eq!(s.position().next, 1);
        s.forget_all();
        assert!(!s.skips(4));
    }
}
