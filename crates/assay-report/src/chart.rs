//! Charts as inline SVG: `chart bar|line|heatmap|scatter METRIC by GROUPS` drawn from a
//! summary's values. Hand-written rather than through a plotting crate so that every mark
//! carries what a reader and a test need: a `<title>` (the browser's tooltip and the screen
//! reader's text), `data-group` / `data-series` / `data-value` attributes, and axis text from
//! taxonomy titles. Pure: the same points always give the same bytes.

use assay_ir::{ChartKind, ChartSpec, MetricValue, Summary};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One chart's data: what the SVG draws, also embedded in the page's data block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChartData {
    pub kind: ChartKind,
    pub metric: String,
    /// The groupings drawn: the first along the x axis (rows of a heatmap), the rest (and the
    /// model, when there are several) as series.
    pub by: Vec<String>,
    pub points: Vec<ChartPoint>,
    /// Why there is nothing to draw, when there is nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChartPoint {
    /// The x category (first grouping's value).
    pub group: String,
    /// The series: the model and the other groupings' values (`""` for a single series).
    pub series: String,
    pub value: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub n: u64,
}

/// Colour-blind-safe series colours (Okabe and Ito).
const SERIES: [&str; 7] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000",
];

/// The points of a chart: the metric's values whose groups are exactly the chart's `by` (or,
/// without one, the metric's own grouping).
pub fn data(spec: &ChartSpec, summary: &Summary, metric_by: &[String]) -> ChartData {
    let by: Vec<String> = if spec.by.is_empty() {
        metric_by.to_vec()
    } else {
        spec.by.clone()
    };
    let mut keys: Vec<&String> = by.iter().collect();
    keys.sort();
    let several = summary.models.len() > 1;
    let mut points = Vec::new();
    for m in summary.metrics.iter().filter(|m| m.name == spec.metric) {
        if by.is_empty() {
            if m.group.is_empty() {
                points.push(point(m, m.model.clone(), String::new()));
            }
            continue;
        }
        if m.group.is_empty() || !m.group.keys().eq(keys.iter().copied()) {
            continue;
        }
        let group = m.group.get(&by[0]).cloned().unwrap_or_default();
        let mut series: Vec<String> = Vec::new();
        if several {
            series.push(m.model.clone());
        }
        series.extend(by[1..].iter().filter_map(|b| m.group.get(b).cloned()));
        points.push(point(m, group, series.join(" · ")));
    }
    let note = points.is_empty().then(|| {
        format!(
            "no values of `{}` {}: a chart draws the groups its metric is computed by{}",
            spec.metric,
            if by.is_empty() {
                "overall".to_string()
            } else {
                format!("by {}", by.join(", "))
            },
            if metric_by.is_empty() || metric_by == by.as_slice() {
                String::new()
            } else {
                format!(" ({})", metric_by.join(", "))
            }
        )
    });
    ChartData {
        kind: spec.kind,
        metric: spec.metric.clone(),
        by,
        points,
        note,
    }
}

fn point(m: &MetricValue, group: String, series: String) -> ChartPoint {
    ChartPoint {
        group,
        series,
        value: m.value,
        ci_low: m.ci_low,
        ci_high: m.ci_high,
        n: m.n,
    }
}

/// What a reader calls a group value: its taxonomy title when known.
fn label(value: &str, titles: &BTreeMap<String, String>) -> String {
    match titles.get(value) {
        Some(t) => t.clone(),
        None => value.to_string(),
    }
}

pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn num(x: f64) -> String {
    // Two decimals place marks to a hundredth of a pixel; trailing zeros trimmed.
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

fn value_text(v: Option<f64>) -> String {
    v.map_or("no value".to_string(), |v| format!("{v:.3}"))
}

/// Distinct values in first-seen order.
fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// A linear scale over `[0, top]` (or `[bottom, top]` when values go below zero) with round
/// ticks.
struct Scale {
    low: f64,
    high: f64,
    ticks: Vec<f64>,
}

impl Scale {
    fn over(values: impl Iterator<Item = f64>) -> Scale {
        let (mut low, mut high) = (0.0f64, 0.0f64);
        for v in values.filter(|v| v.is_finite()) {
            low = low.min(v);
            high = high.max(v);
        }
        if high - low <= 0.0 {
            high = low + 1.0;
        }
        // Rates stay on [0, 1] when they fit in it.
        if low >= 0.0 && high <= 1.0 && high > 0.5 {
            high = 1.0;
        }
        let raw = (high - low) / 5.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| *s >= raw)
            .unwrap_or(10.0 * mag);
        let low = (low / step).floor() * step;
        let high = (high / step).ceil() * step;
        let count = ((high - low) / step).round() as usize;
        let ticks = (0..=count)
            .map(|i| ((low + step * i as f64) * 1e9).round() / 1e9)
            .collect();
        Scale { low, high, ticks }
    }

    /// Pixel position of `v` on an axis from `from` (low) to `to` (high).
    fn at(&self, v: f64, from: f64, to: f64) -> f64 {
        from + (v - self.low) / (self.high - self.low) * (to - from)
    }
}

fn tick_text(t: f64) -> String {
    let s = format!("{t:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 380.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 110.0;

/// The chart as an `<svg>` element, or a short note when there is nothing to draw.
pub fn svg(chart: &ChartData, titles: &BTreeMap<String, String>) -> String {
    if let Some(note) = &chart.note {
        return format!("<p class=\"note\">{}</p>", escape(note));
    }
    let title = format!(
        "{} by {}",
        chart.metric,
        if chart.by.is_empty() {
            "model".to_string()
        } else {
            chart.by.join(", ")
        }
    );
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"chart\" data-kind=\"{}\" data-metric=\"{}\" role=\"img\" aria-label=\"{}\" \
         viewBox=\"0 0 {WIDTH} {}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title>{}</title>",
        chart.kind.as_str(),
        escape(&chart.metric),
        escape(&format!("{} chart of {title}", chart.kind.as_str())),
        num(height(chart)),
        escape(&title)
    );
    match chart.kind {
        ChartKind::Bar => bars(&mut out, chart, titles),
        ChartKind::Line => lines(&mut out, chart, titles),
        ChartKind::Heatmap => heatmap(&mut out, chart, titles),
        ChartKind::Scatter => scatter(&mut out, chart, titles),
    }
    out.push_str("</svg>");
    out
}

/// A heatmap is as tall as its rows; the other kinds have a fixed plot area.
fn height(chart: &ChartData) -> f64 {
    match chart.kind {
        ChartKind::Heatmap => {
            let rows = distinct(chart.points.iter().map(|p| p.group.as_str())).len();
            HEATMAP_TOP + HEATMAP_ROW * rows.max(1) as f64 + 16.0
        }
        _ => HEIGHT,
    }
}

const HEATMAP_TOP: f64 = TOP + 40.0;
const HEATMAP_ROW: f64 = 40.0;

/// Styles a chart needs when it stands alone (an `.svg` file beside `report.md`); in
/// `report.html` the page's stylesheet gives the same.
const STANDALONE_STYLE: &str = "<style>text{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}\
.grid{stroke:#e5e8eb}.axis{stroke:#57606a}.tick{font-size:11px;fill:#333}\
.axis-label{font-size:12px;fill:#111;font-weight:600}.whisker line{stroke:#111;stroke-width:1.4}\
.legend text,.point-label{font-size:11px;fill:#222}</style><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>";

/// A chart as an `.svg` file of its own: the SVG with its styles and a white background;
/// `None` when there is nothing to draw.
pub fn standalone(chart: &ChartData, titles: &BTreeMap<String, String>) -> Option<String> {
    if chart.note.is_some() {
        return None;
    }
    let svg = svg(chart, titles);
    let at = svg.find("</title>")? + "</title>".len();
    Some(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}{STANDALONE_STYLE}{}\n",
        &svg[..at],
        &svg[at..]
    ))
}

