//! Telemetry set-up and W3C trace-context propagation.
//!
//! [`init`] installs the process-wide subscriber: an env filter (`RUST_LOG`), human-readable
//! console output, and the tracing-opentelemetry layer, so every tracing span is also an
//! OpenTelemetry span with a trace id that travels on HTTP calls and Kafka headers.
//!
//! Export is configured by the standard OpenTelemetry variables — `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`): spans go there over OTLP/HTTP (protobuf) through a
//! batch exporter; `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` are
//! honoured — and by `FAULTLINE_LOKI_URL`: log lines go to Loki's push API as JSON, labelled
//! only `service` and `level` (low cardinality); trace ids travel as fields of the line, never
//! as labels. Every span carries `service.name` and `service.instance.id` (the service's
//! configured instance id, so each replica's spans say which replica; a random one for tools),
//! and a replica's log lines its id as the `instance` field (when it is not just the service's
//! name). [`Telemetry::shutdown`] flushes both on a graceful stop.
//!
//! Propagation is always the composite of W3C `traceparent`/`tracestate` and `baggage`.
//! [`trace_headers`] captures the current span's context as a plain map — the form stored with
//! an outbox row and copied into Kafka headers — and [`extract`] turns any header map back into
//! a parent context. A missing or invalid `traceparent` extracts as an empty context: the span
//! becomes a new root, never an error.

use std::collections::BTreeMap;

use opentelemetry::{
    Context, global,
    propagation::{Extractor, TextMapCompositePropagator},
    trace::{TraceContextExt as _, TracerProvider as _},
};
use opentelemetry_sdk::{
    Resource,
    propagation::{BaggagePropagator, TraceContextPropagator},
    trace::SdkTracerProvider,
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{EnvFilter, layer::SubscriberExt as _, util::SubscriberInitExt as _};

/// Keeps the tracer provider and the Loki task alive; [`Telemetry::shutdown`] flushes them.
pub struct Telemetry {
    provider: SdkTracerProvider,
    loki: Option<(
        tracing_loki::BackgroundTaskController,
        tokio::task::JoinHandle<()>,
    )>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("loki", &self.loki.is_some())
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Flushes and stops the exporters: spans first (on a blocking thread: the provider's
    /// shutdown blocks, and on the runtime's own thread it can time out and lose spans), then
    /// the log lines still queued for Loki.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Some((controller, task)) = self.loki {
            controller.shutdown().await;
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
    }
}

/// The OTLP endpoint spans are exported to, if any.
fn otlp_endpoint() -> Option<String> {
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
}

/// Installs the W3C propagators. Idempotent; [`init`] calls it, tests may call it alone.
pub fn install_propagator() {
    global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]));
}

/// The default filter when `RUST_LOG` is unset: our crates at info, chatty dependencies quieter.
pub const DEFAULT_FILTER: &str = "info,h2=warn,hyper=warn,tonic=warn,rdkafka=warn,sqlx=warn,opentelemetry=warn,opentelemetry_sdk=warn,opentelemetry_otlp=warn";

/// The resource every span carries: `service.name` (`OTEL_SERVICE_NAME`, then a `service.name`
/// in `OTEL_RESOURCE_ATTRIBUTES`, win over `service_name`), `service.instance.id` (the process's
/// configured instance id, e.g. `reservation-2`, so a trace shows which replica did each step;
/// without one, the service name and a random suffix), and the rest of `OTEL_RESOURCE_ATTRIBUTES`.
fn resource(service_name: &str, instance_id: Option<&str>) -> Resource {
    let instance = instance_id.map_or_else(
        || format!("{service_name}-{}", uuid::Uuid::new_v4().simple()),
        str::to_owned,
    );
    let mut builder = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
        "service.instance.id",
        instance,
    ));
    let named_by_env = std::env::var_os("OTEL_SERVICE_NAME").is_some()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| a.contains("service.name="));
    if !named_by_env {
        builder = builder.with_service_name(service_name.to_owned());
    }
    builder.build()
}

/// Builds a tracer provider for `service_name`, exporting to the configured OTLP endpoint if
/// there is one. Must run inside the tokio runtime (the exporter's HTTP client is built here).
pub fn tracer_provider(service_name: &str) -> anyhow::Result<SdkTracerProvider> {
    tracer_provider_to(service_name, otlp_endpoint().as_deref())
}

