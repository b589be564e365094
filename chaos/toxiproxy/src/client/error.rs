//! What a client call can fail with, each carrying the call it belongs to.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid Toxiproxy URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error("could not build the HTTP client: {0}")]
    Setup(#[source] reqwest::Error),

    /// The server answered with another status than the documented one; `message` is the
    /// `error` field of its JSON body, or the body itself.
    #[error("{method} {path}: HTTP {status}: {message}")]
    Api {
        method: String,
        path: String,
        status: u16,
        message: String,
    },

    #[error("{method} {path}: no complete answer within {timeout:?}")]
    Timeout {
        method: String,
        path: String,
        timeout: Duration,
    },

    #[error("{method} {path}: {source}")]
    Transport {
        method: String,
        path: String,
        #[source]
        source: reqwest::Error,
    },

    /// The documented status came with a body that is not what the API documents.
    #[error("{method} {path}: unexpected answer: {reason}")]
    Decode {
        method: String,
        path: String,
        reason: String,
    },

    #[error(
        "Toxiproxy at {base_url} serves no /metrics: start it with -proxy-metrics \
         (GET /metrics answered HTTP {status})"
    )]
    MetricsDisabled { base_url: String, status: u16 },
}

impl Error {
    /// The HTTP status the server answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::MetricsDisabled { status, .. } => Some(*status),
            _ => None,
        }
    }
}
