//! The `Upstash-Retry-Delay` expression language: parser, syntax tree and evaluator.
//!
//! Grammar (ASCII whitespace allowed between tokens):
//!
//! ```text
//! expr    = term { ("+" | "-") term }
//! term    = unary { ("*" | "/") unary }
//! unary   = "-" unary | primary
//! primary = number | "retried" | name "(" [ expr { "," expr } ] ")" | "(" expr ")"
//! number  = digits [ "." [ digits ] ] | "." digits
//! name    = pow | exp | sqrt | abs | floor | ceil | round | min | max
//! ```
//!
//! Hand-written rather than borrowed from an expression crate: the language is tiny, has one
//! variable, and the input comes from untrusted headers, so it must have hard bounds on size
//! and nesting and must never panic.

/// Longest accepted source, in bytes. Real expressions are a few dozen bytes.
pub const MAX_SOURCE_LEN: usize = 512;

/// Deepest accepted nesting of parentheses, function calls and unary minus. It bounds the
/// recursion of the parser (and so of evaluation) whatever the input.
pub const MAX_DEPTH: usize = 32;

/// Why an expression was rejected. Positions are 1-based byte columns; the end of the
/// input is one past its length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    #[error("invalid retry delay expression: {len} bytes long, at most {MAX_SOURCE_LEN} allowed")]
    TooLong { len: usize },
    #[error("invalid retry delay expression {src:?}: empty")]
    Empty { src: String },
    #[error("invalid retry delay expression {src:?}: expected {expected} at {pos}")]
    Expected {
        src: String,
        pos: usize,
        expected: &'static str,
    },
    #[error("invalid retry delay expression {src:?}: unexpected {found:?} at {pos}")]
    Unexpected {
        src: String,
        pos: usize,
        found: char,
    },
    #[error("invalid retry delay expression {src:?}: unknown name {name:?} at {pos}")]
    UnknownName {
        src: String,
        pos: usize,
        name: String,
    },
    #[error(
        "invalid retry delay expression {src:?}: {name}() takes {}, got {found} at {pos}",
        arguments(*.expected)
    )]
    Arity {
        src: String,
        pos: usize,
        name: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("invalid retry delay expression {src:?}: nested deeper than {MAX_DEPTH} at {pos}")]
    TooDeep { src: String, pos: usize },
}

fn arguments(n: usize) -> String {
    if n == 1 {
        "1 argument".to_owned()
    } else {
        format!("{n} arguments")
    }
}

/// A parsed expression. Function arity is part of the shape, so evaluation needs no checks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Num(f64),
    Retried,
    Unary(Op1, Box<Expr>),
    Binary(Op2, Box<Expr>, Box<Expr>),
}

/// One-operand operations: unary minus and the one-argument functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op1 {
    Neg,
    Exp,
    Sqrt,
    Abs,
    Floor,
    Ceil,
    Round,
}

/// Two-operand operations: arithmetic and the two-argument functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op2 {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Min,
    Max,
}

/// A function name as written in the source.
#[derive(Debug, Clone, Copy)]
enum Func {
    One(Op1),
    Two(Op2),
}

impl Func {
    fn from_name(name: &str) -> Option<(&'static str, Self)> {
        const TABLE: [(&str, Func); 9] = [
            ("pow", Func::Two(Op2::Pow)),
            ("exp", Func::One(Op1::Exp)),
            ("sqrt", Func::One(Op1::Sqrt)),
            ("abs", Func::One(Op1::Abs)),
            ("floor", Func::One(Op1::Floor)),
            ("ceil", Func::One(Op1::Ceil)),
            ("round", Func::One(Op1::Round)),
            ("min", Func::Two(Op2::Min)),
            ("max", Func::Two(Op2::Max)),
        ];
        TABLE.into_iter().find(|(n, _)| *n == name)
    }

    fn arity(self) -> usize {
        match self {
            Func::One(_) => 1,
            Func::Two(_) => 2,
        }
    }

    /// Builds the call node; `args` has exactly `arity()` elements (checked by the caller).
    fn call(self, args: Vec<Expr>) -> Option<Expr> {
        let mut args = args.into_iter().map(Box::new);
        Some(match self {
            Func::One(op) => Expr::Unary(op, args.next()?),
            Func::Two(op) => Expr::Binary(op, args.next()?, args.next()?),
        })
    }
}

impl Op1 {
    fn apply(self, x: f64) -> f64 {
        match self {
            Op1::Neg => -x,
            Op1::Exp => x.exp(),
            Op1::Sqrt => x.sqrt(),
            Op1::Abs => x.abs(),
            Op1::Floor => x.floor(),
            Op1::Ceil => x.ceil(),
            // Half away from zero, like Go's math.Round (the service is written in Go).
            Op1::Round => x.round(),
        }
    }
}