/// [`tracer_provider`] exporting to `endpoint` (an OTLP base URL such as
/// `http://127.0.0.1:4318`; `/v1/traces` is appended), or to nothing.
pub fn tracer_provider_to(
    service_name: &str,
    endpoint: Option<&str>,
) -> anyhow::Result<SdkTracerProvider> {
    build_tracer_provider(service_name, None, endpoint)
}

fn build_tracer_provider(
    service_name: &str,
    instance_id: Option<&str>,
    endpoint: Option<&str>,
) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig as _;
    let mut builder =
        SdkTracerProvider::builder().with_resource(resource(service_name, instance_id));
    if let Some(endpoint) = endpoint {
        let url = if std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some() {
            endpoint.to_owned()
        } else {
            format!("{}/v1/traces", endpoint.trim_end_matches('/'))
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            // OTLP/HTTP with protobuf bodies (the crate's default protocol for `with_http`).
            .with_http()
            .with_endpoint(url)
            .build()?;
        let processor = opentelemetry_sdk::trace::BatchSpanProcessor::builder(exporter)
            .with_batch_config(batch_config())
            .build();
        builder = builder.with_span_processor(processor);
    }
    Ok(builder.build())
}

/// How many ended spans may wait for export before the batch processor drops new ones, unless
/// `OTEL_BSP_MAX_QUEUE_SIZE` says otherwise. The SDK's default (2,048) is about 4 s of one
/// reservation replica's spans at 40 bookings/s: a receiver slowed by a loaded machine (a
/// chaos run of ten processes on two cores) made it drop spans, which then read as orphans in
/// the traces check. 64 Ki spans hold minutes of that (at most ~60 MiB, only while the
/// receiver lags); a drop that still happens is logged (`BatchSpanProcessor.SpanDroppingStarted`,
/// the SDK's internal logs), so a checker can tell it from a broken trace.
pub const SPAN_QUEUE: usize = 65_536;

fn batch_config() -> opentelemetry_sdk::trace::BatchConfig {
    // The builder's default reads every `OTEL_BSP_*` variable; only an unset queue size is ours.
    let config = opentelemetry_sdk::trace::BatchConfigBuilder::default();
    if std::env::var_os("OTEL_BSP_MAX_QUEUE_SIZE").is_some() {
        config.build()
    } else {
        config.with_max_queue_size(SPAN_QUEUE).build()
    }
}

/// Installs the global subscriber for a service process. Returns an error if one is already
/// installed (a second service in the same test process keeps the first one's).
pub fn init(service_name: &str) -> anyhow::Result<Telemetry> {
    install(service_name, None, DEFAULT_FILTER)
}

/// [`init`] for one instance of a service (a replica): its spans carry `instance_id` as
/// `service.instance.id` and its log lines as the `instance` field (unless it is the service's
/// name: one instance, nothing to tell apart).
pub fn init_instance(service_name: &str, instance_id: &str) -> anyhow::Result<Telemetry> {
    install(service_name, Some(instance_id), DEFAULT_FILTER)
}

/// [`init`] with another filter for when `RUST_LOG` is unset (a CLI wants less than a service).
pub fn init_with_default_filter(
    service_name: &str,
    default_filter: &str,
) -> anyhow::Result<Telemetry> {
    install(service_name, None, default_filter)
}

