//! The plot of a sweep: one metric against the swept parameter, a line per
//! variant through the means over seeds, each point's confidence interval
//! as an error bar and as a shaded band between the points. Drawn in the
//! embedded font and the variants' colours of the other plots, as SVG and
//! PNG; the same data give the same bytes. Points are joined by straight
//! lines: nothing between two swept values was measured.

use crate::plots::style::{colour, embed_font, register_font, FONT};
use crate::{out_path, write_atomic, OutputError};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Width and height, in pixels.
const SIZE: (u32, u32) = (960, 540);
/// Width of the legend strip.
const LEGEND_W: u32 = 250;

/// One swept value's estimate: the mean and its interval (`low`, `high`
/// NaN when there is none, with fewer than two seeds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepPoint {
    /// The parameter's value.
    pub x: f64,
    /// The mean over seeds.
    pub mean: f64,
    /// The interval's lower end.
    pub low: f64,
    /// The interval's upper end.
    pub high: f64,
}

/// One line: a variant (and the values of any other swept parameter).
#[derive(Debug, Clone, PartialEq)]
pub struct SweepLine {
    /// The legend's text.
    pub label: String,
    /// Its colour: the variant's index.
    pub colour: usize,
    /// Its points, x rising.
    pub points: Vec<SweepPoint>,
}

/// A whole sweep plot.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPlot {
    /// The title.
    pub title: String,
    /// The x axis: the swept parameter.
    pub x_label: String,
    /// The y axis: the metric.
    pub y_label: String,
    /// The lines.
    pub lines: Vec<SweepLine>,
}

type Out = Result<(), String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn font(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK)
}

/// The range that shows every value of `values`, padded by 5%.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.filter(|v| v.is_finite()).fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { (hi - lo) * 0.05 } else { lo.abs().max(1.0) * 0.05 };
    (lo - pad, hi + pad)
}

/// A tick's text: as few decimals as it needs, up to four significant digits.
fn tick(v: f64) -> String {
    if v == 0.0 || (v.fract() == 0.0 && v.abs() < 1e9) {
        return format!("{}", v as i64);
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 9) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Draws `plot` on `root`.
fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, plot: &SweepPlot) -> Out {
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(&plot.title, font(20.0)).map_err(err)?;
    let (area, legend) = root.split_horizontally(SIZE.0 - LEGEND_W);
    let points = || plot.lines.iter().flat_map(|l| l.points.iter());
    let (x0, x1) = span(points().map(|p| p.x));
    let (y0, y1) = span(points().flat_map(|p| [p.mean, p.low, p.high]));
    let mut chart = ChartBuilder::on(&area)
        .margin(10)
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(plot.x_label.as_str())
        .y_desc(plot.y_label.as_str())
        .x_label_formatter(&|x| tick(*x))
        .y_label_formatter(&|y| tick(*y))
        .label_style(font(13.0))
        .axis_desc_style(font(14.0))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    for line in &plot.lines {
        draw_line(&mut chart, line, (x1 - x0) * 0.006)?;
    }
    if plot.lines.iter().all(|l| l.points.is_empty()) {
        let note = Text::new("nothing was measured", (x0 + (x1 - x0) * 0.35, (y0 + y1) / 2.0), font(16.0));
        chart.draw_series(std::iter::once(note)).map_err(err)?;
    }
    legend_strip(&legend, plot)
}

/// A line's band, error bars, means and markers.
fn draw_line<DB: DrawingBackend>(
    chart: &mut ChartContext<
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    line: &SweepLine,
    cap: f64,
) -> Out {
    let c = colour(line.colour);
    let with_ci: Vec<&SweepPoint> = line.points.iter().filter(|p| p.low.is_finite() && p.high.is_finite()).collect();
    if with_ci.len() >= 2 {
        let band: Vec<(f64, f64)> =
            with_ci.iter().map(|p| (p.x, p.high)).chain(with_ci.iter().rev().map(|p| (p.x, p.low))).collect();
        chart.draw_series(std::iter::once(Polygon::new(band, c.mix(0.15).filled()))).map_err(err)?;
    }
    for p in &with_ci {
        let st = c.stroke_width(1);
        let bars = [
            PathElement::new([(p.x, p.low), (p.x, p.high)], st),
            PathElement::new([(p.x - cap, p.low), (p.x + cap, p.low)], st),
            PathElement::new([(p.x - cap, p.high), (p.x + cap, p.high)], st),
        ];
        chart.draw_series(bars).map_err(err)?;
    }
    let means: Vec<(f64, f64)> = line.points.iter().filter(|p| p.mean.is_finite()).map(|p| (p.x, p.mean)).collect();
    chart.draw_series(LineSeries::new(means.iter().copied(), c.stroke_width(2))).map_err(err)?;
    chart.draw_series(means.iter().map(|&m| Circle::new(m, 3, c.filled()))).map_err(err)?;
    Ok(())
}

