//! Tolerant deserialisation of the wire shapes: a field of the wrong type becomes a value that says so
//! instead of an error that aborts the whole document.
//!
//! serde stops at the first type error, so with plain derives one record whose `data` is `null` makes the
//! whole Firehose batch unreadable, and one event whose `timestamp` is a string loses every event of its
//! payload. Here every field of outside data is a [`Field`]: the parse always gets to the end of a
//! syntactically valid document in one pass, and each record or event is judged on its own afterwards.
//! Only JSON syntax errors (and duplicate keys) still end a document.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, value::MapAccessDeserializer, Deserialize, Deserializer, IgnoredAny, MapAccess};
use serde::de::{SeqAccess, Visitor};

/// What a JSON field held when it was not what the shape expects: `"a number"`, `"an object"`...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wrong(pub &'static str);

impl fmt::Display for Wrong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A field of outside data: absent, `null`, a value of the expected type, or something else.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Field<T> {
    #[default]
    Missing,
    Null,
    Value(T),
    Wrong(Wrong),
}

impl<T> Field<T> {
    /// The value, or why there is none, in words for an error message about `key`.
    pub fn require(self, key: &str) -> Result<T, String> {
        match self {
            Field::Value(v) => Ok(v),
            Field::Missing => Err(format!("{key} is missing")),
            Field::Null => Err(format!("{key} is null")),
            Field::Wrong(found) => Err(format!("{key} is {found}")),
        }
    }

    /// The value when present; `null` and absence both mean none, a wrong type is an error.
    pub fn optional(self, key: &str) -> Result<Option<T>, String> {
        match self {
            Field::Value(v) => Ok(Some(v)),
            Field::Missing | Field::Null => Ok(None),
            Field::Wrong(found) => Err(format!("{key} is {found}")),
        }
    }

    /// The value when there is one of the right type; anything else is none. For fields that only
    /// decorate (a location in a message, a hint), where a wrong type must not cost the record.
    pub fn ok(self) -> Option<T> {
        match self {
            Field::Value(v) => Some(v),
            _ => None,
        }
    }

    /// Whether the key was there at all, whatever it held.
    pub fn is_present(&self) -> bool {
        !matches!(self, Field::Missing)
    }
}

/// How a type is built from each kind of JSON value; every kind it does not take is a [`Wrong`].
pub trait Lenient<'de>: Sized {
    fn from_str(_s: Cow<'de, str>) -> Result<Self, Wrong> {
        Err(Wrong("a string"))
    }
    fn from_i64(_n: i64) -> Result<Self, Wrong> {
        Err(Wrong("a number"))
    }
    fn from_u64(_n: u64) -> Result<Self, Wrong> {
        Err(Wrong("a number"))
    }
    fn from_f64(_n: f64) -> Result<Self, Wrong> {
        Err(Wrong("a number"))
    }
    fn from_map<A: MapAccess<'de>>(mut map: A) -> Result<Result<Self, Wrong>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Err(Wrong("an object")))
    }
    fn from_seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Result<Self, Wrong>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err(Wrong("an array")))
    }
}

impl<'de, T: Lenient<'de>> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldVisitor(PhantomData))
    }
}

struct FieldVisitor<T>(PhantomData<T>);

fn field<T>(result: Result<T, Wrong>) -> Field<T> {
    match result {
        Ok(v) => Field::Value(v),
        Err(wrong) => Field::Wrong(wrong),
    }
}

impl<'de, T: Lenient<'de>> Visitor<'de> for FieldVisitor<T> {
    type Value = Field<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _v: bool) -> Result<Self::Value, E> {
        Ok(Field::Wrong(Wrong("a boolean")))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(field(T::from_i64(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(field(T::from_u64(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(field(T::from_f64(v)))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(field(T::from_str(Cow::Borrowed(v))))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(field(T::from_str(Cow::Owned(v.to_owned()))))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(field(T::from_str(Cow::Owned(v))))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Field::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Field::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(field(T::from_map(map)?))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Ok(field(T::from_seq(seq)?))
    }
}

/// Text, borrowed from the input whenever it holds no escapes.
impl<'de: 'a, 'a> Lenient<'de> for Cow<'a, str> {
    fn from_str(s: Cow<'de, str>) -> Result<Self, Wrong> {
        Ok(s)
    }
}

/// An identifier sent as a string by AWS and as a number by some emulators: kept as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Id<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Lenient<'de> for Id<'a> {
    fn from_str(s: Cow<'de, str>) -> Result<Self, Wrong> {
        Ok(Id(s))
    }
    fn from_i64(n: i64) -> Result<Self, Wrong> {
        Ok(Id(Cow::Owned(n.to_string())))
    }
    fn from_u64(n: u64) -> Result<Self, Wrong> {
        Ok(Id(Cow::Owned(n.to_string())))
    }
    fn from_f64(n: f64) -> Result<Self, Wrong> {
        Ok(Id(Cow::Owned(n.to_string())))
    }
}

/// Epoch milliseconds: an integer, or a float (seen from some producers) truncated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Millis(pub i64);

impl Lenient<'_> for Millis {
    fn from_i64(n: i64) -> Result<Self, Wrong> {
        Ok(Millis(n))
    }
    fn from_u64(n: u64) -> Result<Self, Wrong> {
        i64::try_from(n)
            .map(Millis)
            .map_err(|_| Wrong("a number out of range"))
    }
    fn from_f64(n: f64) -> Result<Self, Wrong> {
        if n.is_finite() && n.abs() < 9.0e15 {
            Ok(Millis(n as i64))
        } else {
            Err(Wrong("a number out of range"))
        }
    }
}

/// A list whose items are each judged on their own.
impl<'de, T: Lenient<'de>> Lenient<'de> for Vec<Field<T>> {
    fn from_seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Result<Self, Wrong>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element::<Field<T>>()? {
            items.push(item);
        }
        Ok(Ok(items))
    }
}

