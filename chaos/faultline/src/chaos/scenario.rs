//! Scenario files: what a chaos run does, as TOML with a schema (`faultline scenario-schema`
//! prints it; `chaos/scenarios/scenario.schema.json` is that output, kept in step by a test).
//!
//! A scenario is data only. The generator turns it and its seed into a concrete plan; every
//! random choice comes from the seed, none from Toxiproxy (its toxicity stays 1.0).

use std::path::Path;

use anyhow::Context as _;
use faultline_contracts::topology::{Link, Service, Topic};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::generator::PlannedOp;

/// One scenario file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name; also the directory its runs go to (`runs/<name>/<timestamp>/`).
    pub name: String,
    /// What the scenario shows, in a sentence or two.
    pub description: String,
    /// Drives the workload, the fault timeline and every random choice.
    pub seed: u64,
    /// The invariants this scenario expects to hold and must prove (an unknown verdict on one of
    /// these makes the run unknown). Every checker runs regardless; a failure of any fails it.
    pub expect: Vec<Invariant>,
    /// Settings of the embedded stack the runner starts (ignored for a running stack).
    #[serde(default)]
    pub stack: StackKnobs,
    pub workload: Workload,
    /// The fault timeline.
    #[serde(default)]
    pub nemesis: Vec<FaultSpec>,
    /// A seeded random fault schedule, expanded by the generator and added to `nemesis`.
    #[serde(default)]
    pub random_nemesis: Option<RandomNemesis>,
    /// An explicit plan: the bookings and faults exactly as they run, instead of the generator's
    /// (what `faultline replay --shrink` writes). Excludes `nemesis`, `random_nemesis` and
    /// `workload.phases`; `workload.bookings` must equal its number of bookings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<ExplicitPlan>,
}

/// A plan written out: the seed still names the run, but draws nothing. Bookings are submitted
/// at their `at_ms` and faults start at theirs, unchanged: the generator neither spaces the
/// faults nor moves bookings into their windows.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExplicitPlan {
    /// The bookings; `op` numbers are unique and `meets_fault` indexes `faults`.
    pub ops: Vec<PlannedOp>,
    /// The fault timeline, written like `[[nemesis]]` entries, in order.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
}

/// Users added for `stack.load_seats`.
const LOAD_USERS: u32 = 20;

/// The six invariants of the product contract, and recovery after overload.
#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[serde(rename_all = "kebab-case")]
pub enum Invariant {
    /// 1. No seat held or sold by two bookings; seats sold = confirmed bookings.
    Seats,
    /// 2. Points conserved; a confirmed booking charged exactly once, a cancelled one nets zero.
    Points,
    /// 3. Every saga terminal after faults heal; no seat left HELD, no outbox row unpublished.
    Terminal,
    /// 4. A message delivered N times has one effect per consumer — and duplicates happened.
    ExactlyOnce,
    /// 5. One connected trace per booking; compensation visible in reverse order.
    Traces,
    /// 6. Every log line of a booking carries its trace id; decisions are in the logs.
    Logs,
    /// 7. After an overload the system is back at the offered rate: bookings offered after it
    ///    ends are accepted and finish in time again (a check of the `overload` phases).
    Recovery,
}

impl Invariant {
    pub const ALL: [Invariant; 7] = [
        Invariant::Seats,
        Invariant::Points,
        Invariant::Terminal,
        Invariant::ExactlyOnce,
        Invariant::Traces,
        Invariant::Logs,
        Invariant::Recovery,
    ];

    pub fn number(self) -> u8 {
        self as u8 + 1
    }

    pub fn name(self) -> &'static str {
        match self {
            Invariant::Seats => "seats",
            Invariant::Points => "points",
            Invariant::Terminal => "terminal",
            Invariant::ExactlyOnce => "exactly-once",
            Invariant::Traces => "traces",
            Invariant::Logs => "logs",
            Invariant::Recovery => "recovery",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Invariant::Seats => "no seat twice; seats sold = bookings confirmed",
            Invariant::Points => "points conserved; charged exactly once",
            Invariant::Terminal => "every saga terminal; nothing held or unpublished",
            Invariant::ExactlyOnce => "one effect per consumer for duplicated messages",
            Invariant::Traces => "one connected trace per booking; compensation in reverse",
            Invariant::Logs => "every log line of a booking carries its trace id",
            Invariant::Recovery => "throughput back within the recovery window after overload",
        }
    }
}

