//! The nemesis: applies each fault of the plan at its time and heals it when its window ends.
//!
//! Network faults go through the Toxiproxy HTTP API — the same calls against the embedded
//! server and the real one — and each is read back from the API before it counts as applied
//! (`verified`). Whether traffic actually met the fault (`fired`) is judged from the proxy's byte
//! counters over the window. Process faults (SIGKILL, restart) need the embedded stack; message
//! faults (re-publication, poison) use the broker through its proxy like any client.
//!
//! [`Nemesis::cleanup`] resets every proxy and restarts whatever was killed; the runner calls it
//! on every way out (success, error, panic, Ctrl-C).

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use faultline_toxiproxy::{
    api::{Stream, Toxic},
    client::{Client as Toxiproxy, Exchange},
};
use tokio::sync::Mutex as AsyncMutex;

use super::{
    history::{Event, History, Phase},
    scenario::{Fault, FaultKind},
    target::Target,
};

/// Applies and heals faults, recording every step.
pub struct Nemesis {
    toxiproxy: Toxiproxy,
    /// Toxiproxy calls since the last drain: what the current step did.
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    target: Arc<Target>,
    history: Arc<History>,
    /// Services killed and not yet restarted.
    killed: AsyncMutex<BTreeSet<String>>,
    /// Whether the proxy's byte counters move while connections are open. The embedded server's
    /// do; real Toxiproxy adds a connection's bytes only when it closes, so there a counter that
    /// did not move proves nothing and `fired` stays unmeasured (`None`).
    live_counters: bool,
}

impl std::fmt::Debug for Nemesis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nemesis").finish_non_exhaustive()
    }
}

/// A fault in effect, to be healed.
#[derive(Debug)]
pub struct Applied {
    index: usize,
    fault: Fault,
    /// Bytes through the link when the fault started (for `fired`).
    bytes_at_start: Option<u64>,
    verified: bool,
}

/// The toxic names this runner uses: recognisable in the API and in the history.
fn toxic_name(index: usize, suffix: &str) -> String {
    format!("faultline-{index}-{suffix}")
}

impl Nemesis {
    pub fn new(target: Arc<Target>, history: Arc<History>) -> anyhow::Result<Self> {
        let exchanges: Arc<Mutex<Vec<Exchange>>> = Arc::default();
        let sink = exchanges.clone();
        let toxiproxy = Toxiproxy::new(target.toxiproxy_url()?)?.with_recorder(Arc::new(
            move |exchange: &Exchange| {
                if let Ok(mut all) = sink.lock() {
                    all.push(exchange.clone());
                }
            },
        ));
        let live_counters = matches!(target.backend, super::target::Backend::Embedded(_));
        Ok(Self {
            toxiproxy,
            exchanges,
            target,
            history,
            killed: AsyncMutex::default(),
            live_counters,
        })
    }

    fn drain(&self) -> Vec<Exchange> {
        self.exchanges
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }

    /// Bytes that crossed `link` so far, both ways (Toxiproxy's `-proxy-metrics` counters).
    async fn link_bytes(&self, link: &str) -> Option<u64> {
        let metrics = self.toxiproxy.metrics().await.ok()?;
        let bytes = metrics.proxies.get(link)?;
        Some(bytes.upstream_received + bytes.downstream_received)
    }

    /// Applies `fault` and records the start with the control exchanges.
    pub async fn start(&self, index: usize, fault: &Fault) -> Applied {
        let bytes_at_start = match fault.kind.link() {
            Some(link) => self.link_bytes(link).await,
            None => None,
        };
        self.drain();
        let result = self.apply(index, &fault.kind).await;
        let (verified, detail) = match result {
            Ok(detail) => (true, detail),
            Err(error) => (false, format!("not applied: {error:#}")),
        };
        self.history.record(Event::Fault {
            fault: index,
            phase: Phase::Start,
            time_ms: self.history.now_ms(),
            kind: fault.kind.clone(),
            verified,
            fired: None,
            detail,
            exchanges: self.drain(),
        });
        Applied {
            index,
            fault: fault.clone(),
            bytes_at_start,
            verified,
        }
    }

