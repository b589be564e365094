//! Hostile Kafka messages against the running stack: generated mutations of valid messages —
//! random bytes, truncated and deeply nested JSON, wrong or missing `event-type`,
//! `schema-version` and `message-id` headers, invalid `traceparent`, fields of the wrong type or
//! missing, empty ids, negative and huge amounts, other versions and types, unknown ids, 1 MB
//! payloads — published straight to every consumed topic on the real broker, interleaved with
//! real bookings through the gateway.
//!
//! The verdict is exact, case by case: every message the contract refuses is on the dead-letter
//! topic once, from the consumer that refused it, with the reason; every message the contract
//! accepts is applied by the business logic and has precisely its effect there (an inventory
//! command for an unknown seat is answered, and reservation dead-letters the answer because no
//! saga of its has those ids; a booking outcome is counted by analytics); every real booking
//! finishes; the consumers keep up (lag back to 0, `/ready` true throughout); no process panics
//! or exits; invariants 1–3 hold.
//!
//! The generators are proptest strategies drawn from a seeded runner (seed printed;
//! `FAULTLINE_KAFKA_FUZZ_SEED=N` replays, `FAULTLINE_KAFKA_FUZZ_CASES=N` sizes the run,
//! `FAULTLINE_KAFKA_FUZZ_POSTGRES=<admin URL>` runs the services on PostgreSQL). Nothing
//! is shrunk: a case is one message in a run of the whole system, and the printed case number,
//! mutation and seed reproduce it.
//!
//! Why forged commands name unknown seats: inventory cannot tell a forged booking id from a real
//! one (services never share a database), so a well-formed `HoldSeat` for a real seat would
//! really hold it — that is the broker's access control's business, not the consumer's.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use faultline_contracts::{
    http::{AnalyticsSummary, BookingAccepted, LoadReport},
    messages::{self, MAX_POINTS, Message},
    topics,
};
use faultline_harness::{
    invariants::{self, ServiceUrls},
    topic_reader::{self, Record},
    wait::{Patience, eventually},
};
use faultline_kit::messaging::headers;
use proptest::{
    prelude::*,
    sample::Index,
    strategy::ValueTree as _,
    test_runner::{Config, RngAlgorithm, TestRng, TestRunner},
};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};

use crate::helpers::{TestStack, start};

const DEFAULT_SEED: u64 = 20_260_517;
/// Mutated messages in the default run (CI's `cargo test`).
const DEFAULT_CASES: usize = 2_100;
/// Real bookings through the gateway, spread over the run.
const BOOKINGS: usize = 36;
/// The header every mutated message carries, so its dead letter can be told apart.
const CASE_HEADER: &str = "fuzz-case";
const ONE_MB: usize = 1024 * 1024;

/// The consumed topics and the consumer group (the service) reading each.
const TOPICS: [(&str, &str); 3] = [
    (topics::INVENTORY_COMMANDS, "inventory"),
    (topics::INVENTORY_EVENTS, "reservation"),
    (topics::BOOKING_EVENTS, "analytics"),
];