impl Op2 {
    fn apply(self, x: f64, y: f64) -> f64 {
        match self {
            Op2::Add => x + y,
            Op2::Sub => x - y,
            Op2::Mul => x * y,
            Op2::Div => x / y,
            Op2::Pow => x.powf(y),
            Op2::Min => x.min(y),
            Op2::Max => x.max(y),
        }
    }
}

impl Expr {
    /// Parses `src` within the size and depth bounds.
    pub(crate) fn parse(src: &str) -> Result<Self, ExprError> {
        if src.len() > MAX_SOURCE_LEN {
            return Err(ExprError::TooLong { len: src.len() });
        }
        if src.trim().is_empty() {
            return Err(ExprError::Empty {
                src: src.to_owned(),
            });
        }
        let mut parser = Parser {
            src,
            pos: 0,
            depth: 0,
        };
        let expr = parser.expr()?;
        parser.skip_ws();
        match parser.peek_char() {
            None => Ok(expr),
            Some(found) => Err(parser.unexpected(found)),
        }
    }

    /// Evaluates in `f64`; the result may be NaN or infinite, the caller clamps it.
    pub(crate) fn eval(&self, retried: f64) -> f64 {
        match self {
            Expr::Num(n) => *n,
            Expr::Retried => retried,
            Expr::Unary(op, x) => op.apply(x.eval(retried)),
            Expr::Binary(op, x, y) => op.apply(x.eval(retried), y.eval(retried)),
        }
    }
}

/// Recursive-descent parser over the source bytes. `pos` only ever moves past ASCII bytes,
/// so it always sits on a character boundary.
struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
}

type Parsed<T> = Result<T, ExprError>;

