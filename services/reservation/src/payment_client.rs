//! The reservation → payment HTTP client: charge and refund with step-scoped idempotency keys,
//! through the kit's resilient stack (bulkhead, circuit breaker, timeout).
//!
//! Every answer is sorted into three outcomes, because the saga treats them differently:
//! done (payment answered with a decision), not sent (certainly no effect: connection refused,
//! circuit open, bulkhead full — the breaker's fallback), or unknown (timeout, 5xx, 409 in
//! flight — payment may have committed, so only a retry with the same key can tell).

use faultline_contracts::http::{ChargeRequest, ChargeResponse, RefundRequest, RefundResponse};
use faultline_kit::resilience::{
    self,
    client::{ClientPolicy, ResilientClient},
};
use reqwest::StatusCode;

use crate::{domain::SagaId, saga::store::Saga};

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call<T> {
    Done(T),
    NotSent(String),
    Unknown(String),
}

/// A call that got no decision.
#[derive(Debug)]
enum Failed {
    NotSent(String),
    Unknown(String),
}

impl<T> From<Failed> for Call<T> {
    fn from(failed: Failed) -> Self {
        match failed {
            Failed::NotSent(d) => Call::NotSent(d),
            Failed::Unknown(d) => Call::Unknown(d),
        }
    }
}

/// Payment's decision on a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charge {
    Charged,
    Declined(String),
}

/// The idempotency key of a saga's charge step.
pub fn charge_key(saga_id: &SagaId) -> String {
    format!("{saga_id}:charge")
}

/// The idempotency key of a saga's refund step.
pub fn refund_key(saga_id: &SagaId) -> String {
    format!("{saga_id}:refund")
}

#[derive(Debug, Clone)]
pub struct PaymentClient {
    client: ResilientClient,
    base_url: String,
    timeout: std::time::Duration,
}

impl PaymentClient {
    pub fn new(base_url: &str, policy: &ClientPolicy) -> anyhow::Result<Self> {
        Ok(Self {
            client: ResilientClient::new("payment", policy)?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            timeout: policy.timeout,
        })
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> std::time::Duration {
        self.timeout
    }

    async fn post<B: serde::Serialize>(
        &self,
        path: &str,
        key: &str,
        body: &B,
    ) -> Result<(StatusCode, String), Failed> {
        let request = self
            .client
            .http()
            .post(format!("{}{path}", self.base_url))
            .header("idempotency-key", key)
            .json(body)
            .build()
            .map_err(|e| Failed::NotSent(format!("cannot build the request: {e}")))?;
        match self.client.send(request).await {
            Ok(response) => {
                let status = response.status();
                match response.text().await {
                    Ok(text) => Ok((status, text)),
                    Err(e) => Err(Failed::Unknown(format!("reply lost while reading it: {e}"))),
                }
            }
            Err(error) => {
                let kind = resilience::classify(error.as_ref());
                let detail = format!("{} ({error})", kind.as_str());
                Err(if kind.was_sent() {
                    Failed::Unknown(detail)
                } else {
                    Failed::NotSent(detail)
                })
            }
        }
    }

    /// Charges the saga's amount, under the saga's charge key.
    pub async fn charge(&self, saga: &Saga) -> Call<Charge> {
        let body = ChargeRequest {
            user_id: saga.user_id.clone(),
            booking_id: saga.booking_id.to_string(),
            saga_id: saga.id.to_string(),
            amount: saga.amount.unwrap_or_default(),
        };
        match self.post("/charges", &charge_key(&saga.id), &body).await {
            Ok((status, text)) => classify_charge(status, &text),
            Err(failed) => failed.into(),
        }
    }

    /// Refunds whatever the saga's charge key took (nothing, if it took nothing).
    pub async fn refund(&self, saga: &Saga) -> Call<String> {
        let body = RefundRequest {
            charge_key: charge_key(&saga.id),
            booking_id: saga.booking_id.to_string(),
            saga_id: saga.id.to_string(),
        };
        match self.post("/refunds", &refund_key(&saga.id), &body).await {
            Ok((status, text)) if status.is_success() => {
                match serde_json::from_str::<RefundResponse>(&text) {
                    Ok(refund) => Call::Done(refund.status),
                    Err(e) => Call::Unknown(format!("unreadable refund answer: {e}")),
                }
            }
            Ok((status, text)) => Call::Unknown(format!("payment answered {status}: {text}")),
            Err(failed) => failed.into(),
        }
    }
}

fn classify_charge(status: StatusCode, text: &str) -> Call<Charge> {
    match status {
        s if s.is_success() => Call::Done(Charge::Charged),
        StatusCode::PAYMENT_REQUIRED => {
            let reason = serde_json::from_str::<ChargeResponse>(text)
                .ok()
                .and_then(|r| r.reason)
                .unwrap_or_else(|| "declined".into());
            Call::Done(Charge::Declined(reason))
        }
        StatusCode::CONFLICT => Call::Unknown("a charge with this key is still in flight".into()),
        s if s.is_server_error() => Call::Unknown(format!("payment answered {s}")),
        s => Call::Done(Charge::Declined(format!(
            "payment refused the charge ({s}): {text}"
        ))),
    }
}
