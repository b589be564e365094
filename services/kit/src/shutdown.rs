//! One cancellation token per process, tripped by SIGTERM or Ctrl-C.
//!
//! Every long-running task (HTTP server, consumers, relay, saga timers) takes a child of the
//! token and finishes its current unit of work before returning, so a graceful stop never
//! leaves a half-written transaction and never commits an offset it has not processed.

pub use tokio_util::sync::CancellationToken;

/// Returns a token that is cancelled on the first SIGTERM or Ctrl-C.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trip = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received, stopping");
        trip.cancel();
    });
    token
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops this process");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
