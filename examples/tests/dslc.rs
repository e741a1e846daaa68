//! Each example through the tools a user has: `dslc compile` to bytecode,
//! then `dslc run` against its scripted responses in
//! `examples/effects/<workflow>.json`, checking the result printed; and a
//! snapshot of each workflow's printed IR.

mod common;

use std::process::{Command, Output};

use drover::registry;
use drover_examples::{email_scan, fan_out, order_saga};

use common::{dslc_path, root};

fn dslc(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(dslc_path())
        .current_dir(root())
        .args(args)
        .output()
        .expect("dslc runs")
}

/// `dslc compile SOURCE -o DIR`, then `dslc run DIR/WF.dbc WF --input INPUT
/// --effects examples/effects/WF.json --json`; gives the JSON report.
fn compile_and_run(source: &str, workflow: &str, input: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let compiled = dslc(&[
        "compile".as_ref(),
        source.as_ref(),
        "-o".as_ref(),
        dir.path().as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&compiled.stderr);
    assert!(compiled.status.success(), "dslc compile {source}: {stderr}");
    let dbc = dir.path().join(format!("{workflow}.dbc"));
    let effects = format!("examples/effects/{workflow}.json");
    let ran = dslc(&[
        "run".as_ref(),
        dbc.as_os_str(),
        workflow.as_ref(),
        "--input".as_ref(),
        input.as_ref(),
        "--effects".as_ref(),
        effects.as_ref(),
        "--json".as_ref(),
    ]);
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(ran.status.success(), "dslc run {workflow}: {stderr}");
    serde_json::from_slice(&ran.stdout).expect("dslc run --json prints JSON")
}

/// The effects a run performed, in order, by name.
fn performed(report: &serde_json::Value) -> Vec<String> {
    report["trace"]
        .as_array()
        .expect("a trace")
        .iter()
        .filter(|line| line["kind"] == "perform")
        .map(|line| {
            let detail = line["text"].as_str().unwrap_or_default();
            // "#3 memcache.get(..) attempt 1": the name after the id.
            let after_id = detail.split_once(' ').map_or(detail, |(_, rest)| rest);
            after_id.split('(').next().unwrap_or_default().to_owned()
        })
        .collect()
}

#[test]
fn scan_email_runs_through_dslc() {
    let report = compile_and_run(
        "examples/src/email_scan.rs",
        "scan_email",
        r#"{"message_id": "m-1", "sender": "a@example.com", "attachment_sha256": "e3b0c442"}"#,
    );
    assert_eq!(report["status"], "completed", "{report:#}");
    assert_eq!(
        report["result"],
        serde_json::json!({"Ok": {
            "message_id": "m-1",
            "verdict": {"infected": true, "threat": "EICAR-Test-File"},
            "cached": false,
            "alerted": true,
        }})
    );
    // The first memcache lookup fails and is retried after its backoff.
    assert_eq!(report["retries"], 1);
    assert_eq!(
        performed(&report),
        [
            "statsd.count",
            "memcache.get",
            "memcache.get",
            "statsd.count",
            "scan",
            "memcache.set",
            "statsd.count",
            "slack.post",
            "pagerduty.trigger",
            "rabbitmq.publish",
        ]
    );
}

#[test]
fn place_order_compensates_through_dslc() {
    let report = compile_and_run(
        "examples/src/order_saga.rs",
        "place_order",
        r#"{"order_id": "o-1", "customer": "c-7", "sku": "BOOK-42", "quantity": 2, "amount_cents": 3998, "address": "1 Main St"}"#,
    );
    assert_eq!(report["status"], "completed", "{report:#}");
    assert_eq!(
        report["result"],
        serde_json::json!({"Ok": {"RolledBack": {
            "failed_step": "ship",
            "reason": "address not deliverable",
            "undone": ["refund", "release_stock"],
        }}})
    );
    assert_eq!(
        performed(&report),
        [
            "reserve_stock",
            "charge_card",
            "ship",
            "refund",
            "release_stock"
        ]
    );
}

#[test]
fn fan_out_runs_through_dslc() {
    let report = compile_and_run(
        "examples/src/fan_out.rs",
        "fan_out",
        r#"[{"id": "a", "quantity": 2}, {"id": "b", "quantity": 5}, {"id": "c", "quantity": 1}]"#,
    );
    assert_eq!(report["status"], "completed", "{report:#}");
    assert_eq!(
        report["result"],
        serde_json::json!({"Ok": {
            "accepted": 2, "rejected": 0, "failed": 1, "total_score": 360, "best": "b",
        }})
    );
    // All three are in flight before the first answer comes back.
    assert_eq!(performed(&report)[1..4], ["process", "process", "process"]);
}

/// Registration happens when the examples' crate is linked, which takes a
/// reference to something in it: the workflows themselves will do.
fn link_examples() {
    std::hint::black_box((
        email_scan::scan_email as fn(_) -> _,
        order_saga::place_order as fn(_) -> _,
        fan_out::fan_out as fn(_) -> _,
    ));
}

/// Snapshots of the IR the macros embed, printed as assembly.
#[test]
fn printed_ir_of_each_example() {
    link_examples();
    for name in ["scan_email", "place_order", "fan_out"] {
        let def = registry::workflow(name).unwrap_or_else(|| panic!("{name} is registered"));
        let module = def.module().expect("the embedded IR decodes");
        insta::assert_snapshot!(name, drover_ir::text::print(&module));
    }
}

/// `dslc compile`, which sees the whole file, and the macro, which sees one
/// fn, lower each example to the same instructions. Only the activity
/// declarations may differ: the macro cannot see an activity's parameter
/// names, so it numbers them.
#[test]
fn dslc_and_the_macro_agree() {
    link_examples();
    for file in ["email_scan", "order_saga", "fan_out"] {
        let name = format!("examples/src/{file}.rs");
        let src = std::fs::read_to_string(root().join(&name)).expect("the example's source");
        let compiled = drover_compiler::lower::compile_file(&name, &src)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        for c in compiled {
            let def = registry::workflow(&c.name).expect("registered");
            let embedded = drover_ir::text::print(&def.module().expect("decodes"));
            let from_file = drover_ir::text::print(&c.module);
            let body =
                |text: &str| text[text.find("\nworkflow ").expect("a workflow")..].to_owned();
            assert_eq!(body(&from_file), body(&embedded), "{}", c.name);
            let decls = |text: &str| -> Vec<String> {
                text.lines()
                    .take_while(|l| !l.is_empty())
                    .map(|l| l.split('(').next().unwrap_or(l).to_owned())
                    .collect()
            };
            assert_eq!(decls(&from_file), decls(&embedded), "{}", c.name);
        }
    }
}
