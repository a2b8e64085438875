//! The text of a sweep's output: the terminal tables (each metric's mean
//! and interval per point and variant; each variant's paired and unpaired
//! difference from the baseline), and the CSV files. Numbers in the tables
//! are rounded to four significant digits; the CSV files hold them exactly
//! (Rust's shortest round-trip form), with an empty field for no value.

use super::analysis::{Comparison, Table};
use super::plan::Plan;
use super::stats::Estimate;
use reports::csv_text;
use std::fmt::Write as _;

/// A figure for the tables: four significant digits, `-` for none.
pub fn short(v: f64) -> String {
    if !v.is_finite() {
        return "-".to_string();
    }
    if v == 0.0 || (v.fract() == 0.0 && v.abs() < 1e9) {
        return format!("{}", v as i64);
    }
    if v.abs() < 1e-3 {
        return format!("{v:.3e}");
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{v:.digits$}")
}

/// A figure for the CSV files: exact, empty for none.
pub fn exact(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

/// Columns aligned: the first `left` columns to the left, the rest to the
/// right, each row indented by two spaces.
pub fn align(header: &[String], rows: &[Vec<String>], left: usize) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let mut line = String::new();
        for (k, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if k < left {
                let _ = write!(line, "  {cell:<w$}");
            } else {
                let _ = write!(line, "  {cell:>w$}");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The column headers of the swept parameters: each path's last part,
/// or the whole path when two would read the same.
pub fn axis_headers(plan: &Plan) -> Vec<String> {
    let last = |p: &str| p.rsplit('.').next().unwrap_or(p).to_string();
    let lasts: Vec<String> = plan.axes.iter().map(|a| last(&a.path)).collect();
    plan.axes
        .iter()
        .zip(&lasts)
        .map(|(a, l)| if lasts.iter().filter(|m| *m == l).count() > 1 { a.path.clone() } else { l.clone() })
        .collect()
}

/// The swept values of point `p`, as the tables show them.
fn point_cells(plan: &Plan, p: usize) -> Vec<String> {
    super::grammar::point_values(&plan.axes, p).into_iter().map(super::grammar::override_text).collect()
}

/// `[low, high]`.
fn interval(e: &Estimate) -> String {
    format!("[{}, {}]", short(e.low), short(e.high))
}

/// The half-width relative to the mean, as a percentage.
fn relative(e: &Estimate) -> String {
    if e.half_width.is_finite() && e.mean != 0.0 {
        format!("{:.1}%", 100.0 * e.half_width / e.mean.abs())
    } else {
        "-".to_string()
    }
}

/// Each metric's table: a row per point and variant.
pub fn estimates_text(plan: &Plan, table: &Table) -> String {
    let mut out = String::new();
    let mut header = axis_headers(plan);
    let left = header.len() + 1;
    header.extend(["variant", "n", "mean", "CI", "±"].map(String::from));
    header[left + 2] = format!("{:.0}% CI", plan.level * 100.0);
    for (m, metric) in plan.metrics.iter().enumerate() {
        let mut rows = Vec::new();
        for p in 0..plan.points() {
            for (v, name) in plan.variants.iter().enumerate() {
                let mut row = point_cells(plan, p);
                row.push(name.clone());
                match super::analysis::estimate(table.samples(p, v, m), plan.level) {
                    Some(e) => row.extend([e.n.to_string(), short(e.mean), interval(&e), relative(&e)]),
                    None => row.extend(["0", "-", "-", "-"].map(String::from)),
                }
                rows.push(row);
            }
        }
        let _ = writeln!(out, "\n{metric}");
        out.push_str(&align(&header, &rows, left));
    }
    out
}

/// The comparisons of one metric: (point, variant, comparison) for every
/// variant but the baseline, at every point.
pub type Compared = Vec<(usize, usize, Option<Comparison>)>;

/// Each metric's table of differences from the baseline.
pub fn comparisons_text(plan: &Plan, compared: &[(String, Compared)]) -> String {
    let level = format!("{:.0}%", plan.level * 100.0);
    let mut out = format!(
        "\ndifferences from `{}`, seed by seed (common random numbers): the paired interval, \
         and the unpaired (Welch) one the same runs would give if they were independent\n",
        plan.baseline
    );
    let mut header = axis_headers(plan);
    let left = header.len() + 1;
    let heads = [
        "variant".to_string(),
        "n".into(),
        "mean diff".into(),
        format!("paired {level} CI"),
        format!("unpaired {level} CI"),
        "narrower".into(),
    ];
    header.extend(heads);
    for (metric, rows_of) in compared {
        let rows: Vec<Vec<String>> = rows_of
            .iter()
            .map(|(p, v, c)| {
                let mut row = point_cells(plan, *p);
                row.push(plan.variants[*v].clone());
                match c {
                    Some(c) => row.extend([
                        c.paired.n.to_string(),
                        signed(c.paired.mean),
                        interval(&c.paired),
                        interval(&c.unpaired),
                        c.narrowing.map_or("-".to_string(), |r| format!("{r:.1}x")),
                    ]),
                    None => row.extend(["0", "-", "-", "-", "-"].map(String::from)),
                }
                row
            })
            .collect();
        let _ = writeln!(out, "\n{metric}");
        out.push_str(&align(&header, &rows, left));
        if let Some(line) = narrowing_line(rows_of) {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// `+x` for a positive figure.
fn signed(v: f64) -> String {
    if v > 0.0 {
        format!("+{}", short(v))
    } else {
        short(v)
    }
}

/// How much narrower the paired intervals of one metric are: the median
/// and the range over its comparisons.
pub fn narrowing_line(compared: &Compared) -> Option<String> {
    let mut r: Vec<f64> = compared.iter().filter_map(|(_, _, c)| c.as_ref()?.narrowing).collect();
    if r.is_empty() {
        return None;
    }
    r.sort_by(f64::total_cmp);
    let median = if r.len() % 2 == 1 { r[r.len() / 2] } else { (r[r.len() / 2 - 1] + r[r.len() / 2]) / 2.0 };
    Some(format!(
        "paired intervals {median:.1}x narrower than unpaired (median of {}; {:.1}x to {:.1}x)",
        r.len(),
        r[0],
        r[r.len() - 1]
    ))
}

/// CSV header cells of the swept parameters (their full paths).
fn axis_columns(plan: &Plan) -> String {
    plan.axes.iter().map(|a| format!("{},", csv_text(&a.path))).collect()
}

/// The swept values of point `p`, as CSV cells.
fn point_columns(plan: &Plan, p: usize) -> String {
    point_cells(plan, p).iter().map(|c| format!("{c},")).collect()
}

/// `sweep.csv`: a row per point, variant and metric.
pub fn sweep_csv(plan: &Plan, table: &Table) -> String {
    let mut out = format!("{}variant,metric,n,mean,std_dev,half_width,low,high\n", axis_columns(plan));
    for p in 0..plan.points() {
        for (v, name) in plan.variants.iter().enumerate() {
            for (m, metric) in plan.metrics.iter().enumerate() {
                let e = super::analysis::estimate(table.samples(p, v, m), plan.level);
                let cells = e.map_or_else(
                    || ",,,,,".to_string(),
                    |e| {
                        let f = [e.mean, e.std_dev, e.half_width, e.low, e.high].map(exact);
                        format!("{},{}", e.n, f.join(","))
                    },
                );
                let _ = writeln!(out, "{}{},{},{cells}", point_columns(plan, p), csv_text(name), csv_text(metric));
            }
        }
    }
    out
}

/// `runs.csv`: a row per run, its metrics as columns.
pub fn runs_csv(plan: &Plan, records: &[super::analysis::Record]) -> String {
    let metrics: String = plan.metrics.iter().map(|m| format!(",{}", csv_text(m))).collect();
    let mut out = format!("index,{}variant,seed{metrics},stopped\n", axis_columns(plan));
    for r in records {
        let values: String = r.values.iter().map(|v| format!(",{}", v.map_or(String::new(), exact))).collect();
        let _ = writeln!(
            out,
            "{},{}{},{}{values},{}",
            r.index,
            point_columns(plan, r.point),
            csv_text(&r.variant),
            r.seed,
            r.stopped
        );
    }
    out
}

/// `comparisons.csv`: a row per point, metric and variant but the baseline.
pub fn comparisons_csv(plan: &Plan, compared: &[(String, Compared)]) -> String {
    let mut out = format!(
        "{}metric,variant,baseline,n,mean_difference,paired_low,paired_high,unpaired_low,unpaired_high,narrowing\n",
        axis_columns(plan)
    );
    for (metric, rows) in compared {
        for (p, v, c) in rows {
            let cells = c.as_ref().map_or_else(
                || ",,,,,,".to_string(),
                |c| {
                    let f = [c.paired.mean, c.paired.low, c.paired.high, c.unpaired.low, c.unpaired.high]
                        .map(exact)
                        .join(",");
                    format!("{},{f},{}", c.paired.n, c.narrowing.map_or(String::new(), exact))
                },
            );
            let _ = writeln!(
                out,
                "{}{},{},{},{cells}",
                point_columns(plan, *p),
                csv_text(metric),
                csv_text(&plan.variants[*v]),
                csv_text(&plan.baseline)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_short_in_tables_and_exact_in_csv() {
        assert_eq!(short(5.0), "5");
        assert_eq!(short(4.98765), "4.988");
        assert_eq!(short(1234.567), "1235");
        assert_eq!(short(0.0123456), "0.01235");
        assert_eq!(short(f64::NAN), "-");
        assert_eq!(short(-2.5), "-2.500");
        assert_eq!(exact(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(exact(f64::INFINITY), "");
    }

    #[test]
    fn columns_align() {
        let t = align(&["a".into(), "num".into()], &[vec!["long".into(), "1".into()]], 1);
        assert_eq!(t, "  a     num\n  long    1\n");
    }
}
