//! Evaluation with ODK's documented XPath 1.0 semantics.
//!
//! - An unanswered question is the empty string: `${age} > 18` is false
//!   while `age` is empty (NaN compares false), `${a} + 1` is NaN.
//! - `=` and `!=` compare as booleans if either side is one, else as
//!   numbers if either side is a number (or a date), else as text; with a
//!   repeat's node set on either side they hold if any pair does.
//! - `<`, `<=`, `>`, `>=` and arithmetic compare numbers; dates count
//!   days since 1970-01-01, so `today() - ${dob}` is an age in days.
//! - Evaluation never fails: bad input yields NaN, `""` or `false`, as in
//!   XPath. Mistakes in a form are caught when it is imported.

use chrono::{DateTime, Datelike, FixedOffset, Timelike};

use super::{BinOp, Expr, Function, XValue};

/// What an expression can see of the submission being filled.
pub trait Context {
    /// The answer to `name` as seen from where the expression is
    /// evaluated: inside a repeat, the same instance's; from outside it,
    /// every instance's, as [`XValue::Nodes`]. Unanswered: `Str("")`.
    fn answer(&self, name: &str) -> XValue;
    /// The answer to the question the expression belongs to (`.`).
    fn current(&self) -> XValue;
    /// The 1-based index of the current repeat instance.
    fn position(&self) -> Option<usize>;
    /// The label of choice `value` of question `question`'s list, in the
    /// current language.
    fn choice_label(&self, question: &str, value: &str) -> Option<String>;
    /// The time `now()` and `today()` return.
    fn now(&self) -> DateTime<FixedOffset>;
    /// `name`'s answer in the given instance (1-based) of each named
    /// repeat around it, wherever the expression is (`indexed-repeat()`):
    /// the repeats not named are read as [`Context::answer`] reads them.
    /// The default reads `name` across instances, in order, and takes the
    /// innermost index: right for a context with one level of repeats.
    fn indexed(&self, name: &str, instances: &[(&str, usize)]) -> XValue {
        let Some(&(_, index)) = instances.last() else {
            return self.answer(name);
        };
        self.answer(name)
            .nodes()
            .into_iter()
            .nth(index.saturating_sub(1))
            .unwrap_or(XValue::Str(String::new()))
    }
    /// `name`'s answer in the last submission saved on this device; empty
    /// when none is known (as in ODK Collect before the first one).
    fn last_saved(&self, _name: &str) -> XValue {
        XValue::Str(String::new())
    }
    /// A list lookup (`instance('list')/root/item[predicate]/column`):
    /// `column` of the first item of the form's choice list `list` for
    /// which `predicate` holds (evaluated in an [`ItemScope`]); empty for a
    /// list the form does not carry (a media file, not read yet).
    fn lookup(&self, _list: &str, _predicate: Option<&Expr>, _column: &str) -> XValue {
        XValue::Str(String::new())
    }
    /// A column of the choice being filtered (`choice_filter` only).
    fn choice_column(&self, _column: &str) -> XValue {
        XValue::Str(String::new())
    }
}

/// Evaluates `expr` against `ctx`.
pub fn evaluate(expr: &Expr, ctx: &dyn Context) -> XValue {
    match expr {
        Expr::Number(n) => XValue::Num(*n),
        Expr::Str(s) => XValue::Str(s.clone()),
        Expr::Ref(name) => ctx.answer(name),
        Expr::LastSaved(name) => ctx.last_saved(name),
        Expr::Current => ctx.current(),
        Expr::Parent | Expr::Relative(_) => XValue::Str(String::new()),
        Expr::Name(column) => ctx.choice_column(column),
        Expr::Neg(inner) => XValue::Num(-evaluate(inner, ctx).to_num()),
        Expr::Binary { op, left, right } => binary(*op, left, right, ctx),
        Expr::Call { function, args } => call(*function, args, ctx),
        Expr::Lookup(l) => ctx.lookup(&l.instance, l.predicate.as_ref(), &l.column),
    }
}

/// An expression evaluated for one item of a list (a choice filter, a
/// lookup's predicate): bare names read the item's columns, everything
/// else the scope around it.
pub struct ItemScope<'a> {
    /// Where the expression stands.
    pub outer: &'a dyn Context,
    /// The item's column of that name, if it has one.
    pub column: &'a dyn Fn(&str) -> Option<String>,
}

