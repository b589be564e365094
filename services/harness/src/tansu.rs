//! Finding the tansu broker binary (crates.io `tansu` 0.6.0, built with the libsql feature).
//!
//! Looked for, in order: `$FAULTLINE_TANSU_BIN`; the cache (`$FAULTLINE_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/faultline`, else `~/.cache/faultline`) under `tansu/bin/tansu`; `tansu` on
//! `PATH`. When none exists it is installed into the cache with
//! `cargo install tansu --version 0.6.0 --locked --features libsql` (about 9 minutes on two
//! cores, once per machine). `--locked` matters: without it a newer dependency breaks the build.
//! A lock file keeps two processes from installing at once.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::Context as _;

pub const VERSION: &str = "0.6.0";

/// The cache directory for Faultline's downloaded tools.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FAULTLINE_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("faultline");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("faultline")
}

fn on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("tansu"))
        .find(|candidate| candidate.is_file())
}

/// The path of a usable tansu binary, installing it if needed.
pub fn binary() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("FAULTLINE_TANSU_BIN") {
        let bin = PathBuf::from(bin);
        anyhow::ensure!(
            bin.is_file(),
            "FAULTLINE_TANSU_BIN={} does not exist",
            bin.display()
        );
        return Ok(bin);
    }
    let root = cache_dir().join("tansu");
    let cached = root.join("bin").join("tansu");
    if cached.is_file() {
        return Ok(cached);
    }
    if let Some(found) = on_path() {
        return Ok(found);
    }
    install(&root, &cached)?;
    Ok(cached)
}

fn install(root: &Path, cached: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let lock = root.join("install.lock");
    let started = Instant::now();
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if cached.is_file() {
                    return Ok(());
                }
                let stale = std::fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .map(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(45 * 60))
                    .unwrap_or(true);
                if stale {
                    let _ = std::fs::remove_file(&lock);
                    continue;
                }
                anyhow::ensure!(
                    started.elapsed() < Duration::from_secs(45 * 60),
                    "gave up waiting for another process to install tansu (lock {})",
                    lock.display()
                );
                std::thread::sleep(Duration::from_secs(2));
            }
            Err(e) => return Err(e).with_context(|| format!("creating {}", lock.display())),
        }
    }
    if cached.is_file() {
        let _ = std::fs::remove_file(&lock);
        return Ok(());
    }
    eprintln!(
        "faultline: installing the tansu broker {VERSION} into {} (once per machine, several minutes)…",
        root.display()
    );
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "install",
            "tansu",
            "--version",
            VERSION,
            "--locked",
            "--features",
            "libsql",
            "--root",
        ])
        .arg(root)
        .status();
    let _ = std::fs::remove_file(&lock);
    let status = status.context("running cargo install tansu")?;
    anyhow::ensure!(status.success(), "cargo install tansu failed: {status}");
    anyhow::ensure!(
        cached.is_file(),
        "cargo install tansu did not produce {}",
        cached.display()
    );
    Ok(())
}
