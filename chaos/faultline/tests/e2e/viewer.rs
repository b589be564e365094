//! The capture's viewer in a real browser: headless Chromium driven through chromedriver
//! (Debian's `chromium` and `chromium-driver`), against a stack started as `faultline up`
//! starts it. A compensated booking, made under a known trace id, opens at
//! `/ui/trace/<trace_id>` as one tree of spans from every service it touched, its compensation
//! in reverse order of the steps, and its log lines, which link to their spans and back to the
//! trace. The trace page's screenshot is left in `target/test-artifacts/trace-page.png`.
//!
//! Without a browser this test fails — it never skips: set `FAULTLINE_CHROMEDRIVER` /
//! `FAULTLINE_CHROMIUM` when the binaries are not `chromedriver` on `PATH` and
//! `/usr/bin/chromium`.

use std::{
    cell::Cell,
    collections::BTreeSet,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use faultline_contracts::http::BookingAccepted;
use faultline_harness::wait::{Patience, eventually};
use serde_json::{Value, json};

use crate::helpers::{TestStack, start};

/// chromedriver, started on a free port in a process group of its own; dropping it kills the
/// group, so a failed test leaves no browser behind.
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    async fn start() -> Self {
        let binary =
            std::env::var("FAULTLINE_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = {
            use std::os::unix::process::CommandExt as _;
            Command::new(&binary)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
        }
        .unwrap_or_else(|error| {
            panic!(
                "cannot start chromedriver ({binary}): {error}. The viewer test needs a real \
                 browser: apt-get install -y chromium chromium-driver (or set \
                 FAULTLINE_CHROMEDRIVER)"
            )
        });
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        eventually(
            &format!("chromedriver ({binary}) to become ready on port {port}"),
            Patience::within(Duration::from_secs(20)).every(Duration::from_millis(100)),
            || async {
                let status: Option<Value> =
                    match http.get(format!("{}/status", driver.url)).send().await {
                        Ok(response) => response.json().await.ok(),
                        Err(_) => None,
                    };
                status.is_some_and(|s| s["value"]["ready"] == true)
            },
        )
        .await;
        driver
    }

    /// A headless Chromium session.
    async fn browser(&self) -> Client {
        let chromium =
            std::env::var("FAULTLINE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let mut options = json!({
            // Root in a container: no sandbox; a small /dev/shm: use /tmp.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1800", "--hide-scrollbars"],
        });
        if std::path::Path::new(&chromium).exists() {
            options["binary"] = chromium.clone().into();
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "chromedriver could not start Chromium ({chromium}): {error}. Install it \
                     with apt-get install -y chromium (or set FAULTLINE_CHROMIUM)"
                )
            })
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The group this driver leads: chromedriver and the browsers it started.
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

fn random_hex(bytes: usize) -> String {
    uuid::Uuid::new_v4().simple().to_string()[..bytes * 2].to_owned()
}

/// The reservation's view of the booking (`status`, `saga_state`).
async fn booking_view(t: &TestStack, booking_id: &str) -> Value {
    let reservation = t.stack.endpoints().service("reservation").to_owned();
    let bookings: Vec<Value> = t
        .http
        .get(format!("{reservation}/admin/bookings"))
        .send()
        .await
        .expect("GET /admin/bookings")
        .json()
        .await
        .expect("json");
    bookings
        .into_iter()
        .find(|b| b["booking_id"] == booking_id)
        .unwrap_or(Value::Null)
}

/// Polls the booking until `done` says so.
async fn until(t: &TestStack, booking_id: &str, what: &str, done: impl Fn(&Value) -> bool) {
    eventually(
        &format!("booking {booking_id} to be {what}"),
        Patience::within(Duration::from_secs(40)).every(Duration::from_millis(100)),
        || async {
            let view = booking_view(t, booking_id).await;
            if done(&view) {
                Ok(())
            } else {
                Err(view.to_string())
            }
        },
    )
    .await;
}

/// A booking the saga compensates after charging: payment's replies are held back past the
/// client's timeout, so the charge's outcome is unknown; the step deadline passes; reservation
/// refunds (for real: the charge reached payment), then releases. The replies flow again once
/// the saga is refunding. Returns the booking id, the trace id, and the caller's span id.
async fn compensated_booking(t: &TestStack) -> (String, String, String) {
    let toxiproxy =
        faultline_toxiproxy::Client::new(t.stack.toxiproxy_url()).expect("toxiproxy client");
    toxiproxy
        .add_toxic(
            "reservation-payment",
            &faultline_toxiproxy::Toxic::latency(
                "viewer-slow-replies",
                faultline_toxiproxy::Stream::Downstream,
                3_000,
                0,
            ),
        )
        .await
        .expect("slow replies on reservation→payment");
    let trace_id = format!("{}{}", random_hex(8), random_hex(8));
    let client_span = random_hex(8);
    let accepted: BookingAccepted = t
        .http
        .post(t.gateway("/bookings"))
        .bearer_auth(t.token("user-6"))
        .header("idempotency-key", "viewer-compensated")
        .header("traceparent", format!("00-{trace_id}-{client_span}-01"))
        .json(&json!({ "seat_id": "saga-live-1-010" }))
        .send()
        .await
        .expect("POST /bookings")
        .json()
        .await
        .expect("accepted");
    let booking = accepted.booking_id;
    until(t, &booking, "refunded", |b| b["saga_state"] == "REFUNDING").await;
    toxiproxy
        .remove_toxic("reservation-payment", "viewer-slow-replies")
        .await
        .expect("replies flow again");
    until(t, &booking, "was cancelled", |b| b["status"] == "CANCELLED").await;
    (booking, trace_id, client_span)
}

