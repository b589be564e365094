//! The set of proxies and every control operation on it (Toxiproxy's `ProxyCollection`).
//!
//! One async mutex serializes all control calls. They are rare and short, and holding it across
//! a proxy's start or stop means no call ever sees a half-started proxy. The data path never
//! takes it: links read toxics from a watch channel and count bytes in atomics.

use crate::api;
use crate::server::error::ApiError;
use crate::server::metrics::Metrics;
use crate::server::proxy::ProxyHandle;
use crate::server::toxic::Toxics;
use std::collections::BTreeMap;
use tokio::sync::Mutex;

/// A proxy as `POST /proxies` or one element of `POST /populate` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProxyInput {
    pub name: String,
    pub listen: String,
    pub upstream: String,
    pub enabled: bool,
}

/// What `PATCH /proxies/{p}` gives; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProxyChange {
    pub listen: Option<String>,
    pub upstream: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    proxies: Mutex<BTreeMap<String, ProxyHandle>>,
    metrics: Metrics,
}

impl Registry {
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub async fn list(&self) -> BTreeMap<String, api::Proxy> {
        let proxies = self.proxies.lock().await;
        proxies
            .iter()
            .map(|(name, proxy)| (name.clone(), proxy.to_api()))
            .collect()
    }

    pub async fn get(&self, name: &str) -> Result<api::Proxy, ApiError> {
        let proxies = self.proxies.lock().await;
        proxies
            .get(name)
            .map(ProxyHandle::to_api)
            .ok_or_else(ApiError::proxy_not_found)
    }

    pub async fn create(&self, input: ProxyInput) -> Result<api::Proxy, ApiError> {
        let mut proxies = self.proxies.lock().await;
        if proxies.contains_key(&input.name) {
            return Err(ApiError::proxy_exists());
        }
        let mut proxy = ProxyHandle::new(input.name.clone(), input.listen, input.upstream);
        if input.enabled {
            proxy.start(&self.metrics).await?;
        }
        let answer = proxy.to_api();
        proxies.insert(input.name, proxy);
        Ok(answer)
    }

    /// Toxiproxy's `AddOrReplace` for each input in turn: an existing proxy with the same
    /// (resolved) listen address and upstream is kept as it is, toxics and enabled state
    /// included; one that differs is stopped and replaced. Stops at the first error and returns
    /// what was done so far with it.
    pub async fn populate(&self, inputs: Vec<ProxyInput>) -> (Vec<api::Proxy>, Option<ApiError>) {
        let mut proxies = self.proxies.lock().await;
        let mut done = Vec::with_capacity(inputs.len());
        for input in inputs {
            if let Some(existing) = proxies.get_mut(&input.name) {
                match existing.differs(&input.listen, &input.upstream).await {
                    Err(err) => return (done, Some(err)),
                    Ok(false) => {
                        done.push(existing.to_api());
                        continue;
                    }
                    Ok(true) => existing.stop().await,
                }
            }
            let mut proxy = ProxyHandle::new(input.name.clone(), input.listen, input.upstream);
            if input.enabled
                && let Err(err) = proxy.start(&self.metrics).await
            {
                return (done, Some(err));
            }
            done.push(proxy.to_api());
            proxies.insert(input.name, proxy);
        }
        (done, None)
    }

    /// Toxiproxy's `Proxy.Update`: a changed listen address or upstream restarts the proxy
    /// (closing its connections); then `enabled` starts or stops it.
    pub async fn update(&self, name: &str, change: ProxyChange) -> Result<api::Proxy, ApiError> {
        let mut proxies = self.proxies.lock().await;
        let proxy = proxies
            .get_mut(name)
            .ok_or_else(ApiError::proxy_not_found)?;
        let listen = change.listen.unwrap_or_else(|| proxy.listen.clone());
        let upstream = change.upstream.unwrap_or_else(|| proxy.upstream.clone());
        let enabled = change.enabled.unwrap_or(proxy.enabled());
        if proxy.differs(&listen, &upstream).await? {
            proxy.stop().await;
            proxy.listen = listen;
            proxy.upstream = upstream;
        }
        if enabled && !proxy.enabled() {
            proxy.start(&self.metrics).await?;
        } else if !enabled {
            proxy.stop().await;
        }
        Ok(proxy.to_api())
    }

    pub async fn delete(&self, name: &str) -> Result<(), ApiError> {
        let mut proxies = self.proxies.lock().await;
        let mut proxy = proxies.remove(name).ok_or_else(ApiError::proxy_not_found)?;
        proxy.stop().await;
        Ok(())
    }

    /// `POST /reset`: every proxy enabled, every toxic removed, proxies kept.
    pub async fn reset(&self) -> Result<(), ApiError> {
        let mut proxies = self.proxies.lock().await;
        for proxy in proxies.values_mut() {
            if !proxy.enabled() {
                proxy.start(&self.metrics).await?;
            }
            proxy.toxics.clear();
        }
        Ok(())
    }

    /// Runs `change` on the toxics of proxy `name`.
    pub async fn with_toxics<T>(
        &self,
        name: &str,
        change: impl FnOnce(&mut Toxics) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut proxies = self.proxies.lock().await;
        let proxy = proxies
            .get_mut(name)
            .ok_or_else(ApiError::proxy_not_found)?;
        change(&mut proxy.toxics)
    }

    /// Stops every proxy: listeners closed, connections closed.
    pub async fn shutdown(&self) {
        let mut proxies = self.proxies.lock().await;
        for proxy in proxies.values_mut() {
            proxy.stop().await;
        }
    }
}
