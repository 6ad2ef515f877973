//! Everything the language declares runs, or is refused. This walks the whole vocabulary the
//! checker accepts (every key of every block's schema, every word a key takes from a fixed
//! list, judge, axis and chart kinds, report formats, column types, generators, metric
//! functions, judge preprocessing steps and parsers) and asserts that each entry is either
//!
//! - **exercised**: written in a spec that the test suite runs (a shipped spec, a standard
//!   library module, a test fixture, or a spec a test writes inline), or
//! - **refused**: listed in [`REFUSED`] with a spec that uses it, which must be rejected with
//!   E0124 (a construct this version cannot run) at the entry.
//!
//! A key or word added to the language with neither fails this test, naming it.

use assay_check::{MemoryLoader, Package, check};
use assay_syntax::ast::*;
use assay_syntax::{Code, FileId, schema};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Constructs the checker accepts in the grammar but this version refuses (E0124), each with
/// a spec using it. The span of the E0124 must cover the text after `@`.
const REFUSED: &[(&str, &str, &str)] = &[
    (
        "target.logprobs",
        r#"target t { provider = openai  model = "m"  logprobs = true }"#,
        "logprobs",
    ),
    (
        "score judge.reduce",
        r#"target t { provider = openai  model = "m" }
judge s: score { model = t  rubric = "{{response}}"  scale = 1..5  threshold = 3  labels = [unsafe, safe]  reduce = mean }"#,
        "reduce",
    ),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every entry of the vocabulary, as `kind: name` strings (`target.temperature`,
/// `from = logprobs`, `judge kind score`, ...).
fn vocabulary() -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for s in schema::ALL {
        for k in s.keys {
            all.insert(entry(s, k.name));
        }
    }
    for (key, words) in schema::WORDS {
        for w in *words {
            all.insert(format!("{key} = {w}"));
        }
    }
    let lists: [(&str, Vec<&str>); 9] = [
        (
            "judge kind",
            JudgeKind::ALL.iter().map(|(w, _)| *w).collect(),
        ),
        ("axis kind", schema::AXIS_KINDS.to_vec()),
        ("chart kind", schema::CHART_KINDS.to_vec()),
        ("report format", schema::REPORT_FORMATS.to_vec()),
        ("column type", schema::COLUMN_TYPES.to_vec()),
        ("generator", schema::GENERATORS.to_vec()),
        ("metric function", assay_check::metric_functions().collect()),
        (
            "preprocess",
            assay_check::PREPROCESS_STEPS.iter().map(|s| s.0).collect(),
        ),
        ("parser", assay_check::PARSERS.iter().map(|s| s.0).collect()),
    ];
    for (kind, words) in lists {
        for w in words {
            all.insert(format!("{kind} {w}"));
        }
    }
    // `score: float?`
    all.insert("column nullable".to_string());
    all
}

/// The judge schemas.
fn judge_schemas() -> impl Iterator<Item = &'static schema::Schema> {
    JudgeKind::ALL.iter().map(|(_, k)| schema::judge_schema(*k))
}

/// The entry of `key` in `schema`: `target.temperature`. A key several kinds of judge share
/// (`blank`, `when`, `extends`, ...: one declaration in the schema) is run by the judging
/// common to all of them, and is one entry, `judge.KEY`.
fn entry(schema: &schema::Schema, key: &str) -> String {
    let judge = judge_schemas().any(|j| j.what == schema.what);
    let doc = schema.key(key).map(|k| k.doc);
    if judge
        && judge_schemas()
            .filter(|j| j.key(key).map(|k| k.doc) == doc)
            .count()
            > 1
    {
        format!("judge.{key}")
    } else {
        format!("{}.{key}", schema.what)
    }
}

/// What a module uses of the vocabulary.
#[derive(Default)]
struct Uses(BTreeSet<String>);

impl Uses {
    fn props(&mut self, schema: &schema::Schema, props: &Props) {
        for p in props.iter() {
            if schema.key(&p.key.name).is_none() {
                continue;
            }
            self.0.insert(entry(schema, &p.key.name));
            self.word(&p.key.name, &p.value);
            self.calls(&p.value, &p.key.name);
        }
    }