/// Knobs of the embedded stack.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StackKnobs {
    /// Overrides of reservation's `saga` settings (e.g. `charge_deadline_ms`).
    #[serde(default)]
    pub saga: serde_json::Map<String, serde_json::Value>,
    /// Producer idempotence (librdkafka `enable.idempotence`). Lost acknowledgements only turn
    /// into duplicates with it off.
    #[serde(default)]
    pub idempotent_producer: Option<bool>,
    /// Consumers' `session.timeout.ms` (a link cut longer than this forces a rebalance).
    #[serde(default)]
    pub session_timeout_ms: Option<u64>,
    /// Extra librdkafka properties for every service (e.g. `request.timeout.ms`).
    #[serde(default)]
    pub kafka: std::collections::BTreeMap<String, String>,
    /// Adds a schedule of this many 1-point seats (`load-1-00001` …) and users rich enough to
    /// buy them (`load-user-1` … `load-user-20`) to the demo's catalogue, for open-loop load.
    #[serde(default)]
    pub load_seats: Option<u32>,
    /// Overrides of reservation's admission control (e.g. `max_in_flight`).
    #[serde(default)]
    pub admission: serde_json::Map<String, serde_json::Value>,
    /// Processes per service (the five services), sharing each service's database and the
    /// broker; a kill fault then names its `replica`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
}

impl StackKnobs {
    /// Refuses any setting: a run on a stack that is already running (`TargetSpec::Shared`)
    /// cannot apply them, and silently ignoring them would test something else.
    pub fn ensure_default(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            *self == Self::default(),
            "[stack] settings need a stack of the run's own; this run shares one that is already running"
        );
        Ok(())
    }
}

/// The client operations.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Bookings to submit.
    pub bookings: u32,
    /// At most this many requests in flight.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Submissions are spread over this window (ms from the start), at seeded times.
    #[serde(default)]
    pub spread_ms: u64,
    /// Share of bookings that target a seat another booking already targets (rejections).
    #[serde(default)]
    pub contended: f64,
    /// Share of bookings by users who cannot afford the seat (declined → compensation).
    #[serde(default)]
    pub unaffordable: f64,
    /// After the last fault heals, every booking must be terminal within this time.
    #[serde(default = "default_settle_ms")]
    pub settle_ms: u64,
    /// Open-loop load instead of `spread_ms`: consecutive phases, each submitting bookings at a
    /// fixed rate (one every 1/rate s, whatever the answers). `bookings` must then equal the
    /// phases' total.
    #[serde(default)]
    pub phases: Vec<RatePhase>,
    /// For the recovery check (invariant 7): how soon after the last overload phase ends the
    /// offered rate must be carried again.
    #[serde(default = "default_recover_within_ms")]
    pub recover_within_ms: u64,
    /// For the recovery check: a booking counts as carried when it is terminal within this time
    /// of its submission (reservation's hold deadline by default).
    #[serde(default = "default_booking_deadline_ms")]
    pub booking_deadline_ms: u64,
}

/// One open-loop phase of the workload.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RatePhase {
    /// Bookings submitted per second.
    pub rate_per_s: f64,
    pub for_ms: u64,
    /// Marks the phase as the overload the recovery check measures from.
    #[serde(default)]
    pub overload: bool,
}

impl RatePhase {
    /// How many bookings this phase submits.
    pub fn bookings(&self) -> u32 {
        (self.rate_per_s * self.for_ms as f64 / 1000.0).round() as u32
    }
}

impl Workload {
    /// How long submissions go on (ms from the start).
    pub fn span_ms(&self) -> u64 {
        if self.phases.is_empty() {
            self.spread_ms
        } else {
            self.phases.iter().map(|p| p.for_ms).sum()
        }
    }

    /// When the last overload phase ends (ms from the start), if there is one.
    pub fn overload_end_ms(&self) -> Option<u64> {
        let mut at = 0;
        let mut end = None;
        for phase in &self.phases {
            at += phase.for_ms;
            if phase.overload {
                end = Some(at);
            }
        }
        end
    }
}

