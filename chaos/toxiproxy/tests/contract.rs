//! The Toxiproxy contract: the same client calls and socket checks run against our embedded
//! server, and also against a real Toxiproxy when `FAULTLINE_TOXIPROXY_URL` is set. A check
//! that passes on one and fails on the other is a deviation of ours.

mod support;

use faultline_toxiproxy::client::{Error, Exchange, Recorder};
use faultline_toxiproxy::{Client, ProxyConfig, Stream, Toxic, ToxicUpdate};
use serde_json::{Map, json};
use std::io::ErrorKind;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{
    EVENT_DEADLINE, Echo, Embedded, Target, assert_silent, connect, listen_address,
    read_until_closed, round_trip,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// Each check runs on the embedded server, then (if configured) on the real one.
macro_rules! contract {
    ($($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let embedded = Embedded::start(stringify!($check)).await;
            checks::$check(&embedded.target).await;
            embedded.stop().await;

            if let Some(real) = support::real(stringify!($check)) {
                let _turn = support::REAL_SERVER.lock().await;
                checks::$check(&real).await;
                real.clean_up().await;
            }
        }
    )*};
}

contract!(
    version_names_a_version,
    a_proxy_is_created_once_and_needs_its_fields,
    unknown_proxies_and_toxics_are_404,
    populate_creates_then_keeps_unchanged_proxies,
    toxics_follow_the_documented_lifecycle,
    reset_re_enables_proxies_and_removes_toxics,
    latency_delays_a_live_connection_and_updates_apply_live,
    a_toxic_with_toxicity_zero_never_applies,
    timeout_zero_black_holes_until_removed_then_closes,
    a_disabled_proxy_refuses_and_closes_connections,
    reset_peer_resets_the_client_connection,
    limit_data_closes_after_the_limit,
    bandwidth_and_slicer_shape_but_keep_the_data,
    metrics_count_the_bytes_through_a_proxy,
    concurrent_connections_do_not_wait_for_each_other,
    the_last_words_of_a_server_arrive_before_a_slow_close,
);