impl Parser<'_> {
    fn expr(&mut self) -> Parsed<Expr> {
        let mut lhs = self.term()?;
        while let Some(op) = self.eat_op(&[(b'+', Op2::Add), (b'-', Op2::Sub)]) {
            let rhs = self.term()?;
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn term(&mut self) -> Parsed<Expr> {
        let mut lhs = self.unary()?;
        while let Some(op) = self.eat_op(&[(b'*', Op2::Mul), (b'/', Op2::Div)]) {
            let rhs = self.unary()?;
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Parsed<Expr> {
        let at = self.pos_after_ws();
        if self.eat(b'-') {
            let operand = self.nested(at, Self::unary)?;
            return Ok(Expr::Unary(Op1::Neg, Box::new(operand)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Parsed<Expr> {
        self.skip_ws();
        match self.peek() {
            Some(b'0'..=b'9' | b'.') => self.number(),
            Some(b'(') => {
                let at = self.pos;
                self.pos += 1;
                let inner = self.nested(at, Self::expr)?;
                self.expect(b')', "')'")?;
                Ok(inner)
            }
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => self.name(),
            _ => match self.peek_char() {
                Some(found) => Err(self.unexpected(found)),
                None => Err(self.expected("a number, 'retried', a function or '('")),
            },
        }
    }

    fn number(&mut self) -> Parsed<Expr> {
        let start = self.pos;
        let int_digits = self.take_while(|b| b.is_ascii_digit());
        let frac_digits = if self.eat_byte(b'.') {
            self.take_while(|b| b.is_ascii_digit())
        } else {
            0
        };
        if int_digits == 0 && frac_digits == 0 {
            self.pos = start;
            return Err(self.expected("a digit"));
        }
        // Only digits and one dot were taken, which `f64` always parses (huge values to inf).
        let text = self.src.get(start..self.pos).unwrap_or("");
        let value = text.parse().map_err(|_| self.expected("a number"))?;
        Ok(Expr::Num(value))
    }

    fn name(&mut self) -> Parsed<Expr> {
        let start = self.pos;
        self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_');
        let name = self.src.get(start..self.pos).unwrap_or("");
        if name == "retried" {
            return Ok(Expr::Retried);
        }
        let Some((name, func)) = Func::from_name(name) else {
            let (src, name) = (self.src.to_owned(), name.to_owned());
            return Err(ExprError::UnknownName {
                src,
                pos: start + 1,
                name,
            });
        };
        self.expect(b'(', "'(' after function name")?;
        let args = self.nested(start, Self::arguments)?;
        let found = args.len();
        let call = (found == func.arity()).then(|| func.call(args)).flatten();
        call.ok_or_else(|| ExprError::Arity {
            src: self.src.to_owned(),
            pos: start + 1,
            name,
            expected: func.arity(),
            found,
        })
    }

    /// The comma-separated arguments after `(`, up to and including `)`. Any count is
    /// parsed so that a wrong count is reported as such rather than as a syntax error.
    fn arguments(&mut self) -> Parsed<Vec<Expr>> {
        let mut args = Vec::new();
        if self.eat(b')') {
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            if !self.eat(b',') {
                self.expect(b')', "')'")?;
                return Ok(args);
            }
        }
    }

    /// Runs `f` one nesting level deeper, refusing to go past `MAX_DEPTH`; `at` is where
    /// the nesting construct starts, for the error.
    fn nested<T>(&mut self, at: usize, f: impl FnOnce(&mut Self) -> Parsed<T>) -> Parsed<T> {
        if self.depth >= MAX_DEPTH {
            return Err(ExprError::TooDeep {
                src: self.src.to_owned(),
                pos: at + 1,
            });
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    fn eat_op(&mut self, ops: &[(u8, Op2)]) -> Option<Op2> {
        self.skip_ws();
        let &(_, op) = ops.iter().find(|(b, _)| self.peek() == Some(*b))?;
        self.pos += 1;
        Some(op)
    }

    /// Skips whitespace, then consumes `b` if it is next.
    fn eat(&mut self, b: u8) -> bool {
        self.skip_ws();
        self.eat_byte(b)
    }

    fn eat_byte(&mut self, b: u8) -> bool {
        let found = self.peek() == Some(b);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, b: u8, what: &'static str) -> Parsed<()> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    fn pos_after_ws(&mut self) -> usize {
        self.skip_ws();
        self.pos
    }

    fn skip_ws(&mut self) {
        self.take_while(|b| b.is_ascii_whitespace());
    }

    /// Advances over ASCII bytes matching `pred`; returns how many.
    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii() && pred(b)) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn peek_char(&self) -> Option<char> {
        self.src.get(self.pos..)?.chars().next()
    }

    fn expected(&self, expected: &'static str) -> ExprError {
        ExprError::Expected {
            src: self.src.to_owned(),
            pos: self.pos + 1,
            expected,
        }
    }

    fn unexpected(&self, found: char) -> ExprError {
        ExprError::Unexpected {
            src: self.src.to_owned(),
            pos: self.pos + 1,
            found,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(src: &str, retried: f64) -> f64 {
        match Expr::parse(src) {
            Ok(expr) => expr.eval(retried),
            Err(e) => panic!("{src:?} should parse: {e}"),
        }
    }

    fn error(src: &str) -> String {
        match Expr::parse(src) {
            Ok(expr) => panic!("{src:?} should be rejected, parsed as {expr:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn numbers_parse_as_integers_and_decimals() {
        assert_eq!(eval("1000", 0.0), 1000.0);
        assert_eq!(eval("1.5", 0.0), 1.5);
        assert_eq!(eval(".5", 0.0), 0.5);
        assert_eq!(eval("2.", 0.0), 2.0);
    }

    #[test]
    fn subtraction_and_division_associate_to_the_left() {
        assert_eq!(eval("10 - 2 - 3", 0.0), 5.0);
        assert_eq!(eval("100 / 10 / 5", 0.0), 2.0);
    }

    #[test]
    fn multiplication_binds_tighter_than_addition() {
        assert_eq!(eval("2 * 3 + 4", 0.0), 10.0);
        assert_eq!(eval("4 + 2 * 3", 0.0), 10.0);
        assert_eq!(eval("(4 + 2) * 3", 0.0), 18.0);
    }

    #[test]
    fn unary_minus_applies_to_its_operand() {
        assert_eq!(eval("-2 * 3", 0.0), -6.0);
        assert_eq!(eval("--2", 0.0), 2.0);
        assert_eq!(eval("3 - -2", 0.0), 5.0);
        assert_eq!(eval("-(1 + retried)", 2.0), -3.0);
    }

    #[test]
    fn every_function_computes_its_math() {
        assert_eq!(eval("pow(2, 10)", 0.0), 1024.0);
        assert_eq!(eval("exp(0)", 0.0), 1.0);
        assert_eq!(eval("sqrt(16)", 0.0), 4.0);
        assert_eq!(eval("abs(0 - 7)", 0.0), 7.0);
        assert_eq!(eval("floor(2.7)", 0.0), 2.0);
        assert_eq!(eval("ceil(2.1)", 0.0), 3.0);
        assert_eq!(eval("round(2.5)", 0.0), 3.0);
        assert_eq!(eval("min(3, retried)", 1.0), 1.0);
        assert_eq!(eval("max(3, retried)", 1.0), 3.0);
    }

    #[test]
    fn whitespace_is_allowed_anywhere_between_tokens() {
        assert_eq!(eval(" \tpow ( 2 ,\nretried ) *1000 ", 3.0), 8000.0);
        assert_eq!(eval("1000*(1+retried)", 1.0), 2000.0);
    }

    #[test]
    fn wrong_argument_counts_are_rejected() {
        assert_eq!(
            error("pow(2)"),
            r#"invalid retry delay expression "pow(2)": pow() takes 2 arguments, got 1 at 1"#
        );
        assert_eq!(
            error("1 + sqrt(1, 2)"),
            r#"invalid retry delay expression "1 + sqrt(1, 2)": sqrt() takes 1 argument, got 2 at 5"#
        );
        assert!(error("max()").contains("max() takes 2 arguments, got 0"));
        assert!(error("min(1,2,3)").contains("got 3"));
    }

    #[test]
    fn unknown_names_are_rejected() {
        assert_eq!(
            error("retries * 2"),
            r#"invalid retry delay expression "retries * 2": unknown name "retries" at 1"#
        );
        assert!(error("log(2)").contains(r#"unknown name "log""#));
        assert!(error("Retried").contains("unknown name"));
        assert!(error("1e3").contains("unexpected 'e' at 2"));
    }

    #[test]
    fn syntax_errors_name_the_position() {
        assert_eq!(
            error("pow(2"),
            r#"invalid retry delay expression "pow(2": expected ')' at 6"#
        );
        assert!(error("(1 + 2").ends_with("expected ')' at 7"));
        assert!(error("1 +").ends_with("expected a number, 'retried', a function or '(' at 4"));
        assert!(error("pow 2").ends_with("expected '(' after function name at 5"));
        assert!(error("1 2").ends_with("unexpected '2' at 3"));
        assert!(error("1 % 2").ends_with("unexpected '%' at 3"));
        assert!(error(".").ends_with("expected a digit at 1"));
        assert!(error("retried(1)").ends_with("unexpected '(' at 8"));
        assert!(error("1 + é").ends_with("unexpected 'é' at 5"));
        assert!(error("+1").ends_with("unexpected '+' at 1"));
        assert!(error("   ").ends_with("empty"));
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = format!("{}1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(eval(&ok, 0.0), 1.0);
        let deep = format!(
            "{}1{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert!(error(&deep).contains("nested deeper than 32 at 33"));
        assert!(error(&"-".repeat(40)).contains("nested deeper"));
        assert!(error(&"abs(".repeat(40)).contains("nested deeper"));
    }

    #[test]
    fn long_sources_are_rejected_before_parsing() {
        let long = "1+".repeat(MAX_SOURCE_LEN / 2) + "1";
        assert_eq!(
            error(&long),
            "invalid retry delay expression: 513 bytes long, at most 512 allowed"
        );
        let longest = "1+".repeat(MAX_SOURCE_LEN / 2 - 1) + "10";
        assert_eq!(eval(&longest, 0.0), 265.0);
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        let cases = [
            "",
            "(",
            ")",
            "()",
            "(()",
            "pow(",
            "pow(,)",
            "pow(1,)",
            "pow(,1)",
            "pow)",
            "1..2",
            "..",
            "1.2.3",
            "*1",
            "1*",
            "1**2",
            "1//2",
            "--",
            "-",
            "retried retried",
            "pow(1 2)",
            ",",
            "1,2",
            "sqrt((1)",
            "\u{0}",
            "µ",
            "1µ",
            "ab\u{301}",
            "𝟙",
            "_",
            "__x(1)",
            "max(1,2))",
            "1 +\n",
        ];
        for src in cases {
            assert!(Expr::parse(src).is_err(), "{src:?} should be rejected");
        }
    }

    /// A tiny xorshift generator: enough to spray inputs without a property-test crate.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// Pieces that often form valid expressions, plus a few non-ASCII characters,
    /// so the random strings reach deep into the parser and the evaluator.
    const PIECES: [&str; 24] = [
        "retried", "pow(", "exp(", "sqrt(", "abs(", "floor(", "ceil(", "round(", "min(", "max(",
        "(", ")", ",", "+", "-", "*", "/", " ", "1000", "2", ".5", "0", "\u{ff}", "µ",
    ];

    #[test]
    fn random_inputs_never_panic() {
        let mut state = 0x9E37_79B9_7F4A_7C15;
        let mut parsed = 0;
        for round in 0..50_000 {
            // Mostly short strings, which parse often; some long ones to hit the depth bound.
            let len = next(&mut state) % if round % 10 == 0 { 200 } else { 12 };
            let src: String = (0..len)
                .map(|_| PIECES[(next(&mut state) % PIECES.len() as u64) as usize])
                .collect();
            if let Ok(expr) = Expr::parse(&src) {
                parsed += 1;
                for retried in [0.0, 1.0, 1e9] {
                    expr.eval(retried);
                }
            }
        }
        // Guards the generator itself: a spray that never parses would test little.
        assert!(parsed > 500, "only {parsed} random inputs parsed");
        for _ in 0..20_000 {
            let len = next(&mut state) % 16;
            let bytes: Vec<u8> = (0..len).map(|_| next(&mut state) as u8).collect();
            let _ = Expr::parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
