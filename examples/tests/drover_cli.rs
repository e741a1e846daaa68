//! Runs the real `drover` binary, with the examples linked in, the way a user
//! does: its stdout and stderr are the process's own, which in-process tests
//! of `drover::cli::run_with` cannot show.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `drover` with `args`; fails the test if it takes longer than `limit`
/// (a hang is a bug: the run below takes milliseconds).
fn drover(args: &[&str], limit: Duration) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("drover starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("drover {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    (status.code().unwrap_or(-1), out, err)
}

#[test]
fn a_run_that_logs_finishes_and_logs_to_stderr() {
    // `process` needs an HTTP worker, which the embedded node does not
    // have, so the item fails, the workflow logs a warning and counts it.
    let (code, out, err) = drover(
        &[
            "run",
            "fan_out",
            "--input",
            r#"[{"id": "a", "quantity": 2}]"#,
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("\"failed\": 1"), "{out}");
    assert!(err.contains("\"msg\":\"item failed\""), "{err}");
}

#[test]
fn an_unknown_workflow_names_the_linked_ones() {
    let (code, _, err) = drover(&["run", "nope"], Duration::from_secs(30));
    assert_eq!(code, 1);
    assert!(
        err.contains("known: bench_flow, fan_out, place_order, scan_email"),
        "{err}"
    );
}
