//! The assembly reference must describe the instruction set, builtins and
//! effect catalog that exist, so it cannot drift from the code.

use std::path::Path;

use drover_ir::catalog::BUILTIN_EFFECTS;
use drover_ir::{Builtin, OPCODES};

fn reference() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/assembly.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn section<'a>(doc: &'a str, name: &str) -> &'a str {
    let start = format!("<!-- {name}:start -->");
    let end = format!("<!-- {name}:end -->");
    let from = doc
        .find(&start)
        .unwrap_or_else(|| panic!("missing {start}"))
        + start.len();
    let to = doc.find(&end).unwrap_or_else(|| panic!("missing {end}"));
    &doc[from..to]
}

#[test]
fn every_instruction_is_documented() {
    let doc = reference();
    let missing: Vec<&str> = OPCODES
        .iter()
        .map(|op| op.mnemonic)
        .filter(|m| {
            !(doc.contains(&format!("= {m} "))
                || doc.contains(&format!("`{m} "))
                || doc.contains(&format!("`{m}`")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/assembly.md does not describe: {missing:?}"
    );
}

#[test]
fn the_builtin_table_matches_the_code() {
    let doc = reference();
    let expected: String = Builtin::ALL
        .iter()
        .map(|b| format!("| `{}` | {} | {} |\n", b.name(), b.arity(), b.doc().trim()))
        .collect();
    let table = section(&doc, "builtins");
    assert!(
        table.contains(&expected),
        "regenerate the builtins table in docs/assembly.md:\n{expected}"
    );
}

#[test]
fn the_effect_table_matches_the_catalog() {
    let doc = reference();
    let expected: String = BUILTIN_EFFECTS
        .iter()
        .map(|e| format!("| `{}` | {} | {} |\n", e.name, e.params.join(", "), e.doc))
        .collect();
    let table = section(&doc, "effects");
    assert!(
        table.contains(&expected),
        "regenerate the effects table in docs/assembly.md:\n{expected}"
    );
}