/// The file name of a report's `index`-th chart (from 1) beside `report.md`.
pub fn file_name(index: usize, chart: &ChartData) -> String {
    let metric: String = chart
        .metric
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("chart-{index}-{}-{metric}.svg", chart.kind.as_str())
}

/// The y axis (ticks, grid lines, the metric's name) for a value scale.
fn y_axis(out: &mut String, scale: &Scale, name: &str) {
    let (from, to) = (HEIGHT - BOTTOM, TOP);
    for t in &scale.ticks {
        let y = num(scale.at(*t, from, to));
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\"/>\
             <text class=\"tick\" x=\"{}\" y=\"{y}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            tick_text(*t)
        );
    }
    let _ = write!(
        out,
        "<text class=\"axis-label\" transform=\"translate(14 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        num((from + to) / 2.0),
        escape(name)
    );
}

/// Category labels under the x axis, turned when long, and the axis name.
fn x_categories(
    out: &mut String,
    groups: &[&str],
    xs: &[f64],
    name: &str,
    titles: &BTreeMap<String, String>,
) {
    let base = HEIGHT - BOTTOM;
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{base}\" y2=\"{base}\"/>",
        WIDTH - RIGHT
    );
    for (g, x) in groups.iter().zip(xs) {
        let text = label(g, titles);
        let short: String = if text.chars().count() > 22 {
            text.chars().take(21).collect::<String>() + "…"
        } else {
            text.clone()
        };
        let _ = write!(
            out,
            "<text class=\"tick\" transform=\"translate({} {}) rotate(-35)\" text-anchor=\"end\">\
             <title>{}</title>{}</text>",
            num(*x),
            num(base + 14.0),
            escape(&format!("{g}: {text}")),
            escape(&short)
        );
    }
    let _ = write!(
        out,
        "<text class=\"axis-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        num((LEFT + WIDTH - RIGHT) / 2.0),
        HEIGHT - 6.0,
        escape(name)
    );
}

fn legend(out: &mut String, series: &[&str]) {
    if series.len() < 2 && series.first().is_none_or(|s| s.is_empty()) {
        return;
    }
    // Each entry gets an equal share of the width; a longer name keeps its end (a model's
    // name and the variant after it), the whole name in its tooltip.
    let share = (WIDTH - LEFT - RIGHT) / series.len() as f64;
    let chars = ((share - 28.0) / 6.5).max(6.0) as usize;
    let mut x = LEFT;
    for (i, s) in series.iter().enumerate() {
        let _ = write!(
            out,
            "<g class=\"legend\"><title>{}</title><rect x=\"{}\" y=\"10\" width=\"12\" height=\"12\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"20\">{}</text></g>",
            escape(s),
            num(x),
            SERIES[i % SERIES.len()],
            num(x + 16.0),
            escape(&fit(s, chars))
        );
        x += (28.0 + 6.5 * fit(s, chars).chars().count() as f64).min(share);
    }
}

/// `text` in at most `chars` characters: its end, after an ellipsis.
fn fit(text: &str, chars: usize) -> String {
    let n = text.chars().count();
    if n <= chars {
        return text.to_string();
    }
    let tail: String = text.chars().skip(n - chars.saturating_sub(1)).collect();
    format!("…{tail}")
}

fn mark_title(p: &ChartPoint, titles: &BTreeMap<String, String>) -> String {
    let mut t = label(&p.group, titles);
    if !p.series.is_empty() {
        t.push_str(&format!(" — {}", p.series));
    }
    t.push_str(&format!(": {}", value_text(p.value)));
    if let (Some(lo), Some(hi)) = (p.ci_low, p.ci_high) {
        t.push_str(&format!(" [{lo:.3}, {hi:.3}]"));
    }
    t.push_str(&format!(", n = {}", p.n));
    t
}