    /// Heals `applied` and records the stop, with whether traffic met the fault.
    pub async fn stop(&self, applied: Applied) {
        self.drain();
        let result = self.heal(applied.index, &applied.fault.kind).await;
        let (verified, detail) = match result {
            Ok(detail) => (true, detail),
            Err(error) => (false, format!("not healed: {error:#}")),
        };
        let exchanges = self.drain();
        // After healing: removing a black hole closes its connections, which is when real
        // Toxiproxy counts their bytes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let fired = match applied.fault.kind.link() {
            // A refused connection moves no bytes: the read-back (disabled) is the evidence.
            Some(_) if matches!(applied.fault.kind, FaultKind::Refuse { .. }) => None,
            Some(link) => match (applied.bytes_at_start, self.link_bytes(link).await) {
                (Some(before), Some(after)) if after > before => Some(true),
                (Some(_), Some(_)) if self.live_counters => Some(false),
                _ => None,
            },
            None => None,
        };
        let fired = if applied.fault.kind.instant() || !applied.verified {
            Some(applied.verified && verified)
        } else {
            fired
        };
        self.history.record(Event::Fault {
            fault: applied.index,
            phase: Phase::Stop,
            time_ms: self.history.now_ms(),
            kind: applied.fault.kind.clone(),
            verified,
            fired,
            detail,
            exchanges,
        });
    }

    async fn add_verified(&self, link: &str, toxic: Toxic) -> anyhow::Result<()> {
        let name = toxic.name.clone();
        self.toxiproxy.add_toxic(link, &toxic).await?;
        let back = self.toxiproxy.toxic(link, &name).await?;
        anyhow::ensure!(
            back.r#type == toxic.r#type
                && back.stream == toxic.stream
                && back.attributes == toxic.attributes,
            "read back {back:?}, which is not the toxic added ({toxic:?})"
        );
        Ok(())
    }

    async fn apply(&self, index: usize, kind: &FaultKind) -> anyhow::Result<String> {
        match kind {
            FaultKind::Latency {
                link,
                latency_ms,
                jitter_ms,
            } => {
                self.add_verified(
                    link,
                    Toxic::latency(
                        toxic_name(index, "latency"),
                        Stream::Downstream,
                        *latency_ms,
                        *jitter_ms,
                    ),
                )
                .await?;
                Ok(format!(
                    "{link}: +{latency_ms} ms ± {jitter_ms} ms on answers"
                ))
            }
            FaultKind::Blackhole { link } | FaultKind::CutConsumers { link } => {
                for (stream, suffix) in [(Stream::Upstream, "up"), (Stream::Downstream, "down")] {
                    self.add_verified(link, Toxic::timeout(toxic_name(index, suffix), stream, 0))
                        .await?;
                }
                Ok(format!(
                    "{link}: black hole both ways (timeout 0 on both streams)"
                ))
            }
            FaultKind::LostAcks { link } => {
                self.add_verified(
                    link,
                    Toxic::timeout(toxic_name(index, "down"), Stream::Downstream, 0),
                )
                .await?;
                Ok(format!(
                    "{link}: answers black-holed (timeout 0 downstream): requests land, acks do not"
                ))
            }
            FaultKind::Refuse { link } => {
                self.toxiproxy.set_enabled(link, false).await?;
                let back = self.toxiproxy.proxy(link).await?;
                anyhow::ensure!(!back.enabled, "{link} still reads back enabled");
                Ok(format!("{link}: proxy disabled (connections refused)"))
            }
            FaultKind::ResetPeer { link, timeout_ms } => {
                self.add_verified(
                    link,
                    Toxic::reset_peer(toxic_name(index, "reset"), Stream::Downstream, *timeout_ms),
                )
                .await?;
                Ok(format!("{link}: connections reset after {timeout_ms} ms"))
            }
            FaultKind::Kill { service, replica } => {
                let instance = self.target.instance(service, *replica).await?;
                let detail = self.target.kill(&instance).await?;
                self.killed.lock().await.insert(instance);
                Ok(detail)
            }
            FaultKind::Republish { topic, count } => {
                self.target.republish(topic, *count as usize).await
            }
            FaultKind::Poison { topic, count } => self.target.poison(topic, *count as usize).await,
        }
    }

    async fn remove_verified(&self, link: &str, name: &str) -> anyhow::Result<()> {
        self.toxiproxy.remove_toxic(link, name).await?;
        let left = self.toxiproxy.toxics(link).await?;
        anyhow::ensure!(
            left.iter().all(|t| t.name != name),
            "{name} still reads back on {link}"
        );
        Ok(())
    }

    async fn heal(&self, index: usize, kind: &FaultKind) -> anyhow::Result<String> {
        match kind {
            FaultKind::Latency { link, .. } => {
                self.remove_verified(link, &toxic_name(index, "latency"))
                    .await?;
                Ok(format!("{link}: latency removed"))
            }
            FaultKind::Blackhole { link } | FaultKind::CutConsumers { link } => {
                self.remove_verified(link, &toxic_name(index, "up")).await?;
                self.remove_verified(link, &toxic_name(index, "down"))
                    .await?;
                Ok(format!(
                    "{link}: black hole removed (its connections closed)"
                ))
            }
            FaultKind::LostAcks { link } => {
                self.remove_verified(link, &toxic_name(index, "down"))
                    .await?;
                Ok(format!(
                    "{link}: answers flow again (its connections closed)"
                ))
            }
            FaultKind::Refuse { link } => {
                self.toxiproxy.set_enabled(link, true).await?;
                let back = self.toxiproxy.proxy(link).await?;
                anyhow::ensure!(back.enabled, "{link} still reads back disabled");
                Ok(format!("{link}: proxy enabled"))
            }
            FaultKind::ResetPeer { link, .. } => {
                self.remove_verified(link, &toxic_name(index, "reset"))
                    .await?;
                Ok(format!("{link}: resets stopped"))
            }
            FaultKind::Kill { service, replica } => {
                let instance = self.target.instance(service, *replica).await?;
                let detail = self.target.restart(&instance).await?;
                self.killed.lock().await.remove(&instance);
                Ok(detail)
            }
            FaultKind::Republish { .. } | FaultKind::Poison { .. } => {
                Ok("instant fault: nothing to heal".into())
            }
        }
    }

    /// Puts everything back: resets every proxy (re-enabled, no toxics) and restarts every
    /// service still down. Safe to call more than once.
    pub async fn cleanup(&self) {
        self.drain();
        let reset = self.toxiproxy.reset().await;
        let mut notes = vec![match reset {
            Ok(()) => "every proxy reset".to_owned(),
            Err(error) => format!("proxy reset FAILED: {error:#}"),
        }];
        let killed: Vec<String> = self.killed.lock().await.iter().cloned().collect();
        for service in killed {
            match self.target.restart(&service).await {
                Ok(detail) => {
                    self.killed.lock().await.remove(&service);
                    notes.push(detail);
                }
                Err(error) => notes.push(format!("restarting {service} FAILED: {error:#}")),
            }
        }
        let exchanges = self.drain();
        self.history.note(format!(
            "cleanup: {} ({} control calls)",
            notes.join("; "),
            exchanges.len()
        ));
    }
}
