//! The real `drover` binary as a long-lived node in a child process, driven
//! by the real `drover` verbs and a script compiled by the real `dslc asm`:
//! deploy, start, result, ls, trace, SIGTERM, then an offline replay from
//! the data directory it left.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{dslc_path, NodeProcess};

/// `drover ARGS`; fails the test after `limit` (a hang is a bug).
fn drover(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("drover runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One HTTP/1.1 POST over a plain socket: (status, body).
fn call(url: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_owned())
}

const SCRIPT: &str = "\
; Built-in effects only: runs on the stock drover binary.
workflow remember(key, value) {
entry:
    r2 = const 60
    r3 = perform memcache.set(r0, r1, r2)
    r4 = unwrap r3
    r5 = perform memcache.get(r0)
    r6 = unwrap r5
    ret r6
}
";

#[test]
fn a_node_process_serves_the_verbs_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args([
            "node",
            "--listen",
            "127.0.0.1:0",
            "--tick-ms",
            "5",
            "--data",
        ])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("drover node starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let node = NodeProcess(child);
    let first = lines.next().expect("a line").expect("text");
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_owned();
    assert!(
        first.starts_with("drover node listening on http://127.0.0.1:"),
        "{first}"
    );

    // A compiled-in workflow.
    let (code, out, err) = drover(&[
        "start",
        "fan_out",
        "--input",
        r#"[{"id": "a", "quantity": 2}]"#,
        "--key",
        "batch-1",
        "--node",
        &url,
    ]);
    assert_eq!(code, 0, "{err}");
    let run = out.trim().to_owned();
    assert!(run.starts_with("r-"), "{out}");
    let (code, out, err) = drover(&["result", &run, "--node", &url, "--timeout", "60s"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"failed\": 1"), "{out}");

    // A script compiled by `dslc asm`, deployed without rebuilding anything.
    let dasm = dir.path().join("remember.dasm");
    std::fs::write(&dasm, SCRIPT).unwrap();
    let dbc = dir.path().join("remember.dbc");
    let asm = Command::new(dslc_path())
        .arg("asm")
        .arg(&dasm)
        .arg("-o")
        .arg(&dbc)
        .output()
        .unwrap();
    assert!(
        asm.status.success(),
        "{}",
        String::from_utf8_lossy(&asm.stderr)
    );
    let (code, out, err) = drover(&["deploy", dbc.to_str().unwrap(), "--node", &url]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(": remember"), "{out}");
    let (code, out, err) = drover(&[
        "start",
        "remember",
        "--input",
        r#"{"key": "k", "value": "kept"}"#,
        "--node",
        &url,
    ]);
    assert_eq!(code, 0, "{err}");
    let script_run = out.trim().to_owned();
    let (code, out, err) = drover(&["result", &script_run, "--node", &url, "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["outcome"].to_string().contains("kept"), "{out}");

    // The benchmark's synchronous call: body `n`, answer `5n + 8`.
    assert_eq!(
        call(&url, "/v1/workflows/bench_flow/call", "7"),
        (200, "43".to_owned())
    );
    let (status, body) = call(&url, "/v1/workflows/bench_flow/call", "seven");
    assert_eq!(status, 400, "{body}");
    assert!(
        body.starts_with(r#"{"error":{"kind":"bad_request""#),
        "{body}"
    );

    // Both runs, listed (a call is a run too).
    let (code, out, _) = drover(&["ls", "--node", &url, "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let listed: Vec<&str> = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 3, "{out}");
    assert_eq!(listed[..2], [run.as_str(), script_run.as_str()]);
    let (code, out, _) = drover(&["trace", &script_run, "--node", &url]);
    assert_eq!(code, 0);
    assert!(
        out.contains("memcache.set key=\"k\" value=\"kept\" ttl_s=60"),
        "{out}"
    );
    assert!(
        out.contains("memcache.get key=\"k\" -> Ok(\"kept\")"),
        "{out}"
    );

    // SIGTERM: a graceful stop.
    let pid = node.0.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let mut node = node;
    let started = Instant::now();
    let status = loop {
        if let Some(s) = node.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the node did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(rest, vec!["drover node stopped".to_owned()]);

    // The node is gone: its runs replay offline from the data directory.
    let (code, out, err) = drover(&[
        "replay",
        &script_run,
        "--data",
        data.to_str().unwrap(),
        "--tick-ms",
        "5",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("every step matches the journal"), "{out}");
    let (code, _, err) = drover(&["status", &run, "--node", &url]);
    assert_eq!(code, 2, "the node is stopped: {err}");
}
