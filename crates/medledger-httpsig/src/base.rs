//! The signature base of RFC 9421 §2.5: the exact bytes that are signed.

use crate::AuthError;

/// The name of the last line of every signature base (RFC 9421 §2.3).
const SIGNATURE_PARAMS_COMPONENT: &str = "@signature-params";

/// Builds the RFC 9421 §2.5 signature base.
///
/// One line `"<name>": <value>` per covered component, in the order given, then
/// `"@signature-params": <signature_params>`, where `signature_params` is the serialised inner
/// list of covered components with its parameters, exactly as in `Signature-Input` after the
/// label. Lines are separated by `\n`; the last has none.
///
/// Component names must be lowercase field names or derived components (`@…`), without
/// component parameters; values must be non-empty visible ASCII (spaces allowed), so that no
/// value can forge a line of its own.
pub fn signature_base(components: &[(&str, &str)], signature_params: &str) -> Result<String, AuthError> {
    let mut base = String::with_capacity(
        components.iter().map(|(name, value)| name.len() + value.len() + 5).sum::<usize>()
            + SIGNATURE_PARAMS_COMPONENT.len()
            + signature_params.len()
            + 4,
    );
    for (name, value) in components {
        check_name(name)?;
        check_value(name, value)?;
        push_line(&mut base, name, value);
        base.push('\n');
    }
    check_value(SIGNATURE_PARAMS_COMPONENT, signature_params)?;
    push_line(&mut base, SIGNATURE_PARAMS_COMPONENT, signature_params);
    Ok(base)
}

fn push_line(base: &mut String, name: &str, value: &str) {
    base.push('"');
    base.push_str(name);
    base.push_str("\": ");
    base.push_str(value);
}

/// A component name serialises as an RFC 8941 string without escapes: lowercase letters,
/// digits and `-_.`, with `@` only in front of a derived component.
fn check_name(name: &str) -> Result<(), AuthError> {
    let body = name.strip_prefix('@').unwrap_or(name);
    let valid = !body.is_empty()
        && name != SIGNATURE_PARAMS_COMPONENT
        && body
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"-_.".contains(&byte));
    if valid { Ok(()) } else { Err(AuthError::UnknownComponent(name.to_owned())) }
}

fn check_value(name: &str, value: &str) -> Result<(), AuthError> {
    let reason = if value.is_empty() {
        "the value is empty"
    } else if !value.bytes().all(|byte| (b' '..=b'~').contains(&byte)) {
        "the value must be visible ASCII characters and spaces"
    } else {
        return Ok(());
    };
    Err(AuthError::BadComponentValue { component: name.to_owned(), reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_in_order_and_no_final_newline() {
        let base = signature_base(&[("@method", "GET"), ("@query", "?")], "(\"@method\" \"@query\")")
            .expect("valid components");
        assert_eq!(base, "\"@method\": GET\n\"@query\": ?\n\"@signature-params\": (\"@method\" \"@query\")");
    }

    #[test]
    fn values_that_could_forge_a_line_are_refused() {
        for value in ["GET\n\"@path\": /", "GET\r", "caf\u{e9}", "", "\t"] {
            let result = signature_base(&[("@method", value)], "()");
            assert!(
                matches!(result, Err(AuthError::BadComponentValue { ref component, .. }) if component == "@method"),
                "{value:?} gave {result:?}"
            );
        }
    }

    #[test]
    fn names_outside_the_string_alphabet_are_refused() {
        for name in ["Date", "\"date\"", "@", "", "@signature-params", "date;sf", "a b"] {
            let result = signature_base(&[(name, "x")], "()");
            assert_eq!(result, Err(AuthError::UnknownComponent(name.to_owned())), "{name:?}");
        }
    }
}
