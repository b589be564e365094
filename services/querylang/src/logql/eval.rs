//! Evaluating a LogQL log query on a stream's line the way Loki does, and what the deploy checks
//! read off a query (the texts a line must contain, whether it parses JSON).

use std::collections::BTreeMap;

use regex::Regex;

use super::{LogQuery, Op, Stage};

/// Whether `value` passes `op wanted`: label matchers are `anchored` (whole value, regexes
/// anchored), line filters are not (substring, regex search).
pub(super) fn matches(op: Op, value: &str, wanted: &str, anchored: bool) -> bool {
    match op {
        Op::Eq if anchored => value == wanted,
        Op::Eq => value.contains(wanted),
        Op::Ne if anchored => value != wanted,
        Op::Ne => !value.contains(wanted),
        Op::Re | Op::NotRe => {
            let pattern = if anchored {
                format!("^(?:{wanted})$")
            } else {
                wanted.to_owned()
            };
            let hit = Regex::new(&pattern).is_ok_and(|r| r.is_match(value));
            hit == (op == Op::Re)
        }
    }
}

/// The label name Loki's `json` parser makes of a JSON key.
pub fn sanitize(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                let name = if prefix.is_empty() {
                    sanitize(key)
                } else {
                    format!("{prefix}_{}", sanitize(key))
                };
                flatten(&name, child, out);
            }
        }
        serde_json::Value::Array(_) => {}
        serde_json::Value::String(s) => {
            out.insert(prefix.to_owned(), s.clone());
        }
        serde_json::Value::Null => {
            out.insert(prefix.to_owned(), String::new());
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

impl LogQuery {
    /// Whether the selector accepts a stream (an absent label reads as the empty value).
    pub fn selects(&self, stream: &BTreeMap<String, String>) -> bool {
        self.selector.iter().all(|m| {
            let value = stream.get(&m.label).map(String::as_str).unwrap_or_default();
            matches(m.op, value, &m.value, true)
        })
    }

    /// Whether the query keeps one line of a stream: [`Self::evaluate`]'s `is_some()`, without
    /// building the labels when the pipeline does not need them.
    pub fn keeps(&self, stream: &BTreeMap<String, String>, line: &str) -> bool {
        let filters_only = self
            .stages
            .iter()
            .all(|s| matches!(s, Stage::Line { .. } | Stage::Logfmt));
        if !filters_only {
            return self.evaluate(stream, line).is_some();
        }
        self.selects(stream)
            && self.stages.iter().all(|stage| match stage {
                Stage::Line { op, text } => matches(*op, line, text, false),
                _ => true,
            })
    }

    /// Applies the query to one line of a stream: `None` when it is filtered out, otherwise the
    /// labels the line ends up with (the stream's, plus what `| json` extracted).
    pub fn evaluate(
        &self,
        stream: &BTreeMap<String, String>,
        line: &str,
    ) -> Option<BTreeMap<String, String>> {
        if !self.selects(stream) {
            return None;
        }
        let mut labels = stream.clone();
        for stage in &self.stages {
            match stage {
                Stage::Line { op, text } => {
                    if !matches(*op, line, text, false) {
                        return None;
                    }
                }
                Stage::Json => {
                    if let Ok(value) = serde_json::from_str::<serde_json::Value>(line) {
                        let mut extracted = BTreeMap::new();
                        flatten("", &value, &mut extracted);
                        for (key, value) in extracted {
                            let key = if stream.contains_key(&key) {
                                format!("{key}_extracted")
                            } else {
                                key
                            };
                            labels.insert(key, value);
                        }
                    }
                }
                Stage::Logfmt => {}
                Stage::Label(m) => {
                    let value = labels.get(&m.label).map(String::as_str).unwrap_or_default();
                    if !matches(m.op, value, &m.value, true) {
                        return None;
                    }
                }
            }
        }
        Some(labels)
    }

    /// The literal texts a line must contain: `|=` filters, and each alternative of a `|~`
    /// filter made only of literal alternatives (`a|b c`).
    pub fn required_texts(&self) -> Vec<String> {
        let mut texts = Vec::new();
        for stage in &self.stages {
            match stage {
                Stage::Line { op: Op::Eq, text } => texts.push(text.clone()),
                Stage::Line { op: Op::Re, text } => {
                    let literal = |t: &str| !t.chars().any(|c| "\\^$.*+?()[]{}".contains(c));
                    if text.split('|').all(literal) {
                        texts.extend(text.split('|').map(str::to_owned));
                    }
                }
                _ => {}
            }
        }
        texts
    }

    /// Whether the pipeline parses JSON.
    pub fn parses_json(&self) -> bool {
        self.stages.contains(&Stage::Json)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse, parse_permissive};
    use super::*;

    fn stream(service: &str) -> BTreeMap<String, String> {
        [
            ("service".to_owned(), service.to_owned()),
            ("level".to_owned(), "INFO".to_owned()),
        ]
        .into()
    }

    #[test]
    fn the_evaluator_applies_selector_filters_and_json_like_loki() {
        let q = parse(r#"{service=~".+"} |= "4bf9" | json | saga_step="release""#).expect("parses");
        let q = q.log_query();
        let line =
            r#"{"message":"releasing the seat","saga.step":"release","trace_id":"4bf92f35"}"#;
        let labels = q.evaluate(&stream("reservation"), line).expect("kept");
        assert_eq!(labels["trace_id"], "4bf92f35");
        assert_eq!(labels["message"], "releasing the seat");
        assert!(
            q.evaluate(
                &stream("reservation"),
                r#"{"saga.step":"refund","trace_id":"4bf9"}"#
            )
            .is_none()
        );
        assert!(
            q.evaluate(&BTreeMap::new(), line).is_none(),
            "no service label: the selector fails"
        );
    }

    #[test]
    fn literal_alternatives_are_required_texts_and_real_regexes_are_not() {
        let q = parse(r#"{service="r"} |~ "refund done|releasing the seat""#).expect("parses");
        assert_eq!(
            q.log_query().required_texts(),
            ["refund done", "releasing the seat"]
        );
        let q = parse(r#"{service="r"} |~ "refund.*done""#).expect("parses");
        assert!(q.log_query().required_texts().is_empty());
    }

    #[test]
    fn keeps_agrees_with_evaluate() {
        let lines = [
            (
                stream("reservation"),
                r#"{"saga.step":"release","x":"4bf9"}"#,
            ),
            (stream("reservation"), "4bf9 skip"),
            (stream("payment"), "4bf9"),
            (BTreeMap::new(), "4bf9"),
        ];
        for query in [
            r#"{service="reservation"} |= "4bf9" != "skip""#,
            r#"{service!=""} |~ "4b.9""#,
            r#"{service=~"res.*"} | json | saga_step="release""#,
        ] {
            let q = parse_permissive(query).expect("parses");
            for (labels, line) in &lines {
                assert_eq!(
                    q.log_query().keeps(labels, line),
                    q.log_query().evaluate(labels, line).is_some(),
                    "{query} on {line}"
                );
            }
        }
    }
}
