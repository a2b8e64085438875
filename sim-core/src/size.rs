//! Sizes in bytes and rates in bits: what a record weighs (`message_bytes`,
//! a number or a distribution) and what a link carries per second
//! (`bandwidth`).
//!
//! A size distribution is written like a latency distribution, with the
//! same `dist` names, its fields in bytes instead of milliseconds:
//! `{ dist = "uniform", min = 100, max = 4000 }`, `{ dist = "lognormal",
//! mean = 1024, stddev = 512 }`, `{ dist = "constant", bytes = 1024 }`,
//! `{ dist = "exponential", mean = 1024 }`, `{ dist = "normal", mean =
//! 1024, stddev = 100 }`, `{ dist = "pareto", scale = 500, shape = 2 }`.
//! It draws with the latency samplers of [`crate::dist`] (a byte counts as
//! a nanosecond there), and each draw is rounded to a whole number of
//! bytes, at least 1.
//!
//! A bandwidth is an integer number of bytes per second, or a string with
//! a unit: `"1Gbps"`, `"100Mbps"`, `"10kbps"`, `"800bps"` (bits per second,
//! powers of 1,000) or `"125MB/s"`, `"1GB/s"`, `"64kB/s"`, `"500B/s"`
//! (bytes per second). It is kept in bits per second, and the time a
//! message of `n` bytes takes to transmit is `8n / bandwidth`, rounded up
//! to a whole nanosecond, in integer arithmetic.

use crate::dist::{Dist, Sampler};
use crate::rng::SimRng;
use crate::time::Duration;
use crate::units::{Millis, Positive};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The size of a producer's records: one number, or a distribution.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageBytes {
    /// Every record has this size (no draw).
    Fixed(u32),
    /// Each record's size is drawn.
    Drawn(SizeDist),
}

/// A size distribution as written (fields in bytes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeDist {
    /// The distribution's name, as for latencies.
    pub dist: SizeKind,
    /// A constant's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<f64>,
    /// A uniform's least size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// A uniform's largest size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The mean (exponential, normal, lognormal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// The standard deviation (normal, lognormal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stddev: Option<f64>,
    /// A pareto's least size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// A pareto's tail index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<f64>,
}

/// The names of the size distributions (those of latencies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SizeKind {
    /// Always `bytes`.
    Constant,
    /// Uniform in `min..max`.
    Uniform,
    /// Exponential with `mean`.
    Exponential,
    /// Normal with `mean` and `stddev`, clamped at 1 byte.
    Normal,
    /// Lognormal with `mean` and `stddev` (of the size itself).
    Lognormal,
    /// Pareto from `scale` with tail index `shape`.
    Pareto,
}

/// Largest size a field may give: 1 GiB.
const MAX_FIELD: f64 = (1u64 << 30) as f64;

