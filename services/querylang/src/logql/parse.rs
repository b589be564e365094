//! LogQL's tokenizer and recursive-descent parser, producing the AST of [`super`].

use std::{collections::BTreeMap, sync::LazyLock};

use regex::Regex;

use super::{LogQuery, Matcher, Op, Query, Stage, eval::matches};
use crate::lex::{Cursor, Token, delimited, scan_while, symbol_at};

const AGGREGATIONS: [&str; 7] = ["sum", "count", "avg", "min", "max", "topk", "bottomk"];
const RANGE_FUNCTIONS: [&str; 5] = [
    "count_over_time",
    "rate",
    "bytes_over_time",
    "bytes_rate",
    "absent_over_time",
];

/// `5m`, `30s`, `1h30m` (Grafana's interval variables are accepted beside it).
static DURATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\d+(ms|s|m|h|d|w|y))+$").expect("a valid pattern"));

/// Parses a LogQL query of the supported subset, as Loki would: a selector needs at least one
/// matcher that cannot match the empty value.
pub fn parse(text: &str) -> Result<Query, String> {
    parse_with(text, false)
}

/// As [`parse`], but a selector may match every stream (`{}`, `{service!=""}`): the capture
/// answers such queries, which Loki refuses.
pub fn parse_permissive(text: &str) -> Result<Query, String> {
    parse_with(text, true)
}

fn parse_with(text: &str, permissive: bool) -> Result<Query, String> {
    let mut p = Parser {
        tokens: Cursor::new(tokenize(text)?),
        permissive,
    };
    let query = p.query()?;
    if let Some(token) = p.tokens.leftover() {
        return Err(format!("unexpected {token:?} after the query"));
    }
    Ok(query)
}

/// Parses Loki's label-set text `{a="b", c="d"}` (a push's stream labels).
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut tokens = Cursor::new(tokenize(text)?);
    tokens.expect("{")?;
    let mut labels = BTreeMap::new();
    if !tokens.at_sym("}") {
        loop {
            let name = label_name(&mut tokens)?;
            tokens.expect("=")?;
            labels.insert(name, tokens.string()?);
            if !tokens.at_sym(",") {
                break;
            }
            tokens.next();
        }
    }
    tokens.expect("}")?;
    if let Some(token) = tokens.leftover() {
        return Err(format!("unexpected {token:?} after the label set {text:?}"));
    }
    Ok(labels)
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
            let (raw, after) = delimited(&chars, i, '`')
                .ok_or_else(|| format!("unclosed raw string in {text:?}"))?;
            tokens.push(Token::Str(raw));
            i = after;
        } else if c == '[' {
            let (range, after) =
                delimited(&chars, i, ']').ok_or_else(|| format!("unclosed range in {text:?}"))?;
            tokens.push(Token::Range(range.trim().to_owned()));
            i = after;
        } else if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            let end = scan_while(&chars, i, |ch| {
                ch.is_ascii_alphanumeric() || ch == '_' || ch == '.'
            });
            tokens.push(Token::Word(chars[i..end].iter().collect()));
            i = end;
        } else if let Some(sym) = symbol_at(&chars, i, &SYMBOLS) {
            tokens.push(Token::Sym(sym));
            i += sym.len();
        } else {
            return Err(format!("unexpected character {c:?} in {text:?}"));
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Cursor,
    /// Whether a selector may match every stream (see [`parse_permissive`]).
    permissive: bool,
}

