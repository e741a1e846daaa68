//! Conversions between [`Value`] and any serde type, and between `Value` and
//! JSON.
//!
//! Hand-written because the value types of the well-kept serde crates
//! (serde_json, rmpv, ciborium) each lose something we need: enum variants,
//! the int/float distinction, or bytes. The mapping is documented on
//! [`to_value`] and [`from_value`].
//!
//! Recursion here follows the depth of the value or the Rust type, as serde
//! does. Values from untrusted bytes have their depth bounded by the wire
//! decoder's limits before they reach this code.

use std::collections::btree_map;
use std::fmt::{self, Display};

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde::ser::{self, Serialize};

use super::literal::{is_ident, write_quoted};
use super::{Map, Value};

/// A value did not fit the requested type, or a Rust value cannot be
/// represented as a `Value`. Says where, as a path from the root:
/// `.attachment.size: expected int, found string`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("{}{}{}", .path, if .path.is_empty() { "" } else { ": " }, .message)]
#[diagnostic(
    code(drover::value::convert),
    help(
        "the value's shape must match the Rust type: records are maps with string keys, \
         enums are variants, `Option` is null or the value itself"
    )
)]
pub struct ValueError {
    path: String,
    message: String,
}

impl ValueError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            path: String::new(),
            message: message.into(),
        }
    }

    fn mismatch(expected: impl Display, found: &Value) -> Self {
        Self::new(format!("expected {expected}, found {}", found.kind()))
    }

    /// Where the error is, from the root: `.field`, `[3]`, `#Tag`, or empty
    /// for the root itself.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong, without the path.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error one level further down: `segment` is prepended, as
    /// errors bubble up from the leaf to the root.
    fn within(mut self, segment: Segment<'_>) -> Self {
        self.path.insert_str(0, &segment.to_string());
        self
    }
}

impl de::Error for ValueError {
    fn custom<T: Display>(msg: T) -> Self {
        Self::new(msg.to_string())
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::new(format!("expected {exp}, found {unexp}"))
    }
}

impl ser::Error for ValueError {
    fn custom<T: Display>(msg: T) -> Self {
        Self::new(msg.to_string())
    }
}

/// One step of an error path.
enum Segment<'a> {
    /// A map entry, by key: `.name` for an identifier, `["odd key"]` or
    /// `[42]` otherwise.
    Key(&'a Value),
    Index(usize),
    /// The payload of a variant.
    Variant(&'a str),
}

impl Display for Segment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Key(Value::Str(s)) if is_ident(s) => write!(f, ".{s}"),
            Segment::Key(Value::Str(s)) => {
                f.write_str("[")?;
                write_quoted(f, s)?;
                f.write_str("]")
            }
            Segment::Key(k) => write!(f, "[{k}]"),
            Segment::Index(i) => write!(f, "[{i}]"),
            Segment::Variant(tag) => {
                f.write_str("#")?;
                super::literal::write_name(f, tag)
            }
        }
    }
}

/// Converts any serializable value into a [`Value`].
///
/// bool, ints, floats, strings and chars, and bytes (with `serde_bytes`)
/// become `Bool`, `Int`, `Float`, `Str` and `Bytes`; a `u64` or `u128` above
/// `i64::MAX` is an error. Unit, unit structs and `None` become `Null`;
/// `Some(v)` becomes `v`. Sequences and tuples become `List`s, maps `Map`s,
/// structs `Map`s with string keys. An enum variant becomes a `Variant` whose
/// payload is `Null` (unit), the value (newtype), a `List` (tuple) or a `Map`
/// (struct): `Ok(1)` is `#Ok(1)`.
pub fn to_value<T: Serialize + ?Sized>(v: &T) -> Result<Value, ValueError> {
    v.serialize(ValueSerializer)
}