impl SizeDist {
    /// The latency distribution that draws this one's sizes as nanoseconds,
    /// or why the table is wrong.
    pub fn to_dist(&self) -> Result<Dist, String> {
        use crate::tagged::{need, only, present};
        let p = present!(self, bytes, min, max, mean, stddev, scale, shape);
        for (name, v) in [
            ("bytes", self.bytes),
            ("min", self.min),
            ("max", self.max),
            ("mean", self.mean),
            ("stddev", self.stddev),
            ("scale", self.scale),
        ] {
            if let Some(v) = v.filter(|v| !(v.is_finite() && (0.0..=MAX_FIELD).contains(v))) {
                return Err(format!("`{name}` must be a number of bytes from 0 to {MAX_FIELD}, got {v}"));
            }
        }
        // A byte is a nanosecond to the sampler: 1e-6 ms.
        let b = |v: f64| Millis(v * 1e-6);
        let mean_sd = ["mean", "stddev"];
        let d = match self.dist {
            SizeKind::Constant => {
                only(&p, &["bytes"], "a constant size `dist`")?;
                Dist::Constant { ms: b(need(self.bytes, "bytes", "a constant size `dist`")?) }
            }
            SizeKind::Uniform => {
                let w = "a uniform size `dist`";
                only(&p, &["min", "max"], w)?;
                let (min, max) = (need(self.min, "min", w)?, need(self.max, "max", w)?);
                if min > max {
                    return Err(format!("min ({min}) must not exceed max ({max})"));
                }
                Dist::Uniform { min_ms: b(min), max_ms: b(max) }
            }
            SizeKind::Exponential => {
                only(&p, &["mean"], "an exponential size `dist`")?;
                Dist::Exponential { mean_ms: b(need(self.mean, "mean", "an exponential size `dist`")?) }
            }
            SizeKind::Normal | SizeKind::Lognormal => {
                let w = "a normal or lognormal size `dist`";
                only(&p, &mean_sd, w)?;
                let (mean, sd) = (need(self.mean, "mean", w)?, need(self.stddev, "stddev", w)?);
                if self.dist == SizeKind::Normal {
                    Dist::Normal { mean_ms: b(mean), stddev_ms: b(sd) }
                } else if mean <= 0.0 {
                    return Err("a lognormal mean must be above 0".into());
                } else {
                    Dist::Lognormal { mean_ms: b(mean), stddev_ms: b(sd) }
                }
            }
            SizeKind::Pareto => {
                let w = "a pareto size `dist`";
                only(&p, &["scale", "shape"], w)?;
                let (scale, shape) = (need(self.scale, "scale", w)?, need(self.shape, "shape", w)?);
                if scale <= 0.0 || !(shape.is_finite() && shape > 0.0) {
                    return Err("a pareto size needs a scale and a shape above 0".into());
                }
                Dist::Pareto { scale_ms: b(scale), shape: Positive(shape) }
            }
        };
        Ok(d)
    }
}

impl MessageBytes {
    /// Checks the value: at least one byte, a well-formed distribution.
    pub fn check(&self) -> Result<(), String> {
        match self {
            MessageBytes::Fixed(0) => Err("expected at least 1".into()),
            MessageBytes::Fixed(_) => Ok(()),
            MessageBytes::Drawn(d) => d.to_dist().map(|_| ()),
        }
    }

    /// A sampler of sizes (`None` for a fixed size, which draws nothing).
    /// Call [`MessageBytes::check`] first.
    pub fn sampler(&self) -> Option<SizeSampler> {
        match self {
            MessageBytes::Fixed(_) => None,
            MessageBytes::Drawn(d) => d.to_dist().ok().map(|d| SizeSampler(d.sampler())),
        }
    }

    /// The fixed size, or a drawn one's mean (rounded, at least 1).
    pub fn mean(&self) -> u32 {
        match self {
            MessageBytes::Fixed(n) => *n,
            MessageBytes::Drawn(d) => d.to_dist().map_or(1.0, |d| d.mean_ms() * 1e6).round().clamp(1.0, 4e9) as u32,
        }
    }
}

/// Draws record sizes: whole bytes, at least 1, from a stream of their own.
#[derive(Debug, Clone)]
pub struct SizeSampler(Sampler);

/// A stream beside `rng` for `purpose`: the same seed, another stream
/// number, from its start. Drawing from it shifts none of `rng`'s draws
/// (nor any other component's), so a new kind of draw leaves every other
/// figure of a run where it was.
pub fn side_stream(rng: &SimRng, purpose: &str) -> SimRng {
    let mut side = rng.clone();
    side.set_stream(rng.get_stream() ^ crate::rng::stable_hash(purpose.as_bytes()));
    side.set_word_pos(0);
    side
}

impl SizeSampler {
    /// One size, in bytes.
    pub fn draw(&self, rng: &mut SimRng) -> u32 {
        self.0.sample_ns(rng).clamp(1, u64::from(u32::MAX)) as u32
    }
}

