//! Which replica handled which booking, read from the traces: every span carries its sender's
//! `service.instance.id`, so a booking's trace names the instances of each service that worked
//! on it. A booking whose trace shows two instances of one service was handed over — a replica
//! died (or lost its partitions) and another carried the saga on. The report shows each
//! instance's share and the hand-overs with links to their traces; a run of one instance per
//! service has nothing to show.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{evidence::Span, history::Operation};

/// Enough hand-overs to open; the count says how many there were.
pub const MAX_EXAMPLES: usize = 20;

/// How the bookings were spread over the replicas.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Handling {
    /// Every instance that sent spans, with how many bookings' traces it appears in.
    pub instances: Vec<Share>,
    /// Bookings whose trace shows two or more instances of one service.
    pub handed_over: usize,
    /// At most [`MAX_EXAMPLES`] of them.
    pub examples: Vec<HandOver>,
}

/// One instance's share of the bookings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Share {
    pub service: String,
    pub instance: String,
    pub bookings: usize,
}

/// A booking one service's work on which moved between instances.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HandOver {
    pub booking_id: String,
    pub trace_id: String,
    pub service: String,
    /// The instances in the order they first worked on the booking.
    pub instances: Vec<String>,
    pub trace_link: String,
}

impl HandOver {
    pub fn describe(&self) -> String {
        format!(
            "booking {}: {} {}",
            self.booking_id,
            self.service,
            self.instances.join(" → ")
        )
    }
}

/// The handling of `traces` (each booking's spans). `None` when no service ran as more than
/// one instance: one replica each, nothing was shared or handed over.
pub fn summarise<'a>(
    traces: impl IntoIterator<Item = (&'a Operation, &'a [Span])>,
    trace_link: impl Fn(&str) -> String,
) -> Option<Handling> {
    let mut shares: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut handling = Handling::default();
    for (op, spans) in traces {
        // Per service, its instances in the order they first sent a span of this booking.
        let mut first_seen: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
        for span in spans {
            let instance = if span.instance.is_empty() {
                span.service.as_str()
            } else {
                span.instance.as_str()
            };
            let seen = first_seen
                .entry(span.service.as_str())
                .or_default()
                .entry(instance)
                .or_insert(span.start_ns);
            *seen = (*seen).min(span.start_ns);
        }
        let mut handed_over = false;
        for (service, instances) in &first_seen {
            for instance in instances.keys() {
                *shares.entry((service, instance)).or_default() += 1;
            }
            if instances.len() < 2 {
                continue;
            }
            handed_over = true;
            if handling.examples.len() < MAX_EXAMPLES {
                let mut order: Vec<(&str, u64)> = instances.iter().map(|(i, t)| (*i, *t)).collect();
                order.sort_by_key(|(instance, started)| (*started, *instance));
                handling.examples.push(HandOver {
                    booking_id: op.booking_id.clone().unwrap_or_default(),
                    trace_id: op.trace_id.clone(),
                    service: (*service).to_owned(),
                    instances: order.into_iter().map(|(i, _)| i.to_owned()).collect(),
                    trace_link: trace_link(&op.trace_id),
                });
            }
        }
        handling.handed_over += usize::from(handed_over);
    }
    let mut instances_of: BTreeMap<&str, usize> = BTreeMap::new();
    for (service, _) in shares.keys() {
        *instances_of.entry(service).or_default() += 1;
    }
    if instances_of.values().all(|&instances| instances < 2) {
        return None;
    }
    handling.instances = shares
        .into_iter()
        .map(|((service, instance), bookings)| Share {
            service: service.to_owned(),
            instance: instance.to_owned(),
            bookings,
        })
        .collect();
    Some(handling)
}

/// One line for the terminal: each instance's share and the hand-overs.
pub fn line(handling: &Handling) -> String {
    let shares: Vec<String> = handling
        .instances
        .iter()
        .map(|s| format!("{} {}", s.instance, s.bookings))
        .collect();
    let mut line = format!(
        "replicas — bookings each instance worked on: {}; {} booking(s) handed over between replicas",
        shares.join(", "),
        handling.handed_over
    );
    if let Some(first) = handling.examples.first() {
        line.push_str(&format!(
            " (e.g. {}, {})",
            first.describe(),
            first.trace_link
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(service: &str, instance: &str, start_ns: u64) -> Span {
        Span {
            service: service.into(),
            instance: instance.into(),
            start_ns,
            ..Span::default()
        }
    }

    fn op(n: u32) -> Operation {
        Operation {
            op: n,
            booking_id: Some(format!("b-{n}")),
            trace_id: format!("t{n}"),
            ..Operation::default()
        }
    }

    #[test]
    fn a_booking_two_replicas_of_one_service_worked_on_is_a_hand_over_in_their_order() {
        let (first, second) = (op(1), op(2));
        let handed = vec![
            span("gateway", "gateway-1", 1),
            span("reservation", "reservation-2", 2),
            span("reservation", "reservation-1", 9),
            span("reservation", "reservation-2", 3),
        ];
        let stayed = vec![
            span("gateway", "gateway-2", 1),
            span("reservation", "reservation-1", 2),
        ];
        let handling = summarise(
            [(&first, handed.as_slice()), (&second, stayed.as_slice())],
            |t| format!("/ui/trace/{t}"),
        )
        .expect("replicas ran");
        assert_eq!(handling.handed_over, 1);
        assert_eq!(
            handling.examples,
            [HandOver {
                booking_id: "b-1".into(),
                trace_id: "t1".into(),
                service: "reservation".into(),
                instances: vec!["reservation-2".into(), "reservation-1".into()],
                trace_link: "/ui/trace/t1".into(),
            }]
        );
        let share = |instance: &str| {
            handling
                .instances
                .iter()
                .find(|s| s.instance == instance)
                .map(|s| s.bookings)
        };
        assert_eq!(share("reservation-1"), Some(2));
        assert_eq!(share("reservation-2"), Some(1));
        assert_eq!(share("gateway-1"), Some(1));
        assert!(line(&handling).contains("reservation reservation-2 → reservation-1"));
    }

    #[test]
    fn one_instance_of_every_service_has_nothing_to_show() {
        let first = op(1);
        let spans = vec![span("gateway", "gateway", 1), span("reservation", "", 2)];
        assert_eq!(summarise([(&first, spans.as_slice())], str::to_owned), None);
    }
}
