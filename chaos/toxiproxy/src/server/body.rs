//! Reading request bodies the way Go's `encoding/json` reads them into Toxiproxy's structs:
//! unknown fields ignored, `null` leaves the default, a wrongly typed field is a bad body.

use crate::server::error::ApiError;
use serde_json::{Map, Value};

pub(crate) fn json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(ApiError::bad_body)
}

pub(crate) fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    into_object(json(body)?)
}

pub(crate) fn into_object(value: Value) -> Result<Map<String, Value>, ApiError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(ApiError::bad_body(format!(
            "expected a JSON object, got {other}"
        ))),
    }
}

pub(crate) fn string(input: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(wrong_type(field, "a string", other)),
    }
}

pub(crate) fn boolean(input: &Map<String, Value>, field: &str) -> Result<Option<bool>, ApiError> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong_type(field, "a boolean", other)),
    }
}

pub(crate) fn number(input: &Map<String, Value>, field: &str) -> Result<Option<f64>, ApiError> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(wrong_type(field, "a number", other)),
    }
}

pub(crate) fn object_field<'a>(
    input: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a Map<String, Value>>, ApiError> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(wrong_type(field, "an object", other)),
    }
}

fn wrong_type(field: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::bad_body(format!("field {field} must be {expected}, got {got}"))
}
