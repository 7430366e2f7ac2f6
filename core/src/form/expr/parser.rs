//! Recursive-descent parser for XLSForm expressions (the XPath 1.0 subset
//! ODK forms use), with XPath's operator precedence:
//! `or` < `and` < `=` `!=` < `<` `<=` `>` `>=` < `+` `-` < `*` `div` `mod` < unary `-`.

use super::lexer::{Token, tokenize};
use super::{BinOp, Expr, ExprError, Function};

/// Deepest nesting accepted: far beyond any real form, well within the
/// stack of every recursive walk over an expression.
const MAX_DEPTH: usize = 200;

pub(super) fn parse(text: &str) -> Result<Expr, ExprError> {
    // Positions are reported in characters, as a person counts them.
    parse_bytes(text).map_err(|mut e| {
        e.offset = text.get(..e.offset).map_or(e.offset, |head| head.chars().count());
        e
    })
}

fn parse_bytes(text: &str) -> Result<Expr, ExprError> {
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Err(ExprError::at(0, "the expression is empty"));
    }
    let mut parser = Parser {
        tokens,
        at: 0,
        end: text.len(),
        depth: 0,
    };
    let expr = parser.binary(0)?;
    match parser.peek() {
        None => Ok(expr),
        Some(_) => Err(ExprError::at(
            parser.offset(),
            "unexpected text after a complete expression",
        )),
    }
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    at: usize,
    end: usize,
    /// Depth of the tree being built (recursion and operator chains).
    depth: usize,
}

