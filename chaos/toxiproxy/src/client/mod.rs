//! A thin async client for the Toxiproxy HTTP API, used by the chaos runner against our embedded
//! server and against real Toxiproxy alike.
//!
//! Not `toxiproxy_rust` (0.1.6), which the user first asked for: it is blocking (reqwest's
//! blocking client, which panics when called inside an async runtime), it ignores HTTP status
//! codes (adding a toxic whose name exists silently keeps the old toxic; enable/disable/reset
//! take any answer as success), it has no `reset_peer` toxic, and it puts no timeout on its
//! calls. Here every call is async, has a timeout (5 s unless `with_timeout`), checks the status
//! code against the documented one, and can be recorded (`with_recorder`).

mod error;
mod exchange;
mod metrics;

pub use error::Error;
pub use exchange::{Exchange, Recorder};
pub use metrics::{MetricsParseError, ProxyBytes, ProxyMetrics};

use crate::api::{PopulateResponse, Proxy, ProxyConfig, ProxyUpdate, Toxic, ToxicUpdate};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Control calls are small; one that takes longer than this is stuck (removing toxics under
/// heavy traffic has hung Toxiproxy's API).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    timeout: Duration,
    recorder: Option<Recorder>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("timeout", &self.timeout)
            .field("recording", &self.recorder.is_some())
            .finish()
    }
}

impl Client {
    /// `base_url` is the API's root, e.g. `http://127.0.0.1:8474`.
    pub fn new(base_url: impl AsRef<str>) -> Result<Self, Error> {
        let text = base_url.as_ref();
        let invalid = |reason: String| Error::InvalidUrl {
            url: text.to_owned(),
            reason,
        };
        let base = Url::parse(text).map_err(|err| invalid(err.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid("expected an http:// URL".into()));
        }
        let http = reqwest::Client::builder().build().map_err(Error::Setup)?;
        Ok(Self {
            http,
            base,
            timeout: DEFAULT_TIMEOUT,
            recorder: None,
        })
    }

    /// The timeout of each call, from sending the request to the end of the answer's body.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Reports every call, successful or not, to `recorder` once it has finished.
    pub fn with_recorder(mut self, recorder: Recorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// The server's version, e.g. `2.12.0` (Toxiproxy before 2.7 answered plain text).
    pub async fn version(&self) -> Result<String, Error> {
        self.call(
            Method::GET,
            &["version"],
            None,
            200,
            |body| match serde_json::from_str::<Value>(body) {
                Ok(Value::Object(map)) => match map.get("version") {
                    Some(Value::String(version)) => Ok(version.clone()),
                    _ => Err("no version field".into()),
                },
                _ => Ok(body.trim().to_owned()),
            },
        )
        .await
    }

    pub async fn proxies(&self) -> Result<BTreeMap<String, Proxy>, Error> {
        self.call(Method::GET, &["proxies"], None, 200, decode)
            .await
    }

    pub async fn proxy(&self, name: &str) -> Result<Proxy, Error> {
        self.call(Method::GET, &["proxies", name], None, 200, decode)
            .await
    }

    /// 201; 409 if the name exists, 400 if a field is missing.
    pub async fn create_proxy(&self, config: &ProxyConfig) -> Result<Proxy, Error> {
        let request = to_json(config);
        self.call(Method::POST, &["proxies"], Some(request), 201, decode)
            .await
    }

    /// Creates or replaces proxies in one call; an existing proxy with the same listen address
    /// and upstream is kept as it is.
    pub async fn populate(&self, configs: &[ProxyConfig]) -> Result<Vec<Proxy>, Error> {
        let request = to_json(configs);
        self.call(Method::POST, &["populate"], Some(request), 201, |body| {
            decode::<PopulateResponse>(body).map(|answer| answer.proxies)
        })
        .await
    }

    /// Disabling closes the proxy's listener and every live connection through it.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<Proxy, Error> {
        self.update_proxy(
            name,
            &ProxyUpdate {
                enabled: Some(enabled),
                ..ProxyUpdate::default()
            },
        )
        .await
    }

    /// A changed listen address or upstream restarts the proxy.
    pub async fn update_proxy(&self, name: &str, update: &ProxyUpdate) -> Result<Proxy, Error> {
        let request = to_json(update);
        self.call(
            Method::PATCH,
            &["proxies", name],
            Some(request),
            200,
            decode,
        )
        .await
    }

    pub async fn delete_proxy(&self, name: &str) -> Result<(), Error> {
        self.call(Method::DELETE, &["proxies", name], None, 204, ignore)
            .await
    }

    pub async fn toxics(&self, proxy: &str) -> Result<Vec<Toxic>, Error> {
        self.call(
            Method::GET,
            &["proxies", proxy, "toxics"],
            None,
            200,
            decode,
        )
        .await
    }

    pub async fn toxic(&self, proxy: &str, name: &str) -> Result<Toxic, Error> {
        self.call(
            Method::GET,
            &["proxies", proxy, "toxics", name],
            None,
            200,
            decode,
        )
        .await
    }

