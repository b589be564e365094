//! The generator: turns a scenario and its seed into a concrete plan — which user books which
//! seat when, and which fault starts when. Same scenario + same seed = same plan (the seeded
//! `StdRng` is pinned by Cargo.lock), which is what `faultline replay` relies on. A scenario
//! with an explicit `plan` (as `replay --shrink` writes) draws nothing: its plan is used as is.
//!
//! What is *not* drawn from the seed: trace ids and idempotency keys. They name one run's
//! operations and must never collide with an earlier run's in Tempo, Loki or the idempotency
//! store of a long-running stack.

use faultline_contracts::topology::{Link, Service, Topic};
use rand::{RngExt as _, SeedableRng as _, rngs::StdRng, seq::SliceRandom as _};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::scenario::{ExplicitPlan, Fault, FaultKind, RatePhase, Scenario};
use crate::seed::Seed;

/// Kinds a random nemesis may draw.
pub const RANDOM_KINDS: [&str; 6] = [
    "latency",
    "blackhole",
    "refuse",
    "reset-peer",
    "kill",
    "republish",
];

/// Links a random network fault may hit: the ones every booking crosses.
const RANDOM_LINKS: [Link; 2] = [Link::ReservationPayment, Link::GatewayReservation];

/// Services a random kill may hit.
const RANDOM_KILLS: [Service; 3] = [Service::Inventory, Service::Payment, Service::Analytics];

/// One booking the client will submit.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlannedOp {
    /// Operation number (the Jepsen "process" is the op itself: each op is one client).
    pub op: u32,
    /// When to submit, in ms from the start of the workload.
    pub at_ms: u64,
    /// The booking user (a user of the seeded catalogue).
    pub user: String,
    /// The seat to book (a seat of the seeded catalogue).
    pub seat: String,
    /// What kind of booking the generator meant it to be: fresh, contended or unaffordable.
    pub intent: String,
    /// The fault (its index in [`Plan::faults`]) this booking is sent to meet (see
    /// [`meet_every_fault`]): the client submits it on time even when the workload's concurrency
    /// is used up by bookings an earlier fault holds back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meets_fault: Option<usize>,
}

/// Everything a run will do.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub seed: u64,
    pub ops: Vec<PlannedOp>,
    pub faults: Vec<Fault>,
}

impl Plan {
    /// When the last fault ends (ms from the start).
    pub fn faults_end_ms(&self) -> u64 {
        self.faults
            .iter()
            .map(|f| f.at_ms + f.for_ms)
            .max()
            .unwrap_or(0)
    }
}

/// When open-loop operation `op` is due: phases run one after the other, each submitting at its
/// own fixed rate.
fn phase_time_ms(phases: &[RatePhase], op: u32) -> u64 {
    let (mut first, mut start_ms) = (0u32, 0u64);
    for phase in phases {
        let count = phase.bookings();
        if op < first + count {
            return start_ms + ((op - first) as f64 * 1000.0 / phase.rate_per_s) as u64;
        }
        first += count;
        start_ms += phase.for_ms;
    }
    start_ms
}