/// Converts a [`Value`] into any deserializable type, the inverse of
/// [`to_value`].
///
/// Lenient where JSON-shaped data meets typed code: an enum may come from a
/// `Variant`, a `Str` (a unit variant) or a one-entry `Map` `{tag: payload}`;
/// an `Option` is `None` for `Null` and `Some` for anything else; a float may
/// come from an `Int`; bytes may come from a list of ints.
pub fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, ValueError> {
    T::deserialize(v)
}

impl Value {
    /// This value as JSON, following serde_json's conventions: a variant is
    /// `{"Tag": payload}` (or `"Tag"` for a unit variant), bytes are an array
    /// of numbers, a map with a key that is not a string is an array of
    /// `[key, value]` pairs, and a non-finite float is `null`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            // `from_f64` is `None` exactly for NaN and infinities.
            Value::Float(x) => serde_json::Number::from_f64(*x).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Bytes(b) => J::Array(b.iter().map(|&byte| J::from(byte)).collect()),
            Value::List(items) => J::Array(items.iter().map(Value::to_json).collect()),
            Value::Map(m) if m.keys().all(|k| matches!(k, Value::Str(_))) => J::Object(
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.to_json())))
                    .collect(),
            ),
            Value::Map(m) => J::Array(
                m.iter()
                    .map(|(k, v)| J::Array(vec![k.to_json(), v.to_json()]))
                    .collect(),
            ),
            Value::Variant(v) if v.payload.is_null() => J::String(v.tag.clone()),
            Value::Variant(v) => {
                let mut object = serde_json::Map::new();
                object.insert(v.tag.clone(), v.payload.to_json());
                J::Object(object)
            }
        }
    }

    /// A value from JSON: integers that fit an `i64` become `Int`, other
    /// numbers `Float`; arrays become `List`s and objects `Map`s with string
    /// keys.
    pub fn from_json(j: serde_json::Value) -> Value {
        use serde_json::Value as J;
        match j {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                // A u64 beyond i64::MAX, or a float; both fit an f64 (the u64
                // approximately), and `as_f64` never fails without
                // serde_json's arbitrary_precision feature.
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Value::Str(s),
            J::Array(items) => Value::List(items.into_iter().map(Value::from_json).collect()),
            J::Object(object) => Value::Map(
                object
                    .into_iter()
                    .map(|(k, v)| (Value::Str(k), Value::from_json(v)))
                    .collect(),
            ),
        }
    }
}

// ---------------------------------------------------------------------------
// Serializer: Rust value -> Value

/// Builds a [`Value`] from any serializable Rust value.
struct ValueSerializer;

