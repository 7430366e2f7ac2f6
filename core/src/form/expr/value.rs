//! Values of expressions and XPath 1.0's conversions between them.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};

const MS_PER_DAY: f64 = 86_400_000.0;

/// A value an expression produces or a question holds.
#[derive(Debug, Clone, PartialEq)]
pub enum XValue {
    /// Text; an unanswered question is the empty string.
    Str(String),
    /// A number (XPath numbers are doubles; NaN is "not a number").
    Num(f64),
    /// A boolean.
    Bool(bool),
    /// A calendar date: a number of days since 1970-01-01 in arithmetic.
    Date(NaiveDate),
    /// An instant: fractional days since the epoch in arithmetic.
    DateTime(DateTime<FixedOffset>),
    /// The answers of a question in every instance of its repeat.
    Nodes(Vec<XValue>),
}

impl XValue {
    /// XPath `boolean()`.
    pub fn to_bool(&self) -> bool {
        match self {
            XValue::Str(s) => !s.is_empty(),
            XValue::Num(n) => *n != 0.0 && !n.is_nan(),
            XValue::Bool(b) => *b,
            XValue::Date(_) | XValue::DateTime(_) => true,
            XValue::Nodes(nodes) => !nodes.is_empty(),
        }
    }

    /// XPath `number()`; dates count days since 1970-01-01. Text that is
    /// a date or a date-time converts the same way, as ODK does.
    pub fn to_num(&self) -> f64 {
        match self {
            XValue::Str(s) => text_to_num(s),
            XValue::Num(n) => *n,
            XValue::Bool(b) => f64::from(u8::from(*b)),
            XValue::Date(d) => date_days(*d),
            XValue::DateTime(t) => t.timestamp_millis() as f64 / MS_PER_DAY,
            XValue::Nodes(nodes) => nodes.first().map_or(f64::NAN, XValue::to_num),
        }
    }

    /// XPath `string()`, as JavaRosa gives it: an instant reads as its
    /// date alone (`concat(${start}, '_', ${who})` is `2025-09-12_x` in
    /// ODK Collect), as JavaRosa's `toString` of a date does.
    pub fn to_text(&self) -> String {
        match self {
            XValue::Str(s) => s.clone(),
            XValue::Num(n) => number_text(*n),
            XValue::Bool(b) => b.to_string(),
            XValue::Date(d) => d.format("%Y-%m-%d").to_string(),
            XValue::DateTime(t) => t.date_naive().format("%Y-%m-%d").to_string(),
            XValue::Nodes(nodes) => nodes.first().map(XValue::to_text).unwrap_or_default(),
        }
    }

    /// The value as a question stores it: as [`XValue::to_text`], but an
    /// instant whole (`now()` or `${start}` as a calculation's result keeps
    /// its time, as in JavaRosa).
    pub fn to_stored(&self) -> String {
        match self {
            XValue::DateTime(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false),
            XValue::Nodes(nodes) => nodes.first().map(XValue::to_stored).unwrap_or_default(),
            other => other.to_text(),
        }
    }

    /// The value as a date, if it is one or reads as one.
    pub fn to_date(&self) -> Option<NaiveDate> {
        match self {
            XValue::Date(d) => Some(*d),
            XValue::DateTime(t) => Some(t.date_naive()),
            XValue::Str(s) => parse_date(s).or_else(|| parse_datetime(s).map(|t| t.date_naive())),
            // chrono's dates span about ±262,000 years: stay well inside.
            XValue::Num(n) if n.is_finite() && n.abs() < 9.0e7 => {
                NaiveDate::from_num_days_from_ce_opt(EPOCH_CE_DAYS.checked_add(n.floor() as i32)?)
            }
            XValue::Nodes(nodes) => nodes.first().and_then(XValue::to_date),
            _ => None,
        }
    }

    /// The value as an instant, if it is one or reads as one (a date is
    /// its midnight, UTC).
    pub fn to_datetime(&self) -> Option<DateTime<FixedOffset>> {
        match self {
            XValue::DateTime(t) => Some(*t),
            XValue::Str(s) => parse_datetime(s).or_else(|| parse_date(s).map(midnight)),
            XValue::Date(d) => Some(midnight(*d)),
            XValue::Num(n) if n.is_finite() && n.abs() < 9.0e7 => {
                DateTime::from_timestamp_millis((n * MS_PER_DAY) as i64).map(|t| t.fixed_offset())
            }
            XValue::Nodes(nodes) => nodes.first().and_then(XValue::to_datetime),
            _ => None,
        }
    }