/// Builds the plan for `scenario` against the seeded catalogue `seed` (a scenario's explicit
/// `plan`, when it has one, is taken as written).
pub fn plan(scenario: &Scenario, seed: &Seed) -> anyhow::Result<Plan> {
    if let Some(explicit) = &scenario.plan {
        return written_plan(scenario.seed, explicit, seed);
    }
    let mut rng = StdRng::seed_from_u64(scenario.seed);
    let workload = &scenario.workload;

    let rich: Vec<&str> = seed
        .users
        .iter()
        .filter(|u| u.points >= 1_000)
        .map(|u| u.user_id.as_str())
        .collect();
    let poor: Vec<(&str, i64)> = seed
        .users
        .iter()
        .filter(|u| u.points < 1_000)
        .map(|u| (u.user_id.as_str(), u.points))
        .collect();
    let mut free: Vec<(String, i64)> = Vec::new();
    for concert in &seed.concerts {
        for schedule in &concert.schedules {
            for seat in Seed::seat_ids(schedule) {
                free.push((seat, schedule.price));
            }
        }
    }
    free.shuffle(&mut rng);
    anyhow::ensure!(
        !rich.is_empty(),
        "the seed has no user who can afford a seat"
    );

    let mut targeted: Vec<String> = Vec::new();
    let mut ops = Vec::new();
    for op in 0..workload.bookings {
        let at_ms = if !workload.phases.is_empty() {
            phase_time_ms(&workload.phases, op)
        } else if workload.bookings == 1 {
            0
        } else {
            rng.random_range(0..=workload.spread_ms)
        };
        let roll: f64 = rng.random_range(0.0..1.0);
        let (intent, user, seat) = if roll < workload.contended && !targeted.is_empty() {
            let seat = targeted[rng.random_range(0..targeted.len())].clone();
            ("contended", rich[rng.random_range(0..rich.len())], seat)
        } else if roll < workload.contended + workload.unaffordable && !poor.is_empty() {
            let (user, points) = poor[rng.random_range(0..poor.len())];
            let Some(index) = free.iter().position(|(_, price)| *price > points) else {
                anyhow::bail!("no seat left that {user} cannot afford: fewer bookings, please");
            };
            ("unaffordable", user, free.swap_remove(index).0)
        } else {
            let (seat, _) = free.pop().ok_or_else(|| {
                anyhow::anyhow!("the seeded catalogue has too few seats for this workload")
            })?;
            ("fresh", rich[rng.random_range(0..rich.len())], seat)
        };
        targeted.push(seat.clone());
        ops.push(PlannedOp {
            op,
            at_ms,
            user: user.to_owned(),
            seat,
            intent: intent.to_owned(),
            meets_fault: None,
        });
    }
    ops.sort_by_key(|o| (o.at_ms, o.op));

    let mut faults = scenario.faults()?;
    if let Some(random) = &scenario.random_nemesis {
        for _ in 0..random.count {
            let kind = random.kinds[rng.random_range(0..random.kinds.len())].as_str();
            let at_ms = rng.random_range(random.window_ms[0]..random.window_ms[1]);
            let for_ms = rng.random_range(random.duration_ms[0]..random.duration_ms[1]);
            let link = RANDOM_LINKS[rng.random_range(0..RANDOM_LINKS.len())]
                .proxy_name()
                .to_owned();
            let kind = match kind {
                "latency" => FaultKind::Latency {
                    link,
                    latency_ms: rng.random_range(100..800),
                    jitter_ms: rng.random_range(0..200),
                },
                "blackhole" => FaultKind::Blackhole { link },
                "refuse" => FaultKind::Refuse { link },
                "reset-peer" => FaultKind::ResetPeer {
                    link,
                    timeout_ms: 0,
                },
                "kill" => FaultKind::Kill {
                    service: RANDOM_KILLS[rng.random_range(0..RANDOM_KILLS.len())]
                        .name()
                        .to_owned(),
                    replica: match scenario.stack.replicas {
                        Some(replicas) if replicas > 1 => Some(rng.random_range(1..=replicas)),
                        _ => None,
                    },
                },
                _ => FaultKind::Republish {
                    topic: Topic::InventoryCommands.name().into(),
                    count: rng.random_range(1..6),
                },
            };
            let for_ms = if kind.instant() { 0 } else { for_ms };
            faults.push(Fault {
                at_ms,
                for_ms,
                kind,
            });
        }
    }
    faults.sort_by_key(|f| f.at_ms);
    // One lasting fault at a time (instant ones aside): a later one starts FAULT_GAP_MS after
    // the earlier one ends. Two on one target would heal each other; two on different targets
    // can starve each other of traffic (a booking refused at the gateway never reaches
    // reservation→payment; a charge waits while inventory is down). Deterministic, so replays
    // agree.
    for i in 1..faults.len() {
        let (done, rest) = faults.split_at_mut(i);
        let fault = &mut rest[0];
        if fault.kind.instant() {
            continue;
        }
        for earlier in done.iter() {
            let end = earlier.at_ms + earlier.for_ms;
            if !earlier.kind.instant() && fault.at_ms < end + FAULT_GAP_MS {
                fault.at_ms = end + FAULT_GAP_MS;
            }
        }
    }
    faults.sort_by_key(|f| f.at_ms);
    meet_every_fault(&mut ops, &faults, !workload.phases.is_empty(), &mut rng)?;
    Ok(Plan {
        seed: scenario.seed,
        ops,
        faults,
    })
}

