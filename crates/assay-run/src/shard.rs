//! Shards: a suite split across processes or machines, and the parts merged back.
//!
//! `assay run --shard K/N` runs the items whose id falls in part K of N. An item id is a
//! content hash, so the split is uniform and stable: an item stays in its shard when others
//! are added to the suite. Each shard writes a complete run folder and a `shard.json` naming
//! its part and the place of each of its items in the whole run.
//!
//! [`merge`] checks that the parts belong together (one compiled suite, the same selection,
//! models, parameters and scoring; every part present exactly once) and writes one run folder
//! whose `results.jsonl` (and `judgements.jsonl`, when every part was judged) is in the order
//! an unsharded run writes, so scoring it gives the unsharded summary. It reads and checks
//! everything before it writes anything.

use assay_ir::{RunInfo, Usage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The part `index` (1-based) of `count` an item id falls in.
pub fn shard_of(item_id: &str, count: u32) -> u32 {
    // Ids are hex digests: their first 16 digits are a uniform 64-bit number.
    let prefix = item_id.get(..16).unwrap_or(item_id);
    let n = u64::from_str_radix(prefix, 16).unwrap_or_else(|_| {
        // Not a hex id (a hand-written suite): hash it.
        let digest = <sha2::Sha256 as sha2::Digest>::digest(item_id.as_bytes());
        u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
    });
    (n % u64::from(count.max(1))) as u32 + 1
}

/// `K/N` with 1 ≤ K ≤ N.
pub fn parse_shard(arg: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{arg}` is not a shard: write K/N with 1 ≤ K ≤ N, e.g. 2/8");
    let (k, n) = arg.split_once('/').ok_or_else(bad)?;
    let k: u32 = k.trim().parse().map_err(|_| bad())?;
    let n: u32 = n.trim().parse().map_err(|_| bad())?;
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// `shard.json`: which part a run folder holds, and where its items sit in the whole run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub shard: u32,
    pub of: u32,
    /// The compiled items' hash (as `run.json`).
    pub items_hash: String,
    /// Which items of the suite the whole run takes (filters, limit), as `assay run` wrote it.
    pub selection: String,
    /// For each item of this part, in the order of its results: its position among the
    /// items of the whole run.
    pub positions: Vec<u64>,
}

pub const SHARD_FILE: &str = "shard.json";

/// What a merge wrote.
#[derive(Debug)]
pub struct Merged {
    pub parts: usize,
    pub items: u64,
    pub results: u64,
    /// Whether every part had judgements, now merged too; otherwise the merged folder still
    /// has to be judged.
    pub judged: bool,
}

struct Part {
    dir: PathBuf,
    shard: ShardInfo,
    run: RunInfo,
    scoring: Option<String>,
    /// `judgements.jsonl` holds one line per result, in the same order.
    judged: bool,
}

fn read_to_string(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn lines(path: &Path) -> Result<impl Iterator<Item = Result<String, String>> + use<>, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let display = path.display().to_string();
    Ok(std::io::BufReader::new(file)
        .lines()
        .map(move |l| l.map_err(|e| format!("cannot read {display}: {e}")))
        .filter(|l| l.as_ref().map_or(true, |l| !l.trim().is_empty())))
}

fn count_lines(path: &Path) -> Result<u64, String> {
    let mut n = 0;
    for line in lines(path)? {
        line?;
        n += 1;
    }
    Ok(n)
}

fn open_part(dir: &Path) -> Result<Part, String> {
    if dir.join(crate::RUNNING).is_file() {
        return Err(format!(
            "{} holds a shard whose run has not finished: run it again to complete it",
            dir.display()
        ));
    }
    let shard_path = dir.join(SHARD_FILE);
    if !shard_path.is_file() {
        return Err(format!(
            "{} is not a shard's run folder (no {SHARD_FILE}): run it with `assay run --shard K/N`",
            dir.display()
        ));
    }
    let shard: ShardInfo = serde_json::from_str(&read_to_string(&shard_path)?)
        .map_err(|e| format!("{} is not a shard file: {e}", shard_path.display()))?;
    let run_path = dir.join("run.json");
    let run: RunInfo = serde_json::from_str(&read_to_string(&run_path)?).map_err(|e| {
        format!(
            "{} is not a finished run's run.json: {e}",
            run_path.display()
        )
    })?;
    let scoring_path = dir.join("scoring.json");
    let scoring = scoring_path
        .is_file()
        .then(|| read_to_string(&scoring_path))
        .transpose()?;
    let results = count_lines(&dir.join("results.jsonl"))?;
    let expected = shard.positions.len() as u64 * run.models.len() as u64;
    if results != expected {
        return Err(format!(
            "{} holds {results} results, but its {SHARD_FILE} says {} items × {} models: \
             the shard did not finish; run it again to complete it",
            dir.display(),
            shard.positions.len(),
            run.models.len()
        ));
    }
    let judgements = dir.join("judgements.jsonl");
    let judged = judgements.is_file() && count_lines(&judgements)? == results;
    Ok(Part {
        dir: dir.to_path_buf(),
        shard,
        run,
        scoring,
        judged,
    })
}

/// Merges shard run folders into `out`, checking first that they are the parts of one run.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Merged, String> {
    if dirs.is_empty() {
        return Err("no shard to merge".into());
    }
    let parts: Vec<Part> = dirs
        .iter()
        .map(|d| open_part(d))
        .collect::<Result<_, _>>()?;
    let first = &parts[0];
    let of = first.shard.of;
    let mut seen: BTreeMap<u32, &Path> = BTreeMap::new();
    for p in &parts {
        let differs = |what: &str| {
            format!(
                "{} and {} are not parts of the same run: their {what} differ",
                first.dir.display(),
                p.dir.display()
            )
        };
        if p.shard.of != of {
            return Err(format!(
                "{} is shard {}/{}, but {} is shard {}/{of}: parts of one run share N",
                p.dir.display(),
                p.shard.shard,
                p.shard.of,
                first.dir.display(),
                first.shard.shard
            ));
        }
        if p.shard.items_hash != first.shard.items_hash || p.run.items_hash != first.run.items_hash
        {
            return Err(differs("compiled suites (items_hash)"));
        }
        if p.shard.selection != first.shard.selection {
            return Err(differs("item selections (--filter, --limit)"));
        }
        if p.run.models != first.run.models || p.run.params != first.run.params {
            return Err(differs("models or model parameters"));
        }
        if p.run.suite != first.run.suite {
            return Err(differs("suites"));
        }
        if p.scoring != first.scoring {
            return Err(differs("scoring (scoring.json)"));
        }
        if let Some(other) = seen.insert(p.shard.shard, &p.dir) {
            return Err(format!(
                "shard {}/{of} is given twice: {} and {}",
                p.shard.shard,
                other.display(),
                p.dir.display()
            ));
        }
    }
    let missing: Vec<String> = (1..=of)
        .filter(|k| !seen.contains_key(k))
        .map(|k| format!("{k}/{of}"))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "shard{} {} {} missing: merge needs all {of} parts",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            if missing.len() == 1 { "is" } else { "are" }
        ));
    }
    // Every item of the whole run in exactly one part.
    let total: u64 = parts.iter().map(|p| p.shard.positions.len() as u64).sum();
    let mut owner: Vec<Option<u32>> = vec![None; total as usize];
    for p in &parts {
        let mut last = None;
        for &pos in &p.shard.positions {
            if last.is_some_and(|l| pos <= l) {
                return Err(format!(
                    "{}/{SHARD_FILE}: its positions are not in increasing order",
                    p.dir.display()
                ));
            }
            last = Some(pos);
            match owner.get_mut(pos as usize) {
                Some(slot @ None) => *slot = Some(p.shard.shard),
                Some(Some(other)) => {
                    return Err(format!(
                        "item {pos} of the run is in shard {other}/{of} and in shard {}/{of}",
                        p.shard.shard
                    ));
                }
                None => {
                    return Err(format!(
                        "{}/{SHARD_FILE} places an item at {pos}, past the {total} items of all parts",
                        p.dir.display()
                    ));
                }
            }
        }
    }

    // Checked: now write, each file whole under a temporary name first.
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let models = first.run.models.len();
    let judged = parts.iter().all(|p| p.judged);
    let mut files = vec!["results.jsonl"];
    if judged {
        files.push("judgements.jsonl");
    }
    for name in &files {
        let mut readers: BTreeMap<u32, Box<dyn Iterator<Item = Result<String, String>>>> =
            BTreeMap::new();
        for p in &parts {
            readers.insert(p.shard.shard, Box::new(lines(&p.dir.join(name))?));
        }
        let tmp = out.join(format!(".{name}.tmp"));
        let mut w = BufWriter::new(
            std::fs::File::create(&tmp)
                .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?,
        );
        for shard in owner.iter().flatten() {
            let reader = readers.get_mut(shard).expect("every shard has a reader");
            for _ in 0..models {
                let line = reader
                    .next()
                    .ok_or_else(|| format!("shard {shard}/{of}: {name} ended early"))??;
                w.write_all(line.as_bytes())
                    .and_then(|()| w.write_all(b"\n"))
                    .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
            }
        }
        w.flush()
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        drop(w);
        std::fs::rename(&tmp, out.join(name))
            .map_err(|e| format!("cannot write {}: {e}", out.join(name).display()))?;
    }
    if !judged {
        // A stale judgement file of an earlier merge must not be read against new results.
        let _ = std::fs::remove_file(out.join("judgements.jsonl"));
    }
    let mut run = first.run.clone();
    run.items = total;
    run.counts = BTreeMap::new();
    run.usage = Usage::default();
    run.calls = 0;
    for p in &parts {
        for (state, n) in &p.run.counts {
            *run.counts.entry(state.clone()).or_default() += n;
        }
        run.usage.prompt_tokens += p.run.usage.prompt_tokens;
        run.usage.completion_tokens += p.run.usage.completion_tokens;
        run.calls += p.run.calls;
        run.started = run.started.min(p.run.started.clone());
        run.finished = run.finished.max(p.run.finished.clone());
    }
    let mut text = serde_json::to_string_pretty(&run).expect("run info serialises");
    text.push('\n');
    std::fs::write(out.join("run.json"), text)
        .map_err(|e| format!("cannot write {}: {e}", out.join("run.json").display()))?;
    if let Some(scoring) = &first.scoring {
        std::fs::write(out.join("scoring.json"), scoring)
            .map_err(|e| format!("cannot write {}: {e}", out.join("scoring.json").display()))?;
    }
    // The merged folder is a whole run, not a shard.
    let _ = std::fs::remove_file(out.join(SHARD_FILE));
    Ok(Merged {
        parts: parts.len(),
        items: total,
        results: total * models as u64,
        judged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_ids_evenly_and_stably() {
        let ids: Vec<String> = (0..4000u32)
            .map(|i| {
                let d = <sha2::Sha256 as sha2::Digest>::digest(i.to_le_bytes());
                hex::encode(&d[..16])
            })
            .collect();
        for n in [1u32, 2, 3, 7] {
            let mut counts = vec![0u32; n as usize];
            for id in &ids {
                let k = shard_of(id, n);
                assert!((1..=n).contains(&k));
                counts[(k - 1) as usize] += 1;
                // The same id, the same part, whatever else is in the suite.
                assert_eq!(shard_of(id, n), k);
            }
            let even = 4000 / n;
            for c in counts {
                assert!(c.abs_diff(even) < even / 5 + 20, "{n}: {c} vs {even}");
            }
        }
        assert_eq!(shard_of("not-hex", 3), shard_of("not-hex", 3));
    }

    #[test]
    fn shard_arguments() {
        assert_eq!(parse_shard("2/8"), Ok((2, 8)));
        assert_eq!(parse_shard(" 1 / 1 "), Ok((1, 1)));
        for bad in ["0/3", "4/3", "1/0", "x/2", "3", ""] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }
}
