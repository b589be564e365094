//! Where the workspace's files are, and the services' source text that queries are checked
//! against (a dashboard that filters on a log message the code never writes shows nothing).

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The workspace root (this crate lives in `deploy/checks`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A file of the workspace, by its path from the root.
pub fn path(relative: &str) -> PathBuf {
    root().join(relative)
}

/// The text of a workspace file.
pub fn read(relative: &str) -> anyhow::Result<String> {
    let path = path(relative);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// Every `.rs` file under `services/*/src`, concatenated: what the services can log and trace.
/// Tests are left out so a message that exists only in a test does not count.
pub fn services_source() -> anyhow::Result<String> {
    let mut text = String::new();
    let services = path("services");
    for entry in std::fs::read_dir(&services)? {
        let src = entry?.path().join("src");
        if src.is_dir() {
            append_rust_files(&src, &mut text)?;
        }
    }
    Ok(text)
}

fn append_rust_files(dir: &Path, text: &mut String) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            append_rust_files(&path, text)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            text.push_str(&std::fs::read_to_string(&path)?);
            text.push('\n');
        }
    }
    Ok(())
}

/// Files of a workspace folder with the given extension, sorted.
pub fn files(relative_dir: &str, extension: &str) -> anyhow::Result<Vec<PathBuf>> {
    let dir = path(relative_dir);
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    found.sort();
    Ok(found)
}
