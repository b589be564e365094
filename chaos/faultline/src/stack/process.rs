//! The stack's child processes: spawning one from this binary, waiting until it listens or is
//! ready (and that what answers on its port is really it), stopping it, and reading its log.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

/// One running process of the stack.
#[derive(Debug)]
pub(super) struct Service {
    /// What it runs (`faultline service <runs>`): a service, the capture, the broker or the proxy.
    pub(super) runs: &'static str,
    pub(super) child: Child,
    pub(super) url: String,
    pub(super) config: PathBuf,
    pub(super) log: PathBuf,
}

/// A child that is never left behind: a start-up that fails half-way drops the children it
/// already started, and they go with it.
impl Drop for Service {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `exe service <name>` with `config`, output appended to `log`.
pub(super) fn spawn_child(
    exe: &Path,
    name: &str,
    config: &Path,
    log: &Path,
    service_log: &str,
    env: &[(String, String)],
) -> anyhow::Result<Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut command = Command::new(exe);
    command
        .arg("service")
        .arg(name)
        .env("FAULTLINE_CONFIG", config)
        .env("RUST_LOG", service_log)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    // The file is the whole configuration: nothing leaks in from our own environment.
    for (key, _) in std::env::vars_os() {
        let text = key.to_string_lossy();
        if text.starts_with("FAULTLINE__")
            || text.starts_with("OTEL_")
            || text == "FAULTLINE_LOKI_URL"
            || text == faultline_kit::messaging::consumer::DISABLE_DEDUPE_FOR_TEST
        {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command
        .spawn()
        .with_context(|| format!("starting {name} from {}", exe.display()))
}

/// Waits until `service` answers 2xx on `path`, or fails with the tail of its log.
/// Waits until `service` accepts TCP connections at its `url` (`host:port`).
/// What answered on the child's port is the child: another process that took the port between
/// the pick and the child's bind (stacks start side by side in tests) answers too, while the
/// child fails to bind. Reported as the port in use, so [`super::Stack::start`] starts again on fresh
/// ports.
fn owns_its_port(name: &str, service: &Service) -> anyhow::Result<()> {
    let port = service
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
        .with_context(|| format!("{name}: no port in {}", service.url))?;
    anyhow::ensure!(
        crate::measure::listens_on(service.child.id(), port),
        "{name}: port {port} answers, but another process holds it (Address already in use)"
    );
    Ok(())
}

pub(super) async fn wait_until_listening(
    name: &str,
    service: &mut Service,
    limit: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if let Some(status) = service.child.try_wait()? {
            anyhow::bail!(
                "{name} exited during start-up ({status}); its log:\n{}",
                tail(&service.log, 30)
            );
        }
        if tokio::net::TcpStream::connect(service.url.as_str())
            .await
            .is_ok()
        {
            return owns_its_port(name, service);
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "{name} did not listen on {} within {limit:?}; its log:\n{}",
            service.url,
            tail(&service.log, 30)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(super) async fn wait_until_ready(
    name: &str,
    service: &mut Service,
    path: &str,
    limit: Duration,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let started = Instant::now();
    let url = format!("{}{path}", service.url);
    {
        loop {
            if let Some(status) = service.child.try_wait()? {
                anyhow::bail!(
                    "{name} exited during start-up ({status}); its log:\n{}",
                    tail(&service.log, 30)
                );
            }
            if let Ok(response) = http.get(&url).send().await
                && response.status().is_success()
            {
                return owns_its_port(name, service);
            }
            if started.elapsed() > limit {
                anyhow::bail!(
                    "{name} was not ready after {limit:?}; its log:\n{}",
                    tail(&service.log, 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub(super) fn stop_child(name: &str, child: &mut Child, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let pid = Pid::from_raw(child.id() as i32);
    if kill(pid, Signal::SIGTERM).is_ok() {
        let started = Instant::now();
        while started.elapsed() < grace {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::warn!(service = name, ?grace, "did not stop in time; killing it");
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `lines` lines of a log file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
