//! The LogQL subset: its AST, its parsers ([`parse`], [`parse_permissive`], [`parse_labels`])
//! and the evaluation of a log pipeline on a line ([`LogQuery::evaluate`]).
//!
//! Accepted: a stream selector (`=`, `!=`, `=~`, `!~`), line filters (`|=`, `!=`, `|~`,
//! `!~`), `| json`, `| logfmt`, label filters (`| name op "value"`), a range function over a
//! log query (`count_over_time(… [5m])`, `rate`, …) and one vector aggregation around it
//! (`sum by (a, b) (…)`). Anything else is an error: a query that uses more than this subset
//! has to extend it here, with a test, rather than slip through unchecked.
//!
//! The evaluator applies a log query to a line the way Loki would (regex matchers on labels
//! are anchored, line regexes are not; `| json` flattens nested keys with `_` and turns
//! characters a label cannot hold into `_`), so the deploy checks can run the Grafana queries
//! on the lines the services really wrote, and the capture can answer `query_range`.

mod eval;
mod parse;

pub use eval::sanitize;
pub use parse::{parse, parse_labels, parse_permissive};

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
