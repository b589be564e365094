//! Decoding OTLP/HTTP trace exports (protobuf, as the OpenTelemetry SDK's HTTP exporter sends
//! them) into [`StoredSpan`]s.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, KeyValue, any_value::Value},
};
use prost::Message as _;

use crate::store::{StoredEvent, StoredSpan};

/// An attribute value as text (what TraceQL conditions compare against).
pub fn value_text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => hex::encode(b),
        Some(Value::ArrayValue(a)) => format!(
            "{:?}",
            a.values
                .iter()
                .map(|v| value_text(Some(v)))
                .collect::<Vec<_>>()
        ),
        Some(Value::KvlistValue(kv)) => format!("{:?}", attributes(&kv.values)),
        _ => String::new(),
    }
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), value_text(kv.value.as_ref())))
        .collect()
}

/// Decodes an export request body into spans.
pub fn decode(body: &[u8]) -> Result<Vec<StoredSpan>, prost::DecodeError> {
    let request = ExportTraceServiceRequest::decode(body)?;
    let mut spans = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let service_name: std::sync::Arc<str> = resource
            .get("service.name")
            .map(String::as_str)
            .unwrap_or_default()
            .into();
        let resource = std::sync::Arc::new(resource);
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                spans.push(StoredSpan {
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: hex::encode(&span.parent_span_id),
                    name: span.name,
                    kind: span.kind,
                    start_unix_nano: span.start_time_unix_nano,
                    end_unix_nano: span.end_time_unix_nano,
                    service_name: service_name.clone(),
                    resource: resource.clone(),
                    attributes: attributes(&span.attributes),
                    events: span
                        .events
                        .into_iter()
                        .map(|e| StoredEvent {
                            name: e.name,
                            time_unix_nano: e.time_unix_nano,
                            attributes: attributes(&e.attributes),
                        })
                        .collect(),
                    links: span
                        .links
                        .iter()
                        .map(|l| (hex::encode(&l.trace_id), hex::encode(&l.span_id)))
                        .collect(),
                    status_code: span.status.map(|s| s.code).unwrap_or_default(),
                });
            }
        }
    }
    Ok(spans)
}
