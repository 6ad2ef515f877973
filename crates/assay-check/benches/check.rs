//! `cargo bench -p assay-check`: parse and check a generated 10,000-line spec (the generator is
//! `bench/gen_spec.py`; its output is produced here by running it, or read from
//! `ASSAY_BENCH_SPEC`). Target: under 100 ms.

use assay_check::{MemoryLoader, Package, check};
use criterion::{Criterion, criterion_group, criterion_main};
use std::path::Path;
use std::process::Command;

fn spec() -> String {
    if let Ok(path) = std::env::var("ASSAY_BENCH_SPEC") {
        return std::fs::read_to_string(path).expect("ASSAY_BENCH_SPEC is readable");
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/gen_spec.py");
    let out = Command::new("python3")
        .arg(script)
        .arg("10000")
        .output()
        .expect("python3 runs the generator");
    String::from_utf8(out.stdout).expect("utf-8 spec")
}

fn bench(c: &mut Criterion) {
    let text = spec();
    let lines = text.lines().count();
    let loader = MemoryLoader::new().with("main.assay", text);
    let package = Package::single_file(Path::new("main.assay"));
    let checked = check(&package, &loader).unwrap();
    assert!(
        checked.diagnostics.is_empty(),
        "the generated spec must be clean: {:#?}",
        &checked.diagnostics[..1]
    );
    c.bench_function(&format!("check {lines}-line spec"), |b| {
        b.iter(|| check(&package, &loader).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
