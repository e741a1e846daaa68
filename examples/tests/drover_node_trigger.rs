//! `drover node --trigger QUEUE=WORKFLOW` against the real RabbitMQ: every
//! message starts one run, a redelivered message id maps to the run it
//! already started, and each message is acked once its start is durable.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{NodeProcess, TestQueue, RABBITMQ, RABBITMQ_URL};
use lapin::options::BasicPublishOptions;
use lapin::BasicProperties;

fn drover(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("drover runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_queued_message_starts_one_run() {
    if !common::service_up(RABBITMQ, "RabbitMQ") {
        return;
    }
    let q = TestQueue::declare("drover-test-trigger").await;
    let (queue, channel) = (q.name.clone(), q.channel.clone());

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let trigger = format!("{queue}=bench_flow");
    let child = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args([
            "node",
            "--data",
            data,
            "--listen",
            "127.0.0.1:0",
            "--trigger",
            &trigger,
        ])
        .env("DROVER_RABBITMQ_URL", RABBITMQ_URL)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("drover node starts");
    let mut node = NodeProcess(child);
    let mut lines = BufReader::new(node.0.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("{first}"))
        .to_owned();

    // Five messages, one of them sent twice under the same message id (a
    // redelivery as the broker would make after a lost ack).
    let publish = |id: String, n: i64| {
        let channel = channel.clone();
        let queue = queue.clone();
        async move {
            channel
                .basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions::default(),
                    n.to_string().as_bytes(),
                    BasicProperties::default()
                        .with_message_id(id.into())
                        .with_content_type("application/json".into())
                        .with_delivery_mode(2),
                )
                .await
                .unwrap()
                .await
                .unwrap();
        }
    };
    for n in 1..=5 {
        publish(format!("m-{n}"), n).await;
    }
    publish("m-3".into(), 3).await;

    // Five runs, each with 5n+8.
    let deadline = Instant::now() + Duration::from_secs(60);
    let runs = loop {
        let (code, out) = drover(&["ls", "--node", &url, "--json"]);
        assert_eq!(code, 0, "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let runs = v["runs"].as_array().unwrap().clone();
        let done = runs.iter().filter(|r| r["status"] == "finished").count();
        if runs.len() >= 5 && done == runs.len() {
            break runs;
        }
        assert!(Instant::now() < deadline, "runs did not finish: {out}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The duplicate may still be in flight: give it time to be (not) started.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, out) = drover(&["ls", "--node", &url, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 5, "{out}");
    let mut results: Vec<i64> = Vec::new();
    for r in &runs {
        let id = r["run"].as_str().unwrap();
        let (code, out) = drover(&["result", id, "--node", &url, "--json"]);
        assert_eq!(code, 0, "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        results.push(v["outcome"]["completed"].as_i64().expect("a completed run"));
    }
    results.sort_unstable();
    assert_eq!(results, [13, 18, 23, 28, 33]);
    // Every message was acked: none is left on the queue.
    assert_eq!(q.ready().await, 0);

    let _ = Command::new("kill")
        .args(["-TERM", &node.0.id().to_string()])
        .status();
    let started = Instant::now();
    while node.0.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    q.delete().await;
}

/// With a `[logstash]` section the node ships its structured log events to
/// Logstash as JSON lines: a real TCP receiver gets the events of a run.
#[test]
fn a_node_ships_its_log_events_to_logstash() {
    use std::io::Read;
    let receiver = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = receiver.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args([
            "node",
            "--data",
            dir.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("DROVER_LOGSTASH_ADDR", &addr)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("drover node starts");
    let mut node = NodeProcess(child);
    let mut lines = BufReader::new(node.0.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("{first}"))
        .to_owned();
    let (code, out) = drover(&["start", "bench_flow", "--input", "4", "--node", &url]);
    assert_eq!(code, 0, "{out}");
    let run = out.trim().to_owned();

    let (mut conn, _) = receiver.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut got = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 8192];
    // Step and effect events of the run, each one JSON object per line.
    let needle = format!("\"run\":\"{run}\"");
    while got.lines().filter(|l| l.contains(&needle)).count() < 4 {
        assert!(Instant::now() < deadline, "not shipped: {got}");
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => {}
        }
    }
    let ours: Vec<serde_json::Value> = got
        .lines()
        .filter(|l| l.contains(&needle))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(ours.len() >= 4, "{got}");
    assert!(ours.iter().all(|e| e["workflow"] == "bench_flow"), "{got}");
    assert!(ours.iter().any(|e| e["kind"] == "effect"), "{got}");
    let _ = Command::new("kill")
        .args(["-TERM", &node.0.id().to_string()])
        .status();
    let _ = node.0.wait();
}
