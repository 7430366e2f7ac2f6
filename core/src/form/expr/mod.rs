//! The XLSForm expression language: `relevant`, `constraint`,
//! `calculation`, `choice_filter` and `repeat_count` columns.
//!
//! Expressions are parsed once, when a form is imported, into an [`Expr`]
//! that knows which questions it reads ([`Expr::references`]), so a form
//! session re-evaluates only what an answer affects. Evaluation follows
//! ODK's documented XPath 1.0 behaviour (see [`eval`]).

mod eval;
mod geo;
mod lexer;
mod parser;
mod value;

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use self::eval::{Context, ItemScope, evaluate};
pub use self::value::XValue;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number literal.
    Number(f64),
    /// A text literal.
    Str(String),
    /// `${name}`: the answer to a question.
    Ref(String),
    /// `${last-saved#name}`: that question's answer in the last submission
    /// saved on the device (ODK's dynamic defaults use it).
    LastSaved(String),
    /// `.`: the answer to the question the expression belongs to.
    Current,
    /// `..`: the enclosing repeat instance (only inside `position(..)`).
    Parent,
    /// A bare name: a column of the choices sheet, in a `choice_filter`
    /// (`district = ${district}`). Other columns refuse it at import.
    Name(String),
    /// Unary minus.
    Neg(Box<Expr>),
    /// A binary operation.
    Binary {
        /// The operator.
        op: BinOp,
        /// Left operand.
        left: Box<Expr>,
        /// Right operand.
        right: Box<Expr>,
    },
    /// A function call.
    Call {
        /// The function.
        function: Function,
        /// Its arguments.
        args: Vec<Expr>,
    },
    /// `instance('list')/root/item[predicate]/column`: a column of the
    /// first item of a list for which the predicate holds; bare names in
    /// the predicate are the item's columns, as in a choice filter. The
    /// list is a choice list of the form, or a media file not read yet
    /// (issue 18), whose lookups read as empty.
    Lookup(Box<Lookup>),
    /// `../name`, `../../group/name`: a question found from the one the
    /// expression belongs to, as XPath walks the form's tree (CHT's forms
    /// write them). Import resolves each to the [`Expr::Ref`] it names;
    /// one left unresolved reads as empty.
    Relative(Box<RelativePath>),
}

/// A relative path: up `up` levels from the question, then down through
/// the groups and question `down` names.
#[derive(Debug, Clone, PartialEq)]
pub struct RelativePath {
    /// How many `..` steps (at least one).
    pub up: usize,
    /// The names below, outermost first.
    pub down: Vec<String>,
}

/// A list lookup (boxed in [`Expr`], which stays small: parsing nests
/// deeply and each level holds expressions on the stack).
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    /// The list (`instance('...')`).
    pub instance: String,
    /// Which item (all when absent: the first is read).
    pub predicate: Option<Expr>,
    /// The column read.
    pub column: String,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum BinOp {
    Or,
    And,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl BinOp {
    fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "=",
            BinOp::NotEq => "!=",
            BinOp::Lt => "<",
            BinOp::LtEq => "<=",
            BinOp::Gt => ">",
            BinOp::GtEq => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "div",
            BinOp::Mod => "mod",
        }
    }
}

macro_rules! functions {
    ($($variant:ident = $name:literal ($min:expr, $max:expr),)*) => {
        /// The functions XLSForm expressions may call.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum Function { $($variant,)* }

        impl Function {
            /// Every function name, as written in forms.
            pub const NAMES: &'static [&'static str] = &[$($name,)*];

            /// The function called `name` in a form.
            pub fn from_name(name: &str) -> Option<Function> {
                match name {
                    $($name => Some(Function::$variant),)*
                    _ => None,
                }
            }

            /// Its name as written in forms.
            pub fn name(self) -> &'static str {
                match self { $(Function::$variant => $name,)* }
            }

            /// Fewest and most arguments it takes.
            pub fn arity(self) -> (usize, usize) {
                match self { $(Function::$variant => ($min, $max),)* }
            }
        }
    };
}