/// How a valid message is spoiled (or, for some, left valid in a way worth testing).
#[derive(Debug, Clone)]
enum Mutation {
    RandomBytes(Vec<u8>),
    Truncated(Index),
    Nested(usize),
    WrongEventType(String),
    MissingEventType,
    WrongSchemaVersion(&'static str),
    MissingSchemaVersion,
    MissingMessageId,
    EmptyMessageId,
    LongMessageId(usize),
    ControlInMessageId,
    BadTraceparent(String),
    WrongFieldType(Index, Index),
    MissingField(Index),
    EmptyId(Index),
    NegativeAmount(i64),
    HugeAmount(i64),
    LargeAmount(i64),
    OtherVersion(u32),
    UnknownType(String),
    ForeignType(Index),
    BadSeatId(&'static str),
    UnknownIds,
    MegabyteValid,
    MegabyteGarbage,
}

impl Mutation {
    fn kind(&self) -> &'static str {
        match self {
            Self::RandomBytes(_) => "random bytes",
            Self::Truncated(_) => "truncated JSON",
            Self::Nested(_) => "deeply nested JSON",
            Self::WrongEventType(_) => "wrong event-type",
            Self::MissingEventType => "missing event-type",
            Self::WrongSchemaVersion(_) => "wrong schema-version",
            Self::MissingSchemaVersion => "missing schema-version",
            Self::MissingMessageId => "missing message-id",
            Self::EmptyMessageId => "empty message-id",
            Self::LongMessageId(_) => "long message-id",
            Self::ControlInMessageId => "control characters in message-id",
            Self::BadTraceparent(_) => "invalid traceparent",
            Self::WrongFieldType(..) => "field of the wrong type",
            Self::MissingField(_) => "missing field",
            Self::EmptyId(_) => "empty id",
            Self::NegativeAmount(_) => "negative amount",
            Self::HugeAmount(_) => "huge amount",
            Self::LargeAmount(_) => "large valid amount",
            Self::OtherVersion(_) => "other schema version",
            Self::UnknownType(_) => "unknown type",
            Self::ForeignType(_) => "another topic's type",
            Self::BadSeatId(_) => "malformed seat id",
            Self::UnknownIds => "unknown ids",
            Self::MegabyteValid => "1 MB valid",
            Self::MegabyteGarbage => "1 MB garbage",
        }
    }
}

/// The mutations that apply to `topic` (amounts only where a message carries one; seat ids are
/// parsed only by inventory).
fn mutations(topic: &'static str) -> BoxedStrategy<Mutation> {
    let event_types = prop_oneof![
        Just("SeatHeld".to_owned()),
        Just("HoldSeat".to_owned()),
        Just("BookingConfirmed".to_owned()),
        Just(String::new()),
        "[A-Za-z]{1,20}",
        any::<String>(),
    ];
    let malformed = prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..512).prop_map(Mutation::RandomBytes),
        3 => any::<Index>().prop_map(Mutation::Truncated),
        2 => (129usize..50_000).prop_map(Mutation::Nested),
        1 => Just(Mutation::MegabyteGarbage),
    ];
    let headers = prop_oneof![
        2 => event_types.prop_map(Mutation::WrongEventType),
        1 => Just(Mutation::MissingEventType),
        2 => prop::sample::select(vec!["2", "0", "", "v1", "1.0", "-1", "99999999999", "\u{ff11}"])
            .prop_map(Mutation::WrongSchemaVersion),
        1 => Just(Mutation::MissingSchemaVersion),
        1 => Just(Mutation::MissingMessageId),
        1 => Just(Mutation::EmptyMessageId),
        1 => (129usize..20_000).prop_map(Mutation::LongMessageId),
        1 => Just(Mutation::ControlInMessageId),
        2 => prop_oneof![
            Just(String::new()),
            Just("00-00000000000000000000000000000000-0000000000000000-01".to_owned()),
            Just(format!("00-{}-{}-01", "z".repeat(32), "y".repeat(16))),
            "[0-9a-f-]{0,80}",
            any::<String>(),
            Just("0".repeat(100_000)),
        ]
        .prop_map(Mutation::BadTraceparent),
    ];
    let body = prop_oneof![
        3 => (any::<Index>(), any::<Index>()).prop_map(|(f, v)| Mutation::WrongFieldType(f, v)),
        2 => any::<Index>().prop_map(Mutation::MissingField),
        2 => any::<Index>().prop_map(Mutation::EmptyId),
        1 => prop_oneof![Just(0u32), Just(2), Just(u32::MAX), 3u32..1000].prop_map(Mutation::OtherVersion),
        1 => prop_oneof![Just("Poison".to_owned()), "[A-Za-z]{1,30}", any::<String>()]
            .prop_map(Mutation::UnknownType),
        1 => any::<Index>().prop_map(Mutation::ForeignType),
        2 => Just(Mutation::UnknownIds),
        1 => Just(Mutation::MegabyteValid),
    ];
    let amounts = prop_oneof![
        prop_oneof![Just(-1i64), Just(i64::MIN), i64::MIN..0].prop_map(Mutation::NegativeAmount),
        prop_oneof![
            Just(i64::MAX),
            Just(MAX_POINTS + 1),
            (MAX_POINTS + 1)..i64::MAX
        ]
        .prop_map(Mutation::HugeAmount),
        prop_oneof![Just(0i64), Just(MAX_POINTS), 0..=MAX_POINTS].prop_map(Mutation::LargeAmount),
    ];
    if topic == topics::INVENTORY_COMMANDS {
        let seat_ids = prop::sample::select(vec![
            "a/b",
            "seat 1",
            "",
            "é",
            "x-----------------------------------------------------------------x",
        ])
        .prop_map(Mutation::BadSeatId);
        prop_oneof![4 => malformed, 6 => headers, 6 => body, 1 => seat_ids].boxed()
    } else {
        prop_oneof![4 => malformed, 6 => headers, 6 => body, 2 => amounts].boxed()
    }
}