impl Context for ItemScope<'_> {
    fn answer(&self, name: &str) -> XValue {
        self.outer.answer(name)
    }
    fn current(&self) -> XValue {
        self.outer.current()
    }
    fn position(&self) -> Option<usize> {
        self.outer.position()
    }
    fn choice_label(&self, question: &str, value: &str) -> Option<String> {
        self.outer.choice_label(question, value)
    }
    fn now(&self) -> DateTime<FixedOffset> {
        self.outer.now()
    }
    fn indexed(&self, name: &str, instances: &[(&str, usize)]) -> XValue {
        self.outer.indexed(name, instances)
    }
    fn lookup(&self, list: &str, predicate: Option<&Expr>, column: &str) -> XValue {
        self.outer.lookup(list, predicate, column)
    }
    fn last_saved(&self, name: &str) -> XValue {
        self.outer.last_saved(name)
    }
    fn choice_column(&self, column: &str) -> XValue {
        XValue::Str((self.column)(column).unwrap_or_default())
    }
}

fn binary(op: BinOp, left: &Expr, right: &Expr, ctx: &dyn Context) -> XValue {
    match op {
        BinOp::Or => return XValue::Bool(evaluate(left, ctx).to_bool() || evaluate(right, ctx).to_bool()),
        BinOp::And => return XValue::Bool(evaluate(left, ctx).to_bool() && evaluate(right, ctx).to_bool()),
        _ => {}
    }
    let (l, r) = (evaluate(left, ctx), evaluate(right, ctx));
    match op {
        BinOp::Eq | BinOp::NotEq | BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq => {
            // With node sets, the comparison holds if it holds for any pair.
            let (ls, rs) = (l.nodes(), r.nodes());
            XValue::Bool(ls.iter().any(|a| rs.iter().any(|b| compare(op, a, b))))
        }
        _ => {
            let (a, b) = (l.to_num(), r.to_num());
            XValue::Num(match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                BinOp::Div => a / b,
                _ => a % b, // XPath mod truncates, as Rust's % does
            })
        }
    }
}

fn compare(op: BinOp, a: &XValue, b: &XValue) -> bool {
    use XValue::*;
    let numeric = |v: &XValue| matches!(v, Num(_) | Date(_) | DateTime(_));
    match op {
        BinOp::Eq | BinOp::NotEq => {
            let equal = if matches!(a, Bool(_)) || matches!(b, Bool(_)) {
                Some(a.to_bool() == b.to_bool())
            } else if numeric(a) || numeric(b) {
                let (x, y) = (a.to_num(), b.to_num());
                // NaN is unequal to everything, so both = and != are about numbers.
                return if op == BinOp::Eq { x == y } else { x != y };
            } else {
                Some(a.to_text() == b.to_text())
            };
            equal.is_some_and(|e| e == (op == BinOp::Eq))
        }
        _ => {
            let (x, y) = (a.to_num(), b.to_num());
            match op {
                BinOp::Lt => x < y,
                BinOp::LtEq => x <= y,
                BinOp::Gt => x > y,
                _ => x >= y,
            }
        }
    }
}

