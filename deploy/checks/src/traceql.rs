//! A parser for the TraceQL the provisioning uses: one spanset filter (`{ cond && cond }`,
//! `||` too) and optionally one metrics function (`| rate()`, `| count_over_time()`,
//! `| quantile_over_time(attr, q…)`, … with `by (attr, …)`). Anything else is an error, as in
//! [`crate::logql`]. The attributes a query names are returned so they can be checked against
//! the attributes the services really set.

use std::sync::LazyLock;

use regex::Regex;

/// A number or a duration (`10`, `.5`, `250ms`).
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\d+(\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h)?$").expect("a valid pattern")
});

/// What a parsed query refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Every attribute named, as written (`span.saga.outcome`, `resource.service.name`, `name`).
    pub attributes: Vec<String>,
    /// The metrics function, if the query is a metrics query.
    pub metrics: Option<String>,
}

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

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Num(String),
    Sym(&'static str),
}

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
            let end = chars[i + 1..]
                .iter()
                .position(|&ch| ch == '"')
                .ok_or_else(|| format!("unclosed string in {text:?}"))?;
            tokens.push(Token::Str(chars[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == 'µ')
            {
                i += 1;
            }
            tokens.push(Token::Num(chars[start..i].iter().collect()));
        } else if c.is_ascii_alphabetic() || c == '_' || c == '.' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_.:-".contains(chars[i]))
            {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        } else if c == '|' && chars.get(i + 1) != Some(&'|') {
            tokens.push(Token::Sym("|"));
            i += 1;
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

fn is_attribute(word: &str) -> bool {
    let scoped = ["span.", "resource.", "."].iter().any(|scope| {
        word.strip_prefix(scope)
            .is_some_and(|rest| !rest.is_empty() && !rest.ends_with('.'))
    });
    scoped || INTRINSICS.contains(&word)
}

/// Parses a TraceQL query of the supported subset.
pub fn parse(text: &str) -> Result<Query, String> {
    let tokens = tokenize(text)?;
    let mut at = 0;
    let mut attributes = Vec::new();
    let next = |at: &mut usize| {
        let token = tokens.get(*at).cloned();
        *at += 1;
        token
    };
    if next(&mut at) != Some(Token::Sym("{")) {
        return Err(format!(
            "a TraceQL query starts with a spanset filter {{ … }}: {text:?}"
        ));
    }
    if tokens.get(at) != Some(&Token::Sym("}")) {
        loop {
            let attribute = match next(&mut at) {
                Some(Token::Word(w)) if is_attribute(&w) => w,
                other => {
                    return Err(format!(
                        "expected an attribute, found {other:?} in {text:?}"
                    ));
                }
            };
            let op = match next(&mut at) {
                Some(Token::Sym(s))
                    if ["=", "!=", ">", ">=", "<", "<=", "=~", "!~"].contains(&s) =>
                {
                    s
                }
                other => {
                    return Err(format!(
                        "expected a comparison after {attribute}, found {other:?}"
                    ));
                }
            };
            match next(&mut at) {
                Some(Token::Str(s)) if op.contains('~') => {
                    Regex::new(&s).map_err(|e| format!("bad regex {s:?}: {e}"))?;
                }
                Some(Token::Str(_)) => {}
                Some(Token::Num(n)) if NUMBER.is_match(&n) => {}
                Some(Token::Word(w)) if KEYWORDS.contains(&w.as_str()) => {}
                other => {
                    return Err(format!(
                        "expected a value after {attribute} {op}, found {other:?}"
                    ));
                }
            }
            attributes.push(attribute);
            match next(&mut at) {
                Some(Token::Sym("}")) => break,
                Some(Token::Sym("&&" | "||")) => {}
                other => {
                    return Err(format!(
                        "expected && or || or }}, found {other:?} in {text:?}"
                    ));
                }
            }
        }
    } else {
        at += 1;
    }
    let mut metrics = None;
    if tokens.get(at) == Some(&Token::Sym("|")) {
        at += 1;
        let function = match next(&mut at) {
            Some(Token::Word(w)) => w,
            other => return Err(format!("expected a metrics function, found {other:?}")),
        };
        let Some((_, takes_attribute)) = METRICS.iter().find(|(f, _)| *f == function) else {
            return Err(format!("unknown metrics function {function:?}"));
        };
        if next(&mut at) != Some(Token::Sym("(")) {
            return Err(format!("{function} needs parentheses"));
        }
        if *takes_attribute {
            match next(&mut at) {
                Some(Token::Word(w)) if is_attribute(&w) => attributes.push(w),
                other => return Err(format!("{function} needs an attribute, found {other:?}")),
            }
            if function == "quantile_over_time" {
                let mut quantiles = 0;
                while tokens.get(at) == Some(&Token::Sym(",")) {
                    at += 1;
                    match next(&mut at) {
                        Some(Token::Num(q))
                            if q.parse::<f64>().is_ok_and(|q| (0.0..=1.0).contains(&q)) =>
                        {
                            quantiles += 1
                        }
                        other => {
                            return Err(format!("a quantile is a number in [0, 1], not {other:?}"));
                        }
                    }
                }
                if quantiles == 0 {
                    return Err("quantile_over_time needs at least one quantile".into());
                }
            }
        }
        if next(&mut at) != Some(Token::Sym(")")) {
            return Err(format!("{function}: expected )"));
        }
        if tokens.get(at) == Some(&Token::Word("by".into())) {
            at += 1;
            if next(&mut at) != Some(Token::Sym("(")) {
                return Err("by needs parentheses".into());
            }
            loop {
                match next(&mut at) {
                    Some(Token::Word(w)) if is_attribute(&w) => attributes.push(w),
                    other => return Err(format!("by: expected an attribute, found {other:?}")),
                }
                match next(&mut at) {
                    Some(Token::Sym(")")) => break,
                    Some(Token::Sym(",")) => {}
                    other => return Err(format!("by: expected , or ), found {other:?}")),
                }
            }
        }
        metrics = Some(function);
    }
    if at != tokens.len() {
        return Err(format!(
            "unexpected {:?} after the query {text:?}",
            tokens.get(at)
        ));
    }
    Ok(Query {
        attributes,
        metrics,
    })
}

impl Query {
    /// The span attributes named (`span.x` and unscoped `.x`), without their scope.
    pub fn span_attributes(&self) -> Vec<String> {
        self.attributes
            .iter()
            .filter_map(|a| a.strip_prefix("span.").or_else(|| a.strip_prefix('.')))
            .map(str::to_owned)
            .collect()
    }
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
}
