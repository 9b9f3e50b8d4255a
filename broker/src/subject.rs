//! Subjects, subscription patterns and queue names, NATS-style.
//!
//! A subject is a dot-separated list of tokens, such as `orders.eu.created`.
//! Each token is non-empty and made of printable ASCII other than space, `*`
//! and `>`; the whole subject is 1 to [`MAX_SUBJECT_LEN`] bytes.
//!
//! A [`Pattern`] is a subject in which a token may be a wildcard: `*` matches
//! exactly one token and `>`, allowed only as the last token, matches one or
//! more tokens.
//!
//! ```
//! use farcall_broker::subject::{validate_subject, Pattern};
//!
//! validate_subject("orders.eu.created").unwrap();
//! assert!(validate_subject("orders..created").is_err());
//!
//! let all_eu = Pattern::parse("orders.eu.>").unwrap();
//! assert!(all_eu.matches("orders.eu.created"));
//! assert!(!all_eu.matches("orders.eu"));
//!
//! let created = Pattern::parse("orders.*.created").unwrap();
//! assert!(created.matches("orders.us.created"));
//! assert!(!created.matches("orders.us.west.created"));
//! ```

use crate::BrokerError;
use crate::error::cut;

/// Longest subject, pattern or queue name, in bytes.
pub const MAX_SUBJECT_LEN: usize = 255;

/// What a name may contain besides plain tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A subject or queue name: no wildcards.
    Plain,
    /// A pattern: `*` and `>` as whole tokens, `>` only last.
    Pattern,
}

/// Checks `s` against the rules of `kind`; the reason of the first broken
/// rule on failure.
/// The rules of a plain subject in one pass over the bytes, for the common
/// case (a valid subject, on every publish); `check` says what is wrong.
fn plain_ok(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > MAX_SUBJECT_LEN || b[0] == b'.' || b[b.len() - 1] == b'.' {
        return false;
    }
    let mut prev_dot = false;
    for &c in b {
        match c {
            b'.' if prev_dot => return false,
            b'.' => prev_dot = true,
            b'*' | b'>' => return false,
            0x21..=0x7e => prev_dot = false,
            _ => return false,
        }
    }
    true
}

fn check(s: &str, kind: Kind) -> Result<(), String> {
    if s.is_empty() {
        return Err("empty".to_owned());
    }
    if s.len() > MAX_SUBJECT_LEN {
        return Err(format!("longer than {MAX_SUBJECT_LEN} bytes"));
    }
    let count = s.split('.').count();
    for (index, token) in s.split('.').enumerate() {
        let position = index + 1;
        if token.is_empty() {
            return Err(format!("empty token at position {position}"));
        }
        if kind == Kind::Pattern {
            if token == "*" {
                continue;
            }
            if token == ">" {
                if position != count {
                    return Err("`>` must be the last token".to_owned());
                }
                continue;
            }
        }
        for byte in token.bytes() {
            match byte {
                b' ' => return Err("contains a space".to_owned()),
                b'*' | b'>' if kind == Kind::Pattern => {
                    return Err(format!(
                        "`{}` must be a whole token (token {position} is {:?})",
                        byte as char,
                        cut(token)
                    ));
                }
                b'*' | b'>' => {
                    return Err(format!(
                        "contains the wildcard `{}`, which only patterns may have",
                        byte as char
                    ));
                }
                0x21..=0x7e => {}
                0x00..=0x1f | 0x7f => return Err("contains a control character".to_owned()),
                _ => return Err("contains a character that is not ASCII".to_owned()),
            }
        }
    }
    Ok(())
}

/// Checks a subject to publish on: tokens separated by `.`, each non-empty,
/// of printable ASCII without space, `*` or `>`; 1..=255 bytes.
///
/// # Errors
///
/// [`BrokerError::InvalidSubject`] naming the first rule `s` breaks.
pub fn validate_subject(s: &str) -> Result<(), BrokerError> {
    if plain_ok(s) {
        return Ok(());
    }
    check(s, Kind::Plain).map_err(|reason| BrokerError::InvalidSubject {
        subject: cut(s),
        reason,
    })
}

