//! `assay-report`: a run's [`Summary`] as people read it: a terminal table (groups × metrics,
//! each value with its 95% interval and the counts it rests on, grades coloured unless told
//! not to), `report.md` for pull requests, and `report.html` ([`html`]: one self-contained
//! page with charts ([`chart`]) and an item browser); two summaries as a comparison. Pure
//! string building: the CLI reads the run folder, decides where the text goes and whether
//! colour is wanted (`NO_COLOR`).

pub mod chart;
pub mod compare_page;
pub mod html;
pub mod site;

use assay_ir::{GradeValue, MetricValue, Scoring, Summary, TableSpec};
use assay_score::Difference;
use comfy_table::{Cell, Color, Table, presets};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The tables to show: the spec's, or each metric by its own groups.
pub(crate) fn tables(summary: &Summary, scoring: &Scoring) -> Vec<TableSpec> {
    if !scoring.tables.is_empty() {
        return scoring.tables.clone();
    }
    let mut out: Vec<TableSpec> = Vec::new();
    for metric in &scoring.metrics {
        match out.iter_mut().find(|t| t.by == metric.by) {
            Some(t) => t.metrics.push(metric.name.clone()),
            None => out.push(TableSpec {
                metrics: vec![metric.name.clone()],
                by: metric.by.clone(),
            }),
        }
    }
    if out.is_empty() {
        // A summary scored without a plan: one table per grouping found.
        for m in &summary.metrics {
            let by: Vec<String> = m.group.keys().cloned().collect();
            match out.iter_mut().find(|t| t.by == by) {
                Some(t) if !t.metrics.contains(&m.name) => t.metrics.push(m.name.clone()),
                Some(_) => {}
                None => out.push(TableSpec {
                    metrics: vec![m.name.clone()],
                    by,
                }),
            }
        }
    }
    out
}

/// `0.125 [0.071, 0.201]`, or `—` when there is no value.
fn estimate(m: &MetricValue) -> String {
    match (m.value, m.ci_low, m.ci_high) {
        (Some(v), Some(lo), Some(hi)) => format!("{} [{}, {}]", number(v), number(lo), number(hi)),
        (Some(v), _, _) => number(v),
        _ => "—".to_string(),
    }
}

fn number(x: f64) -> String {
    format!("{x:.3}")
}

fn counts(m: &MetricValue) -> String {
    if m.excluded > 0 {
        format!("{} ({} excl.)", m.n, m.excluded)
    } else {
        m.n.to_string()
    }
}

fn group_label(group: &BTreeMap<String, String>, by: &[String]) -> Vec<String> {
    by.iter()
        .map(|b| group.get(b).cloned().unwrap_or_else(|| "all".to_string()))
        .collect()
}

/// One table row: its group, and each metric's value in it (if computed).
pub(crate) type Row<'a> = (BTreeMap<String, String>, Vec<Option<&'a MetricValue>>);

/// The rows of one table: per model, the overall row then every group, in summary order.
pub(crate) fn rows<'a>(summary: &'a Summary, table: &TableSpec, model: &str) -> Vec<Row<'a>> {
    let mut groups: Vec<BTreeMap<String, String>> = Vec::new();
    for m in &summary.metrics {
        let fits = m.model == model
            && table.metrics.contains(&m.name)
            && (m.group.is_empty() || m.group.keys().eq(sorted(&table.by)));
        if fits && !groups.contains(&m.group) {
            groups.push(m.group.clone());
        }
    }
    groups
        .into_iter()
        .map(|g| {
            let cells = table
                .metrics
                .iter()
                .map(|name| {
                    summary
                        .metrics
                        .iter()
                        .find(|m| m.model == model && &m.name == name && m.group == g)
                })
                .collect();
            (g, cells)
        })
        .collect()
}

fn sorted(by: &[String]) -> Vec<&String> {
    let mut v: Vec<&String> = by.iter().collect();
    v.sort();
    v
}

fn grade_color(grade: &str) -> Color {
    match grade {
        "Excellent" | "Very Good" => Color::Green,
        "Good" => Color::Cyan,
        "Fair" => Color::Yellow,
        _ => Color::Red,
    }
}

