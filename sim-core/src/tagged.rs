//! Reading tagged tables (`{ dist = "uniform", min_ms = 1, max_ms = 3 }`)
//! so that errors name the exact field. Serde's internally tagged enums
//! buffer their content, which hides the path of an error inside them (a
//! wrong type in `rate_per_s` would be blamed on the whole `arrival`
//! table). Instead each tagged enum is read as a flat table of optional
//! fields, whose every field serde tracks, and then checked here: the tag
//! picks which fields are required and which are allowed.

/// The fields present in a flat table, by name.
pub(crate) type Present = Vec<&'static str>;

/// Checks that every present field is among `allowed` for the variant
/// `what` (e.g. "an exponential `dist`").
pub(crate) fn only(present: &Present, allowed: &[&str], what: &str) -> Result<(), String> {
    match present.iter().find(|f| !allowed.contains(f)) {
        None => Ok(()),
        Some(f) => {
            let takes = allowed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ");
            Err(format!("`{f}` does not belong to {what}, which takes {takes}"))
        }
    }
}

/// Unwraps a required field.
pub(crate) fn need<T>(value: Option<T>, field: &str, what: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("{what} needs `{field}`"))
}

/// Lists the names of the fields that are `Some`.
macro_rules! present {
    ($raw:expr, $($field:ident),*) => {{
        let mut v: $crate::tagged::Present = Vec::new();
        $(if $raw.$field.is_some() { v.push(stringify!($field)); })*
        v
    }};
}
pub(crate) use present;
