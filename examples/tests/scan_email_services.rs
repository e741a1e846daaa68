//! The email scanner on a durable node against real servers: memcached
//! and RabbitMQ on this machine, and loopback Slack and PagerDuty servers
//! that check the parts of their published APIs the scanner uses. Slack
//! first answers 429 and PagerDuty first answers 500: the run still
//! completes, each alert arrives exactly once (PagerDuty sees one dedup key
//! on every attempt), and the failed attempts show in the trace.

mod common;

use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use drover::node::{IntegrationEffects, Node, NodeConfig, Outcome};
use drover_integrations::{Config, Integrations};
use drover_ir::Value;
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use serde_json::{json, Value as J};

const EICAR_SHA256: &str = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
const SLACK_TOKEN: &str = "xoxb-test-0000-drover";
const ROUTING_KEY: &str = "0123456789abcdef0123456789abcdef";
const RABBITMQ_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const MEMCACHED: &str = "127.0.0.1:11211";

#[derive(Default)]
struct Seen {
    slack: Vec<J>,
    slack_answers: Vec<u16>,
    pagerduty: Vec<J>,
    pagerduty_answers: Vec<u16>,
}

type Shared = Arc<Mutex<Seen>>;

/// `chat.postMessage`: a bot token, a JSON body with `channel` and `text`.
/// The first well-formed call is rate limited.
async fn slack(State(seen): State<Shared>, headers: HeaderMap, Json(body): Json<J>) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {SLACK_TOKEN}")) {
        return Json(json!({"ok": false, "error": "not_authed"})).into_response();
    }
    if !body["channel"].is_string() || !body["text"].is_string() {
        return Json(json!({"ok": false, "error": "invalid_arguments"})).into_response();
    }
    let mut seen = seen.lock().unwrap();
    if seen.slack_answers.is_empty() {
        seen.slack_answers.push(429);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            Json(json!({"ok": false, "error": "ratelimited"})),
        )
            .into_response();
    }
    seen.slack_answers.push(200);
    seen.slack.push(body.clone());
    Json(json!({"ok": true, "channel": "C024BE91L", "ts": "1732320000.000100"})).into_response()
}

