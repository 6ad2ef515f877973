//! Lowers judges, metrics, grades and report tables into [`Scoring`], the plain data a run
//! executes: rubric files read, mappings and taxonomies resolved, human labels loaded, and
//! every name in a metric expression resolved to what it is (a judge's verdict, an item field,
//! another metric, or a label literal). The checker has already validated all of it.

use crate::Expander;
use assay_check::{ITEM_FIELDS, ITEM_NUMBERS};
use assay_ir::{
    Band, BandTest, ChartKind, ChartSpec, EnsembleRule, GradeSpec, JudgeKind, JudgeSpec,
    MetricExpr, MetricSpec, Parser, Preprocess, Reference, Scoring, TableSpec, TargetLimits,
    TargetSpec,
};
use assay_score::Scale;
use assay_syntax::ast::{
    BinaryOp, Decl, Expr, ExprKind, Grade, Ident, Judge, JudgeKind as Kind, Metric, Standard,
    Target, UnaryOp,
};
use assay_syntax::{Code, Diagnostic};
use std::collections::{BTreeMap, BTreeSet};

impl Expander<'_> {
    pub(crate) fn lower_scoring(&mut self) -> Scoring {
        let mut scoring = Scoring {
            seed: self.out.seed,
            ..Scoring::default()
        };
        let defs = self.checked.model.in_source_order();
        let mut judges = Vec::new();
        let mut metrics = Vec::new();
        let mut names = Names::default();
        for (name, def) in &defs {
            match &def.decl {
                Decl::Judge(j) if is_base(j) => {}
                Decl::Judge(_) => {
                    names.judges.insert(name.to_string());
                }
                Decl::Metric(_) => {
                    names.metrics.insert(name.to_string());
                }
                Decl::Axis(_) => {
                    names.axes.insert(name.to_string());
                }
                Decl::Taxonomy(t) => {
                    for (category, _) in t.walk() {
                        if let Some(s) = category.props.number("severity") {
                            scoring.severity.insert(category.code.name.clone(), s);
                        }
                    }
                }
                _ => {}
            }
        }
        for (name, def) in &defs {
            self.module = def.module;
            match &def.decl {
                Decl::Judge(j) if is_base(j) => {}
                Decl::Judge(j) => {
                    if let Some(spec) = self.lower_judge(name, j, &names) {
                        judges.push(spec);
                    }
                }
                Decl::Metric(m) => metrics.push(lower_metric(name, m, &names)),
                Decl::Grade(g) => {
                    let standard = |name: &str| match self
                        .checked
                        .model
                        .definitions
                        .get(name)
                        .map(|d| &d.decl)
                    {
                        Some(Decl::Standard(s)) => Some(s),
                        _ => None,
                    };
                    scoring.grades.push(lower_grade(name, g, standard));
                }
                _ => {}
            }
        }
        // Reports have no name: they are read from the entry module itself.
        let reports = self.checked.modules.first().map(|m| m.ast.decls.as_slice());
        for decl in reports.unwrap_or_default() {
            if let Decl::Report(r) = decl {
                if scoring.title.is_none() {
                    scoring.title = r.props.str("title").map(str::to_string);
                }
                if scoring.description.is_none() {
                    scoring.description = r.props.str("description").map(str::to_string);
                }
                scoring.tables.extend(r.tables.iter().map(|t| TableSpec {
                    metrics: t.metrics.iter().map(|m| m.name.clone()).collect(),
                    by: t.by.iter().map(|b| b.name.clone()).collect(),
                }));
                scoring.charts.extend(r.charts.iter().filter_map(|c| {
                    Some(ChartSpec {
                        kind: ChartKind::parse(&c.kind.name)?,
                        metric: c.metric.name.clone(),
                        by: c.by.iter().map(|b| b.name.clone()).collect(),
                    })
                }));
                if let Some(ExprKind::List(formats)) = r.props.value("formats").map(|v| &v.kind) {
                    for format in formats.iter().filter_map(|f| f.as_name()) {
                        if !scoring.formats.contains(&format.name) {
                            scoring.formats.push(format.name.clone());
                        }
                    }
                }
            }
        }
        // A drawn report names groups by their titles; other reports never read them.
        if !scoring.charts.is_empty() || scoring.formats.iter().any(|f| f == "html") {
            for (_, def) in &defs {
                if let Decl::Taxonomy(t) = &def.decl {
                    for (category, _) in t.walk() {
                        scoring
                            .titles
                            .entry(category.code.name.clone())
                            .or_insert_with(|| category.title.value.clone());
                    }
                }
            }
        }
        scoring.judges = dependency_order(judges, |j| match &j.kind {
            JudgeKind::Ensemble { members, .. } => members.clone(),
            _ => Vec::new(),
        });
        scoring.metrics = dependency_order(metrics, |m| {
            let mut used = Vec::new();
            metric_refs(&m.expr, &mut used);
            if let Some(f) = &m.filter {
                metric_refs(f, &mut used);
            }
            used
        });
        for judge in &scoring.judges {
            let extractors = judge.preprocess.iter().filter_map(|step| match step {
                Preprocess::ExtractLlm { model, .. } => Some(model),
                _ => None,
            });
            let model = match &judge.kind {
                JudgeKind::Llm { model, .. }
                | JudgeKind::Guard { model, .. }
                | JudgeKind::Score { model, .. } => Some(model),
                _ => None,
            };
            for model in model.into_iter().chain(extractors) {
                if let Some(spec) = self.out.targets.get(model) {
                    scoring.models.insert(model.clone(), spec.clone());
                }
            }
        }
        self.out.programs = self.lower_programs(&names, &scoring.judges);
        scoring
    }

    /// Every target, lowered: what `target_spec` reads, and its `system` prompt (a file read
    /// relative to the target's module).
    pub(crate) fn lower_targets(&mut self) -> BTreeMap<String, TargetSpec> {
        let mut targets = BTreeMap::new();
        for (name, def) in self.checked.model.in_source_order() {
            let Decl::Target(t) = &def.decl else { continue };
            self.module = def.module;
            if let Some(spec) = self.lower_target(name, t) {
                targets.insert(name.to_string(), spec);
            }
        }
        targets
    }

    fn lower_judge(&mut self, name: &str, j: &Judge, names: &Names) -> Option<JudgeSpec> {
        let props = &j.props;
        let labels: Vec<String> = props
            .names("labels")
            .iter()
            .map(|l| l.name.clone())
            .collect();
        let label_or = |key: &str, index: usize| -> String {
            props
                .name(key)
                .map(|n| n.name.clone())
                .or_else(|| labels.get(index).cloned())
                .unwrap_or_default()
        };
        let strs = |key: &str| -> Vec<String> {
            match props.value(key).map(|v| &v.kind) {
                Some(ExprKind::List(items)) => items
                    .iter()
                    .filter_map(|e| e.as_str())
                    .map(str::to_string)
                    .collect(),
                _ => Vec::new(),
            }
        };
        let model = || {
            props
                .name("model")
                .map(|m| m.name.clone())
                .unwrap_or_default()
        };
        let kind = match j.kind {
            Kind::Keywords => JudgeKind::Keywords {
                patterns: strs("patterns"),
                matched: label_or("match", 0),
                otherwise: label_or("otherwise", 1),
                case_sensitive: matches!(
                    props.value("case_sensitive").map(|v| &v.kind),
                    Some(ExprKind::Bool(true))
                ),
            },
            Kind::Regex => JudgeKind::Regex {
                pattern: props.str("pattern").unwrap_or_default().to_string(),
                matched: label_or("match", 0),
                otherwise: label_or("otherwise", 1),
            },
            Kind::Choice => JudgeKind::Choice {
                options: strs("options"),
                pattern: props.str("pattern").map(str::to_string),
            },
            Kind::Llm => JudgeKind::Llm {
                model: model(),
                rubric: self.text_of(props.value("rubric")?)?,
                parser: props
                    .value("parser")
                    .map_or(Parser::FirstWord, lower_parser),
                aspects: j.aspect_labels(),
                temperature: props.number("temperature"),
            },
            Kind::Guard => JudgeKind::Guard {
                model: model(),
                role: props
                    .name("role")
                    .map_or("response".to_string(), |r| r.name.clone()),
                mapping: props
                    .name("mapping")
                    .map(|m| self.mapping_of(&m.name))
                    .unwrap_or_default(),
                categories: props
                    .name("categories")
                    .and_then(|t| self.taxonomy(&t.name))
                    .map(|t| {
                        t.walk()
                            .into_iter()
                            .map(|(c, _)| (c.code.name.clone(), c.title.value.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            Kind::Score => {
                let (min, max) = match props.value("scale").map(|v| &v.kind) {
                    Some(ExprKind::Range { start, end }) => (*start, *end),
                    _ => (0.0, 1.0),
                };
                JudgeKind::Score {
                    model: model(),
                    rubric: self.text_of(props.value("rubric")?)?,
                    min,
                    max,
                    threshold: props.number("threshold").unwrap_or(max),
                    from: props.name("from").map(|f| f.name.clone()),
                }
            }
            Kind::Ensemble => JudgeKind::Ensemble {
                members: props
                    .names("members")
                    .iter()
                    .map(|m| m.name.clone())
                    .collect(),
                rule: match props.name("rule").map(|r| r.name.as_str()) {
                    Some("any") => EnsembleRule::Any,
                    Some("all") => EnsembleRule::All,
                    Some("weighted") => EnsembleRule::Weighted,
                    Some("jury") => EnsembleRule::Jury,
                    _ => EnsembleRule::Majority,
                },
                weights: match props.value("weights").map(|v| &v.kind) {
                    Some(ExprKind::List(items)) => {
                        items.iter().filter_map(Expr::as_number).collect()
                    }
                    _ => Vec::new(),
                },
                min_valid: props.number("min_valid").map_or(1, |n| n as usize),
                tie: props.name("tie").map(|t| t.name.clone()),
                invalid: props.name("invalid").map(|t| t.name.clone()),
                reduce: props.name("reduce").map(|r| r.name.clone()),
                // A jury's own threshold, else its members' (the checker has made sure they
                // agree).
                threshold: props.number("threshold").or_else(|| {
                    props.names("members").iter().find_map(|m| {
                        match self.checked.model.definitions.get(&m.name).map(|d| &d.decl) {
                            Some(Decl::Judge(member)) => member.props.number("threshold"),
                            _ => None,
                        }
                    })
                }),
            },
            Kind::Human => {
                let path = props.get("path")?;
                let rel = path.value.as_str()?;
                let text = self.read_file(rel, path.value.span)?;
                let id_column = props.str("id_column").unwrap_or("id");
                let label_column = props.str("label_column").unwrap_or("label");
                match human_labels(rel, &text, id_column, label_column) {
                    Ok(labels) => JudgeKind::Human { labels },
                    Err(why) => {
                        self.error(
                            Diagnostic::new(Code::FileNotFound, path.value.span, why)
                                .label("this labels file")
                                .help(format!(
                                    "a CSV with a header, or JSON lines, with the columns `{id_column}` and `{label_column}`"
                                )),
                        );
                        return None;
                    }
                }
            }
        };
        let mut preprocess = Vec::new();
        if let Some(ExprKind::List(steps)) = props.value("preprocess").map(|v| &v.kind) {
            for step in steps {
                match step_extract_llm(step) {
                    Some((model, prompt)) => preprocess.push(Preprocess::ExtractLlm {
                        model,
                        prompt: match prompt {
                            Some(text) => Some(self.text_of(text)?),
                            None => None,
                        },
                    }),
                    None => preprocess.extend(lower_step(step)),
                }
            }
        }
        Some(JudgeSpec {
            name: name.to_string(),
            labels,
            preprocess,
            blank: props.name("blank").map(|b| b.name.clone()),
            when: props.value("when").map(|w| lower_expr(w, names)),
            readings: lower_readings(props.value("readings")),
            attachments: matches!(
                props.value("attachments").map(|v| &v.kind),
                Some(ExprKind::Bool(true))
            ),
            kind,
        })
    }

    /// A mapping's rules as code → first target code (codes mapped to nothing are left out).
    fn mapping_of(&self, name: &str) -> BTreeMap<String, String> {
        match self.checked.model.definitions.get(name).map(|d| &d.decl) {
            Some(Decl::Mapping(m)) => m
                .rules
                .iter()
                .filter_map(|r| {
                    r.targets
                        .first()
                        .map(|t| (r.source.name.clone(), t.name.clone()))
                })
                .collect(),
            _ => BTreeMap::new(),
        }
    }
}

/// A target's call settings; the key's variable name only.
pub fn target_spec(name: &str, t: &Target) -> TargetSpec {
    let mut params = BTreeMap::new();
    for key in ["temperature", "max_tokens", "seed", "top_p", "stop"] {
        if let Some(v) = t.props.value(key) {
            let value = match &v.kind {
                ExprKind::Number(n) => serde_json::json!(n),
                ExprKind::Str(s) => serde_json::json!(s),
                ExprKind::List(items) => {
                    serde_json::json!(items.iter().filter_map(|i| i.as_str()).collect::<Vec<_>>())
                }
                _ => continue,
            };
            params.insert(key.to_string(), value);
        }
    }
    // `params`: extra provider parameters, passed through as written.
    if let Some(ExprKind::Record(entries)) = t.props.value("params").map(|v| &v.kind) {
        for entry in entries {
            if let Some(value) = json_of(&entry.value) {
                params.insert(entry.key.name.clone(), value);
            }
        }
    }
    let count = |key: &str| t.props.number(key).filter(|n| *n >= 0.0);
    TargetSpec {
        provider: t
            .props
            .name("provider")
            .map_or("openai".to_string(), |p| p.name.clone()),
        model: t.props.str("model").unwrap_or(name).to_string(),
        endpoint: t.props.str("endpoint").map(str::to_string),
        replicas: match t.props.value("base_urls").map(|v| &v.kind) {
            Some(ExprKind::List(items)) => items
                .iter()
                .filter_map(|e| e.as_str())
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        },
        api_key_env: t.props.str("api_key_env").map(str::to_string),
        params,
        system: None,
        defense: None,
        limits: TargetLimits {
            concurrency: count("concurrency").map(|n| (n as usize).max(1)),
            requests_per_minute: count("rate_limit").map(|n| (n.ceil() as u32).max(1)),
            timeout_secs: count("timeout"),
            retries: count("retries").map(|n| n as u32),
        },
    }
}

/// A literal property value as JSON: numbers, strings, booleans, and lists and records of
/// them.
fn json_of(e: &Expr) -> Option<serde_json::Value> {
    Some(match &e.kind {
        ExprKind::Number(n) => serde_json::json!(n),
        ExprKind::Str(s) => serde_json::json!(s),
        ExprKind::Bool(b) => serde_json::json!(b),
        ExprKind::List(items) => {
            serde_json::Value::Array(items.iter().filter_map(json_of).collect())
        }
        ExprKind::Record(entries) => serde_json::Value::Object(
            entries
                .iter()
                .filter_map(|p| json_of(&p.value).map(|v| (p.key.name.clone(), v)))
                .collect(),
        ),
        _ => return None,
    })
}

fn lower_parser(e: &Expr) -> Parser {
    match &e.kind {
        ExprKind::Call { callee, args } => {
            let arg = args
                .first()
                .and_then(|a| a.value.as_str())
                .unwrap_or_default()
                .to_string();
            match callee.name.as_str() {
                "json" => Parser::Json(arg),
                "regex" => Parser::Regex(arg),
                "llama_guard" => Parser::LlamaGuard,
                _ => Parser::FirstWord,
            }
        }
        ExprKind::Path(p) if p.len() == 1 && p[0].name == "llama_guard" => Parser::LlamaGuard,
        _ => Parser::FirstWord,
    }
}

/// `extract_llm(TARGET)` or `extract_llm(TARGET, TEXT)`: the target's name and the prompt.
fn step_extract_llm(e: &Expr) -> Option<(String, Option<&Expr>)> {
    let ExprKind::Call { callee, args } = &e.kind else {
        return None;
    };
    if callee.name != "extract_llm" {
        return None;
    }
    let model = args.first()?.value.as_name()?.name.clone();
    Some((model, args.get(1).map(|a| &a.value)))
}

/// `readings = { NAME = { LABEL = LABEL ... } ... }`: reading → label → label it reads as.
fn lower_readings(value: Option<&Expr>) -> BTreeMap<String, BTreeMap<String, String>> {
    let Some(ExprKind::Record(readings)) = value.map(|v| &v.kind) else {
        return BTreeMap::new();
    };
    readings
        .iter()
        .map(|reading| {
            let mapping = match &reading.value.kind {
                ExprKind::Record(pairs) => pairs
                    .iter()
                    .filter_map(|p| Some((p.key.name.clone(), p.value.as_name()?.name.clone())))
                    .collect(),
                _ => BTreeMap::new(),
            };
            (reading.key.name.clone(), mapping)
        })
        .collect()
}

fn lower_step(e: &Expr) -> Option<Preprocess> {
    let (name, arg) = match &e.kind {
        ExprKind::Path(p) if p.len() == 1 => (p[0].name.as_str(), None),
        ExprKind::Call { callee, args } => (
            callee.name.as_str(),
            args.first()
                .and_then(|a| a.value.as_str())
                .map(str::to_string),
        ),
        _ => return None,
    };
    Some(match (name, arg) {
        ("strip_reasoning", _) => Preprocess::StripReasoning,
        ("lowercase", _) => Preprocess::Lowercase,
        ("extract", Some(p)) => Preprocess::Extract(p),
        ("not_applicable", Some(p)) => Preprocess::NotApplicable(p),
        (other, _) => Preprocess::Unsupported(other.to_string()),
    })
}

/// Human labels from CSV (with a header) or JSON lines: id → label.
fn human_labels(
    rel: &str,
    text: &str,
    id_column: &str,
    label_column: &str,
) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    if rel.ends_with(".jsonl") || rel.ends_with(".json") {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let row: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| format!("{rel}: line {}: not JSON: {e}", i + 1))?;
            let field = |key: &str| -> Result<String, String> {
                match row.get(key) {
                    Some(serde_json::Value::String(s)) => Ok(s.clone()),
                    Some(serde_json::Value::Null) | None => {
                        Err(format!("{rel}: line {}: no `{key}`", i + 1))
                    }
                    Some(other) => Ok(other.to_string()),
                }
            };
            labels.insert(field(id_column)?, field(label_column)?);
        }
        return Ok(labels);
    }
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| format!("{rel}: {e}"))?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| {
                format!(
                    "{rel} has no column `{name}` (columns: {})",
                    headers.iter().collect::<Vec<_>>().join(", ")
                )
            })
    };
    let (id_at, label_at) = (column(id_column)?, column(label_column)?);
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| format!("{rel}: row {}: {e}", i + 2))?;
        let id = row.get(id_at).unwrap_or_default().trim();
        let label = row.get(label_at).unwrap_or_default().trim();
        if id.is_empty() || label.is_empty() {
            return Err(format!(
                "{rel}: row {}: empty `{id_column}` or `{label_column}`",
                i + 2
            ));
        }
        labels.insert(id.to_string(), label.to_string());
    }
    Ok(labels)
}

