//! Conversions between `Value` and any serde type.
use super::Value;

/// A value did not fit the requested type, or a type could not be represented.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

pub fn to_value<T: serde::Serialize + ?Sized>(_v: &T) -> Result<Value, ValueError> {
    Err(ValueError("not yet".into()))
}

pub fn from_value<T: serde::de::DeserializeOwned>(_v: Value) -> Result<T, ValueError> {
    Err(ValueError("not yet".into()))
}