fn install(
    service_name: &str,
    instance_id: Option<&str>,
    default_filter: &str,
) -> anyhow::Result<Telemetry> {
    install_propagator();
    let provider = build_tracer_provider(service_name, instance_id, otlp_endpoint().as_deref())?;
    let tracer = provider.tracer(service_name.to_owned());
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let (loki_layer, loki) = match std::env::var("FAULTLINE_LOKI_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    {
        Some(url) => {
            let mut builder = tracing_loki::builder().label("service", service_name)?;
            if let Some(instance) = instance_id.filter(|id| *id != service_name) {
                // Only a replica's own id (not the service's name again); a field, not a
                // label: replicas come and go, labels make streams.
                builder = builder.extra_field("instance", instance)?;
            }
            let (layer, controller, task) = builder.build_controller_url(url.parse()?)?;
            (Some(layer), Some((controller, tokio::spawn(task))))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(loki_layer)
        .with(
            tracing_subscriber::fmt::layer()
                .with_target(false)
                // Colours only for a terminal: service output usually goes to a log file.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())),
        )
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init()?;
    Ok(Telemetry { provider, loki })
}

/// The current span's trace context as `traceparent`/`tracestate`/`baggage` entries (empty when
/// the span is not recorded by OpenTelemetry).
pub fn trace_headers() -> BTreeMap<String, String> {
    let cx = tracing::Span::current().context();
    let mut headers = std::collections::HashMap::new();
    global::get_text_map_propagator(|propagator| propagator.inject_context(&cx, &mut headers));
    headers.into_iter().collect()
}

/// Lets a `BTreeMap` (the header form stored in outbox rows) be read by the propagator.
#[derive(Debug)]
pub struct MapCarrier<'a>(pub &'a BTreeMap<String, String>);

impl Extractor for MapCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// The parent context carried by a header map (empty when absent or invalid).
pub fn extract(carrier: &dyn Extractor) -> Context {
    global::get_text_map_propagator(|propagator| propagator.extract(carrier))
}

/// The span id a carrier's trace context names (the parent a span continuing it gets), if valid.
pub fn carried_span_id(carrier: &dyn Extractor) -> Option<String> {
    let cx = extract(carrier);
    let span_context = cx.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.span_id().to_string())
}

/// Makes `span` a child of the context in `carrier`, if it carries a valid one. Must be called
/// before the span is entered.
pub fn continue_trace(span: &tracing::Span, carrier: &dyn Extractor) {
    let cx = extract(carrier);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// Records `trace_id` and `span_id` on `span` (which must declare both fields, `Empty`), so
/// every log line inside it carries them as fields. Call on the span that opens a unit of work
/// (a request, a consumed message, a saga step), after its parent is set.
pub fn record_ids(span: &tracing::Span) {
    let cx = span.context();
    let span_context = cx.span().span_context().clone();
    span.record("trace_id", span_context.trace_id().to_string());
    span.record("span_id", span_context.span_id().to_string());
}

/// The trace id of `span`, as 32 hex digits (all zeros when not recorded).
pub fn trace_id(span: &tracing::Span) -> String {
    span.context().span().span_context().trace_id().to_string()
}

/// Injects the current span's context into outgoing HTTP headers.
pub fn inject_http(headers: &mut http::HeaderMap) {
    let cx = tracing::Span::current().context();
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&cx, &mut opentelemetry_http::HeaderInjector(headers))
    });
}

/// Test support: a subscriber with the OpenTelemetry layer, for use with
/// `tracing::subscriber::set_default` in tests that check propagation.
pub fn test_subscriber() -> impl tracing::Subscriber + Send + Sync {
    install_propagator();
    let tracer = SdkTracerProvider::builder().build().tracer("test");
    tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_span_continues_the_trace_it_was_given_and_passes_it_on() {
        let _guard = tracing::subscriber::set_default(test_subscriber());
        let incoming: HashMap<String, String> = [(
            "traceparent".to_owned(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
        )]
        .into();
        let span = tracing::info_span!("consume");
        continue_trace(&span, &incoming);
        let _entered = span.enter();
        assert_eq!(trace_id(&span), "4bf92f3577b34da6a3ce929d0e0e4736");
        let outgoing = trace_headers();
        let traceparent = outgoing.get("traceparent").expect("traceparent injected");
        assert!(
            traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{traceparent}"
        );
        assert!(!traceparent.contains("00f067aa0ba902b7"), "a new span id");
    }

    #[test]
    fn a_garbage_traceparent_starts_a_new_root() {
        let _guard = tracing::subscriber::set_default(test_subscriber());
        let incoming: HashMap<String, String> =
            [("traceparent".to_owned(), "garbage".to_owned())].into();
        let span = tracing::info_span!("request");
        continue_trace(&span, &incoming);
        let _entered = span.enter();
        let id = trace_id(&span);
        assert_eq!(id.len(), 32);
        assert_ne!(id, "00000000000000000000000000000000");
    }
}
