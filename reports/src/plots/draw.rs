//! Draws a [`Figure`] with plotters, on any backend (SVG, bitmap): a title,
//! the chart or charts, and a legend strip on the right that names every
//! line, every fault window's shade and the marks. Bars carry their value
//! as text, so a projector's washed-out colours lose nothing.

use super::figure::{Bars, Body, Figure, Panel, Series, Stacks, Threshold, Window};
use super::scenario::tail_x;
use super::style::{cause_colour, colour, fault_shade, Dash, FONT};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Width and height of every plot, in pixels.
pub(crate) const SIZE: (u32, u32) = (960, 540);
/// Width of the legend strip.
const LEGEND_W: u32 = 290;

type Out = Result<(), String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn font(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK)
}

/// Draws `fig` on `root`.
pub(crate) fn figure<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, fig: &Figure) -> Out {
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(&fig.title, font(22.0)).map_err(err)?;
    let (chart, legend) = root.split_horizontally(SIZE.0 - LEGEND_W);
    match &fig.body {
        Body::Time(panels) => {
            let areas = chart.split_evenly((panels.len().max(1), 1));
            for (k, (panel, area)) in panels.iter().zip(&areas).enumerate() {
                time_panel(area, fig, panel, k == 0, k + 1 == panels.len())?;
            }
        }
        Body::Tail(series, y_desc) => tail(&chart, series, y_desc)?,
        Body::Bars(bars) => bar_chart(&chart, bars)?,
        Body::Stacks(stacks) => stacked(&chart, stacks)?,
    }
    legend_strip(&legend, fig)
}

fn style_of(s: &Series) -> ShapeStyle {
    colour(s.variant).stroke_width(2)
}

/// Draws one line, dashed as its series says.
fn line<DB: DrawingBackend, CT: plotters::coord::CoordTranslate<From = (f64, f64)>>(
    chart: &mut ChartContext<DB, CT>,
    s: &Series,
) -> Out {
    let pts = s.points.iter().copied();
    let st = style_of(s);
    match s.dash {
        Dash::Solid => chart.draw_series(LineSeries::new(pts, st)).map(|_| ()),
        Dash::Dashed => chart.draw_series(DashedLineSeries::new(pts, 9, 5, st)).map(|_| ()),
        Dash::Dotted => chart.draw_series(DashedLineSeries::new(pts, 2, 4, st)).map(|_| ()),
        Dash::Long => chart.draw_series(DashedLineSeries::new(pts, 14, 4, st)).map(|_| ()),
    }
    .map_err(err)
}

fn time_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fig: &Figure,
    p: &Panel,
    top: bool,
    bottom: bool,
) -> Out {
    let y_max = p.series.iter().flat_map(|s| s.points.iter().map(|q| q.1)).fold(0.0f64, f64::max);
    let y_max = p.thresholds.iter().map(|t| t.above).filter(|v| v.is_finite()).fold(y_max, f64::max);
    let y_top = if y_max > 0.0 { y_max * 1.12 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .x_label_area_size(if bottom { 40 } else { 20 })
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..fig.x_max, 0.0..y_top)
        .map_err(err)?;
    let mut mesh = chart.configure_mesh();
    mesh.y_desc(p.y_label.as_str())
        .y_label_formatter(&|y| value_text(*y))
        .x_label_formatter(&|x| axis_text(*x))
        .label_style(font(13.0))
        .axis_desc_style(font(14.0))
        .light_line_style(WHITE.mix(0.0));
    if bottom {
        mesh.x_desc("simulated time (s)");
    }
    mesh.draw().map_err(err)?;
    let labels = fig.fault_labels();
    for w in &fig.windows {
        let number = labels.iter().position(|l| *l == w.label).map_or(0, |i| i + 1);
        window(&mut chart, w, y_top, fig.runs, top.then_some(number))?;
    }
    for (t, _) in &fig.marks {
        let dashed = DashedLineSeries::new([(*t, 0.0), (*t, y_top)], 4, 4, RGBColor(0x55, 0x55, 0x55).stroke_width(1));
        chart.draw_series(dashed).map_err(err)?;
        if top {
            let tick = TriangleMarker::new((*t, y_top), 5, RGBColor(0x33, 0x33, 0x33).filled());
            chart.draw_series(std::iter::once(tick)).map_err(err)?;
        }
    }
    for s in &p.series {
        line(&mut chart, s)?;
    }
    let shown: Vec<&Threshold> = p.thresholds.iter().filter(|t| t.above.is_finite()).collect();
    for (k, t) in shown.iter().enumerate() {
        // Labels of thresholds at one level stack upwards, not on each other.
        let row = shown[..k].iter().filter(|u| u.above == t.above).count();
        threshold(&mut chart, t, row, fig.x_max, y_top)?;
    }
    if p.series.is_empty() {
        let note = Text::new(p.empty_note.clone(), (fig.x_max * 0.35, y_top * 0.5), font(16.0));
        chart.draw_series(std::iter::once(note)).map_err(err)?;
    }
    Ok(())
}

