//! The verifier against real assembly text: what a user sees when a parsed
//! `.dasm` file fails verification, and (feature `arbitrary`) that
//! structurally valid modules raise no structural findings.

use drover_ir::diagnostics::render;
use drover_ir::text::{parse_with_map, TextMap};
use drover_ir::verify::{codes, verify};
use drover_ir::Module;

fn parse(name: &str, src: &str) -> (Module, TextMap) {
    match parse_with_map(name, src) {
        Ok(parsed) => parsed,
        Err(e) => panic!("{}", render(&e)),
    }
}

const CACHE_PUT: &str = r#"effect memcache.set(key, value, ttl_s)

workflow cache_put(key, value) {
entry:
    r3 = perform memcache.set(r0, r1)
    br r4, done, done
done:
    r5 = format "put {} {", (r0)
    r6 = builtin insert(r5)
    ret r3
orphan:
    ret r0
}
"#;

#[test]
fn errors_point_into_the_text() {
    let (m, map) = parse("cache_put.dasm", CACHE_PUT);
    let report = verify(&m);
    let found: Vec<_> = report.diags.iter().map(|d| d.code).collect();
    assert_eq!(
        found,
        vec![
            codes::ARITY,
            codes::USE_BEFORE_DEF,
            codes::FORMAT_BRACE,
            codes::ARITY,
            codes::UNREACHABLE_BLOCK,
        ]
    );
    let diag = report.diagnostic("cache_put.dasm", CACHE_PUT, &map);
    assert_eq!(
        miette::Diagnostic::severity(&diag),
        Some(miette::Severity::Error)
    );
    insta::assert_snapshot!(report.render("cache_put.dasm", CACHE_PUT, &map));
}

#[test]
fn warnings_alone_make_a_warning() {
    let src = "workflow main(x) {\nentry:\n    r1 = call elsewhere(r0)\n    ret r1\nisland:\n    ret r0\n}\n";
    let (m, map) = parse("main.dasm", src);
    let report = verify(&m);
    assert!(!report.has_errors());
    assert_eq!(report.warnings().count(), 2);
    let diag = report.diagnostic("main.dasm", src, &map);
    assert_eq!(
        miette::Diagnostic::severity(&diag),
        Some(miette::Severity::Warning)
    );
    insta::assert_snapshot!(report.render("main.dasm", src, &map));
}

#[test]
fn fibers_loops_and_branches_from_text() {
    // r1 is defined before the spawn and the loop; r2 only on one branch;
    // r3 only after the spawn, so the fiber cannot see it.
    let src = r#"workflow fan_out(n) {
entry:
    r1 = const 0
    r9 = spawn worker
    r3 = const 1
    br r0, set, head
set:
    r2 = const 2
    jmp head
head:
    r4 = lt r1, r0
    br r4, body, done
body:
    r1 = add r1, r3
    jmp head
done:
    r5 = join r9
    ret r2
worker:
    r6 = add r1, r3
    ret r6
}
"#;
    let (m, map) = parse("fan_out.dasm", src);
    let report = verify(&m);
    insta::assert_snapshot!(report.render("fan_out.dasm", src, &map));
    let uses: Vec<_> = report.diags.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        uses,
        vec![
            "error[verify::use-before-def] w0 `fan_out` bb4 `done` #1: register r2 may be used before it is defined",
            "error[verify::use-before-def] w0 `fan_out` bb5 `worker` #0: register r3 may be used before it is defined",
        ]
    );
}

#[test]
fn the_example_workflow_verifies() {
    let src = include_str!("data/email.dasm");
    let (m, _) = parse("email.dasm", src);
    let report = verify(&m);
    // Its only finding is the call to a workflow defined elsewhere.
    let found: Vec<_> = report.diags.iter().map(|d| d.code).collect();
    assert_eq!(found, vec![codes::UNKNOWN_WORKFLOW], "{:#?}", report.diags);
}

// Run with `cargo test -p drover-ir --features arbitrary`.
#[cfg(feature = "arbitrary")]
mod arbitrary {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The shared generator promises references in range, unique names,
        /// one terminator per block, matching arities and well-formed
        /// templates; it does not promise dataflow or reachability.
        #[test]
        fn structurally_valid_modules_raise_only_flow_findings(m in drover_ir::arbitrary::module()) {
            let report = verify(&m);
            for d in &report.diags {
                prop_assert!(
                    d.code == codes::USE_BEFORE_DEF || d.code == codes::UNREACHABLE_BLOCK,
                    "{d:#}"
                );
            }
            let (src, map) = drover_ir::text::print_with_map(&m);
            let rendered = report.render("arbitrary.dasm", &src, &map);
            for d in &report.diags {
                prop_assert!(rendered.contains(&d.message), "{rendered}");
            }
        }
    }
}