/// Checks a queue name: same rules as a subject (no wildcards).
///
/// # Errors
///
/// [`BrokerError::InvalidQueueName`] naming the first rule `s` breaks.
pub fn validate_queue_name(s: &str) -> Result<(), BrokerError> {
    if plain_ok(s) {
        return Ok(());
    }
    check(s, Kind::Plain).map_err(|reason| BrokerError::InvalidQueueName {
        name: cut(s),
        reason,
    })
}

/// A subscription pattern: `*` matches exactly one token, `>` (last token
/// only) one or more tokens.
///
/// A pattern without wildcards matches exactly the subject it spells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    /// The pattern as parsed.
    text: String,
    /// Whether it has no wildcard token.
    literal: bool,
}

impl Pattern {
    /// Parses and checks a pattern.
    ///
    /// # Errors
    ///
    /// [`BrokerError::InvalidPattern`] when `s` breaks the subject rules, has
    /// `*` or `>` inside a token, or has `>` before the last token.
    pub fn parse(s: &str) -> Result<Pattern, BrokerError> {
        check(s, Kind::Pattern).map_err(|reason| BrokerError::InvalidPattern {
            pattern: cut(s),
            reason,
        })?;
        let literal = !s.split('.').any(|token| token == "*" || token == ">");
        Ok(Pattern {
            text: s.to_owned(),
            literal,
        })
    }

    /// The pattern as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `subject` matches this pattern.
    ///
    /// `subject` is assumed valid (see [`validate_subject`]); for one that is
    /// not, the answer is unspecified but there is no panic. Does not
    /// allocate.
    pub fn matches(&self, subject: &str) -> bool {
        if self.literal {
            return self.text == subject;
        }
        let mut subject_tokens = subject.split('.');
        for token in self.text.split('.') {
            match token {
                // `>` is always last: it takes the rest, which must be at
                // least one token.
                ">" => return subject_tokens.next().is_some(),
                "*" => {
                    if subject_tokens.next().is_none() {
                        return false;
                    }
                }
                literal => {
                    if subject_tokens.next() != Some(literal) {
                        return false;
                    }
                }
            }
        }
        subject_tokens.next().is_none()
    }

