//! The record of one control call, handed to an optional recorder so the chaos runner's history
//! holds every call exactly as it went over the wire, failed ones included.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// Called once per client call, after it finished, successful or not.
pub type Recorder = Arc<dyn Fn(&Exchange) + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    pub method: String,
    /// The request path as sent (percent-encoded), without the base URL.
    pub path: String,
    pub request: Option<Value>,
    /// `None` when no answer came (transport error, timeout).
    pub status: Option<u16>,
    /// The answer's JSON, or its text as a JSON string when it is not JSON; `null` when empty
    /// or absent.
    pub response: Value,
    /// The call's error as the caller saw it, including a status the API does not document.
    pub error: Option<String>,
    /// Unix time in milliseconds when the call started.
    pub started_at_ms: u64,
    pub elapsed_ms: u64,
}

/// JSON if the body is JSON, else the body as a string.
pub(crate) fn response_value(body: &str) -> Value {
    if body.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()))
}