/// An alarm's threshold: a dashed level line across the panel, red for a
/// critical alarm and amber for a warning, named above its right end (in
/// row `row` of the names at that level).
fn threshold<DB: DrawingBackend, CT: plotters::coord::CoordTranslate<From = (f64, f64)>>(
    chart: &mut ChartContext<DB, CT>,
    t: &Threshold,
    row: usize,
    x_max: f64,
    y_top: f64,
) -> Out {
    let c = if t.critical { RGBColor(0xc6, 0x28, 0x28) } else { RGBColor(0xd8, 0x8c, 0x00) };
    let level = DashedLineSeries::new([(0.0, t.above), (x_max, t.above)], 10, 5, c.stroke_width(2));
    chart.draw_series(level).map_err(err)?;
    let text =
        Text::new(t.label.clone(), (x_max * 0.55, t.above + y_top * (0.06 + 0.05 * row as f64)), font(12.0).color(&c));
    chart.draw_series(std::iter::once(text)).map_err(err)?;
    Ok(())
}

/// Shades a fault window over the whole height when every variant had
/// it, else as a band along the top in the colours of the variants that
/// had it; numbers it (its legend entry) when `number` says so.
fn window<DB: DrawingBackend, CT: plotters::coord::CoordTranslate<From = (f64, f64)>>(
    chart: &mut ChartContext<DB, CT>,
    w: &Window,
    y_top: f64,
    runs: usize,
    number: Option<usize>,
) -> Out {
    let shade = fault_shade(&w.label).mix(0.55).filled();
    if w.variants.len() >= runs {
        chart.draw_series(std::iter::once(Rectangle::new([(w.from_s, 0.0), (w.to_s, y_top)], shade))).map_err(err)?;
    } else {
        // One row per variant along the top, in its colour: row v is variant v.
        let band = y_top * 0.03;
        for &v in &w.variants {
            let y0 = y_top - band * (v + 1) as f64;
            let rect = Rectangle::new([(w.from_s, y0), (w.to_s, y0 + band * 0.85)], colour(v).mix(0.6).filled());
            chart.draw_series(std::iter::once(rect)).map_err(err)?;
        }
    }
    if let Some(n) = number {
        let text = Text::new(n.to_string(), (w.from_s, y_top * 0.86), font(12.0).color(&RGBColor(0x33, 0x33, 0x33)));
        chart.draw_series(std::iter::once(text)).map_err(err)?;
    }
    Ok(())
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// The percentile a point of the tail axis stands for, as a label.
fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let digits = if x <= 2.0 { 0 } else { (x - 2.0).ceil() as usize };
    format!("{p:.digits$}%")
}