fn call(function: Function, args: &[Expr], ctx: &dyn Context) -> XValue {
    use XValue::{Bool, Num, Str};
    let arg = |i: usize| args.get(i).map_or(Str(String::new()), |a| evaluate(a, ctx));
    let text = |i: usize| arg(i).to_text();
    let num = |i: usize| arg(i).to_num();
    match function {
        Function::Selected => {
            let wanted = text(1);
            Bool(text(0).split_whitespace().any(|v| v == wanted.trim()))
        }
        Function::CountSelected => Num(text(0).split_whitespace().count() as f64),
        Function::SelectedAt => {
            let index = num(1);
            let list = text(0);
            let item = (index >= 0.0)
                .then(|| list.split_whitespace().nth(index as usize))
                .flatten();
            Str(item.unwrap_or_default().to_owned())
        }
        Function::ChoiceName => {
            let question = text(1);
            let name = question_name(&question);
            Str(ctx.choice_label(name, text(0).trim()).unwrap_or_default())
        }
        Function::StringLength => Num(text(0).chars().count() as f64),
        Function::Concat => Str(args.iter().map(|a| evaluate(a, ctx).to_text()).collect()),
        Function::Join => {
            let separator = text(0);
            let items: Vec<String> = args
                .iter()
                .skip(1)
                .flat_map(|a| evaluate(a, ctx).nodes())
                .map(|v| v.to_text())
                .collect();
            Str(items.join(&separator))
        }
        Function::Substr => {
            let s: Vec<char> = text(0).chars().collect();
            let start = clamp_index(num(1), s.len());
            let end = if args.len() > 2 {
                clamp_index(num(2), s.len())
            } else {
                s.len()
            };
            Str(if start < end {
                s[start..end].iter().collect()
            } else {
                String::new()
            })
        }
        Function::Contains => Bool(text(0).contains(&text(1))),
        Function::StartsWith => Bool(text(0).starts_with(&text(1))),
        Function::EndsWith => Bool(text(0).ends_with(&text(1))),
        // JavaRosa (Java's Pattern.matches) matches the whole text.
        Function::Regex => {
            Bool(regex_lite::Regex::new(&format!("^(?:{})$", text(1))).is_ok_and(|re| re.is_match(&text(0))))
        }
        Function::If => {
            if arg(0).to_bool() {
                arg(1)
            } else {
                arg(2)
            }
        }
        Function::Coalesce => {
            let first = arg(0);
            if first.to_text().is_empty() { arg(1) } else { first }
        }
        Function::Int => Num(num(0).trunc()),
        Function::Number => Num(num(0)),
        Function::String => Str(text(0)),
        Function::Boolean => Bool(arg(0).to_bool()),
        Function::Round => {
            let digits = if args.len() > 1 { num(1) } else { 0.0 };
            let scale = 10f64.powi(digits.clamp(-15.0, 15.0) as i32);
            Num((num(0) * scale).round() / scale)
        }
        Function::Today => XValue::Date(ctx.now().date_naive()),
        Function::Now => XValue::DateTime(ctx.now()),
        Function::Date => arg(0).to_date().map_or(Str(String::new()), XValue::Date),
        Function::DecimalDateTime => Num(arg(0).to_datetime().map_or(f64::NAN, |t| XValue::DateTime(t).to_num())),
        Function::FormatDate => Str(arg(0)
            .to_datetime()
            .map(|t| format_date(t, &text(1)))
            .unwrap_or_default()),
        // Outside a repeat a question is one node, answered or not.
        Function::Count => Num(match arg(0) {
            XValue::Nodes(nodes) => nodes.len(),
            _ => 1,
        } as f64),
        // JavaRosa skips what is not a number (an unanswered question):
        // the sum of 95 and nothing is 95.
        Function::Sum => Num(arg(0).nodes().iter().map(XValue::to_num).filter(|n| !n.is_nan()).sum()),
        Function::Max | Function::Min => {
            let values: Vec<f64> = args
                .iter()
                .flat_map(|a| evaluate(a, ctx).nodes())
                .map(|v| v.to_num())
                .filter(|n| !n.is_nan())
                .collect();
            if values.is_empty() {
                Num(f64::NAN)
            } else if function == Function::Max {
                Num(values.into_iter().fold(f64::NEG_INFINITY, f64::max))
            } else {
                Num(values.into_iter().fold(f64::INFINITY, f64::min))
            }
        }
        Function::Position => Num(ctx.position().map_or(f64::NAN, |p| p as f64)),
        Function::Once => {
            let current = ctx.current();
            if current.to_text().is_empty() { arg(0) } else { current }
        }
        Function::BooleanFromString => Bool(matches!(text(0).trim(), "true" | "1")),
        Function::Not => Bool(!arg(0).to_bool()),
        Function::True => Bool(true),
        Function::False => Bool(false),
        // JavaRosa draws a new value on every evaluation, as here: a form
        // keeps one with once().
        Function::Uuid if args.is_empty() => Str(uuid::Uuid::new_v4().to_string()),
        Function::Uuid => Str(random_text(num(0))),
        Function::Random => Num(random_unit()),
        Function::FormatDateTime => Str(arg(0)
            .to_datetime()
            .map(|t| format_date(t, &text(1)))
            .unwrap_or_default()),
        Function::DateTime => arg(0).to_datetime().map_or(Str(String::new()), XValue::DateTime),
        Function::DecimalTime => Num(decimal_time(&text(0))),
        Function::IndexedRepeat => indexed_repeat(args, ctx),
        Function::NormalizeSpace => {
            let value = if args.is_empty() { ctx.current() } else { arg(0) };
            Str(value.to_text().split_whitespace().collect::<Vec<_>>().join(" "))
        }
        Function::Translate => {
            let (from, to): (Vec<char>, Vec<char>) = (text(1).chars().collect(), text(2).chars().collect());
            Str(text(0)
                .chars()
                .filter_map(|c| match from.iter().position(|&f| f == c) {
                    Some(i) => to.get(i).copied(),
                    None => Some(c),
                })
                .collect())
        }
        Function::SubstringBefore => Str(text(0)
            .split_once(&text(1))
            .map(|(b, _)| b.to_owned())
            .unwrap_or_default()),
        Function::SubstringAfter => Str(text(0)
            .split_once(&text(1))
            .map(|(_, a)| a.to_owned())
            .unwrap_or_default()),
        Function::CountNonEmpty => Num(arg(0).nodes().iter().filter(|v| !v.to_text().is_empty()).count() as f64),
        Function::Checklist => {
            // checklist(min, max, values...): how many are true lies
            // within min..=max; -1 for no bound.
            let (min, max) = (num(0), num(1));
            let yes = args[2..]
                .iter()
                .flat_map(|a| evaluate(a, ctx).nodes())
                .filter(XValue::to_bool)
                .count() as f64;
            Bool((min < 0.0 || yes >= min) && (max < 0.0 || yes <= max))
        }
        Function::WeightedChecklist => {
            // weighted-checklist(min, max, value, weight, ...): the weights
            // of the true values add up to within min..=max.
            let (min, max) = (num(0), num(1));
            let total: f64 = args[2..]
                .chunks(2)
                .filter(|pair| pair.len() == 2 && evaluate(&pair[0], ctx).to_bool())
                .map(|pair| evaluate(&pair[1], ctx).to_num())
                .sum();
            Bool((min < 0.0 || total >= min) && (max < 0.0 || total <= max))
        }
        Function::Area => Num(super::geo::area(&geo_points(&arg(0)))),
        Function::Distance => Num(super::geo::distance(&geo_points(&arg(0)))),
        Function::Abs => Num(num(0).abs()),
        Function::Sqrt => Num(num(0).sqrt()),
        Function::Pow => Num(num(0).powf(num(1))),
        Function::Exp => Num(num(0).exp()),
        Function::Exp10 => Num(10f64.powf(num(0))),
        Function::Log => Num(num(0).ln()),
        Function::Log10 => Num(num(0).log10()),
        Function::Sin => Num(num(0).sin()),
        Function::Cos => Num(num(0).cos()),
        Function::Tan => Num(num(0).tan()),
        Function::Asin => Num(num(0).asin()),
        Function::Acos => Num(num(0).acos()),
        Function::Atan => Num(num(0).atan()),
        Function::Atan2 => Num(num(0).atan2(num(1))),
        Function::Pi => Num(std::f64::consts::PI),
        Function::Pulldata => Str(String::new()),
        Function::Digest => Str(digest(
            &text(0),
            &text(1),
            if args.len() > 2 { text(2) } else { "base64".into() }.as_str(),
        )),
        Function::Base64Decode => {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD.decode(text(0).trim());
            Str(bytes.ok().and_then(|b| String::from_utf8(b).ok()).unwrap_or_default())
        }
    }
}

