//! Calls from the gateway to the services behind it, through the kit's resilient client
//! (bulkhead, circuit breaker, timeout), and the mapping of their failures to answers: an open
//! circuit or a full bulkhead is a fast 503 with `Retry-After`, a timeout 504, an unreachable
//! service 502.

use std::time::Duration;

use axum::{
    body::Bytes,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse as _, Response},
};
use faultline_kit::{
    http::ApiError,
    resilience::{FailureKind, classify, client::ResilientClient},
};

use crate::configuration::UpstreamSettings;

/// One service behind the gateway.
#[derive(Debug, Clone)]
pub struct Upstream {
    name: &'static str,
    base_url: String,
    client: ResilientClient,
    open_for: Duration,
}

/// An upstream's answer, passed on as it is.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Headers of an upstream answer the gateway passes on.
const PASSED_ON: [&str; 4] = [
    "content-type",
    "location",
    "retry-after",
    "idempotent-replayed",
];

impl Answer {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(ApiError::internal)
    }

    pub fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        for name in PASSED_ON {
            if let Some(value) = self.headers.get(name) {
                response.headers_mut().insert(name, value.clone());
            }
        }
        response
    }
}

impl Upstream {
    pub fn new(
        name: &'static str,
        base_url: &str,
        settings: &UpstreamSettings,
    ) -> anyhow::Result<Self> {
        let policy = settings.client.policy();
        Ok(Self {
            name,
            base_url: base_url.trim_end_matches('/').to_owned(),
            client: ResilientClient::new(name, &policy)?,
            open_for: policy.breaker.open_for,
        })
    }

    pub async fn get(&self, path: &str) -> Result<Answer, ApiError> {
        let request = self
            .client
            .http()
            .get(format!("{}{path}", self.base_url))
            .build()
            .map_err(ApiError::internal)?;
        self.send(request).await
    }

    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Answer, ApiError> {
        let mut request = self
            .client
            .http()
            .post(format!("{}{path}", self.base_url))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.build().map_err(ApiError::internal)?)
            .await
    }

    async fn send(&self, request: reqwest::Request) -> Result<Answer, ApiError> {
        match self.client.send(request).await {
            Ok(response) => {
                let status = response.status();
                let headers = response.headers().clone();
                let body = response
                    .bytes()
                    .await
                    .map_err(|e| self.failed(FailureKind::Other, &e.to_string()))?;
                Ok(Answer {
                    status,
                    headers,
                    body,
                })
            }
            Err(error) => Err(self.failed(classify(error.as_ref()), &error.to_string())),
        }
    }

    fn failed(&self, kind: FailureKind, detail: &str) -> ApiError {
        tracing::warn!(upstream = self.name, failure = kind.as_str(), %detail, "upstream call failed");
        match kind {
            FailureKind::CircuitOpen => {
                let seconds = self.open_for.as_secs().max(1);
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{} is unavailable (circuit open); retry later", self.name),
                )
                .with_header(header::RETRY_AFTER, HeaderValue::from(seconds))
            }
            FailureKind::Overloaded => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{} is saturated; retry later", self.name),
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1")),
            FailureKind::Timeout => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!("{} did not answer in time", self.name),
            ),
            FailureKind::Connect | FailureKind::Other => ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("{} is unreachable", self.name),
            ),
        }
    }
}

/// Every service behind the gateway.
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub reservation: Upstream,
    pub inventory: Upstream,
    pub payment: Upstream,
}

impl Upstreams {
    pub fn new(settings: &UpstreamSettings) -> anyhow::Result<Self> {
        Ok(Self {
            reservation: Upstream::new("reservation", &settings.reservation_url, settings)?,
            inventory: Upstream::new("inventory", &settings.inventory_url, settings)?,
            payment: Upstream::new("payment", &settings.payment_url, settings)?,
        })
    }
}