fn default_recover_within_ms() -> u64 {
    30_000
}
fn default_booking_deadline_ms() -> u64 {
    10_000
}

fn default_concurrency() -> u32 {
    8
}
fn default_settle_ms() -> u64 {
    30_000
}

/// The links a fault may act on, by the names of their Toxiproxy proxies.
pub fn link_names() -> Vec<&'static str> {
    Link::ALL.iter().map(|link| link.proxy_name()).collect()
}

/// The services a process fault can hit.
pub fn service_names() -> Vec<&'static str> {
    Service::ALL.iter().map(|service| service.name()).collect()
}

/// The topics a message fault can use.
pub fn topic_names() -> Vec<&'static str> {
    Topic::MESSAGES.iter().map(|topic| topic.name()).collect()
}

/// A string field whose value is one of `names`, as the JSON Schema says it (editors then
/// complete and check fault kinds, links, services and topics from the typed topology).
fn one_of(names: &[&str]) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "enum": names })
}

fn link_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    one_of(&link_names())
}

fn service_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    one_of(&service_names())
}

fn topic_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    one_of(&topic_names())
}

/// One fault of the timeline as written in a scenario file: `fault` names the kind, and each
/// kind has exactly its own fields, typed — an unknown kind, link, service or topic, a missing
/// field or one the kind does not take fails to parse (and the JSON Schema lists each kind with
/// its fields). Every kind starts `at_ms` after the workload starts and, unless it is instant
/// (republish, poison), lasts `for_ms`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(tag = "fault", rename_all = "kebab-case", deny_unknown_fields)]
pub enum FaultSpec {
    /// Toxiproxy `latency` (± `jitter_ms`) on the link's answers.
    Latency {
        at_ms: u64,
        for_ms: u64,
        #[schemars(schema_with = "link_schema")]
        link: Link,
        latency_ms: u64,
        #[serde(default)]
        jitter_ms: u64,
    },
    /// A silent partition of the link.
    Blackhole {
        at_ms: u64,
        for_ms: u64,
        #[schemars(schema_with = "link_schema")]
        link: Link,
    },
    /// A loud partition: the link's proxy refuses connections.
    Refuse {
        at_ms: u64,
        for_ms: u64,
        #[schemars(schema_with = "link_schema")]
        link: Link,
    },
    /// Lost acknowledgements on the broker link (`kafka`, the only one it takes).
    LostAcks {
        at_ms: u64,
        for_ms: u64,
        #[serde(default = "broker_link")]
        #[schemars(schema_with = "link_schema")]
        link: Link,
    },
    /// The broker link cut past the consumers' session timeout (`kafka` only).
    CutConsumers {
        at_ms: u64,
        for_ms: u64,
        #[serde(default = "broker_link")]
        #[schemars(schema_with = "link_schema")]
        link: Link,
    },
    /// Connections of the link reset after `timeout_ms`.
    ResetPeer {
        at_ms: u64,
        for_ms: u64,
        #[schemars(schema_with = "link_schema")]
        link: Link,
        #[serde(default)]
        timeout_ms: u64,
    },
    /// SIGKILL a service (its `replica`, counted from 1, when `[stack] replicas` > 1),
    /// restarted when the fault ends.
    Kill {
        at_ms: u64,
        for_ms: u64,
        #[schemars(schema_with = "service_schema")]
        service: Service,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<u32>,
    },
    /// Publish again, byte for byte, `count` messages already on `topic` (instant).
    Republish {
        at_ms: u64,
        /// Ignored: the kind is instant (accepted so a timeline can give every fault one).
        #[serde(default, skip_serializing)]
        for_ms: u64,
        #[schemars(schema_with = "topic_schema")]
        topic: Topic,
        count: u32,
    },
    /// Publish `count` undecodable messages to `topic` (instant).
    Poison {
        at_ms: u64,
        /// Ignored: the kind is instant (accepted so a timeline can give every fault one).
        #[serde(default, skip_serializing)]
        for_ms: u64,
        #[schemars(schema_with = "topic_schema")]
        topic: Topic,
        count: u32,
    },
}

fn broker_link() -> Link {
    Link::Kafka
}

