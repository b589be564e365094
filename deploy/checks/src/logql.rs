//! A parser for the LogQL the provisioning uses, and an evaluator of its log pipelines.
//!
//! Accepted: a stream selector (`=`, `!=`, `=~`, `!~`), line filters (`|=`, `!=`, `|~`,
//! `!~`), `| json`, `| logfmt`, label filters (`| name op "value"`), a range function over a
//! log query (`count_over_time(… [5m])`, `rate`, …) and one vector aggregation around it
//! (`sum by (a, b) (…)`). Anything else is an error: a query that uses more than this subset
//! has to extend it here, with a test, rather than slip through unchecked.
//!
//! The evaluator applies a log query to a line the way Loki would (regex matchers on labels
//! are anchored, line regexes are not; `| json` flattens nested keys with `_` and turns
//! characters a label cannot hold into `_`), so the native test can run the Grafana queries
//! on the lines the services really wrote.

use std::collections::BTreeMap;

use regex::Regex;

/// `=`, `!=`, `=~`, `!~`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Re,
    NotRe,
}

/// `label op "value"`, in a selector or a label filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    pub label: String,
    pub op: Op,
    pub value: String,
}

/// One stage of a log pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// `|= "x"` (Eq), `!= "x"` (Ne), `|~ "re"` (Re), `!~ "re"` (NotRe).
    Line {
        op: Op,
        text: String,
    },
    Json,
    Logfmt,
    Label(Matcher),
}

/// A selector and its pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    pub selector: Vec<Matcher>,
    pub stages: Vec<Stage>,
}

/// A whole query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Log(LogQuery),
    Metric {
        /// `sum`, `count`, … with its `by`/`without` labels, if the range function is wrapped.
        aggregation: Option<(String, Vec<String>)>,
        function: String,
        range: String,
        inner: LogQuery,
    },
}

impl Query {
    /// The log query inside, metric or not.
    pub fn log_query(&self) -> &LogQuery {
        match self {
            Query::Log(q) => q,
            Query::Metric { inner, .. } => inner,
        }
    }

    /// Labels the result is grouped by.
    pub fn grouping(&self) -> &[String] {
        match self {
            Query::Metric {
                aggregation: Some((_, labels)),
                ..
            } => labels,
            _ => &[],
        }
    }
}

const AGGREGATIONS: [&str; 7] = ["sum", "count", "avg", "min", "max", "topk", "bottomk"];
const RANGE_FUNCTIONS: [&str; 5] = [
    "count_over_time",
    "rate",
    "bytes_over_time",
    "bytes_rate",
    "absent_over_time",
];