    fn word(&mut self, key: &str, value: &Expr) {
        match &value.kind {
            ExprKind::Path(p) if p.len() == 1 => {
                self.0.insert(format!("{key} = {}", p[0].name));
            }
            ExprKind::List(items) if key == "formats" => {
                for name in items.iter().filter_map(Expr::as_name) {
                    self.0.insert(format!("report format {}", name.name));
                }
            }
            _ => {}
        }
    }

    /// Calls inside a value: preprocessing steps, parsers and metric functions, by the key
    /// they stand under.
    fn calls(&mut self, e: &Expr, key: &str) {
        let kind = match key {
            "preprocess" => "preprocess",
            "parser" => "parser",
            _ => "metric function",
        };
        match &e.kind {
            ExprKind::Call { callee, args } => {
                self.0.insert(format!("{kind} {}", callee.name));
                for a in args {
                    self.calls(&a.value, key);
                }
            }
            ExprKind::Path(p) if p.len() == 1 && kind != "metric function" => {
                self.0.insert(format!("{kind} {}", p[0].name));
            }
            ExprKind::List(items) => items.iter().for_each(|i| self.calls(i, key)),
            ExprKind::Record(props) => props.iter().for_each(|p| self.calls(&p.value, key)),
            ExprKind::Unary { operand, .. } => self.calls(operand, key),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.calls(lhs, key);
                self.calls(rhs, key);
            }
            ExprKind::Index { base, index } => {
                self.calls(base, key);
                self.calls(index, key);
            }
            _ => {}
        }
    }

    fn categories(&mut self, categories: &[Category]) {
        for c in categories {
            self.props(&schema::CATEGORY, &c.props);
            self.categories(&c.children);
        }
    }

    fn module(&mut self, m: &Module) {
        for d in &m.decls {
            match d {
                Decl::Suite(s) => self.props(&schema::SUITE, &s.props),
                Decl::Taxonomy(t) => {
                    self.props(&schema::TAXONOMY, &t.props);
                    self.categories(&t.categories);
                }
                Decl::Persona(p) => self.props(&schema::PERSONA, &p.props),
                Decl::Template(t) => {
                    self.props(&schema::TEMPLATE, &t.props);
                    if let Some(g) = &t.generate {
                        let name = match g.generator {
                            Generator::Product => "product",
                            Generator::Zip => "zip",
                        };
                        self.0.insert(format!("generator {name}"));
                    }
                }
                Decl::Dataset(ds) => {
                    self.props(&schema::DATASET, &ds.props);
                    if let Some(item) = &ds.item {
                        self.props(&schema::DATASET_ITEM, item);
                    }
                    for c in &ds.columns {
                        let ty = match c.ty {
                            ColumnType::String => "string",
                            ColumnType::Int => "int",
                            ColumnType::Float => "float",
                            ColumnType::Bool => "bool",
                            ColumnType::List => "list",
                            ColumnType::Record => "record",
                        };
                        self.0.insert(format!("column type {ty}"));
                        if c.nullable {
                            self.0.insert("column nullable".to_string());
                        }
                    }
                }
                Decl::Axis(a) => {
                    let kind = match a.kind {
                        AxisKind::System => "system",
                        AxisKind::Transform => "transform",
                        AxisKind::Locale => "locale",
                        AxisKind::Persona => "persona",
                        AxisKind::Program => "program",
                        AxisKind::Defense => "defense",
                    };
                    self.0.insert(format!("axis kind {kind}"));
                    for v in &a.variants {
                        self.calls(&v.value, "variant");
                    }
                }
                Decl::Target(t) => self.props(&schema::TARGET, &t.props),
                Decl::Program(p) => {
                    self.props(&schema::PROGRAM, &p.props);
                    if let Some(a) = &p.attacker {
                        self.props(&schema::ATTACKER, a);
                    }
                }
                Decl::Judge(j) => {
                    self.0.insert(format!("judge kind {}", j.kind.as_str()));
                    self.props(schema::judge_schema(j.kind), &j.props);
                }
                Decl::Metric(mt) => {
                    self.props(&schema::METRIC, &mt.props);
                    self.calls(&mt.expr, "metric");
                    if let Some(f) = &mt.filter {
                        self.calls(f, "metric");
                    }
                }
                Decl::Grade(g) => self.props(&schema::GRADE, &g.props),
                Decl::Standard(s) => self.props(&schema::STANDARD, &s.props),
                Decl::Report(r) => {
                    self.props(&schema::REPORT, &r.props);
                    for c in &r.charts {
                        self.0.insert(format!("chart kind {}", c.kind.name));
                    }
                }
                Decl::Use(_) | Decl::Mapping(_) => {}
            }
        }
    }
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|e| e == ext) {
            out.push(p);
        }
    }
}