/// One fault of the plan: starts `at_ms` after the workload starts, lasts `for_ms`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Fault {
    pub at_ms: u64,
    pub for_ms: u64,
    pub kind: FaultKind,
}

/// What a fault does.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum FaultKind {
    /// Toxiproxy `latency` with `jitter` on the link's answers (downstream).
    Latency {
        link: String,
        latency_ms: u64,
        jitter_ms: u64,
    },
    /// A silent partition: Toxiproxy `timeout` 0 on both streams (connects succeed, nothing
    /// arrives).
    Blackhole { link: String },
    /// A loud partition: the proxy disabled (connections refused, live ones closed).
    Refuse { link: String },
    /// Lost acknowledgements: `timeout` 0 on the downstream of a producer's broker link, so the
    /// broker appends and the producer never hears it and resends.
    LostAcks { link: String },
    /// Consumer redelivery: cut the broker link (both streams) for longer than the consumers'
    /// session timeout, so uncommitted work is delivered again after the rebalance.
    CutConsumers { link: String },
    /// Toxiproxy `reset_peer`: connections are reset (TCP RST) after `timeout_ms`.
    ResetPeer { link: String, timeout_ms: u64 },
    /// SIGKILL a service (one of its replicas when it runs several times); it is restarted when
    /// the fault ends.
    Kill {
        service: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<u32>,
    },
    /// Publish again, byte for byte (same message id), `count` messages already on `topic`.
    Republish { topic: String, count: u32 },
    /// Publish `count` poison messages (undecodable) to `topic`; they must be dead-lettered.
    Poison { topic: String, count: u32 },
}

impl FaultKind {
    /// The kind's name as written in scenario files.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Latency { .. } => "latency",
            FaultKind::Blackhole { .. } => "blackhole",
            FaultKind::Refuse { .. } => "refuse",
            FaultKind::LostAcks { .. } => "lost-acks",
            FaultKind::CutConsumers { .. } => "cut-consumers",
            FaultKind::ResetPeer { .. } => "reset-peer",
            FaultKind::Kill { .. } => "kill",
            FaultKind::Republish { .. } => "republish",
            FaultKind::Poison { .. } => "poison",
        }
    }

    /// What it hits: a link, a service or a topic.
    pub fn target(&self) -> &str {
        match self {
            FaultKind::Latency { link, .. }
            | FaultKind::Blackhole { link }
            | FaultKind::Refuse { link }
            | FaultKind::LostAcks { link }
            | FaultKind::CutConsumers { link }
            | FaultKind::ResetPeer { link, .. } => link,
            FaultKind::Kill { service, .. } => service,
            FaultKind::Republish { topic, .. } | FaultKind::Poison { topic, .. } => topic,
        }
    }

    /// The link a network fault acts on (`None` for process and message faults).
    pub fn link(&self) -> Option<&str> {
        match self {
            FaultKind::Latency { link, .. }
            | FaultKind::Blackhole { link }
            | FaultKind::Refuse { link }
            | FaultKind::LostAcks { link }
            | FaultKind::CutConsumers { link }
            | FaultKind::ResetPeer { link, .. } => Some(link),
            _ => None,
        }
    }

    /// True for faults with no duration.
    pub fn instant(&self) -> bool {
        matches!(self, FaultKind::Republish { .. } | FaultKind::Poison { .. })
    }
}

/// A seeded random nemesis: `count` faults drawn from `kinds`, at times in `window_ms`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RandomNemesis {
    /// Kinds to draw from: latency, blackhole, refuse, reset-peer, kill, republish.
    pub kinds: Vec<String>,
    pub count: u32,
    /// Faults start within `[from, to)` ms.
    pub window_ms: [u64; 2],
    /// Each lasts within `[min, max)` ms.
    pub duration_ms: [u64; 2],
}

impl Scenario {
    /// The same scenario with its open-loop rates (`workload.phases`) multiplied by `factor`, and
    /// `bookings` recounted; a workload without phases is unchanged.
    pub fn scale_load(mut self, factor: f64) -> anyhow::Result<Self> {
        anyhow::ensure!(
            factor > 0.0 && factor.is_finite(),
            "--load-scale must be a positive number, not {factor}"
        );
        if self.workload.phases.is_empty() || factor == 1.0 {
            return Ok(self);
        }
        for phase in &mut self.workload.phases {
            phase.rate_per_s *= factor;
        }
        self.workload.bookings = self.workload.phases.iter().map(RatePhase::bookings).sum();
        self.validate()?;
        Ok(self)
    }

