//! Resource figures of a running stack, read from `/proc` (Linux): the process tree of a
//! launcher, what each process in it is (by its command line), its CPU time and its resident
//! memory. The demo samples the tree's summed memory ([`PeakRss`]); the bench reads every
//! process on its own (`crate::bench::procs`).

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

/// Whether process `pid` holds the listening socket of TCP `port` on this host: the socket's
/// inode from `/proc/net/tcp{,6}` found among the process's open files. A stack hands its
/// children free ports it picked, so a child can lose its port to another process in between;
/// then something else answers on that port, and only ownership tells them apart.
pub fn listens_on(pid: u32, port: u16) -> bool {
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| listening_inodes(&table, port))
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| {
            let target = target.to_string_lossy();
            inodes
                .iter()
                .any(|inode| target == format!("socket:[{inode}]"))
        })
    })
}

/// The inodes of the sockets listening (state `0A`) on `port` in a `/proc/net/tcp` table.
fn listening_inodes(table: &str, port: u16) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit_once(':')?.1;
            (u16::from_str_radix(local_port, 16).ok()? == port && *fields.get(3)? == "0A")
                .then(|| fields.get(9).map(|inode| (*inode).to_owned()))?
        })
        .collect()
}

/// The fields of `/proc/<pid>/stat` after the command name, which may itself contain spaces and
/// parentheses: only what follows its last `)` splits reliably. Index 0 is field 3 (state).
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    Some(stat.rsplit_once(')')?.1.split_whitespace().collect())
}

fn parent_of(stat: &str) -> Option<u32> {
    stat_fields(stat)?.get(1)?.parse().ok()
}

/// A `VmXxx:` line of `/proc/<pid>/status`, in KiB.
fn status_kb(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}

fn rss_kb(pid: u32) -> u64 {
    memory_kb(pid).map_or(0, |m| m.rss_kb)
}

/// Resident memory of one process, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Now (`VmRSS`).
    pub rss_kb: u64,
    /// The highest since the process started (`VmHWM`): a peak no sampling can miss.
    pub peak_kb: u64,
}

/// [`Memory`] of `pid`; `None` once it is gone.
pub fn memory_kb(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Memory {
        rss_kb: status_kb(&status, "VmRSS:")?,
        peak_kb: status_kb(&status, "VmHWM:")?,
    })
}

/// User + system CPU time `pid` has used, in clock ticks (see [`ticks_per_second`]).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields = stat_fields(&stat)?;
    // Fields 14 and 15 of proc(5): utime and stime.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The unit of [`cpu_ticks`] (`getconf CLK_TCK`): 100 on every Linux we know of, asked anyway.
pub fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|n| u64::try_from(n).ok())
        .filter(|n| *n > 0)
        .unwrap_or(100)
}

/// What a process of a stack is: a stack's child is named by its configuration file
/// (`config/<instance>.json`, so replicas read `reservation-1`, `reservation-2`); otherwise from
/// its command line, `faultline service <name>` is `name`, anything else its program's file name.
pub fn role(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let role = role_of(&raw)?;
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    Some(instance_of(&environ).unwrap_or(role))
}

/// The file stem of `FAULTLINE_CONFIG` in a NUL-separated environment block.
fn instance_of(environ: &[u8]) -> Option<String> {
    environ
        .split(|b| *b == 0)
        .find_map(|entry| entry.strip_prefix(b"FAULTLINE_CONFIG="))
        .and_then(|path| {
            std::path::Path::new(&*String::from_utf8_lossy(path))
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
        })
}

fn role_of(cmdline: &[u8]) -> Option<String> {
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let program = std::path::Path::new(args.first()?)
        .file_name()?
        .to_string_lossy()
        .into_owned();
    if let Some(at) = args.iter().position(|a| a == "service")
        && let Some(name) = args.get(at + 1)
        && program.starts_with("faultline")
    {
        return Some(name.clone());
    }
    Some(program)
}

/// Every process id on this host.
fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Every process on this host whose command name (`/proc/<pid>/comm`) is `name`.
pub fn pids_named(name: &str) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name)
        })
        .collect()
}

/// `root` and every process descended from it, `root` first.
pub fn process_tree(root: u32) -> Vec<u32> {
    let parents: BTreeMap<u32, u32> = all_pids()
        .into_iter()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, parent_of(&stat)?))
        })
        .collect();
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
    tree
}

/// The summed resident memory (KiB) of `root` and all its descendants.
pub fn tree_rss_kb(root: u32) -> u64 {
    process_tree(root).into_iter().map(rss_kb).sum()
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
    #[test]
    fn a_listening_port_belongs_to_the_process_that_bound_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert!(listens_on(std::process::id(), port));
        // pid 1 does not hold this test's socket.
        assert!(!listens_on(1, port));
        drop(listener);
        assert!(!listens_on(std::process::id(), port));
    }

    use super::*;

    #[test]
    fn this_process_has_resident_memory() {
        assert!(tree_rss_kb(std::process::id()) > 1_000);
    }

    #[test]
    fn a_command_name_with_a_parenthesis_still_parses() {
        assert_eq!(parent_of("42 (we (ird) name) S 7 42 42 0"), Some(7));
    }

    #[test]
    fn this_process_has_used_cpu_and_has_a_peak() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_some());
        let memory = memory_kb(pid).expect("status");
        assert!(memory.peak_kb >= memory.rss_kb);
        assert!(ticks_per_second() > 0);
    }

    #[test]
    fn a_stack_child_is_named_by_its_configuration_file() {
        assert_eq!(
            instance_of(b"RUST_LOG=info\0FAULTLINE_CONFIG=/run/config/reservation-2.json\0X=1")
                .as_deref(),
            Some("reservation-2")
        );
        assert_eq!(instance_of(b"RUST_LOG=info\0HOME=/root"), None);
    }

    #[test]
    fn processes_are_named_by_their_command_line() {
        assert_eq!(
            role_of(b"/x/target/release/faultline\0service\0payment\0").as_deref(),
            Some("payment")
        );
        assert_eq!(
            role_of(b"/x/target/release/faultline\0service\0broker\0").as_deref(),
            Some("broker")
        );
        assert_eq!(role_of(b"/x/faultline\0up\0").as_deref(), Some("faultline"));
        assert_eq!(role_of(b""), None);
    }
}