/// An `Int` from a conversion of `v` to i64 that may have failed.
fn int_from<T: Display>(v: T, convert: Option<i64>, ty: &str) -> Result<Value, ValueError> {
    convert
        .map(Value::Int)
        .ok_or_else(|| ValueError::new(format!("{ty} {v} does not fit in an int (i64)")))
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = ValueError;
    type SerializeSeq = SerializeList;
    type SerializeTuple = SerializeList;
    type SerializeTupleStruct = SerializeList;
    type SerializeTupleVariant = SerializeTupleVariant;
    type SerializeMap = SerializeMap;
    type SerializeStruct = SerializeRecord;
    type SerializeStructVariant = SerializeStructVariant;

    fn is_human_readable(&self) -> bool {
        // Values are shown to people and converted to JSON; types such as
        // addresses and UUIDs should appear as text. Must agree with the
        // deserializer below.
        true
    }

    fn serialize_bool(self, v: bool) -> Result<Value, ValueError> {
        Ok(Value::Bool(v))
    }

    fn serialize_i8(self, v: i8) -> Result<Value, ValueError> {
        Ok(Value::Int(v.into()))
    }

    fn serialize_i16(self, v: i16) -> Result<Value, ValueError> {
        Ok(Value::Int(v.into()))
    }

    fn serialize_i32(self, v: i32) -> Result<Value, ValueError> {
        Ok(Value::Int(v.into()))
    }

    fn serialize_i64(self, v: i64) -> Result<Value, ValueError> {
        Ok(Value::Int(v))
    }

    fn serialize_i128(self, v: i128) -> Result<Value, ValueError> {
        int_from(v, i64::try_from(v).ok(), "i128")
    }

    fn serialize_u8(self, v: u8) -> Result<Value, ValueError> {
        Ok(Value::Int(v.into()))
    }

    fn serialize_u16(self, v: u16) -> Result<Value, ValueError> {
        Ok(Value::Int(v.into()))
    }

    fn serialize_u32(self, v: u32) -> Result<Value, ValueError> {
        Ok(Value::Int(v.into()))
    }

    fn serialize_u64(self, v: u64) -> Result<Value, ValueError> {
        int_from(v, i64::try_from(v).ok(), "u64")
    }

    fn serialize_u128(self, v: u128) -> Result<Value, ValueError> {
        int_from(v, i64::try_from(v).ok(), "u128")
    }

    fn serialize_f32(self, v: f32) -> Result<Value, ValueError> {
        Ok(Value::Float(v.into()))
    }

    fn serialize_f64(self, v: f64) -> Result<Value, ValueError> {
        Ok(Value::Float(v))
    }

    fn serialize_char(self, v: char) -> Result<Value, ValueError> {
        Ok(Value::Str(v.to_string()))
    }

    fn serialize_str(self, v: &str) -> Result<Value, ValueError> {
        Ok(Value::Str(v.to_owned()))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Value, ValueError> {
        Ok(Value::Bytes(v.to_vec()))
    }

    fn serialize_none(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, ValueError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, ValueError> {
        Ok(Value::variant(variant, Value::Null))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        let payload = value
            .serialize(self)
            .map_err(|e| e.within(Segment::Variant(variant)))?;
        Ok(Value::variant(variant, payload))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<SerializeList, ValueError> {
        // The hint comes from a Rust value in memory, not from input bytes,
        // but cap it anyway: a lying `len` must not allocate.
        Ok(SerializeList {
            items: Vec::with_capacity(len.unwrap_or(0).min(1024)),
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<SerializeList, ValueError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SerializeList, ValueError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SerializeTupleVariant, ValueError> {
        Ok(SerializeTupleVariant {
            tag: variant,
            list: self.serialize_seq(Some(len))?,
        })
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<SerializeMap, ValueError> {
        Ok(SerializeMap {
            map: Map::new(),
            key: None,
        })
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<SerializeRecord, ValueError> {
        Ok(SerializeRecord { map: Map::new() })
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<SerializeStructVariant, ValueError> {
        Ok(SerializeStructVariant {
            tag: variant,
            record: SerializeRecord { map: Map::new() },
        })
    }
}

/// Builds a `List` from a sequence, tuple or tuple struct.
struct SerializeList {
    items: Vec<Value>,
}

impl SerializeList {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        let index = self.items.len();
        let v = to_value(value).map_err(|e| e.within(Segment::Index(index)))?;
        self.items.push(v);
        Ok(())
    }
}

impl ser::SerializeSeq for SerializeList {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::List(self.items))
    }
}

impl ser::SerializeTuple for SerializeList {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::List(self.items))
    }
}

impl ser::SerializeTupleStruct for SerializeList {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::List(self.items))
    }
}

/// Builds the `List` payload of a tuple variant.
struct SerializeTupleVariant {
    tag: &'static str,
    list: SerializeList,
}

impl ser::SerializeTupleVariant for SerializeTupleVariant {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.list
            .push(value)
            .map_err(|e| e.within(Segment::Variant(self.tag)))
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::variant(self.tag, Value::List(self.list.items)))
    }
}

/// Builds a `Map` from a map; keys may be any value.
struct SerializeMap {
    map: Map,
    /// The key given to `serialize_key`, waiting for its value.
    key: Option<Value>,
}

impl ser::SerializeMap for SerializeMap {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ValueError> {
        self.key = Some(to_value(key)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| ValueError::new("a map value was serialized before its key"))?;
        let v = to_value(value).map_err(|e| e.within(Segment::Key(&key)))?;
        self.map.insert(key, v);
        Ok(())
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Map(self.map))
    }
}