#[derive(Default)]
pub(crate) struct Names {
    pub(crate) judges: BTreeSet<String>,
    pub(crate) metrics: BTreeSet<String>,
    pub(crate) axes: BTreeSet<String>,
}

/// A standard-library base judge that asks a model but names none: only the judges that
/// extend it run.
pub(crate) fn is_base(j: &Judge) -> bool {
    matches!(j.kind, Kind::Llm | Kind::Guard | Kind::Score) && j.props.get("model").is_none()
}

fn lower_metric(name: &str, m: &Metric, names: &Names) -> MetricSpec {
    MetricSpec {
        name: name.to_string(),
        expr: lower_expr(&m.expr, names),
        filter: m.filter.as_ref().map(|f| lower_expr(f, names)),
        by: m.group_by.iter().map(|g| g.name.clone()).collect(),
        ci: m.props.name("ci").map(|c| c.name.clone()),
        confidence: m.props.number("confidence").unwrap_or(0.95),
        bootstrap: m.props.number("bootstrap").map_or(1000, |n| n as usize),
        pooling: m.props.name("pooling").map(|p| p.name.clone()),
        description: m.props.str("description").map(str::to_string),
    }
}

pub(crate) fn lower_expr(e: &Expr, names: &Names) -> MetricExpr {
    match &e.kind {
        ExprKind::Number(n) => MetricExpr::Number(*n),
        ExprKind::Bool(b) => MetricExpr::Bool(*b),
        ExprKind::Str(s) => MetricExpr::Text(s.clone()),
        ExprKind::List(items) => {
            MetricExpr::List(items.iter().map(|i| lower_expr(i, names)).collect())
        }
        ExprKind::Path(path) => lower_path(path, names),
        ExprKind::Call { callee, args } => MetricExpr::Call {
            name: callee.name.clone(),
            args: args.iter().map(|a| lower_expr(&a.value, names)).collect(),
        },
        ExprKind::Unary { op, operand } => MetricExpr::Unary {
            op: match op {
                UnaryOp::Neg => "-",
                UnaryOp::Not => "not",
            }
            .to_string(),
            operand: Box::new(lower_expr(operand, names)),
        },
        ExprKind::Binary { op, lhs, rhs } => MetricExpr::Binary {
            op: op.as_str().to_string(),
            lhs: Box::new(lower_expr(lhs, names)),
            rhs: Box::new(lower_expr(rhs, names)),
        },
        // The checker admits neither in metrics.
        ExprKind::Record(_) | ExprKind::Index { .. } | ExprKind::Range { .. } => {
            MetricExpr::Text(String::new())
        }
    }
}

