//! `extends = BASE`: a judge or program built on another of the same kind. Before any check,
//! each such declaration takes from its base every key it does not give itself (a program also
//! its turns, stop conditions and attacker keys), base of a base first. The standard library
//! ships attacks and judges this way, without models: a spec extends them and names its own.
//!
//! The keys still missing after the merge are reported here (E0007), as the parser skips the
//! required-key test on a declaration that extends another.

use crate::imports::LoadedModule;
use crate::scope::{DefRef, Scopes};
use assay_syntax::ast::{Decl, Ident, Program, Props};
use assay_syntax::schema::{self, Schema};
use assay_syntax::{Code, Diagnostic, ticked};
use std::collections::BTreeSet;

pub(crate) fn resolve(
    modules: &mut [LoadedModule],
    scopes: &Scopes,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let mut done: BTreeSet<DefRef> = BTreeSet::new();
    for m in 0..modules.len() {
        for d in 0..modules[m].ast.decls.len() {
            let mut chain = Vec::new();
            merge(
                modules,
                scopes,
                DefRef { module: m, decl: d },
                &mut done,
                &mut chain,
                diagnostics,
            );
        }
    }
}

/// The `extends` name of a judge or program.
fn base_name(decl: &Decl) -> Option<&Ident> {
    match decl {
        Decl::Judge(j) => j.props.name("extends"),
        Decl::Program(p) => p.props.name("extends"),
        _ => None,
    }
}

/// Merges `def` with its base (after merging the base with its own), once.
fn merge(
    modules: &mut [LoadedModule],
    scopes: &Scopes,
    def: DefRef,
    done: &mut BTreeSet<DefRef>,
    chain: &mut Vec<DefRef>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    if done.contains(&def) {
        return;
    }
    let decl = &modules[def.module].ast.decls[def.decl];
    let Some(base_ident) = base_name(decl).cloned() else {
        done.insert(def);
        return;
    };
    if chain.contains(&def) {
        diagnostics.push(
            Diagnostic::new(
                Code::CircularDefinition,
                base_ident.span,
                format!("`extends` goes round in a circle at `{}`", base_ident.name),
            )
            .label("this base extends, in the end, the declaration itself")
            .help("a declaration cannot build on itself; remove one `extends`"),
        );
        done.insert(def);
        return;
    }
    let is_broken = scopes.broken[def.module].contains(&base_ident.name);
    let Some(&base) = scopes.visible[def.module].get(&base_ident.name) else {
        if !is_broken {
            diagnostics.push(
                Diagnostic::new(
                    Code::UndefinedName,
                    base_ident.span,
                    format!(
                        "no {} named `{}` to extend",
                        decl.kind_name(),
                        base_ident.name
                    ),
                )
                .label(format!("undefined {}", decl.kind_name()))
                .help(format!(
                    "`extends` names another {} in scope: declare it or `use` its module",
                    decl.kind_name()
                )),
            );
        }
        done.insert(def);
        return;
    };
    chain.push(def);
    merge(modules, scopes, base, done, chain, diagnostics);
    chain.pop();
    let base_decl = modules[base.module].ast.decls[base.decl].clone();
    let decl = &mut modules[def.module].ast.decls[def.decl];
    match (decl, &base_decl) {
        (Decl::Judge(j), Decl::Judge(b)) if j.kind == b.kind => {
            inherit(&mut j.props, &b.props);
            if j.aspects.is_empty() {
                j.aspects.clone_from(&b.aspects);
            }
            let schema = schema::judge_schema(j.kind);
            report_missing(schema, &j.props, &j.name, diagnostics);
            if j.kind == assay_syntax::ast::JudgeKind::Llm
                && j.props.get("labels").is_none()
                && j.aspects.is_empty()
            {
                diagnostics.push(
                    Diagnostic::new(
                        Code::MissingKey,
                        j.name.span,
                        format!(
                            "llm judge `{}` is missing `labels`, which its base does not give either",
                            j.name.name
                        ),
                    )
                    .label("needs `labels` or `aspects`")
                    .help("add `labels = [...]` to the block"),
                );
            }
        }
        (Decl::Program(p), Decl::Program(b)) => {
            inherit_program(p, b);
        }
        (decl, base_decl) => {
            let what = |d: &Decl| match d {
                Decl::Judge(j) => format!("{} judge", j.kind.as_str()),
                other => other.kind_name().to_string(),
            };
            diagnostics.push(
                Diagnostic::new(
                    Code::UndefinedName,
                    base_ident.span,
                    format!(
                        "`{}` is a {}, and a {} can only extend a {}",
                        base_ident.name,
                        what(base_decl),
                        what(decl),
                        what(decl)
                    ),
                )
                .label(format!("expected a {}", what(decl)))
                .help("`extends` builds on a declaration of the same kind"),
            );
        }
    }
    done.insert(def);
}

/// Appends the base's properties the declaration does not give (`extends` itself aside).
fn inherit(props: &mut Props, base: &Props) {
    for p in &base.0 {
        if p.key.name != "extends" && props.get(&p.key.name).is_none() {
            props.0.push(p.clone());
        }
    }
}

fn inherit_program(p: &mut Program, base: &Program) {
    inherit(&mut p.props, &base.props);
    if p.turns.is_empty() {
        p.turns.clone_from(&base.turns);
    }
    if p.stops.is_empty() {
        p.stops.clone_from(&base.stops);
    }
    match (&mut p.attacker, &base.attacker) {
        (Some(own), Some(theirs)) => inherit(own, theirs),
        (None, Some(theirs)) => p.attacker = Some(theirs.clone()),
        _ => {}
    }
}

/// E0007 for required keys neither the declaration nor its bases give.
fn report_missing(schema: &Schema, props: &Props, owner: &Ident, out: &mut Vec<Diagnostic>) {
    let missing: Vec<&str> = schema
        .keys
        .iter()
        .filter(|k| k.required && props.get(k.name).is_none())
        .map(|k| k.name)
        .collect();
    if let Some(first) = missing.first() {
        let list = ticked(&missing);
        out.push(
            Diagnostic::new(
                Code::MissingKey,
                owner.span,
                format!(
                    "{} `{}` is missing {list}, which its base does not give either",
                    schema.what, owner.name
                ),
            )
            .label(format!("needs {list}"))
            .help(format!("add `{first} = ...` to the block")),
        );
    }
}