/// Builds a record: a `Map` with string keys.
struct SerializeRecord {
    map: Map,
}

impl SerializeRecord {
    fn field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        let key = Value::Str(name.to_owned());
        let v = to_value(value).map_err(|e| e.within(Segment::Key(&key)))?;
        self.map.insert(key, v);
        Ok(())
    }
}

impl ser::SerializeStruct for SerializeRecord {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        self.field(name, value)
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Map(self.map))
    }
}

/// Builds the record payload of a struct variant.
struct SerializeStructVariant {
    tag: &'static str,
    record: SerializeRecord,
}

impl ser::SerializeStructVariant for SerializeStructVariant {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        self.record
            .field(name, value)
            .map_err(|e| e.within(Segment::Variant(self.tag)))
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::variant(self.tag, Value::Map(self.record.map)))
    }
}

// ---------------------------------------------------------------------------
// Deserializer: Value -> Rust value

impl<'de> IntoDeserializer<'de, ValueError> for Value {
    type Deserializer = Value;

    fn into_deserializer(self) -> Value {
        self
    }
}

impl Value {
    /// Calls `visit_seq` over the items of a list, or the bytes of a `Bytes`
    /// as ints, checking afterwards that the visitor consumed every item.
    fn visit_list<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::List(items) => visit_items(items.into_iter(), visitor),
            Value::Bytes(bytes) => {
                visit_items(bytes.into_iter().map(|b| Value::Int(b.into())), visitor)
            }
            other => Err(ValueError::mismatch("list", &other)),
        }
    }
}

fn visit_items<'de, I, V>(items: I, visitor: V) -> Result<V::Value, ValueError>
where
    I: ExactSizeIterator<Item = Value>,
    V: Visitor<'de>,
{
    let len = items.len();
    let mut seq = ListAccess { items, index: 0 };
    let out = visitor.visit_seq(&mut seq)?;
    if seq.items.len() != 0 {
        // A tuple of 2 given a list of 3: saying so beats silently dropping.
        return Err(de::Error::invalid_length(
            len,
            &"fewer elements in the list",
        ));
    }
    Ok(out)
}

fn visit_record<'de, V: Visitor<'de>>(map: Map, visitor: V) -> Result<V::Value, ValueError> {
    let mut access = MapEntries {
        entries: map.into_iter(),
        pending: None,
    };
    visitor.visit_map(&mut access)
}

impl<'de> de::Deserializer<'de> for Value {
    type Error = ValueError;

