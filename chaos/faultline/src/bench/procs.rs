//! What each process of the stack costs: CPU seconds over a window and resident memory, from
//! `/proc` through `crate::measure`.
//!
//! The processes are the launcher's tree, named by their command lines (`faultline service
//! <name>` → `name`, the broker included). With the embedded stack the launcher is the bench itself:
//! it is reported as `bench-client` and left out of the stack's total, since it is the load
//! generator, not the system. With `--target` it is the `faultline up` process (`launcher`).

use std::{collections::BTreeMap, time::Instant};

use serde::Serialize;

use crate::measure;

/// The load generator's row: shown, never counted in the stack's total.
pub const CLIENT: &str = "bench-client";

/// One process at one moment.
#[derive(Debug, Clone)]
struct Reading {
    pid: u32,
    cpu_ticks: u64,
    memory: measure::Memory,
}

/// Every process of a tree at one moment, by name.
#[derive(Debug, Clone)]
pub struct Snapshot {
    at: Instant,
    processes: BTreeMap<String, Reading>,
}

/// Whose tree to read, and what its root is called.
#[derive(Debug, Clone, Copy)]
pub struct Tree {
    /// `None` when the launcher's process cannot be seen (a target on another host or in
    /// containers): then there is nothing to report.
    pub root: Option<u32>,
    pub root_name: &'static str,
    /// Also read the local PostgreSQL server (every process named `postgres`, summed as one row,
    /// [`POSTGRES`]): with `--postgres` the database does much of the work, and it is not in the
    /// launcher's tree.
    pub postgres: bool,
}

/// The row of the PostgreSQL server's processes, summed (counted in the stack's total).
pub const POSTGRES: &str = "postgres-server";

/// Every process on this host named `postgres`, as one reading (pid 0: its backends come and
/// go, the sum is what the window compares). Its "peak" is the summed current RSS: the peaks of
/// processes that were never alive together do not add up.
fn postgres_server() -> Option<Reading> {
    let pids = measure::pids_named("postgres");
    let mut total = Reading {
        pid: 0,
        cpu_ticks: 0,
        memory: measure::Memory {
            rss_kb: 0,
            peak_kb: 0,
        },
    };
    for pid in &pids {
        if let (Some(ticks), Some(memory)) = (measure::cpu_ticks(*pid), measure::memory_kb(*pid)) {
            total.cpu_ticks += ticks;
            total.memory.rss_kb += memory.rss_kb;
            total.memory.peak_kb += memory.rss_kb;
        }
    }
    (!pids.is_empty()).then_some(total)
}

impl Tree {
    /// Reads every process of the tree now. A process that vanishes mid-read is skipped; two
    /// processes with one name (none in a stack: replicas are named apart) are told apart by pid.
    pub fn snapshot(&self) -> Snapshot {
        let mut processes = BTreeMap::new();
        let tree = self.root.map(measure::process_tree).unwrap_or_default();
        for pid in tree {
            let (Some(cpu_ticks), Some(memory)) =
                (measure::cpu_ticks(pid), measure::memory_kb(pid))
            else {
                continue;
            };
            let name = if Some(pid) == self.root {
                self.root_name.to_owned()
            } else {
                measure::role(pid).unwrap_or_else(|| format!("pid-{pid}"))
            };
            let name = if processes.contains_key(&name) {
                format!("{name}-{pid}")
            } else {
                name
            };
            processes.insert(
                name,
                Reading {
                    pid,
                    cpu_ticks,
                    memory,
                },
            );
        }
        if self.postgres
            && let Some(server) = postgres_server()
        {
            processes.insert(POSTGRES.to_owned(), server);
        }
        Snapshot {
            at: Instant::now(),
            processes,
        }
    }
}

/// One process over a window.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct ProcessFigures {
    pub pid: u32,
    /// User + system CPU time used in the window.
    pub cpu_s: f64,
    /// `cpu_s` over the window's length: 100 is one core kept busy.
    pub cpu_pct_of_core: f64,
    /// Resident memory at the window's end.
    pub rss_mib: f64,
    /// The highest resident memory since the process started (`VmHWM`).
    pub peak_rss_mib: f64,
}

