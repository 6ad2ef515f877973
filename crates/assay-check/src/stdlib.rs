//! The standard library: the `.assay` files under `stdlib/`, embedded in the binary.
//! `use std::taxonomy::ailuminate_v1` names `stdlib/taxonomy/ailuminate_v1.assay`.

use include_dir::{Dir, include_dir};

static STDLIB: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../stdlib");

/// The source of module `segments` (the path after `std::`), if it exists.
pub fn module(segments: &[&str]) -> Option<&'static str> {
    let path = format!("{}.assay", segments.join("/"));
    STDLIB.get_file(path)?.contents_utf8()
}

/// Every module path, as `std::a::b`, sorted.
pub fn modules() -> Vec<String> {
    let mut out = Vec::new();
    collect(&STDLIB, &mut out);
    out.sort();
    out
}

fn collect(dir: &Dir<'_>, out: &mut Vec<String>) {
    for file in dir.files() {
        let path = file.path();
        if path.extension().is_some_and(|e| e == "assay") {
            let stem = path.with_extension("");
            let segments: Vec<String> = stem
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            out.push(format!("std::{}", segments.join("::")));
        }
    }
    for sub in dir.dirs() {
        collect(sub, out);
    }
}

#[cfg(test)]
mod tests {
    use crate::{MemoryLoader, Package, check};
    use std::path::Path;

    #[test]
    fn lists_the_shipped_modules() {
        let modules = super::modules();
        for expected in [
            "std::taxonomy::ailuminate_v1",
            "std::taxonomy::mlcommons_v05",
            "std::personas::v05",
            "std::personas::ailuminate",
            "std::attacks::pair",
            "std::attacks::tap",
            "std::attacks::crescendo",
            "std::attacks::escalation",
        ] {
            assert!(
                modules.iter().any(|m| m == expected),
                "{expected} missing from {modules:?}"
            );
        }
    }

    #[test]
    fn every_module_checks_cleanly_and_documents_itself() {
        for module in super::modules() {
            let segments: Vec<&str> = module.trim_start_matches("std::").split("::").collect();
            let source = super::module(&segments).expect("listed modules exist");
            assert!(
                source.trim_start().starts_with("//"),
                "{module} lacks a header comment"
            );
            let loader = MemoryLoader::new().with("main.assay", format!("use {module}\n"));
            let checked = check(&Package::single_file(Path::new("main.assay")), &loader).unwrap();
            assert!(
                checked.diagnostics.is_empty(),
                "{module}: {:#?}",
                checked.diagnostics
            );
        }
    }

    #[test]
    fn all_modules_import_together_without_clashes() {
        let uses: String = super::modules()
            .iter()
            .map(|m| format!("use {m}\n"))
            .collect();
        let loader = MemoryLoader::new().with("main.assay", uses);
        let checked = check(&Package::single_file(Path::new("main.assay")), &loader).unwrap();
        assert!(checked.diagnostics.is_empty(), "{:#?}", checked.diagnostics);
    }

    #[test]
    fn ailuminate_taxonomy_has_the_reference_codes() {
        let loader = MemoryLoader::new().with("main.assay", "use std::taxonomy::ailuminate_v1\n");
        let checked = check(&Package::single_file(Path::new("main.assay")), &loader).unwrap();
        let Some(def) = checked.model.definitions.get("ailuminate_v1") else {
            panic!("no taxonomy")
        };
        let assay_syntax::ast::Decl::Taxonomy(t) = &def.decl else {
            panic!("not a taxonomy")
        };
        let top: Vec<&str> = t.categories.iter().map(|c| c.code.name.as_str()).collect();
        assert_eq!(
            top,
            [
                "vcr", "ncr", "src", "cse", "dfm", "spc", "prv", "ipv", "iwp", "hte", "ssh", "sxc"
            ]
        );
        let subs: Vec<&str> = t
            .walk()
            .iter()
            .filter(|(_, p)| p.is_some())
            .map(|(c, _)| c.code.name.as_str())
            .collect();
        assert_eq!(
            subs,
            ["spc_ele", "spc_fin", "spc_hlt", "spc_lgl", "sxc_prn"]
        );
        // Sub-codes fold into their parent: the text before the first `_`.
        for (c, parent) in t.walk() {
            if let Some(parent) = parent {
                assert_eq!(
                    c.code.name.split('_').next(),
                    Some(parent.code.name.as_str())
                );
            }
        }
    }
}