fn tail<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, series: &[Series], y_desc: &str) -> Out {
    let x_max = series.iter().filter_map(|s| s.points.last().map(|p| p.0)).fold(tail_x(0.999, 1e9), f64::max);
    let y_max = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(0.0f64, f64::max);
    let y_top = if y_max > 0.0 { y_max * 1.08 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(x_max.ceil() as usize + 1)
        .x_label_formatter(&|x| percentile_label(*x))
        .x_desc("percentile (each step right: ten times rarer)")
        .y_desc(y_desc)
        .y_label_formatter(&|y| value_text(*y))
        .label_style(font(13.0))
        .axis_desc_style(font(14.0))
        .draw()
        .map_err(err)?;
    for s in series {
        line(&mut chart, s)?;
    }
    if series.is_empty() {
        let note = Text::new("nothing was measured", (x_max * 0.35, y_top * 0.5), font(16.0));
        chart.draw_series(std::iter::once(note)).map_err(err)?;
    }
    Ok(())
}

/// A tick of the time axis: as few decimals as it needs.
fn axis_text(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A value as bars print it.
fn value_text(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if (v - v.round()).abs() < 1e-9 && v.abs() < 1e9 {
        format!("{}", v.round() as i64)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn bar_chart<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, b: &Bars) -> Out {
    let n = b.groups.len() as f64;
    let shown = |v: f64| if b.log { v.max(1e-3).log10() } else { v };
    let values = b.bars.iter().flat_map(|x| x.2.iter().copied()).filter(|v| v.is_finite());
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(shown(v)), hi.max(shown(v))));
    let (y0, y1) = if b.log && lo <= hi {
        (lo.floor() - 0.2, hi.ceil() + 0.3)
    } else {
        (0.0, if hi > 0.0 { hi * 1.15 } else { 1.0 })
    };
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .x_label_area_size(62)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..n, y0..y1)
        .map_err(err)?;
    let log = b.log;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_label_formatter(&|y| if log { value_text(10f64.powf(*y)) } else { value_text(*y) })
        .x_desc(b.x_label.as_str())
        .y_desc(if b.log { format!("{} (log scale)", b.y_label) } else { b.y_label.clone() })
        .label_style(font(13.0))
        .axis_desc_style(font(14.0))
        .draw()
        .map_err(err)?;
    let k = b.bars.len().max(1) as f64;
    let width = 0.8 / k;
    for (j, (_, variant, vals)) in b.bars.iter().enumerate() {
        for (g, v) in vals.iter().enumerate().filter(|(_, v)| v.is_finite()) {
            let x0 = g as f64 + 0.1 + j as f64 * width;
            let top = shown(*v).max(y0);
            let rect = Rectangle::new([(x0, y0), (x0 + width * 0.92, top)], colour(*variant).filled());
            chart.draw_series(std::iter::once(rect)).map_err(err)?;
            let label = Text::new(value_text(*v), (x0, top + (y1 - y0) * 0.015), font(11.0));
            chart.draw_series(std::iter::once(label)).map_err(err)?;
        }
    }
    for (g, name) in b.groups.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(g as f64 + 0.5, y0));
        let (w, _) = area.estimate_text_size(name, &font(14.0)).map_err(err)?;
        let label = Text::new(name.clone(), (px - w as i32 / 2, py + 4), font(14.0));
        area.draw(&label).map_err(err)?;
    }
    Ok(())
}

/// The total of variant `v`'s column for outcome `o`.
fn column_total(s: &Stacks, v: usize, o: usize) -> f64 {
    s.causes.iter().zip(&s.counts[v]).filter(|(c, _)| c.outcome == o).map(|(_, n)| n).sum()
}

/// Draws `text` on `area` centred on the backend's pixel column `px`,
/// its top at the backend's pixel row `py`.
fn centred<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, text: &str, (px, py): (i32, i32), size: f64) -> Out {
    let (w, _) = area.estimate_text_size(text, &font(size)).map_err(err)?;
    let (bx, by) = area.get_base_pixel();
    area.draw(&Text::new(text.to_string(), (px - bx - w as i32 / 2, py - by), font(size))).map_err(err)
}

