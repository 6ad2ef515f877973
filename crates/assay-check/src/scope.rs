//! Names: each module's own definitions plus what its `use` declarations bring in. Duplicates
//! (within a module, or between a definition and an import) are reported here, once.

use crate::imports::LoadedModule;
use assay_syntax::ast::Decl;
use assay_syntax::{Code, Diagnostic, did_you_mean};
use std::collections::{BTreeMap, BTreeSet};

/// A definition: module index and declaration index in that module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DefRef {
    pub module: usize,
    pub decl: usize,
}

/// Name → definition, for every module.
#[derive(Clone, Debug, Default)]
pub struct Scopes {
    /// Per module: its own definitions and everything it imports.
    pub visible: Vec<BTreeMap<String, DefRef>>,
    /// Per module: names of visible declarations that failed to parse. Uses of them are not
    /// reported again.
    pub broken: Vec<BTreeSet<String>>,
}

pub(crate) fn build(modules: &[LoadedModule], diagnostics: &mut Vec<Diagnostic>) -> Scopes {
    let mut own: Vec<BTreeMap<String, DefRef>> = Vec::with_capacity(modules.len());
    for (m, module) in modules.iter().enumerate() {
        let mut defs: BTreeMap<String, DefRef> = BTreeMap::new();
        for (i, decl) in module.ast.decls.iter().enumerate() {
            let Some(name) = decl.name() else { continue };
            if let Some(first) = defs.get(&name.name) {
                let first_decl = &module.ast.decls[first.decl];
                let first_span = first_decl.name().map(|n| n.span).unwrap_or(name.span);
                diagnostics.push(
                    Diagnostic::new(
                        Code::DuplicateDefinition,
                        name.span,
                        format!("`{}` is defined twice", name.name),
                    )
                    .label(format!(
                        "{} `{}` defined again here",
                        decl.kind_name(),
                        name.name
                    ))
                    .secondary(
                        first_span,
                        format!("first defined here as a {}", first_decl.kind_name()),
                    )
                    .help("every declaration needs its own name; rename one of them"),
                );
                continue;
            }
            defs.insert(name.name.clone(), DefRef { module: m, decl: i });
        }
        own.push(defs);
    }

    let own_broken: Vec<BTreeSet<String>> = modules
        .iter()
        .map(|m| m.ast.broken.iter().map(|i| i.name.clone()).collect())
        .collect();
    let mut broken = own_broken.clone();
    let mut visible = own.clone();
    for (m, module) in modules.iter().enumerate() {
        for (&use_index, &target) in &module.imports {
            let Decl::Use(u) = &module.ast.decls[use_index] else {
                continue;
            };
            let exported = &own[target];
            if u.names.is_empty() {
                broken[m].extend(own_broken[target].iter().cloned());
            }
            let names: Vec<(String, assay_syntax::Span)> = if u.names.is_empty() {
                exported
                    .keys()
                    .map(|k| (k.clone(), u.source_span))
                    .collect()
            } else {
                let mut picked = Vec::new();
                for n in &u.names {
                    if exported.contains_key(&n.name) {
                        picked.push((n.name.clone(), n.span));
                    } else if own_broken[target].contains(&n.name) {
                        broken[m].insert(n.name.clone());
                    } else {
                        diagnostics.push(
                            Diagnostic::new(
                                Code::UndefinedName,
                                n.span,
                                format!("the module does not define `{}`", n.name),
                            )
                            .label("not defined there")
                            .suggest(did_you_mean(&n.name, exported.keys().map(String::as_str))),
                        );
                    }
                }
                picked
            };
            for (name, span) in names {
                let def = exported[&name];
                match visible[m].get(&name) {
                    Some(existing) if *existing == def => {}
                    Some(existing) => {
                        let other = &modules[existing.module];
                        let other_span = other.ast.decls[existing.decl]
                            .name()
                            .map(|n| n.span)
                            .unwrap_or(span);
                        diagnostics.push(
                            Diagnostic::new(Code::DuplicateDefinition, span, format!("`{name}` is defined twice"))
                                .label(format!("this import brings in another `{name}`"))
                                .secondary(other_span, "first defined here")
                                .help(format!("import only the names you need: `use ... {{ a, b }}`, or rename `{name}`")),
                        );
                    }
                    None => {
                        visible[m].insert(name, def);
                    }
                }
            }
        }
    }
    Scopes { visible, broken }
}
