//! Server-rendered SVG charts: pure functions from data to markup.
//!
//! Each function returns one inline `<svg>` element to embed in a page. The
//! charts are accessible (`role="img"`, a `<title>` and a `<desc>` named by
//! `aria-labelledby`, a `<title>` tooltip on every bar and point), responsive
//! (a `viewBox` and `width="100%"`; the height follows the aspect ratio) and
//! compatible with the Content-Security-Policy: no `<style>`, no `style=""`,
//! no script. Colours, fonts and strokes come from the classes styled in
//! `assets/app.css` (`.chart`, `.chart-bar`, `.chart-line`, `.bar`,
//! `.chart-value`, `.chart-label`, `.chart-tick`, `.chart-grid`,
//! `.chart-baseline`, `.chart-line-path`, `.chart-point`, `.chart-empty`,
//! `.sparkline` …); the few presentation attributes set here (`fill="none"`
//! on lines, `text-anchor`) only keep the markup legible without CSS.
//!
//! Every piece of caller text (titles, labels, display strings) is escaped.
//! Money never passes through a float: bar values are `i64` minor units and
//! the caller formats the label; geometry is computed in integer tenths of a
//! viewBox unit.
//!
//! The element ids used by `aria-labelledby` are derived from a hash of the
//! chart's content, so output is deterministic; two identical charts on one
//! page would share ids (harmless for display, but give them distinct titles).

use std::fmt::Write as _;

/// One column of a [`bar_chart`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    /// Category shown below the column (e.g. "31–60").
    pub label: String,
    /// The value in minor units; only its proportion to the others matters.
    pub value: i64,
    /// The value as shown above the column (e.g. "€12,345.00").
    pub display: String,
    /// An extra CSS class for the column's group, e.g. one of
    /// [`AGING_CLASSES`] or [`INFLOW_CLASS`].
    pub class: Option<&'static str>,
}

/// One month of a [`line_chart`].
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The x-axis label (e.g. "Jan 26").
    pub label: String,
    /// The value (DSO in days); `None` leaves a gap in the line.
    pub value: Option<f64>,
    /// The value as shown in the point's tooltip (e.g. "42.5 days").
    pub display: String,
}

/// Bar classes for the aging buckets Current, 1–30, 31–60, 61–90, 90+
/// (styled from calm to alarming in `app.css`).
pub const AGING_CLASSES: [&str; 5] = ["b-current", "b-1-30", "b-31-60", "b-61-90", "b-90-plus"];

/// Bar class for expected inflows.
pub const INFLOW_CLASS: &str = "b-inflow";

// Bar chart viewBox and margins, in viewBox units.
const BAR_W: i64 = 600;
const BAR_H: i64 = 260;
const BAR_LEFT: i64 = 16;
const BAR_RIGHT: i64 = 16;
const BAR_TOP: i64 = 28;
/// Room below the plot for the category labels.
const BAR_LABEL_ROOM: i64 = 24;
/// Extra room below the plot for the value labels of negative columns.
const BAR_NEG_ROOM: i64 = 18;
const BAR_MAX_WIDTH: i64 = 96;
const BAR_MIN_LABEL_SPACING: i64 = 56;

// Line chart viewBox and margins.
const LINE_W: f64 = 720.0;
const LINE_H: f64 = 240.0;
const LINE_LEFT: f64 = 44.0;
const LINE_RIGHT: f64 = 16.0;
const LINE_TOP: f64 = 16.0;
const LINE_BOTTOM: f64 = 28.0;
const LINE_MIN_LABEL_SPACING: f64 = 44.0;

// Sparkline size.
const SPARK_W: f64 = 80.0;
const SPARK_H: f64 = 20.0;
const SPARK_PAD: f64 = 2.0;