type Plane<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Stacked bars: per variant, a column per outcome, a segment per cause
/// (its count written in it when it is tall enough), the column's total
/// on top, the outcome under it and the variant's name, with its colour,
/// under its columns.
fn stacked<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, s: &Stacks) -> Out {
    let (nv, no) = (s.variants.len(), s.outcomes.len());
    let hi = (0..nv).flat_map(|v| (0..no).map(move |o| (v, o))).map(|(v, o)| column_total(s, v, o)).fold(0.0, f64::max);
    let y1 = if hi > 0.0 { hi * 1.15 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..nv.max(1) as f64, 0.0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_label_formatter(&|y| value_text(*y))
        .y_desc(s.y_label.as_str())
        .label_style(font(13.0))
        .axis_desc_style(font(14.0))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    let width = 0.8 / no.max(1) as f64;
    let group_px = chart.backend_coord(&(1.0, 0.0)).0 - chart.backend_coord(&(0.0, 0.0)).0;
    let column_px = (group_px as f64 * width) as u32;
    for (v, _) in s.variants.iter().enumerate() {
        for o in 0..no {
            let x0 = v as f64 + 0.1 + o as f64 * width;
            let mut base = 0.0;
            for (k, _) in s.causes.iter().enumerate().filter(|(_, c)| c.outcome == o) {
                let n = s.counts[v][k];
                if n > 0.0 {
                    segment(&mut chart, [(x0, base), (x0 + width * 0.92, base + n)], k, n)?;
                    base += n;
                }
            }
            let total = Text::new(value_text(base), (x0, base + y1 * 0.015), font(12.0));
            chart.draw_series(std::iter::once(total)).map_err(err)?;
            let (px, py) = chart.backend_coord(&(x0 + width * 0.46, 0.0));
            // A narrow column says `dup.` (the legend spells it out).
            let wide = area.estimate_text_size(&s.outcomes[o], &font(12.0)).map_err(err)?.0 < column_px;
            let outcome = if wide || s.outcomes[o] != "duplicated" { s.outcomes[o].as_str() } else { "dup." };
            centred(area, outcome, (px, py + 4), 12.0)?;
        }
    }
    variant_names(area, &chart, s, group_px)
}

/// The variants' names under their columns, each after a swatch of its
/// colour: on two staggered rows when one row cannot hold them whole.
fn variant_names<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &Plane<DB>,
    s: &Stacks,
    group_px: i32,
) -> Out {
    let room = |rows: i32| ((group_px * rows) / 8 - 3).max(4) as usize;
    let rows = if s.variants.iter().all(|(n, _)| n.chars().count() <= room(1)) { 1 } else { 2 };
    for (v, (name, variant)) in s.variants.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(v as f64 + 0.5, 0.0));
        let label = short(name, room(rows));
        let (w, _) = area.estimate_text_size(&label, &font(13.0)).map_err(err)?;
        let (bx, by) = area.get_base_pixel();
        let row = py + 22 + 16 * (v as i32 % rows);
        let (x, y) = (px - bx - w as i32 / 2, row - by);
        area.draw(&Rectangle::new([(x - 16, y + 2), (x - 4, y + 14)], colour(*variant).filled())).map_err(err)?;
        centred(area, &label, (px, row), 13.0)?;
    }
    Ok(())
}

/// One cause's segment of a column: its colour, a white edge between
/// segments, and its count when the segment is tall enough to hold it.
fn segment<DB: DrawingBackend>(chart: &mut Plane<DB>, [from, to]: [(f64, f64); 2], k: usize, n: f64) -> Out {
    chart.draw_series(std::iter::once(Rectangle::new([from, to], cause_colour(k).filled()))).map_err(err)?;
    chart.draw_series(std::iter::once(Rectangle::new([from, to], WHITE.stroke_width(1)))).map_err(err)?;
    let px = chart.backend_coord(&from).1 - chart.backend_coord(&to).1;
    if px >= 18 {
        // Text hangs from its anchor: half its height above the middle.
        let y = (from.1 + to.1) / 2.0 + (to.1 - from.1) * 6.0 / px as f64;
        let text = Text::new(value_text(n), (from.0 + (to.0 - from.0) * 0.08, y), font(12.0));
        chart.draw_series(std::iter::once(text)).map_err(err)?;
    }
    Ok(())
}

/// The legend of a [`Stacks`]: per outcome a heading, then a swatch per
/// cause with its plain words and its name, wrapped to fit.
fn stacks_legend(s: &Stacks) -> Vec<(Swatch, String)> {
    let mut entries = Vec::new();
    for (o, outcome) in s.outcomes.iter().enumerate() {
        entries.push((Swatch::None, format!("Why {outcome}:")));
        for (k, c) in s.causes.iter().enumerate().filter(|(_, c)| c.outcome == o) {
            for (i, line) in wrap(&format!("{} ({})", c.words, c.name), 40).into_iter().enumerate() {
                let swatch = if i == 0 { Swatch::Box(cause_colour(k).to_rgba()) } else { Swatch::None };
                entries.push((swatch, line));
            }
        }
    }
    entries
}