/// Binary operators by precedence level, loosest first.
const LEVELS: &[&[BinOp]] = &[
    &[BinOp::Or],
    &[BinOp::And],
    &[BinOp::Eq, BinOp::NotEq],
    &[BinOp::Lt, BinOp::LtEq, BinOp::Gt, BinOp::GtEq],
    &[BinOp::Add, BinOp::Sub],
    &[BinOp::Mul, BinOp::Div, BinOp::Mod],
];

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |(o, _)| *o)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).map(|(_, t)| t.clone());
        self.at += 1;
        token
    }

    /// The binary operator at the cursor, if it belongs to `level`.
    fn operator(&self, level: &[BinOp]) -> Option<BinOp> {
        let op = match self.peek()? {
            Token::Name(n) if n == "or" => BinOp::Or,
            Token::Name(n) if n == "and" => BinOp::And,
            Token::Name(n) if n == "div" => BinOp::Div,
            Token::Name(n) if n == "mod" => BinOp::Mod,
            Token::Eq => BinOp::Eq,
            Token::NotEq => BinOp::NotEq,
            Token::Lt => BinOp::Lt,
            Token::LtEq => BinOp::LtEq,
            Token::Gt => BinOp::Gt,
            Token::GtEq => BinOp::GtEq,
            Token::Plus => BinOp::Add,
            Token::Minus => BinOp::Sub,
            Token::Star => BinOp::Mul,
            _ => return None,
        };
        level.contains(&op).then_some(op)
    }

    fn deeper(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ExprError::at(
                self.offset(),
                format!("the expression nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn binary(&mut self, level: usize) -> Result<Expr, ExprError> {
        let Some(ops) = LEVELS.get(level) else {
            return self.unary();
        };
        let depth = self.depth;
        let mut left = self.binary(level + 1)?;
        while let Some(op) = self.operator(ops) {
            self.at += 1;
            // Each operator of a chain adds a level to the tree.
            self.deeper()?;
            let right = self.binary(level + 1)?;
            left = Expr::Binary {
                op,
                left: Box::new(left),
                right: Box::new(right),
            };
        }
        self.depth = depth;
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        self.deeper()?;
        let result = if self.peek() == Some(&Token::Minus) {
            self.at += 1;
            self.unary().map(|inner| Expr::Neg(Box::new(inner)))
        } else {
            self.primary()
        };
        self.depth -= 1;
        result
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let offset = self.offset();
        let Some(token) = self.next() else {
            return Err(ExprError::at(offset, "the expression ends too early"));
        };
        match token {
            Token::Number(n) => Ok(Expr::Number(n)),
            Token::Str(s) => Ok(Expr::Str(s)),
            Token::Ref(name) => Ok(Expr::Ref(name)),
            Token::LastSaved(name) => Ok(Expr::LastSaved(name)),
            Token::Dot => Ok(Expr::Current),
            Token::DotDot if self.peek() == Some(&Token::Slash) => self.relative(offset),
            Token::DotDot => Err(ExprError::at(
                offset,
                "`..` alone is only allowed in position(..); write `../name` for a question beside this one",
            )),
            Token::LParen => {
                let inner = self.binary(0)?;
                self.expect(Token::RParen, "a `(` is not closed by `)`")?;
                Ok(inner)
            }
            Token::Name(name) if name == "instance" && self.peek() == Some(&Token::LParen) => self.lookup(offset),
            Token::Name(name) if self.peek() == Some(&Token::LParen) => self.call(offset, &name),
            Token::Name(name) => Ok(Expr::Name(name)),
            other => Err(ExprError::at(
                offset,
                format!("expected a value, found {}", describe(&other)),
            )),
        }
    }

    /// `instance('list')/root/item[predicate]/column`, after `instance`.
    #[inline(never)]
    fn lookup(&mut self, offset: usize) -> Result<Expr, ExprError> {
        let shape = "write a list lookup as instance('list')/root/item[name = ${q}]/label";
        self.at += 1; // (
        let Some(Token::Str(instance)) = self.next() else {
            return Err(ExprError::at(
                offset,
                format!("instance() takes the list's name in quotes: {shape}"),
            ));
        };
        for step in [
            Token::RParen,
            Token::Slash,
            Token::Name("root".into()),
            Token::Slash,
            Token::Name("item".into()),
        ] {
            if self.next() != Some(step) {
                return Err(ExprError::at(offset, shape));
            }
        }
        let predicate = if self.peek() == Some(&Token::LBracket) {
            self.at += 1;
            self.deeper()?;
            let predicate = self.binary(0)?;
            self.depth -= 1;
            self.expect(Token::RBracket, "a `[` is not closed by `]`")?;
            Some(predicate)
        } else {
            None
        };
        match (self.next(), self.next()) {
            (Some(Token::Slash), Some(Token::Name(column))) => Ok(Expr::Lookup(Box::new(super::Lookup {
                instance,
                predicate,
                column,
            }))),
            _ => Err(ExprError::at(
                offset,
                format!("name the column the lookup reads: {shape}"),
            )),
        }
    }

    fn call(&mut self, offset: usize, name: &str) -> Result<Expr, ExprError> {
        let function = Function::from_name(name).ok_or_else(|| {
            let hint = super::closest(name, Function::NAMES.iter().copied())
                .map(|s| format!("; did you mean {s}()?"))
                .unwrap_or_default();
            ExprError::at(offset, format!("unknown function {name}(){hint}"))
        })?;
        self.at += 1; // (
        let mut args = Vec::new();
        if self.peek() == Some(&Token::RParen) {
            self.at += 1;
        } else {
            loop {
                if function == Function::Position && self.peek() == Some(&Token::DotDot) {
                    self.at += 1;
                    args.push(Expr::Parent);
                } else {
                    args.push(self.binary(0)?);
                }
                match self.next() {
                    Some(Token::Comma) => continue,
                    Some(Token::RParen) => break,
                    _ => return Err(ExprError::at(offset, format!("{name}( is not closed by `)`"))),
                }
            }
        }
        let (min, max) = function.arity();
        if args.len() < min || args.len() > max {
            let wanted = match (min, max) {
                (a, b) if a == b => format!("{a}"),
                (a, usize::MAX) => format!("at least {a}"),
                (a, b) => format!("{a} to {b}"),
            };
            return Err(ExprError::at(
                offset,
                format!("{name}() takes {wanted} argument(s), got {}", args.len()),
            ));
        }
        Ok(Expr::Call { function, args })
    }

    /// The rest of a relative path, its first `..` read: `/..` steps up,
    /// then `/name` steps down.
    fn relative(&mut self, offset: usize) -> Result<Expr, ExprError> {
        let mut path = super::RelativePath {
            up: 1,
            down: Vec::new(),
        };
        while self.peek() == Some(&Token::Slash) {
            self.at += 1;
            match self.next() {
                Some(Token::DotDot) if path.down.is_empty() => path.up += 1,
                Some(Token::Name(name)) => path.down.push(name),
                _ => {
                    return Err(ExprError::at(
                        offset,
                        "a relative path is `..` steps, then names: `../../group/question`",
                    ));
                }
            }
        }
        if path.down.is_empty() {
            return Err(ExprError::at(
                offset,
                "a relative path ends with a question's name: `../question`",
            ));
        }
        Ok(Expr::Relative(Box::new(path)))
    }

    fn expect(&mut self, token: Token, message: &str) -> Result<(), ExprError> {
        let offset = self.offset();
        if self.next() == Some(token) {
            Ok(())
        } else {
            Err(ExprError::at(offset, message))
        }
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::RParen => "`)`".into(),
        Token::Comma => "`,`".into(),
        Token::Slash => "`/`".into(),
        Token::LBracket => "`[`".into(),
        Token::RBracket => "`]`".into(),
        Token::Name(n) => format!("`{n}`"),
        _ => "an operator".into(),
    }
}
