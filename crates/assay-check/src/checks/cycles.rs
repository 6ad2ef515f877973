//! Definitions that depend on themselves: metrics computed from metrics, targets wrapping
//! targets, ensembles of ensembles, and guards whose judge calls the guarded target.

use super::Ctx;
use crate::scope::DefRef;
use assay_syntax::ast::{Decl, Expr, ExprKind, Ident};
use assay_syntax::{Code, Diagnostic, Span};
use std::collections::{BTreeMap, BTreeSet};

/// One dependency: the definition it points to and the name that refers to it.
struct Edge {
    to: DefRef,
    at: Span,
}

fn edges(ctx: &Ctx<'_>, def: DefRef) -> Vec<Edge> {
    let scope = &ctx.scopes.visible[def.module];
    let resolve = |name: &Ident, want: fn(&Decl) -> bool| {
        scope
            .get(&name.name)
            .filter(|d| want(ctx.decl(**d)))
            .map(|d| Edge {
                to: *d,
                at: name.span,
            })
    };
    let is_metric = |d: &Decl| matches!(d, Decl::Metric(_));
    let is_target = |d: &Decl| matches!(d, Decl::Target(_));
    let is_judge = |d: &Decl| matches!(d, Decl::Judge(_));
    let mut out = Vec::new();
    match ctx.decl(def) {
        Decl::Metric(m) => {
            let mut visit = |e: &Expr| {
                if let ExprKind::Path(p) = &e.kind
                    && let Some(edge) = resolve(&p[0], is_metric)
                {
                    out.push(edge);
                }
            };
            m.expr.walk(&mut visit);
            if let Some(filter) = &m.filter {
                filter.walk(&mut visit);
            }
        }
        Decl::Target(t) => {
            for key in ["wraps", "rewrite"] {
                out.extend(t.props.name(key).and_then(|n| resolve(n, is_target)));
            }
            for key in ["input_guard", "output_guard"] {
                out.extend(t.props.name(key).and_then(|n| resolve(n, is_judge)));
            }
        }
        Decl::Judge(j) => {
            out.extend(
                j.props
                    .names("members")
                    .into_iter()
                    .filter_map(|n| resolve(n, is_judge)),
            );
            out.extend(j.props.name("model").and_then(|n| resolve(n, is_target)));
        }
        _ => {}
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    Active,
    Done,
}

pub(crate) fn check_cycles(ctx: &mut Ctx<'_>) {
    let mut nodes: Vec<DefRef> = Vec::new();
    for (m, module) in ctx.modules.iter().enumerate() {
        for (i, decl) in module.ast.decls.iter().enumerate() {
            if matches!(decl, Decl::Metric(_) | Decl::Target(_) | Decl::Judge(_)) {
                nodes.push(DefRef { module: m, decl: i });
            }
        }
    }
    let mut marks: BTreeMap<DefRef, Mark> = BTreeMap::new();
    let mut reported: BTreeSet<Vec<DefRef>> = BTreeSet::new();
    let mut found = Vec::new();
    for start in nodes {
        if marks.contains_key(&start) {
            continue;
        }
        // Depth-first search with an explicit stack: (node, its edges, next edge to follow).
        marks.insert(start, Mark::Active);
        let mut stack: Vec<(DefRef, Vec<Edge>, usize)> = vec![(start, edges(ctx, start), 0)];
        while let Some((node, out, next)) = stack.last_mut() {
            let Some(edge) = out.get(*next) else {
                marks.insert(*node, Mark::Done);
                stack.pop();
                continue;
            };
            *next += 1;
            let (to, at) = (edge.to, edge.at);
            match marks.get(&to) {
                None => {
                    marks.insert(to, Mark::Active);
                    let out = edges(ctx, to);
                    stack.push((to, out, 0));
                }
                Some(Mark::Active) => {
                    let from = stack.iter().position(|(n, _, _)| *n == to).unwrap_or(0);
                    let cycle: Vec<DefRef> = stack[from..].iter().map(|(n, _, _)| *n).collect();
                    let mut key = cycle.clone();
                    key.sort();
                    if reported.insert(key) {
                        found.push((cycle, at));
                    }
                }
                Some(Mark::Done) => {}
            }
        }
    }
    for (cycle, at) in found {
        let names: Vec<String> = cycle
            .iter()
            .chain(cycle.first())
            .map(|d| {
                ctx.decl(*d)
                    .name()
                    .map_or_else(String::new, |n| n.name.clone())
            })
            .collect();
        let first = ctx.decl(cycle[0]);
        let first_name = first.name().map(|n| n.name.clone()).unwrap_or_default();
        let mut d = Diagnostic::new(
            Code::CircularDefinition,
            at,
            format!(
                "{} `{first_name}` depends on itself: {}",
                first.kind_name(),
                names.join(" → ")
            ),
        )
        .label("this reference closes the cycle")
        .help("break the chain: one of these definitions must stand on its own");
        if let Some(name) = first.name() {
            d = d.secondary(name.span, format!("`{first_name}` defined here"));
        }
        ctx.error(d);
    }
}