/// A vertical column chart (aging buckets, expected inflows).
///
/// Each column has its value label (`display`) above it and its category
/// label below the plot; a baseline marks zero. Negative values are drawn
/// *below* the baseline, with their label under the column (the scale then
/// spans from the most negative to the most positive value). When every
/// value is zero the columns are flat on the baseline and their labels are
/// still shown. An empty slice gives a chart saying "No data". When there
/// are too many columns for their labels to fit, only every n-th column is
/// labelled (counting back from the last); each column keeps its tooltip.
pub fn bar_chart(title: &str, desc: &str, bars: &[Bar]) -> String {
    let id = chart_id(
        "bar",
        title,
        desc,
        bars.iter()
            .flat_map(|b| [b.label.as_str(), b.display.as_str()]),
    );
    let mut out = open_svg("chart chart-bar", &id, BAR_W, BAR_H, title, desc);
    if bars.is_empty() {
        no_data(&mut out, BAR_W / 2, BAR_H / 2);
        out.push_str("</svg>");
        return out;
    }
    let layout = bar_layout(bars);
    let stride = label_stride(
        bars.len(),
        (BAR_W - BAR_LEFT - BAR_RIGHT) / BAR_MIN_LABEL_SPACING,
    );
    let label_y = (BAR_H - 8) * 10;
    for (i, (bar, g)) in bars.iter().zip(&layout.bars).enumerate() {
        let class = match (bar.class, bar.value < 0) {
            (Some(c), true) => format!("bar negative {}", esc(c)),
            (Some(c), false) => format!("bar {}", esc(c)),
            (None, true) => "bar negative".to_string(),
            (None, false) => "bar".to_string(),
        };
        let cx = g.x + g.width / 2;
        let _ = write!(
            out,
            "<g class=\"{class}\"><title>{}: {}</title>\
             <rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>",
            esc(&bar.label),
            esc(&bar.display),
            tenths(g.x),
            tenths(g.y),
            tenths(g.width),
            tenths(g.height),
        );
        if shown(i, bars.len(), stride) {
            // Above a positive (or zero) column, below a negative one.
            let value_y = if bar.value < 0 {
                g.y + g.height + 140
            } else {
                g.y - 60
            };
            let _ = write!(
                out,
                "<text class=\"chart-value\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\
                 <text class=\"chart-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                tenths(cx),
                tenths(value_y),
                esc(&bar.display),
                tenths(cx),
                tenths(label_y),
                esc(&bar.label),
            );
        }
        out.push_str("</g>");
    }
    let _ = write!(
        out,
        "<line class=\"chart-baseline\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"currentColor\"/></svg>",
        BAR_LEFT,
        tenths(layout.baseline),
        BAR_W - BAR_RIGHT,
        tenths(layout.baseline),
    );
    out
}