/// `digest(data, algorithm, encoding)` as JavaRosa computes it: the hash
/// of the text's UTF-8 bytes by `MD5`, `SHA-1`, `SHA-256`, `SHA-384` or
/// `SHA-512`, written in `base64` (the default) or `hex`; empty for an
/// algorithm or encoding it does not know.
fn digest(data: &str, algorithm: &str, encoding: &str) -> String {
    use sha2::Digest as _;
    let bytes = data.as_bytes();
    let hash: Vec<u8> = match algorithm {
        "MD5" => md5::Md5::digest(bytes).to_vec(),
        "SHA-1" => sha1::Sha1::digest(bytes).to_vec(),
        "SHA-256" => sha2::Sha256::digest(bytes).to_vec(),
        "SHA-384" => sha2::Sha384::digest(bytes).to_vec(),
        "SHA-512" => sha2::Sha512::digest(bytes).to_vec(),
        _ => return String::new(),
    };
    match encoding {
        "base64" => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(hash)
        }
        "hex" => hash.iter().map(|b| format!("{b:02x}")).collect(),
        _ => String::new(),
    }
}

/// `indexed-repeat(${q}, ${repeat}, i [, ${inner}, j ...])`: `q`'s
/// answer in instance `i` (1-based) of `repeat`, and `j` of `inner` inside
/// it, read from anywhere in the form.
fn indexed_repeat(args: &[Expr], ctx: &dyn Context) -> XValue {
    let Some(Expr::Ref(name)) = args.first() else {
        return XValue::Str(String::new());
    };
    let mut instances = Vec::new();
    for pair in args[1..].chunks(2) {
        let [Expr::Ref(repeat), index] = pair else {
            return XValue::Str(String::new());
        };
        let index = evaluate(index, ctx).to_num();
        if index.is_nan() || index < 1.0 {
            return XValue::Str(String::new());
        }
        instances.push((repeat.as_str(), index as usize));
    }
    ctx.indexed(name, &instances)
}