/// What must become of a mutated message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// Dead-lettered by the topic's consumer, the reason containing this.
    DeadLettered(String),
    /// An inventory command applied: inventory answers it, and reservation dead-letters the
    /// answer (no saga of its has these ids), keyed by the command's seat id.
    Answered,
    /// A booking outcome counted by analytics.
    Counted(&'static str),
}

/// One mutated message.
#[derive(Debug)]
struct Case {
    number: usize,
    topic: &'static str,
    group: &'static str,
    kind: &'static str,
    key: String,
    payload: Vec<u8>,
    headers: BTreeMap<String, String>,
    expect: Expect,
}

/// The valid messages of `topic` about case `n` (ids nobody else uses; the seat id is also the
/// Kafka key, so an answer to a command can be traced back to the case).
fn templates(topic: &str, n: usize) -> Vec<(&'static str, Value)> {
    let b = format!("fuzz-b-{n}");
    let s = format!("fuzz-s-{n}");
    let seat = format!("fuzz-{n}");
    let u = format!("fuzz-u-{n}");
    let c = format!("fuzz-c-{}", n % 7);
    fn body<M: Message>(message: M) -> (&'static str, Value) {
        (
            M::TYPE,
            serde_json::from_slice(&messages::encode(&message)).expect("a message is JSON"),
        )
    }
    use faultline_contracts::messages as m;
    match topic {
        topics::INVENTORY_COMMANDS => vec![
            body(m::HoldSeat {
                booking_id: b.clone(),
                saga_id: s.clone(),
                seat_id: seat.clone(),
                user_id: u,
            }),
            body(m::ConfirmSeat {
                booking_id: b.clone(),
                saga_id: s.clone(),
                seat_id: seat.clone(),
            }),
            body(m::ReleaseSeat {
                booking_id: b,
                saga_id: s,
                seat_id: seat,
                reason: "fuzz".into(),
            }),
        ],
        topics::INVENTORY_EVENTS => vec![
            body(m::SeatHeld {
                booking_id: b.clone(),
                saga_id: s.clone(),
                seat_id: seat.clone(),
                concert_id: c,
                price: 100,
            }),
            body(m::SeatUnavailable {
                booking_id: b.clone(),
                saga_id: s.clone(),
                seat_id: seat.clone(),
                reason: "taken".into(),
            }),
            body(m::SeatSold {
                booking_id: b.clone(),
                saga_id: s.clone(),
                seat_id: seat.clone(),
            }),
            body(m::SeatSaleRefused {
                booking_id: b.clone(),
                saga_id: s.clone(),
                seat_id: seat.clone(),
                reason: "not held".into(),
            }),
            body(m::SeatReleased {
                booking_id: b,
                saga_id: s,
                seat_id: seat,
                was_held: false,
            }),
        ],
        _ => vec![
            body(m::BookingConfirmed {
                booking_id: b.clone(),
                user_id: u.clone(),
                seat_id: seat.clone(),
                concert_id: c.clone(),
                amount: 100,
            }),
            body(m::BookingCancelled {
                booking_id: b.clone(),
                user_id: u.clone(),
                seat_id: seat.clone(),
                concert_id: Some(c),
                reason: "declined".into(),
            }),
            body(m::BookingRejected {
                booking_id: b,
                user_id: u,
                seat_id: seat,
                reason: "taken".into(),
            }),
        ],
    }
}

/// The field carrying an amount, where the type has one.
fn amount_field(message_type: &str) -> Option<&'static str> {
    match message_type {
        "SeatHeld" => Some("price"),
        "BookingConfirmed" => Some("amount"),
        _ => None,
    }
}