impl Serialize for MessageBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MessageBytes::Fixed(n) => s.serialize_u32(*n),
            MessageBytes::Drawn(d) => d.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for MessageBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MessageBytes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a number of bytes, or a size distribution such as { dist = \"uniform\", min = 100, max = 4000 }",
                )
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MessageBytes, E> {
                u32::try_from(v)
                    .map(MessageBytes::Fixed)
                    .map_err(|_| E::custom(format!("expected from 1 to {}, got {v}", u32::MAX)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MessageBytes, E> {
                u32::try_from(v)
                    .map(MessageBytes::Fixed)
                    .map_err(|_| E::custom(format!("expected from 1 to {}, got {v}", u32::MAX)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MessageBytes, A::Error> {
                let d = SizeDist::deserialize(de::value::MapAccessDeserializer::new(map))?;
                d.to_dist().map_err(de::Error::custom)?;
                Ok(MessageBytes::Drawn(d))
            }
        }
        d.deserialize_any(V)
    }
}

/// A link's bandwidth, in bits per second (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bandwidth(pub u64);

impl Bandwidth {
    /// How long `bytes` bytes take to transmit, rounded up to a nanosecond.
    #[inline]
    pub fn transmit_ns(self, bytes: u64) -> Duration {
        let ns = (u128::from(bytes) * 8 * 1_000_000_000).div_ceil(u128::from(self.0.max(1)));
        ns.min(1_000_000_000_000_000_000) as Duration
    }

    /// Reads `"1Gbps"`, `"125MB/s"` and the like (see the module doc).
    pub fn parse(text: &str) -> Result<Bandwidth, String> {
        let t = text.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (num, unit) = (t[..split].trim(), t[split..].trim());
        let units: [(&str, f64); 8] = [
            ("bps", 1.0),
            ("kbps", 1e3),
            ("Mbps", 1e6),
            ("Gbps", 1e9),
            ("B/s", 8.0),
            ("kB/s", 8e3),
            ("MB/s", 8e6),
            ("GB/s", 8e9),
        ];
        let bad = || {
            format!(
                "expected a bandwidth such as \"1Gbps\", \"100Mbps\", \"125MB/s\" (units bps, kbps, Mbps, Gbps, B/s, \
                 kB/s, MB/s, GB/s) or a number of bytes per second, got {text:?}"
            )
        };
        let factor = units.iter().find(|(u, _)| *u == unit).map(|(_, f)| *f).ok_or_else(bad)?;
        let n: f64 = num.parse().map_err(|_| bad())?;
        let bits = (n * factor).round();
        if !(1.0..=1e18).contains(&bits) {
            return Err(format!("a bandwidth must be from 1 bit per second to 1e18, got {text:?}"));
        }
        Ok(Bandwidth(bits as u64))
    }
}

impl Serialize for Bandwidth {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}bps", self.0))
    }
}

impl<'de> Deserialize<'de> for Bandwidth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Bandwidth;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a bandwidth such as \"1Gbps\" or \"125MB/s\", or a number of bytes per second")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bandwidth, E> {
                match v.checked_mul(8).filter(|b| (1..=1_000_000_000_000_000_000).contains(b)) {
                    Some(bits) => Ok(Bandwidth(bits)),
                    None => Err(E::custom(format!("expected from 1 to 1.25e17 bytes per second, got {v}"))),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bandwidth, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("expected a positive bandwidth, got {v}")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Bandwidth, E> {
                Bandwidth::parse(&format!("{v}B/s")).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bandwidth, E> {
                Bandwidth::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(toml_text: &str) -> Result<MessageBytes, String> {
        #[derive(Deserialize)]
        struct T {
            m: MessageBytes,
        }
        toml::from_str::<T>(toml_text).map(|t| t.m).map_err(|e| e.to_string())
    }

    #[test]
    fn a_size_is_a_number_or_a_distribution() {
        assert_eq!(read("m = 200"), Ok(MessageBytes::Fixed(200)));
        let d = read("m = { dist = \"uniform\", min = 100, max = 300 }").expect("a uniform size");
        assert_eq!(d.mean(), 200);
        assert!(read("m = { dist = \"uniform\", min = 300, max = 100 }").is_err());
        let e = read("m = { dist = \"uniform\", min_ms = 1, max = 3 }").expect_err("a latency field");
        assert!(e.contains("min_ms"), "{e}");
        assert!(read("m = { dist = \"normal\", mean = 10 }").expect_err("no stddev").contains("stddev"));
        assert!(read("m = -1").is_err());
        assert!(MessageBytes::Fixed(0).check().is_err());
    }

    #[test]
    fn drawn_sizes_are_whole_bytes_of_at_least_one_with_the_stated_mean() {
        let d = read("m = { dist = \"normal\", mean = 2, stddev = 5 }").expect("a normal size");
        let s = d.sampler().expect("a sampler");
        let mut rng = crate::rng::stream(1, "sizes");
        assert!((0..10_000).all(|_| s.draw(&mut rng) >= 1), "clamped at 1 byte");
        let e = read("m = { dist = \"exponential\", mean = 1000 }").expect("exponential");
        let s = e.sampler().expect("a sampler");
        let n = 100_000;
        let mean = (0..n).map(|_| f64::from(s.draw(&mut rng))).sum::<f64>() / f64::from(n);
        // The sample mean's standard error is 1000 / sqrt(n) (about 3.2): allow 5 of them.
        assert!((mean - 1000.0).abs() < 5.0 * 1000.0 / f64::from(n).sqrt(), "mean {mean}");
        assert!(MessageBytes::Fixed(7).sampler().is_none(), "a fixed size draws nothing");
    }

    #[test]
    fn a_side_stream_is_its_own_and_shifts_nothing() {
        use rand::RngCore;
        let mut a = crate::rng::stream(3, "node:p");
        let mut b = crate::rng::stream(3, "node:p");
        let mut side = side_stream(&a, "sizes");
        let x: Vec<u64> = (0..4).map(|_| side.next_u64()).collect();
        assert_eq!(a.next_u64(), b.next_u64(), "the parent's draws are unchanged");
        let mut again = side_stream(&b, "sizes");
        assert_eq!(x, (0..4).map(|_| again.next_u64()).collect::<Vec<_>>(), "from its start, whenever made");
        assert_ne!(x[0], b.next_u64());
    }

    #[test]
    fn bandwidths_read_bits_or_bytes_per_second() {
        assert_eq!(Bandwidth::parse("1Gbps"), Ok(Bandwidth(1_000_000_000)));
        assert_eq!(Bandwidth::parse("125MB/s"), Ok(Bandwidth(1_000_000_000)));
        assert_eq!(Bandwidth::parse("2.5 kbps"), Ok(Bandwidth(2_500)));
        assert!(Bandwidth::parse("1Gb").is_err());
        assert!(Bandwidth::parse("0bps").is_err());
        #[derive(Deserialize)]
        struct T {
            b: Bandwidth,
        }
        assert_eq!(toml::from_str::<T>("b = 1000").map(|t| t.b).ok(), Some(Bandwidth(8_000)));
        assert!(toml::from_str::<T>("b = \"fast\"").is_err());
    }

    #[test]
    fn transmission_takes_eight_bits_per_byte_over_the_bandwidth_rounded_up() {
        let gig = Bandwidth(1_000_000_000);
        assert_eq!(gig.transmit_ns(1), 8);
        assert_eq!(gig.transmit_ns(16_384), 131_072);
        assert_eq!(Bandwidth(3).transmit_ns(1), 2_666_666_667, "rounded up");
        assert_eq!(Bandwidth(1).transmit_ns(u64::MAX), 1_000_000_000_000_000_000, "bounded");
    }
}
