//! The rule for names a scenario gives: nodes, subscriptions, variants,
//! consumer groups, effect domains and dedup stores. They become column
//! values in CSV files, parts of file names (`trace-VARIANT.csv`) and keys
//! in dotted paths (`--set variants.NAME...`, `domains.NAME.lost`), so
//! they hold only ASCII letters, digits, `_` and `-`, and start with a
//! letter or digit: no separator, no quote, no dot, no path.

/// What a name may hold, for error messages.
pub const NAME_RULE: &str = "only ASCII letters, digits, `_` and `-`, starting with a letter or digit";

/// Whether `name` follows the rule: `[A-Za-z0-9][A-Za-z0-9_-]*`.
pub fn is_valid(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `Ok` if `name` follows the rule, else a message that says what `what`
/// (`a node name`, `a variant name`, ...) may hold.
pub fn check(what: &str, name: &str) -> Result<(), String> {
    if is_valid(name) {
        Ok(())
    } else {
        Err(format!("{what} must hold {NAME_RULE}; `{}` does not", name.escape_debug()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_hold_letters_digits_underscores_and_dashes() {
        for ok in ["a", "web", "orders-db", "group_1", "0", "9lives", "A-b_C"] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in
            ["", "-x", "_x", "a.b", "a b", "a,b", "a\"b", "a/b", "..", "logs/../../../ESCAPED", "=1+2", "é", "a\n"]
        {
            assert!(!is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn the_message_says_what_is_allowed() {
        let m = check("a variant name", "a/b").unwrap_err();
        assert!(m.contains("a variant name") && m.contains("letters, digits") && m.contains("`a/b`"), "{m}");
    }
}