/// A list of plain strings; an item of another type makes the whole list wrong.
impl<'de: 'a, 'a> Lenient<'de> for Vec<Cow<'a, str>> {
    fn from_seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Result<Self, Wrong>, A::Error> {
        let mut items = Vec::new();
        let mut wrong = None;
        while let Some(item) = seq.next_element::<Field<Cow<'a, str>>>()? {
            match item {
                Field::Value(s) => items.push(s),
                _ => wrong = Some(Wrong("an array holding something other than strings")),
            }
        }
        Ok(wrong.map_or(Ok(items), Err))
    }
}

/// Makes a struct whose fields are all [`Field`]s (derived `Deserialize`) usable as a lenient object: a JSON
/// object goes through the derive, any other value is a [`Wrong`].
macro_rules! lenient_object {
    ($ty:ident) => {
        impl<'de: 'a, 'a> $crate::input::lenient::Lenient<'de> for $ty<'a> {
            fn from_map<A: serde::de::MapAccess<'de>>(
                map: A,
            ) -> Result<Result<Self, $crate::input::lenient::Wrong>, A::Error> {
                $crate::input::lenient::object(map)
            }
        }
    };
}
pub(crate) use lenient_object;

pub fn object<'de, T: Deserialize<'de>, A: MapAccess<'de>>(map: A) -> Result<Result<T, Wrong>, A::Error> {
    T::deserialize(MapAccessDeserializer::new(map)).map(Ok)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc<'a> {
        #[serde(default, borrow)]
        name: Field<Cow<'a, str>>,
        #[serde(default)]
        at: Field<Millis>,
        #[serde(default, borrow)]
        id: Field<Id<'a>>,
        #[serde(default, borrow)]
        items: Field<Vec<Field<Cow<'a, str>>>>,
    }

    #[test]
    fn every_wrong_type_is_named_and_the_document_still_parses() {
        let doc: Doc =
            serde_json::from_str(r#"{"name":5,"at":"oops","id":{"x":[1]},"items":["a",null,3]}"#).unwrap();
        assert_eq!(doc.name, Field::Wrong(Wrong("a number")));
        assert_eq!(doc.at.require("at").unwrap_err(), "at is a string");
        assert_eq!(doc.id.require("id").unwrap_err(), "id is an object");
        let items = doc.items.require("items").unwrap();
        assert_eq!(items[0], Field::Value(Cow::Borrowed("a")));
        assert_eq!(items[1], Field::Null);
        assert_eq!(items[2], Field::Wrong(Wrong("a number")));
    }

    #[test]
    fn values_of_the_right_type_are_borrowed_when_possible() {
        let doc: Doc = serde_json::from_str(r#"{"name":"plain","at":12.9,"id":42}"#).unwrap();
        assert!(matches!(doc.name, Field::Value(Cow::Borrowed("plain"))));
        assert_eq!(doc.at, Field::Value(Millis(12)));
        assert_eq!(doc.id.require("id").unwrap().0, "42");
        assert_eq!(doc.items, Field::Missing);
        let escaped: Doc = serde_json::from_str(r#"{"name":"a\/b","at":null}"#).unwrap();
        assert_eq!(escaped.name.require("name").unwrap(), "a/b");
        assert_eq!(escaped.at.require("at").unwrap_err(), "at is null");
    }

    #[test]
    fn syntax_errors_still_fail() {
        assert!(serde_json::from_str::<Doc>(r#"{"name":"x""#).is_err());
    }
}
