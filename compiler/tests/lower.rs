//! The lowering on sample workflows: printed IR snapshots of
//! `tests/data/rust/*.rs`, each module verified.

use std::path::{Path, PathBuf};

use drover_compiler::lower::{compile_file, Compiled};

/// The sample inputs, sorted by name.
fn samples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/rust");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    files
}

/// Compiles a sample, failing the test with every error if there is one.
fn compile(path: &Path) -> Vec<Compiled> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let src = std::fs::read_to_string(path).expect("read sample");
    match compile_file(&name, &src) {
        Ok(c) => c,
        Err(errs) => panic!(
            "{name}:\n{}",
            errs.errors
                .iter()
                .map(|e| format!("{:?}: {} ({:?})", e.line_col, e.message, e.help))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

/// Fails the test on any verifier error or warning, except that a child
/// workflow lives in another module.
fn assert_verifies(c: &Compiled) {
    let report = drover_ir::verify::verify(&c.module);
    let text = drover_ir::text::print(&c.module);
    let (src, map) = drover_ir::text::print_with_map(&c.module);
    let children = c.children.len();
    let unknown = report
        .diags
        .iter()
        .filter(|d| d.code == drover_ir::verify::codes::UNKNOWN_WORKFLOW)
        .count();
    assert!(
        unknown <= children,
        "{}: more unknown workflows than children",
        c.name
    );
    assert!(
        report.diags.len() == unknown,
        "{}:\n{}\n{text}",
        c.name,
        report.render(&c.name, &src, &map)
    );
}

#[test]
fn samples_print_as_snapshots_and_verify() {
    let files = samples();
    assert!(
        files.len() >= 5,
        "expected the sample workflows, found {files:?}"
    );
    for path in files {
        for c in compile(&path) {
            assert_verifies(&c);
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            insta::assert_snapshot!(
                format!("{stem}__{}", c.name),
                drover_ir::text::print(&c.module)
            );
        }
    }
}