/// Events API v2: a 32-character routing key, `event_action`, a payload with
/// summary, a known severity and source. The first well-formed event fails
/// with 500; incidents are deduplicated by `dedup_key`, as PagerDuty does.
async fn pagerduty(State(seen): State<Shared>, Json(body): Json<J>) -> Response {
    let bad = |m: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"status": "invalid event", "message": m})),
        )
            .into_response()
    };
    if body["routing_key"] != ROUTING_KEY {
        return bad("routing_key");
    }
    if body["event_action"] != "trigger" {
        return bad("event_action");
    }
    let p = &body["payload"];
    let severities = ["critical", "error", "warning", "info"];
    if !p["summary"].is_string()
        || !p["source"].is_string()
        || !severities.contains(&p["severity"].as_str().unwrap_or(""))
    {
        return bad("payload");
    }
    let Some(key) = body["dedup_key"].as_str().map(str::to_owned) else {
        return bad("dedup_key");
    };
    let mut seen = seen.lock().unwrap();
    if seen.pagerduty_answers.is_empty() {
        seen.pagerduty_answers.push(500);
        return (StatusCode::INTERNAL_SERVER_ERROR, "upstream trouble").into_response();
    }
    seen.pagerduty_answers.push(202);
    seen.pagerduty.push(body.clone());
    (
        StatusCode::ACCEPTED,
        Json(json!({"status": "success", "message": "Event processed", "dedup_key": key})),
    )
        .into_response()
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_email_runs_against_real_servers_through_faults() {
    for (addr, what) in [(MEMCACHED, "memcached"), ("127.0.0.1:5672", "RabbitMQ")] {
        if !common::service_up(addr, what) {
            return;
        }
    }
    drover_examples::link();
    let seen: Shared = Arc::default();
    let slack_url = serve(
        Router::new()
            .route("/api/chat.postMessage", post(slack))
            .with_state(seen.clone()),
    )
    .await;
    let pd_url = serve(
        Router::new()
            .route("/v2/enqueue", post(pagerduty))
            .with_state(seen.clone()),
    )
    .await;

    // The verdicts queue the workflow publishes to.
    let amqp = Connection::connect(RABBITMQ_URL, ConnectionProperties::default())
        .await
        .expect("connect to RabbitMQ");
    let channel = amqp.create_channel().await.unwrap();
    channel
        .queue_declare(
            "email.verdicts".into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await
        .unwrap();

    // One attempt per effect attempt, so each failure is the node's to retry
    // and shows in the trace.
    let toml = format!(
        r#"
[memcache]
servers = ["{MEMCACHED}"]

[rabbitmq]
url = "{RABBITMQ_URL}"

[slack]
token = "{SLACK_TOKEN}"
url = "{slack_url}/api"
max_attempts = 1

[pagerduty]
routing_key = "{ROUTING_KEY}"
url = "{pd_url}"
max_attempts = 1
"#
    );
    let config = Config::from_toml(&toml, "test.toml").unwrap_or_else(|e| panic!("{}", e.render()));
    let effects = IntegrationEffects::new(Integrations::from_config(&config).await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = Node::open_with(NodeConfig::new(dir.path()), Arc::new(effects))
        .await
        .unwrap();

    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let message_id = format!("<{nanos}@mx.test>");
    // A fresh cache key: the attachment is scanned, not found in the cache.
    let _ = memcache_delete(&format!("verdict:{EICAR_SHA256}"));
    let email = Value::from_json(json!({
        "message_id": message_id,
        "sender": "a@example.com",
        "attachment_sha256": EICAR_SHA256,
    }));
    let run = node.start("scan_email", vec![email], None).await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(60), node.result(run))
        .await
        .expect("the run finishes")
        .unwrap();
    let Outcome::Completed(v) = outcome else {
        panic!("the run failed: {outcome:?}");
    };
    let report = v.to_json();
    assert_eq!(report["Ok"]["alerted"], true, "{report}");

    let trace = node.trace(run).await.unwrap();
    let attempts = |effect: &str| -> Vec<(u32, bool)> {
        trace
            .iter()
            .filter(|t| t.effect == effect)
            .map(|t| (t.attempt, t.ok))
            .collect()
    };
    // The 429 and the 500 are failed first attempts in the trace, each
    // followed by a successful retry.
    assert_eq!(
        attempts("slack.post"),
        [(1, false), (2, true)],
        "{trace:#?}"
    );
    assert_eq!(
        attempts("pagerduty.trigger"),
        [(1, false), (2, true)],
        "{trace:#?}"
    );
    let slack_fail = trace.iter().find(|t| t.effect == "slack.post").unwrap();
    assert!(
        slack_fail.summary.as_deref().unwrap_or("").contains("rate"),
        "{slack_fail:?}"
    );
    // No secret reaches the trace.
    let text = format!("{trace:?}");
    assert!(
        !text.contains(SLACK_TOKEN) && !text.contains(ROUTING_KEY),
        "{text}"
    );

    // Exactly one Slack message and one incident; PagerDuty saw the same
    // dedup key (the effect id) on both attempts.
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.slack_answers, [429, 200]);
        assert_eq!(seen.slack.len(), 1);
        assert_eq!(seen.pagerduty_answers, [500, 202]);
        assert_eq!(seen.pagerduty.len(), 1);
        let pd_id = trace
            .iter()
            .find(|t| t.effect == "pagerduty.trigger")
            .unwrap()
            .id;
        assert_eq!(seen.pagerduty[0]["dedup_key"], format!("{run}/{pd_id}"));
    }

    // The verdict is in memcached, and the report on the queue, with the
    // effect id as its message id.
    assert!(memcache_get(&format!("verdict:{EICAR_SHA256}")).contains("EICAR-Test-File"));
    let mut found = None;
    while let Some(m) = channel
        .basic_get("email.verdicts".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        let body: J = serde_json::from_slice(&m.delivery.data).unwrap_or(J::Null);
        if body["message_id"] == message_id.as_str() {
            let id = m
                .delivery
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.to_string());
            found = Some((body, id));
        }
    }
    let (body, id) = found.expect("the report was published to email.verdicts");
    assert_eq!(body["alerted"], true);
    let publish_id = trace
        .iter()
        .find(|t| t.effect == "rabbitmq.publish")
        .unwrap()
        .id;
    assert_eq!(id, Some(format!("{run}/{publish_id}")));
    node.shutdown().await;
}

/// A memcached text-protocol command; the raw answer.
fn memcache_command(cmd: &str) -> String {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(MEMCACHED).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(cmd.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out);
        if text.ends_with("END\r\n")
            || text.ends_with("DELETED\r\n")
            || text.ends_with("NOT_FOUND\r\n")
        {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn memcache_delete(key: &str) -> String {
    memcache_command(&format!("delete {key}\r\n"))
}

fn memcache_get(key: &str) -> String {
    memcache_command(&format!("get {key}\r\n"))
}
