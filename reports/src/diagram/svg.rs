//! Drawing a [`Collected`] diagram as SVG text, by hand: the layout (lanes
//! across, time down), then one group per kind of thing drawn, each with
//! classes and `data-` attributes that say what it shows (tests and
//! scripts read them), and a `<title>` on every arrow for hovering.

use super::{Arrow, Collected, Fate, Style, Window, MAX_LANES};
use sim_core::ledger::LossCause;
use sim_core::message::{MsgId, NodeId};
use sim_core::time::Time;
use sim_core::trace::{DropReason, FaultEvent};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What the caption says about the run, and what the drawing needs from it.
pub struct Info<'a> {
    /// The scenario's name.
    pub scenario: &'a str,
    /// The variant drawn.
    pub variant: &'a str,
    /// The seed.
    pub seed: u64,
    /// Node names, by id.
    pub names: &'a [String],
    /// The ledger's lost messages and their causes.
    pub lost: &'a [(MsgId, LossCause)],
    /// A note for the caption (a run stopped at a limit, say).
    pub note: Option<String>,
}

const FONT: &str = "DejaVu Sans, Verdana, sans-serif";
const LEFT: f64 = 90.0;
const LANE_GAP: f64 = 210.0;
const RIGHT: f64 = 230.0;
/// Pixels of height per arrow drawn, within [`MIN_HEIGHT`, `MAX_HEIGHT`].
const PX_PER_ARROW: f64 = 24.0;
const MIN_HEIGHT: f64 = 800.0;
const MAX_HEIGHT: f64 = 2400.0;
const LINE: f64 = 17.0;

/// Where things go.
struct Layout {
    lanes: Vec<NodeId>,
    t0: Time,
    t1: Time,
    top: f64,
    height: f64,
    width: f64,
}

impl Layout {
    fn x(&self, node: NodeId) -> Option<f64> {
        let i = self.lanes.iter().position(|&n| n == node)?;
        Some(LEFT + LANE_GAP * (i as f64 + 0.5))
    }

    fn y(&self, t: Time) -> f64 {
        let span = (self.t1 - self.t0).max(1) as f64;
        self.top + (t.clamp(self.t0, self.t1) - self.t0) as f64 / span * self.height
    }

    fn bottom(&self) -> f64 {
        self.top + self.height
    }

    fn shows(&self, t: Time) -> bool {
        t >= self.t0 && t <= self.t1
    }
}

/// Where a lost message's ledger cross goes.
enum LossAt {
    /// On this (dropped) arrow of `Collected::arrows`.
    Arrow(usize),
    /// On a lane, at a time.
    Lane(NodeId, Time),
}