    /// 200 (not 201); 409 if a toxic of that name exists, 400 for a bad type or stream.
    pub async fn add_toxic(&self, proxy: &str, toxic: &Toxic) -> Result<Toxic, Error> {
        let request = to_json(toxic);
        self.call(
            Method::POST,
            &["proxies", proxy, "toxics"],
            Some(request),
            200,
            decode,
        )
        .await
    }

    /// Changes attributes (merged over the current ones) and/or toxicity; name, type and stream
    /// cannot change. Pass a `&Toxic`, a `ToxicUpdate` or an attribute map.
    pub async fn update_toxic(
        &self,
        proxy: &str,
        name: &str,
        update: impl Into<ToxicUpdate>,
    ) -> Result<Toxic, Error> {
        let request = to_json(&update.into());
        self.call(
            Method::PATCH,
            &["proxies", proxy, "toxics", name],
            Some(request),
            200,
            decode,
        )
        .await
    }

    /// Removing a timeout toxic closes the connections it was holding.
    pub async fn remove_toxic(&self, proxy: &str, name: &str) -> Result<(), Error> {
        self.call(
            Method::DELETE,
            &["proxies", proxy, "toxics", name],
            None,
            204,
            ignore,
        )
        .await
    }

    /// Enables every proxy and removes every toxic; proxies are kept.
    pub async fn reset(&self) -> Result<(), Error> {
        self.call(Method::POST, &["reset"], None, 204, ignore).await
    }

    /// Bytes through each proxy, from `/metrics`. Real Toxiproxy serves it only when started
    /// with `-proxy-metrics`, and adds a connection's bytes when that connection closes.
    pub async fn metrics(&self) -> Result<ProxyMetrics, Error> {
        let answer = self
            .call(Method::GET, &["metrics"], None, 200, |body| {
                ProxyMetrics::parse(body).map_err(|err| err.to_string())
            })
            .await;
        match answer {
            Err(Error::Api { status: 404, .. }) => Err(Error::MetricsDisabled {
                base_url: self.base.to_string(),
                status: 404,
            }),
            other => other,
        }
    }

    /// One exchange: send, wait (bounded), check the status, decode, record.
    async fn call<T>(
        &self,
        method: Method,
        segments: &[&str],
        request: Option<Value>,
        expected: u16,
        decode: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, Error> {
        let url = self.url(segments);
        let path = url.path().to_owned();
        let started_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
            });
        let started = Instant::now();
        let mut exchange = Exchange {
            method: method.to_string(),
            path: path.clone(),
            request: request.clone(),
            status: None,
            response: Value::Null,
            error: None,
            started_at_ms,
            elapsed_ms: 0,
        };

        let answer = self.send(method.clone(), url, request).await;
        let outcome = match answer {
            Ok((status, body)) => {
                exchange.status = Some(status);
                exchange.response = exchange::response_value(&body);
                if status == expected {
                    decode(&body).map_err(|reason| Error::Decode {
                        method: method.to_string(),
                        path: path.clone(),
                        reason,
                    })
                } else {
                    Err(Error::Api {
                        method: method.to_string(),
                        path: path.clone(),
                        status,
                        message: error_message(&body),
                    })
                }
            }
            Err(SendError::Timeout) => Err(Error::Timeout {
                method: method.to_string(),
                path: path.clone(),
                timeout: self.timeout,
            }),
            Err(SendError::Transport(source)) => Err(Error::Transport {
                method: method.to_string(),
                path: path.clone(),
                source,
            }),
        };

        exchange.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        exchange.error = outcome.as_ref().err().map(ToString::to_string);
        if let Some(recorder) = &self.recorder {
            recorder(&exchange);
        }
        outcome
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        request: Option<Value>,
    ) -> Result<(u16, String), SendError> {
        let mut builder = self.http.request(method, url);
        if let Some(request) = &request {
            builder = builder.json(request);
        }
        let exchange = async {
            let response = builder.send().await?;
            let status = response.status().as_u16();
            let body = response.text().await?;
            Ok::<_, reqwest::Error>((status, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(err)) => Err(SendError::Transport(err)),
            Err(_) => Err(SendError::Timeout),
        }
    }

    /// Names go in as path segments, percent-encoded, so any proxy or toxic name is safe.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        // `new` refused URLs that cannot be a base, so this always has segments to extend.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }
}

enum SendError {
    Timeout,
    Transport(reqwest::Error),
}

fn decode<T: DeserializeOwned>(body: &str) -> Result<T, String> {
    serde_json::from_str(body).map_err(|err| err.to_string())
}

fn ignore(_: &str) -> Result<(), String> {
    Ok(())
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Value {
    // Our request types are plain structs of strings, numbers and maps: they always serialize.
    serde_json::to_value(value).unwrap_or_else(|err| json!({ "unserializable": err.to_string() }))
}

/// The `error` field of Toxiproxy's error body, or the body itself (e.g. Go's 404 page).
fn error_message(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(map)) => match map.get("error") {
            Some(Value::String(message)) => message.clone(),
            _ => body.trim().to_owned(),
        },
        _ => body.trim().to_owned(),
    }
}
