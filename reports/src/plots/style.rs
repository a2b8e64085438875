//! How every plot looks: the embedded font, the colour-blind-safe palette
//! (one colour per variant, the same in every plot of a scenario), the
//! dash patterns that tell series of one variant apart, and the shades of
//! fault windows.

use base64::Engine as _;
use plotters::style::{FontStyle, RGBColor};
use std::sync::Once;

/// The font every plot uses, embedded: DejaVu Sans, cut down to Latin-1
/// and a few symbols (see `reports/assets/DejaVuSans-LICENSE.txt`). PNGs
/// are rasterised with it, and each SVG carries it as a data URL, so a plot
/// looks the same on any machine, installed fonts or not.
pub(crate) const FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans-subset.ttf");

/// The family name plots ask for (and the embedded font is registered as).
pub(crate) const FONT: &str = "DejaVu Sans";

/// Registers the embedded font with the PNG rasteriser, once per process.
pub(crate) fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for name in [FONT, "sans-serif"] {
            plotters::style::register_font(name, FontStyle::Normal, FONT_BYTES)
                .unwrap_or_else(|_| panic!("the embedded font is a valid TrueType font"));
        }
    });
}

/// Inserts the embedded font into an SVG document as an `@font-face` rule
/// with a data URL, right after the root element's opening tag.
pub(crate) fn embed_font(svg: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(FONT_BYTES);
    let style = format!(
        "<defs><style>@font-face{{font-family:'{FONT}';src:url(data:font/ttf;base64,{b64}) format('truetype');}}</style></defs>"
    );
    match svg.find("<svg").and_then(|at| svg[at..].find('>').map(|end| at + end + 1)) {
        Some(i) => format!("{}\n{style}{}", &svg[..i], &svg[i..]),
        None => svg.to_string(),
    }
}

/// The Okabe-Ito palette, which readers with any common form of colour
/// blindness can tell apart, in the order variants take it (yellow last:
/// it is faint on white). A ninth variant starts again, dashed.
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xB2), // blue
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0x00, 0x9E, 0x73), // bluish green
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0xCC, 0x79, 0xA7), // reddish purple
    RGBColor(0x56, 0xB4, 0xE9), // sky blue
    RGBColor(0x00, 0x00, 0x00), // black
    RGBColor(0xF0, 0xE4, 0x42), // yellow
];

/// The colour of variant `i` (its index in the scenario).
pub(crate) fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The colours of causes (in the `causes` plot, where a colour is a cause,
/// not a variant): Paul Tol's "light" palette, told apart with the common
/// forms of colour blindness and light enough for black text on each. A
/// tenth cause starts again.
pub(crate) const CAUSE_PALETTE: [RGBColor; 9] = [
    RGBColor(0x77, 0xAA, 0xDD), // light blue
    RGBColor(0xEE, 0x88, 0x66), // orange
    RGBColor(0xEE, 0xDD, 0x88), // light yellow
    RGBColor(0xFF, 0xAA, 0xBB), // pink
    RGBColor(0x99, 0xDD, 0xFF), // light cyan
    RGBColor(0x44, 0xBB, 0x99), // mint
    RGBColor(0xBB, 0xCC, 0x33), // pear
    RGBColor(0xAA, 0xAA, 0x00), // olive
    RGBColor(0xDD, 0xDD, 0xDD), // pale grey
];

/// The colour of cause `k` (its place in the plot's legend).
pub(crate) fn cause_colour(k: usize) -> RGBColor {
    CAUSE_PALETTE[k % CAUSE_PALETTE.len()]
}

/// Hex form of a colour, for the report's legend swatches.
pub fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// The colour of variant `i`, as `#rrggbb`.
pub fn variant_hex(i: usize) -> String {
    hex(colour(i))
}

/// How a line is drawn: what tells two series of one variant apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dash {
    Solid,
    Dashed,
    Dotted,
    Long,
}

impl Dash {
    /// The `n`-th pattern, for the `n`-th series of one variant.
    pub(crate) fn nth(n: usize) -> Dash {
        [Dash::Solid, Dash::Dashed, Dash::Dotted, Dash::Long][n % 4]
    }
}

/// The shade of a fault window, by what the fault does (read off its
/// label), light enough for lines to show through.
pub(crate) fn fault_shade(label: &str) -> RGBColor {
    if label.starts_with("partition") {
        RGBColor(0xC6, 0xDB, 0xEF)
    } else if label.starts_with("crash") {
        RGBColor(0xF4, 0xCC, 0xCC)
    } else if label.starts_with("slow") {
        RGBColor(0xFF, 0xEB, 0xB0)
    } else if label.starts_with("loss") {
        RGBColor(0xE0, 0xD0, 0xEC)
    } else {
        RGBColor(0xDD, 0xDD, 0xDD)
    }
}