    /// The catalogue the stack is seeded with: the demo's, plus `stack.load_seats` if set.
    pub fn catalogue(&self) -> crate::seed::Seed {
        use crate::seed::{Seed, SeedConcert, SeedSchedule, SeedUser};
        let mut seed = Seed::default();
        if let Some(seats) = self.stack.load_seats {
            seed.users.extend((1..=LOAD_USERS).map(|i| SeedUser {
                user_id: format!("load-user-{i}"),
                points: i64::from(seats),
            }));
            seed.concerts.push(SeedConcert {
                id: "concert-load".into(),
                title: "Load Test".into(),
                schedules: vec![SeedSchedule {
                    id: "load-1".into(),
                    starts_at: "2027-04-01T19:00:00Z".into(),
                    seats,
                    price: 1,
                }],
            });
        }
        seed
    }

    /// Parses and validates a scenario file; errors name the file, the line and what is wrong.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading scenario {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("scenario {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Checks what the types cannot: known links, services and topics; sane numbers.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.name.is_empty()
                && self
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "name {:?}: use letters, digits, '-' and '_' (it names a directory)",
            self.name
        );
        anyhow::ensure!(
            !self.expect.is_empty(),
            "expect: name at least one invariant"
        );
        let w = &self.workload;
        if w.phases.is_empty() {
            anyhow::ensure!(
                (1..=500).contains(&w.bookings),
                "workload.bookings must be 1..=500"
            );
        } else {
            for (i, phase) in w.phases.iter().enumerate() {
                anyhow::ensure!(
                    phase.rate_per_s > 0.0 && phase.rate_per_s <= 5_000.0 && phase.for_ms > 0,
                    "workload.phases[{i}]: rate_per_s must be in (0, 5000] and for_ms > 0"
                );
            }
            let total: u32 = w.phases.iter().map(RatePhase::bookings).sum();
            anyhow::ensure!(
                w.bookings == total && (1..=50_000).contains(&total),
                "workload.bookings must equal the phases' total ({total}, at most 50000)"
            );
        }
        anyhow::ensure!(w.concurrency >= 1, "workload.concurrency must be ≥ 1");
        for (name, share) in [("contended", w.contended), ("unaffordable", w.unaffordable)] {
            anyhow::ensure!(
                (0.0..=1.0).contains(&share),
                "workload.{name} is a share between 0 and 1, not {share}"
            );
        }
        anyhow::ensure!(
            w.contended + w.unaffordable <= 1.0,
            "workload.contended + workload.unaffordable must not exceed 1"
        );
        let replicas = self.stack.replicas.unwrap_or(1);
        anyhow::ensure!(
            (1..=8).contains(&replicas),
            "stack.replicas must be 1..=8, not {replicas}"
        );
        for fault in self.faults()? {
            if let FaultKind::Kill {
                service,
                replica: Some(replica),
            } = &fault.kind
            {
                anyhow::ensure!(
                    *replica <= replicas,
                    "a kill of {service} replica {replica}: the stack runs {replicas} of each service ([stack] replicas)"
                );
            }
        }
        if let Some(plan) = &self.plan {
            self.validate_plan(plan)?;
        }
        if let Some(random) = &self.random_nemesis {
            anyhow::ensure!(!random.kinds.is_empty(), "random_nemesis.kinds is empty");
            for kind in &random.kinds {
                anyhow::ensure!(
                    crate::chaos::generator::RANDOM_KINDS.contains(&kind.as_str()),
                    "random_nemesis.kinds: unknown kind {kind:?} (one of {:?})",
                    crate::chaos::generator::RANDOM_KINDS
                );
            }
            anyhow::ensure!(
                random.window_ms[0] < random.window_ms[1]
                    && random.duration_ms[0] < random.duration_ms[1],
                "random_nemesis: window_ms and duration_ms are [from, to) with from < to"
            );
        }
        Ok(())
    }
}