functions! {
    Selected = "selected" (2, 2),
    CountSelected = "count-selected" (1, 1),
    SelectedAt = "selected-at" (2, 2),
    ChoiceName = "jr:choice-name" (2, 2),
    StringLength = "string-length" (1, 1),
    Concat = "concat" (0, usize::MAX),
    Join = "join" (1, usize::MAX),
    Substr = "substr" (2, 3),
    Contains = "contains" (2, 2),
    StartsWith = "starts-with" (2, 2),
    EndsWith = "ends-with" (2, 2),
    Regex = "regex" (2, 2),
    If = "if" (3, 3),
    Coalesce = "coalesce" (2, 2),
    Int = "int" (1, 1),
    Number = "number" (1, 1),
    String = "string" (1, 1),
    Round = "round" (1, 2),
    Today = "today" (0, 0),
    Now = "now" (0, 0),
    Date = "date" (1, 1),
    DecimalDateTime = "decimal-date-time" (1, 1),
    FormatDate = "format-date" (2, 2),
    Count = "count" (1, 1),
    Sum = "sum" (1, 1),
    Max = "max" (1, usize::MAX),
    Min = "min" (1, usize::MAX),
    Position = "position" (0, 1),
    Once = "once" (1, 1),
    BooleanFromString = "boolean-from-string" (1, 1),
    Boolean = "boolean" (1, 1),
    Not = "not" (1, 1),
    True = "true" (0, 0),
    False = "false" (0, 0),
    // The rest of JavaRosa's function set (JavaRosa has no floor() or
    // ceiling(), which XPath 1.0 has: ODK Validate refuses them).
    Uuid = "uuid" (0, 1),
    Random = "random" (0, 0),
    FormatDateTime = "format-date-time" (2, 2),
    DateTime = "date-time" (1, 1),
    DecimalTime = "decimal-time" (1, 1),
    IndexedRepeat = "indexed-repeat" (3, usize::MAX),
    NormalizeSpace = "normalize-space" (0, 1),
    Translate = "translate" (3, 3),
    SubstringBefore = "substring-before" (2, 2),
    SubstringAfter = "substring-after" (2, 2),
    CountNonEmpty = "count-non-empty" (1, 1),
    Checklist = "checklist" (2, usize::MAX),
    WeightedChecklist = "weighted-checklist" (2, usize::MAX),
    Area = "area" (1, 1),
    Distance = "distance" (1, 1),
    Abs = "abs" (1, 1),
    Sqrt = "sqrt" (1, 1),
    Pow = "pow" (2, 2),
    Exp = "exp" (1, 1),
    Exp10 = "exp10" (1, 1),
    Log = "log" (1, 1),
    Log10 = "log10" (1, 1),
    Sin = "sin" (1, 1),
    Cos = "cos" (1, 1),
    Tan = "tan" (1, 1),
    Asin = "asin" (1, 1),
    Acos = "acos" (1, 1),
    Atan = "atan" (1, 1),
    Atan2 = "atan2" (2, 2),
    Pi = "pi" (0, 0),
    Digest = "digest" (2, 3),
    Base64Decode = "base64-decode" (1, 1),
    // pulldata() reads a form media CSV (issue 18): empty until form media exist.
    Pulldata = "pulldata" (4, 4),
}

/// Why an expression does not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {})", offset + 1)]
pub struct ExprError {
    /// Byte offset in the expression where the problem starts.
    pub offset: usize,
    /// What is wrong, for a person.
    pub message: String,
}

impl ExprError {
    fn at(offset: usize, message: impl Into<String>) -> Self {
        ExprError {
            offset,
            message: message.into(),
        }
    }
}