/// Parses a LogQL query of the supported subset.
pub fn parse(text: &str) -> Result<Query, String> {
    let mut p = Parser {
        tokens: tokenize(text)?,
        at: 0,
    };
    let query = p.query()?;
    if p.at != p.tokens.len() {
        return Err(format!("unexpected {:?} after the query", p.tokens[p.at]));
    }
    Ok(query)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Sym(&'static str),
    Range(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    const SYMBOLS: [&str; 13] = [
        "|=", "|~", "!=", "!~", "=~", "=", "|", "{", "}", "(", ")", ",", "!",
    ];
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' {
            let mut value = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("unclosed string in {text:?}")),
                    Some('"') => break,
                    Some('\\') => {
                        match chars.get(i + 1) {
                            Some('n') => value.push('\n'),
                            Some('t') => value.push('\t'),
                            Some(&other) => value.push(other),
                            None => return Err(format!("dangling escape in {text:?}")),
                        }
                        i += 2;
                        continue;
                    }
                    Some(&ch) => value.push(ch),
                }
                i += 1;
            }
            tokens.push(Token::Str(value));
            i += 1;
        } else if c == '`' {
            let end = chars[i + 1..]
                .iter()
                .position(|&ch| ch == '`')
                .ok_or_else(|| format!("unclosed raw string in {text:?}"))?;
            tokens.push(Token::Str(chars[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if c == '[' {
            let end = chars[i + 1..]
                .iter()
                .position(|&ch| ch == ']')
                .ok_or_else(|| format!("unclosed range in {text:?}"))?;
            tokens.push(Token::Range(
                chars[i + 1..i + 1 + end]
                    .iter()
                    .collect::<String>()
                    .trim()
                    .to_owned(),
            ));
            i += end + 2;
        } else if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        } else if let Some(sym) = SYMBOLS.iter().find(|s| {
            let s: Vec<char> = s.chars().collect();
            chars[i..].starts_with(&s)
        }) {
            tokens.push(Token::Sym(sym));
            i += sym.len();
        } else {
            return Err(format!("unexpected character {c:?} in {text:?}"));
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn expect(&mut self, sym: &'static str) -> Result<(), String> {
        match self.next() {
            Some(Token::Sym(s)) if s == sym => Ok(()),
            other => Err(format!("expected {sym:?}, found {other:?}")),
        }
    }

    fn word(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(w)) => Ok(w),
            other => Err(format!("expected a name, found {other:?}")),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Str(s)) => Ok(s),
            other => Err(format!("expected a string, found {other:?}")),
        }
    }

    fn query(&mut self) -> Result<Query, String> {
        match self.peek() {
            Some(Token::Sym("{")) => Ok(Query::Log(self.log_query()?)),
            Some(Token::Word(w)) if AGGREGATIONS.contains(&w.as_str()) => {
                let op = self.word()?;
                let mut labels = self.grouping()?;
                self.expect("(")?;
                let inner = self.range_aggregation()?;
                self.expect(")")?;
                if labels.is_none() {
                    labels = self.grouping()?;
                }
                let Query::Metric {
                    function,
                    range,
                    inner,
                    ..
                } = inner
                else {
                    return Err("an aggregation needs a range function inside".into());
                };
                Ok(Query::Metric {
                    aggregation: Some((op, labels.unwrap_or_default())),
                    function,
                    range,
                    inner,
                })
            }
            Some(Token::Word(_)) => self.range_aggregation(),
            other => Err(format!(
                "a query starts with a selector or a function, not {other:?}"
            )),
        }
    }

    fn grouping(&mut self) -> Result<Option<Vec<String>>, String> {
        match self.peek() {
            Some(Token::Word(w)) if w == "by" || w == "without" => {
                self.next();
                self.expect("(")?;
                let mut labels = vec![self.word()?];
                while self.peek() == Some(&Token::Sym(",")) {
                    self.next();
                    labels.push(self.word()?);
                }
                self.expect(")")?;
                Ok(Some(labels))
            }
            _ => Ok(None),
        }
    }

    fn range_aggregation(&mut self) -> Result<Query, String> {
        let function = self.word()?;
        if !RANGE_FUNCTIONS.contains(&function.as_str()) {
            return Err(format!("unknown range function {function:?}"));
        }
        self.expect("(")?;
        let inner = self.log_query()?;
        let range = match self.next() {
            Some(Token::Range(r)) if is_duration(&r) => r,
            other => {
                return Err(format!(
                    "{function} needs a range like [5m] or [$__interval], found {other:?}"
                ));
            }
        };
        self.expect(")")?;
        Ok(Query::Metric {
            aggregation: None,
            function,
            range,
            inner,
        })
    }

    fn log_query(&mut self) -> Result<LogQuery, String> {
        self.expect("{")?;
        let mut selector = vec![self.matcher()?];
        while self.peek() == Some(&Token::Sym(",")) {
            self.next();
            selector.push(self.matcher()?);
        }
        self.expect("}")?;
        // Loki refuses a selector whose every matcher also matches an absent label.
        let narrows = |m: &Matcher| match m.op {
            Op::Eq => !m.value.is_empty(),
            Op::Re => !matches(Op::Re, "", &m.value, true),
            Op::Ne | Op::NotRe => false,
        };
        if !selector.iter().any(narrows) {
            return Err(
                "a selector needs at least one matcher that cannot match the empty value".into(),
            );
        }
        let mut stages = Vec::new();
        loop {
            let op = match self.peek() {
                Some(Token::Sym("|=")) => Op::Eq,
                Some(Token::Sym("!=")) => Op::Ne,
                Some(Token::Sym("|~")) => Op::Re,
                Some(Token::Sym("!~")) => Op::NotRe,
                Some(Token::Sym("|")) => {
                    self.next();
                    let name = self.word()?;
                    stages.push(match name.as_str() {
                        "json" => Stage::Json,
                        "logfmt" => Stage::Logfmt,
                        _ => {
                            let op = self.op()?;
                            let value = self.string()?;
                            check_regex(op, &value)?;
                            Stage::Label(Matcher {
                                label: name,
                                op,
                                value,
                            })
                        }
                    });
                    continue;
                }
                _ => break,
            };
            self.next();
            let text = self.string()?;
            check_regex(op, &text)?;
            stages.push(Stage::Line { op, text });
        }
        Ok(LogQuery { selector, stages })
    }

    fn op(&mut self) -> Result<Op, String> {
        match self.next() {
            Some(Token::Sym("=")) => Ok(Op::Eq),
            Some(Token::Sym("!=")) => Ok(Op::Ne),
            Some(Token::Sym("=~")) => Ok(Op::Re),
            Some(Token::Sym("!~")) => Ok(Op::NotRe),
            other => Err(format!("expected a matcher operator, found {other:?}")),
        }
    }

    fn matcher(&mut self) -> Result<Matcher, String> {
        let label = self.word()?;
        if !label
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            || label.contains('.')
        {
            return Err(format!("{label:?} is not a label name"));
        }
        let op = self.op()?;
        let value = self.string()?;
        check_regex(op, &value)?;
        Ok(Matcher { label, op, value })
    }
}