impl Scenario {
    /// What an explicit plan must satisfy beyond its types (users and seats are checked against
    /// the catalogue by the generator).
    fn validate_plan(&self, plan: &ExplicitPlan) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.nemesis.is_empty() && self.random_nemesis.is_none(),
            "plan: an explicit plan holds its faults in plan.faults; drop nemesis and random_nemesis"
        );
        anyhow::ensure!(
            self.workload.phases.is_empty(),
            "plan: an explicit plan does not go with open-loop workload.phases"
        );
        anyhow::ensure!(
            self.workload.bookings as usize == plan.ops.len(),
            "workload.bookings ({}) must equal the plan's bookings ({})",
            self.workload.bookings,
            plan.ops.len()
        );
        let mut numbers = std::collections::BTreeSet::new();
        for op in &plan.ops {
            anyhow::ensure!(
                numbers.insert(op.op),
                "plan.ops: op {} appears twice",
                op.op
            );
            if let Some(fault) = op.meets_fault {
                anyhow::ensure!(
                    fault < plan.faults.len(),
                    "plan.ops: op {} meets fault {fault}, but the plan has {} fault(s)",
                    op.op,
                    plan.faults.len()
                );
            }
        }
        plan.faults()?;
        Ok(())
    }

    /// The written timeline as faults, in file order.
    pub fn faults(&self) -> anyhow::Result<Vec<Fault>> {
        self.nemesis
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                spec.to_fault()
                    .with_context(|| format!("nemesis[{i}] (fault = {:?})", spec.name()))
            })
            .collect()
    }
}

impl ExplicitPlan {
    /// The plan's faults, in order.
    pub fn faults(&self) -> anyhow::Result<Vec<Fault>> {
        self.faults
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                spec.to_fault()
                    .with_context(|| format!("plan.faults[{i}] (fault = {:?})", spec.name()))
            })
            .collect()
    }
}

impl FaultSpec {
    /// The kind's name as written in scenario files.
    pub fn name(&self) -> &'static str {
        self.parts().2.name()
    }

    /// The service a kill names.
    pub fn killed(&self) -> Option<Service> {
        match self {
            FaultSpec::Kill { service, .. } => Some(*service),
            _ => None,
        }
    }

    /// The entry that describes `fault` (the inverse of [`FaultSpec::to_fault`]); `None` for a
    /// fault whose link, service or topic the topology does not know (a plan's faults were
    /// checked against it when the plan was made).
    pub fn from_fault(fault: &Fault) -> Option<Self> {
        // The two are the same table: `fault` and the kind's fields (names as strings in the
        // kind, as topology types here), plus `at_ms` and `for_ms` — so serde maps one onto the
        // other, and parsing the names is the check.
        let mut table = serde_json::to_value(&fault.kind).ok()?;
        table["at_ms"] = fault.at_ms.into();
        table["for_ms"] = fault.for_ms.into();
        serde_json::from_value(table).ok()
    }

    /// The fault this entry describes, or what is wrong with its numbers (its names are
    /// checked by parsing).
    pub fn to_fault(&self) -> anyhow::Result<Fault> {
        let (at_ms, for_ms, kind) = self.parts();
        validate_fault(&kind, for_ms)?;
        Ok(Fault {
            at_ms,
            for_ms: if kind.instant() { 0 } else { for_ms },
            kind,
        })
    }

    /// When it starts, how long it lasts and what it does, unchecked (see [`Self::from_fault`]
    /// for why serde converts).
    fn parts(&self) -> (u64, u64, FaultKind) {
        let mut table = serde_json::to_value(self).expect("a fault spec is a JSON table");
        let number = |table: &mut serde_json::Value, key: &str| {
            table
                .as_object_mut()
                .and_then(|fields| fields.remove(key))
                .and_then(|value| value.as_u64())
                .unwrap_or(0)
        };
        let (at_ms, for_ms) = (number(&mut table, "at_ms"), number(&mut table, "for_ms"));
        let kind = serde_json::from_value(table)
            .expect("every fault spec's fields are its fault kind's, names as strings");
        (at_ms, for_ms, kind)
    }
}

