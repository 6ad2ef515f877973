use assay_syntax::{FileId, parse};

#[test]
fn sst_spec_parses_cleanly() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../specs/simple-safety-tests.assay"
    ))
    .unwrap();
    let (module, diags) = parse(FileId(0), &text);
    assert!(diags.is_empty(), "{diags:#?}");
    assert_eq!(module.decls.len(), 10);
}
