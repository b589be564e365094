//! TraceQL's tokenizer and parser, producing the AST of [`super`].

use std::sync::LazyLock;

use regex::Regex;

use super::{Attribute, Comparison, Condition, Query, Spanset, Value};
use crate::lex::{Cursor, Token, delimited, scan_while, symbol_at};

/// A number or a duration (`10`, `.5`, `250ms`).
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\d+(\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h)?$").expect("a valid pattern")
});

const INTRINSICS: [&str; 14] = [
    "name",
    "status",
    "statusMessage",
    "kind",
    "duration",
    "rootName",
    "rootServiceName",
    "traceDuration",
    "span:name",
    "span:status",
    "span:kind",
    "span:duration",
    "trace:rootService",
    "trace:duration",
];

const KEYWORDS: [&str; 10] = [
    "true", "false", "ok", "error", "unset", "server", "client", "producer", "consumer", "internal",
];

/// Metrics functions and whether they take an attribute (and quantiles).
const METRICS: [(&str, bool); 8] = [
    ("rate", false),
    ("count_over_time", false),
    ("quantile_over_time", true),
    ("histogram_over_time", true),
    ("avg_over_time", true),
    ("min_over_time", true),
    ("max_over_time", true),
    ("sum_over_time", true),
];

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    const SYMBOLS: [&str; 15] = [
        "&&", "||", "!=", "=~", "!~", ">=", "<=", "=", ">", "<", "{", "}", "(", ")", ",",
    ];
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' {
            let (value, after) =
                delimited(&chars, i, '"').ok_or_else(|| format!("unclosed string in {text:?}"))?;
            tokens.push(Token::Str(value));
            i = after;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let end = scan_while(&chars, i, |ch| {
                ch.is_ascii_alphanumeric() || ch == '.' || ch == 'µ'
            });
            tokens.push(Token::Num(chars[i..end].iter().collect()));
            i = end;
        } else if c.is_ascii_alphabetic() || c == '_' || c == '.' {
            let end = scan_while(&chars, i, |ch| {
                ch.is_ascii_alphanumeric() || "_.:-".contains(ch)
            });
            tokens.push(Token::Word(chars[i..end].iter().collect()));
            i = end;
        } else if c == '|' && chars.get(i + 1) != Some(&'|') {
            tokens.push(Token::Sym("|"));
            i += 1;
        } else if let Some(sym) = symbol_at(&chars, i, &SYMBOLS) {
            tokens.push(Token::Sym(sym));
            i += sym.len();
        } else {
            return Err(format!("unexpected character {c:?} in {text:?}"));
        }
    }
    Ok(tokens)
}

/// The attribute `word` names, if it names one.
fn attribute(word: &str) -> Option<Attribute> {
    if INTRINSICS.contains(&word) {
        return Some(Attribute::Intrinsic(word.to_owned()));
    }
    let scoped = |scope: &str| {
        word.strip_prefix(scope)
            .filter(|rest| !rest.is_empty() && !rest.ends_with('.'))
            .map(str::to_owned)
    };
    scoped("span.")
        .map(Attribute::Span)
        .or_else(|| scoped("resource.").map(Attribute::Resource))
        .or_else(|| scoped(".").map(Attribute::Unscoped))
}

fn next_attribute(tokens: &mut Cursor) -> Result<Attribute, Option<Token>> {
    match tokens.next() {
        Some(Token::Word(w)) => attribute(&w).ok_or(Some(Token::Word(w))),
        other => Err(other),
    }
}

/// Parses a TraceQL query of the supported subset.
pub fn parse(text: &str) -> Result<Query, String> {
    let mut tokens = Cursor::new(tokenize(text)?);
    if tokens.next() != Some(Token::Sym("{")) {
        return Err(format!(
            "a TraceQL query starts with a spanset filter {{ … }}: {text:?}"
        ));
    }
    let spanset = spanset(&mut tokens, text)?;
    let mut query = Query {
        spanset,
        metrics: None,
        metrics_attribute: None,
        quantiles: Vec::new(),
        by: Vec::new(),
    };
    if tokens.at_sym("|") {
        tokens.next();
        metrics(&mut tokens, &mut query)?;
    }
    if let Some(token) = tokens.leftover() {
        return Err(format!("unexpected {token:?} after the query {text:?}"));
    }
    Ok(query)
}

/// The spanset filter after its `{`, through its `}`.
fn spanset(tokens: &mut Cursor, text: &str) -> Result<Spanset, String> {
    let mut alternatives = vec![Vec::new()];
    if tokens.at_sym("}") {
        tokens.next();
        return Ok(Spanset { alternatives });
    }
    loop {
        let attribute = next_attribute(tokens)
            .map_err(|other| format!("expected an attribute, found {other:?} in {text:?}"))?;
        let op = match tokens.next() {
            Some(Token::Sym("=")) => Comparison::Eq,
            Some(Token::Sym("!=")) => Comparison::Ne,
            Some(Token::Sym(">")) => Comparison::Gt,
            Some(Token::Sym(">=")) => Comparison::Ge,
            Some(Token::Sym("<")) => Comparison::Lt,
            Some(Token::Sym("<=")) => Comparison::Le,
            Some(Token::Sym("=~")) => Comparison::Re,
            Some(Token::Sym("!~")) => Comparison::NotRe,
            other => {
                return Err(format!(
                    "expected a comparison after {attribute}, found {other:?}"
                ));
            }
        };
        let value = match tokens.next() {
            Some(Token::Str(s)) if matches!(op, Comparison::Re | Comparison::NotRe) => {
                Regex::new(&s).map_err(|e| format!("bad regex {s:?}: {e}"))?;
                Value::Str(s)
            }
            Some(Token::Str(s)) => Value::Str(s),
            Some(Token::Num(n)) if NUMBER.is_match(&n) => Value::Num(n),
            Some(Token::Word(w)) if KEYWORDS.contains(&w.as_str()) => Value::Keyword(w),
            other => {
                return Err(format!(
                    "expected a value after {attribute} {op}, found {other:?}"
                ));
            }
        };
        let condition = Condition {
            attribute,
            op,
            value,
        };
        if let Some(current) = alternatives.last_mut() {
            current.push(condition);
        }
        match tokens.next() {
            Some(Token::Sym("}")) => return Ok(Spanset { alternatives }),
            Some(Token::Sym("&&")) => {}
            Some(Token::Sym("||")) => alternatives.push(Vec::new()),
            other => {
                return Err(format!(
                    "expected && or || or }}, found {other:?} in {text:?}"
                ));
            }
        }
    }
}