/// A scenario's explicit plan, as written (bookings in time order), once every user and seat it
/// names is in the catalogue.
fn written_plan(number: u64, explicit: &ExplicitPlan, seed: &Seed) -> anyhow::Result<Plan> {
    let users: std::collections::BTreeSet<&str> =
        seed.users.iter().map(|u| u.user_id.as_str()).collect();
    let seats: std::collections::BTreeSet<String> = seed
        .concerts
        .iter()
        .flat_map(|c| c.schedules.iter())
        .flat_map(Seed::seat_ids)
        .collect();
    for op in &explicit.ops {
        anyhow::ensure!(
            users.contains(op.user.as_str()),
            "plan.ops: op {} books as {:?}, who is not in the seeded catalogue",
            op.op,
            op.user
        );
        anyhow::ensure!(
            seats.contains(&op.seat),
            "plan.ops: op {} books seat {:?}, which is not in the seeded catalogue",
            op.op,
            op.seat
        );
    }
    let mut ops = explicit.ops.clone();
    ops.sort_by_key(|o| (o.at_ms, o.op));
    Ok(Plan {
        seed: number,
        ops,
        faults: explicit.faults()?,
    })
}

/// How long after a lasting fault ends the next may start: longer than the callers' circuit
/// breakers stay open after their last failure (the kit's `open_for`, 2 s), during which no
/// request crosses the link and a fault there would meet no traffic (mixed on seed 7000: a
/// reset-peer right after a refusal met only the gateway's open breaker; on seed 7005 a black
/// hole on reservation→payment met only bookings the gateway link was refusing).
pub const FAULT_GAP_MS: u64 = 3_000;

/// Bookings a network fault needs submitted early in its window: the first crosses the faulty
/// link while the fault is on, the second still does if the first's step ran before it.
pub const BOOKINGS_PER_FAULT: usize = 2;

/// The part of a network fault's window in which [`BOOKINGS_PER_FAULT`] bookings are submitted:
/// its first half, so that even a booking whose traffic reaches the link a step later (a charge
/// follows the hold) crosses it while the fault is still on.
pub fn meeting_window(fault: &Fault) -> Option<std::ops::Range<u64>> {
    (fault.kind.link().is_some() && fault.for_ms > 0)
        .then(|| fault.at_ms..fault.at_ms + (fault.for_ms / 2).max(1))
}

/// Whether a booking crosses every link of the saga: a contended one may lose its seat at the
/// hold and never reach reservation→payment (mixed on seed 9001: both bookings sent to meet a
/// latency on that link were contended, and rejected).
fn can_meet(op: &PlannedOp) -> bool {
    op.intent != "contended"
}

/// Shapes the workload around the faults so none is vacuous, whatever the seed: every network
/// fault gets [`BOOKINGS_PER_FAULT`] bookings submitted in its [`meeting_window`]. Bookings
/// already there are kept for it; a fault short of them takes bookings no other fault needs and
/// moves them into its window (drawn from the seed, so replays agree). Each is marked
/// [`PlannedOp::meets_fault`], so the client sends it on time whatever holds the others back.
/// An open-loop workload keeps its fixed rates: a fault outside its phases is an error in the
/// scenario.
fn meet_every_fault(
    ops: &mut [PlannedOp],
    faults: &[Fault],
    open_loop: bool,
    rng: &mut StdRng,
) -> anyhow::Result<()> {
    let mut pinned = vec![false; ops.len()];
    let mut short = Vec::new();
    for (number, fault) in faults.iter().enumerate() {
        let Some(window) = meeting_window(fault) else {
            continue;
        };
        let mut found = 0;
        for (index, op) in ops.iter().enumerate() {
            if found < BOOKINGS_PER_FAULT
                && !pinned[index]
                && can_meet(op)
                && window.contains(&op.at_ms)
            {
                pinned[index] = true;
                found += 1;
            }
        }
        for (index, op) in ops.iter_mut().enumerate() {
            if pinned[index]
                && op.meets_fault.is_none()
                && can_meet(op)
                && window.contains(&op.at_ms)
            {
                op.meets_fault = Some(number);
            }
        }
        if found < BOOKINGS_PER_FAULT {
            short.push((number, window, BOOKINGS_PER_FAULT - found));
        }
    }
    for (number, window, missing) in short {
        anyhow::ensure!(
            !open_loop,
            "fault {} (from {} ms) lies outside the open-loop phases: no booking would cross its link",
            number + 1,
            window.start
        );
        for _ in 0..missing {
            let free: Vec<usize> = (0..ops.len())
                .filter(|&i| !pinned[i] && can_meet(&ops[i]))
                .collect();
            anyhow::ensure!(
                !free.is_empty(),
                "too few bookings for the faults: each network fault needs {BOOKINGS_PER_FAULT} uncontended ones submitted in the first half of its window"
            );
            let index = free[rng.random_range(0..free.len())];
            ops[index].at_ms = rng.random_range(window.clone());
            ops[index].meets_fault = Some(number);
            pinned[index] = true;
        }
    }
    ops.sort_by_key(|o| (o.at_ms, o.op));
    Ok(())
}
