//! The remaining declarations: suite, use, persona, axis, target, program, metric, grade, report.

use super::{Lowerer, inner};
use crate::ast::*;
use crate::code::Code;
use crate::diagnostic::Diagnostic;
use crate::parser::Rule;
use crate::schema;
use pest::iterators::Pair;

impl Lowerer {
    pub(super) fn lower_suite(&mut self, pair: Pair<'_, Rule>) -> Suite {
        let span = self.span(&pair);
        let mut name = None;
        let mut version = None;
        let mut props = Vec::new();
        for p in inner(pair) {
            match p.as_rule() {
                Rule::string if name.is_none() => name = Some(self.string(p)),
                Rule::string => version = Some(self.string(p)),
                Rule::prop_block => props = self.properties(p),
                _ => {}
            }
        }
        let name = name.expect("suite has a name");
        let owner = Ident {
            name: name.value.clone(),
            span: name.span,
        };
        let props = self.validate(&schema::SUITE, props, &owner);
        Suite {
            name,
            version,
            props,
            span,
        }
    }

    pub(super) fn lower_use(&mut self, pair: Pair<'_, Rule>) -> Use {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let source_pair = parts.next().expect("use has a source");
        let source_span = self.span(&source_pair);
        let source = match source_pair.as_rule() {
            Rule::string => ImportSource::File(self.string(source_pair)),
            _ => {
                let mut segments: Vec<Ident> = inner(source_pair).map(|p| self.ident(p)).collect();
                let head = segments.remove(0);
                if head.name == "std" {
                    ImportSource::Std(segments)
                } else {
                    ImportSource::Package {
                        package: head,
                        path: segments,
                    }
                }
            }
        };
        let names = parts
            .next()
            .map(|names| inner(names).map(|p| self.ident(p)).collect())
            .unwrap_or_default();
        Use {
            source,
            source_span,
            names,
            span,
        }
    }

    pub(super) fn lower_persona(&mut self, pair: Pair<'_, Rule>) -> Persona {
        let span = self.span(&pair);
        let mut name = None;
        let mut title = None;
        let mut props = Vec::new();
        for p in inner(pair) {
            match p.as_rule() {
                Rule::ident => name = Some(self.ident(p)),
                Rule::string => title = Some(self.string(p)),
                Rule::prop_block => props = self.properties(p),
                _ => {}
            }
        }
        let name = name.expect("persona has a name");
        let props = self.validate(&schema::PERSONA, props, &name);
        Persona {
            name,
            title,
            props,
            span,
        }
    }

    pub(super) fn lower_axis(&mut self, pair: Pair<'_, Rule>) -> Option<Axis> {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let name = self.ident(parts.next().expect("axis has a name"));
        let kind_word = self.ident(parts.next().expect("axis has a kind"));
        let variants = self.properties(parts.next().expect("axis has variants"));
        let kind = match kind_word.name.as_str() {
            "system" => AxisKind::System,
            "transform" => AxisKind::Transform,
            "locale" => AxisKind::Locale,
            "persona" => AxisKind::Persona,
            "program" => AxisKind::Program,
            "defense" => AxisKind::Defense,
            _ => {
                self.unknown_word(&kind_word, "axis kind", schema::AXIS_KINDS);
                self.broken.push(name);
                return None;
            }
        };
        if variants.is_empty() && !self.lenient {
            self.error(
                Diagnostic::new(
                    Code::MissingKey,
                    name.span,
                    format!("axis `{}` has no variants", name.name),
                )
                .label("empty axis")
                .help("add variants as `name = value`"),
            );
        }
        Some(Axis {
            name,
            kind,
            variants,
            span,
        })
    }

    pub(super) fn lower_target(&mut self, pair: Pair<'_, Rule>) -> Target {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let name = self.ident(parts.next().expect("target has a name"));
        let props = self.properties(parts.next().expect("target has a block"));
        let props = self.validate(&schema::TARGET, props, &name);
        Target { name, props, span }
    }

    pub(super) fn lower_standard(&mut self, pair: Pair<'_, Rule>) -> Standard {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let name = self.ident(parts.next().expect("standard has a name"));
        let props = self.properties(parts.next().expect("standard has a block"));
        let props = self.validate(&schema::STANDARD, props, &name);
        Standard { name, props, span }
    }