fn api_status(result: Result<impl std::fmt::Debug, Error>) -> (u16, String) {
    match result {
        Err(Error::Api {
            status, message, ..
        }) => (status, message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

mod checks {
    use super::*;

    pub async fn version_names_a_version(t: &Target) {
        let version = t.client.version().await.expect("version");
        assert!(!version.is_empty(), "{}: empty version", t.label);
        if t.label == "embedded" {
            assert_eq!(version, faultline_toxiproxy::server::TOXIPROXY_VERSION);
        }
    }

    pub async fn a_proxy_is_created_once_and_needs_its_fields(t: &Target) {
        let echo = Echo::start().await;
        let proxy = t.proxy("db", echo.address).await;
        assert_eq!(proxy.name, t.name("db"));
        assert!(proxy.enabled);
        assert!(proxy.toxics.is_empty());
        assert_ne!(listen_address(&proxy).port(), 0, "port 0 must be resolved");
        let mut stream = connect(&proxy).await;
        round_trip(&mut stream, b"hello").await;

        let again = ProxyConfig::new(t.name("db"), "127.0.0.1:0", echo.address.to_string());
        let (status, message) = api_status(t.client.create_proxy(&again).await);
        assert_eq!((status, message.as_str()), (409, "proxy already exists"));

        let no_upstream = ProxyConfig::new(t.name("x"), "127.0.0.1:0", "");
        let (status, message) = api_status(t.client.create_proxy(&no_upstream).await);
        assert_eq!(status, 400);
        assert!(message.contains("missing required field"), "{message}");

        let no_name = ProxyConfig::new("", "127.0.0.1:0", echo.address.to_string());
        assert_eq!(api_status(t.client.create_proxy(&no_name).await).0, 400);
        let (status, body) = raw_post(t, "proxies", json!({"name": t.name("y")})).await;
        assert_eq!(
            (status, body),
            (
                400,
                json!({"error": "missing required field: upstream", "status": 400})
            )
        );

        let listed = t.client.proxies().await.expect("proxies");
        assert_eq!(listed.get(&t.name("db")), Some(&proxy));
        t.client.delete_proxy(&t.name("db")).await.expect("delete");
        assert_eq!(api_status(t.client.proxy(&t.name("db")).await).0, 404);
    }

    pub async fn unknown_proxies_and_toxics_are_404(t: &Target) {
        let missing = t.name("missing");
        let (status, message) = api_status(t.client.proxy(&missing).await);
        assert_eq!((status, message.as_str()), (404, "proxy not found"));
        assert_eq!(api_status(t.client.delete_proxy(&missing).await).0, 404);
        assert_eq!(
            api_status(t.client.set_enabled(&missing, false).await).0,
            404
        );
        assert_eq!(api_status(t.client.toxics(&missing).await).0, 404);
        let toxic = Toxic::latency("", Stream::Downstream, 1, 0);
        assert_eq!(
            api_status(t.client.add_toxic(&missing, &toxic).await).0,
            404
        );

        let echo = Echo::start().await;
        t.proxy("p", echo.address).await;
        let (status, message) = api_status(t.client.toxic(&t.name("p"), "nope").await);
        assert_eq!((status, message.as_str()), (404, "toxic not found"));
        assert_eq!(
            api_status(t.client.remove_toxic(&t.name("p"), "nope").await).0,
            404
        );
        let update = t.client.update_toxic(&t.name("p"), "nope", &toxic).await;
        assert_eq!(api_status(update).0, 404);
    }

    pub async fn populate_creates_then_keeps_unchanged_proxies(t: &Target) {
        let echo = Echo::start().await;
        let other = Echo::start().await;
        // A fixed port: with port 0 every populate would differ and replace the proxy, in
        // Toxiproxy as here.
        let port = free_port().await;
        let config = ProxyConfig::new(
            t.name("pop"),
            format!("127.0.0.1:{port}"),
            echo.address.to_string(),
        );
        let created = t
            .client
            .populate(std::slice::from_ref(&config))
            .await
            .expect("populate");
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].listen, format!("127.0.0.1:{port}"));
        let toxic = Toxic::latency("kept", Stream::Upstream, 1, 0);
        t.client
            .add_toxic(&t.name("pop"), &toxic)
            .await
            .expect("add");

        let again = t
            .client
            .populate(std::slice::from_ref(&config))
            .await
            .expect("populate again");
        assert_eq!(
            again[0].toxics.len(),
            1,
            "an unchanged proxy is kept, toxics and all"
        );

        let moved = ProxyConfig {
            upstream: other.address.to_string(),
            ..config
        };
        let replaced = t.client.populate(&[moved]).await.expect("populate changed");
        assert_eq!(replaced[0].upstream, other.address.to_string());
        assert!(replaced[0].toxics.is_empty(), "a changed proxy is replaced");
        round_trip(&mut connect(&replaced[0]).await, b"moved").await;
        assert_eq!(other.received(), 5);

        let bad = ProxyConfig::new(t.name("bad"), "127.0.0.1:0", "");
        let (status, _) = api_status(t.client.populate(&[bad]).await);
        assert_eq!(status, 400);
    }

    pub async fn toxics_follow_the_documented_lifecycle(t: &Target) {
        let echo = Echo::start().await;
        let proxy = t.name("tx");
        t.proxy("tx", echo.address).await;

        let latency = Toxic::latency("", Stream::Downstream, 100, 10);
        let added = t.client.add_toxic(&proxy, &latency).await.expect("add");
        assert_eq!(added.name, "latency_downstream");
        assert_eq!(added.r#type, "latency");
        assert_eq!(added.stream, Stream::Downstream);
        assert_eq!(added.toxicity, 1.0);
        assert_eq!(added.attributes.get("latency"), Some(&json!(100)));
        assert_eq!(added.attributes.get("jitter"), Some(&json!(10)));

        let (status, message) = api_status(t.client.add_toxic(&proxy, &latency).await);
        assert_eq!((status, message.as_str()), (409, "toxic already exists"));

        let mut bad_type = Toxic::timeout("bad_type", Stream::Upstream, 0);
        bad_type.r#type = "no_such_toxic".into();
        let (status, message) = api_status(t.client.add_toxic(&proxy, &bad_type).await);
        assert_eq!((status, message.as_str()), (400, "invalid toxic type"));

        // Our `Stream` type cannot hold a bad stream, so this one goes out raw; it also shows
        // the error body's shape on the wire.
        let bad_stream = json!({"name": "bad_stream", "type": "latency", "stream": "sideways"});
        let (status, body) = raw_post(t, &format!("proxies/{proxy}/toxics"), bad_stream).await;
        assert_eq!(status, 400);
        assert_eq!(
            body,
            json!({"error": "stream was invalid, can be either upstream or downstream", "status": 400})
        );

        let timeout = Toxic::timeout("hold", Stream::Upstream, 2000);
        t.client
            .add_toxic(&proxy, &timeout)
            .await
            .expect("add timeout");
        let names: Vec<String> = t
            .client
            .toxics(&proxy)
            .await
            .expect("list")
            .into_iter()
            .map(|toxic| toxic.name)
            .collect();
        assert_eq!(
            names,
            ["hold", "latency_downstream"],
            "upstream toxics are listed first"
        );

        let mut change = Map::new();
        change.insert("latency".into(), json!(250));
        let updated = t
            .client
            .update_toxic(&proxy, "latency_downstream", change)
            .await
            .expect("update");
        assert_eq!(updated.attributes.get("latency"), Some(&json!(250)));
        assert_eq!(
            updated.attributes.get("jitter"),
            Some(&json!(10)),
            "attributes merge"
        );
        let shown = t
            .client
            .toxic(&proxy, "latency_downstream")
            .await
            .expect("show");
        assert_eq!(shown, updated);

        let toxicity = ToxicUpdate {
            toxicity: Some(0.5),
            ..ToxicUpdate::default()
        };
        let updated = t
            .client
            .update_toxic(&proxy, "latency_downstream", toxicity)
            .await
            .expect("update toxicity");
        assert_eq!(updated.toxicity, 0.5);
        assert_eq!(updated.attributes.get("latency"), Some(&json!(250)));

        t.client
            .remove_toxic(&proxy, "latency_downstream")
            .await
            .expect("remove");
        assert_eq!(
            api_status(t.client.toxic(&proxy, "latency_downstream").await).0,
            404
        );
        let left = t.client.proxy(&proxy).await.expect("proxy").toxics;
        assert_eq!(left.len(), 1);
    }

    pub async fn reset_re_enables_proxies_and_removes_toxics(t: &Target) {
        let echo = Echo::start().await;
        // A live connection black-holed by a timeout toxic: reset removes the toxic, which
        // closes the connection.
        let held = t.proxy("held", echo.address).await;
        let hole = Toxic::timeout("", Stream::Upstream, 0);
        t.client
            .add_toxic(&held.name, &hole)
            .await
            .expect("add timeout");
        let mut black_holed = connect(&held).await;
        black_holed.write_all(b"lost").await.expect("write");

        let proxy = t.name("rs");
        t.proxy("rs", echo.address).await;
        let toxic = Toxic::latency("slow", Stream::Downstream, 1000, 0);
        t.client.add_toxic(&proxy, &toxic).await.expect("add");
        let disabled = t.client.set_enabled(&proxy, false).await.expect("disable");
        assert!(!disabled.enabled);

        t.client.reset().await.expect("reset");
        let (data, _) = read_until_closed(&mut black_holed).await;
        assert!(data.is_empty(), "{data:?}");
        assert_eq!(echo.received(), 0, "the black hole let data through");
        let after = t.client.proxy(&proxy).await.expect("proxy");
        assert!(after.enabled);
        assert!(after.toxics.is_empty());
        let rtt = round_trip(&mut connect(&after).await, b"fast").await;
        assert!(
            rtt < Duration::from_millis(1000),
            "the latency toxic survived: {rtt:?}"
        );
    }

    pub async fn latency_delays_a_live_connection_and_updates_apply_live(t: &Target) {
        let echo = Echo::start().await;
        let proxy = t.proxy("lat", echo.address).await;
        let mut stream = connect(&proxy).await;
        round_trip(&mut stream, b"warm").await;

        let toxic = Toxic::latency("lag", Stream::Downstream, 500, 0);
        t.client.add_toxic(&proxy.name, &toxic).await.expect("add");
        let slow = round_trip(&mut stream, b"slow").await;
        assert!(
            slow >= Duration::from_millis(500),
            "latency not applied: {slow:?}"
        );

        let mut change = Map::new();
        change.insert("latency".into(), json!(0));
        t.client
            .update_toxic(&proxy.name, "lag", change)
            .await
            .expect("update");
        let fast = round_trip(&mut stream, b"fast").await;
        assert!(
            fast < Duration::from_millis(400),
            "update not applied: {fast:?}"
        );
    }

    pub async fn a_toxic_with_toxicity_zero_never_applies(t: &Target) {
        let echo = Echo::start().await;
        let proxy = t.proxy("tox0", echo.address).await;
        let toxic = Toxic::latency("never", Stream::Downstream, 1000, 0).with_toxicity(0.0);
        t.client.add_toxic(&proxy.name, &toxic).await.expect("add");
        let rtt = round_trip(&mut connect(&proxy).await, b"ping").await;
        assert!(
            rtt < Duration::from_millis(1000),
            "toxicity 0 applied: {rtt:?}"
        );
    }

    pub async fn timeout_zero_black_holes_until_removed_then_closes(t: &Target) {
        let echo = Echo::start().await;
        let proxy = t.proxy("hole", echo.address).await;
        for stream in [Stream::Upstream, Stream::Downstream] {
            let toxic = Toxic::timeout("", stream, 0);
            t.client.add_toxic(&proxy.name, &toxic).await.expect("add");
        }
        // The kernel accepts the connection: a black hole, not a refusal.
        let mut stream = connect(&proxy).await;
        stream.write_all(b"anyone there?").await.expect("write");
        assert_silent(&mut stream, Duration::from_millis(500)).await;
        assert_eq!(echo.received(), 0, "data went through the black hole");

        t.client
            .remove_toxic(&proxy.name, "timeout_downstream")
            .await
            .expect("remove");
        let (data, _) = read_until_closed(&mut stream).await;
        assert!(
            data.is_empty(),
            "data leaked out of the black hole: {data:?}"
        );
    }

    pub async fn a_disabled_proxy_refuses_and_closes_connections(t: &Target) {
        let echo = Echo::start().await;
        let proxy = t.proxy("off", echo.address).await;
        let mut live = connect(&proxy).await;
        round_trip(&mut live, b"before").await;

        let disabled = t
            .client
            .set_enabled(&proxy.name, false)
            .await
            .expect("disable");
        assert!(!disabled.enabled);
        let (data, _) = read_until_closed(&mut live).await;
        assert!(data.is_empty());
        let refused = TcpStream::connect(listen_address(&proxy)).await;
        assert_eq!(
            refused.map(|_| ()).map_err(|err| err.kind()),
            Err(ErrorKind::ConnectionRefused)
        );

        let enabled = t
            .client
            .set_enabled(&proxy.name, true)
            .await
            .expect("enable");
        assert_eq!(
            enabled.listen, proxy.listen,
            "re-enabled on the same address"
        );
        round_trip(&mut connect(&enabled).await, b"after").await;
    }

    pub async fn reset_peer_resets_the_client_connection(t: &Target) {
        let echo = Echo::start().await;
        let proxy = t.proxy("rst", echo.address).await;
        let toxic = Toxic::reset_peer("", Stream::Downstream, 0);
        t.client.add_toxic(&proxy.name, &toxic).await.expect("add");
        let mut stream = connect(&proxy).await;
        stream.write_all(b"hello").await.expect("write");
        let (data, outcome) = read_until_closed(&mut stream).await;
        assert!(data.is_empty(), "reset_peer let data through: {data:?}");
        assert_eq!(
            outcome.map_err(|err| err.kind()),
            Err(ErrorKind::ConnectionReset)
        );
    }

    pub async fn limit_data_closes_after_the_limit(t: &Target) {
        let echo = Echo::start().await;
        let proxy = t.proxy("limit", echo.address).await;
        let toxic = Toxic::limit_data("", Stream::Downstream, 5);
        t.client.add_toxic(&proxy.name, &toxic).await.expect("add");
        let mut stream = connect(&proxy).await;
        stream.write_all(b"0123456789").await.expect("write");
        let (data, outcome) = read_until_closed(&mut stream).await;
        assert_eq!(data, b"01234");
        assert!(outcome.is_ok(), "closed, not reset: {outcome:?}");
    }

    pub async fn bandwidth_and_slicer_shape_but_keep_the_data(t: &Target) {
        let echo = Echo::start().await;
        let proxy = t.proxy("shape", echo.address).await;
        let payload: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let slicer = Toxic::slicer("", Stream::Upstream, 100, 20, 100);
        t.client
            .add_toxic(&proxy.name, &slicer)
            .await
            .expect("add slicer");
        let bandwidth = Toxic::bandwidth("", Stream::Downstream, 20);
        t.client
            .add_toxic(&proxy.name, &bandwidth)
            .await
            .expect("add bandwidth");
        // 10 000 bytes at 20 KB/s (KB = 1000 bytes) take half a second.
        let rtt = round_trip(&mut connect(&proxy).await, &payload).await;
        assert!(
            rtt >= Duration::from_millis(400),
            "bandwidth not limited: {rtt:?}"
        );
    }

    pub async fn metrics_count_the_bytes_through_a_proxy(t: &Target) {
        let echo = Echo::start().await;
        let proxy = t.proxy("bytes", echo.address).await;
        let before = t
            .client
            .metrics()
            .await
            .expect("metrics")
            .proxy(&proxy.name);
        assert_eq!(
            before,
            Default::default(),
            "a new proxy has counted nothing"
        );

        let mut stream = connect(&proxy).await;
        round_trip(&mut stream, &[7; 1234]).await;
        // Real Toxiproxy adds a connection's bytes when it closes.
        drop(stream);

        let deadline = tokio::time::Instant::now() + EVENT_DEADLINE;
        let bytes = loop {
            let bytes = t
                .client
                .metrics()
                .await
                .expect("metrics")
                .proxy(&proxy.name);
            let done = [
                bytes.upstream_received,
                bytes.upstream_sent,
                bytes.downstream_received,
                bytes.downstream_sent,
            ] == [1234; 4];
            if done || tokio::time::Instant::now() > deadline {
                break bytes;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(bytes.upstream_received, 1234, "{}: {bytes:?}", t.label);
        assert_eq!(bytes.upstream_sent, 1234, "{bytes:?}");
        assert_eq!(bytes.downstream_received, 1234, "{bytes:?}");
        assert_eq!(bytes.downstream_sent, 1234, "{bytes:?}");
    }

    pub async fn concurrent_connections_do_not_wait_for_each_other(t: &Target) {
        let echo = Echo::start().await;
        let proxy = t.proxy("many", echo.address).await;
        let toxic = Toxic::latency("", Stream::Downstream, 300, 0);
        t.client.add_toxic(&proxy.name, &toxic).await.expect("add");
        let started = tokio::time::Instant::now();
        let clients = (0..20u8).map(|i| {
            let proxy = proxy.clone();
            tokio::spawn(async move {
                let mut stream = connect(&proxy).await;
                round_trip(&mut stream, &[i; 100]).await
            })
        });
        for client in clients.collect::<Vec<_>>() {
            let rtt = client.await.expect("client task");
            assert!(
                rtt >= Duration::from_millis(300),
                "latency not applied: {rtt:?}"
            );
        }
        // One after the other they would take 6 s.
        let wall = started.elapsed();
        assert!(
            wall < Duration::from_secs(3),
            "connections were serialized: {wall:?}"
        );
    }

    pub async fn the_last_words_of_a_server_arrive_before_a_slow_close(t: &Target) {
        // An upstream that greets, then closes at once.
        let upstream = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = upstream.local_addr().expect("address");
        let greeter = tokio::spawn(async move {
            while let Ok((mut socket, _)) = upstream.accept().await {
                let _ = socket.write_all(b"bye").await;
            }
        });
        let proxy = t.proxy("bye", address).await;
        let toxic = Toxic::slow_close("", Stream::Downstream, 300);
        t.client.add_toxic(&proxy.name, &toxic).await.expect("add");

        let started = tokio::time::Instant::now();
        let mut stream = connect(&proxy).await;
        let (data, outcome) = read_until_closed(&mut stream).await;
        let closed_after = started.elapsed();
        greeter.abort();
        assert_eq!(data, b"bye");
        assert!(outcome.is_ok(), "closed, not reset: {outcome:?}");
        assert!(
            closed_after >= Duration::from_millis(300),
            "slow_close did not hold the close: {closed_after:?}"
        );
    }

    async fn free_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("address").port()
    }

    /// POSTs a JSON body the typed client would not send; the status and the JSON answer.
    async fn raw_post(t: &Target, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let url = format!("{}/{path}", t.client.base_url().trim_end_matches('/'));
        let response = reqwest::Client::new()
            .post(url)
            .json(&body)
            .send()
            .await
            .expect("raw request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("raw answer");
        (status, serde_json::from_str(&text).expect("a JSON answer"))
    }
}

// The embedded server's lifecycle and the client's own guarantees: no real server needed.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_the_server_down_closes_proxies_and_their_connections() {
    let embedded = Embedded::start("shutdown").await;
    let echo = Echo::start().await;
    let proxy = embedded.target.proxy("live", echo.address).await;
    let mut live = connect(&proxy).await;
    round_trip(&mut live, b"up").await;

    embedded.stop().await;
    let (data, _) = read_until_closed(&mut live).await;
    assert!(data.is_empty());
    let refused = TcpStream::connect(listen_address(&proxy)).await;
    assert_eq!(
        refused.map(|_| ()).map_err(|err| err.kind()),
        Err(ErrorKind::ConnectionRefused)
    );
}

/// The embedded stack's replicas: an upstream of several addresses takes them in turn and skips
/// one that refuses (an extension of ours; a real Toxiproxy gets the same spread from DNS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_of_several_addresses_takes_them_in_turn_and_skips_a_dead_one() {
    let embedded = Embedded::start("replicas").await;
    let (first, second) = (Echo::start().await, Echo::start().await);
    let dead = closed_port().await;
    let proxy = embedded
        .target
        .client
        .create_proxy(&ProxyConfig::new(
            embedded.target.name("spread"),
            "127.0.0.1:0",
            format!("{},{},{dead}", first.address, second.address),
        ))
        .await
        .expect("create proxy");
    for _ in 0..6 {
        let mut stream = connect(&proxy).await;
        round_trip(&mut stream, b"x").await;
    }
    // Six connections over three addresses, one of them dead: each live one got its own turn
    // and the dead one's turns went to the next live address.
    assert_eq!(
        (first.received(), second.received()),
        (4, 2),
        "bytes per replica"
    );
    embedded.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_recorded_with_its_answer_or_its_error() {
    let embedded = Embedded::start("record").await;
    let log: Arc<Mutex<Vec<Exchange>>> = Arc::default();
    let sink = log.clone();
    let recorder: Recorder = Arc::new(move |exchange: &Exchange| {
        sink.lock().unwrap().push(exchange.clone());
    });
    let client = embedded
        .target
        .client
        .clone()
        .with_recorder(recorder.clone());
    let echo = Echo::start().await;
    let config = ProxyConfig::new("recorded", "127.0.0.1:0", echo.address.to_string());

    client.create_proxy(&config).await.unwrap();
    client.create_proxy(&config).await.unwrap_err();
    client.reset().await.unwrap();
    let unreachable = Client::new(format!("http://{}", closed_port().await))
        .unwrap()
        .with_recorder(recorder);
    unreachable.version().await.unwrap_err();
    embedded.stop().await;

    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 4, "{log:#?}");
    let created = &log[0];
    assert_eq!(
        (created.method.as_str(), created.path.as_str()),
        ("POST", "/proxies")
    );
    assert_eq!(
        created.request,
        Some(serde_json::to_value(&config).unwrap())
    );
    assert_eq!(created.status, Some(201));
    assert_eq!(created.response["name"], "recorded");
    assert_eq!(created.error, None);
    assert!(created.started_at_ms > 1_600_000_000_000);

    let conflict = &log[1];
    assert_eq!(conflict.status, Some(409));
    assert_eq!(
        conflict.response,
        json!({"error": "proxy already exists", "status": 409})
    );
    assert!(conflict.error.as_deref().unwrap().contains("409"));

    assert_eq!((log[2].path.as_str(), log[2].status), ("/reset", Some(204)));
    assert_eq!(log[2].response, serde_json::Value::Null);

    let failed = &log[3];
    assert_eq!((failed.path.as_str(), failed.status), ("/version", None));
    assert!(failed.error.is_some());
    let serialized = serde_json::to_value(failed).unwrap();
    for field in [
        "method",
        "path",
        "request",
        "status",
        "response",
        "error",
        "started_at_ms",
        "elapsed_ms",
    ] {
        assert!(
            serialized.get(field).is_some(),
            "{field} missing from {serialized}"
        );
    }
}

#[tokio::test]
async fn a_call_without_an_answer_times_out() {
    // The kernel completes the handshake, nobody ever answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = Client::new(format!("http://{}", silent.local_addr().unwrap()))
        .unwrap()
        .with_timeout(Duration::from_millis(200));
    let err = client.proxies().await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn a_server_without_metrics_is_reported_as_such() {
    // What Toxiproxy started without -proxy-metrics answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0; 1024];
            let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut request).await;
            let body = "404 page not found\n";
            let answer = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    let err = Client::new(format!("http://{address}"))
        .unwrap()
        .metrics()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::MetricsDisabled { status: 404, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("-proxy-metrics"));
}

#[tokio::test]
async fn a_base_url_that_is_not_http_is_refused() {
    assert!(matches!(
        Client::new("not a url"),
        Err(Error::InvalidUrl { .. })
    ));
    assert!(matches!(
        Client::new("mailto:x@y"),
        Err(Error::InvalidUrl { .. })
    ));
}

/// An address nothing listens on.
async fn closed_port() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("address")
}