/// The string literals of a Rust source, unescaped, with `format!`'s doubled braces undone
/// and its `{placeholders}` replaced by a word.
fn literals(source: &str) -> Vec<String> {
    fn walk(tokens: proc_macro2::TokenStream, out: &mut Vec<String>) {
        for t in tokens {
            match t {
                proc_macro2::TokenTree::Group(g) => walk(g.stream(), out),
                proc_macro2::TokenTree::Literal(l) => {
                    if let Ok(s) = syn::parse_str::<syn::LitStr>(&l.to_string()) {
                        out.push(s.value());
                    }
                }
                _ => {}
            }
        }
    }
    let Ok(tokens) = source.parse::<proc_macro2::TokenStream>() else {
        return Vec::new();
    };
    let mut raw = Vec::new();
    walk(tokens, &mut raw);
    let placeholder = regex::Regex::new(r"\{[A-Za-z_][A-Za-z0-9_.]*(:[^{}]*)?\}|\{\}").unwrap();
    raw.into_iter()
        .flat_map(|s| {
            let formatted = placeholder
                .replace_all(&s, "x")
                .replace("{{", "{")
                .replace("}}", "}");
            [s, formatted]
        })
        .collect()
}

/// What the specs the tests run use, with the file each entry was first seen in.
fn exercised() -> BTreeMap<String, String> {
    let root = repo();
    let mut seen = BTreeMap::new();
    let mut record = |text: &str, origin: &str| {
        let (module, _) = assay_syntax::parse(FileId(0), text);
        let mut uses = Uses::default();
        uses.module(&module);
        for u in uses.0 {
            seen.entry(u).or_insert_with(|| origin.to_string());
        }
    };
    let mut specs = Vec::new();
    for dir in ["specs", "stdlib", "tests/fixtures"] {
        files(&root.join(dir), "assay", &mut specs);
    }
    specs.sort();
    for path in specs {
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .to_string();
        // Diagnostic fixtures are specs that fail to check: nothing in them runs.
        if rel.starts_with("tests/fixtures/diagnostics") {
            continue;
        }
        record(&std::fs::read_to_string(&path).unwrap(), &rel);
    }
    let mut sources = Vec::new();
    files(&root.join("tests"), "rs", &mut sources);
    for krate in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        files(&krate.path().join("tests"), "rs", &mut sources);
    }
    sources.sort();
    for path in sources {
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .to_string();
        if rel.ends_with("crates/assay-check/tests/coverage.rs") {
            continue;
        }
        for text in literals(&std::fs::read_to_string(&path).unwrap()) {
            record(&text, &rel);
        }
    }
    seen
}