/// Every process over a window, and the stack's total (without the bench client).
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    pub window_s: f64,
    pub processes: BTreeMap<String, ProcessFigures>,
    pub stack_cpu_s: f64,
    pub stack_cpu_pct_of_core: f64,
    pub stack_peak_rss_mib: f64,
}

const KIB_PER_MIB: f64 = 1024.0;

/// The figures between two snapshots. Processes in `after` only (started mid-window) count from
/// zero; processes gone by `after` are left out (nothing to say about their end).
pub fn between(before: &Snapshot, after: &Snapshot) -> Window {
    let seconds = after.at.saturating_duration_since(before.at).as_secs_f64();
    let ticks = measure::ticks_per_second() as f64;
    let processes: BTreeMap<String, ProcessFigures> = after
        .processes
        .iter()
        .map(|(name, end)| {
            let start = before
                .processes
                .get(name)
                .filter(|r| r.pid == end.pid)
                .map_or(0, |r| r.cpu_ticks);
            let cpu_s = end.cpu_ticks.saturating_sub(start) as f64 / ticks;
            let figures = ProcessFigures {
                pid: end.pid,
                cpu_s,
                cpu_pct_of_core: percent(cpu_s, seconds),
                rss_mib: end.memory.rss_kb as f64 / KIB_PER_MIB,
                peak_rss_mib: end.memory.peak_kb as f64 / KIB_PER_MIB,
            };
            (name.clone(), figures)
        })
        .collect();
    let stack = || {
        processes
            .iter()
            .filter(|(name, _)| *name != CLIENT)
            .map(|(_, f)| f)
    };
    let stack_cpu_s: f64 = stack().map(|f| f.cpu_s).sum();
    Window {
        window_s: seconds,
        stack_cpu_s,
        stack_cpu_pct_of_core: percent(stack_cpu_s, seconds),
        stack_peak_rss_mib: stack().map(|f| f.peak_rss_mib).sum(),
        processes,
    }
}

fn percent(cpu_s: f64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        100.0 * cpu_s / seconds
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn reading(pid: u32, cpu_ticks: u64, rss_kb: u64) -> Reading {
        Reading {
            pid,
            cpu_ticks,
            memory: measure::Memory {
                rss_kb,
                peak_kb: rss_kb * 2,
            },
        }
    }

    #[test]
    fn cpu_is_the_difference_over_the_window_and_the_client_is_not_the_stack() {
        let at = Instant::now();
        let before = Snapshot {
            at,
            processes: BTreeMap::from([
                ("payment".to_owned(), reading(10, 100, 1024)),
                (CLIENT.to_owned(), reading(1, 0, 1024)),
            ]),
        };
        let after = Snapshot {
            at: at + Duration::from_secs(2),
            processes: BTreeMap::from([
                (
                    "payment".to_owned(),
                    reading(10, 100 + measure::ticks_per_second(), 2048),
                ),
                (
                    CLIENT.to_owned(),
                    reading(1, 10 * measure::ticks_per_second(), 1024),
                ),
            ]),
        };
        let window = between(&before, &after);
        let payment = window.processes["payment"];
        assert!((payment.cpu_s - 1.0).abs() < 1e-9);
        assert!((payment.cpu_pct_of_core - 50.0).abs() < 1e-9);
        assert!((payment.rss_mib - 2.0).abs() < 1e-9);
        assert!((payment.peak_rss_mib - 4.0).abs() < 1e-9);
        assert!(
            (window.stack_cpu_s - 1.0).abs() < 1e-9,
            "the client is left out"
        );
    }

    #[test]
    fn a_restarted_process_counts_from_zero() {
        let at = Instant::now();
        let before = Snapshot {
            at,
            processes: BTreeMap::from([("payment".to_owned(), reading(10, 500, 1))]),
        };
        let after = Snapshot {
            at: at + Duration::from_secs(1),
            processes: BTreeMap::from([("payment".to_owned(), reading(11, 7, 1))]),
        };
        let ticks = measure::ticks_per_second() as f64;
        assert!((between(&before, &after).processes["payment"].cpu_s - 7.0 / ticks).abs() < 1e-9);
    }

    #[test]
    fn this_process_tree_can_be_read() {
        let tree = Tree {
            root: Some(std::process::id()),
            root_name: CLIENT,
            postgres: false,
        };
        let snapshot = tree.snapshot();
        assert!(snapshot.processes.contains_key(CLIENT));
    }
}
