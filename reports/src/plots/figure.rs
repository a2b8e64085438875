//! What a plot shows, as data: lines over time in one or more panels, a
//! latency distribution, or grouped bars, with the fault windows and marks
//! to draw behind them. Building a figure reads a run; drawing it
//! ([`super::draw`]) knows nothing of runs. Nothing here is interpolated:
//! a time series is drawn as sampled (every `run.sample_interval_ms`), thinned to
//! [`MAX_POINTS`] per series by keeping each bucket's lowest and highest
//! point.

use super::style::Dash;

/// Most points a line keeps; longer series are thinned.
pub(crate) const MAX_POINTS: usize = 2_000;

/// One line: a variant's series.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    /// The legend's text.
    pub label: String,
    /// The variant's index: its colour.
    pub variant: usize,
    /// How it is dashed (what tells two series of one variant apart).
    pub dash: Dash,
    /// (x, y) points, x rising.
    pub points: Vec<(f64, f64)>,
}

/// One chart of lines over simulated time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Panel {
    /// The y axis label, with its unit.
    pub y_label: String,
    /// Its lines.
    pub series: Vec<Series>,
    /// Said in the chart when it has no line (no errors at all, say).
    pub empty_note: String,
    /// Alarm thresholds drawn across it.
    pub thresholds: Vec<Threshold>,
}

/// An alarm's threshold on a panel: a level line, with its name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Threshold {
    /// The gauge's value above which the alarm is on.
    pub above: f64,
    /// What the line says (`alarm NAME: GAUGE > N`).
    pub label: String,
    /// A critical alarm (else a warning): its colour.
    pub critical: bool,
}

/// Bars in groups: one group per category, one bar per variant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bars {
    /// The categories (`p50`..., `lost`...).
    pub groups: Vec<String>,
    /// Each variant's values, one per group: (label, variant, values).
    pub bars: Vec<(String, usize, Vec<f64>)>,
    /// The y axis label, with its unit.
    pub y_label: String,
    /// The x axis label.
    pub x_label: String,
    /// A log y axis (values spanning orders of magnitude).
    pub log: bool,
}

/// Stacked bars: for each variant, a column per outcome (`lost`,
/// `duplicated`), each split into one segment per cause, a colour per
/// cause (not per variant: the variant's name is written under its columns).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stacks {
    /// The outcomes, in column order within a variant.
    pub outcomes: Vec<String>,
    /// The variants: (name, index), in order.
    pub variants: Vec<(String, usize)>,
    /// The causes, in legend order: cause `k` has colour `k`.
    pub causes: Vec<Cause>,
    /// How many messages each variant had of each cause: `counts[v][k]`.
    pub counts: Vec<Vec<f64>>,
    /// The y axis label, with its unit.
    pub y_label: String,
}

/// One cause of one outcome, as the legend names it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cause {
    /// Which outcome it explains (an index into [`Stacks::outcomes`]).
    pub outcome: usize,
    /// The name `summary.json` uses (`network_loss`).
    pub name: String,
    /// The same in plain words.
    pub words: String,
}

impl Stacks {
    /// The legend's text of cause `k`: its outcome, plain words, then the
    /// name `summary.json` uses, in brackets.
    pub(crate) fn label(&self, k: usize) -> String {
        let c = &self.causes[k];
        format!("{}: {} ({})", self.outcomes[c.outcome], c.words, c.name)
    }
}

/// What a figure draws.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Body {
    /// Panels of lines over time, stacked, sharing the x axis.
    Time(Vec<Panel>),
    /// A duration by percentile, on an axis stretched toward the tail, with
    /// the y axis's label (`latency (ms)`).
    Tail(Vec<Series>, &'static str),
    /// Grouped bars.
    Bars(Bars),
    /// Stacked bars by cause.
    Stacks(Stacks),
}

/// A stretch of time when a fault was in force.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Window {
    /// The fault, as the summary names it.
    pub label: String,
    /// Begin and end, in simulated seconds.
    pub from_s: f64,
    /// End (the run's end when it never ended).
    pub to_s: f64,
    /// The variants it happened in (by index): all of them, usually.
    pub variants: Vec<usize>,
}

/// A whole plot.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Figure {
    /// The file stem.
    pub name: String,
    /// The title.
    pub title: String,
    /// What it draws.
    pub body: Body,
    /// Fault windows, shaded on time plots.
    pub windows: Vec<Window>,
    /// Marks (elections...): (time in s, text), drawn as labelled lines on
    /// time plots.
    pub marks: Vec<(f64, String)>,
    /// The x range of time plots, in seconds.
    pub x_max: f64,
    /// How many variants the figure's runs have.
    pub runs: usize,
}

impl Figure {
    /// The distinct fault labels, in order of first appearance: window
    /// `w` is numbered by its label's place here (from 1).
    pub(crate) fn fault_labels(&self) -> Vec<&str> {
        let mut labels: Vec<&str> = Vec::new();
        for w in &self.windows {
            if !labels.contains(&w.label.as_str()) {
                labels.push(&w.label);
            }
        }
        labels
    }

    /// The distinct mark texts, with how often each occurs.
    pub(crate) fn mark_kinds(&self) -> Vec<(&str, usize)> {
        let mut kinds: Vec<(&str, usize)> = Vec::new();
        for (_, m) in &self.marks {
            match kinds.iter_mut().find(|(k, _)| k == m) {
                Some(k) => k.1 += 1,
                None => kinds.push((m, 1)),
            }
        }
        kinds
    }

    /// The legend's entries: one per distinct series or bar set.
    pub(crate) fn series_labels(&self) -> Vec<String> {
        match &self.body {
            Body::Time(panels) => panels.iter().flat_map(|p| p.series.iter().map(|s| s.label.clone())).collect(),
            Body::Tail(series, _) => series.iter().map(|s| s.label.clone()).collect(),
            Body::Bars(b) => b.bars.iter().map(|(l, _, _)| l.clone()).collect(),
            Body::Stacks(s) => (0..s.causes.len()).map(|k| s.label(k)).collect(),
        }
    }
}

/// Thins `points` to at most [`MAX_POINTS`]: each bucket of consecutive
/// points keeps its lowest and highest, in time order, so spikes survive.
pub(crate) fn thin(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if points.len() <= MAX_POINTS {
        return points;
    }
    let bucket = points.len().div_ceil(MAX_POINTS / 2);
    let mut out = Vec::with_capacity(MAX_POINTS);
    for chunk in points.chunks(bucket) {
        let lo = chunk.iter().enumerate().min_by(|a, b| a.1 .1.total_cmp(&b.1 .1)).map(|(i, _)| i).unwrap_or(0);
        let hi = chunk.iter().enumerate().max_by(|a, b| a.1 .1.total_cmp(&b.1 .1)).map(|(i, _)| i).unwrap_or(0);
        let (first, second) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        out.push(chunk[first]);
        if second != first {
            out.push(chunk[second]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_spikes_and_bounds_the_points() {
        let mut points: Vec<(f64, f64)> = (0..100_000).map(|i| (i as f64, 1.0)).collect();
        points[54_321].1 = 1000.0;
        points[7].1 = -5.0;
        let thinned = thin(points);
        assert!(thinned.len() <= MAX_POINTS);
        assert!(thinned.contains(&(54_321.0, 1000.0)) && thinned.contains(&(7.0, -5.0)));
        assert!(thinned.windows(2).all(|w| w[0].0 < w[1].0), "time order kept");
        let short = vec![(0.0, 1.0), (1.0, 2.0)];
        assert_eq!(thin(short.clone()), short);
    }
}