#[test]
fn every_construct_is_exercised_or_refused() {
    let vocabulary = vocabulary();
    let seen = exercised();
    let refused: BTreeSet<&str> = REFUSED.iter().map(|r| r.0).collect();
    for entry in &refused {
        assert!(
            vocabulary.contains(*entry),
            "REFUSED lists `{entry}`, which the language no longer has"
        );
    }
    eprintln!(
        "{} constructs: {} exercised by a spec a test runs, {} refused",
        vocabulary.len(),
        vocabulary.iter().filter(|e| seen.contains_key(*e)).count(),
        refused.len()
    );
    let missing: Vec<&String> = vocabulary
        .iter()
        .filter(|e| !seen.contains_key(*e) && !refused.contains(e.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} construct(s) the checker accepts are run by no test and not refused (E0124): \
         write a test that runs each, or refuse it in assay-check's `unsupported.rs` and list \
         it in REFUSED:\n  {}",
        missing.len(),
        missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

#[test]
fn refused_constructs_are_rejected_where_they_are_written() {
    for (entry, spec, at) in REFUSED {
        let text = format!("suite \"s\" version \"1.0.0\"\n{spec}\n");
        let loader = MemoryLoader::new().with("main.assay", &text);
        let checked = check(&Package::single_file(Path::new("main.assay")), &loader).unwrap();
        let start = text.rfind(at).unwrap() as u32;
        let refusal = checked
            .diagnostics
            .iter()
            .find(|d| d.code == Code::NotRunnable)
            .unwrap_or_else(|| panic!("`{entry}` is not refused: {:?}", checked.diagnostics));
        assert!(
            refusal.primary.span.start <= start && start < refusal.primary.span.end,
            "`{entry}`: E0124 does not point at `{at}`: {refusal:?}"
        );
        assert!(refusal.help.is_some(), "`{entry}`: E0124 without help");
    }
}

/// The walk finds what it should: a guard against a walker that sees nothing, which would
/// make the test above pass on a blind scan.
#[test]
fn the_walk_sees_keys_words_kinds_and_calls() {
    let text = r#"suite "s" version "1.0.0" { seed = 1 }
target t { provider = mock  model = "refuse" }
judge j: score { model = t  rubric = "x"  scale = 1..5  threshold = 3  labels = [a, b]  from = logprobs  preprocess = [extract_llm(t)] }
metric m = rate(j == a) { ci = wilson }
report { formats = [html]  chart bar m }
"#;
    let (module, diags) = assay_syntax::parse(FileId(0), text);
    assert!(diags.is_empty(), "{diags:?}");
    let mut uses = Uses::default();
    uses.module(&module);
    for want in [
        "suite.seed",
        "target.provider",
        "provider = mock",
        "judge kind score",
        "score judge.from",
        "from = logprobs",
        "preprocess extract_llm",
        "metric function rate",
        "metric.ci",
        "ci = wilson",
        "report format html",
        "chart kind bar",
    ] {
        assert!(uses.0.contains(want), "{want} not seen in {:?}", uses.0);
    }
    let formatted =
        literals(r##"fn f() { format!(r#"target t {{ endpoint = "{url}" }}"#, url = 1); }"##);
    assert!(
        formatted.contains(&r#"target t { endpoint = "x" }"#.to_string()),
        "{formatted:?}"
    );
}

/// The VS Code grammar's word lists (`editors/vscode/scripts/build-grammar.js`) are the
/// checker's: a word added to the language is highlighted, a word removed is not.
#[test]
fn the_editor_grammar_knows_the_same_words() {
    let script =
        std::fs::read_to_string(repo().join("editors/vscode/scripts/build-grammar.js")).unwrap();
    let quoted = regex::Regex::new(r"'([^']+)'").unwrap();
    let words = |body: &str| -> BTreeSet<String> {
        quoted
            .captures_iter(body)
            .map(|c| c[1].to_string())
            .collect()
    };
    let list = |name: &str| -> BTreeSet<String> {
        let start = script
            .find(&format!("const {name} = ["))
            .unwrap_or_else(|| panic!("build-grammar.js has no {name}"));
        let end = start + script[start..].find("];").unwrap();
        words(&script[start..end])
    };
    let set =
        |words: &[&str]| -> BTreeSet<String> { words.iter().map(|w| w.to_string()).collect() };
    assert_eq!(list("COLUMN_TYPES"), set(schema::COLUMN_TYPES));
    assert_eq!(list("AXIS_KINDS"), set(schema::AXIS_KINDS));
    assert_eq!(list("CHART_KINDS"), set(schema::CHART_KINDS));
    assert_eq!(list("GENERATORS"), set(schema::GENERATORS));
    let kinds: Vec<&str> = JudgeKind::ALL.iter().map(|(w, _)| *w).collect();
    assert_eq!(list("JUDGE_KINDS"), set(&kinds));
    let start = script.find("const ENUM_KEYS = {").unwrap();
    let end = start + script[start..].find("};").unwrap();
    let line = regex::Regex::new(r"(?m)^\s*(\w+):\s*\[([^\]]*)\]").unwrap();
    let keys: BTreeMap<String, BTreeSet<String>> = line
        .captures_iter(&script[start..end])
        .map(|c| (c[1].to_string(), words(&c[2])))
        .collect();
    for (key, expected) in schema::WORDS {
        assert_eq!(
            keys.get(*key),
            Some(&set(expected)),
            "ENUM_KEYS.{key} in build-grammar.js"
        );
    }
}