/// A time of day (`HH:MM[:SS]`, with or without a zone) as the fraction
/// of a day it is, as JavaRosa's decimal-time gives it; NaN otherwise.
fn decimal_time(text: &str) -> f64 {
    let clock = text.split(['+', 'Z']).next().unwrap_or_default();
    let clock = clock
        .rsplit_once('-')
        .filter(|(c, _)| c.contains(':'))
        .map_or(clock, |(c, _)| c);
    chrono::NaiveTime::parse_from_str(clock.trim(), "%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveTime::parse_from_str(clock.trim(), "%H:%M"))
        .map_or(f64::NAN, |t| f64::from(t.num_seconds_from_midnight()) / 86_400.0)
}

/// The points of a geotrace or geoshape (`lat lon [alt acc]; ...`), or of
/// a repeat's geopoints.
fn geo_points(value: &XValue) -> Vec<(f64, f64)> {
    let texts: Vec<String> = match value {
        XValue::Nodes(nodes) => nodes.iter().map(XValue::to_text).collect(),
        other => other.to_text().split(';').map(str::to_owned).collect(),
    };
    texts
        .iter()
        .filter_map(|point| {
            let mut parts = point.split_whitespace().map(str::parse::<f64>);
            Some((parts.next()?.ok()?, parts.next()?.ok()?))
        })
        .collect()
}

/// A number drawn uniformly from [0, 1).
fn random_unit() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

/// `uuid(n)`: n random letters and digits.
fn random_text(length: f64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let length = if length.is_finite() {
        length.clamp(0.0, 1_000.0) as usize
    } else {
        0
    };
    (0..length)
        .map(|_| ALPHABET[(random_unit() * ALPHABET.len() as f64) as usize % ALPHABET.len()] as char)
        .collect()
}

/// `'${side}'`, `side` or `/data/side` name the question `side`.
fn question_name(reference: &str) -> &str {
    let r = reference.trim();
    let r = r.strip_prefix("${").and_then(|r| r.strip_suffix('}')).unwrap_or(r);
    r.rsplit('/').next().unwrap_or(r).trim()
}

/// A substr() index: negative counts from the end, as in JavaRosa.
fn clamp_index(n: f64, len: usize) -> usize {
    if n.is_nan() {
        0
    } else if n < 0.0 {
        len.saturating_sub((-n) as usize)
    } else {
        (n as usize).min(len)
    }
}

/// ODK's format-date: %Y %y %m %n %b %d %e %a %H %h %M %S %3.
fn format_date(t: DateTime<FixedOffset>, pattern: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let piece = match chars.next() {
            Some('Y') => format!("{:04}", t.year()),
            Some('y') => format!("{:02}", t.year().rem_euclid(100)),
            Some('m') => format!("{:02}", t.month()),
            Some('n') => t.month().to_string(),
            Some('b') => MONTHS[t.month0() as usize % 12].to_owned(),
            Some('d') => format!("{:02}", t.day()),
            Some('e') => t.day().to_string(),
            Some('a') => DAYS[t.weekday().num_days_from_monday() as usize % 7].to_owned(),
            Some('H') => format!("{:02}", t.hour()),
            Some('h') => t.hour().to_string(),
            Some('M') => format!("{:02}", t.minute()),
            Some('S') => format!("{:02}", t.second()),
            Some('3') => format!("{:03}", t.timestamp_subsec_millis()),
            Some(other) => format!("%{other}"),
            None => "%".to_owned(),
        };
        out.push_str(&piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::TimeZone;

    use super::*;

    /// A submission as a map, with one repeat `item` of `price` answers.
    struct Answers {
        values: HashMap<&'static str, XValue>,
        current: XValue,
        position: Option<usize>,
    }

    impl Context for Answers {
        fn answer(&self, name: &str) -> XValue {
            self.values.get(name).cloned().unwrap_or(XValue::Str(String::new()))
        }
        fn current(&self) -> XValue {
            self.current.clone()
        }
        fn position(&self) -> Option<usize> {
            self.position
        }
        fn choice_label(&self, question: &str, value: &str) -> Option<String> {
            (question == "side" && value == "drc").then(|| "DR Congo".to_owned())
        }
        fn now(&self) -> DateTime<FixedOffset> {
            FixedOffset::east_opt(2 * 3600)
                .and_then(|tz| tz.with_ymd_and_hms(2026, 11, 27, 9, 5, 7).single())
                .expect("a valid time")
        }
        fn lookup(&self, list: &str, predicate: Option<&Expr>, column: &str) -> XValue {
            let posts = [["rusizi", "Rusizi II", "rw"], ["bukavu", "Bukavu", "drc"]];
            let items: &[[&str; 3]] = if list == "posts" { &posts } else { &[] };
            let found = items.iter().find(|item| {
                let columns = |c: &str| {
                    ["name", "label", "side"]
                        .iter()
                        .position(|k| *k == c)
                        .map(|i| item[i].to_owned())
                };
                predicate.is_none_or(|p| {
                    evaluate(
                        p,
                        &ItemScope {
                            outer: self,
                            column: &columns,
                        },
                    )
                    .to_bool()
                })
            });
            let value = found.and_then(|item| {
                ["name", "label", "side"]
                    .iter()
                    .position(|k| *k == column)
                    .map(|i| item[i])
            });
            XValue::Str(value.unwrap_or_default().to_owned())
        }
    }

    fn ctx() -> Answers {
        let s = |v: &str| XValue::Str(v.to_owned());
        Answers {
            values: HashMap::from([
                ("age", XValue::Num(34.0)),
                ("name", s("Uwimana Claudine")),
                ("goods", s("beans fish milk")),
                ("side", s("drc")),
                ("empty", s("")),
                (
                    "dob",
                    XValue::Date(chrono::NaiveDate::from_ymd_opt(1990, 1, 31).expect("date")),
                ),
                (
                    "price",
                    XValue::Nodes(vec![XValue::Num(1500.0), XValue::Num(2500.0), XValue::Num(500.0)]),
                ),
                ("phone", s("0788123456")),
                ("mixed", XValue::Nodes(vec![XValue::Num(95.0), s(""), XValue::Num(5.0)])),
            ]),
            current: s("0788123456"),
            position: Some(2),
        }
    }

    fn eval(text: &str) -> XValue {
        evaluate(&Expr::parse(text).expect(text), &ctx())
    }

    fn check(text: &str, expected: XValue) {
        assert_eq!(eval(text), expected, "{text}");
    }

    #[test]
    fn unanswered_questions_are_empty_strings() {
        check("${empty} = ''", XValue::Bool(true));
        check("${empty} > 18", XValue::Bool(false));
        check("${empty} < 18", XValue::Bool(false));
        assert!(eval("${empty} + 1").to_num().is_nan());
        check("coalesce(${empty}, 'none')", XValue::Str("none".into()));
        check("string-length(${missing})", XValue::Num(0.0));
    }

    #[test]
    fn comparisons_follow_xpath_types() {
        check("${age} = '34'", XValue::Bool(true));
        check("${age} >= 18 and ${age} < 60", XValue::Bool(true));
        check("'10' > '9'", XValue::Bool(true));
        check("'abc' = 'abc' and 'abc' != 'abd'", XValue::Bool(true));
        check("true() = 'yes'", XValue::Bool(true));
        check("${price} > 2000", XValue::Bool(true));
        check("${price} = 500", XValue::Bool(true));
        check("${price} > 3000", XValue::Bool(false));
        check("number('x') = number('x')", XValue::Bool(false));
        check("number('x') != number('x')", XValue::Bool(true));
    }

    #[test]
    fn arithmetic() {
        check("7 div 2", XValue::Num(3.5));
        check("7 mod 3", XValue::Num(1.0));
        check("-7 mod 3", XValue::Num(-1.0));
        check("int(-3.7)", XValue::Num(-3.0));
        check("round(2.456, 2)", XValue::Num(2.46));
        check("round(2.5)", XValue::Num(3.0));
        check("1 div 0 > 1000000", XValue::Bool(true));
    }

    #[test]
    fn dates_count_days() {
        check(
            "today()",
            XValue::Date(chrono::NaiveDate::from_ymd_opt(2026, 11, 27).expect("date")),
        );
        check("int((today() - ${dob}) div 365.25)", XValue::Num(36.0));
        check("${dob} < today()", XValue::Bool(true));
        check("${dob} = '1990-01-31'", XValue::Bool(true));
        check("date('2026-11-30') - today()", XValue::Num(3.0));
        check(
            "format-date(today(), '%Y-%m-%d %b %e')",
            XValue::Str("2026-11-27 Nov 27".into()),
        );
        check("format-date(now(), '%H:%M:%S %a')", XValue::Str("09:05:07 Fri".into()));
        check("format-date(${empty}, '%Y')", XValue::Str(String::new()));
        check("date('not a date')", XValue::Str(String::new()));
        let decimal = eval("decimal-date-time('1970-01-02T12:00:00Z')").to_num();
        assert_eq!(decimal, 1.5);
    }

    #[test]
    fn selections() {
        check("selected(${goods}, 'fish')", XValue::Bool(true));
        check("selected(${goods}, 'fis')", XValue::Bool(false));
        check("count-selected(${goods})", XValue::Num(3.0));
        check("selected-at(${goods}, 1)", XValue::Str("fish".into()));
        check("selected-at(${goods}, 9)", XValue::Str(String::new()));
        check("jr:choice-name(${side}, '${side}')", XValue::Str("DR Congo".into()));
        check("jr:choice-name('rwanda', '${side}')", XValue::Str(String::new()));
    }

    #[test]
    fn text_functions() {
        check(
            "concat(${name}, ' (', ${age}, ')')",
            XValue::Str("Uwimana Claudine (34)".into()),
        );
        check("substr(${name}, 0, 7)", XValue::Str("Uwimana".into()));
        check("substr(${name}, 8)", XValue::Str("Claudine".into()));
        check("substr(${name}, 50, 60)", XValue::Str(String::new()));
        check("substr(${phone}, -4)", XValue::Str("3456".into()));
        check("count(${empty})", XValue::Num(1.0));
        check(
            "contains(${name}, 'Claud') and starts-with(${name}, 'Uwi') and ends-with(${name}, 'ine')",
            XValue::Bool(true),
        );
        check("regex(., '^07[0-9]{8}$')", XValue::Bool(true));
        check("regex(${name}, '^[0-9]+$')", XValue::Bool(false));
        check("regex('x', '(')", XValue::Bool(false));
        // The whole text must match, as in JavaRosa.
        check("regex('abc', 'b')", XValue::Bool(false));
        check("regex('abc', 'a.c')", XValue::Bool(true));
        check(
            "boolean-from-string('true') and boolean-from-string('1') and not(boolean-from-string('yes'))",
            XValue::Bool(true),
        );
        check("string(1 div 2)", XValue::Str("0.5".into()));
        check("number(' 42 ')", XValue::Num(42.0));
    }

    #[test]
    fn repeats_and_aggregates() {
        check("count(${price})", XValue::Num(3.0));
        check("join(', ', ${price})", XValue::Str("1500, 2500, 500".into()));
        check("join('-', 'a', 'b')", XValue::Str("a-b".into()));
        check("sum(${price})", XValue::Num(4500.0));
        check("max(${price})", XValue::Num(2500.0));
        check("min(${price}, 100)", XValue::Num(100.0));
        // An unanswered instance is skipped, as JavaRosa skips it.
        check("sum(${mixed})", XValue::Num(100.0));
        check("max(${mixed})", XValue::Num(95.0));
        check("min(${mixed})", XValue::Num(5.0));
        check("position(..)", XValue::Num(2.0));
        check("if(position(..) = 1, 'first', 'later')", XValue::Str("later".into()));
        check("once(concat('x', 'y'))", XValue::Str("0788123456".into()));
        assert!(eval("max(${empty})").to_num().is_nan());
    }

    #[test]
    fn list_lookups_read_the_first_item_the_predicate_holds_for() {
        check(
            "instance('posts')/root/item[side = ${side}]/label",
            XValue::Str("Bukavu".into()),
        );
        check(
            "instance('posts')/root/item[name = 'rusizi']/side",
            XValue::Str("rw".into()),
        );
        check("instance('posts')/root/item/name", XValue::Str("rusizi".into()));
        check(
            "instance('posts')/root/item[side = 'ug']/label",
            XValue::Str(String::new()),
        );
        check(
            "instance('a-file')/root/item[id = ${age}]/geometry",
            XValue::Str(String::new()),
        );
        let e = Expr::parse("instance(\"posts\")/root/item[side=${side} and name != '']/label").unwrap();
        assert_eq!(e.references().into_iter().collect::<Vec<_>>(), ["side"]);
        assert!(
            e.bare_names().is_empty(),
            "the item's columns are not the form's bare names"
        );
        assert_eq!(Expr::parse(&e.to_string()).unwrap(), e, "prints back to itself");
        for wrong in [
            "instance(posts)/root/item/label",
            "instance('posts')/root/label",
            "instance('posts')/root/item[side = 'rw'",
        ] {
            assert!(Expr::parse(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn javarosa_functions_beyond_the_common_ones() {
        check("sqrt(16) + abs(-2) + pow(2, 3)", XValue::Num(14.0));
        assert!(Expr::parse("floor(1.5)").is_err(), "JavaRosa has no floor()");
        check(
            "weighted-checklist(3, -1, true(), 2, false(), 5, true(), 1)",
            XValue::Bool(true),
        );
        // A square of 0.001 degrees at the equator: about 111 m a side.
        let area = eval("area('0 0; 0 0.001; 0.001 0.001; 0.001 0; 0 0')").to_num();
        assert!((area - 12_392.0).abs() < 30.0, "{area}");
        let length = eval("distance('0 0; 0 0.001; 0.001 0.001')").to_num();
        assert!((length - 222.6).abs() < 1.0, "{length}");
        check(
            "round(cos(0) + sin(0) + atan2(0, 1) + log10(100) + exp10(1), 3)",
            XValue::Num(13.0),
        );
        check("round(pi() * 100, 0)", XValue::Num(314.0));
        check("normalize-space('  two   words ')", XValue::Str("two words".into()));
        check("translate('abc', 'ab', 'A')", XValue::Str("Ac".into()));
        check("substring-before('2026-12-01', '-')", XValue::Str("2026".into()));
        check("substring-after('2026-12-01', '-')", XValue::Str("12-01".into()));
        check("count-non-empty(${price})", XValue::Num(3.0));
        check("checklist(1, 2, true(), false(), ${age} > 18)", XValue::Bool(true));
        check("checklist(-1, 0, true())", XValue::Bool(false));
        check(
            "format-date-time(now(), '%Y%m%d%H%M%S')",
            XValue::Str("20261127090507".into()),
        );
        check("decimal-time('06:00:00.000+02:00')", XValue::Num(0.25));
        check("indexed-repeat(${price}, ${item}, 2)", XValue::Num(2500.0));
        check("indexed-repeat(${price}, ${item}, 9)", XValue::Str(String::new()));
        // Known answers (RFC 1321, FIPS 180-2) for "abc".
        check(
            "digest('abc', 'MD5', 'hex')",
            XValue::Str("900150983cd24fb0d6963f7d28e17f72".into()),
        );
        check(
            "digest('abc', 'SHA-256')",
            XValue::Str("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=".into()),
        );
        check(
            "digest('abc', 'SHA-1', 'hex')",
            XValue::Str("a9993e364706816aba3e25717850c26c9cd0d89d".into()),
        );
        check("digest('abc', 'CRC32')", XValue::Str(String::new()));
        check("base64-decode('TXBha2E=')", XValue::Str("Mpaka".into()));
        check("base64-decode('not base64!')", XValue::Str(String::new()));
        check("pulldata('fruits', 'name', 'key', 'mango')", XValue::Str(String::new()));
        assert_eq!(eval("uuid()").to_text().len(), 36);
        assert_ne!(eval("uuid()"), eval("uuid()"));
        assert_eq!(eval("uuid(12)").to_text().len(), 12);
        let r = eval("random()").to_num();
        assert!((0.0..1.0).contains(&r), "{r}");
    }
}