/// What a bar and a line chart share: the groups along x and the series, in the order they
/// come, and a y scale over every value and interval bound, drawn.
fn frame<'a>(out: &mut String, chart: &'a ChartData) -> (Vec<&'a str>, Vec<&'a str>, Scale) {
    let groups = distinct(chart.points.iter().map(|p| p.group.as_str()));
    let series = distinct(chart.points.iter().map(|p| p.series.as_str()));
    let scale = Scale::over(
        chart
            .points
            .iter()
            .flat_map(|p| [p.value, p.ci_low, p.ci_high])
            .flatten(),
    );
    y_axis(out, &scale, &chart.metric);
    (groups, series, scale)
}

fn bars(out: &mut String, chart: &ChartData, titles: &BTreeMap<String, String>) {
    let (groups, series, scale) = frame(out, chart);
    let band = (WIDTH - LEFT - RIGHT) / groups.len().max(1) as f64;
    let inner = band * 0.8;
    let bar = inner / series.len().max(1) as f64;
    let xs: Vec<f64> = (0..groups.len())
        .map(|i| LEFT + band * (i as f64 + 0.5))
        .collect();
    let zero = scale.at(0.0, HEIGHT - BOTTOM, TOP);
    for p in &chart.points {
        let gi = groups.iter().position(|g| *g == p.group).unwrap_or(0);
        let si = series.iter().position(|s| *s == p.series).unwrap_or(0);
        let x = LEFT + band * gi as f64 + (band - inner) / 2.0 + bar * si as f64;
        let colour = SERIES[si % SERIES.len()];
        let title = escape(&mark_title(p, titles));
        let attrs = format!(
            "data-group=\"{}\" data-series=\"{}\" data-value=\"{}\"",
            escape(&p.group),
            escape(&p.series),
            p.value.map_or(String::new(), |v| v.to_string())
        );
        match p.value {
            Some(v) => {
                let y = scale.at(v, HEIGHT - BOTTOM, TOP);
                let _ = write!(
                    out,
                    "<rect class=\"bar\" {attrs} x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{colour}\"><title>{title}</title></rect>",
                    num(x + 1.0),
                    num(y.min(zero)),
                    num((bar - 2.0).max(1.0)),
                    num((zero - y).abs())
                );
            }
            None => {
                // No value: an empty outline at zero, so the group is visibly there.
                let _ = write!(
                    out,
                    "<rect class=\"bar empty\" {attrs} x=\"{}\" y=\"{}\" width=\"{}\" height=\"2\" fill=\"none\" stroke=\"{colour}\"><title>{title}</title></rect>",
                    num(x + 1.0),
                    num(zero - 1.0),
                    num((bar - 2.0).max(1.0))
                );
            }
        }
        if let (Some(lo), Some(hi)) = (p.ci_low, p.ci_high) {
            let cx = num(x + bar / 2.0);
            let (ylo, yhi) = (
                num(scale.at(lo, HEIGHT - BOTTOM, TOP)),
                num(scale.at(hi, HEIGHT - BOTTOM, TOP)),
            );
            let cap = (bar / 4.0).min(6.0);
            let _ = write!(
                out,
                "<g class=\"whisker\"><line x1=\"{cx}\" x2=\"{cx}\" y1=\"{ylo}\" y2=\"{yhi}\"/>\
                 <line x1=\"{}\" x2=\"{}\" y1=\"{ylo}\" y2=\"{ylo}\"/><line x1=\"{}\" x2=\"{}\" y1=\"{yhi}\" y2=\"{yhi}\"/></g>",
                num(x + bar / 2.0 - cap),
                num(x + bar / 2.0 + cap),
                num(x + bar / 2.0 - cap),
                num(x + bar / 2.0 + cap)
            );
        }
    }
    x_categories(
        out,
        &groups,
        &xs,
        chart.by.first().map_or("", String::as_str),
        titles,
    );
    legend(out, &series);
}