    /// The value's nodes: itself for a single value.
    pub fn nodes(&self) -> Vec<XValue> {
        match self {
            XValue::Nodes(nodes) => nodes.clone(),
            other => vec![other.clone()],
        }
    }
}

/// Days from 0001-01-01 (CE day 1) to 1970-01-01.
const EPOCH_CE_DAYS: i32 = 719_163;

fn date_days(d: NaiveDate) -> f64 {
    f64::from(d.num_days_from_ce() - EPOCH_CE_DAYS)
}

fn midnight(d: NaiveDate) -> DateTime<FixedOffset> {
    d.and_time(NaiveTime::MIN).and_utc().fixed_offset()
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

fn parse_datetime(s: &str) -> Option<DateTime<FixedOffset>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s).ok().or_else(|| {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|t| t.and_utc().fixed_offset())
    })
}

/// XPath's number(): decimal digits with an optional sign and point only
/// (no exponent, no "inf"); otherwise NaN. Dates count days.
fn text_to_num(s: &str) -> f64 {
    let t = s.trim();
    let body = t.strip_prefix('-').unwrap_or(t);
    let decimal = !body.is_empty()
        && body.chars().all(|c| c.is_ascii_digit() || c == '.')
        && body.chars().filter(|&c| c == '.').count() <= 1
        && body != ".";
    if decimal {
        return t.parse().unwrap_or(f64::NAN);
    }
    if let Some(d) = parse_date(t) {
        return date_days(d);
    }
    parse_datetime(t).map_or(f64::NAN, |dt| dt.timestamp_millis() as f64 / MS_PER_DAY)
}

/// XPath's string() of a number: integers without a point, NaN and
/// Infinity spelled out.
fn number_text(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n.is_infinite() {
        if n > 0.0 { "Infinity".into() } else { "-Infinity".into() }
    } else if n == n.trunc() && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xpath_conversions() {
        assert!(
            XValue::Str(String::new()).to_num().is_nan(),
            "unanswered is NaN in arithmetic"
        );
        assert_eq!(XValue::Str(" 12.5 ".into()).to_num(), 12.5);
        assert!(XValue::Str("1e3".into()).to_num().is_nan());
        assert!(XValue::Str("abc".into()).to_num().is_nan());
        assert_eq!(XValue::Str("1970-01-11".into()).to_num(), 10.0);
        assert_eq!(XValue::Num(3.0).to_text(), "3");
        assert_eq!(XValue::Num(-0.25).to_text(), "-0.25");
        assert_eq!(XValue::Num(f64::NAN).to_text(), "NaN");
        assert_eq!(XValue::Bool(true).to_num(), 1.0);
        assert!(!XValue::Num(f64::NAN).to_bool());
        assert!(!XValue::Str(String::new()).to_bool());
        assert!(XValue::Str("false".into()).to_bool(), "any non-empty text is true");
        assert_eq!(XValue::Nodes(vec![]).to_text(), "");
    }

    #[test]
    fn dates_are_days() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let days = XValue::Date(d).to_num();
        assert_eq!(XValue::Num(days).to_date(), Some(d));
        assert_eq!(XValue::Num(3.0e9).to_date(), None, "no overflow");
        assert_eq!(XValue::Num(-3.0e9).to_datetime(), None);
        assert_eq!(XValue::Date(d).to_text(), "2026-11-27");
        let t = XValue::Str("2026-11-27T12:00:00+00:00".into());
        assert_eq!(t.to_num(), days + 0.5);
        assert_eq!(t.to_date(), Some(d));
        // An instant reads as its date in text, and is stored whole, as in
        // JavaRosa (string(${start}) is the date; a calculation of
        // ${start} keeps the time).
        let instant = XValue::DateTime(t.to_datetime().unwrap());
        assert_eq!(instant.to_text(), "2026-11-27");
        assert_eq!(instant.to_stored(), "2026-11-27T12:00:00.000+00:00");
    }
}
