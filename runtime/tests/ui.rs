//! Compile-fail cases for the macros: each `ui/*.rs` must fail to compile
//! with exactly the diagnostics in its `.stderr` (regenerate with
//! `TRYBUILD=overwrite cargo test -p drover --test ui`, then review).

#[test]
fn ui() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
