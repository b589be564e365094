//! Resource figures of a running stack, read from `/proc` (Linux): the resident memory of the
//! whole process tree — the launcher, the five services and the broker — sampled while the
//! workload runs.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

fn parent_of(stat: &str) -> Option<u32> {
    // The command name may contain spaces and parentheses: the fields after it are reliable.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|kb| kb.parse().ok())
        })
        .unwrap_or(0)
}

/// The summed resident memory (KiB) of `root` and all its descendants.
pub fn tree_rss_kb(root: u32) -> u64 {
    let mut parents: BTreeMap<u32, u32> = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for pid in entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()) {
            if let Some(parent) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .as_deref()
                .and_then(parent_of)
            {
                parents.insert(pid, parent);
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let current = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, parent)| **parent == current)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    tree.into_iter().map(rss_kb).sum()
}

/// Samples [`tree_rss_kb`] of this process every 100 ms until dropped; keeps the peak.
#[derive(Debug)]
pub struct PeakRss {
    peak_kb: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl PeakRss {
    pub fn start() -> Self {
        let peak_kb = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (peak, done) = (peak_kb.clone(), stop.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(tree_rss_kb(std::process::id()), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Self { peak_kb, stop }
    }

    /// The highest sum seen so far, in MiB.
    pub fn peak_mib(&self) -> f64 {
        self.peak_kb.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

impl Drop for PeakRss {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_resident_memory() {
        assert!(tree_rss_kb(std::process::id()) > 1_000);
    }

    #[test]
    fn a_command_name_with_a_parenthesis_still_parses() {
        assert_eq!(parent_of("42 (we (ird) name) S 7 42 42 0"), Some(7));
    }
}
