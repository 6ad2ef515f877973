//! `assay diff A B`: what changed between two versions of a suite, given as specs or as
//! compiled suites. Items are matched by their key (source and coordinates): a key on one side
//! only is added or removed; a key on both sides with a different id is changed.

use crate::ToolError;
use crate::suite::{self, DataArgs};
use assay_ir::Item;
use serde::Serialize;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::process::ExitCode;

/// What a diff needs of an item.
#[derive(Clone, Debug, Serialize)]
struct Entry {
    id: String,
    hazard: String,
    prompt: String,
}

struct Side {
    name: String,
    items: BTreeMap<String, Entry>,
}

fn load(path: &Path, args: &DataArgs) -> Result<Result<Side, ExitCode>, ToolError> {
    let mut items = BTreeMap::new();
    let mut add = |item: Item| {
        let prompt = item
            .messages
            .iter()
            .find(|m| m.role == assay_ir::Role::User)
            .map(|m| m.content.clone())
            .unwrap_or_default();
        items.insert(
            item.key.clone(),
            Entry {
                id: item.id,
                hazard: item.labels.hazard.unwrap_or_else(|| "(none)".into()),
                prompt,
            },
        );
    };
    if path.is_dir() && path.join("manifest.json").is_file() {
        let text = std::fs::read_to_string(path.join("manifest.json"))
            .map_err(|e| ToolError(format!("cannot read {}: {e}", path.display())))?;
        let manifest: assay_ir::Manifest = serde_json::from_str(&text).map_err(|e| {
            ToolError(format!(
                "{}/manifest.json is not a manifest: {e}",
                path.display()
            ))
        })?;
        suite::read_items(path, &mut add)?;
        let name = format!(
            "{} {}",
            manifest.suite.name,
            manifest.suite.version.unwrap_or_default()
        );
        return Ok(Ok(Side { name, items }));
    }
    let loaded = match suite::load(path, false)? {
        Ok(l) => l,
        Err(code) => return Ok(Err(code)),
    };
    let expansion = suite::expand(&loaded, args, &mut |item, _| {
        add(item.clone());
        ControlFlow::Continue(())
    })?;
    if expansion.has_errors() {
        return Ok(Err(ExitCode::from(1)));
    }
    let suite = loaded.checked.model.suite.as_ref();
    let name = suite.map_or_else(
        || path.display().to_string(),
        |s| {
            format!(
                "{} {}",
                s.name.value,
                s.version.as_ref().map_or("", |v| v.value.as_str())
            )
        },
    );
    Ok(Ok(Side { name, items }))
}

#[derive(Default, Serialize)]
struct HazardRow {
    before: u64,
    after: u64,
    added: u64,
    removed: u64,
    changed: u64,
}

#[derive(Serialize)]
struct Change<'a> {
    key: &'a str,
    hazard: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<&'a Entry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after: Option<&'a Entry>,
}

pub fn diff(a: &Path, b: &Path, args: &DataArgs, json: bool) -> Result<ExitCode, ToolError> {
    let before = match load(a, args)? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let after = match load(b, args)? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let mut hazards: BTreeMap<&str, HazardRow> = BTreeMap::new();
    let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    for (key, e) in &before.items {
        hazards.entry(&e.hazard).or_default().before += 1;
        match after.items.get(key) {
            None => {
                hazards.entry(&e.hazard).or_default().removed += 1;
                removed.push(Change {
                    key,
                    hazard: &e.hazard,
                    before: Some(e),
                    after: None,
                });
            }
            Some(n) if n.id != e.id => {
                hazards.entry(&n.hazard).or_default().changed += 1;
                changed.push(Change {
                    key,
                    hazard: &n.hazard,
                    before: Some(e),
                    after: Some(n),
                });
            }
            Some(_) => {}
        }
    }
    for (key, n) in &after.items {
        hazards.entry(&n.hazard).or_default().after += 1;
        if !before.items.contains_key(key) {
            hazards.entry(&n.hazard).or_default().added += 1;
            added.push(Change {
                key,
                hazard: &n.hazard,
                before: None,
                after: Some(n),
            });
        }
    }
    let unchanged = before.items.len() - removed.len() - changed.len();

    if json {
        let out = serde_json::json!({
            "before": { "suite": before.name.trim(), "items": before.items.len() },
            "after": { "suite": after.name.trim(), "items": after.items.len() },
            "added": added,
            "removed": removed,
            "changed": changed,
            "unchanged": unchanged,
            "by_hazard": hazards,
        });
        outln!("{}", serde_json::to_string_pretty(&out).expect("json"));
        return Ok(ExitCode::SUCCESS);
    }

    outln!("- {} ({} items)", before.name.trim(), before.items.len());
    outln!("+ {} ({} items)", after.name.trim(), after.items.len());
    outln!(
        "{} added, {} removed, {} changed, {unchanged} unchanged\n",
        added.len(),
        removed.len(),
        changed.len()
    );
    let width = hazards
        .keys()
        .map(|h| h.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    outln!(
        "{:width$}  {:>7}  {:>7}  {:>7}  {:>7}  {:>7}",
        "hazard",
        "before",
        "after",
        "added",
        "removed",
        "changed"
    );
    for (h, r) in &hazards {
        outln!(
            "{h:width$}  {:>7}  {:>7}  {:>7}  {:>7}  {:>7}",
            r.before,
            r.after,
            r.added,
            r.removed,
            r.changed
        );
    }
    for (title, sign, list) in [
        ("added", '+', &added),
        ("removed", '-', &removed),
        ("changed", '~', &changed),
    ] {
        if list.is_empty() {
            continue;
        }
        outln!("\n{title}:");
        for c in list.iter().take(50) {
            let entry = c.after.or(c.before).expect("one side");
            outln!(
                "  {sign} {}  [{}]  {}",
                c.key,
                c.hazard,
                preview(&entry.prompt, 70)
            );
            if let (Some(b), Some(a)) = (c.before, c.after)
                && b.prompt != a.prompt
            {
                outln!("      was: {}", preview(&b.prompt, 70));
            }
        }
        if list.len() > 50 {
            outln!(
                "  ... and {} more (`--format json` lists all)",
                list.len() - 50
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of at most `width` characters.
pub fn preview(text: &str, width: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| {
            if c == '\n' || c == '\r' || c == '\t' {
                ' '
            } else {
                c
            }
        })
        .collect();
    if flat.chars().count() <= width {
        flat
    } else {
        let cut: String = flat.chars().take(width.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}
