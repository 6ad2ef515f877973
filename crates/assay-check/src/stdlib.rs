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