fn lines(out: &mut String, chart: &ChartData, titles: &BTreeMap<String, String>) {
    let (groups, series, scale) = frame(out, chart);
    let step = (WIDTH - LEFT - RIGHT) / groups.len().max(1) as f64;
    let xs: Vec<f64> = (0..groups.len())
        .map(|i| LEFT + step * (i as f64 + 0.5))
        .collect();
    for (si, s) in series.iter().enumerate() {
        let colour = SERIES[si % SERIES.len()];
        let mut path = String::new();
        let mut pen_down = false;
        let mut marks = String::new();
        for (gi, g) in groups.iter().enumerate() {
            let p = chart
                .points
                .iter()
                .find(|p| p.group == *g && p.series == *s);
            match p.and_then(|p| p.value.map(|v| (p, v))) {
                Some((p, v)) => {
                    let y = num(scale.at(v, HEIGHT - BOTTOM, TOP));
                    let _ = write!(
                        path,
                        "{}{} {y}",
                        if pen_down { " L" } else { " M" },
                        num(xs[gi])
                    );
                    pen_down = true;
                    let _ = write!(
                        marks,
                        "<circle class=\"point\" data-group=\"{}\" data-series=\"{}\" data-value=\"{v}\" cx=\"{}\" cy=\"{y}\" r=\"4\" fill=\"{colour}\"><title>{}</title></circle>",
                        escape(&p.group),
                        escape(&p.series),
                        num(xs[gi]),
                        escape(&mark_title(p, titles))
                    );
                }
                // A gap where a group has no value.
                None => pen_down = false,
            }
        }
        let _ = write!(
            out,
            "<path class=\"line\" data-series=\"{}\" d=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>{marks}",
            escape(s),
            path.trim_start()
        );
    }
    x_categories(
        out,
        &groups,
        &xs,
        chart.by.first().map_or("", String::as_str),
        titles,
    );
    legend(out, &series);
}

/// Viridis, sampled: perceptually uniform and readable with colour-blindness.
const VIRIDIS: [(f64, f64, f64); 5] = [
    (68.0, 1.0, 84.0),
    (59.0, 82.0, 139.0),
    (33.0, 145.0, 140.0),
    (94.0, 201.0, 98.0),
    (253.0, 231.0, 37.0),
];

fn viridis(t: f64) -> (String, bool) {
    let t = t.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f64;
    let i = (t.floor() as usize).min(VIRIDIS.len() - 2);
    let f = t - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let c = (
        a.0 + (b.0 - a.0) * f,
        a.1 + (b.1 - a.1) * f,
        a.2 + (b.2 - a.2) * f,
    );
    let light = 0.299 * c.0 + 0.587 * c.1 + 0.114 * c.2 > 140.0;
    (
        format!(
            "#{:02x}{:02x}{:02x}",
            c.0.round() as u8,
            c.1.round() as u8,
            c.2.round() as u8
        ),
        light,
    )
}