fn check_regex(op: Op, value: &str) -> Result<(), String> {
    if matches!(op, Op::Re | Op::NotRe) {
        Regex::new(value).map_err(|e| format!("bad regex {value:?}: {e}"))?;
    }
    Ok(())
}

/// `5m`, `30s`, `1h30m`, or one of Grafana's interval variables.
fn is_duration(text: &str) -> bool {
    ["$__interval", "$__auto", "$__range", "$__rate_interval"].contains(&text)
        || Regex::new(r"^(\d+(ms|s|m|h|d|w|y))+$").is_ok_and(|r| r.is_match(text))
}

fn matches(op: Op, value: &str, wanted: &str, anchored: bool) -> bool {
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
    /// Applies the query to one line of a stream: `None` when it is filtered out, otherwise the
    /// labels the line ends up with (the stream's, plus what `| json` extracted).
    pub fn evaluate(
        &self,
        stream: &BTreeMap<String, String>,
        line: &str,
    ) -> Option<BTreeMap<String, String>> {
        for m in &self.selector {
            let value = stream.get(&m.label).map(String::as_str).unwrap_or_default();
            if !matches(m.op, value, &m.value, true) {
                return None;
            }
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
    use super::*;

    fn stream(service: &str) -> BTreeMap<String, String> {
        [
            ("service".to_owned(), service.to_owned()),
            ("level".to_owned(), "INFO".to_owned()),
        ]
        .into()
    }

    #[test]
    fn a_metric_query_with_grouping_parses() {
        let q = parse(r#"sum by (saga_outcome) (count_over_time({service="reservation"} |= "saga finished" | json [$__interval]))"#)
            .expect("parses");
        assert_eq!(q.grouping(), ["saga_outcome"]);
        assert_eq!(q.log_query().required_texts(), ["saga finished"]);
    }

    #[test]
    fn malformed_queries_are_refused() {
        for bad in [
            r#"{service="a""#,
            r#"{service="a"} |= "x"#,
            r#"count_over_time({service="a"})"#,
            r#"count_over_time({service="a"} [5 minutes])"#,
            r#"sum by (a) (histogram_quantile({service="a"} [1m]))"#,
            r#"{service=~".*"}"#,
            r#"{service.name="a"}"#,
            r#"{service="a"} |~ "(unclosed""#,
            r#"{service="a"} | trace_id ~ "x""#,
            r#"{service="a"} extra"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
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
}