/// The metrics function after the `|`, with its `by (…)`.
fn metrics(tokens: &mut Cursor, query: &mut Query) -> Result<(), String> {
    let function = match tokens.next() {
        Some(Token::Word(w)) => w,
        other => return Err(format!("expected a metrics function, found {other:?}")),
    };
    let Some((_, takes_attribute)) = METRICS.iter().find(|(f, _)| *f == function) else {
        return Err(format!("unknown metrics function {function:?}"));
    };
    if tokens.next() != Some(Token::Sym("(")) {
        return Err(format!("{function} needs parentheses"));
    }
    if *takes_attribute {
        query.metrics_attribute = Some(
            next_attribute(tokens)
                .map_err(|other| format!("{function} needs an attribute, found {other:?}"))?,
        );
        if function == "quantile_over_time" {
            while tokens.at_sym(",") {
                tokens.next();
                match tokens.next() {
                    Some(Token::Num(q))
                        if q.parse::<f64>().is_ok_and(|q| (0.0..=1.0).contains(&q)) =>
                    {
                        query.quantiles.push(q)
                    }
                    other => {
                        return Err(format!("a quantile is a number in [0, 1], not {other:?}"));
                    }
                }
            }
            if query.quantiles.is_empty() {
                return Err("quantile_over_time needs at least one quantile".into());
            }
        }
    }
    if tokens.next() != Some(Token::Sym(")")) {
        return Err(format!("{function}: expected )"));
    }
    if tokens.at_word("by") {
        tokens.next();
        if tokens.next() != Some(Token::Sym("(")) {
            return Err("by needs parentheses".into());
        }
        loop {
            query.by.push(
                next_attribute(tokens)
                    .map_err(|other| format!("by: expected an attribute, found {other:?}"))?,
            );
            match tokens.next() {
                Some(Token::Sym(")")) => break,
                Some(Token::Sym(",")) => {}
                other => return Err(format!("by: expected , or ), found {other:?}")),
            }
        }
    }
    query.metrics = Some(function);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queries_the_dashboards_use_parse() {
        let q = parse(r#"{ span.saga.outcome = "CANCELLED" }"#).expect("parses");
        assert_eq!(q.span_attributes(), ["saga.outcome"]);
        assert_eq!(q.metrics, None);
        let q = parse("{ span.outbox.lag_ms >= 0 } | quantile_over_time(span.outbox.lag_ms, .5, .99) by (resource.service.name)")
            .expect("parses");
        assert_eq!(q.metrics.as_deref(), Some("quantile_over_time"));
        assert_eq!(q.span_attributes(), ["outbox.lag_ms", "outbox.lag_ms"]);
        assert!(
            parse(
                "{ name =~ \"saga compensate.*\" && duration > 10ms } | rate() by (span.saga.step)"
            )
            .is_ok()
        );
    }

    #[test]
    fn malformed_queries_are_refused() {
        for bad in [
            "span.saga.outcome = \"x\"",
            "{ span.saga.outcome = \"x\" ",
            "{ saga.outcome = \"x\" }",
            "{ span.a == \"x\" }",
            "{ span.a = }",
            "{ span.a = \"x\" } | p99()",
            "{ } | quantile_over_time(span.a)",
            "{ } | quantile_over_time(span.a, 1.5)",
            "{ } | rate() by (x)",
            "{ span.a =~ \"(\" }",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn and_binds_tighter_than_or_and_an_empty_spanset_has_one_empty_alternative() {
        let q = parse(r#"{ .a = 1 && resource.b != "x" || name = "n" }"#).expect("parses");
        let shape: Vec<Vec<String>> = q
            .spanset
            .alternatives
            .iter()
            .map(|all| all.iter().map(|c| c.attribute.to_string()).collect())
            .collect();
        assert_eq!(shape, [vec![".a", "resource.b"], vec!["name"]]);
        assert_eq!(q.spanset.alternatives[0][0].value, Value::Num("1".into()));
        assert_eq!(parse("{ }").expect("parses").spanset.alternatives, [vec![]]);
    }

    #[test]
    fn a_metrics_query_keeps_its_argument_quantiles_and_grouping() {
        let q = parse("{ } | quantile_over_time(span.x, .5, .99) by (resource.service.name)")
            .expect("parses");
        assert_eq!(q.metrics_attribute, Some(Attribute::Span("x".into())));
        assert_eq!(q.quantiles, [".5", ".99"]);
        assert_eq!(q.by, [Attribute::Resource("service.name".into())]);
    }
}