/// Waits until the capture holds the trace's spans from every one of `services` and its log
/// lines, and neither has grown for a while.
async fn settled(t: &TestStack, trace_id: &str, services: &[&str]) {
    let capture = t.stack.endpoints().telemetry["tempo"].clone();
    let last = Cell::new((0, 0));
    let steady = Cell::new(0);
    let look = || async {
        let trace: Value = match t
            .http
            .get(format!("{capture}/api/traces/{trace_id}"))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r.json().await.unwrap_or_default(),
            _ => Value::Null,
        };
        let spans = faultline::chaos::evidence::spans_of(&trace);
        let seen: BTreeSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
        let logs: Value = t
            .http
            .get(format!("{capture}/loki/api/v1/query_range"))
            .query(&[
                ("query", format!(r#"{{service!=""}} |= "{trace_id}""#)),
                ("limit", "5000".into()),
            ])
            .send()
            .await
            .expect("GET logs")
            .json()
            .await
            .unwrap_or_default();
        let lines = logs["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| s["values"].as_array().map_or(0, Vec::len))
            .sum::<usize>();
        let now = (spans.len(), lines);
        let previous = last.replace(now);
        if services.iter().all(|s| seen.contains(s)) && lines > 0 && now == previous {
            steady.set(steady.get() + 1);
            if steady.get() >= 3 {
                return Ok(());
            }
        } else {
            steady.set(0);
        }
        Err(format!("services {seen:?}, {lines} log lines"))
    };
    eventually(
        &format!("trace {trace_id} to settle"),
        Patience::within(Duration::from_secs(30)).every(Duration::from_millis(400)),
        look,
    )
    .await;
}

async fn attr(element: &Element, name: &str) -> String {
    element
        .attr(name)
        .await
        .expect("attribute")
        .unwrap_or_default()
}

/// Polls the browser until it shows the page of `trace_id` (the page itself, no fragment: a
/// link followed from a `#span-…` position has really navigated).
async fn lands_on_trace(browser: &Client, trace_id: &str) {
    eventually(
        &format!("the browser to show trace {trace_id}"),
        Patience::within(Duration::from_secs(10)).every(Duration::from_millis(100)),
        || async {
            let url = browser.current_url().await.expect("current url");
            if url.path() == format!("/ui/trace/{trace_id}")
                && url.fragment().is_none()
                && let Ok(shown) = browser.find(Locator::Id("trace-id")).await
                // Stale while a navigation replaces the page: look again.
                && shown.text().await.is_ok_and(|t| t == trace_id)
            {
                Ok(())
            } else {
                Err(format!("the browser is at {url}"))
            }
        },
    )
    .await;
}

/// Polls the browser until its URL's query contains `text`.
async fn query_contains(browser: &Client, text: &str) {
    eventually(
        &format!("the browser's URL query to contain {text:?}"),
        Patience::within(Duration::from_secs(10)).every(Duration::from_millis(100)),
        || async {
            let url = browser.current_url().await.expect("current url");
            if url.query().is_some_and(|q| q.contains(text)) {
                Ok(())
            } else {
                Err(format!("the browser stayed at {url}"))
            }
        },
    )
    .await;
}

/// Where test artifacts go: `$CARGO_TARGET_DIR/test-artifacts`, or the workspace's target.
fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifact directory");
    dir.canonicalize().unwrap_or(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compensated_booking_reads_in_the_browser_as_one_tree_with_its_log_lines() {
    let driver = Chromedriver::start().await;
    let t = start(|options| options.saga = json!({ "charge_deadline_ms": 1000 })).await;
    let viewer = t.stack.endpoints().telemetry["viewer"].clone();
    let (booking, trace_id, client_span) = compensated_booking(&t).await;
    settled(
        &t,
        &trace_id,
        &["gateway", "reservation", "inventory", "payment"],
    )
    .await;

    let browser = driver.browser().await;
    browser
        .goto(&format!("{viewer}trace/{trace_id}"))
        .await
        .expect("open the trace page");
    lands_on_trace(&browser, &trace_id).await;

    // One tree: a single top-level span, the gateway's, under the caller's span.
    let mut rows = Vec::new();
    for row in browser
        .find_all(Locator::Css("details.span"))
        .await
        .expect("span rows")
    {
        rows.push((
            attr(&row, "data-service").await,
            attr(&row, "data-name").await,
            attr(&row, "data-depth").await,
            attr(&row, "data-parent-id").await,
            attr(&row, "data-start-ns")
                .await
                .parse::<u64>()
                .expect("start"),
        ));
    }
    let services: BTreeSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    for service in ["gateway", "reservation", "inventory", "payment"] {
        assert!(services.contains(service), "no {service} span: {rows:#?}");
    }
    let tops: Vec<_> = rows.iter().filter(|r| r.2 == "0").collect();
    assert_eq!(tops.len(), 1, "one tree: {tops:#?}");
    assert_eq!(
        (tops[0].0.as_str(), tops[0].3.as_str()),
        ("gateway", client_span.as_str()),
        "rooted at the gateway, under the caller's span"
    );

    // Compensation: badged, listed in the order it ran — refund, then release — after the
    // charge it undoes.
    let mut listed = Vec::new();
    for item in browser
        .find_all(Locator::Css("#compensation li"))
        .await
        .expect("compensation list")
    {
        listed.push(attr(&item, "data-name").await);
    }
    let at = |name: &str| {
        listed
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("{name:?} not in the compensation list {listed:?}"))
    };
    assert!(
        at("saga compensate refund") < at("saga compensate release"),
        "reverse order: {listed:?}"
    );
    let first = |name: &str| {
        rows.iter()
            .filter(|r| r.1 == name)
            .map(|r| r.4)
            .min()
            .unwrap_or_else(|| panic!("no span {name:?}"))
    };
    assert!(first("saga charge") < first("saga compensate refund"));
    let badged = browser
        .find_all(Locator::Css("details.span.compensation .badge.comp"))
        .await
        .expect("badges");
    assert!(badged.len() >= 2, "compensation spans carry a badge");

    // The log lines: every one of this trace, from more than one service, each linked to a
    // span of the page.
    let lines = browser
        .find_all(Locator::Css("tr.log"))
        .await
        .expect("log lines");
    assert!(lines.len() >= 3, "the trace's log lines are listed");
    for line in &lines {
        assert_eq!(attr(line, "data-trace-id").await, trace_id);
    }
    let page_text = browser
        .find(Locator::Css("table.logs"))
        .await
        .expect("log table")
        .text()
        .await
        .expect("text");
    assert!(page_text.contains("compensating"), "{page_text}");
    for service in ["gateway", "reservation", "inventory"] {
        assert!(
            page_text.contains(service),
            "no {service} line: {page_text}"
        );
    }
    let span_link = browser
        .find(Locator::Css("tr.log a.span-link"))
        .await
        .expect("a log line linked to its span");
    let target = attr(&span_link, "href").await;
    span_link.click().await.expect("follow the span link");
    let span_id = target.trim_start_matches("#span-");
    assert_eq!(
        browser
            .find(Locator::Css(&format!("details.span#span-{span_id}")))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Ok(()),
        "the line's span {span_id} is on the page"
    );

    // Open the refund's details for the picture, then take it.
    let refund = browser
        .find(Locator::Css(
            "details.span.compensation[data-name='saga compensate refund'] > summary",
        ))
        .await
        .expect("the refund span");
    refund.click().await.expect("open the refund's details");
    browser
        .execute("window.scrollTo(0, 0)", vec![])
        .await
        .expect("scroll");
    let png = browser.screenshot().await.expect("screenshot");
    let shot = artifacts().join("trace-page.png");
    std::fs::write(&shot, &png).expect("write the screenshot");
    println!("screenshot of the trace page: {}", shot.display());

    // A log line's trace link leads back to this trace — from the trace page itself, and from
    // the log search, where the line is found by its booking id.
    browser
        .find(Locator::Css("tr.log a.trace-link"))
        .await
        .expect("a trace link")
        .click()
        .await
        .expect("follow it");
    lands_on_trace(&browser, &trace_id).await;
    browser
        .goto(&format!("{viewer}logs?service=reservation&text={booking}"))
        .await
        .expect("the log search");
    browser
        .find(Locator::Css(&format!(
            "tr.log[data-trace-id='{trace_id}'] a.trace-link"
        )))
        .await
        .expect("the booking's line, linked to its trace")
        .click()
        .await
        .expect("follow it");
    lands_on_trace(&browser, &trace_id).await;

    // The search page finds the trace by booking id, through its form.
    browser.goto(&viewer).await.expect("the search page");
    browser
        .find(Locator::Css("input[name=booking]"))
        .await
        .expect("the booking field")
        .send_keys(&booking)
        .await
        .expect("type the booking id");
    browser
        .find(Locator::Css("form.search button[type=submit]"))
        .await
        .expect("the search button")
        .click()
        .await
        .expect("search");
    query_contains(&browser, &format!("booking={booking}")).await;
    let found = browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(&format!(
            "tr.trace[data-trace-id='{trace_id}']"
        )))
        .await
        .expect("the booking's trace in the results");
    let text = found.text().await.expect("row text");
    assert!(text.contains("CANCELLED"), "the outcome is listed: {text}");
    found
        .find(Locator::Css(&format!("a[href='/ui/trace/{trace_id}']")))
        .await
        .expect("a link to the trace")
        .click()
        .await
        .expect("open it");
    lands_on_trace(&browser, &trace_id).await;

    browser.close().await.expect("close the browser");
}
