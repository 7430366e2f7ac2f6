//! Splits an XLSForm expression into tokens.

use super::ExprError;

/// One token, with the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Token {
    Number(f64),
    Str(String),
    /// `${name}`
    Ref(String),
    /// `${last-saved#name}`: the answer the last saved submission gave.
    LastSaved(String),
    /// A bare name: a function name, or `and`, `or`, `div`, `mod`.
    Name(String),
    Dot,
    DotDot,
    LParen,
    RParen,
    /// `/`, `[` and `]`: the steps and predicate of a path into a list
    /// (`instance('villages')/root/item[name = ${v}]/label`).
    Slash,
    LBracket,
    RBracket,
    Comma,
    Plus,
    Minus,
    Star,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

pub(super) fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, ExprError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let c = bytes[i];
        let token = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => single(&mut i, Token::LParen),
            b')' => single(&mut i, Token::RParen),
            b',' => single(&mut i, Token::Comma),
            b'/' => single(&mut i, Token::Slash),
            b'[' => single(&mut i, Token::LBracket),
            b']' => single(&mut i, Token::RBracket),
            b'+' => single(&mut i, Token::Plus),
            b'-' => single(&mut i, Token::Minus),
            b'*' => single(&mut i, Token::Star),
            b'=' => single(&mut i, Token::Eq),
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                i += 2;
                Token::NotEq
            }
            b'<' | b'>' => {
                let with_eq = bytes.get(i + 1) == Some(&b'=');
                i += if with_eq { 2 } else { 1 };
                match (c, with_eq) {
                    (b'<', false) => Token::Lt,
                    (b'<', true) => Token::LtEq,
                    (_, false) => Token::Gt,
                    (_, true) => Token::GtEq,
                }
            }
            b'\'' | b'"' => {
                let close = text[i + 1..]
                    .find(c as char)
                    .ok_or_else(|| ExprError::at(start, "a text in quotes is not closed"))?;
                let value = text[i + 1..i + 1 + close].to_owned();
                i += close + 2;
                Token::Str(value)
            }
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                let close = text[i + 2..]
                    .find('}')
                    .ok_or_else(|| ExprError::at(start, "`${` is not closed by `}`"))?;
                let name = text[i + 2..i + 2 + close].trim().to_owned();
                if name.is_empty() {
                    return Err(ExprError::at(start, "`${}` names no question"));
                }
                i += close + 3;
                match name.strip_prefix("last-saved#") {
                    Some(question) => Token::LastSaved(question.trim().to_owned()),
                    None => Token::Ref(name),
                }
            }
            b'.' if bytes.get(i + 1) == Some(&b'.') => {
                i += 2;
                Token::DotDot
            }
            b'.' if !bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => single(&mut i, Token::Dot),
            b'0'..=b'9' | b'.' => {
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                    i += 1;
                }
                let literal = &text[start..i];
                Token::Number(
                    literal
                        .parse()
                        .map_err(|_| ExprError::at(start, format!("`{literal}` is not a number")))?,
                )
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'-' | b':')) {
                    i += 1;
                }
                let name = &text[start..i];
                if name.contains("::") {
                    // An XPath axis (`label::English`): JavaRosa, and so
                    // ODK Validate, refuses it.
                    return Err(ExprError::at(
                        start,
                        format!("`{name}`: XPath axes (`::`) are not supported in ODK forms"),
                    ));
                }
                Token::Name(name.to_owned())
            }
            _ => {
                let shown = text[start..].chars().next().unwrap_or('?');
                return Err(ExprError::at(start, format!("unexpected `{shown}`")));
            }
        };
        tokens.push((start, token));
    }
    Ok(tokens)
}

fn single(i: &mut usize, token: Token) -> Token {
    *i += 1;
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Token> {
        tokenize(text).unwrap().into_iter().map(|(_, t)| t).collect()
    }

    #[test]
    fn tokens_of_a_typical_relevance() {
        assert_eq!(
            kinds("${age} >= 18 and selected(${goods}, 'fish')"),
            vec![
                Token::Ref("age".into()),
                Token::GtEq,
                Token::Number(18.0),
                Token::Name("and".into()),
                Token::Name("selected".into()),
                Token::LParen,
                Token::Ref("goods".into()),
                Token::Comma,
                Token::Str("fish".into()),
                Token::RParen,
            ]
        );
        assert_eq!(
            kinds(". != .5 - position(..)"),
            vec![
                Token::Dot,
                Token::NotEq,
                Token::Number(0.5),
                Token::Minus,
                Token::Name("position".into()),
                Token::LParen,
                Token::DotDot,
                Token::RParen
            ]
        );
        assert_eq!(kinds("jr:choice-name")[0], Token::Name("jr:choice-name".into()));
    }

    #[test]
    fn lexical_errors_say_where() {
        for (text, at) in [("'open", 0), ("1 + ${age", 4), ("${}", 0), ("1 # 2", 2), ("1.2.3", 0)] {
            let err = tokenize(text).unwrap_err();
            assert_eq!(err.offset, at, "{text}: {err}");
        }
    }
}
