//! Validated scalar types for scenario fields. Each refuses an impossible
//! value while the file is being read, so the error can name the field and
//! its line (a probability of 1.5, a negative rate) instead of surfacing as a
//! strange result later.

use serde::{Deserialize, Deserializer, Serialize};

macro_rules! checked_f64 {
    ($(#[$doc:meta])* $name:ident, $check:expr, $expected:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub f64);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = f64::deserialize(d)?;
                let ok: fn(f64) -> bool = $check;
                if v.is_finite() && ok(v) {
                    Ok($name(v))
                } else {
                    Err(serde::de::Error::custom(format!(
                        concat!("expected ", $expected, ", got {}"),
                        v
                    )))
                }
            }
        }
    };
}

checked_f64!(
    /// A probability: a number from 0 to 1.
    Probability,
    |v| (0.0..=1.0).contains(&v),
    "a probability between 0 and 1"
);
checked_f64!(
    /// A duration in milliseconds: from zero to 1e12 (about 31 years), so
    /// that time arithmetic in nanoseconds can never overflow.
    Millis,
    |v| (0.0..=1e12).contains(&v),
    "a duration in milliseconds from 0 to 1e12 (about 31 years)"
);
checked_f64!(
    /// A rate per second: above zero.
    Rate,
    |v| v > 0.0,
    "a rate per second above 0"
);
checked_f64!(
    /// A rate per second that may be zero (an idle period).
    RateOrZero,
    |v| v >= 0.0,
    "a rate per second of 0 or more"
);
checked_f64!(
    /// A number above zero (a shape, an exponent, a factor).
    Positive,
    |v| v > 0.0,
    "a number above 0"
);
