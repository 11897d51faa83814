//! Tolerant field readers: AWS sends the same field as a number in one sample
//! and a string in another.

use serde::Deserialize;
use serde::de::{Deserializer, Error};
use serde_json::Value;

fn scalar_text<E: Error>(value: Value) -> Result<Option<String>, E> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(if b { "True" } else { "False" }.to_owned())),
        Value::Array(_) => Err(E::custom("expected a string or number, found an array")),
        Value::Object(_) => Err(E::custom("expected a string or number, found an object")),
    }
}

/// A required string that may arrive as a number.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    scalar_text(Value::deserialize(d)?)?
        .ok_or_else(|| D::Error::custom("expected a string, found null"))
}

/// A string that may arrive as a number; null means empty.
pub fn string_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(scalar_text(Value::deserialize(d)?)?.unwrap_or_default())
}

/// An optional string that may arrive as a number or boolean.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    scalar_text(Value::deserialize(d)?)
}

/// An optional number that may arrive as a numeric string.
pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("expected a number, found {s:?}"))),
        other => Err(D::Error::custom(format!(
            "expected a number, found {other}"
        ))),
    }
}

/// An optional boolean that may arrive as "true"/"True"/"false".
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        other => Err(D::Error::custom(format!(
            "expected a boolean, found {other}"
        ))),
    }
}

/// A list of strings; a lone string or null is accepted too.
pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .filter_map(|item| scalar_text::<D::Error>(item).transpose())
            .collect(),
        other => Ok(scalar_text::<D::Error>(other)?.into_iter().collect()),
    }
}