impl Parser {
    fn query(&mut self) -> Result<Query, String> {
        match self.tokens.peek() {
            Some(Token::Sym("{")) => Ok(Query::Log(self.log_query()?)),
            Some(Token::Word(w)) if AGGREGATIONS.contains(&w.as_str()) => {
                let op = self.tokens.word()?;
                let mut labels = self.grouping()?;
                self.tokens.expect("(")?;
                let inner = self.range_aggregation()?;
                self.tokens.expect(")")?;
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
        if !self.tokens.at_word("by") && !self.tokens.at_word("without") {
            return Ok(None);
        }
        self.tokens.next();
        self.tokens.expect("(")?;
        let mut labels = vec![self.tokens.word()?];
        while self.tokens.at_sym(",") {
            self.tokens.next();
            labels.push(self.tokens.word()?);
        }
        self.tokens.expect(")")?;
        Ok(Some(labels))
    }

    fn range_aggregation(&mut self) -> Result<Query, String> {
        let function = self.tokens.word()?;
        if !RANGE_FUNCTIONS.contains(&function.as_str()) {
            return Err(format!("unknown range function {function:?}"));
        }
        self.tokens.expect("(")?;
        let inner = self.log_query()?;
        let range = match self.tokens.next() {
            Some(Token::Range(r)) if is_duration(&r) => r,
            other => {
                return Err(format!(
                    "{function} needs a range like [5m] or [$__interval], found {other:?}"
                ));
            }
        };
        self.tokens.expect(")")?;
        Ok(Query::Metric {
            aggregation: None,
            function,
            range,
            inner,
        })
    }

    fn log_query(&mut self) -> Result<LogQuery, String> {
        self.tokens.expect("{")?;
        let mut selector = Vec::new();
        if !(self.permissive && self.tokens.at_sym("}")) {
            selector.push(self.matcher()?);
            while self.tokens.at_sym(",") {
                self.tokens.next();
                selector.push(self.matcher()?);
            }
        }
        self.tokens.expect("}")?;
        // Loki refuses a selector whose every matcher also matches an absent label.
        let narrows = |m: &Matcher| match m.op {
            Op::Eq => !m.value.is_empty(),
            Op::Re => !matches(Op::Re, "", &m.value, true),
            Op::Ne | Op::NotRe => false,
        };
        if !self.permissive && !selector.iter().any(narrows) {
            return Err(
                "a selector needs at least one matcher that cannot match the empty value".into(),
            );
        }
        let mut stages = Vec::new();
        loop {
            let op = match self.tokens.peek() {
                Some(Token::Sym("|=")) => Op::Eq,
                Some(Token::Sym("!=")) => Op::Ne,
                Some(Token::Sym("|~")) => Op::Re,
                Some(Token::Sym("!~")) => Op::NotRe,
                Some(Token::Sym("|")) => {
                    self.tokens.next();
                    let name = self.tokens.word()?;
                    stages.push(match name.as_str() {
                        "json" => Stage::Json,
                        "logfmt" => Stage::Logfmt,
                        _ => {
                            let op = self.op()?;
                            let value = self.tokens.string()?;
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
            self.tokens.next();
            let text = self.tokens.string()?;
            check_regex(op, &text)?;
            stages.push(Stage::Line { op, text });
        }
        Ok(LogQuery { selector, stages })
    }

    fn op(&mut self) -> Result<Op, String> {
        match self.tokens.next() {
            Some(Token::Sym("=")) => Ok(Op::Eq),
            Some(Token::Sym("!=")) => Ok(Op::Ne),
            Some(Token::Sym("=~")) => Ok(Op::Re),
            Some(Token::Sym("!~")) => Ok(Op::NotRe),
            other => Err(format!("expected a matcher operator, found {other:?}")),
        }
    }

    fn matcher(&mut self) -> Result<Matcher, String> {
        let label = label_name(&mut self.tokens)?;
        let op = self.op()?;
        let value = self.tokens.string()?;
        check_regex(op, &value)?;
        Ok(Matcher { label, op, value })
    }
}

/// A stream label's name: a letter or `_`, then letters, digits and `_` (no dots).
fn label_name(tokens: &mut Cursor) -> Result<String, String> {
    let label = tokens.word()?;
    if !label
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        || label.contains('.')
    {
        return Err(format!("{label:?} is not a label name"));
    }
    Ok(label)
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
        || DURATION.is_match(text)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_selector_matching_every_stream_is_only_permitted_when_asked() {
        for every in ["{}", r#"{service!=""} |= "4bf9""#, r#"{service=~".*"}"#] {
            assert!(parse(every).is_err(), "{every}: Loki refuses it");
            assert!(
                parse_permissive(every).is_ok(),
                "{every}: the capture answers it"
            );
        }
        assert!(parse_permissive(r#"{service="a"} extra"#).is_err());
    }

    #[test]
    fn a_label_set_parses_to_its_labels() {
        let labels =
            parse_labels(r#"{level="info",service="gateway", note="a \"b\""}"#).expect("parses");
        assert_eq!(labels["service"], "gateway");
        assert_eq!(labels["note"], r#"a "b""#);
        assert!(parse_labels("{}").expect("parses").is_empty());
        for bad in [
            r#"{a!="b"}"#,
            r#"{a="b""#,
            r#"{a="b"} |= "x""#,
            r#"{a.b="c"}"#,
        ] {
            assert!(parse_labels(bad).is_err(), "{bad} should be refused");
        }
    }
}