impl Expr {
    /// Parses XLSForm expression text.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        parser::parse(text)
    }

    /// The questions the expression reads (`${name}`), for dependency
    /// tracking and for checking that they exist.
    pub fn references(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        self.visit(&mut |e| {
            if let Expr::Ref(name) = e {
                out.insert(name.as_str());
            }
        });
        out
    }

    /// The questions whose last saved answers the expression reads
    /// (`${last-saved#name}`): not dependencies, they do not change while
    /// an interview is filled.
    pub fn last_saved(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        self.visit(&mut |e| {
            if let Expr::LastSaved(name) = e {
                out.insert(name.as_str());
            }
        });
        out
    }

    /// The bare names (choice columns) the expression reads.
    pub fn bare_names(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        self.visit(&mut |e| {
            if let Expr::Name(name) = e {
                out.insert(name.as_str());
            }
        });
        out
    }

    /// Whether the expression reads the current question's own answer
    /// (`.`): constraints do.
    pub fn reads_current(&self) -> bool {
        let mut found = false;
        self.visit(&mut |e| found |= matches!(e, Expr::Current | Expr::Parent));
        found
    }

    /// Whether the value can change with no answer changing (`now()`,
    /// `today()`).
    pub fn is_volatile(&self) -> bool {
        let mut found = false;
        self.visit(&mut |e| {
            found |= matches!(
                e,
                Expr::Call {
                    function: Function::Now | Function::Today,
                    ..
                }
            )
        });
        found
    }

    fn visit<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::Neg(inner) => inner.visit(f),
            Expr::Binary { left, right, .. } => {
                left.visit(f);
                right.visit(f);
            }
            Expr::Call { args, .. } => args.iter().for_each(|a| a.visit(f)),
            // A predicate's bare names are the item's columns, not the
            // form's: only what it reads of the form is visited.
            Expr::Lookup(lookup) if let Some(predicate) = &lookup.predicate => predicate.visit(&mut |e| {
                if !matches!(e, Expr::Name(_)) {
                    f(e)
                }
            }),
            Expr::Number(_)
            | Expr::Str(_)
            | Expr::Ref(_)
            | Expr::LastSaved(_)
            | Expr::Current
            | Expr::Parent
            | Expr::Name(_)
            | Expr::Relative(_)
            | Expr::Lookup(_) => {}
        }
    }

    /// Replaces every relative path by the question `resolve` names for
    /// it; the first path it cannot resolve is the error.
    pub fn resolve_relative(
        &mut self,
        resolve: &mut dyn FnMut(&RelativePath) -> Result<String, String>,
    ) -> Result<(), String> {
        match self {
            Expr::Relative(path) => {
                *self = Expr::Ref(resolve(path)?);
                Ok(())
            }
            Expr::Neg(inner) => inner.resolve_relative(resolve),
            Expr::Binary { left, right, .. } => {
                left.resolve_relative(resolve)?;
                right.resolve_relative(resolve)
            }
            Expr::Call { args, .. } => args.iter_mut().try_for_each(|a| a.resolve_relative(resolve)),
            Expr::Lookup(lookup) => match &mut lookup.predicate {
                Some(predicate) => predicate.resolve_relative(resolve),
                None => Ok(()),
            },
            // The leaves: nothing below them.
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Expr {
    /// Canonical XLSForm text, fully parenthesised: parses back to the
    /// same expression.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Number(n) => write!(f, "{}", XValue::Num(*n).to_text()),
            Expr::Str(s) if s.contains('\'') => write!(f, "\"{s}\""),
            Expr::Str(s) => write!(f, "'{s}'"),
            Expr::Ref(name) => write!(f, "${{{name}}}"),
            Expr::LastSaved(name) => write!(f, "${{last-saved#{name}}}"),
            Expr::Current => f.write_str("."),
            Expr::Parent => f.write_str(".."),
            Expr::Relative(path) => {
                f.write_str(&"../".repeat(path.up))?;
                f.write_str(&path.down.join("/"))
            }
            Expr::Name(name) => f.write_str(name),
            Expr::Neg(inner) => write!(f, "-({inner})"),
            Expr::Binary { op, left, right } => write!(f, "({left} {} {right})", op.symbol()),
            Expr::Call { function, args } => {
                write!(f, "{}(", function.name())?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{arg}")?;
                }
                f.write_str(")")
            }
            Expr::Lookup(lookup) => {
                write!(f, "instance('{}')/root/item", lookup.instance)?;
                if let Some(predicate) = &lookup.predicate {
                    write!(f, "[{predicate}]")?;
                }
                write!(f, "/{}", lookup.column)
            }
        }
    }
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Expr::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The candidate closest to `word` by edit distance, if close enough to be
/// a likely typo: for "did you mean ...?" hints.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_follows_xpath() {
        let e = Expr::parse("1 + 2 * 3 = 7 and not(${a} or ${b})").unwrap();
        assert_eq!(e.to_string(), "(((1 + (2 * 3)) = 7) and not((${a} or ${b})))");
        let e = Expr::parse("-${x} - -2 div 4 mod 3").unwrap();
        assert_eq!(e.to_string(), "(-(${x}) - ((-(2) div 4) mod 3))");
        let e = Expr::parse("${a} < ${b} = ${c} >= 2").unwrap();
        assert_eq!(e.to_string(), "((${a} < ${b}) = (${c} >= 2))");
    }

    #[test]
    fn canonical_text_parses_back_to_the_same_tree() {
        for text in [
            "if(selected(${goods}, 'fish'), concat('a', \"it's\"), coalesce(${x}, .))",
            "position(..) = 1 and count(${item}) > 2.5",
            "format-date(today(), '%Y-%m') != jr:choice-name(${side}, '${side}')",
            "regex(., '^[0-9]{10}$') or string-length(.) = 0",
        ] {
            let e = Expr::parse(text).unwrap();
            assert_eq!(Expr::parse(&e.to_string()).unwrap(), e, "{text}");
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(serde_json::from_str::<Expr>(&json).unwrap(), e);
        }
    }

    #[test]
    fn bare_names_are_choice_columns() {
        let e = Expr::parse("district = ${district} and age > 3").unwrap();
        assert_eq!(e.bare_names().into_iter().collect::<Vec<_>>(), vec!["age", "district"]);
        assert_eq!(e.references().into_iter().collect::<Vec<_>>(), vec!["district"]);
    }

    #[test]
    fn references_and_flags() {
        let e = Expr::parse("${age} > 17 and . != '' and selected(${docs}, 'jeton') and ${age} < 99").unwrap();
        assert_eq!(e.references().into_iter().collect::<Vec<_>>(), vec!["age", "docs"]);
        assert!(e.reads_current());
        assert!(!e.is_volatile());
        assert!(Expr::parse("today() - ${dob}").unwrap().is_volatile());
    }

    #[test]
    fn errors_say_what_and_where() {
        let cases = [
            ("", "empty"),
            ("${age} >", "ends too early"),
            ("(1 + 2", "not closed"),
            ("selectd(${a}, 'x')", "did you mean selected()?"),
            ("if(${a}, 1)", "if() takes 3 argument(s), got 2"),
            ("today(1)", "today() takes 0 argument(s)"),
            ("1 2", "after a complete expression"),
            ("..", "position(..)"),
            ("concat(1,", "ends too early"),
        ];
        for (text, expected) in cases {
            let err = Expr::parse(text).unwrap_err();
            assert!(err.to_string().contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn error_positions_count_characters() {
        let err = Expr::parse("concat('Marché', ) ").unwrap_err();
        assert_eq!(err.offset, 17, "{err}");
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let parens = format!("{}1{}", "(".repeat(20_000), ")".repeat(20_000));
        let chain = format!("{}1", "1 + ".repeat(20_000));
        let minus = format!("{}1", "-".repeat(20_000));
        for text in [parens, chain, minus] {
            let err = Expr::parse(&text).unwrap_err();
            assert!(err.message.contains("nests deeper than 200"), "{err}");
        }
        Expr::parse(&format!("{}1", "1 + ".repeat(150))).unwrap();
    }

    #[test]
    fn closest_names_catch_typos_only() {
        let names = ["age", "agent_name", "goods"];
        assert_eq!(closest("agee", names), Some("age"));
        assert_eq!(closest("good", names), Some("goods"));
        assert_eq!(closest("income", names), None);
    }
}
