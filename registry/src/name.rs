//! The naming rules.

use crate::DirectoryError;

/// The longest name (and prefix), in bytes.
pub const MAX_NAME_LEN: usize = 255;

fn invalid(name: &str, reason: impl Into<String>) -> DirectoryError {
    let mut shown = name.to_owned();
    if shown.len() > 300 {
        let mut cut = 300;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
    }
    DirectoryError::InvalidName {
        name: shown,
        reason: reason.into(),
    }
}

fn check_chars(name: &str, allow_slash: bool) -> Result<(), DirectoryError> {
    for (i, c) in name.char_indices() {
        let ok =
            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') || (allow_slash && c == '/');
        if !ok {
            return Err(invalid(
                name,
                format!(
                    "character {c:?} at byte {i} is not allowed (segments use A-Z a-z 0-9 . _ -, separated by /)"
                ),
            ));
        }
    }
    Ok(())
}

/// Checks a name: 1 to 255 bytes, segments separated by `/`, each
/// segment non-empty and made of `A-Z a-z 0-9 . _ -`.
///
/// ```
/// use farcall_registry::validate_name;
///
/// assert!(validate_name("shop/cart-2").is_ok());
/// assert!(validate_name("shop//cart").is_err());
/// assert!(validate_name("").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<(), DirectoryError> {
    if name.is_empty() {
        return Err(invalid(name, "a name cannot be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(
            name,
            format!("{} bytes long; at most {MAX_NAME_LEN}", name.len()),
        ));
    }
    check_chars(name, true)?;
    if let Some(i) = name.split('/').position(str::is_empty) {
        let which = if i == 0 {
            "leading '/'".to_owned()
        } else if name.ends_with('/') && i == name.split('/').count() - 1 {
            "trailing '/'".to_owned()
        } else {
            "'//'".to_owned()
        };
        return Err(invalid(
            name,
            format!("empty segment ({which}): every segment between '/' needs a character"),
        ));
    }
    Ok(())
}

/// Checks a prefix for `list` and `watch`: empty (everything) or up to
/// 255 bytes of the characters names use (it may end in `/`).
pub fn validate_prefix(prefix: &str) -> Result<(), DirectoryError> {
    if prefix.len() > MAX_NAME_LEN {
        return Err(invalid(
            prefix,
            format!("prefix {} bytes long; at most {MAX_NAME_LEN}", prefix.len()),
        ));
    }
    check_chars(prefix, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "a/b", "A.b_c-9/x", &"x".repeat(255), "..", "a/.b"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "a b",
            "é",
            &"x".repeat(256),
            "a\0",
            "a:b",
        ] {
            assert!(
                matches!(validate_name(bad), Err(DirectoryError::InvalidName { .. })),
                "{bad}"
            );
        }
        assert!(validate_prefix("").is_ok());
        assert!(validate_prefix("shop/").is_ok());
        assert!(validate_prefix("a b").is_err());
    }
}