/// Milliseconds, as short as exact to the microsecond.
fn ms(t: Time) -> String {
    let s = format!("{:.3}", t as f64 / 1e6);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Text made safe for XML content and attributes.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

fn name(names: &[String], node: NodeId) -> &str {
    names.get(node as usize).map(String::as_str).unwrap_or("?")
}

/// The SVG text of the diagram of `c`.
pub fn render(c: &Collected, info: &Info) -> String {
    let window = c.window.unwrap_or(Window { from: 0, to: None, max_messages: 0 });
    let t0 = window.from;
    let last = c.arrows.iter().flat_map(|a| [Some(a.sent), a.end()]).flatten().max().unwrap_or(t0);
    let t1 = window.to.map_or(last, |to| to.max(last)).max(t0 + 1_000);
    let idless = pick_idless(c, t0, t1, window.max_messages);
    let (lanes, busy) = choose_lanes(c, &idless, info.names.len());
    let lost: BTreeMap<MsgId, LossCause> = info.lost.iter().copied().collect();
    let losses = place_losses(c, &lost, t1);
    let off = c.arrows.iter().chain(&idless).filter(|a| !lanes.contains(&a.wire.from) || !lanes.contains(&a.wire.to));
    let caption = caption(c, info, &lost, &window, (t0, t1), (idless.len(), busy, off.count()));
    let top = 30.0 + LINE * caption.len() as f64 + 50.0;
    let width = LEFT + LANE_GAP * lanes.len().max(3) as f64 + RIGHT;
    let drawn = (c.arrows.len() + idless.len()) as f64;
    let l = Layout { lanes, t0, t1, top, height: (drawn * PX_PER_ARROW).clamp(MIN_HEIGHT, MAX_HEIGHT), width };
    let mut labels = Labels::default();
    let legend_top = l.bottom() + 50.0;
    let height = legend_top + legend_height(width) + 20.0;
    let mut s = String::new();
    head(&mut s, info, width, height);
    for (i, line) in caption.iter().enumerate() {
        let (y, weight) = (24.0 + LINE * i as f64, if i == 0 { "bold" } else { "normal" });
        let _ = writeln!(s, r#"<text class="caption" x="16" y="{y}" font-weight="{weight}">{}</text>"#, esc(line));
    }
    faults(&mut s, &l, c, &mut labels);
    axis(&mut s, &l);
    lanes_and_crashes(&mut s, &l, c, info.names);
    steps(&mut s, &l, c, info.names);
    marks(&mut s, &l, c, info.names);
    let on_arrow: BTreeMap<usize, LossCause> = losses
        .iter()
        .filter_map(|(_, cause, at)| match at {
            LossAt::Arrow(i) => Some((*i, *cause)),
            LossAt::Lane(..) => None,
        })
        .collect();
    let _ = writeln!(s, r#"<g class="messages">"#);
    for a in &idless {
        arrow(&mut s, &l, a, None, info.names, &mut labels);
    }
    for (i, a) in c.arrows.iter().enumerate() {
        arrow(&mut s, &l, a, on_arrow.get(&i).copied(), info.names, &mut labels);
    }
    let _ = writeln!(s, "</g>");
    lane_losses(&mut s, &l, &losses, info.names, &mut labels);
    legend(&mut s, legend_top, width);
    s.push_str("</svg>\n");
    s
}

/// At most `max` messages without an id sent in [t0, t1], spread evenly
/// over those kept.
fn pick_idless(c: &Collected, t0: Time, t1: Time, max: usize) -> Vec<Arrow> {
    let inside: Vec<&Arrow> = c.idless.iter().filter(|a| a.sent >= t0 && a.sent <= t1).collect();
    if inside.len() <= max {
        return inside.into_iter().copied().collect();
    }
    (0..max).map(|i| *inside[i * inside.len() / max]).collect()
}

/// The lanes drawn, in node order: every node, or the [`MAX_LANES`]
/// busiest (most arrows and steps shown); and how many nodes there are.
fn choose_lanes(c: &Collected, idless: &[Arrow], nodes: usize) -> (Vec<NodeId>, usize) {
    if nodes <= MAX_LANES {
        return ((0..nodes as NodeId).collect(), nodes);
    }
    let mut busy: BTreeMap<NodeId, u64> = BTreeMap::new();
    for a in c.arrows.iter().chain(idless) {
        *busy.entry(a.wire.from).or_default() += 1;
        *busy.entry(a.wire.to).or_default() += 1;
    }
    for s in &c.steps {
        *busy.entry(s.node).or_default() += 1;
    }
    let mut ranked: Vec<(NodeId, u64)> = busy.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut lanes: Vec<NodeId> = ranked.into_iter().take(MAX_LANES).map(|(n, _)| n).collect();
    lanes.sort_unstable();
    (lanes, nodes)
}

fn place_losses(c: &Collected, lost: &BTreeMap<MsgId, LossCause>, t1: Time) -> Vec<(MsgId, LossCause, LossAt)> {
    c.sampled.iter().filter_map(|id| lost.get(id).map(|&cause| (*id, cause, place(c, *id, cause, t1)))).collect()
}

fn drop_reason(a: &Arrow) -> Option<DropReason> {
    match a.fate {
        Fate::DroppedAtSend(r) | Fate::DroppedAtArrival(_, r) => Some(r),
        _ => None,
    }
}

/// Where the ledger's loss of `id` shows (see the module's documentation).
fn place(c: &Collected, id: MsgId, cause: LossCause, t1: Time) -> LossAt {
    let reason = match cause {
        LossCause::NetworkLoss => Some(DropReason::Loss),
        LossCause::Partition => Some(DropReason::Partition),
        LossCause::CrashedReceiver => Some(DropReason::Crashed),
        _ => None,
    };
    if let Some(reason) = reason {
        let dropped = |a: &Arrow| a.wire.id == Some(id) && drop_reason(a).is_some();
        let exact = c.arrows.iter().rposition(|a| dropped(a) && drop_reason(a) == Some(reason));
        if let Some(i) = exact.or_else(|| c.arrows.iter().rposition(dropped)) {
            return LossAt::Arrow(i);
        }
    }
    let (node, t) = last_seen(c, id);
    let later = match cause {
        LossCause::Crash | LossCause::CommitBeforeProcess => {
            let crash = |mine: bool| {
                c.crashes
                    .iter()
                    .find(|&&(ct, n, up)| !up && (n == node || !mine) && ct >= t && ct <= t1)
                    .map(|x| (x.1, x.0))
            };
            crash(true).or_else(|| crash(false))
        }
        LossCause::LeaderFailover | LossCause::UncleanElection | LossCause::SkippedOffset => {
            c.marks.iter().find(|m| m.1 == node && m.0 >= t && m.0 <= t1).map(|m| (node, m.0))
        }
        _ => None,
    };
    let (node, t) = later.unwrap_or((node, t));
    LossAt::Lane(node, t)
}

/// The node that last held `id` as far as the diagram saw, and when:
/// the latest arrival of a message carrying it, or start of processing it.
fn last_seen(c: &Collected, id: MsgId) -> (NodeId, Time) {
    let mut seen: Option<(Time, NodeId)> = None;
    let mut see = |t: Time, n: NodeId| {
        if seen.is_none_or(|(st, _)| t >= st) {
            seen = Some((t, n));
        }
    };
    for a in c.arrows.iter().filter(|a| a.wire.id == Some(id)) {
        see(a.sent, a.wire.from);
        if let Fate::Arrived(t) = a.fate {
            see(t, a.wire.to);
        }
    }
    for s in c.steps.iter().filter(|s| s.id == id) {
        see(s.start, s.node);
    }
    let (t, n) = seen.unwrap_or((c.window.map_or(0, |w| w.from), 0));
    (n, t)
}

/// The caption's lines: what is shown, and what is left out.
fn caption(
    c: &Collected,
    info: &Info,
    lost: &BTreeMap<MsgId, LossCause>,
    w: &Window,
    (t0, t1): (Time, Time),
    (idless, nodes, off_lane): (usize, usize, usize),
) -> Vec<String> {
    let mut lines =
        vec![format!("{} / {} (seed {}): space-time diagram, time flows down", info.scenario, info.variant, info.seed)];
    let to = w.to.map_or("the end of the run".to_string(), |t| format!("{} ms", ms(t)));
    lines.push(format!("window {} ms to {to}; drawn from {} to {} ms", ms(w.from), ms(t0), ms(t1)));
    lines.push(format!(
        "{} of {} messages shown (the first sent in the window, each with all its messages there)",
        c.sampled.len(),
        c.ids_in_window
    ));
    let kept_idless = c.idless.iter().filter(|a| a.sent >= t0 && a.sent <= t1).count() as u64;
    let not_kept: u64 = c.idless_not_kept.values().sum();
    if kept_idless + not_kept > 0 {
        let mut kinds: BTreeMap<&str, u64> = c.idless_not_kept.clone();
        for a in c.idless.iter().filter(|a| a.sent >= t0 && a.sent <= t1) {
            *kinds.entry(a.wire.msg).or_default() += 1;
        }
        let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        lines.push(format!(
            "{idless} of {} messages without an id (grey) shown, spread over the time drawn: {}",
            kept_idless + not_kept,
            kinds.join(", ")
        ));
    }
    let lost_shown = c.sampled.iter().filter(|id| lost.contains_key(id)).count();
    let lanes = nodes.min(MAX_LANES);
    let lanes_note = if nodes > MAX_LANES {
        format!(" (the busiest; {off_lane} messages to or from the others left out)")
    } else {
        String::new()
    };
    lines.push(format!(
        "{lanes} of {nodes} nodes drawn{lanes_note}; lost among those shown: {lost_shown}, each crossed with the ledger's cause; hover an arrow for its details"
    ));
    if let Some(note) = &info.note {
        lines.push(note.clone());
    }
    lines
}

fn head(s: &mut String, info: &Info, width: f64, height: f64) {
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{FONT}" font-size="12">"#
    );
    let _ = writeln!(s, "<title>space-time diagram: {} / {}</title>", esc(info.scenario), esc(info.variant));
    s.push_str(STYLE);
    s.push_str("<defs>\n");
    for (style, colour) in COLOURS {
        let _ = writeln!(
            s,
            r#"<marker id="head-{style}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>"#
        );
    }
    s.push_str(r##"<pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#e4e4e4"/><line x1="0" y1="0" x2="0" y2="6" stroke="#8a8a8a" stroke-width="2"/></pattern>"##);
    s.push_str("\n</defs>\n");
    let _ = writeln!(s, r#"<rect width="{width}" height="{height}" fill="white"/>"#);
}

const COLOURS: [(&str, &str); 5] = [
    ("original", "#0072B2"),
    ("network-copy", "#009E73"),
    ("retry", "#E69F00"),
    ("redelivery", "#CC79A7"),
    ("no-id", "#9a9a9a"),
];

const STYLE: &str = r#"<style>
.wire { fill: none; stroke-width: 1.4; }
.original .wire { stroke: #0072B2; }
.network-copy .wire { stroke: #009E73; stroke-dasharray: 2 3; stroke-width: 1.8; }
.retry .wire { stroke: #E69F00; stroke-dasharray: 7 4; stroke-width: 1.8; }
.redelivery .wire { stroke: #CC79A7; stroke-dasharray: 9 3 2 3; stroke-width: 1.8; }
.no-id .wire { stroke: #9a9a9a; stroke-width: 0.8; }
.msg:hover .wire { stroke-width: 3.5; }
.id, .drop text, .mark text, .fault text { paint-order: stroke; stroke: white; stroke-width: 3px; stroke-linejoin: round; }
.id { font-size: 9px; fill: #333; }
.drop path { stroke: #D00000; stroke-width: 2.4; fill: none; }
.drop text { fill: #D00000; font-size: 10px; }
.drop.network text { fill: #9c3b3b; }
.step { fill: #56B4E9; stroke: #1f6f99; stroke-width: 0.6; }
.step.unfinished { fill: white; stroke-dasharray: 2 2; }
.mark line { stroke: #6A3D9A; stroke-width: 2.5; }
.mark text { fill: #6A3D9A; font-size: 10px; font-weight: bold; }
.fault rect { fill: #F0E442; fill-opacity: 0.3; }
.fault text { fill: #6b5d00; font-size: 10px; }
.crashed { fill: url(#hatch); stroke: #777; stroke-width: 0.6; }
.lane line { stroke: #555; stroke-width: 1; }
.lane text { font-weight: bold; font-size: 13px; }
.grid { stroke: #ececec; stroke-width: 1; }
.axis text { font-size: 10px; fill: #555; }
.caption { fill: #222; }
.legend text { font-size: 11px; fill: #222; }
</style>
"#;

fn faults(s: &mut String, l: &Layout, c: &Collected, labels: &mut Labels) {
    let _ = writeln!(s, r#"<g class="faults">"#);
    let mut open: BTreeMap<&str, Vec<Time>> = BTreeMap::new();
    let mut bands = Vec::new();
    for (t, label, ev) in &c.faults {
        match ev {
            FaultEvent::Begins => open.entry(label).or_default().push(*t),
            FaultEvent::Ends => {
                if let Some(start) = open.get_mut(label.as_str()).and_then(|v| (!v.is_empty()).then(|| v.remove(0))) {
                    bands.push((start, *t, label.as_str()));
                }
            }
            FaultEvent::Skipped => {}
        }
    }
    bands.extend(open.into_iter().flat_map(|(label, starts)| starts.into_iter().map(move |t| (t, Time::MAX, label))));
    bands.sort();
    let (x0, x1) = (LEFT, l.width - 10.0);
    for (start, end, label) in bands {
        if end < l.t0 || start > l.t1 {
            continue;
        }
        let (y0, y1) = (l.y(start), l.y(end));
        let until = if end == Time::MAX { "the end".to_string() } else { format!("{} ms", ms(end)) };
        let _ = writeln!(
            s,
            r#"<g class="fault" data-label="{}"><title>{} from {} ms to {until}</title><rect x="{x0}" y="{y0:.1}" width="{:.1}" height="{:.1}"/><text x="{:.1}" y="{:.1}">{}</text></g>"#,
            esc(label),
            esc(label),
            ms(start),
            x1 - x0,
            (y1 - y0).max(1.5),
            l.width - RIGHT + 10.0,
            labels.place(l.width - RIGHT + 10.0, y0 + 11.0),
            esc(label)
        );
    }
    let _ = writeln!(s, "</g>");
}

/// A round step for about ten ticks over `span` ns.
fn tick_step(span: Time) -> Time {
    let rough = (span / 10).max(1);
    let mut step: Time = 1;
    while step * 10 <= rough {
        step *= 10;
    }
    [1, 2, 5, 10].iter().map(|m| m * step).find(|&s| s >= rough).unwrap_or(step * 10)
}

fn axis(s: &mut String, l: &Layout) {
    let _ = writeln!(s, r#"<g class="axis">"#);
    let step = tick_step(l.t1 - l.t0);
    let mut t = l.t0.div_ceil(step) * step;
    let right = l.width - 10.0;
    while t <= l.t1 {
        let y = l.y(t);
        let _ = writeln!(
            s,
            r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{right}" y2="{y:.1}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{} ms</text>"#,
            LEFT - 6.0,
            y + 3.5,
            ms(t)
        );
        t += step;
    }
    let _ = writeln!(s, "</g>");
}

fn lanes_and_crashes(s: &mut String, l: &Layout, c: &Collected, names: &[String]) {
    let _ = writeln!(s, r#"<g class="lanes">"#);
    for &node in &l.lanes {
        let x = l.x(node).expect("a lane");
        let n = esc(name(names, node));
        let _ = writeln!(
            s,
            r#"<g class="lane" data-node="{n}"><text x="{x:.1}" y="{:.1}" text-anchor="middle">{n}</text><line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"/></g>"#,
            l.top - 14.0,
            l.top - 6.0,
            l.bottom() + 6.0
        );
        let mut down: Option<Time> = None;
        for &(t, _, up) in c.crashes.iter().filter(|x| x.1 == node) {
            match (up, down) {
                (false, None) => down = Some(t),
                (true, Some(from)) => {
                    crashed(s, l, x, &n, from, Some(t));
                    down = None;
                }
                _ => {}
            }
        }
        if let Some(from) = down {
            crashed(s, l, x, &n, from, None);
        }
    }
    let _ = writeln!(s, "</g>");
}

fn crashed(s: &mut String, l: &Layout, x: f64, node: &str, from: Time, until: Option<Time>) {
    if from > l.t1 || until.is_some_and(|u| u < l.t0) {
        return;
    }
    let (y0, y1) = (l.y(from), l.y(until.unwrap_or(l.t1)));
    let until = until.map_or("the end of the run".to_string(), |u| format!("its restart at {} ms", ms(u)));
    let _ = writeln!(
        s,
        r#"<rect class="crashed" data-node="{node}" x="{:.1}" y="{y0:.1}" width="14" height="{:.1}"><title>{node} crashed at {} ms, down until {until}</title></rect>"#,
        x - 7.0,
        (y1 - y0).max(1.5),
        ms(from)
    );
}

fn steps(s: &mut String, l: &Layout, c: &Collected, names: &[String]) {
    let _ = writeln!(s, r#"<g class="steps">"#);
    for st in &c.steps {
        let Some(x) = l.x(st.node) else { continue };
        let crash = c.crashes.iter().find(|&&(t, n, up)| n == st.node && !up && t >= st.start).map(|x| x.0);
        let (end, class, what) = match st.end {
            Some(e) => (e, "step", format!("applied at {} ms", ms(e))),
            None => match crash {
                Some(t) => (t, "step unfinished", format!("interrupted by a crash at {} ms", ms(t))),
                None => (st.start, "step unfinished", "never applied".to_string()),
            },
        };
        let (y0, y1) = (l.y(st.start), l.y(end));
        let _ = writeln!(
            s,
            r#"<rect class="{class}" data-id="{}" x="{:.1}" y="{y0:.1}" width="8" height="{:.1}"><title>{} processes #{}: started at {} ms, {what}</title></rect>"#,
            st.id,
            x - 4.0,
            (y1 - y0).max(2.0),
            esc(name(names, st.node)),
            st.id,
            ms(st.start)
        );
    }
    let _ = writeln!(s, "</g>");
}

fn marks(s: &mut String, l: &Layout, c: &Collected, names: &[String]) {
    let _ = writeln!(s, r#"<g class="marks">"#);
    for &(t, node, what) in c.marks.iter().filter(|m| l.shows(m.0)) {
        let Some(x) = l.x(node) else { continue };
        let y = l.y(t);
        let _ = writeln!(
            s,
            r#"<g class="mark" data-node="{n}"><title>{n}: {w} at {} ms</title><line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{w}</text></g>"#,
            ms(t),
            x - 14.0,
            x + 14.0,
            x - 17.0,
            y + 3.5,
            n = esc(name(names, node)),
            w = esc(what)
        );
    }
    let _ = writeln!(s, "</g>");
}

/// Where text labels already are, by column (x in steps of 40 px), so
/// that a new label moves down rather than overwrite one.
#[derive(Default)]
struct Labels(BTreeMap<i64, Vec<f64>>);

impl Labels {
    const GAP: f64 = 11.0;

    /// The first y at or below `y` free for a label at `x`, now taken.
    fn place(&mut self, x: f64, y: f64) -> f64 {
        let taken = self.0.entry((x / 40.0).round() as i64).or_default();
        let mut y = y;
        while let Some(&clash) = taken.iter().find(|&&t| (t - y).abs() < Self::GAP) {
            y = clash + Self::GAP;
        }
        taken.push(y);
        y
    }

    /// Takes `y` at `x` if it is free; false (take nothing) if not.
    fn try_take(&mut self, x: f64, y: f64) -> bool {
        let taken = self.0.entry((x / 40.0).round() as i64).or_default();
        if taken.iter().any(|&t| (t - y).abs() < Self::GAP - 2.0) {
            return false;
        }
        taken.push(y);
        true
    }
}

/// A red cross centred at (x, y), with a label to its right (moved down
/// if another label is there).
fn cross(s: &mut String, x: f64, y: f64, label: &str, labels: &mut Labels) {
    let ly = if label.is_empty() { y } else { labels.place(x + 8.0, y + 12.0) };
    let _ = write!(
        s,
        r#"<path d="M{:.1},{:.1} L{:.1},{:.1} M{:.1},{:.1} L{:.1},{:.1}"/><text x="{:.1}" y="{ly:.1}">{}</text>"#,
        x - 5.0,
        y - 5.0,
        x + 5.0,
        y + 5.0,
        x - 5.0,
        y + 5.0,
        x + 5.0,
        y - 5.0,
        x + 8.0,
        esc(label)
    );
}

/// What an arrow's hover text says happened to it.
fn fate_text(a: &Arrow, loss: Option<LossCause>) -> String {
    let fate = match a.fate {
        Fate::Arrived(t) => format!("arrived {} ms (delay {} ms)", ms(t), ms(t - a.sent)),
        Fate::DroppedAtSend(r) => format!("dropped as it was sent ({})", r.name()),
        Fate::DroppedAtArrival(t, r) => format!("dropped at the receiver at {} ms ({})", ms(t), r.name()),
        Fate::OnWire => "still on the wire when the run ended".to_string(),
    };
    match loss {
        Some(cause) => format!("{fate}; lost (ledger: {})", cause.name()),
        None => fate,
    }
}

fn arrow(s: &mut String, l: &Layout, a: &Arrow, loss: Option<LossCause>, names: &[String], labels: &mut Labels) {
    let (Some(x1), Some(x2)) = (l.x(a.wire.from), l.x(a.wire.to)) else { return };
    let style = if a.wire.id.is_none() && a.style == Style::Original { "no-id" } else { a.style.name() };
    let id = a.wire.id.map(|i| format!("#{i} ")).unwrap_or_default();
    let (from, to) = (esc(name(names, a.wire.from)), esc(name(names, a.wire.to)));
    let why = match a.style {
        Style::Original => "sent",
        Style::NetworkCopy => "a network copy",
        Style::Retry => "a retry by its sender",
        Style::Redelivery => "a redelivery",
    };
    let data_id = a.wire.id.map(|i| format!(r#" data-id="{i}""#)).unwrap_or_default();
    let _ = write!(
        s,
        r#"<g class="msg {style}" data-kind="{}"{data_id} data-sent-ns="{}"><title>{} {id}{from} → {to}: {why} at {} ms, {}</title>"#,
        esc(a.wire.msg),
        a.sent,
        esc(a.wire.msg),
        ms(a.sent),
        esc(&fate_text(a, loss))
    );
    let y1 = l.y(a.sent);
    let dir = if x2 >= x1 { 1.0 } else { -1.0 };
    let (ex, ey, head) = match a.fate {
        Fate::Arrived(t) => (x2, l.y(t), true),
        Fate::DroppedAtArrival(t, _) => (x2 - dir * 9.0, l.y(t), false),
        Fate::DroppedAtSend(_) => (x1 + (x2 - x1) * 0.35, y1 + 10.0, false),
        Fate::OnWire => (x2, a.due.map_or(y1 + 10.0, |d| l.y(d)), false),
    };
    let marker = if head { format!(r#" marker-end="url(#head-{style})""#) } else { String::new() };
    if x1 == x2 {
        let bend = x1 + 36.0;
        let _ = write!(
            s,
            r#"<path class="wire" d="M{x1:.1},{y1:.1} C{bend:.1},{y1:.1} {bend:.1},{ey:.1} {ex:.1},{ey:.1}"{marker}/>"#
        );
    } else {
        let _ = write!(s, r#"<line class="wire" x1="{x1:.1}" y1="{y1:.1}" x2="{ex:.1}" y2="{ey:.1}"{marker}/>"#);
    }
    if a.wire.id.is_some() && a.style != Style::NetworkCopy && labels.try_take(x1 + dir * 20.0, y1 - 2.0) {
        let anchor = if dir > 0.0 { "start" } else { "end" };
        let _ = write!(
            s,
            r#"<text class="id" x="{:.1}" y="{:.1}" text-anchor="{anchor}">{id}</text>"#,
            x1 + dir * 6.0,
            y1 - 2.0
        );
    }
    if let Some(reason) = drop_reason(a) {
        let (source, cause) = match loss {
            Some(c) => ("ledger", c.name()),
            None => ("network", reason.name()),
        };
        let _ = write!(s, r#"<g class="drop {source}" data-source="{source}" data-cause="{cause}">"#);
        cross(s, ex, ey, cause, labels);
        s.push_str("</g>");
    }
    s.push_str("</g>\n");
}

fn lane_losses(
    s: &mut String,
    l: &Layout,
    losses: &[(MsgId, LossCause, LossAt)],
    names: &[String],
    labels: &mut Labels,
) {
    let _ = writeln!(s, r#"<g class="losses">"#);
    for (id, cause, at) in losses {
        let LossAt::Lane(node, t) = *at else { continue };
        let Some(x) = l.x(node) else { continue };
        let y = l.y(t);
        let _ = write!(
            s,
            r#"<g class="drop ledger" data-source="ledger" data-cause="{c}" data-id="{id}"><title>#{id} lost (ledger: {c}); last seen at {n}, {} ms</title>"#,
            ms(t),
            c = cause.name(),
            n = esc(name(names, node))
        );
        cross(s, x + 14.0, y, &format!("#{id} {}", cause.name()), labels);
        s.push_str("</g>\n");
    }
    let _ = writeln!(s, "</g>");
}

const LEGEND: [(&str, &str); 11] = [
    ("original", "message (first send), #id"),
    ("network-copy", "network copy (duplicate)"),
    ("retry", "retry by its sender"),
    ("redelivery", "redelivery by a broker"),
    ("no-id", "message without an id (ack, fetch...)"),
    ("drop-network", "dropped: network reason"),
    ("drop-ledger", "lost: the ledger's cause"),
    ("step", "processing a message"),
    ("crashed", "node down (crash to restart)"),
    ("fault", "fault window"),
    ("mark", "mark (leader elected...)"),
];

const LEGEND_ITEM: f64 = 260.0;

fn legend_height(width: f64) -> f64 {
    let per_row = ((width - 40.0) / LEGEND_ITEM).floor().max(1.0) as usize;
    (LEGEND.len().div_ceil(per_row)) as f64 * 22.0 + 24.0
}

fn legend(s: &mut String, top: f64, width: f64) {
    let per_row = ((width - 40.0) / LEGEND_ITEM).floor().max(1.0) as usize;
    let _ = writeln!(s, r#"<g class="legend"><text x="16" y="{top:.1}" font-weight="bold">Legend</text>"#);
    for (i, (key, text)) in LEGEND.iter().enumerate() {
        let x = 20.0 + LEGEND_ITEM * (i % per_row) as f64;
        let y = top + 20.0 + 22.0 * (i / per_row) as f64;
        let _ = write!(s, r#"<g class="legend-item" data-key="{key}">"#);
        match *key {
            "drop-network" | "drop-ledger" => {
                let source = if *key == "drop-ledger" { "ledger" } else { "network" };
                let _ = write!(s, r#"<g class="drop {source}">"#);
                cross(s, x + 20.0, y - 4.0, "", &mut Labels::default());
                s.push_str("</g>");
            }
            "step" => {
                let _ =
                    write!(s, r#"<rect class="step" x="{:.1}" y="{:.1}" width="8" height="16"/>"#, x + 16.0, y - 12.0);
            }
            "crashed" => {
                let _ = write!(
                    s,
                    r#"<rect class="crashed" x="{:.1}" y="{:.1}" width="14" height="16"/>"#,
                    x + 13.0,
                    y - 12.0
                );
            }
            "fault" => {
                let _ =
                    write!(s, r#"<g class="fault"><rect x="{x:.1}" y="{:.1}" width="40" height="16"/></g>"#, y - 12.0);
            }
            "mark" => {
                let _ = write!(
                    s,
                    r#"<g class="mark"><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/></g>"#,
                    x + 6.0,
                    y - 4.0,
                    x + 34.0,
                    y - 4.0
                );
            }
            style => {
                let _ = write!(
                    s,
                    r#"<g class="{style}"><line class="wire" x1="{x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" marker-end="url(#head-{style})"/></g>"#,
                    y - 4.0,
                    x + 40.0,
                    y - 4.0
                );
            }
        }
        let _ = writeln!(s, r#"<text x="{:.1}" y="{y:.1}">{}</text></g>"#, x + 50.0, esc(text));
    }
    let _ = writeln!(s, "</g>");
}