/// A line chart over evenly spaced categories (a 12-month DSO trend).
///
/// The y axis runs from 0 to a nice round maximum with 3–5 labelled ticks
/// ([`nice_ticks`]). Points whose value is `None` (or not finite) leave a gap:
/// the line is split into segments, and a point alone between gaps is shown
/// by its marker only. Negative values are clamped to the baseline. Every
/// point with a value has a circle marker whose tooltip is
/// "label: display". X labels are thinned when crowded, always keeping the
/// last one; every other remaining label has the class `alt` (hidden by
/// `app.css` on narrow screens). Without any value the chart says "No data".
pub fn line_chart(title: &str, desc: &str, points: &[Point]) -> String {
    let id = chart_id(
        "line",
        title,
        desc,
        points
            .iter()
            .flat_map(|p| [p.label.as_str(), p.display.as_str()]),
    );
    let mut out = open_svg(
        "chart chart-line",
        &id,
        LINE_W as i64,
        LINE_H as i64,
        title,
        desc,
    );
    let values: Vec<Option<f64>> = points
        .iter()
        .map(|p| p.value.filter(|v| v.is_finite()).map(|v| v.max(0.0)))
        .collect();
    let max = values.iter().flatten().copied().fold(0.0_f64, f64::max);
    if values.iter().all(Option::is_none) {
        no_data(&mut out, (LINE_W / 2.0) as i64, (LINE_H / 2.0) as i64);
        out.push_str("</svg>");
        return out;
    }

    let ticks = nice_ticks(max);
    let top_value = ticks.last().copied().unwrap_or(1.0);
    let decimals = tick_decimals(&ticks);
    let bottom = LINE_H - LINE_BOTTOM;
    let plot_h = bottom - LINE_TOP;
    let plot_w = LINE_W - LINE_LEFT - LINE_RIGHT;
    let y_of = |v: f64| bottom - v / top_value * plot_h;
    let slot = plot_w / points.len() as f64;
    let x_of = |i: usize| LINE_LEFT + (i as f64 + 0.5) * slot;

    // Grid and y-axis labels.
    for &t in &ticks {
        let y = y_of(t);
        let class = if t == 0.0 {
            "chart-baseline"
        } else {
            "chart-grid"
        };
        let _ = write!(
            out,
            "<line class=\"{class}\" x1=\"{LINE_LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"currentColor\"/>\
             <text class=\"chart-tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{:.decimals$}</text>",
            LINE_W - LINE_RIGHT,
            LINE_LEFT - 6.0,
            y + 4.0,
            t,
        );
    }

    // X labels.
    let stride = label_stride(points.len(), (plot_w / LINE_MIN_LABEL_SPACING) as i64);
    for (i, p) in points.iter().enumerate() {
        if shown(i, points.len(), stride) {
            // Every other label is "alt", so narrow screens can hide them.
            let alt = if (points.len() - 1 - i) / stride % 2 == 1 {
                " alt"
            } else {
                ""
            };
            let _ = write!(
                out,
                "<text class=\"chart-label{alt}\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x_of(i),
                LINE_H - 8.0,
                esc(&p.label),
            );
        }
    }

    // Line segments between gaps.
    for seg in segments(&values) {
        if seg.len() < 2 {
            continue;
        }
        let coords: Vec<String> = seg
            .iter()
            .map(|&(i, v)| format!("{:.1},{:.1}", x_of(i), y_of(v)))
            .collect();
        let _ = write!(
            out,
            "<polyline class=\"chart-line-path\" fill=\"none\" stroke=\"currentColor\" points=\"{}\"/>",
            coords.join(" ")
        );
    }

    // Markers with tooltips.
    for (i, (p, v)) in points.iter().zip(&values).enumerate() {
        if let Some(v) = v {
            let _ = write!(
                out,
                "<circle class=\"chart-point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\"><title>{}: {}</title></circle>",
                x_of(i),
                y_of(*v),
                esc(&p.label),
                esc(&p.display),
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// A small trend line for table cells (80×20), scaled between the smallest
/// and largest value, with gaps where a value is `None` and a dot on the
/// last value. Its accessible name says where the trend starts and ends.
pub fn sparkline(values: &[Option<f64>]) -> String {
    let values: Vec<Option<f64>> = values.iter().map(|v| v.filter(|v| v.is_finite())).collect();
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    let label = match (present.first(), present.last()) {
        (Some(first), Some(last)) if present.len() > 1 => {
            format!("Trend from {} to {}", short_num(*first), short_num(*last))
        }
        (Some(only), _) => format!("Trend: {}", short_num(*only)),
        _ => "No data".to_string(),
    };
    let mut out = format!(
        "<svg class=\"sparkline\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {SPARK_W} {SPARK_H}\" \
         width=\"{SPARK_W}\" height=\"{SPARK_H}\" role=\"img\" aria-label=\"{label}\"><title>{label}</title>"
    );
    if present.is_empty() {
        out.push_str("</svg>");
        return out;
    }
    let lo = present.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = present.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let n = values.len();
    let x_of = |i: usize| {
        if n == 1 {
            SPARK_W / 2.0
        } else {
            SPARK_PAD + i as f64 * (SPARK_W - 2.0 * SPARK_PAD) / (n - 1) as f64
        }
    };
    let y_of = |v: f64| {
        if hi > lo {
            SPARK_H - SPARK_PAD - (v - lo) / (hi - lo) * (SPARK_H - 2.0 * SPARK_PAD)
        } else {
            SPARK_H / 2.0
        }
    };
    for seg in segments(&values) {
        if seg.len() < 2 {
            let (i, v) = seg[0];
            let _ = write!(
                out,
                "<circle class=\"sparkline-dot\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"1.5\"/>",
                x_of(i),
                y_of(v)
            );
            continue;
        }
        let coords: Vec<String> = seg
            .iter()
            .map(|&(i, v)| format!("{:.1},{:.1}", x_of(i), y_of(v)))
            .collect();
        let _ = write!(
            out,
            "<polyline class=\"sparkline-path\" fill=\"none\" stroke=\"currentColor\" points=\"{}\"/>",
            coords.join(" ")
        );
    }
    if let Some((i, v)) = values
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, v)| v.map(|v| (i, v)))
    {
        let _ = write!(
            out,
            "<circle class=\"sparkline-last\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\"/>",
            x_of(i),
            y_of(v)
        );
    }
    out.push_str("</svg>");
    out
}

/// Round axis ticks from 0 to a "nice" maximum at or above `max`: 3 to 5
/// ticks (2 to 4 intervals) spaced by 1, 2 or 5 × 10ⁿ, or 25 × 10ⁿ (n ≥ 0,
/// so integer scales never get fractional ticks). A `max` that is zero,
/// negative or not finite is treated as 1.
///
/// `nice_ticks(45.0)` is `[0, 20, 40, 60]`; `nice_ticks(100.0)` is
/// `[0, 25, 50, 75, 100]`.
pub fn nice_ticks(max: f64) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let mut magnitude = 10f64.powf((max / 4.0).log10().floor() - 1.0);
    let step = 'found: loop {
        for m in [1.0, 2.0, 2.5, 5.0] {
            if m == 2.5 && magnitude < 10.0 {
                continue;
            }
            let step = m * magnitude;
            if (max / step).ceil() <= 4.0 {
                break 'found step;
            }
        }
        magnitude *= 10.0;
    };
    let intervals = ((max / step).ceil() as usize).max(1);
    let decimals = step_decimals(step);
    let scale = 10f64.powi(decimals as i32);
    (0..=intervals)
        .map(|i| (i as f64 * step * scale).round() / scale)
        .collect()
}