fn lower_path(path: &[Ident], names: &Names) -> MetricExpr {
    let head = &path[0].name;
    if names.judges.contains(head) {
        return match path.get(1).map(|f| f.name.as_str()) {
            None => MetricExpr::Verdict {
                judge: head.clone(),
                aspect: None,
            },
            Some("score") => MetricExpr::Score {
                judge: head.clone(),
            },
            Some("categories" | "category") => MetricExpr::Categories {
                judge: head.clone(),
            },
            Some(aspect) => MetricExpr::Verdict {
                judge: head.clone(),
                aspect: Some(aspect.to_string()),
            },
        };
    }
    if names.metrics.contains(head) {
        return MetricExpr::Metric(head.clone());
    }
    if ITEM_FIELDS.contains(&head.as_str())
        || ITEM_NUMBERS.contains(&head.as_str())
        || names.axes.contains(head)
    {
        return MetricExpr::Field(head.clone());
    }
    // A bare word naming nothing is a label literal: `unsafe` in `guard == unsafe`.
    MetricExpr::Text(head.clone())
}

fn metric_refs(e: &MetricExpr, out: &mut Vec<String>) {
    match e {
        MetricExpr::Metric(m) => out.push(m.clone()),
        MetricExpr::List(items) => items.iter().for_each(|i| metric_refs(i, out)),
        MetricExpr::Call { args, .. } => args.iter().for_each(|a| metric_refs(a, out)),
        MetricExpr::Unary { operand, .. } => metric_refs(operand, out),
        MetricExpr::Binary { lhs, rhs, .. } => {
            metric_refs(lhs, out);
            metric_refs(rhs, out);
        }
        _ => {}
    }
}

