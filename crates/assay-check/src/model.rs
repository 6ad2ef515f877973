//! The semantic model handed to expansion: the suite header and every definition visible from
//! the entry module, by name, each with the module it was defined in.

use crate::imports::LoadedModule;
use crate::scope::Scopes;
use assay_syntax::FileId;
use assay_syntax::ast::{Decl, Suite};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct Definition {
    /// The file the definition is written in.
    pub file: FileId,
    /// Index of the defining module in `Checked::modules`, and of the declaration in it:
    /// `(module, index)` orders definitions as they were written.
    pub module: usize,
    pub index: usize,
    pub decl: Decl,
}

#[derive(Clone, Debug, Default)]
pub struct Model {
    pub suite: Option<Suite>,
    /// Name → definition, for the entry module's scope (own and imported names).
    pub definitions: BTreeMap<String, Definition>,
}

impl Model {
    pub(crate) fn build(modules: &[LoadedModule], scopes: &Scopes) -> Model {
        let Some(entry) = modules.first() else {
            return Model::default();
        };
        let suite = entry.ast.decls.iter().find_map(|d| match d {
            Decl::Suite(s) => Some(s.clone()),
            _ => None,
        });
        let definitions = scopes.visible[0]
            .iter()
            .map(|(name, def)| {
                let module = &modules[def.module];
                (
                    name.clone(),
                    Definition {
                        file: module.file,
                        module: def.module,
                        index: def.decl,
                        decl: module.ast.decls[def.decl].clone(),
                    },
                )
            })
            .collect();
        Model { suite, definitions }
    }

    /// Definitions in the order they were written: by module, then position.
    pub fn in_source_order(&self) -> Vec<(&str, &Definition)> {
        let mut defs: Vec<(&str, &Definition)> = self
            .definitions
            .iter()
            .map(|(n, d)| (n.as_str(), d))
            .collect();
        defs.sort_by_key(|(_, d)| (d.module, d.index));
        defs
    }

    /// Definitions of one kind ("judge", "metric", ...), by name.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Decl)> + 'a {
        self.definitions
            .iter()
            .filter(move |(_, d)| d.decl.kind_name() == kind)
            .map(|(n, d)| (n.as_str(), &d.decl))
    }
}