/// Decimals needed to print ticks spaced by `step` exactly.
fn step_decimals(step: f64) -> usize {
    if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil().max(0.0) as usize
    }
}

fn tick_decimals(ticks: &[f64]) -> usize {
    match ticks {
        [_, second, ..] => step_decimals(*second),
        _ => 0,
    }
}

/// Where each column goes, in tenths of a viewBox unit.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BarLayout {
    /// The y of the zero line.
    baseline: i64,
    bars: Vec<BarGeom>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BarGeom {
    x: i64,
    y: i64,
    width: i64,
    height: i64,
}

fn bar_layout(bars: &[Bar]) -> BarLayout {
    let has_negative = bars.iter().any(|b| b.value < 0);
    let plot_bottom = (BAR_H - BAR_LABEL_ROOM - if has_negative { BAR_NEG_ROOM } else { 0 }) * 10;
    let plot_top = BAR_TOP * 10;
    let plot_h = i128::from(plot_bottom - plot_top);
    // i128: the span of two i64 values (and its product with the height)
    // cannot overflow.
    let pos = bars
        .iter()
        .map(|b| i128::from(b.value))
        .max()
        .unwrap_or(0)
        .max(0);
    let neg = bars
        .iter()
        .map(|b| -i128::from(b.value))
        .max()
        .unwrap_or(0)
        .max(0);
    let range = pos + neg;
    let scaled = |amount: i128| -> i64 {
        if range == 0 {
            0
        } else {
            // Rounded half up; the result is at most plot_h.
            ((amount * plot_h * 2 + range) / (range * 2)) as i64
        }
    };
    let baseline = if range == 0 {
        plot_bottom
    } else {
        plot_top + scaled(pos)
    };
    let n = bars.len().max(1) as i64;
    let slot = (BAR_W - BAR_LEFT - BAR_RIGHT) * 10 / n;
    let width = (slot * 6 / 10).min(BAR_MAX_WIDTH * 10);
    let geoms = bars
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let height = scaled(i128::from(b.value).abs());
            let x = BAR_LEFT * 10 + i as i64 * slot + (slot - width) / 2;
            let y = if b.value < 0 {
                baseline
            } else {
                baseline - height
            };
            BarGeom {
                x,
                y,
                width,
                height,
            }
        })
        .collect();
    BarLayout {
        baseline,
        bars: geoms,
    }
}

/// Every how many categories a label fits, given how many labels fit.
fn label_stride(count: usize, fit: i64) -> usize {
    let fit = fit.max(1) as usize;
    count.div_ceil(fit).max(1)
}

/// Whether category `i` of `count` is labelled: every `stride`-th, counting
/// back from the last (the latest month is always labelled).
fn shown(i: usize, count: usize, stride: usize) -> bool {
    let from_last = count - 1 - i;
    let remainder = from_last % stride;
    remainder == 0
}

