//! Before any fault: proves that every link of the stack goes through its proxy (the proxies
//! exist, the broker advertises its own, and one booking and two reads move bytes through every
//! one of them), so a fault on a link cannot miss traffic that bypasses it.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use faultline_contracts::topology::{Link, Service};
use indicatif::ProgressBar;

use crate::{
    chaos::{
        client::Client,
        generator::{Plan, PlannedOp},
        history::History,
        target::{Backend, Target},
    },
    seed::Seed,
};

/// The preflight booking's operation number (outside the plan's range).
pub const PREFLIGHT_OP: u32 = 1_000_000;

/// Proves that every link of the stack goes through its proxy: each proxy's byte counters grow
/// in both directions while one booking and two reads cross the system, and the broker
/// advertises its proxy's address.
pub(super) async fn preflight(
    target: &Target,
    client: &Client,
    history: &History,
    plan: &Plan,
    seed: &Seed,
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    progress.set_message("preflight: is every link proxied?");
    let toxiproxy = faultline_toxiproxy::client::Client::new(target.toxiproxy_url()?)?;
    toxiproxy
        .reset()
        .await
        .context("preflight: resetting the proxies")?;
    let proxies = toxiproxy.proxies().await?;
    let links: Vec<&str> = Link::of_stack(target.endpoints.database == "postgres")
        .map(Link::proxy_name)
        .collect();
    let missing: Vec<&&str> = links
        .iter()
        .filter(|name| !proxies.contains_key(**name))
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "preflight: Toxiproxy has no proxy for {missing:?} (it has {:?})",
        proxies.keys().collect::<Vec<_>>()
    );

    let advertised = target.advertised_broker().await?;
    let kafka = &proxies[Link::Kafka.proxy_name()];
    let port = |address: &str| address.rsplit(':').next().unwrap_or_default().to_owned();
    anyhow::ensure!(
        port(&advertised) == port(&kafka.listen) && advertised != kafka.upstream,
        "preflight: the broker advertises {advertised}, not its proxy ({}): clients would bypass it",
        kafka.listen
    );

    let before = toxiproxy
        .metrics()
        .await
        .context("preflight: reading proxy metrics")?;
    let token = target
        .endpoints
        .tokens
        .get("user-1")
        .cloned()
        .unwrap_or_default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    for path in ["/concerts", "/me/wallet"] {
        http.get(format!("{}{path}", target.endpoints.gateway_url))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()
            .with_context(|| format!("preflight: GET {path}"))?;
    }
    let planned: std::collections::BTreeSet<&str> =
        plan.ops.iter().map(|o| o.seat.as_str()).collect();
    let seat = seed
        .concerts
        .iter()
        .flat_map(|c| c.schedules.iter())
        .flat_map(Seed::seat_ids)
        .rev()
        .find(|s| !planned.contains(s.as_str()))
        .context("preflight: every seat is planned; no seat left for the preflight booking")?;
    client
        .invoke(&PlannedOp {
            op: PREFLIGHT_OP,
            at_ms: 0,
            user: "user-1".into(),
            seat,
            intent: "preflight".into(),
            meets_fault: None,
        })
        .await;
    settle_booking(target, client).await?;
    let (mut seen, mut quiet) =
        await_traffic(&toxiproxy, &before, &links, Duration::from_secs(2)).await?;
    if !quiet.is_empty() && matches!(target.backend, Backend::Remote) {
        // Only when the counters have not moved: bouncing every link drops every broker
        // session, which costs the next act a rebalance.
        bounce(&toxiproxy, &links).await?;
        (seen, quiet) = await_traffic(&toxiproxy, &before, &links, Duration::from_secs(5)).await?;
    }
    anyhow::ensure!(
        quiet.is_empty(),
        "preflight: no traffic through {quiet:?} while a booking crossed the system: something bypasses the proxy"
    );
    await_ready(target, &http).await?;
    history.note(format!(
        "preflight: broker advertises its proxy {advertised}; traffic through every proxy: {}",
        seen.join(", ")
    ));
    Ok(())
}

/// Waits (30 s at most) until the preflight booking is terminal.
async fn settle_booking(target: &Target, client: &Client) -> anyhow::Result<()> {
    let started = Instant::now();
    while client.waiting() > 0 {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "preflight: the preflight booking did not settle within 30 s"
        );
        client.watch_once(target.service("reservation")).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Real Toxiproxy counts a connection's bytes when it closes, and services keep theirs open
/// (broker sessions, pools): bouncing each proxy closes them, so the counters report what
/// crossed. (The embedded server counts as bytes flow.)
async fn bounce(
    toxiproxy: &faultline_toxiproxy::client::Client,
    links: &[&str],
) -> anyhow::Result<()> {
    for link in links {
        toxiproxy.set_enabled(link, false).await?;
        toxiproxy.set_enabled(link, true).await?;
    }
    Ok(())
}

/// Waits (30 s at most per service) until every service is ready (again, after a bounce).
async fn await_ready(target: &Target, http: &reqwest::Client) -> anyhow::Result<()> {
    for service in Service::ALL {
        let started = Instant::now();
        loop {
            let ready = http
                .get(format!("{}/ready", target.service(service.name())))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "preflight: {service} not ready again 30 s after its links were bounced"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Reads the proxies' counters until every link moved bytes both ways since `before`, for at
/// most `within` (counters can trail the traffic by a moment); returns what each link carried
/// and the links that stayed quiet.
async fn await_traffic(
    toxiproxy: &faultline_toxiproxy::client::Client,
    before: &faultline_toxiproxy::client::ProxyMetrics,
    links: &[&str],
    within: Duration,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let started = Instant::now();
    loop {
        let after = toxiproxy.metrics().await?;
        let mut quiet = Vec::new();
        let mut seen = Vec::new();
        for link in links {
            let (Some(a), b) = (after.proxies.get(*link), before.proxy(link)) else {
                quiet.push(format!("{link} (no counters)"));
                continue;
            };
            let up = a.upstream_received.saturating_sub(b.upstream_received);
            let down = a.downstream_received.saturating_sub(b.downstream_received);
            if up == 0 || down == 0 {
                quiet.push(format!("{link} (↑{up} B ↓{down} B)"));
            } else {
                seen.push(format!("{link} ↑{up} B ↓{down} B"));
            }
        }
        if quiet.is_empty() || started.elapsed() >= within {
            return Ok((seen, quiet));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