/// Orders `specs` so each comes after the ones it uses; the checker has ruled out cycles, and
/// anything left over keeps its written order at the end.
fn dependency_order<T>(specs: Vec<T>, uses: impl Fn(&T) -> Vec<String>) -> Vec<T>
where
    T: Named,
{
    let all: BTreeSet<String> = specs.iter().map(|s| s.name().to_string()).collect();
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut pending = specs;
    let mut out = Vec::new();
    loop {
        let before = pending.len();
        let mut rest = Vec::new();
        for spec in pending {
            let ready = uses(&spec)
                .iter()
                .all(|u| placed.contains(u) || !all.contains(u));
            if ready {
                placed.insert(spec.name().to_string());
                out.push(spec);
            } else {
                rest.push(spec);
            }
        }
        pending = rest;
        if pending.is_empty() || pending.len() == before {
            out.extend(pending);
            return out;
        }
    }
}

trait Named {
    fn name(&self) -> &str;
}

impl Named for JudgeSpec {
    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for MetricSpec {
    fn name(&self) -> &str {
        &self.name
    }
}

/// A grade, its reference resolved: `standard` finds a published standard by name (any other
/// name is a reference target).
fn lower_grade<'s>(
    name: &str,
    g: &Grade,
    standard: impl Fn(&str) -> Option<&'s Standard>,
) -> GradeSpec {
    let props = &g.props;
    let reference = match props.value("reference").map(|v| &v.kind) {
        Some(ExprKind::Number(n)) => Reference::Value(*n),
        Some(ExprKind::Record(entries)) => Reference::ByGroup(
            entries
                .iter()
                .filter_map(|e| e.value.as_number().map(|n| (e.key.name.clone(), n)))
                .collect(),
        ),
        Some(ExprKind::Path(p)) if p.len() == 1 => match standard(&p[0].name) {
            Some(s) => Reference::Standard {
                name: p[0].name.clone(),
                safe: standard_values(s),
            },
            None => Reference::Target(p[0].name.clone()),
        },
        _ => Reference::None,
    };
    let (mut bands, mut overall) = (Vec::new(), None);
    let scale = props.name("scale").and_then(|s| Scale::named(&s.name));
    if let Some(scale) = scale {
        overall = Some(scale.overall_rule().to_string());
        bands = scale.bands();
    }
    for b in &g.bands {
        bands.push(Band {
            grade: b.name.value.clone(),
            test: b.condition.as_ref().and_then(band_test),
        });
    }
    GradeSpec {
        name: name.to_string(),
        metric: props
            .name("metric")
            .map(|m| m.name.clone())
            .unwrap_or_default(),
        reference,
        overall: props
            .name("overall")
            .map(|o| o.name.clone())
            .or(overall)
            .unwrap_or_else(|| "pooled".to_string()),
        bands,
        scale: scale.map(|s| s.name().to_string()),
        ungraded_empty: props.name("empty").is_some_and(|e| e.name == "ungraded"),
        gate: props.str("gate").map(str::to_string),
        description: props.str("description").map(str::to_string),
    }
}

/// A standard's safe fractions by hazard code, as written.
pub fn standard_values(s: &Standard) -> BTreeMap<String, f64> {
    match s.props.value("safe").map(|v| &v.kind) {
        Some(ExprKind::Record(entries)) => entries
            .iter()
            .filter_map(|e| e.value.as_number().map(|n| (e.key.name.clone(), n)))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// `SUBJECT OP NUMBER`, or `NUMBER OP SUBJECT` turned around.
fn band_test(condition: &Expr) -> Option<BandTest> {
    let ExprKind::Binary { op, lhs, rhs } = &condition.kind else {
        return None;
    };
    let flip = |op: BinaryOp| match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::Le => BinaryOp::Ge,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::Ge => BinaryOp::Le,
        other => other,
    };
    let (subject, threshold, op) = match (
        lhs.as_name(),
        rhs.as_number(),
        rhs.as_name(),
        lhs.as_number(),
    ) {
        (Some(s), Some(n), _, _) => (s, n, *op),
        (_, _, Some(s), Some(n)) => (s, n, flip(*op)),
        _ => return None,
    };
    Some(BandTest {
        subject: subject.name.clone(),
        op: op.as_str().to_string(),
        threshold,
    })
}