fn new_table(color: bool) -> Table {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED);
    t.force_no_tty();
    if color {
        t.enforce_styling();
    }
    t
}

/// How a model's results ended: `1 error, 10 ok`.
fn states(summary: &Summary, model: &str) -> String {
    summary
        .counts
        .get(model)
        .map(|c| {
            c.iter()
                .map(|(state, n)| format!("{n} {state}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The terminal report: counts, one table per declared table and model, then grades.
pub fn terminal(summary: &Summary, scoring: &Scoring, color: bool) -> String {
    let mut out = String::new();
    let title = scoring.title.as_deref().unwrap_or(&summary.suite);
    let _ = writeln!(out, "{title}");
    for model in &summary.models {
        let states = states(summary, model);
        let _ = writeln!(out, "{model}: {states}");
    }
    for spec in tables(summary, scoring) {
        for model in &summary.models {
            let rows = rows(summary, &spec, model);
            if rows.is_empty() {
                continue;
            }
            let mut t = new_table(color);
            let mut header: Vec<String> = spec.by.clone();
            for m in &spec.metrics {
                header.push(m.clone());
                header.push("n".to_string());
            }
            t.set_header(header);
            for (group, cells) in rows {
                let mut row: Vec<Cell> = group_label(&group, &spec.by)
                    .into_iter()
                    .map(Cell::new)
                    .collect();
                for cell in cells {
                    match cell {
                        Some(m) => {
                            row.push(Cell::new(estimate(m)));
                            row.push(Cell::new(counts(m)));
                        }
                        None => {
                            row.push(Cell::new("—"));
                            row.push(Cell::new(""));
                        }
                    }
                }
                t.add_row(row);
            }
            let _ = writeln!(
                out,
                "\n{model}: {} by {}",
                spec.metrics.join(", "),
                by_words(&spec.by)
            );
            let _ = writeln!(out, "{t}");
        }
    }
    if !summary.grades.is_empty() {
        let mut t = new_table(color);
        t.set_header(vec![
            "grade",
            "model",
            "group",
            "value",
            "reference",
            "result",
        ]);
        for g in &summary.grades {
            t.add_row(grade_row(g, color));
        }
        let _ = writeln!(out, "\nGrades");
        let _ = writeln!(out, "{t}");
    }
    for w in &summary.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

fn by_words(by: &[String]) -> String {
    if by.is_empty() {
        "all items".to_string()
    } else {
        by.join(", ")
    }
}

fn group_text(group: &BTreeMap<String, String>) -> String {
    if group.is_empty() {
        "overall".to_string()
    } else {
        group
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn grade_row(g: &GradeValue, color: bool) -> Vec<Cell> {
    let result = match &g.grade {
        Some(grade) => {
            let cell = Cell::new(grade);
            if color {
                cell.fg(grade_color(grade))
            } else {
                cell
            }
        }
        None => Cell::new(format!(
            "ungraded: {}",
            g.reason.as_deref().unwrap_or("no value")
        )),
    };
    vec![
        Cell::new(&g.name),
        Cell::new(&g.model),
        Cell::new(group_text(&g.group)),
        Cell::new(g.value.map_or("—".to_string(), number)),
        Cell::new(g.reference.map_or("—".to_string(), number)),
        result,
    ]
}

fn md_escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// `report.md`: the same tables in GitHub Markdown.
pub fn markdown(summary: &Summary, scoring: &Scoring) -> String {
    let mut out = String::new();
    let title = scoring.title.as_deref().unwrap_or(&summary.suite);
    let _ = writeln!(out, "# {}\n", md_escape(title));
    let version = summary
        .version
        .as_deref()
        .map(|v| format!(" {v}"))
        .unwrap_or_default();
    let _ = writeln!(out, "Suite `{}`{version}.\n", summary.suite);
    let _ = writeln!(out, "| model | results |\n|---|---|");
    for model in &summary.models {
        let states = states(summary, model);
        let _ = writeln!(out, "| `{}` | {states} |", md_escape(model));
    }
    if !summary.grades.is_empty() {
        let _ = writeln!(out, "\n## Grades\n");
        let _ = writeln!(
            out,
            "| grade | model | group | value | reference | result |\n|---|---|---|---|---|---|"
        );
        for g in &summary.grades {
            let result = match &g.grade {
                Some(grade) => format!("**{grade}**"),
                None => format!("ungraded: {}", g.reason.as_deref().unwrap_or("no value")),
            };
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} | {} | {} |",
                g.name,
                md_escape(&g.model),
                md_escape(&group_text(&g.group)),
                g.value.map_or("—".to_string(), number),
                g.reference.map_or("—".to_string(), number),
                md_escape(&result)
            );
        }
    }
    for spec in tables(summary, scoring) {
        for model in &summary.models {
            let rows = rows(summary, &spec, model);
            if rows.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "\n## {} by {} — `{}`\n",
                spec.metrics.join(", "),
                by_words(&spec.by),
                md_escape(model)
            );
            let mut header: Vec<String> = spec.by.clone();
            for m in &spec.metrics {
                header.push(format!("{m} (95% CI)"));
                header.push("n".into());
            }
            let _ = writeln!(out, "| {} |", header.join(" | "));
            let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
            for (group, cells) in rows {
                let mut row: Vec<String> = group_label(&group, &spec.by)
                    .iter()
                    .map(|g| md_escape(g))
                    .collect();
                for cell in cells {
                    match cell {
                        Some(m) => {
                            row.push(estimate(m));
                            row.push(counts(m));
                        }
                        None => {
                            row.push("—".into());
                            row.push(String::new());
                        }
                    }
                }
                let _ = writeln!(out, "| {} |", row.join(" | "));
            }
        }
    }
    let charts = chart_files(summary, scoring);
    if !charts.is_empty() {
        let _ = writeln!(out, "\n## Charts\n");
        for (name, alt, _) in &charts {
            let _ = writeln!(out, "![{}]({name})", md_escape(alt));
        }
    }
    let described: Vec<_> = scoring
        .metrics
        .iter()
        .filter_map(|m| m.description.as_ref().map(|d| (&m.name, d)))
        .collect();
    if !described.is_empty() {
        let _ = writeln!(out, "\n## Metrics\n");
        for (name, d) in described {
            let _ = writeln!(out, "- `{name}`: {}", md_escape(d));
        }
    }
    if !summary.warnings.is_empty() {
        let _ = writeln!(out, "\n## Warnings\n");
        for w in &summary.warnings {
            let _ = writeln!(out, "- {}", md_escape(w));
        }
    }
    let _ = writeln!(
        out,
        "\nErrors (failed calls or judgements) are left out of every value and counted as excluded; intervals are 95% unless the metric says otherwise."
    );
    out
}

/// The spec's charts as `.svg` files to write beside `report.md` (the ones with something to
/// draw): file name, a description, and the SVG; `report.md` links them.
pub fn chart_files(summary: &Summary, scoring: &Scoring) -> Vec<(String, String, String)> {
    scoring
        .charts
        .iter()
        .enumerate()
        .filter_map(|(i, spec)| {
            let metric_by = scoring
                .metrics
                .iter()
                .find(|m| m.name == spec.metric)
                .map(|m| m.by.as_slice())
                .unwrap_or_default();
            let data = chart::data(spec, summary, metric_by);
            let svg = chart::standalone(&data, &scoring.titles)?;
            let alt = format!(
                "{} of {} by {}",
                spec.kind.as_str(),
                spec.metric,
                if data.by.is_empty() {
                    "model".to_string()
                } else {
                    data.by.join(", ")
                }
            );
            Some((chart::file_name(i + 1, &data), alt, svg))
        })
        .collect()
}

/// Two runs side by side: `b − a` per metric and group with its interval.
pub fn comparison(diffs: &[Difference], a: &str, b: &str, markdown: bool) -> String {
    let mut out = String::new();
    let header = ["metric", "group", a, b, "difference (95% CI)"];
    let fmt = |x: Option<f64>| x.map_or("—".to_string(), number);
    let diff = |d: &Difference| match (d.difference, d.ci_low, d.ci_high) {
        (Some(v), Some(lo), Some(hi)) => format!("{:+.3} [{:+.3}, {:+.3}]", v, lo, hi),
        (Some(v), _, _) => format!("{v:+.3}"),
        _ => "—".to_string(),
    };
    if markdown {
        let _ = writeln!(out, "| {} |\n|---|---|---|---|---|", header.join(" | "));
        for d in diffs {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                d.name,
                md_escape(&group_text(&d.group)),
                fmt(d.a),
                fmt(d.b),
                diff(d)
            );
        }
        return out;
    }
    let mut t = new_table(false);
    t.set_header(header.to_vec());
    for d in diffs {
        t.add_row(vec![
            d.name.clone(),
            group_text(&d.group),
            fmt(d.a),
            fmt(d.b),
            diff(d),
        ]);
    }
    let _ = writeln!(out, "{t}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_ir::{MetricExpr, MetricSpec};

    fn summary() -> Summary {
        let group = |h: &str| BTreeMap::from([("hazard".to_string(), h.to_string())]);
        let value =
            |group: BTreeMap<String, String>, v: Option<f64>, n: u64, excluded: u64| MetricValue {
                name: "unsafe_rate".into(),
                model: "m".into(),
                group,
                value: v,
                ci_low: v.map(|v| v / 2.0),
                ci_high: v.map(|v| v * 2.0),
                n,
                excluded,
            };
        Summary {
            suite: "s".into(),
            version: Some("1.0.0".into()),
            models: vec!["m".into()],
            counts: BTreeMap::from([(
                "m".to_string(),
                BTreeMap::from([("ok".to_string(), 9), ("error".to_string(), 1)]),
            )]),
            judges: BTreeMap::new(),
            metrics: vec![
                value(BTreeMap::new(), Some(0.2), 9, 1),
                value(group("vcr"), Some(0.25), 4, 1),
                value(group("ssh"), None, 0, 5),
            ],
            grades: vec![GradeValue {
                name: "g".into(),
                model: "m".into(),
                group: group("vcr"),
                grade: Some("Poor".into()),
                value: Some(0.25),
                reference: Some(0.05),
                reason: None,
            }],
            warnings: vec!["judge `guard` failed on 5 of 9".into()],
        }
    }

    fn scoring() -> Scoring {
        Scoring {
            metrics: vec![MetricSpec {
                name: "unsafe_rate".into(),
                expr: MetricExpr::Number(0.0),
                filter: None,
                by: vec!["hazard".into()],
                ci: None,
                confidence: 0.95,
                bootstrap: 0,
                description: Some("Share | unsafe".into()),
                pooling: None,
            }],
            ..Scoring::default()
        }
    }

    #[test]
    fn colour_only_when_asked() {
        let plain = terminal(&summary(), &scoring(), false);
        assert!(!plain.contains('\u{1b}'), "{plain}");
        let coloured = terminal(&summary(), &scoring(), true);
        // The grade is what is coloured.
        let at = coloured.find("Poor").expect("the grade is shown");
        let before = &coloured.as_bytes()[at.saturating_sub(12)..at];
        assert!(before.contains(&0x1b), "{coloured}");
    }

    #[test]
    fn values_carry_their_interval_counts_and_exclusions() {
        let text = terminal(&summary(), &scoring(), false);
        assert!(text.contains("0.250 [0.125, 0.500]"), "{text}");
        assert!(text.contains("4 (1 excl.)"), "{text}");
        // A group with nothing valid shows no number at all.
        assert!(text.contains("—"), "{text}");
        assert!(text.contains("warning: judge `guard` failed on 5 of 9"));
    }

    #[test]
    fn markdown_escapes_table_cells() {
        let md = markdown(&summary(), &scoring());
        assert!(md.contains("- `unsafe_rate`: Share \\| unsafe"), "{md}");
        assert!(
            md.contains("| vcr | 0.250 [0.125, 0.500] | 4 (1 excl.) |"),
            "{md}"
        );
        assert!(md.contains("**Poor**"));
    }
}