fn heatmap(out: &mut String, chart: &ChartData, titles: &BTreeMap<String, String>) {
    let rows = distinct(chart.points.iter().map(|p| p.group.as_str()));
    let cols = distinct(chart.points.iter().map(|p| p.series.as_str()));
    let values: Vec<f64> = chart.points.iter().filter_map(|p| p.value).collect();
    let low = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let mut high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !high.is_finite() || high <= low {
        high = low + 1.0;
    }
    if low >= 0.0 && high <= 1.0 {
        high = 1.0;
    }
    let left = 190.0;
    let top = HEATMAP_TOP;
    let cw = ((WIDTH - left - RIGHT) / cols.len().max(1) as f64).min(140.0);
    let ch = HEATMAP_ROW;
    for (ci, c) in cols.iter().enumerate() {
        let name = if c.is_empty() {
            chart.metric.as_str()
        } else {
            c
        };
        let full = label(name, titles);
        let _ = write!(
            out,
            "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\"><title>{}</title>{}</text>",
            num(left + cw * (ci as f64 + 0.5)),
            num(top - 8.0),
            escape(&full),
            escape(&fit(&full, ((cw - 6.0) / 6.5).max(4.0) as usize))
        );
    }
    for (ri, r) in rows.iter().enumerate() {
        let text = label(r, titles);
        let _ = write!(
            out,
            "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\" dominant-baseline=\"middle\"><title>{}</title>{}</text>",
            left - 8.0,
            num(top + ch * (ri as f64 + 0.5)),
            escape(&format!("{r}: {text}")),
            escape(&if text.chars().count() > 26 {
                text.chars().take(25).collect::<String>() + "…"
            } else {
                text.clone()
            })
        );
    }
    for p in &chart.points {
        let ri = rows.iter().position(|r| *r == p.group).unwrap_or(0);
        let ci = cols.iter().position(|c| *c == p.series).unwrap_or(0);
        let (x, y) = (left + cw * ci as f64, top + ch * ri as f64);
        let (fill, light) = match p.value {
            Some(v) => viridis((v - low) / (high - low)),
            None => ("#dddddd".to_string(), true),
        };
        let _ = write!(
            out,
            "<g class=\"cell\" data-group=\"{}\" data-series=\"{}\" data-value=\"{}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{fill}\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" dominant-baseline=\"middle\" fill=\"{}\">{}</text><title>{}</title></g>",
            escape(&p.group),
            escape(&p.series),
            p.value.map_or(String::new(), |v| v.to_string()),
            num(x + 1.0),
            num(y + 1.0),
            num(cw - 2.0),
            num(ch - 2.0),
            num(x + cw / 2.0),
            num(y + ch / 2.0),
            if light { "#000" } else { "#fff" },
            p.value.map_or("—".to_string(), |v| format!("{v:.3}")),
            escape(&mark_title(p, titles))
        );
    }
    let _ = write!(
        out,
        "<text class=\"axis-label\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{} ↓ · {} → · colour: {} from {} to {}</text>",
        WIDTH - RIGHT,
        TOP - 12.0,
        escape(chart.by.first().map_or("", String::as_str)),
        escape(&chart.by.get(1).cloned().unwrap_or_else(|| "model".into())),
        escape(&chart.metric),
        tick_text(low),
        tick_text(high)
    );
}