/// The legend: a swatch and a label per line, then what the band means.
fn legend_strip<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, plot: &SweepPlot) -> Out {
    let row = 20;
    let fits = ((SIZE.1 as i32 - 100) / row) as usize;
    for (k, line) in plot.lines.iter().take(fits).enumerate() {
        let y = 20 + k as i32 * row;
        let c = colour(line.colour);
        area.draw(&Rectangle::new([(4, y - 6), (34, y + 6)], c.mix(0.15).filled())).map_err(err)?;
        area.draw(&PathElement::new([(4, y), (34, y)], c.stroke_width(2))).map_err(err)?;
        let label: String = line.label.chars().take(34).collect();
        area.draw(&Text::new(label, (40, y - 6), font(11.0))).map_err(err)?;
    }
    let shown = plot.lines.len().min(fits);
    let mut y = 20 + shown as i32 * row;
    if plot.lines.len() > fits {
        area.draw(&Text::new(format!("… and {} more", plot.lines.len() - fits), (40, y - 6), font(11.0)))
            .map_err(err)?;
        y += row;
    }
    let note = "line: mean over seeds; bars and band: its confidence interval";
    for (k, part) in note.split("; ").enumerate() {
        area.draw(&Text::new(part.to_string(), (4, y + 6 + k as i32 * 16), font(11.0))).map_err(err)?;
    }
    Ok(())
}

/// The SVG text of `plot`, with the font embedded.
pub fn svg(plot: &SweepPlot) -> Result<String, String> {
    register_font();
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        draw(&root, plot)?;
        root.present().map_err(err)?;
    }
    Ok(embed_font(&text))
}

/// The PNG bytes of `plot`.
pub fn png(plot: &SweepPlot) -> Result<Vec<u8>, String> {
    register_font();
    let (w, h) = SIZE;
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        draw(&root, plot)?;
        root.present().map_err(err)?;
    }
    let mut bytes = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut bytes);
    image::ImageEncoder::write_image(encoder, &rgb, w, h, image::ColorType::Rgb8).map_err(err)?;
    Ok(bytes)
}

/// Writes `plot` into `dir` as `STEM.svg` and, with `with_png`, `STEM.png`,
/// each whole or not at all.
pub fn write(dir: &Path, stem: &str, plot: &SweepPlot, with_png: bool) -> Result<(), OutputError> {
    let failed = |name: &str, e: String| OutputError::Io {
        path: name.into(),
        source: std::io::Error::other(format!("cannot draw the plot: {e}")),
    };
    let name = format!("{stem}.svg");
    let text = svg(plot).map_err(|e| failed(&name, e))?;
    write_atomic(&out_path(dir, &name)?, text.as_bytes())?;
    if with_png {
        let name = format!("{stem}.png");
        let bytes = png(plot).map_err(|e| failed(&name, e))?;
        write_atomic(&out_path(dir, &name)?, &bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plot() -> SweepPlot {
        let points = |k: f64| {
            (1..=5)
                .map(|i| {
                    let x = i as f64 * 100.0;
                    SweepPoint { x, mean: k * x, low: k * x - 10.0, high: k * x + 10.0 }
                })
                .collect()
        };
        SweepPlot {
            title: "latency_ms.p99 against rate_per_s".into(),
            x_label: "rate_per_s".into(),
            y_label: "latency_ms.p99".into(),
            lines: vec![
                SweepLine { label: "fast".into(), colour: 0, points: points(1.0) },
                SweepLine { label: "slow".into(), colour: 1, points: points(2.0) },
            ],
        }
    }

    #[test]
    fn a_sweep_plot_draws_the_same_bytes_and_names_its_lines() {
        let a = svg(&plot()).unwrap();
        assert_eq!(a, svg(&plot()).unwrap(), "deterministic");
        assert!(a.contains("fast") && a.contains("slow") && a.contains("rate_per_s"));
        assert!(a.contains("<polygon"), "a band");
        let png = png(&plot()).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }

    #[test]
    fn a_plot_without_intervals_or_points_still_draws() {
        let mut p = plot();
        for l in &mut p.lines {
            for q in &mut l.points {
                (q.low, q.high) = (f64::NAN, f64::NAN);
            }
        }
        assert!(!svg(&p).unwrap().contains("<polygon"));
        p.lines.clear();
        assert!(svg(&p).unwrap().contains("nothing was measured"));
    }

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(100.0), "100");
        assert_eq!(tick(0.125), "0.125");
        assert_eq!(tick(1234.5678), "1235");
        assert_eq!(tick(5.0001234), "5");
    }
}
