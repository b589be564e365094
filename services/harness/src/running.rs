//! [`Running`]: a service application running inside a test process, stopped when the guard is
//! dropped — the one way every service's `tests/api/helpers.rs` runs what `spawn_app` built.

use faultline_kit::shutdown::CancellationToken;

/// A spawned `run_until_stopped`; dropping it cancels the shutdown token the run was given.
#[derive(Debug)]
pub struct Running(CancellationToken);

impl Running {
    /// Spawns `run` (e.g. `|stop| app.run_until_stopped(stop)`) with a fresh shutdown token.
    pub fn spawn<F>(run: impl FnOnce(CancellationToken) -> F) -> Self
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let token = CancellationToken::new();
        tokio::spawn(run(token.clone()));
        Self(token)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
