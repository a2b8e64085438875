//! Temporary stand-ins for `crate::many` and `sim_core::stats`, written
//! against the signatures of the contract (issue 16's interfaces) until the
//! lead's shared commit lands; removed by the merge.
#![allow(dead_code)]

pub mod many {
    use anyhow::Result;
    use serde::{Deserialize, Serialize};
    use std::path::Path;

    pub struct Pool {
        pool: rayon::ThreadPool,
    }

    impl Pool {
        pub fn new(jobs: Option<usize>) -> Result<Pool> {
            let mut b = rayon::ThreadPoolBuilder::new();
            if let Some(j) = jobs {
                b = b.num_threads(j);
            }
            Ok(Pool { pool: b.build()? })
        }
        pub fn jobs(&self) -> usize {
            self.pool.current_num_threads()
        }
        pub fn map<I: Send, T: Send>(&self, items: Vec<I>, f: impl Fn(I) -> T + Sync + Send) -> Vec<T> {
            use rayon::prelude::*;
            self.pool.install(|| items.into_par_iter().map(f).collect())
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Shard {
        pub index: usize,
        pub count: usize,
    }

    impl Shard {
        pub fn owns(&self, unit: usize) -> bool {
            unit % self.count == self.index - 1
        }
    }

    impl std::str::FromStr for Shard {
        type Err = String;
        fn from_str(s: &str) -> Result<Shard, String> {
            let (i, n) = s.split_once('/').ok_or_else(|| format!("`{s}`: expected I/N"))?;
            let (index, count): (usize, usize) =
                (i.parse().map_err(|_| format!("`{s}`: bad I"))?, n.parse().map_err(|_| format!("`{s}`: bad N"))?);
            if count == 0 || index == 0 || index > count {
                return Err(format!("`{s}`: expected 1 <= I <= N"));
            }
            Ok(Shard { index, count })
        }
    }

    pub struct Meter;

    impl Meter {
        pub fn start(_label: &str, _total: Option<u64>) -> Meter {
            Meter
        }
        pub fn tick(&self, _violated: bool) {}
        pub fn finish(self) {}
    }

    #[derive(Serialize, Deserialize)]
    pub struct Partial {
        pub asyncsim: String,
        pub command: String,
        pub plan: serde_json::Value,
        pub shard: [usize; 2],
        pub runs: Vec<serde_json::Value>,
    }

    impl Partial {
        pub fn write(&self, dir: &Path) -> Result<()> {
            reports::prepare_dir(dir, false)?;
            let path = reports::out_path(dir, "partial.json")?;
            reports::tidy_dir(dir, &["partial.json"])?;
            let mut text = serde_json::to_string(self)?;
            text.push('\n');
            reports::write_atomic(&path, text.as_bytes())?;
            Ok(())
        }
        pub fn read(dir: &Path) -> Result<Partial> {
            Ok(serde_json::from_str(&std::fs::read_to_string(dir.join("partial.json"))?)?)
        }
    }
}

pub mod stats {
    use serde::Serialize;

    #[derive(Clone, Copy, Debug, Serialize, PartialEq)]
    pub struct Estimate {
        pub n: usize,
        pub mean: f64,
        pub std_dev: f64,
        pub half_width: f64,
        pub low: f64,
        pub high: f64,
        pub level: f64,
    }

    fn from(n: usize, mean: f64, var_of_mean: f64, df: f64, std_dev: f64, level: f64) -> Estimate {
        let hw = if n < 2 { f64::NAN } else { t_quantile(0.5 + level / 2.0, df) * var_of_mean.sqrt() };
        Estimate { n, mean, std_dev, half_width: hw, low: mean - hw, high: mean + hw, level }
    }

    fn mv(x: &[f64]) -> (f64, f64) {
        let n = x.len() as f64;
        let m = x.iter().sum::<f64>() / n;
        let v = x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0);
        (m, v)
    }

    pub fn estimate(samples: &[f64], level: f64) -> Estimate {
        let n = samples.len();
        let (m, v) = mv(samples);
        from(n, m, v / n as f64, n as f64 - 1.0, v.sqrt(), level)
    }

    pub fn paired(a: &[f64], b: &[f64], level: f64) -> Estimate {
        let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
        estimate(&d, level)
    }

    pub fn unpaired(a: &[f64], b: &[f64], level: f64) -> Estimate {
        let (ma, va) = mv(a);
        let (mb, vb) = mv(b);
        let (na, nb) = (a.len() as f64, b.len() as f64);
        let (sa, sb) = (va / na, vb / nb);
        let df = (sa + sb).powi(2) / (sa * sa / (na - 1.0) + sb * sb / (nb - 1.0));
        from(a.len().min(b.len()), ma - mb, sa + sb, df, (va + vb).sqrt(), level)
    }

    /// Cornish-Fisher approximation of Student's t quantile: a stand-in.
    pub fn t_quantile(p: f64, df: f64) -> f64 {
        let z = normal_quantile(p);
        let g1 = (z.powi(3) + z) / 4.0;
        let g2 = (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / 96.0;
        let g3 = (3.0 * z.powi(7) + 19.0 * z.powi(5) + 17.0 * z.powi(3) - 15.0 * z) / 384.0;
        z + g1 / df + g2 / (df * df) + g3 / df.powi(3)
    }

    fn normal_quantile(p: f64) -> f64 {
        // Acklam's rational approximation.
        let a = [
            -39.696_830_286_653_76,
            220.946_098_424_520_5,
            -275.928_510_446_968_7,
            138.357_751_867_269,
            -30.664_798_066_147_16,
            2.506_628_277_459_239,
        ];
        let b = [
            -54.476_098_798_224_06,
            161.585_836_858_040_9,
            -155.698_979_859_886_6,
            66.801_311_887_719_72,
            -13.280_681_552_885_72,
        ];
        let c = [
            -0.007_784_894_002_430_293,
            -0.322_396_458_041_136_5,
            -2.400_758_277_161_838,
            -2.549_732_539_343_734,
            4.374_664_141_464_968,
            2.938_163_982_698_783,
        ];
        let d = [0.007_784_695_709_041_462, 0.322_467_129_070_039_8, 2.445_134_137_142_996, 3.754_408_661_907_416];
        let q = p.min(1.0 - p);
        let x = if q < 0.02425 {
            let r = (-2.0 * q.ln()).sqrt();
            -(((((c[0] * r + c[1]) * r + c[2]) * r + c[3]) * r + c[4]) * r + c[5])
                / ((((d[0] * r + d[1]) * r + d[2]) * r + d[3]) * r + 1.0)
        } else {
            let r = q - 0.5;
            let s = r * r;
            (((((a[0] * s + a[1]) * s + a[2]) * s + a[3]) * s + a[4]) * s + a[5]) * r
                / (((((b[0] * s + b[1]) * s + b[2]) * s + b[3]) * s + b[4]) * s + 1.0)
        };
        if p < 0.5 {
            x
        } else {
            -x
        }
    }

    pub fn within(e: &Estimate, relative: f64) -> bool {
        e.half_width <= relative * e.mean.abs()
    }
}