    pub(super) fn lower_program(&mut self, pair: Pair<'_, Rule>) -> Program {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let name = self.ident(parts.next().expect("program has a name"));
        let mut props = Vec::new();
        let mut turns = Vec::new();
        let mut attacker = None;
        let mut stops = Vec::new();
        for p in parts {
            match p.as_rule() {
                Rule::property => props.push(self.property(p)),
                Rule::turn => {
                    let span = self.span(&p);
                    let mut t = inner(p);
                    let role = match t.next().map(|r| r.as_str().to_string()).as_deref() {
                        Some("assistant") => Role::Assistant,
                        _ => Role::User,
                    };
                    let content = self.expr(t.next().expect("turn has content"));
                    turns.push(Turn {
                        role,
                        content,
                        span,
                    });
                }
                Rule::attacker_block => {
                    let block = inner(p).next().expect("attacker has a block");
                    let attacker_props = self.properties(block);
                    let owner = name.clone();
                    attacker = Some(self.validate(&schema::ATTACKER, attacker_props, &owner));
                }
                Rule::stop_clause => {
                    if let Some(e) = inner(p).next() {
                        stops.push(self.expr(e));
                    }
                }
                _ => {}
            }
        }
        let props = self.reject_duplicates(props);
        let props = self.validate(&schema::PROGRAM, props, &name);
        if turns.is_empty() && attacker.is_none() && props.get("extends").is_none() && !self.lenient
        {
            self.error(
                Diagnostic::new(
                    Code::MissingKey,
                    name.span,
                    format!("program `{}` has no turns and no attacker", name.name),
                )
                .label("empty program")
                .help("add `user item.prompt`, scripted turns, or an `attacker { ... }` loop"),
            );
        }
        Program {
            name,
            props,
            turns,
            attacker,
            stops,
            span,
        }
    }

    pub(super) fn lower_metric(&mut self, pair: Pair<'_, Rule>) -> Metric {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let name = self.ident(parts.next().expect("metric has a name"));
        let expr = self.expr(parts.next().expect("metric has an expression"));
        let mut filter = None;
        let mut group_by = Vec::new();
        let mut props = Vec::new();
        for p in parts {
            match p.as_rule() {
                Rule::where_clause => filter = inner(p).next().map(|e| self.expr(e)),
                Rule::by_clause => {
                    group_by = self.name_list(p);
                    self.reject_repeats(&group_by.iter().collect::<Vec<_>>());
                }
                Rule::prop_block => props = self.properties(p),
                _ => {}
            }
        }
        let props = self.validate(&schema::METRIC, props, &name);
        Metric {
            name,
            expr,
            filter,
            group_by,
            props,
            span,
        }
    }

    pub(super) fn lower_grade(&mut self, pair: Pair<'_, Rule>) -> Grade {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let name = self.ident(parts.next().expect("grade has a name"));
        let mut props = Vec::new();
        let mut bands = Vec::new();
        for p in parts {
            match p.as_rule() {
                Rule::property => props.push(self.property(p)),
                Rule::band => {
                    let span = self.span(&p);
                    let mut b = inner(p);
                    let band_name = self.string_or_code(b.next().expect("band has a name"));
                    let condition = b.next().map(|e| self.expr(e));
                    bands.push(Band {
                        name: band_name,
                        condition,
                        span,
                    });
                }
                _ => {}
            }
        }
        let props = self.reject_duplicates(props);
        let props = self.validate(&schema::GRADE, props, &name);
        if bands.is_empty() && props.get("scale").is_none() {
            self.error(
                Diagnostic::new(
                    Code::MissingKey,
                    name.span,
                    format!("grade `{}` has no bands", name.name),
                )
                .label("nothing to grade with")
                .help("add `scale = ailuminate_v1`, or bands ending with `band Poor otherwise`"),
            );
        }
        Grade {
            name,
            props,
            bands,
            span,
        }
    }

    pub(super) fn lower_report(&mut self, pair: Pair<'_, Rule>) -> Report {
        let span = self.span(&pair);
        let mut name = None;
        let mut props = Vec::new();
        let mut tables = Vec::new();
        let mut charts = Vec::new();
        for p in inner(pair) {
            match p.as_rule() {
                Rule::ident => name = Some(self.ident(p)),
                Rule::property => props.push(self.property(p)),
                Rule::table => {
                    let span = self.span(&p);
                    let mut metrics = Vec::new();
                    let mut by = Vec::new();
                    for t in inner(p) {
                        match t.as_rule() {
                            Rule::name_list => metrics = self.name_list(t),
                            Rule::by_clause => by = self.name_list(t),
                            _ => {}
                        }
                    }
                    tables.push(Table { metrics, by, span });
                }
                Rule::chart => {
                    let span = self.span(&p);
                    let mut c = inner(p);
                    let kind = self.ident(c.next().expect("chart has a kind"));
                    let metric = self.ident(c.next().expect("chart has a metric"));
                    let by = c.next().map(|b| self.name_list(b)).unwrap_or_default();
                    if !schema::CHART_KINDS.contains(&kind.name.as_str()) {
                        self.unknown_word(&kind, "chart kind", schema::CHART_KINDS);
                    }
                    charts.push(Chart {
                        kind,
                        metric,
                        by,
                        span,
                    });
                }
                _ => {}
            }
        }
        let owner = name.clone().unwrap_or(Ident {
            name: "report".into(),
            span,
        });
        let props = self.reject_duplicates(props);
        let props = self.validate(&schema::REPORT, props, &owner);
        // A misspelt format would be no format at all: no page, and no error.
        if let Some(ExprKind::List(formats)) = props.value("formats").map(|v| &v.kind) {
            for format in formats.iter().filter_map(|f| f.as_name()) {
                if !schema::REPORT_FORMATS.contains(&format.name.as_str()) {
                    self.unknown_word(format, "report format", schema::REPORT_FORMATS);
                }
            }
        }
        Report {
            name,
            props,
            tables,
            charts,
            span,
        }
    }
}