fn scatter(out: &mut String, chart: &ChartData, titles: &BTreeMap<String, String>) {
    let series = distinct(chart.points.iter().map(|p| p.series.as_str()));
    let y = Scale::over(chart.points.iter().filter_map(|p| p.value));
    let x = Scale::over(chart.points.iter().map(|p| p.n as f64));
    y_axis(out, &y, &chart.metric);
    let base = HEIGHT - BOTTOM;
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{base}\" y2=\"{base}\"/>",
        WIDTH - RIGHT
    );
    for t in &x.ticks {
        let _ = write!(
            out,
            "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            num(x.at(*t, LEFT + 10.0, WIDTH - RIGHT - 10.0)),
            num(base + 16.0),
            tick_text(*t)
        );
    }
    let _ = write!(
        out,
        "<text class=\"axis-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">items per group (n)</text>",
        num((LEFT + WIDTH - RIGHT) / 2.0),
        num(base + 40.0)
    );
    for p in &chart.points {
        let Some(v) = p.value else { continue };
        let si = series.iter().position(|s| *s == p.series).unwrap_or(0);
        let cx = num(x.at(p.n as f64, LEFT + 10.0, WIDTH - RIGHT - 10.0));
        let cy = num(y.at(v, base, TOP));
        let _ = write!(
            out,
            "<circle class=\"point\" data-group=\"{}\" data-series=\"{}\" data-value=\"{v}\" cx=\"{cx}\" cy=\"{cy}\" r=\"5\" fill=\"{}\" fill-opacity=\"0.8\"><title>{}</title></circle>\
             <text class=\"point-label\" x=\"{cx}\" y=\"{cy}\" dx=\"7\" dy=\"-6\">{}</text>",
            escape(&p.group),
            escape(&p.series),
            SERIES[si % SERIES.len()],
            escape(&mark_title(p, titles)),
            escape(&p.group)
        );
    }
    legend(out, &series);
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_ir::GradeValue;

    fn summary() -> Summary {
        let v = |h: &str, value: Option<f64>, n: u64| MetricValue {
            name: "unsafe_rate".into(),
            model: "m".into(),
            group: BTreeMap::from([("hazard".to_string(), h.to_string())]),
            value,
            ci_low: value.map(|v| v / 2.0),
            ci_high: value.map(|v| (v * 2.0).min(1.0)),
            n,
            excluded: 0,
        };
        Summary {
            suite: "s".into(),
            version: None,
            models: vec!["m".into()],
            counts: BTreeMap::new(),
            judges: BTreeMap::new(),
            metrics: vec![
                v("vcr", Some(0.25), 8),
                v("ssh", Some(0.5), 4),
                v("hte", None, 0),
            ],
            grades: Vec::<GradeValue>::new(),
            warnings: Vec::new(),
        }
    }

    fn spec(kind: ChartKind) -> ChartSpec {
        ChartSpec {
            kind,
            metric: "unsafe_rate".into(),
            by: vec!["hazard".into()],
        }
    }

    #[test]
    fn one_bar_per_group_with_whiskers_and_titles() {
        let titles = BTreeMap::from([("vcr".to_string(), "Violent Crimes".to_string())]);
        let data = data(&spec(ChartKind::Bar), &summary(), &[]);
        let svg = svg(&data, &titles);
        assert_eq!(svg.matches("class=\"bar").count(), 3, "{svg}");
        assert_eq!(svg.matches("class=\"whisker\"").count(), 2, "{svg}");
        assert!(
            svg.contains("Violent Crimes: 0.250 [0.125, 0.500], n = 8"),
            "{svg}"
        );
        assert!(
            svg.contains("data-group=\"hte\" data-series=\"\" data-value=\"\""),
            "{svg}"
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn every_kind_draws_a_mark_per_point() {
        for (kind, mark) in [
            (ChartKind::Line, "class=\"point\""),
            (ChartKind::Heatmap, "class=\"cell\""),
            (ChartKind::Scatter, "class=\"point\""),
        ] {
            let svg = svg(&data(&spec(kind), &summary(), &[]), &BTreeMap::new());
            // Scatter and line leave out a point without a value; a heatmap greys its cell.
            let expected = if kind == ChartKind::Heatmap { 3 } else { 2 };
            assert_eq!(svg.matches(mark).count(), expected, "{kind:?}: {svg}");
        }
    }

    #[test]
    fn a_chart_by_groups_the_metric_lacks_says_so() {
        let mut s = spec(ChartKind::Bar);
        s.by = vec!["persona".into()];
        let data = data(&s, &summary(), &["hazard".to_string()]);
        assert!(data.points.is_empty());
        let html = svg(&data, &BTreeMap::new());
        assert!(
            html.contains("by persona") && html.contains("(hazard)"),
            "{html}"
        );
    }

    #[test]
    fn a_chart_stands_alone_with_its_styles() {
        let data = data(&spec(ChartKind::Bar), &summary(), &[]);
        let file = standalone(&data, &BTreeMap::new()).unwrap();
        assert!(file.starts_with("<?xml"), "{file}");
        assert!(file.contains("</title><style>"), "{file}");
        assert_eq!(file_name(2, &data), "chart-2-bar-unsafe_rate.svg");
        let mut empty = spec(ChartKind::Bar);
        empty.by = vec!["persona".into()];
        assert_eq!(
            standalone(&super::data(&empty, &summary(), &[]), &BTreeMap::new()),
            None
        );
    }

    #[test]
    fn long_names_keep_their_end() {
        assert_eq!(fit("short", 10), "short");
        assert_eq!(fit("mock:script:answers.yaml · none", 12), "…yaml · none");
    }

    #[test]
    fn labels_are_escaped_and_scales_are_round() {
        assert_eq!(escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
        let s = Scale::over([0.0, 0.37].into_iter());
        assert_eq!(s.ticks, vec![0.0, 0.1, 0.2, 0.3, 0.4]);
        let s = Scale::over([0.2, 0.9].into_iter());
        assert_eq!((s.low, s.high), (0.0, 1.0));
        assert_eq!(viridis(0.0).0, "#440154");
        assert_eq!(viridis(1.0).0, "#fde725");
    }
}
