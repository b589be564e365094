//! `faultline up` as a user runs it: it comes up, writes endpoints.json, serves with the printed
//! token, and on SIGTERM stops every process it started and frees every port.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use faultline::endpoints::Endpoints;
use faultline_harness::wait::{Patience, eventually};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

/// Process ids whose parent is `parent` (from /proc).
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    stat.rsplit_once(')')
                        .map(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_owned))
                })
                .flatten()
                .is_some_and(|ppid| ppid == parent.to_string())
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_then_stops_everything_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = dir.path().join("run");
    let mut up = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["up", "--run-dir"])
        .arg(&run_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn faultline up");
    let endpoints = eventually(
        "faultline up to write endpoints.json",
        Patience::within(Duration::from_secs(90)).every(Duration::from_millis(100)),
        || {
            let read = Endpoints::read(&run_dir);
            if read.is_err() {
                assert!(
                    up.try_wait().expect("wait").is_none(),
                    "faultline up exited early"
                );
            }
            async move { read }
        },
    )
    .await;
    assert_eq!(endpoints.launcher_pid, up.id());
    assert_eq!(endpoints.tokens.len(), 10, "a token per seeded user");
    let http = reqwest::Client::new();
    let wallet = http
        .get(format!("{}/me/wallet", endpoints.gateway_url))
        .bearer_auth(&endpoints.tokens["user-1"])
        .send()
        .await
        .expect("GET /me/wallet");
    assert_eq!(wallet.status(), 200);
    let children = children_of(up.id());
    assert_eq!(
        children.len(),
        8,
        "five services, the telemetry capture, the proxy and the broker: {children:?}"
    );

    kill(Pid::from_raw(up.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    let status = eventually("faultline up to stop", Duration::from_secs(30), || {
        let status = up.try_wait().expect("wait");
        async move { status }
    })
    .await;
    assert!(status.success(), "{status}");
    for pid in children {
        assert!(!alive(pid), "process {pid} outlived faultline up");
    }
    for url in endpoints.services.values().chain([&endpoints.gateway_url]) {
        let port: u16 = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} is still bound"
        );
    }
    let proxy_port: u16 = endpoints
        .toxiproxy_url
        .as_deref()
        .and_then(|u| u.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("the toxiproxy API's port");
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", proxy_port)).is_ok(),
        "the proxy's API port is still bound"
    );
    let broker_port: u16 = endpoints
        .broker
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", broker_port)).is_ok(),
        "the broker's port is still bound"
    );
}
