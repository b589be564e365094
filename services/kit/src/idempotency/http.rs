//! The HTTP face of idempotency: reading the `Idempotency-Key` header and answering a repeat
//! (replay, 409, 422) before the handler runs.

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse as _, Response},
};
use tracing::Instrument as _;

use super::{IdempotencyKey, IdempotencyStore, NextAction, SavedResponse, fingerprint};
use crate::{
    http::ApiError,
    storage::{Db, Tx},
};

/// The request header carrying the key.
pub const HEADER: &str = "idempotency-key";
/// Set on a replayed response.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Reads and validates the key; missing or malformed → 400.
pub fn key_from_headers(headers: &HeaderMap) -> Result<IdempotencyKey, ApiError> {
    let raw = headers
        .get(HEADER)
        .ok_or_else(|| ApiError::bad_request("the Idempotency-Key header is required"))?
        .to_str()
        .map_err(|_| ApiError::bad_request("the Idempotency-Key header must be ASCII"))?;
    IdempotencyKey::parse(raw).map_err(ApiError::bad_request)
}

/// Renders a stored response as JSON, marked as a replay.
pub fn replay(saved: &SavedResponse) -> Response {
    let status = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK);
    let mut response = (status, saved.body.clone()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(status)),
    );
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

/// The media type of a stored answer: JSON for a success and for 402 (a declined charge is an
/// outcome with a body of its own), problem+json for every other error.
pub fn content_type(status: StatusCode) -> &'static str {
    if status.is_success() || status == StatusCode::PAYMENT_REQUIRED {
        "application/json"
    } else {
        "application/problem+json"
    }
}

/// What [`IdempotencyStore::execute`] came to.
#[derive(Debug)]
pub enum Executed<T> {
    /// Answered before the effect: a replay, 409 in flight or 422 misuse.
    Early(Response),
    /// The effect ran; its stored response and whatever else it returned.
    Done(SavedResponse, T),
}

/// The effect of an idempotent request: runs in the transaction the response is stored in.
pub type Effect<T> = Box<
    dyn for<'t> FnOnce(
            &'t mut Tx,
        )
            -> futures::future::BoxFuture<'t, Result<(SavedResponse, T), sqlx::Error>>
        + Send,
>;

impl IdempotencyStore {
    /// The whole idempotent request in one transaction of `db`: claim the key ([`Self::gate`]),
    /// run `effect` and store its response ([`Self::run`]). A repeat answered early (replay, 409,
    /// 422) rolls back and leaves nothing.
    ///
    /// Runs on its own task: when the caller disconnects (its timeout fired, its process died),
    /// hyper drops the handler's future; the spawned task still finishes the request, so the
    /// caller's retry finds its answer stored instead of redoing the work.
    #[allow(clippy::too_many_arguments)]
    pub async fn execute<T: Send + 'static>(
        &self,
        db: &Db,
        scope: impl Into<String>,
        key: &IdempotencyKey,
        method: &'static str,
        path: &'static str,
        body: bytes::Bytes,
        effect: Effect<T>,
    ) -> Result<Executed<T>, ApiError> {
        let (store, db, key, scope) = (self.clone(), db.clone(), key.clone(), scope.into());
        let task = tokio::spawn(
            async move {
                let mut tx = db.begin().await?;
                if let Some(early) = store
                    .gate(&mut tx, &scope, &key, method, path, &body)
                    .await?
                {
                    tx.rollback().await?;
                    return Ok(Executed::Early(early));
                }
                let (saved, extra) = store.run(tx, &scope, key.as_str(), effect).await?;
                Ok(Executed::Done(saved, extra))
            }
            .in_current_span(),
        );
        task.await.map_err(ApiError::internal)?
    }

    /// Claims the key for this request inside `tx`. `Ok(None)`: go ahead, then `complete` in
    /// `tx`. `Ok(Some(response))`: answer with it (replay, 409 in flight, 422 misuse).
    pub async fn gate(
        &self,
        tx: &mut Tx,
        scope: &str,
        key: &IdempotencyKey,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Option<Response>, ApiError> {
        let fingerprint = fingerprint(method, path, body);
        match self.claim(tx, scope, key.as_str(), &fingerprint).await? {
            NextAction::Start => Ok(None),
            NextAction::Replay(saved) => {
                tracing::info!(idempotency.replayed = true, idempotency.key = %key, status = saved.status, "idempotent replay");
                Ok(Some(replay(&saved)))
            }
            NextAction::InFlight => {
                tracing::info!(idempotency.key = %key, "request with this key still in flight");
                Err(ApiError::conflict(
                    "a request with this Idempotency-Key is still being processed; retry later",
                )
                .with_header(header::RETRY_AFTER, HeaderValue::from_static("1")))
            }
            NextAction::Mismatch => Err(ApiError::unprocessable(
                "this Idempotency-Key was already used with a different request",
            )),
        }
    }
}
