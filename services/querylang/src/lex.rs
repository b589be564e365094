//! The tokens both query languages are made of, scanning helpers for their tokenizers, and the
//! cursor their parsers walk. Each language keeps its own tokenizer (their lexical rules differ:
//! LogQL has `[ranges]` and escapes in strings, TraceQL has numbers and `:` in names); what they
//! share is here.

/// One token of a query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    /// A name or keyword (`service`, `sum`, `span.saga.outcome`, `true`).
    Word(String),
    /// A quoted string, unquoted.
    Str(String),
    /// A number or a duration (`10`, `.5`, `250ms`) — TraceQL only.
    Num(String),
    Sym(&'static str),
    /// The inside of `[…]`, trimmed — LogQL only.
    Range(String),
}

/// The symbol of `symbols` that `chars[at..]` starts with (list longer symbols first).
pub(crate) fn symbol_at(
    chars: &[char],
    at: usize,
    symbols: &[&'static str],
) -> Option<&'static str> {
    symbols.iter().copied().find(|s| {
        let s: Vec<char> = s.chars().collect();
        chars[at..].starts_with(&s)
    })
}

/// The end of the run of characters from `at` that `part_of` accepts.
pub(crate) fn scan_while(chars: &[char], mut at: usize, part_of: impl Fn(char) -> bool) -> usize {
    while at < chars.len() && part_of(chars[at]) {
        at += 1;
    }
    at
}

/// The text between the opening character at `open` and the next `close`, and the index after
/// `close`; `None` when nothing closes it.
pub(crate) fn delimited(chars: &[char], open: usize, close: char) -> Option<(String, usize)> {
    let end = chars[open + 1..].iter().position(|&ch| ch == close)?;
    Some((
        chars[open + 1..open + 1 + end].iter().collect(),
        open + end + 2,
    ))
}

/// Walks a token list for a recursive-descent parser.
pub(crate) struct Cursor {
    tokens: Vec<Token>,
    at: usize,
}

impl Cursor {
    pub(crate) fn new(tokens: Vec<Token>) -> Self {
        Self { tokens, at: 0 }
    }

    pub(crate) fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    /// Whether the next token is the symbol `sym`.
    pub(crate) fn at_sym(&self, sym: &str) -> bool {
        matches!(self.peek(), Some(Token::Sym(s)) if *s == sym)
    }

    /// Whether the next token is the word `word`.
    pub(crate) fn at_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w == word)
    }

    pub(crate) fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    pub(crate) fn expect(&mut self, sym: &'static str) -> Result<(), String> {
        match self.next() {
            Some(Token::Sym(s)) if s == sym => Ok(()),
            other => Err(format!("expected {sym:?}, found {other:?}")),
        }
    }

    pub(crate) fn word(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(w)) => Ok(w),
            other => Err(format!("expected a name, found {other:?}")),
        }
    }

    pub(crate) fn string(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Str(s)) => Ok(s),
            other => Err(format!("expected a string, found {other:?}")),
        }
    }

    /// The token left over after a complete query, if any.
    pub(crate) fn leftover(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }
}