    fn is_human_readable(&self) -> bool {
        true
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(i) => visitor.visit_i64(i),
            Value::Float(x) => visitor.visit_f64(x),
            Value::Str(s) => visitor.visit_string(s),
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            list @ Value::List(_) => list.visit_list(visitor),
            Value::Map(m) => visit_record(m, visitor),
            // Untyped targets (serde_json::Value, untagged enums) have no
            // notion of a variant; they see serde_json's `"Tag"` for a unit
            // variant and `{tag: payload}` otherwise, as `to_json` writes.
            Value::Variant(v) if v.payload.is_null() => visitor.visit_string(v.tag),
            Value::Variant(v) => {
                let v = *v;
                visitor.visit_map(SingleEntry {
                    tag: Some(v.tag),
                    payload: Some(v.payload),
                })
            }
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Bool(b) => visitor.visit_bool(b),
            other => Err(ValueError::mismatch("bool", &other)),
        }
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_i64(visitor)
    }

    // The visitor of each narrower type checks the range itself, with serde's
    // message ("invalid value: integer `300`, expected u8").
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Int(i) => visitor.visit_i64(i),
            other => Err(ValueError::mismatch("int", &other)),
        }
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Float(x) => visitor.visit_f64(x),
            // JSON writes `2.0` as `2`, so an int must do where a float is asked.
            Value::Int(i) => visitor.visit_f64(i as f64),
            other => Err(ValueError::mismatch("float", &other)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Str(s) => visitor.visit_string(s),
            other => Err(ValueError::mismatch("string", &other)),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_byte_buf(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            // Bytes that went through JSON come back as a list of numbers.
            list @ Value::List(_) => list.visit_list(visitor),
            other => Err(ValueError::mismatch("bytes", &other)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null => visitor.visit_unit(),
            other => Err(ValueError::mismatch("null", &other)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.visit_list(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.visit_list(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.visit_list(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Map(m) => visit_record(m, visitor),
            other => Err(ValueError::mismatch("map", &other)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self {
            Value::Map(m) => visit_record(m, visitor),
            // serde accepts a struct as the list of its fields in order.
            list @ Value::List(_) => list.visit_list(visitor),
            other => Err(ValueError::mismatch(format_args!("record {name}"), &other)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        let (tag, payload) = match self {
            Value::Variant(v) => {
                let v = *v;
                (v.tag, v.payload)
            }
            // JSON's unit variant: `"Tag"`.
            Value::Str(tag) => (tag, Value::Null),
            // JSON's other variants: `{"Tag": payload}`.
            Value::Map(m) if m.len() == 1 => match m.into_iter().next() {
                Some((Value::Str(tag), payload)) => (tag, payload),
                Some((key, _)) => {
                    return Err(ValueError::new(format!(
                        "expected variant {name}, found a map whose key is a {}",
                        key.kind()
                    )))
                }
                None => return Err(ValueError::new(format!("expected variant {name}"))),
            },
            other => return Err(ValueError::mismatch(format_args!("variant {name}"), &other)),
        };
        visitor.visit_enum(VariantValue { tag, payload })
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Str(s) => visitor.visit_string(s),
            // Field and variant indices, as compact formats write them.
            Value::Int(i) => visitor.visit_i64(i),
            other => Err(ValueError::mismatch("string", &other)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_unit()
    }
}

/// The items of a list, for `visit_seq`.
struct ListAccess<I> {
    items: I,
    index: usize,
}

impl<'de, I: ExactSizeIterator<Item = Value>> SeqAccess<'de> for ListAccess<I> {
    type Error = ValueError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ValueError> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        seed.deserialize(item)
            .map(Some)
            .map_err(|e| e.within(Segment::Index(index)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The entries of a map, for `visit_map`.
struct MapEntries {
    entries: btree_map::IntoIter<Value, Value>,
    /// The key just handed out (kept for error paths) and its value.
    pending: Option<(Value, Value)>,
}

impl<'de> MapAccess<'de> for MapEntries {
    type Error = ValueError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ValueError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let out = seed
            .deserialize(key.clone())
            .map_err(|e| e.within(Segment::Key(&key)))?;
        self.pending = Some((key, value));
        Ok(Some(out))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ValueError> {
        let (key, value) = self
            .pending
            .take()
            .ok_or_else(|| ValueError::new("a map value was asked for before its key"))?;
        seed.deserialize(value)
            .map_err(|e| e.within(Segment::Key(&key)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// A variant seen by an untyped target as the map `{tag: payload}`.
struct SingleEntry {
    tag: Option<String>,
    payload: Option<Value>,
}

impl<'de> MapAccess<'de> for SingleEntry {
    type Error = ValueError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ValueError> {
        match self.tag.take() {
            Some(tag) => seed.deserialize(Value::Str(tag)).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ValueError> {
        let payload = self
            .payload
            .take()
            .ok_or_else(|| ValueError::new("a variant's payload was asked for twice"))?;
        seed.deserialize(payload)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(usize::from(self.payload.is_some()))
    }
}

/// A variant being deserialized into an enum.
struct VariantValue {
    tag: String,
    payload: Value,
}

/// The payload of a variant, once its tag has chosen the enum's variant.
struct Payload {
    tag: String,
    payload: Value,
}

impl<'de> EnumAccess<'de> for VariantValue {
    type Error = ValueError;
    type Variant = Payload;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Payload), ValueError> {
        let chosen = seed.deserialize(Value::Str(self.tag.clone()))?;
        Ok((
            chosen,
            Payload {
                tag: self.tag,
                payload: self.payload,
            },
        ))
    }
}

impl<'de> VariantAccess<'de> for Payload {
    type Error = ValueError;

    fn unit_variant(self) -> Result<(), ValueError> {
        match self.payload {
            Value::Null => Ok(()),
            other => Err(ValueError::mismatch("no payload (a unit variant)", &other)
                .within(Segment::Variant(&self.tag))),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, ValueError> {
        let tag = self.tag;
        seed.deserialize(self.payload)
            .map_err(|e| e.within(Segment::Variant(&tag)))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        let tag = self.tag;
        self.payload
            .visit_list(visitor)
            .map_err(|e| e.within(Segment::Variant(&tag)))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        let result = match self.payload {
            Value::Map(m) => visit_record(m, visitor),
            list @ Value::List(_) => list.visit_list(visitor),
            other => Err(ValueError::mismatch("record", &other)),
        };
        result.map_err(|e| e.within(Segment::Variant(&self.tag)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Attachment {
        name: String,
        size: u32,
        #[serde(with = "serde_bytes")]
        digest: Vec<u8>,
        mime: Option<String>,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Empty,
        Circle(f64),
        Rect(i8, String),
        Poly {
            corners: Vec<(i32, i32)>,
            closed: bool,
        },
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Marker;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct CustomerId(u64);

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Point(i16, u16);

    /// Everything JSON can carry too: no int-keyed maps, no non-finite floats.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Email {
        customer: CustomerId,
        attachments: Vec<Attachment>,
        shape: Shape,
        verdict: Result<u8, String>,
        tags: BTreeMap<String, bool>,
        at: Point,
        pair: (char, i128),
        marker: Marker,
        nothing: (),
        ratio: f32,
        big: u128,
    }

    /// Adds what JSON cannot carry: int keys and arbitrary floats.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Archive {
        emails: BTreeMap<i64, Email>,
        shapes: Vec<Option<Shape>>,
    }

    fn attachment() -> impl Strategy<Value = Attachment> {
        (
            ".{0,6}",
            any::<u32>(),
            vec(any::<u8>(), 0..6),
            proptest::option::of("[a-z/]{0,8}"),
        )
            .prop_map(|(name, size, digest, mime)| Attachment {
                name,
                size,
                digest,
                mime,
            })
    }

    fn shape() -> impl Strategy<Value = Shape> {
        prop_oneof![
            Just(Shape::Empty),
            (-1e9f64..1e9).prop_map(Shape::Circle),
            (any::<i8>(), ".{0,4}").prop_map(|(a, b)| Shape::Rect(a, b)),
            (vec(any::<(i32, i32)>(), 0..3), any::<bool>())
                .prop_map(|(corners, closed)| Shape::Poly { corners, closed }),
        ]
    }

    fn email() -> impl Strategy<Value = Email> {
        (
            0..=i64::MAX as u64,
            vec(attachment(), 0..3),
            shape(),
            prop_oneof![any::<u8>().prop_map(Ok), ".{0,4}".prop_map(Err)],
            btree_map(".{0,4}", any::<bool>(), 0..3),
            any::<(i16, u16)>(),
            (any::<char>(), i64::MIN as i128..=i64::MAX as i128),
            -1e6f32..1e6,
            0..=i64::MAX as u128,
        )
            .prop_map(
                |(customer, attachments, shape, verdict, tags, at, pair, ratio, big)| Email {
                    customer: CustomerId(customer),
                    attachments,
                    shape,
                    verdict,
                    tags,
                    at: Point(at.0, at.1),
                    pair,
                    marker: Marker,
                    nothing: (),
                    ratio,
                    big,
                },
            )
    }

    proptest! {
        #[test]
        fn typed_values_round_trip(email in email()) {
            let v = to_value(&email).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(from_value::<Email>(v.clone()).ok(), Some(email), "{}", v);
        }

        #[test]
        fn int_keys_and_options_round_trip(
            emails in btree_map(any::<i64>(), email(), 0..3),
            shapes in vec(proptest::option::of(shape()), 0..4),
        ) {
            let archive = Archive { emails, shapes };
            let v = to_value(&archive).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(from_value::<Archive>(v).ok(), Some(archive));
        }

        #[test]
        fn any_floats_round_trip(x in any::<f64>()) {
            let v = to_value(&x).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back: f64 = from_value(v).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back.to_bits(), x.to_bits());
        }

        /// Our JSON is serde_json's JSON, and typed code reads it back: the
        /// lenient paths (enums from strings and one-entry objects, floats
        /// from ints, bytes from arrays) are what make this hold.
        #[test]
        fn json_agrees_with_serde_json(email in email()) {
            let ours = to_value(&email).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let theirs = serde_json::to_value(&email)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(ours.to_json(), theirs.clone());
            let back = from_value::<Email>(Value::from_json(theirs))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back, email);
        }

        /// Untyped targets see a variant as serde_json does. Bytes are
        /// handed over as bytes, which serde_json::Value refuses, so the
        /// emails here carry none.
        #[test]
        fn untyped_targets_see_json(mut email in email()) {
            email.attachments.clear();
            let v = to_value(&email).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let json = v.to_json();
            let untyped: serde_json::Value =
                from_value(v).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(untyped, json);
        }

        #[cfg(feature = "arbitrary")]
        #[test]
        fn json_round_trips_through_value(v in crate::arbitrary::value()) {
            // JSON loses kinds (bytes, variants, int keys), but what comes
            // back from JSON is a fixed point.
            let once = Value::from_json(v.to_json());
            prop_assert_eq!(Value::from_json(once.to_json()), once);
        }
    }

    #[test]
    fn enum_variants_map_to_value_variants() -> Result<(), ValueError> {
        assert_eq!(
            to_value(&Shape::Empty)?,
            Value::variant("Empty", Value::Null)
        );
        assert_eq!(
            to_value(&Shape::Circle(1.5))?,
            Value::variant("Circle", Value::Float(1.5))
        );
        assert_eq!(
            to_value(&Shape::Rect(1, "x".into()))?.to_string(),
            r#"#Rect([1, "x"])"#
        );
        assert_eq!(
            to_value(&Shape::Poly {
                corners: vec![],
                closed: true
            })?
            .to_string(),
            r#"#Poly({"closed": true, "corners": []})"#
        );
        let ok: Result<i32, String> = Ok(1);
        assert_eq!(to_value(&ok)?, Value::ok(Value::Int(1)));
        assert_eq!(to_value(&None::<i32>)?, Value::Null);
        assert_eq!(to_value(&Some(3u8))?, Value::Int(3));
        assert_eq!(to_value(&Marker)?, Value::Null);
        Ok(())
    }

    #[test]
    fn enums_read_from_json_shapes() -> Result<(), ValueError> {
        let unit: Shape = from_value(Value::from("Empty"))?;
        assert_eq!(unit, Shape::Empty);
        let newtype: Shape = from_value(Value::record([("Circle", Value::Int(2))]))?;
        assert_eq!(newtype, Shape::Circle(2.0));
        let option: Option<Shape> = from_value(Value::variant("Empty", Value::Null))?;
        assert_eq!(option, Some(Shape::Empty));
        Ok(())
    }

    #[test]
    fn big_ints_are_refused_on_the_way_in() {
        assert_eq!(
            to_value(&u64::MAX).map_err(|e| e.to_string()),
            Err("u64 18446744073709551615 does not fit in an int (i64)".to_owned())
        );
        assert_eq!(to_value(&(i64::MAX as u64)), Ok(Value::Int(i64::MAX)));
        assert_eq!(to_value(&(i64::MIN as i128)), Ok(Value::Int(i64::MIN)));
        let nested = BTreeMap::from([("limits", vec![0u128, u128::MAX])]);
        assert_eq!(
            to_value(&nested).map_err(|e| e.to_string()),
            Err(format!(
                ".limits[1]: u128 {} does not fit in an int (i64)",
                u128::MAX
            ))
        );
    }

    fn error_of<T: DeserializeOwned + fmt::Debug>(v: Value) -> String {
        match from_value::<T>(v) {
            Ok(t) => format!("unexpectedly read {t:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn errors_say_where() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Mail {
            attachment: Attachment,
        }
        let attachment = |size: Value| {
            Value::record([(
                "attachment",
                Value::record([
                    ("name", Value::from("a.pdf")),
                    ("size", size),
                    ("digest", Value::Bytes(vec![])),
                    ("mime", Value::Null),
                ]),
            )])
        };
        assert_eq!(
            error_of::<Mail>(attachment(Value::from("big"))),
            ".attachment.size: expected int, found string"
        );
        assert_eq!(
            error_of::<Mail>(attachment(Value::Int(-1))),
            ".attachment.size: invalid value: integer `-1`, expected u32"
        );
        assert_eq!(
            error_of::<Mail>(Value::record([(
                "attachment",
                Value::record([("name", Value::from("a"))])
            )])),
            ".attachment: missing field `size`"
        );
        assert_eq!(
            error_of::<Vec<Shape>>(Value::List(vec![
                Value::variant("Empty", Value::Null),
                Value::variant("Rect", Value::List(vec![Value::Int(1), Value::Int(2)])),
            ])),
            "[1]#Rect[1]: expected string, found int"
        );
        assert_eq!(
            error_of::<Shape>(Value::variant("Triangle", Value::Null)),
            "unknown variant `Triangle`, expected one of `Empty`, `Circle`, `Rect`, `Poly`"
        );
        assert_eq!(
            error_of::<Shape>(Value::variant("Empty", Value::Int(1))),
            "#Empty: expected no payload (a unit variant), found int"
        );
        assert_eq!(
            error_of::<Shape>(Value::Int(1)),
            "expected variant Shape, found int"
        );
        assert_eq!(
            error_of::<BTreeMap<String, (u8, u8)>>(Value::Map(Map::from([(
                Value::from("odd key"),
                Value::List(vec![Value::Int(1), Value::Int(2), Value::Int(3)])
            )]))),
            r#"["odd key"]: invalid length 3, expected fewer elements in the list"#
        );
        assert_eq!(
            error_of::<BTreeMap<i64, bool>>(Value::Map(Map::from([(Value::Int(7), Value::Null)]))),
            "[7]: expected bool, found null"
        );
    }

    #[test]
    fn errors_are_diagnostics() {
        let err = from_value::<bool>(Value::Null).unwrap_err();
        assert_eq!(err.path(), "");
        assert_eq!(err.message(), "expected bool, found null");
        let rendered = crate::diagnostics::render(&err);
        assert!(rendered.contains("drover::value::convert"), "{rendered}");
        assert!(
            rendered.contains("records are maps with string keys"),
            "{rendered}"
        );
    }

    #[test]
    fn json_conventions() {
        let v = Value::List(vec![
            Value::Bytes(vec![1, 2]),
            Value::Float(f64::NAN),
            Value::Float(f64::NEG_INFINITY),
            Value::Map(Map::from([(Value::Int(1), Value::from("one"))])),
            Value::variant("None", Value::Null),
            Value::err(Value::from("boom")),
            Value::record([("a", Value::Float(0.5))]),
        ]);
        assert_eq!(
            v.to_json().to_string(),
            r#"[[1,2],null,null,[[1,"one"]],"None",{"Err":"boom"},{"a":0.5}]"#
        );
        let j: serde_json::Value = serde_json::from_str(
            r#"{"n": 18446744073709551615, "i": -3, "f": 2.5, "l": [true, null]}"#,
        )
        .unwrap_or_default();
        assert_eq!(
            Value::from_json(j).to_string(),
            r#"{"f": 2.5, "i": -3, "l": [true, null], "n": 1.8446744073709552e19}"#
        );
    }
}
