//! The breaker's response future: either an immediate [`CircuitOpen`] or the inner call, which
//! records its outcome on the breaker when it completes.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use futures::future::BoxFuture;

use super::{BoxError, CircuitOpen};

/// Boxed because the recording step is an async block; one allocation per outgoing HTTP call
/// is noise next to the call itself.
pub struct ResponseFuture<Res> {
    inner: BoxFuture<'static, Result<Res, BoxError>>,
}

impl<Res: Send + 'static> ResponseFuture<Res> {
    pub(super) fn new(
        future: impl Future<Output = Result<Res, BoxError>> + Send + 'static,
    ) -> Self {
        Self {
            inner: Box::pin(future),
        }
    }

    pub(super) fn failed(open: CircuitOpen) -> Self {
        Self::new(async move { Err(Box::new(open) as BoxError) })
    }
}

impl<Res> Future for ResponseFuture<Res> {
    type Output = Result<Res, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}