/// Runs of consecutive present values, with their indices.
fn segments(values: &[Option<f64>]) -> Vec<Vec<(usize, f64)>> {
    let mut out: Vec<Vec<(usize, f64)>> = Vec::new();
    let mut current = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => current.push((i, *v)),
            None if !current.is_empty() => out.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn open_svg(class: &str, id: &str, w: i64, h: i64, title: &str, desc: &str) -> String {
    format!(
        "<svg class=\"{class}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" \
         width=\"100%\" preserveAspectRatio=\"xMidYMid meet\" role=\"img\" \
         aria-labelledby=\"{id}-title {id}-desc\">\
         <title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>",
        esc(title),
        esc(desc),
    )
}

fn no_data(out: &mut String, x: i64, y: i64) {
    let _ = write!(
        out,
        "<text class=\"chart-empty\" x=\"{x}\" y=\"{y}\" text-anchor=\"middle\">No data</text>"
    );
}

/// A deterministic element id from the chart's kind and content (FNV-1a).
fn chart_id<'a>(
    kind: &'a str,
    title: &'a str,
    desc: &'a str,
    rest: impl Iterator<Item = &'a str>,
) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let parts = [kind, title, desc].into_iter().chain(rest);
    for part in parts {
        for byte in part.bytes().chain([0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("chart-{kind}-{:08x}", hash as u32)
}

/// Formats tenths of a unit as a decimal ("123.4", "12").
fn tenths(t: i64) -> String {
    let sign = if t < 0 { "-" } else { "" };
    let t = t.unsigned_abs();
    let (whole, fraction) = (t / 10, t % 10);
    if fraction == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{fraction}")
    }
}

/// A number without a trailing ".0" (one decimal at most).
fn short_num(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// Escapes text for XML/HTML text and attribute values; drops the control
/// characters XML does not allow.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(label: &str, value: i64, display: &str) -> Bar {
        Bar {
            label: label.into(),
            value,
            display: display.into(),
            class: None,
        }
    }

    fn point(label: &str, value: Option<f64>) -> Point {
        let display = value.map_or("no data".to_string(), |v| format!("{v:.1} days"));
        Point {
            label: label.into(),
            value,
            display,
        }
    }

    fn aging() -> Vec<Bar> {
        let data = [
            ("Current", 1_250_000, "$12,500.00"),
            ("1–30", 480_050, "$4,800.50"),
            ("31–60", 210_000, "$2,100.00"),
            ("61–90", 0, "$0.00"),
            ("90+", 95_099, "$950.99"),
        ];
        data.iter()
            .zip(AGING_CLASSES)
            .map(|(&(l, v, d), c)| Bar {
                class: Some(c),
                ..bar(l, v, d)
            })
            .collect()
    }

    fn months() -> Vec<Point> {
        let names = [
            "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Jan",
        ];
        let values = [
            41.2, 43.0, 45.5, 44.1, 39.8, 38.0, 40.3, 42.9, 47.6, 46.0, 44.4, 42.2,
        ];
        names
            .iter()
            .zip(values)
            .enumerate()
            .map(|(i, (n, v))| point(&format!("{n} {}", if i < 11 { 25 } else { 26 }), Some(v)))
            .collect()
    }

    /// A minimal well-formedness check: every tag is closed in order,
    /// attribute values are quoted, and no `<` or `&` stands alone in text.
    fn assert_well_formed(svg: &str) {
        let mut stack: Vec<&str> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let text = &rest[..start];
            assert_entities_ok(text);
            let end = rest[start..].find('>').expect("unclosed tag") + start;
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
            assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes: {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name), "mismatched close in {svg}");
            } else if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap());
            }
            rest = &rest[end + 1..];
        }
        assert_entities_ok(rest);
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(!svg.contains("style"), "no inline styles under the CSP");
        assert!(!svg.contains("<script"), "no scripts");
    }

    fn assert_entities_ok(text: &str) {
        for (i, _) in text.match_indices('&') {
            let entity = &text[i..text[i..].find(';').map_or(text.len(), |e| i + e + 1)];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].contains(&entity),
                "bare & in {text}"
            );
        }
    }

    /// The values of attribute `name` on elements `<element ...>`, in order.
    fn attrs(svg: &str, element: &str, name: &str) -> Vec<f64> {
        svg.split(&format!("<{element} "))
            .skip(1)
            .map(|s| {
                let tag = &s[..s.find('>').unwrap()];
                let key = format!(" {name}=\"");
                let from = tag.find(&key).map(|i| i + key.len()).unwrap_or_else(|| {
                    assert!(tag.starts_with(&key[1..]), "no {name} in {tag}");
                    key.len() - 1
                });
                tag[from..from + tag[from..].find('"').unwrap()]
                    .parse()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn labels_and_titles_are_escaped() {
        let evil = "<script>alert('x')</script> & \"co\"";
        let svg = bar_chart(
            evil,
            evil,
            &[Bar {
                display: evil.into(),
                ..bar(evil, 5, "")
            }],
        );
        assert_well_formed(&svg);
        assert!(!svg.contains("<script>"));
        assert!(
            svg.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;co&quot;")
        );

        let svg = line_chart(
            evil,
            evil,
            &[Point {
                display: evil.into(),
                ..point(evil, Some(3.0))
            }],
        );
        assert_well_formed(&svg);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("<title id=\"chart-line-"));
        assert!(svg.contains("&lt;script&gt;"));
        assert_eq!(esc("a\u{0}b\u{1b}c\nd"), "abc\nd");
    }

    #[test]
    fn bar_heights_are_proportional_to_values() {
        let bars = [
            bar("a", 100, "1.00"),
            bar("b", 50, "0.50"),
            bar("c", 25, "0.25"),
            bar("d", 0, "0"),
        ];
        let layout = bar_layout(&bars);
        let h: Vec<i64> = layout.bars.iter().map(|g| g.height).collect();
        let plot = (BAR_H - BAR_LABEL_ROOM - BAR_TOP) * 10;
        assert_eq!(h, [plot, plot / 2, plot / 4, 0]);
        // Columns stand on the baseline, which is the bottom of the plot.
        assert_eq!(layout.baseline, (BAR_H - BAR_LABEL_ROOM) * 10);
        for g in &layout.bars {
            assert_eq!(g.y + g.height, layout.baseline);
        }
        // The markup carries the same geometry.
        let svg = bar_chart("t", "d", &bars);
        assert_well_formed(&svg);
        let heights = attrs(&svg, "rect", "height");
        assert_eq!(
            heights,
            h.iter().map(|&t| t as f64 / 10.0).collect::<Vec<_>>()
        );
        assert_eq!(svg.matches("class=\"chart-value\"").count(), 4);
        assert_eq!(svg.matches("class=\"chart-label\"").count(), 4);
        assert!(svg.contains(">0.25</text>"));
    }

    #[test]
    fn huge_values_do_not_overflow() {
        let bars = [bar("max", i64::MAX, "max"), bar("min", i64::MIN, "min")];
        let layout = bar_layout(&bars);
        let plot = (BAR_H - BAR_LABEL_ROOM - BAR_NEG_ROOM - BAR_TOP) * 10;
        let total: i64 = layout.bars.iter().map(|g| g.height).sum();
        assert!((total - plot).abs() <= 1, "{total} vs {plot}");
        assert_well_formed(&bar_chart("t", "d", &bars));
    }

    #[test]
    fn negative_bars_hang_below_the_baseline() {
        let bars = [bar("in", 300, "3.00"), bar("credit", -100, "−1.00")];
        let layout = bar_layout(&bars);
        let [up, down] = [layout.bars[0], layout.bars[1]];
        assert_eq!(up.y + up.height, layout.baseline);
        assert_eq!(down.y, layout.baseline);
        assert_eq!(up.height, down.height * 3);
        let svg = bar_chart("t", "d", &bars);
        assert_well_formed(&svg);
        assert!(svg.contains("class=\"bar negative\""));
        assert!(svg.contains(">−1.00</text>"));
    }

    #[test]
    fn empty_and_all_zero_bar_charts() {
        let svg = bar_chart("Aging", "Nothing open", &[]);
        assert_well_formed(&svg);
        assert!(svg.contains(">No data</text>"));
        assert!(!svg.contains("<rect"));

        let zeros: Vec<Bar> = ["Current", "1–30", "90+"]
            .iter()
            .map(|l| bar(l, 0, "€0.00"))
            .collect();
        let layout = bar_layout(&zeros);
        assert!(
            layout
                .bars
                .iter()
                .all(|g| g.height == 0 && g.y == layout.baseline)
        );
        let svg = bar_chart("Aging", "Nothing open", &zeros);
        assert_well_formed(&svg);
        assert_eq!(svg.matches(">€0.00</text>").count(), 3);
        assert!(svg.contains(">1–30</text>"));
        assert!(svg.contains("chart-baseline"));
        assert!(!svg.contains("No data"));
    }

    #[test]
    fn crowded_bar_labels_are_thinned() {
        let bars: Vec<Bar> = (0..40)
            .map(|i| bar(&format!("d{i}"), i, &i.to_string()))
            .collect();
        let svg = bar_chart("t", "d", &bars);
        assert_well_formed(&svg);
        let labels = svg.matches("class=\"chart-label\"").count();
        assert!((5..=10).contains(&labels), "{labels}");
        assert!(svg.contains(">d39</text>"), "the last column is labelled");
        assert_eq!(svg.matches("<rect").count(), 40);
        assert_eq!(svg.matches("<title>").count(), 40);
    }

    #[test]
    fn nice_ticks_are_round() {
        assert_eq!(nice_ticks(45.0), [0.0, 20.0, 40.0, 60.0]);
        assert_eq!(nice_ticks(41.0), [0.0, 20.0, 40.0, 60.0]);
        assert_eq!(nice_ticks(40.0), [0.0, 10.0, 20.0, 30.0, 40.0]);
        assert_eq!(nice_ticks(100.0), [0.0, 25.0, 50.0, 75.0, 100.0]);
        assert_eq!(nice_ticks(10.0), [0.0, 5.0, 10.0]);
        assert_eq!(nice_ticks(7.0), [0.0, 2.0, 4.0, 6.0, 8.0]);
        assert_eq!(nice_ticks(0.0), [0.0, 0.5, 1.0]);
        assert_eq!(nice_ticks(f64::NAN), [0.0, 0.5, 1.0]);
        assert_eq!(nice_ticks(0.3), [0.0, 0.1, 0.2, 0.3]);
        assert_eq!(nice_ticks(1234.0), [0.0, 500.0, 1000.0, 1500.0]);
        for max in [
            0.01, 0.7, 1.0, 3.3, 9.99, 12.0, 61.0, 99.9, 180.0, 365.0, 1e6, 123_456.7,
        ] {
            let t = nice_ticks(max);
            assert!((3..=5).contains(&t.len()), "{max}: {t:?}");
            assert_eq!(t[0], 0.0);
            assert!(*t.last().unwrap() >= max, "{max}: {t:?}");
            let step = t[1];
            let mantissa = step / 10f64.powf(step.log10().floor());
            assert!(
                [1.0, 2.0, 2.5, 5.0]
                    .iter()
                    .any(|m| (mantissa - m).abs() < 1e-9),
                "{max}: {t:?}"
            );
        }
    }

    #[test]
    fn line_chart_splits_at_gaps() {
        let points = [
            point("Jan 26", Some(40.0)),
            point("Feb 26", Some(42.0)),
            point("Mar 26", None),
            point("Apr 26", Some(44.0)),
            point("May 26", Some(41.0)),
            point("Jun 26", Some(39.0)),
            point("Jul 26", None),
            point("Aug 26", Some(38.0)),
        ];
        let svg = line_chart("DSO", "Days sales outstanding", &points);
        assert_well_formed(&svg);
        let lines: Vec<&str> = svg.split("<polyline ").skip(1).collect();
        assert_eq!(
            lines.len(),
            2,
            "two segments; the lone August point has no line"
        );
        let pairs = |s: &str| {
            s.split("points=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .split(' ')
                .count()
        };
        assert_eq!(pairs(lines[0]), 2);
        assert_eq!(pairs(lines[1]), 3);
        assert_eq!(svg.matches("<circle").count(), 6);
        assert!(svg.contains("<title>Aug 26: 38.0 days</title>"));
        assert!(!svg.contains("Mar 26: "), "no marker for a gap");
        assert!(svg.contains(">Mar 26</text>"), "but its label stays");
        // Ticks 0..60 by 20; 40 days sits two thirds of the way down.
        let ticks: Vec<&str> = svg.split("class=\"chart-tick\"").skip(1).collect();
        assert_eq!(ticks.len(), 4);
        let cy = attrs(&svg, "circle", "cy");
        let bottom = LINE_H - LINE_BOTTOM;
        let plot_h = bottom - LINE_TOP;
        assert!(
            (cy[0] - (bottom - plot_h * 40.0 / 60.0)).abs() < 0.06,
            "{}",
            cy[0]
        );
    }

    #[test]
    fn line_chart_without_values() {
        for points in [vec![], vec![point("Jan 26", None), point("Feb 26", None)]] {
            let svg = line_chart("DSO", "No history yet", &points);
            assert_well_formed(&svg);
            assert!(svg.contains(">No data</text>"));
            assert!(!svg.contains("<polyline"));
        }
        // All zero: a flat line on the baseline, unit ticks.
        let svg = line_chart(
            "DSO",
            "d",
            &[point("Jan 26", Some(0.0)), point("Feb 26", Some(0.0))],
        );
        assert_well_formed(&svg);
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(attrs(&svg, "circle", "cy"), [LINE_H - LINE_BOTTOM; 2]);
        // Not-a-number and negative values: a gap and the baseline.
        let svg = line_chart(
            "DSO",
            "d",
            &[point("a", Some(f64::NAN)), point("b", Some(-3.0))],
        );
        assert_well_formed(&svg);
        assert_eq!(attrs(&svg, "circle", "cy"), [LINE_H - LINE_BOTTOM]);
    }

    #[test]
    fn crowded_x_labels_keep_the_last() {
        let points: Vec<Point> = (0..36)
            .map(|i| point(&format!("m{i}"), Some(f64::from(i))))
            .collect();
        let svg = line_chart("t", "d", &points);
        assert_well_formed(&svg);
        let labels = svg.matches("class=\"chart-label").count();
        assert!((6..=12).contains(&labels), "{labels}");
        assert_eq!(svg.matches("class=\"chart-label alt\"").count(), labels / 2);
        assert!(svg.contains(">m35</text>"));
        assert_eq!(svg.matches("<circle").count(), 36);
        // Twelve months all fit.
        let svg = line_chart("t", "d", &months());
        assert_eq!(svg.matches("class=\"chart-label").count(), 12);
        assert!(svg.contains("<text class=\"chart-label\" x=\"676.5\" y=\"232.0\" text-anchor=\"middle\">Jan 26</text>"));
    }

    #[test]
    fn chart_ids_differ_by_content() {
        let a = bar_chart("Aging", "d", &aging());
        let b = bar_chart("Inflows", "d", &aging());
        let id = |s: &str| {
            s.split("aria-labelledby=\"")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_string()
        };
        assert_ne!(id(&a), id(&b));
        assert!(a.contains(&format!("<title id=\"{}\">", id(&a))));
        assert_eq!(a, bar_chart("Aging", "d", &aging()), "deterministic");
    }

    #[test]
    fn sparklines() {
        let svg = sparkline(&[Some(40.0), Some(42.5), None, Some(38.0), Some(39.0)]);
        assert_well_formed(&svg);
        assert!(svg.contains("aria-label=\"Trend from 40 to 39\""));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("sparkline-last").count(), 1);
        let empty = sparkline(&[None, None]);
        assert_well_formed(&empty);
        assert!(empty.contains("No data"));
        let flat = sparkline(&[Some(5.0), Some(5.0)]);
        assert_well_formed(&flat);
        assert!(flat.contains("points=\"2.0,10.0 78.0,10.0\""));
        let single = sparkline(&[Some(1.25)]);
        assert_well_formed(&single);
        assert!(single.contains("Trend: 1.2") || single.contains("Trend: 1.3"));
    }

    /// One element per line, for reviewable snapshots.
    fn lines(svg: String) -> String {
        svg.replace("><", ">\n<")
    }

    #[test]
    fn snapshot_aging_bar_chart() {
        insta::assert_snapshot!(lines(bar_chart(
            "Receivables by age",
            "Open balance in USD by days past due: most of it is current.",
            &aging()
        )));
    }

    #[test]
    fn snapshot_inflows_with_a_negative_bar() {
        let bars = vec![
            Bar {
                class: Some(INFLOW_CLASS),
                ..bar("Next 30 days", 2_000_000, "€20,000.00")
            },
            Bar {
                class: Some(INFLOW_CLASS),
                ..bar("31–60 days", 750_000, "€7,500.00")
            },
            Bar {
                class: Some(INFLOW_CLASS),
                ..bar("61–90 days", -125_000, "−€1,250.00")
            },
        ];
        insta::assert_snapshot!(lines(bar_chart(
            "Expected inflows",
            "Cash expected in the next 90 days, net of credits.",
            &bars
        )));
    }

    #[test]
    fn snapshot_dso_trend_with_gap() {
        let mut points = months();
        points[4].value = None;
        points[4].display = "no data".into();
        insta::assert_snapshot!(lines(line_chart(
            "DSO, last 12 months",
            "Days sales outstanding by month, between 38 and 48 days.",
            &points
        )));
    }
}