/// The string fields the contract requires non-empty (`reason` is free text; a cancelled
/// booking's `concert_id` is optional).
fn required_ids(message_type: &str, data: &serde_json::Map<String, Value>) -> Vec<String> {
    data.iter()
        .filter(|(name, value)| {
            value.is_string()
                && name.as_str() != "reason"
                && !(message_type == "BookingCancelled" && name.as_str() == "concert_id")
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// A value of a type other than `value`'s (never `null` for a string: an optional string may be
/// null).
fn wrong_type(value: &Value, pick: Index) -> Value {
    let choices: Vec<Value> = match value {
        Value::String(_) => vec![
            json!(42),
            json!([1, 2]),
            json!({"a": 1}),
            json!(true),
            json!(-1.5),
        ],
        Value::Number(_) => vec![
            json!("100"),
            json!(1.5),
            json!(1e30),
            json!([]),
            json!(null),
            json!(18_446_744_073_709_551_615u64),
        ],
        _ => vec![json!("true"), json!(1), json!(null), json!({})],
    };
    pick.get(&choices).clone()
}

/// Builds case `number` of `topic` from `mutation`: the message and what must become of it.
fn build(
    number: usize,
    topic: &'static str,
    group: &'static str,
    mutation: &Mutation,
    template: Index,
) -> Case {
    let all = templates(topic, number);
    let amount_templates: Vec<&(&str, Value)> = all
        .iter()
        .filter(|(t, _)| amount_field(t).is_some())
        .collect();
    let (message_type, mut envelope) = match mutation {
        Mutation::NegativeAmount(_) | Mutation::HugeAmount(_) | Mutation::LargeAmount(_) => {
            (*template.get(&amount_templates)).clone()
        }
        _ => template.get(&all).clone(),
    };
    let key = format!("fuzz-{number}");
    let mut headers: BTreeMap<String, String> = [
        (
            headers::MESSAGE_ID.to_owned(),
            format!("fuzz-message-{number}"),
        ),
        (headers::EVENT_TYPE.to_owned(), message_type.to_owned()),
        (headers::SCHEMA_VERSION.to_owned(), "1".to_owned()),
        (CASE_HEADER.to_owned(), number.to_string()),
        (
            "traceparent".to_owned(),
            format!(
                "00-{:032x}-{:016x}-01",
                0xf0_0000 + number,
                0xf1_0000 + number
            ),
        ),
    ]
    .into();
    // Accepted by the contract: what the business logic does with it.
    let applied = match topic {
        topics::INVENTORY_COMMANDS => Expect::Answered,
        topics::INVENTORY_EVENTS => {
            Expect::DeadLettered(format!("no saga fuzz-s-{number} for this reply"))
        }
        _ => Expect::Counted(message_type),
    };
    let dead = |reason: &str| Expect::DeadLettered(reason.to_owned());
    let data = |envelope: &mut Value| -> serde_json::Map<String, Value> {
        envelope["data"]
            .as_object()
            .cloned()
            .expect("data is an object")
    };
    let mut payload = None;
    let expect = match mutation {
        Mutation::RandomBytes(bytes) => {
            payload = Some(bytes.clone());
            dead("the payload is not a JSON envelope")
        }
        Mutation::Truncated(cut) => {
            let whole = serde_json::to_vec(&envelope).expect("json");
            payload = Some(whole[..cut.index(whole.len())].to_vec());
            dead("the payload is not a JSON envelope")
        }
        Mutation::Nested(depth) => {
            // Inside `data`, which the consumer reads as a JSON value.
            let data = serde_json::to_string(&envelope["data"]).expect("json");
            let open = data.strip_suffix('}').expect("data is an object");
            let nested = format!("{}{}", "[".repeat(*depth), "]".repeat(*depth));
            payload = Some(
                format!(
                    "{{\"type\":{},\"version\":1,\"data\":{open},\"deep\":{nested}}}}}",
                    envelope["type"]
                )
                .into_bytes(),
            );
            dead("recursion limit exceeded")
        }
        Mutation::MegabyteGarbage => {
            let mut bytes = b"{\"type\":".to_vec();
            bytes.resize(ONE_MB, b'x');
            payload = Some(bytes);
            dead("the payload is not a JSON envelope")
        }
        Mutation::WrongEventType(claimed) if claimed != message_type => {
            headers.insert(headers::EVENT_TYPE.to_owned(), claimed.clone());
            dead("header event-type says")
        }
        Mutation::WrongEventType(_) => applied,
        Mutation::MissingEventType => {
            headers.remove(headers::EVENT_TYPE);
            applied
        }
        Mutation::WrongSchemaVersion(claimed) => {
            headers.insert(headers::SCHEMA_VERSION.to_owned(), (*claimed).to_owned());
            dead("header schema-version says")
        }
        Mutation::MissingSchemaVersion => {
            headers.remove(headers::SCHEMA_VERSION);
            applied
        }
        Mutation::MissingMessageId => {
            headers.remove(headers::MESSAGE_ID);
            dead("missing message-id header")
        }
        Mutation::EmptyMessageId => {
            headers.insert(headers::MESSAGE_ID.to_owned(), String::new());
            dead("missing message-id header")
        }
        Mutation::LongMessageId(len) => {
            headers.insert(headers::MESSAGE_ID.to_owned(), "m".repeat(*len));
            dead("exceeds 128")
        }
        Mutation::ControlInMessageId => {
            headers.insert(headers::MESSAGE_ID.to_owned(), format!("fuzz\r\n{number}"));
            dead("control characters")
        }
        Mutation::BadTraceparent(value) => {
            headers.insert("traceparent".to_owned(), value.clone());
            applied
        }
        Mutation::WrongFieldType(field, pick) => {
            let fields = data(&mut envelope);
            let (name, value) = field.get(&fields.iter().collect::<Vec<_>>()).to_owned();
            let (name, wrong) = (name.clone(), wrong_type(value, *pick));
            envelope["data"][&name] = wrong;
            dead(&format!("the body of {message_type} does not decode"))
        }
        Mutation::MissingField(field) => {
            let fields = data(&mut envelope);
            let names: Vec<&String> = fields.keys().collect();
            let name = (*field.get(&names)).clone();
            envelope["data"]
                .as_object_mut()
                .expect("object")
                .remove(&name);
            if message_type == "BookingCancelled" && name == "concert_id" {
                // An optional field may be left out.
                applied
            } else {
                dead(&format!("missing field `{name}`"))
            }
        }
        Mutation::EmptyId(field) => {
            let ids = required_ids(message_type, &data(&mut envelope));
            let name = field.get(&ids).clone();
            envelope["data"][&name] = json!(" ");
            dead(&format!("{name} must not be empty"))
        }
        Mutation::NegativeAmount(amount)
        | Mutation::HugeAmount(amount)
        | Mutation::LargeAmount(amount) => {
            let field = amount_field(message_type).expect("an amount template");
            envelope["data"][field] = json!(amount);
            match mutation {
                Mutation::NegativeAmount(_) => dead(&format!("{field} must not be negative")),
                Mutation::HugeAmount(_) => dead(&format!("{field} must not exceed {MAX_POINTS}")),
                _ => applied,
            }
        }
        Mutation::OtherVersion(version) => {
            envelope["version"] = json!(version);
            headers.insert(headers::SCHEMA_VERSION.to_owned(), version.to_string());
            dead(&format!(
                "unsupported schema version {version} of {message_type}"
            ))
        }
        Mutation::UnknownType(name) => {
            // A name the topic knows would be another case: it is made unknown.
            let name = if all.iter().any(|(t, _)| t == name) {
                format!("{name}X")
            } else {
                name.clone()
            };
            envelope["type"] = json!(name);
            headers.insert(headers::EVENT_TYPE.to_owned(), name);
            dead("unknown message type")
        }
        Mutation::ForeignType(pick) => {
            let foreign: Vec<(&str, Value)> = TOPICS
                .iter()
                .filter(|(t, _)| *t != topic)
                .flat_map(|(t, _)| templates(t, number))
                .collect();
            let (foreign_type, foreign_envelope) = pick.get(&foreign).clone();
            envelope = foreign_envelope;
            headers.insert(headers::EVENT_TYPE.to_owned(), foreign_type.to_owned());
            dead(&format!(
                "unknown message type {foreign_type:?} on this topic"
            ))
        }
        Mutation::BadSeatId(seat) => {
            envelope["data"]["seat_id"] = json!(seat);
            if seat.trim().is_empty() {
                dead("seat_id must not be empty")
            } else {
                dead("is not a seat id")
            }
        }
        Mutation::UnknownIds => applied,
        Mutation::MegabyteValid => {
            // Unknown fields are ignored (a newer producer may add some): valid, and large.
            envelope["data"]["padding"] = json!("p".repeat(ONE_MB));
            applied
        }
    };
    let payload = payload.unwrap_or_else(|| serde_json::to_vec(&envelope).expect("json"));
    Case {
        number,
        topic,
        group,
        kind: mutation.kind(),
        key,
        payload,
        headers,
        expect,
    }
}

/// Every case of the run, drawn from the seeded runner, topics in turn.
fn generate(seed: u64, count: usize) -> Vec<Case> {
    let mut seed_bytes = [0u8; 16];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::XorShift, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let strategies: Vec<_> = TOPICS
        .iter()
        .map(|(topic, _)| (mutations(topic), any::<Index>()))
        .collect();
    (0..count)
        .map(|number| {
            let (topic, group) = TOPICS[number % TOPICS.len()];
            let strategy = &strategies[number % TOPICS.len()];
            let (mutation, template) = strategy.new_tree(&mut runner).expect("a value").current();
            build(number, topic, group, &mutation, template)
        })
        .collect()
}

fn producer(bootstrap: &str) -> FutureProducer {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("acks", "all")
        .set("linger.ms", "2")
        // Room for the 1 MB cases (librdkafka's default is 1,000,000 bytes).
        .set("message.max.bytes", "4000000")
        .create()
        .expect("a producer")
}

async fn publish(producer: &FutureProducer, case: &Case) {
    let headers = headers::to_kafka(&case.headers);
    let record = FutureRecord::to(case.topic)
        .key(&case.key)
        .payload(&case.payload)
        .headers(headers);
    producer
        .send(record, Duration::from_secs(30))
        .await
        .map_err(|(error, _)| error)
        .unwrap_or_else(|error| panic!("publishing case {}: {error}", case.number));
}

/// Which case a dead letter is about: its own `fuzz-case` header, or — for an answer inventory
/// gave to a mutated command — the seat id it is keyed by.
fn case_of(record: &Record) -> Option<(usize, bool)> {
    if let Some(n) = record.headers.get(CASE_HEADER) {
        return n.parse().ok().map(|n| (n, false));
    }
    record
        .key
        .as_deref()
        .and_then(|k| k.strip_prefix("fuzz-"))
        .and_then(|n| n.parse().ok())
        .map(|n| (n, true))
}

/// Samples every consumer's `/ready` until told to stop; returns the failed samples.
async fn watch_ready(
    stack_urls: Vec<(String, String)>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut failures = Vec::new();
    while !*stop.borrow() {
        for (service, url) in &stack_urls {
            let answer = http
                .get(format!("{url}/ready"))
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            match answer {
                Ok(r) if r.status() == 200 => {}
                Ok(r) => failures.push(format!("{service}: {}", r.status())),
                Err(error) => failures.push(format!("{service}: {error}")),
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_are_dead_lettered_and_valid_bookings_still_finish() {
    let seed = std::env::var("FAULTLINE_KAFKA_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let count = std::env::var("FAULTLINE_KAFKA_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let started = Instant::now();
    let cases = generate(seed, count);
    let mut kinds: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for case in &cases {
        *kinds.entry((case.topic, case.kind)).or_default() += 1;
    }
    eprintln!(
        "kafka fuzz: seed {seed} (replay: FAULTLINE_KAFKA_FUZZ_SEED={seed}), {count} mutated messages, {BOOKINGS} bookings"
    );
    for ((topic, kind), n) in &kinds {
        eprintln!("kafka fuzz:   {topic:<20} {kind:<34} {n}");
    }

    let stack = start(|options| {
        options.rate_limit = (1_000, 1_000);
        options.postgres = std::env::var("FAULTLINE_KAFKA_FUZZ_POSTGRES").ok();
    })
    .await;
    let endpoints = stack.stack.endpoints().clone();
    let consumers: Vec<(String, String)> = TOPICS
        .iter()
        .map(|(_, group)| ((*group).to_owned(), endpoints.service(group).to_owned()))
        .collect();
    let (stop_watch, stopped) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(watch_ready(consumers.clone(), stopped));

    // Published in rounds, real bookings between them.
    let producer = producer(&endpoints.broker);
    let rounds = BOOKINGS;
    let per_round = cases.len().div_ceil(rounds);
    let mut bookings: Vec<(String, String)> = Vec::new();
    for (round, chunk) in cases.chunks(per_round).enumerate() {
        futures::future::join_all(chunk.iter().map(|case| publish(&producer, case))).await;
        // Two users after one seat now and then: one of them is rejected.
        let seat = format!("saga-live-1-{:03}", round - round / 6 + 1);
        let user = format!("user-{}", round % 8 + 1);
        let answer = stack
            .book(&user, &format!("kafka-fuzz-{round}"), &seat)
            .await;
        assert_eq!(answer.status(), 202, "booking {round} of {seat} refused");
        let accepted: BookingAccepted = answer.json().await.expect("202 body");
        bookings.push((user, accepted.booking_id));
    }
    let published = started.elapsed();

    // Every real booking finishes.
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for (user, booking_id) in &bookings {
        let booking = stack.terminal(user, booking_id).await;
        *outcomes.entry(booking.status).or_default() += 1;
    }

    // Every dead letter expected, and nothing else.
    let mut expected: HashMap<(usize, bool), (&Case, String)> = HashMap::new();
    for case in &cases {
        match &case.expect {
            Expect::DeadLettered(reason) => {
                expected.insert((case.number, false), (case, reason.clone()));
            }
            Expect::Answered => {
                expected.insert(
                    (case.number, true),
                    (
                        case,
                        format!("no saga fuzz-s-{} for this reply", case.number),
                    ),
                );
            }
            Expect::Counted(_) => {}
        }
    }
    let dead = topic_reader::read_until(
        &endpoints.broker,
        topics::DEAD_LETTER,
        Duration::from_secs(60),
        |records| {
            records
                .iter()
                .filter(|r| case_of(r).is_some_and(|id| expected.contains_key(&id)))
                .count()
                >= expected.len()
        },
    )
    .await
    .expect("read the dead-letter topic");
    // What else arrives after the last expected one (a duplicate, a real booking's message).
    let late = topic_reader::read_until(
        &endpoints.broker,
        topics::DEAD_LETTER,
        Duration::from_secs(5),
        |r| r.len() > dead.len(),
    )
    .await
    .expect("read the dead-letter topic again");
    let mut seen: HashMap<(usize, bool), usize> = HashMap::new();
    let mut problems = Vec::new();
    for record in &late {
        let Some(id) = case_of(record) else {
            problems.push(format!(
                "not a mutated message: {:?} {:?}",
                record.key, record.headers
            ));
            continue;
        };
        let Some((case, reason)) = expected.get(&id) else {
            let Some(case) = cases.get(id.0) else {
                problems.push(format!("no case {}: {:?}", id.0, record.headers));
                continue;
            };
            problems.push(format!(
                "case {} ({}, {} on {}) was dead-lettered, but the contract accepts it: {:?}",
                case.number,
                case.kind,
                case.expect_label(),
                case.topic,
                record.headers.get(headers::DEAD_LETTER_REASON)
            ));
            continue;
        };
        *seen.entry(id).or_default() += 1;
        let (group, source_topic) = if id.1 {
            ("reservation", topics::INVENTORY_EVENTS)
        } else {
            (case.group, case.topic)
        };
        let got_reason = record
            .headers
            .get(headers::DEAD_LETTER_REASON)
            .cloned()
            .unwrap_or_default();
        let got_group = record
            .headers
            .get(headers::DEAD_LETTER_CONSUMER)
            .cloned()
            .unwrap_or_default();
        let source = record
            .headers
            .get(headers::DEAD_LETTER_SOURCE)
            .cloned()
            .unwrap_or_default();
        if !got_reason.contains(reason.as_str())
            || got_group != group
            || !source.starts_with(&format!("{source_topic}/"))
        {
            problems.push(format!(
                "case {} ({} on {}): dead-lettered by {got_group:?} from {source:?} because {got_reason:?}; expected {group:?} from {source_topic} because …{reason}…",
                case.number, case.kind, case.topic
            ));
        }
        if case.payload.len() >= ONE_MB && !id.1 {
            let truncated = record.headers.get(headers::DEAD_LETTER_TRUNCATED);
            if truncated != Some(&format!("payload={}", case.payload.len()))
                || record.payload.len() != 64 * 1024
            {
                problems.push(format!(
                    "case {}: a 1 MB dead letter not cut down as said: {truncated:?}, {} bytes",
                    case.number,
                    record.payload.len()
                ));
            }
        } else if !id.1 && record.payload != case.payload {
            problems.push(format!(
                "case {}: the dead letter's payload is not the original",
                case.number
            ));
        }
    }
    for (id, (case, reason)) in &expected {
        match seen.get(id).copied().unwrap_or(0) {
            1 => {}
            n => problems.push(format!(
                "case {} ({} on {}, expected …{reason}…): {n} dead letters, not 1",
                case.number, case.kind, case.topic
            )),
        }
    }
    problems.sort();
    assert!(
        problems.is_empty(),
        "{} problems with the dead-letter topic (seed {seed}):\n{}",
        problems.len(),
        problems.join("\n")
    );

    // Analytics counted every accepted booking outcome, real or forged, once.
    let counted = |t: &str| {
        cases
            .iter()
            .filter(|c| {
                c.expect
                    == Expect::Counted(match t {
                        "CONFIRMED" => "BookingConfirmed",
                        "CANCELLED" => "BookingCancelled",
                        _ => "BookingRejected",
                    })
            })
            .count() as i64
    };
    let real = |s: &str| outcomes.get(s).copied().unwrap_or(0) as i64;
    let expected_summary = (
        real("CONFIRMED") + counted("CONFIRMED"),
        real("CANCELLED") + counted("CANCELLED"),
        real("REJECTED") + counted("REJECTED"),
    );
    eventually(
        &format!("analytics to count {expected_summary:?} (confirmed, cancelled, rejected)"),
        Patience::within(Duration::from_secs(30)).every(Duration::from_millis(200)),
        || async {
            let summary: AnalyticsSummary = stack.analytics_summary().await;
            let got = (summary.confirmed, summary.cancelled, summary.rejected);
            if got == expected_summary && summary.events_applied == got.0 + got.1 + got.2 {
                Ok(())
            } else {
                Err(format!(
                    "counted {got:?} ({} events)",
                    summary.events_applied
                ))
            }
        },
    )
    .await;

    // The consumers kept up: lag back to 0 everywhere.
    // One 30 s budget for every consumer, as they drain together.
    let waited = Instant::now();
    for (service, url) in &consumers {
        eventually(
            &format!("{service}'s consumer lag to be back to 0"),
            Patience::within(Duration::from_secs(30).saturating_sub(waited.elapsed()))
                .every(Duration::from_millis(250)),
            || async {
                let load: LoadReport = invariants::get(&stack.http, format!("{url}/admin/load"))
                    .await
                    .expect("load");
                let lag = load.consumer_lag.get(service.as_str()).copied().flatten();
                if lag == Some(0) {
                    Ok(())
                } else {
                    Err(format!("lag {lag:?}"))
                }
            },
        )
        .await;
    }
    let _ = stop_watch.send(true);
    let not_ready = watcher.await.expect("the readiness watcher");
    assert!(
        not_ready.is_empty(),
        "a consumer was not ready during the run: {not_ready:?}"
    );

    // Nothing crashed, and the state is consistent.
    let mut stack = stack;
    assert_eq!(stack.stack.exited(), vec![], "a process exited");
    assert_panic_free(&stack);
    let urls = ServiceUrls {
        reservation: endpoints.service("reservation"),
        inventory: endpoints.service("inventory"),
        payment: endpoints.service("payment"),
    };
    let snapshot = invariants::snapshot(&stack.http, urls)
        .await
        .expect("snapshot");
    let violations = invariants::check(&snapshot, snapshot.payment.initial_total);
    assert_eq!(violations, vec![], "invariants 1–3");
    eprintln!(
        "kafka fuzz: {count} mutated messages ({} dead letters, {} counted by analytics) and {BOOKINGS} bookings {outcomes:?}; published in {published:?}, judged after {:?}",
        late.len(),
        cases
            .iter()
            .filter(|c| matches!(c.expect, Expect::Counted(_)))
            .count(),
        started.elapsed()
    );
}

impl Case {
    fn expect_label(&self) -> &'static str {
        match self.expect {
            Expect::DeadLettered(_) => "dead-lettered",
            Expect::Answered => "answered",
            Expect::Counted(_) => "counted",
        }
    }
}

fn assert_panic_free(stack: &TestStack) {
    let logs = stack.stack.run_dir().join("logs");
    for entry in std::fs::read_dir(&logs).expect("the logs directory") {
        let path = entry.expect("an entry").path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(!text.contains("panicked"), "a panic in {}", path.display());
    }
}
