//! The services' backlogs while a load runs: every second, `GET {service}/admin/load` on every
//! service (outbox rows not yet published, consumer lag per group, work in flight), keeping the
//! peak and the last value of each.
//!
//! A service that does not answer it (404: not every service has the endpoint, or an older
//! build) is reported with `null`s rather than failing the run: backlog figures explain a
//! result, they are not the result.

use std::{collections::BTreeMap, time::Duration};

use faultline_contracts::http::LoadReport;
use serde::Serialize;
use tokio::{sync::oneshot, task::JoinHandle};

/// How often every service is asked.
const PERIOD: Duration = Duration::from_secs(1);

/// The peak and the last sample of one figure; `null` while no sample had a value.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Peak {
    pub peak: Option<i64>,
    #[serde(rename = "final")]
    pub last: Option<i64>,
}

impl Peak {
    fn observe(&mut self, value: Option<i64>) {
        self.last = value;
        if let Some(value) = value {
            self.peak = Some(self.peak.map_or(value, |peak| peak.max(value)));
        }
    }
}

/// Every service's backlogs over a load phase and its drain.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Backlogs {
    /// Per service: outbox rows not yet published.
    pub outbox_lag: BTreeMap<String, Peak>,
    /// Per service, per consumer group: messages published and not yet processed.
    pub consumer_lag: BTreeMap<String, BTreeMap<String, Peak>>,
    /// Per service: work accepted and not finished (reservation: sagas not terminal).
    pub in_flight: BTreeMap<String, Peak>,
}

impl Backlogs {
    fn observe(&mut self, service: &str, report: Option<&LoadReport>) {
        self.outbox_lag
            .entry(service.to_owned())
            .or_default()
            .observe(report.and_then(|r| r.outbox_unpublished));
        self.in_flight
            .entry(service.to_owned())
            .or_default()
            .observe(report.and_then(|r| r.in_flight));
        let groups = self.consumer_lag.entry(service.to_owned()).or_default();
        match report {
            Some(report) => {
                for (group, lag) in &report.consumer_lag {
                    groups.entry(group.clone()).or_default().observe(*lag);
                }
            }
            // No answer this round: what was known is no longer current.
            None => groups.values_mut().for_each(|peak| peak.observe(None)),
        }
    }
}

/// Samples in the background from [`Sampler::start`] until [`Sampler::finish`].
#[derive(Debug)]
pub struct Sampler {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Backlogs>,
}

impl Sampler {
    /// Starts sampling `services` (name → base URL) with `http`.
    pub fn start(http: reqwest::Client, services: BTreeMap<String, String>) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut backlogs = Backlogs::default();
            let mut ticks = tokio::time::interval(PERIOD);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticks.tick() => sample(&http, &services, &mut backlogs).await,
                }
            }
            // One more after the drain, so `final` is the state at the end, not a second before.
            sample(&http, &services, &mut backlogs).await;
            backlogs
        });
        Self { stop, task }
    }

    /// Stops sampling and returns what was seen.
    pub async fn finish(self) -> Backlogs {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

/// One round: every service at once, each bounded so a stuck one cannot stretch the period.
async fn sample(
    http: &reqwest::Client,
    services: &BTreeMap<String, String>,
    backlogs: &mut Backlogs,
) {
    let answers = futures::future::join_all(services.iter().map(|(name, url)| async move {
        let report = async {
            let response = http
                .get(format!("{url}/admin/load"))
                .timeout(PERIOD)
                .send()
                .await
                .ok()?;
            if !response.status().is_success() {
                return None;
            }
            response.json::<LoadReport>().await.ok()
        }
        .await;
        (name, report)
    }))
    .await;
    for (name, report) in answers {
        backlogs.observe(name, report.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outbox: Option<i64>, lag: Option<i64>) -> LoadReport {
        LoadReport {
            consumer_lag: BTreeMap::from([("reservation".to_owned(), lag)]),
            outbox_unpublished: outbox,
            // Whatever else the contract grows stays at its default.
            ..Default::default()
        }
    }

    #[test]
    fn the_peak_survives_and_final_is_the_last_sample() {
        let mut backlogs = Backlogs::default();
        backlogs.observe("reservation", Some(&report(Some(3), None)));
        backlogs.observe("reservation", Some(&report(Some(40), Some(7))));
        backlogs.observe("reservation", Some(&report(Some(0), Some(0))));
        assert_eq!(
            backlogs.outbox_lag["reservation"],
            Peak {
                peak: Some(40),
                last: Some(0)
            }
        );
        assert_eq!(
            backlogs.consumer_lag["reservation"]["reservation"],
            Peak {
                peak: Some(7),
                last: Some(0)
            }
        );
    }

    #[test]
    fn a_service_without_the_endpoint_reports_nulls() {
        let mut backlogs = Backlogs::default();
        backlogs.observe("capture", None);
        let json = serde_json::to_value(&backlogs).expect("json");
        assert_eq!(
            json["outbox_lag"]["capture"],
            serde_json::json!({"peak": null, "final": null})
        );
        assert_eq!(json["consumer_lag"]["capture"], serde_json::json!({}));
    }
}