fn validate_fault(kind: &FaultKind, for_ms: u64) -> anyhow::Result<()> {
    let known = |what: &str, value: &str, list: &[&str]| {
        anyhow::ensure!(
            list.contains(&value),
            "unknown {what} {value:?} (one of {list:?})"
        );
        Ok(())
    };
    match kind {
        FaultKind::Latency { link, .. }
        | FaultKind::Blackhole { link }
        | FaultKind::Refuse { link }
        | FaultKind::ResetPeer { link, .. } => known("link", link, &link_names())?,
        FaultKind::LostAcks { link } | FaultKind::CutConsumers { link } => {
            anyhow::ensure!(
                Link::parse(link) == Some(Link::Kafka),
                "{} works on the broker link \"{}\"",
                kind.name(),
                Link::Kafka
            )
        }
        FaultKind::Kill { service, replica } => {
            known("service", service, &service_names())?;
            anyhow::ensure!(*replica != Some(0), "replica counts from 1");
        }
        FaultKind::Republish { topic, count } | FaultKind::Poison { topic, count } => {
            known("topic", topic, &topic_names())?;
            anyhow::ensure!(*count >= 1, "count must be ≥ 1");
        }
    }
    if !kind.instant() {
        anyhow::ensure!(for_ms > 0, "for_ms must be > 0 for a {} fault", kind.name());
    }
    Ok(())
}

/// The JSON Schema of scenario files.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Scenario)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry of every kind, as a scenario file writes them.
    const EVERY_KIND: &str = r#"
        [[f]]
        fault = "latency"
        link = "reservation-payment"
        at_ms = 1
        for_ms = 2
        latency_ms = 300
        jitter_ms = 50
        [[f]]
        fault = "blackhole"
        link = "gateway-payment"
        at_ms = 1
        for_ms = 2
        [[f]]
        fault = "refuse"
        link = "inventory-postgres"
        at_ms = 1
        for_ms = 2
        [[f]]
        fault = "lost-acks"
        at_ms = 1
        for_ms = 2
        [[f]]
        fault = "cut-consumers"
        link = "kafka"
        at_ms = 1
        for_ms = 2
        [[f]]
        fault = "reset-peer"
        link = "gateway-reservation"
        at_ms = 1
        for_ms = 2
        timeout_ms = 10
        [[f]]
        fault = "kill"
        service = "inventory"
        replica = 2
        at_ms = 1
        for_ms = 2
        [[f]]
        fault = "republish"
        topic = "inventory.events"
        count = 3
        at_ms = 1
        [[f]]
        fault = "poison"
        topic = "booking.events"
        count = 1
        at_ms = 1
    "#;

    #[derive(Deserialize)]
    struct Entries {
        f: Vec<FaultSpec>,
    }

    #[test]
    fn every_kind_becomes_its_fault_and_back() {
        let specs = toml::from_str::<Entries>(EVERY_KIND).expect("parses").f;
        assert_eq!(specs.len(), 9);
        for spec in &specs {
            let fault = spec.to_fault().expect("valid");
            assert_eq!(fault.kind.name(), spec.name());
            assert_eq!(FaultSpec::from_fault(&fault).as_ref(), Some(spec));
        }
        assert_eq!(
            specs[0].to_fault().expect("valid").kind,
            FaultKind::Latency {
                link: "reservation-payment".into(),
                latency_ms: 300,
                jitter_ms: 50
            }
        );
        assert_eq!(
            specs[3].to_fault().expect("valid").kind,
            FaultKind::LostAcks {
                link: "kafka".into()
            }
        );
        let kill = specs[6].to_fault().expect("valid");
        assert_eq!(
            (kill.at_ms, kill.for_ms, kill.kind),
            (
                1,
                2,
                FaultKind::Kill {
                    service: "inventory".into(),
                    replica: Some(2)
                }
            )
        );
        assert_eq!(specs[7].to_fault().expect("valid").for_ms, 0);
    }

    #[test]
    fn a_fault_naming_what_the_topology_lacks_has_no_spec() {
        let fault = Fault {
            at_ms: 1,
            for_ms: 2,
            kind: FaultKind::Blackhole {
                link: "nowhere".into(),
            },
        };
        assert_eq!(FaultSpec::from_fault(&fault), None);
    }
}
