//! Plots of a scenario's run, as SVG (always) and PNG (unless asked not
//! to), drawn with plotters in an embedded font, so they look the same on
//! any machine. Every scenario gets six (see [`scenario`]), and a seventh,
//! [`CAUSES`], when a variant lost or duplicated messages; a kind adds its
//! own by declaring [`sim_core::kind::KindPlot`]s over the gauges its
//! components report. Time plots shade the fault windows and mark notable
//! moments (elections). Plots are drawn from the run's outputs only: the
//! same run gives the same bytes.

mod causes;
mod draw;
mod figure;
mod scenario;
pub mod style;

pub use causes::{dup_words, loss_words};
pub use scenario::PlotRun;

/// The stem of the plot of losses and duplicates by cause, drawn only when
/// some variant had one.
pub const CAUSES: &str = "causes";

use crate::{out_path, write_atomic, OutputError};
use plotters::prelude::{BitMapBackend, IntoDrawingArea, SVGBackend};
use serde::Serialize;
use sim_core::kind::KindPlot;
use std::path::Path;

/// A plot as written: what the report and the index need.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlotFile {
    /// The file stem (`latency-cdf`).
    pub name: String,
    /// The plot's title.
    pub title: String,
    /// The SVG's file name, in the output folder.
    pub svg: String,
    /// The PNG's file name, when PNGs were written.
    pub png: Option<String>,
    /// The legend's entries for the data: one per line or bar set.
    pub series: Vec<String>,
}

/// The file names [`write_plots`] will write for a scenario whose kinds add
/// `kind_plots` (for the output folder's manifest, before the run).
pub fn plot_file_names(kind_plots: &[KindPlot], png: bool) -> Vec<String> {
    let stems = ["latency-cdf", "latency-percentiles", "throughput", "depth-lag", "outcomes", CAUSES, "errors"];
    let stems = stems.iter().copied().chain(kind_plots.iter().map(|k| k.name));
    let exts: &[&str] = if png { &["svg", "png"] } else { &["svg"] };
    let files = stems.flat_map(|s| exts.iter().map(move |e| format!("{s}.{e}")));
    std::iter::once(PLOTS_INDEX.to_string()).chain(files).collect()
}

/// The index of a folder's plots: a JSON array of [`PlotFile`]s, for
/// scripts and tests (which series each plot holds).
pub const PLOTS_INDEX: &str = "plots.json";

/// Draws every plot of the scenario whose variants ran as `runs`, and
/// writes each into `dir` (as `NAME.svg`, and `NAME.png` with `png`), each
/// file whole or not at all, then [`PLOTS_INDEX`]. Returns what it wrote,
/// in report order.
pub fn write_plots(
    dir: &Path,
    runs: &[PlotRun],
    kind_plots: &[KindPlot],
    png: bool,
) -> Result<Vec<PlotFile>, OutputError> {
    let mut written = Vec::new();
    let figures = scenario::figures(runs, kind_plots);
    if !figures.iter().any(|f| f.name == CAUSES) {
        remove_stale(dir, CAUSES)?;
    }
    for fig in figures {
        let svg_name = format!("{}.svg", fig.name);
        let svg = render_svg(&fig).map_err(|e| drawing_error(&svg_name, e))?;
        write_atomic(&out_path(dir, &svg_name)?, svg.as_bytes())?;
        let png_name = if png {
            let name = format!("{}.png", fig.name);
            let bytes = render_png(&fig).map_err(|e| drawing_error(&name, e))?;
            write_atomic(&out_path(dir, &name)?, &bytes)?;
            Some(name)
        } else {
            None
        };
        written.push(PlotFile {
            name: fig.name.clone(),
            title: fig.title.clone(),
            svg: svg_name,
            png: png_name,
            series: fig.series_labels(),
        });
    }
    let mut index = serde_json::to_string_pretty(&written).expect("plot files serialize");
    index.push('\n');
    write_atomic(&out_path(dir, PLOTS_INDEX)?, index.as_bytes())?;
    Ok(written)
}

/// Removes the plot `stem` that an earlier run into `dir` may have drawn
/// and this one does not (the manifest lists it: this run might have).
fn remove_stale(dir: &Path, stem: &str) -> Result<(), OutputError> {
    for ext in ["svg", "png"] {
        let path = out_path(dir, &format!("{stem}.{ext}"))?;
        if path.is_file() {
            std::fs::remove_file(&path).map_err(|source| OutputError::Io { path, source })?;
        }
    }
    Ok(())
}

fn drawing_error(name: &str, e: String) -> OutputError {
    OutputError::Io { path: name.into(), source: std::io::Error::other(format!("cannot draw the plot: {e}")) }
}

/// The SVG text of a figure, with the font embedded.
fn render_svg(fig: &figure::Figure) -> Result<String, String> {
    style::register_font();
    let mut text = String::new();
    {
        let backend = SVGBackend::with_string(&mut text, draw::SIZE);
        let root = backend.into_drawing_area();
        draw::figure(&root, fig)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(style::embed_font(&text))
}

/// The PNG bytes of a figure.
fn render_png(fig: &figure::Figure) -> Result<Vec<u8>, String> {
    style::register_font();
    let (w, h) = draw::SIZE;
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let backend = BitMapBackend::with_buffer(&mut rgb, draw::SIZE);
        let root = backend.into_drawing_area();
        draw::figure(&root, fig)?;
        root.present().map_err(|e| e.to_string())?;
    }
    let mut png = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut png);
    image::ImageEncoder::write_image(encoder, &rgb, w, h, image::ColorType::Rgb8).map_err(|e| e.to_string())?;
    Ok(png)
}