/// `text` in lines of at most `width` characters, broken at spaces (a
/// longer word stays whole on its own line).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// The legend: a swatch and a name per series, then the fault shades and
/// the marks, cut short (and said so) when they do not fit.
fn legend_strip<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, fig: &Figure) -> Out {
    let mut entries: Vec<(Swatch, String)> = Vec::new();
    match &fig.body {
        Body::Time(panels) => {
            for s in panels.iter().flat_map(|p| &p.series) {
                entries.push((Swatch::Line(s.variant, s.dash), s.label.clone()));
            }
        }
        Body::Tail(series, _) => {
            entries.extend(series.iter().map(|s| (Swatch::Line(s.variant, s.dash), s.label.clone())))
        }
        Body::Bars(b) => entries.extend(b.bars.iter().map(|(l, v, _)| (Swatch::Box(colour(*v).to_rgba()), l.clone()))),
        Body::Stacks(s) => entries.extend(stacks_legend(s)),
    }
    if matches!(fig.body, Body::Time(_)) {
        for (k, label) in fig.fault_labels().into_iter().enumerate() {
            let with: Vec<&Window> = fig.windows.iter().filter(|w| w.label == label).collect();
            let all = with.iter().all(|w| w.variants.len() >= fig.runs);
            let first = with.first().and_then(|w| w.variants.first()).copied().unwrap_or(0);
            let swatch =
                if all { Swatch::Box(fault_shade(label).mix(0.55)) } else { Swatch::Box(colour(first).mix(0.6)) };
            let only = if all { String::new() } else { " (top rows: the variants it hit)".to_string() };
            entries.push((swatch, format!("{} {label}{only}", k + 1)));
        }
        for (m, n) in fig.mark_kinds() {
            entries.push((Swatch::Mark, format!("{m} ×{n}")));
        }
    }
    let row = 20;
    let fits = ((SIZE.1 as i32 - 60) / row) as usize;
    let more = entries.len().saturating_sub(fits);
    if more > 0 {
        entries.truncate(fits.saturating_sub(1));
        entries.push((Swatch::None, format!("… and {} more", more + 1)));
    }
    for (k, (swatch, text)) in entries.iter().enumerate() {
        let y = 20 + k as i32 * row;
        swatch.draw(area, (4, y))?;
        area.draw(&Text::new(short(text, 40), (40, y - 6), font(11.0))).map_err(err)?;
    }
    Ok(())
}

enum Swatch {
    Line(usize, Dash),
    Box(RGBAColor),
    Mark,
    None,
}

impl Swatch {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, (x, y): (i32, i32)) -> Out {
        match self {
            Swatch::Line(v, dash) => {
                let st = colour(*v).stroke_width(2);
                let pts = [(x, y), (x + 30, y)];
                let (size, gap) = match dash {
                    Dash::Solid => (30, 0),
                    Dash::Dashed => (9, 5),
                    Dash::Dotted => (2, 4),
                    Dash::Long => (14, 4),
                };
                if gap == 0 {
                    area.draw(&PathElement::new(pts, st)).map_err(err)
                } else {
                    let mut at = x;
                    while at < x + 30 {
                        area.draw(&PathElement::new([(at, y), ((at + size).min(x + 30), y)], st)).map_err(err)?;
                        at += size + gap;
                    }
                    Ok(())
                }
            }
            Swatch::Box(c) => area.draw(&Rectangle::new([(x, y - 6), (x + 30, y + 6)], c.filled())).map_err(err),
            Swatch::Mark => {
                area.draw(&PathElement::new([(x + 15, y - 8), (x + 15, y + 8)], BLACK.stroke_width(1))).map_err(err)?;
                area.draw(&TriangleMarker::new((x + 15, y - 6), 5, RGBColor(0x33, 0x33, 0x33).filled())).map_err(err)
            }
            Swatch::None => Ok(()),
        }
    }
}