    /// Whether the pattern has no wildcards (it matches one subject only).
    pub fn is_literal(&self) -> bool {
        self.literal
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod fast_path {
    use super::*;

    /// The one-pass check agrees with the full one.
    #[test]
    fn agrees_with_check() {
        let cases = [
            "a", "a.b", "a..b", ".a", "a.", "a b", "a.*", "a.>", "é", "a\tb", "~!.@#", "", ".",
        ];
        for c in cases {
            assert_eq!(plain_ok(c), check(c, Kind::Plain).is_ok(), "{c:?}");
        }
        let long = "a".repeat(MAX_SUBJECT_LEN + 1);
        assert_eq!(plain_ok(&long), check(&long, Kind::Plain).is_ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject_reason(s: &str) -> String {
        match validate_subject(s) {
            Err(BrokerError::InvalidSubject { reason, .. }) => reason,
            other => panic!("{s:?}: expected InvalidSubject, got {other:?}"),
        }
    }

    fn pattern_reason(s: &str) -> String {
        match Pattern::parse(s) {
            Err(BrokerError::InvalidPattern { reason, .. }) => reason,
            other => panic!("{s:?}: expected InvalidPattern, got {other:?}"),
        }
    }

    fn pattern(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    #[test]
    fn valid_subjects() {
        for s in [
            "a",
            "a.b.c",
            "orders.eu-west.created_2024",
            "A.B",
            "x!#$%&'()+,-/:;<=?@[]^_`{|}~",
            "a".repeat(MAX_SUBJECT_LEN).as_str(),
        ] {
            validate_subject(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
            validate_queue_name(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        }
    }

    #[test]
    fn invalid_subjects() {
        assert_eq!(subject_reason(""), "empty");
        assert_eq!(
            subject_reason(&"a".repeat(MAX_SUBJECT_LEN + 1)),
            "longer than 255 bytes"
        );
        assert_eq!(subject_reason("a..b"), "empty token at position 2");
        assert_eq!(subject_reason(".a"), "empty token at position 1");
        assert_eq!(subject_reason("a."), "empty token at position 2");
        assert_eq!(subject_reason("."), "empty token at position 1");
        assert_eq!(subject_reason("a b"), "contains a space");
        assert!(subject_reason("a.*").contains("wildcard"));
        assert!(subject_reason("a.>").contains("wildcard"));
        assert!(subject_reason("a*b").contains("wildcard"));
        assert_eq!(subject_reason("a\tb"), "contains a control character");
        assert_eq!(subject_reason("a\u{7f}"), "contains a control character");
        assert_eq!(
            subject_reason("é"),
            "contains a character that is not ASCII"
        );
    }

    #[test]
    fn invalid_queue_names() {
        for s in ["", "a..b", "a b", "q.*", "q.>"] {
            match validate_queue_name(s) {
                Err(BrokerError::InvalidQueueName { name, .. }) => assert_eq!(name, s),
                other => panic!("{s:?}: expected InvalidQueueName, got {other:?}"),
            }
        }
    }

    #[test]
    fn long_names_are_cut_in_errors() {
        let long = "b".repeat(10_000);
        match validate_subject(&long) {
            Err(BrokerError::InvalidSubject { subject, .. }) => assert_eq!(subject.len(), 300),
            other => panic!("expected InvalidSubject, got {other:?}"),
        }
    }

    #[test]
    fn valid_patterns() {
        for (s, literal) in [
            ("a", true),
            ("a.b.c", true),
            ("*", false),
            (">", false),
            ("a.*", false),
            ("a.>", false),
            ("*.*.>", false),
            ("a.*.c", false),
        ] {
            let p = pattern(s);
            assert_eq!(p.as_str(), s);
            assert_eq!(p.to_string(), s);
            assert_eq!(p.is_literal(), literal, "{s:?}");
        }
    }

    #[test]
    fn invalid_patterns() {
        assert_eq!(pattern_reason(""), "empty");
        assert_eq!(pattern_reason("a..>"), "empty token at position 2");
        assert_eq!(pattern_reason("a.>.b"), "`>` must be the last token");
        assert_eq!(pattern_reason(">.>"), "`>` must be the last token");
        assert!(pattern_reason("a*.b").starts_with("`*` must be a whole token"));
        assert!(pattern_reason("a.b>").starts_with("`>` must be a whole token"));
        assert_eq!(pattern_reason("a .b"), "contains a space");
        assert_eq!(
            pattern_reason(&"a".repeat(MAX_SUBJECT_LEN + 1)),
            "longer than 255 bytes"
        );
    }

    #[test]
    fn matching() {
        let cases: &[(&str, &str, bool)] = &[
            ("a.b.c", "a.b.c", true),
            ("a.b.c", "a.b", false),
            ("a.b.c", "a.b.c.d", false),
            ("a.*.c", "a.b.c", true),
            ("a.*.c", "a.x.c", true),
            ("a.*.c", "a.c", false),
            ("a.*.c", "a.b.b.c", false),
            ("a.*.c", "a.b.d", false),
            ("a.>", "a.b", true),
            ("a.>", "a.b.c.d", true),
            ("a.>", "a", false),
            ("a.>", "b.c", false),
            (">", "a", true),
            (">", "a.b.c", true),
            ("*", "a", true),
            ("*", "a.b", false),
            ("*.>", "a.b", true),
            ("*.>", "a", false),
            ("*.*", "a.b", true),
            ("*.*", "a", false),
            ("a.*", "a", false),
            ("a.*", "ab.c", false),
            ("a", "ab", false),
        ];
        for &(p, s, expected) in cases {
            assert_eq!(pattern(p).matches(s), expected, "{p:?} on {s:?}");
        }
    }

    #[test]
    fn matching_an_invalid_subject_does_not_panic() {
        for p in ["a.*", ">", "*", "a.>", "a"] {
            for s in ["", ".", "a..", "..b", "a b"] {
                let _ = pattern(p).matches(s);
            }
        }
    }
}
