//! The services' own binaries (built by cargo, as the Dockerfile builds them) started as child
//! processes with exactly the environment they are given, and stopped when the test ends.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use faultline_harness::wait::{Patience, eventually};

/// Builds the binaries of `packages` and returns each binary's path by name. The test runs
/// inside `cargo test`, whose build lock is released while tests run, so this nested build
/// shares the target directory (nothing to do when the workspace is already built).
pub fn build(packages: &[&str]) -> BTreeMap<String, PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(faultline_deploy_checks::repo::root())
        .args([
            "build",
            "--bins",
            "--message-format=json-render-diagnostics",
        ]);
    for package in packages {
        command.args(["-p", package]);
    }
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "building {packages:?} failed");
    let mut binaries = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let (Some(name), Some(path)) = (
            message["target"]["name"].as_str(),
            message["executable"].as_str(),
        ) {
            binaries.insert(name.to_owned(), PathBuf::from(path));
        }
    }
    binaries
}

/// Running children, killed when dropped (a failing assertion leaves nothing behind).
#[derive(Default)]
pub struct Children {
    children: Vec<(String, Child, PathBuf)>,
}

impl Children {
    /// Starts `binary` with `args` and only `env` (plus PATH): nothing leaks in from the test's
    /// own environment, so the compose environment really is the whole configuration.
    pub fn spawn(
        &mut self,
        name: &str,
        binary: &Path,
        args: &[String],
        env: &BTreeMap<String, String>,
        log: PathBuf,
    ) {
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(binary)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({}): {e}", binary.display()));
        self.children.push((name.to_owned(), child, log));
    }

    /// Waits until `url` answers 2xx, failing with the child's log if it exits or times out.
    pub async fn wait_ready(&mut self, name: &str, url: &str, limit: Duration) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let (_, child, log) = self
            .children
            .iter_mut()
            .find(|(n, _, _)| n == name)
            .expect("started");
        let log_of = |log: &Path| std::fs::read_to_string(log).unwrap_or_default();
        eventually(
            &format!("{name} to be ready at {url}"),
            Patience::within(limit).every(Duration::from_millis(100)),
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "{name} exited ({status}) with its compose environment:\n{}",
                        log_of(log)
                    );
                }
                async {
                    match http.get(url).send().await {
                        Ok(response) if response.status().is_success() => Ok(()),
                        _ => Err(format!("its log so far:\n{}", log_of(log))),
                    }
                }
            },
        )
        .await;
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `binary` once with `args` and `env` and returns its standard output.
pub fn run(binary: &Path, args: &[&str], env: &BTreeMap<String, String>) -> String {
    let output = Command::new(binary)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{} {args:?} failed: {}",
        binary.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
