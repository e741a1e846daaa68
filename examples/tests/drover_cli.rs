//! Runs the real `drover` binary, with the examples linked in, the way a user
//! does: its stdout and stderr are the process's own, which in-process tests
//! of `drover::cli::run_with` cannot show.

mod common;

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

const EICAR_SHA256: &str = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";

fn email_input(message_id: &str, sha256: &str) -> String {
    format!(
        r#"{{"message_id": "{message_id}", "sender": "a@example.com", "attachment_sha256": "{sha256}"}}"#
    )
}

#[test]
fn scan_email_runs_on_embedded_fallbacks_and_prints_result_and_trace() {
    // The README's first command: no servers, no scanner configured.
    let input = email_input("m-1", EICAR_SHA256);
    let (code, out, err) = drover(
        &["run", "scan_email", "--input", &input],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    // The trace: every effect in order, each summarised by its integration.
    let order = [
        "statsd.count name=\"email.received\"",
        "memcache.get key=\"verdict:",
        "email.cache_miss",
        "scan(",
        "memcache.set key=\"verdict:",
        "email.infected",
        "slack.post channel=\"#security\"",
        "pagerduty.trigger summary=",
        "rabbitmq.publish exchange=\"\" routing_key=\"email.verdicts\"",
    ];
    let mut at = 0;
    for want in order {
        let found = out[at..].find(want).unwrap_or_else(|| {
            panic!("`{want}` missing, or out of order, in:\n{out}");
        });
        at += found + want.len();
    }
    assert!(out.contains("\"alerted\": true"), "{out}");
    assert!(out.contains("\"threat\": \"EICAR-Test-File\""), "{out}");
}

#[test]
fn scan_email_caches_verdicts_in_a_real_memcached() {
    let addr = std::env::var("DROVER_MEMCACHED").unwrap_or_else(|_| "127.0.0.1:11211".into());
    if !common::service_up(&addr, "memcached") {
        return;
    }
    // A hash no other run has used, so the first run misses.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let sha = format!("{nanos:032x}{:08x}", std::process::id());
    let input = email_input("m-2", &sha);
    let run = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_drover"));
        cmd.args(["run", "scan_email", "--json", "--input", &input])
            .env("DROVER_MEMCACHE_SERVERS", &addr);
        let out = cmd.output().expect("drover runs");
        assert!(out.status.success(), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json output");
        v
    };
    let first = run();
    assert_eq!(
        first["outcome"]["completed"]["Ok"]["cached"], false,
        "{first}"
    );
    let second = run();
    assert_eq!(
        second["outcome"]["completed"]["Ok"]["cached"], true,
        "{second}"
    );
    let effects: Vec<&str> = second["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["effect"].as_str().unwrap())
        .collect();
    assert!(
        !effects.contains(&"scan"),
        "a cached verdict is not rescanned: {effects:?}"
    );
}
