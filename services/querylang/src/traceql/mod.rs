//! The TraceQL subset: its AST and its parser ([`parse`]).
//!
//! Accepted: one spanset filter (`{ cond && cond || cond }`, or `{ }` for every span), where a
//! condition compares an attribute (`span.x`, `resource.x`, `.x`, or an intrinsic such as
//! `name` or `duration`) with `=`, `!=`, `>`, `>=`, `<`, `<=`, `=~` or `!~` to a quoted
//! string, a number or duration, or a keyword (`true`, `error`, `server`, …); and optionally
//! one metrics function (`| rate()`, `| count_over_time()`, `| quantile_over_time(attr, q…)`,
//! … with `by (attr, …)`). Anything else is an error.
//!
//! No evaluator lives here: the capture evaluates the `=`/`!=` part it supports on its stored
//! spans; the deploy checks read the attributes a query names.

mod parse;

use std::fmt;

pub use parse::parse;

/// An attribute a condition or a metrics function names, by its scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// `span.x`.
    Span(String),
    /// `resource.x`.
    Resource(String),
    /// `.x`: the span's attribute, else the resource's.
    Unscoped(String),
    /// `name`, `status`, `duration`, `span:kind`, …
    Intrinsic(String),
}

impl Attribute {
    /// The span attribute this names (`span.x` and unscoped `.x`), without its scope.
    pub fn span_attribute(&self) -> Option<&str> {
        match self {
            Attribute::Span(a) | Attribute::Unscoped(a) => Some(a),
            Attribute::Resource(_) | Attribute::Intrinsic(_) => None,
        }
    }
}

/// As written in a query.
impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attribute::Span(a) => write!(f, "span.{a}"),
            Attribute::Resource(a) => write!(f, "resource.{a}"),
            Attribute::Unscoped(a) => write!(f, ".{a}"),
            Attribute::Intrinsic(a) => f.write_str(a),
        }
    }
}

/// `=`, `!=`, `>`, `>=`, `<`, `<=`, `=~`, `!~`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Re,
    NotRe,
}

/// As written in a query.
impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Comparison::Eq => "=",
            Comparison::Ne => "!=",
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
            Comparison::Lt => "<",
            Comparison::Le => "<=",
            Comparison::Re => "=~",
            Comparison::NotRe => "!~",
        })
    }
}

/// The right-hand side of a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A quoted string, unquoted.
    Str(String),
    /// A number or a duration, as written (`10`, `.5`, `250ms`).
    Num(String),
    /// `true`, `false`, `ok`, `error`, `unset`, `server`, `client`, …
    Keyword(String),
}

impl Value {
    /// The value as text: a string's content, a number or keyword as written.
    pub fn text(&self) -> &str {
        match self {
            Value::Str(s) | Value::Num(s) | Value::Keyword(s) => s,
        }
    }
}

/// `attribute comparison value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub attribute: Attribute,
    pub op: Comparison,
    pub value: Value,
}

/// A spanset filter: alternatives joined by `||`, each conditions joined by `&&` (`&&` binds
/// tighter). `{ }` is one alternative with no condition: every span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanset {
    pub alternatives: Vec<Vec<Condition>>,
}

/// A whole query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub spanset: Spanset,
    /// The metrics function, if the query is a metrics query.
    pub metrics: Option<String>,
    /// The metrics function's attribute argument (`quantile_over_time(span.x, …)`).
    pub metrics_attribute: Option<Attribute>,
    /// `quantile_over_time`'s quantiles, as written (each checked to lie in [0, 1]).
    pub quantiles: Vec<String>,
    /// The metrics function's `by (…)` attributes.
    pub by: Vec<Attribute>,
}

impl Query {
    /// Every attribute named, in order: the spanset's, the metrics function's, its `by`'s.
    pub fn attributes(&self) -> Vec<&Attribute> {
        self.spanset
            .alternatives
            .iter()
            .flatten()
            .map(|c| &c.attribute)
            .chain(&self.metrics_attribute)
            .chain(&self.by)
            .collect()
    }

    /// The span attributes named (`span.x` and unscoped `.x`), without their scope.
    pub fn span_attributes(&self) -> Vec<String> {
        self.attributes()
            .into_iter()
            .filter_map(Attribute::span_attribute)
            .map(str::to_owned)
            .collect()
    }
}
