//! The node's HTTP API over real loopback HTTP: every route through the Rust
//! client and raw requests, bad requests and their JSON errors, the CLI
//! verbs against a node started here, and `drover replay`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use drover::api::wire::{OutcomeJson, StartRequest};
use drover::cli::run_with;
use drover::client::{Client, Followed, ListQuery, StartWorkflow};
use drover::node::{Node, NodeConfig, NodeHandle};
use drover::prelude::*;
use drover_ir::Value;
use serde_json::json;

#[activity]
pub async fn add_one(x: i64) -> Result<i64, Error> {
    Ok(x + 1)
}

#[workflow]
pub async fn api_three(x: i64) -> Result<i64, Error> {
    let a = add_one(x).await?;
    let b = add_one(a).await?;
    let c = add_one(b).await?;
    Ok(c)
}

#[workflow]
pub async fn api_scaled(x: i64) -> Result<i64, Error> {
    let a = add_one(x * 3).await?;
    Ok(a)
}

#[workflow]
pub async fn api_approval(x: i64) -> Result<i64, Error> {
    let approved: bool = signal::<bool>("approved").await;
    if approved {
        Ok(x)
    } else {
        Ok(0)
    }
}

#[workflow]
pub async fn api_five_n_plus_eight(n: i64) -> i64 {
    5 * n + 8
}

#[workflow]
pub async fn api_refuses(reason: String) -> Result<i64, Error> {
    let _ = add_one(1).await?;
    Err(Error::new("refused", reason))
}

#[workflow]
pub async fn api_logs(id: i64) -> Result<i64, Error> {
    log::info("api order", id);
    Ok(id)
}

/// A node serving the API on a free loopback port.
struct Served {
    url: String,
    node: Arc<NodeHandle>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

impl Served {
    async fn up() -> Served {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Served::at(dir.path()).await;
        s._dir = Some(dir);
        s
    }

    async fn at(dir: &Path) -> Served {
        let mut config = NodeConfig::new(dir);
        config.tick_ms = 2;
        let (node, _) = Node::open(config).await.unwrap();
        let node = Arc::new(node);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(drover::api::serve(listener, node.clone(), async move {
            let _ = stopped.await;
        }));
        Served {
            url,
            node,
            stop: Some(stop),
            server: Some(server),
            _dir: None,
        }
    }

    fn client(&self) -> Client {
        Client::new(&self.url).unwrap()
    }

    /// Stops the server, then the node (closing the store).
    async fn down(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.server.take().unwrap().await.unwrap().unwrap();
        let node = self.node.clone();
        drop(self.node);
        if let Ok(node) = Arc::try_unwrap(node) {
            node.shutdown().await;
        }
    }
}

/// `drover ARGS` in-process, off the async runtime (the CLI builds its own).
async fn drover(args: &[&str]) -> (u8, String, String) {
    let mut argv = vec!["drover".to_owned()];
    argv.extend(args.iter().map(|s| s.to_string()));
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = run_with(argv, &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    })
    .await
    .unwrap()
}

fn completed_ok(v: serde_json::Value) -> OutcomeJson {
    OutcomeJson::Completed(json!({ "Ok": v }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_is_idempotent_and_status_result_list_trace_follow_the_run() {
    let s = Served::up().await;
    let c = s.client();
    let health = c.health().await.unwrap();
    assert_eq!(health.status, "ok");
    assert!(health.workflows.contains(&"api_three".to_owned()));

    // Raw HTTP: 201 for a new run, 200 for the same key.
    let http = reqwest::Client::new();
    let start = |key: &str| {
        http.post(format!("{}/v1/workflows/api_three/runs", s.url))
            .json(&json!({ "input": 5, "key": key }))
            .send()
    };
    let first = start("order-1").await.unwrap();
    assert_eq!(first.status(), 201);
    let first: serde_json::Value = first.json().await.unwrap();
    let again = start("order-1").await.unwrap();
    assert_eq!(again.status(), 200);
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(first["run"], again["run"]);
    assert_eq!(
        (first["created"].clone(), again["created"].clone()),
        (json!(true), json!(false))
    );
    let run = first["run"].as_str().unwrap().to_owned();

    // The key given as a header works the same way.
    let by_header = http
        .post(format!("{}/v1/workflows/api_three/runs", s.url))
        .header("Idempotency-Key", "order-1")
        .json(&json!({ "input": 5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), 200);

    let outcome = c.wait(&run).await.unwrap();
    assert_eq!(outcome, completed_ok(json!(8)));
    let status = c.status(&run).await.unwrap();
    assert_eq!(status.status, "completed");
    assert_eq!(status.workflow, "api_three");
    assert_eq!(status.journal_len, 4);

    // A different key is a different run.
    let other = c
        .start("api_three", json!({ "x": 1 }), Some("order-2"))
        .await
        .unwrap();
    assert!(other.created);
    assert_ne!(other.run, run);
    assert_eq!(c.wait(&other.run).await.unwrap(), completed_ok(json!(4)));

    let list = c
        .list(&ListQuery {
            workflow: Some("api_three".into()),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    let ids: Vec<&str> = list.runs.iter().map(|r| r.run.as_str()).collect();
    assert_eq!(ids, vec![run.as_str(), other.run.as_str()]);
    assert!(list.runs.iter().all(|r| r.status == "finished"));
    let running = c
        .list(&ListQuery {
            status: Some("running".into()),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert!(running.runs.iter().all(|r| r.run != run), "{running:?}");
    let one = c
        .list(&ListQuery {
            workflow: Some("api_three".into()),
            limit: Some(1),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(one.runs.len(), 1);
    assert_eq!(one.next.as_deref(), Some(run.as_str()));

    let trace = c.trace(&run).await.unwrap();
    assert_eq!(trace.node, s.url.trim_start_matches("http://"));
    let effects: Vec<(&str, &str, Option<&str>)> = trace
        .items
        .iter()
        .map(|i| (i.effect.as_str(), i.args.as_str(), i.result.as_deref()))
        .collect();
    assert_eq!(
        effects,
        vec![
            ("add_one", "5", Some("6")),
            ("add_one", "6", Some("7")),
            ("add_one", "7", Some("8")),
        ]
    );

    let dump = c.journal(&run).await.unwrap();
    assert_eq!(dump.entries.len(), 4);
    assert_eq!(dump.workflow, "api_three");
    let program = c.program(&dump.program).await.unwrap();
    assert_eq!(
        drover_ir::wire::hash_bytes(&program).to_string(),
        dump.program
    );
    s.down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_cancel_and_long_poll() {
    let s = Served::up().await;
    let c = s.client();
    let a = c.start("api_approval", json!(41), None).await.unwrap().run;
    // Nothing happens before the signal: the wait runs out, 202.
    let pending = reqwest::get(format!("{}/v1/runs/{a}/result?wait=50ms", s.url))
        .await
        .unwrap();
    assert_eq!(pending.status(), 202);
    let r = c.result(&a, Duration::from_millis(50)).await.unwrap();
    assert_eq!((r.outcome, r.ok), (None, false));
    assert_eq!(c.status(&a).await.unwrap().status, "running");

    // A long poll that the signal ends.
    let waiter = {
        let c = c.clone();
        let a = a.clone();
        tokio::spawn(async move { c.result(&a, Duration::from_secs(30)).await })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    c.signal(&a, "approved", json!(true)).await.unwrap();
    let r = waiter.await.unwrap().unwrap();
    assert_eq!(r.outcome, Some(completed_ok(json!(41))));
    assert!(r.ok);

    let b = c.start("api_approval", json!(1), None).await.unwrap().run;
    c.cancel(&b, Some("changed my mind")).await.unwrap();
    match c.wait(&b).await.unwrap() {
        OutcomeJson::Failed { kind, message } => {
            assert_eq!(kind, "Cancelled");
            assert!(message.contains("changed my mind"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.status(&b).await.unwrap().status, "failed");
    // A finished run takes no more signals or cancels.
    let e = c.cancel(&b, None).await.unwrap_err();
    assert_eq!((e.status(), e.kind()), (Some(409), Some("not_running")));
    let e = c.signal(&a, "approved", json!(false)).await.unwrap_err();
    assert_eq!(e.status(), Some(409));
    s.down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors() {
    let s = Served::up().await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", s.url);
    // (method, path, body, status, kind, a word of the message)
    let cases: Vec<(&str, &str, &str, u16, &str, &str)> = vec![
        (
            "POST",
            "/v1/workflows/api_three/runs",
            "{not json",
            400,
            "bad_request",
            "not valid",
        ),
        (
            "POST",
            "/v1/workflows/api_three/runs",
            r#"{"args": []}"#,
            400,
            "bad_request",
            "takes 1",
        ),
        (
            "POST",
            "/v1/workflows/api_three/runs",
            r#"{"input": 1, "args": [1]}"#,
            400,
            "bad_request",
            "not both",
        ),
        (
            "POST",
            "/v1/workflows/api_three/runs",
            r#"{"input": 1, "program": "abc"}"#,
            409,
            "program_mismatch",
            "abc",
        ),
        (
            "POST",
            "/v1/workflows/nope/runs",
            "{}",
            404,
            "unknown_workflow",
            "nope",
        ),
        (
            "POST",
            "/v1/workflows/nope/call",
            "1",
            404,
            "unknown_workflow",
            "nope",
        ),
        (
            "POST",
            "/v1/workflows/api_three/call",
            "[",
            400,
            "bad_request",
            "input",
        ),
        ("GET", "/v1/runs/xyz", "", 400, "bad_request", "r-<decimal>"),
        ("GET", "/v1/runs/r-99999", "", 404, "unknown_run", "r-99999"),
        ("GET", "/v1/runs/r-99999/trace", "", 404, "unknown_run", ""),
        (
            "GET",
            "/v1/runs/r-99999/journal",
            "",
            404,
            "unknown_run",
            "",
        ),
        (
            "GET",
            "/v1/runs/r-1/result?wait=soon",
            "",
            400,
            "bad_request",
            "wait",
        ),
        (
            "POST",
            "/v1/runs/r-99999/cancel",
            "",
            404,
            "unknown_run",
            "",
        ),
        (
            "POST",
            "/v1/runs/r-1/signal",
            "{}",
            400,
            "bad_request",
            "name",
        ),
        (
            "GET",
            "/v1/runs?status=bogus",
            "",
            400,
            "bad_request",
            "running",
        ),
        ("GET", "/v1/runs?limit=-1", "", 400, "bad_request", "limit"),
        (
            "GET",
            "/v1/runs?colour=red",
            "",
            400,
            "bad_request",
            "colour",
        ),
        (
            "GET",
            "/v1/logs?filter=level%20%3E%3D",
            "",
            400,
            "bad_filter",
            "filter",
        ),
        (
            "GET",
            "/v1/logs?follow=maybe",
            "",
            400,
            "bad_request",
            "follow",
        ),
        (
            "POST",
            "/v1/deploy",
            "not a program",
            400,
            "bad_program",
            "",
        ),
        ("POST", "/v1/deploy", "", 400, "bad_request", ".dbc"),
        ("GET", "/v1/programs/zz", "", 400, "bad_request", "hash"),
        (
            "GET",
            "/v1/programs/00000000000000000000000000000000000000000000000000000000000000aa",
            "",
            404,
            "unknown_program",
            "",
        ),
        ("GET", "/v2/anything", "", 404, "not_found", "route"),
        ("DELETE", "/v1/runs", "", 405, "method_not_allowed", ""),
    ];
    for (method, path, body, status, kind, word) in cases {
        let req = match method {
            "GET" => http.get(url(path)),
            "POST" => http.post(url(path)),
            _ => http.delete(url(path)),
        };
        let resp = req.body(body.to_owned()).send().await.unwrap();
        let got = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert_eq!(got, status, "{method} {path} {body}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
        assert_eq!(v["error"]["kind"], kind, "{method} {path}: {text}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(word), "{method} {path}: {message}");
    }
    // The node still works.
    let r = s
        .client()
        .call("api_five_n_plus_eight", &json!(1))
        .await
        .unwrap();
    assert_eq!(r, json!(13));
    s.down().await;
}

/// A script with only built-in effects, as `dslc asm` reads it.
const REMEMBER: &str = "\
workflow api_remember(key, value) {
entry:
    r2 = const 60
    r3 = perform memcache.set(r0, r1, r2)
    r4 = unwrap r3
    r5 = perform memcache.get(r0)
    r6 = unwrap r5
    ret r6
}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployed_script_runs_and_call_answers_the_value() {
    let s = Served::up().await;
    let c = s.client();
    let module = drover_ir::text::parse(REMEMBER).unwrap();
    let bytes = drover_ir::wire::encode(&module);
    let d = c.deploy(bytes.clone()).await.unwrap();
    assert_eq!(d.workflows, vec!["api_remember".to_owned()]);
    assert_eq!(d.program, drover_ir::wire::hash_bytes(&bytes).to_string());
    let run = c
        .start(
            "api_remember",
            json!({ "key": "greeting", "value": "hello" }),
            None,
        )
        .await
        .unwrap();
    assert!(run.created);
    let o = c.wait(&run.run).await.unwrap();
    assert!(o.ok(), "{o:?}");
    assert!(
        serde_json::to_string(&o).unwrap().contains("hello"),
        "{o:?}"
    );
    assert_eq!(c.status(&run.run).await.unwrap().program, d.program);

    // `call`: the body is the input, the answer the value.
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/v1/workflows/api_five_n_plus_eight/call", s.url))
        .body("7")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "43");
    assert_eq!(c.call("api_three", &json!(1)).await.unwrap(), json!(4));
    let e = c.call("api_refuses", &json!("no stock")).await.unwrap_err();
    assert_eq!((e.status(), e.kind()), (Some(422), Some("refused")));
    assert!(e.to_string().contains("no stock"), "{e}");
    s.down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_starts_typed_runs_pinned_to_a_program() {
    let s = Served::up().await;
    let c = s.client();
    let def = drover::registry::workflow("api_three").unwrap();
    let hash = drover_ir::wire::hash_bytes(def.ir).to_string();
    let run = c
        .start_raw("api_three", &hash, vec![Value::Int(10)])
        .await
        .unwrap();
    assert_eq!(c.wait(&run.0).await.unwrap(), completed_ok(json!(13)));
    let e = c
        .start_raw("api_three", &"0".repeat(64), vec![Value::Int(10)])
        .await
        .unwrap_err();
    assert_eq!(e.kind, "program_mismatch");
    let e = c.start_raw("nope", "", vec![]).await.unwrap_err();
    assert_eq!(e.kind, "unknown_workflow");
    // A node that is not there.
    let gone = Client::new("http://127.0.0.1:1").unwrap();
    let e = gone.start_raw("api_three", "", vec![]).await.unwrap_err();
    assert_eq!(e.kind, "unavailable");
    assert!(Client::new("ftp://x").is_err());
    // Both input forms.
    let req = StartRequest {
        args: Some(vec![json!(2)]),
        ..StartRequest::default()
    };
    let r = c.start_with("api_three", &req).await.unwrap();
    assert_eq!(c.wait(&r.run).await.unwrap(), completed_ok(json!(5)));
    s.down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_receives_an_event_emitted_after_subscribing() {
    let s = Served::up().await;
    let c = s.client();
    let mut stream = c
        .follow_logs(
            Some(r#"workflow == "api_logs" and fields.value == 77"#),
            None,
        )
        .await
        .unwrap();
    // Emitted after the subscription: an event that does not match, then one
    // that does.
    let r1 = c.start("api_logs", json!(5), None).await.unwrap().run;
    c.wait(&r1).await.unwrap();
    let r2 = c.start("api_logs", json!(77), None).await.unwrap().run;
    let got = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("an event within 20s")
        .expect("the stream is open")
        .unwrap();
    match got {
        Followed::Event(e) => {
            assert_eq!(e.run.as_deref(), Some(r2.as_str()));
            assert_eq!(e.msg.as_deref(), Some("api order"));
        }
        other => panic!("{other:?}"),
    }
    // Past events, filtered.
    let past = c
        .logs(Some(r#"workflow == "api_logs" and kind == "log""#), None)
        .await
        .unwrap();
    let runs: Vec<_> = past.iter().filter_map(|e| e.run.clone()).collect();
    assert_eq!(runs, vec![r1.clone(), r2.clone()]);
    let last = c
        .logs(Some(r#"workflow == "api_logs" and kind == "log""#), Some(1))
        .await
        .unwrap();
    assert_eq!(last.len(), 1);
    // Shutting the server down ends the follow.
    s.down().await;
    let end = tokio::time::timeout(Duration::from_secs(20), stream.next()).await;
    assert!(matches!(end, Ok(None) | Ok(Some(Err(_)))), "{end:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_verbs_talk_to_the_node() {
    let s = Served::up().await;
    let node = s.url.clone();
    let n = ["--node", node.as_str()];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter().chain(n.iter()).map(|s| s.to_string()).collect()
    };
    let run_cli = |args: Vec<String>| async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        drover(&refs).await
    };

    let (code, out, err) =
        run_cli(with(&["start", "api_three", "--input", "2", "--key", "k1"])).await;
    assert_eq!(code, 0, "{err}");
    let run = out.trim().to_owned();
    assert!(run.starts_with("r-"), "{out}");
    let (code, out, _) =
        run_cli(with(&["start", "api_three", "--input", "2", "--key", "k1"])).await;
    assert_eq!(code, 0);
    assert_eq!(out, format!("{run} (already started with this key)\n"));

    let (code, out, err) = run_cli(with(&["result", &run])).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "result: {\n  \"Ok\": 5\n}\n");
    let (code, out, _) = run_cli(with(&["result", &run, "--json"])).await;
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["outcome"]["completed"]["Ok"], 5);

    let (code, out, _) = run_cli(with(&["status", &run])).await;
    assert_eq!(code, 0);
    assert!(out.contains("status    completed"), "{out}");
    assert!(out.contains("journal   4 entries"), "{out}");

    let (code, out, _) = run_cli(with(&["ls", "--workflow", "api_three"])).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("RUN"), "{out}");
    assert!(out.contains(&run) && out.contains("finished"), "{out}");
    let (code, out, _) = run_cli(with(&["ls", "--json", "--status", "running"])).await;
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["runs"].as_array().unwrap().is_empty(), "{out}");

    let (code, out, _) = run_cli(with(&["trace", &run])).await;
    assert_eq!(code, 0);
    assert!(out.contains("add_one(2) → 3"), "{out}");
    assert!(out.contains("add_one(4) → 5"), "{out}");
    assert!(out.contains('█'), "a timeline: {out}");
    assert!(out.contains("3 effect attempts"), "{out}");

    // Signal and cancel.
    let (_, out, _) = run_cli(with(&["start", "api_approval", "--input", "9"])).await;
    let waiting = out.trim().to_owned();
    let (code, out, _) = run_cli(with(&["result", &waiting, "--timeout", "20ms"])).await;
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("still running"), "{out}");
    let (code, out, err) =
        run_cli(with(&["signal", &waiting, "approved", "--value", "true"])).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("sent approved to {waiting}\n"));
    let (code, out, _) = run_cli(with(&["result", &waiting])).await;
    assert_eq!((code, out.as_str()), (0, "result: {\n  \"Ok\": 9\n}\n"));
    let (_, out, _) = run_cli(with(&["start", "api_approval", "--input", "9"])).await;
    let doomed = out.trim().to_owned();
    let (code, _, err) = run_cli(with(&["cancel", &doomed, "--reason", "test"])).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run_cli(with(&["result", &doomed])).await;
    assert_eq!(code, 4, "a failed run: {out}");
    assert!(out.starts_with("failed: Cancelled"), "{out}");

    // A workflow that returns Err is a failure too.
    let (_, out, _) = run_cli(with(&["start", "api_refuses", "--input", "\"no\""])).await;
    let (code, _, _) = run_cli(with(&["result", out.trim()])).await;
    assert_eq!(code, 4);

    // Errors and their exit codes.
    let (code, _, err) = run_cli(with(&["status", "r-424242"])).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no run r-424242"), "{err}");
    let (code, _, err) = run_cli(with(&["start", "nope"])).await;
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = run_cli(with(&["start", "api_three", "--input", "{"])).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--input is not JSON"), "{err}");
    let (code, _, err) = drover(&["status", "r-1", "--node", "http://127.0.0.1:1"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot reach the node"), "{err}");
    // A filter is checked before the node is asked: no node is listening.
    let (code, _, err) = drover(&[
        "logs",
        "--filter",
        "level >= ",
        "--node",
        "http://127.0.0.1:1",
    ])
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the filter does not parse"), "{err}");
    assert!(err.contains("filter:1:"), "drawn against the text: {err}");

    // Logs, with a filter, as text and JSON.
    let (_, out, _) = run_cli(with(&["start", "api_logs", "--input", "31"])).await;
    let logged = out.trim().to_owned();
    run_cli(with(&["result", &logged])).await;
    let (code, out, err) = run_cli(with(&["logs", "--filter", "fields.value == 31"])).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains(&format!("run={logged}")) && out.contains("\"api order\""),
        "{out}"
    );
    let (_, out, _) = run_cli(with(&["logs", "--json", "--filter", "fields.value == 31"])).await;
    let e = drover::logs::LogEvent::from_json_line(out.trim()).unwrap();
    assert_eq!(e.run.as_deref(), Some(logged.as_str()));

    // Deploy a script file.
    let dir = tempfile::tempdir().unwrap();
    let dbc = dir.path().join("remember.dbc");
    let module = drover_ir::text::parse(REMEMBER).unwrap();
    std::fs::write(&dbc, drover_ir::wire::encode(&module)).unwrap();
    let (code, out, err) = run_cli(with(&["deploy", dbc.to_str().unwrap()])).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("deployed program ") && out.contains(": api_remember"),
        "{out}"
    );
    let bad = dir.path().join("bad.dbc");
    std::fs::write(&bad, b"nope").unwrap();
    let (code, _, err) = run_cli(with(&["deploy", bad.to_str().unwrap()])).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("bad_program"), "{err}");
    s.down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_re_executes_a_recorded_run_and_stops_at_a_divergence() {
    let dir = tempfile::tempdir().unwrap();
    let s = Served::at(dir.path()).await;
    let c = s.client();
    let run = c.start("api_three", json!(1), None).await.unwrap().run;
    c.wait(&run).await.unwrap();
    let scaled = c.start("api_scaled", json!(2), None).await.unwrap().run;
    c.wait(&scaled).await.unwrap();
    let node = s.url.clone();

    // From the node.
    let saved = dir.path().join("journal.msgpack");
    let (code, out, err) = drover(&[
        "replay",
        &run,
        "--node",
        &node,
        "--save",
        saved.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("nothing is performed"), "{out}");
    assert!(out.contains("start(1)"), "{out}");
    assert!(out.contains("result of effect#0 (attempt 1) → 2"), "{out}");
    assert!(
        out.contains("perform add_one(2) as effect#1 attempt 1    at w0:"),
        "{out}"
    );
    assert!(
        out.contains("(runtime/tests/api.rs:25:"),
        "source locations: {out}"
    );
    assert!(out.contains("completed: #Ok(4)"), "{out}");
    assert!(
        out.contains("replayed 4 entries: every step matches"),
        "{out}"
    );
    // `--step` without a terminal prints every instruction each entry ran,
    // with the register it wrote and its source line, then the commands.
    let (code, stepped, err) = drover(&["replay", &run, "--node", &node, "--step"]).await;
    assert_eq!(code, 0, "{stepped}{err}");
    let lines: Vec<&str> = stepped.lines().collect();
    let performs: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains(" f0 ") && l.contains("perform"))
        .collect();
    assert_eq!(performs.len(), 3, "one perform per add_one: {stepped}");
    assert!(
        performs
            .iter()
            .all(|l| l.contains("(runtime/tests/api.rs:2")),
        "each instruction shows its source line: {stepped}"
    );
    // The perform waits; its register is written when entry 1 resumes it,
    // and the instruction after it reads the recorded 2.
    let entry1 = stepped.find("#1 ").expect("entry 1");
    let entry2 = stepped.find("#2 ").expect("entry 2");
    let in_entry1 = &stepped[entry1..entry2];
    assert!(
        in_entry1.contains("result of effect#0 (attempt 1) → 2"),
        "{in_entry1}"
    );
    assert!(
        in_entry1
            .lines()
            .any(|l| l.contains(" = #Ok(2)") || l.contains(" = 2")),
        "a register takes the recorded result: {in_entry1}"
    );
    assert!(
        in_entry1.contains("⇒ perform add_one(2) as effect#1 attempt 1"),
        "{in_entry1}"
    );
    let ran = lines.iter().filter(|l| l.contains(" f0 ")).count();
    assert!(
        stepped.contains(&format!(
            "replayed 4 entries ({ran} instructions): every step matches"
        )),
        "{stepped}"
    );
    assert!(stepped.contains("completed: #Ok(4)"), "{stepped}");

    // A tampered journal: the first effect's recorded result changed, so the
    // next perform's argument no longer matches.
    let mut dump: drover::api::wire::JournalDump =
        rmp_serde::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    let entry = &mut dump.entries[1];
    match &mut entry.event {
        drover_interpreter::Event::EffectDone { result, .. } => {
            *result = Ok(Value::Variant(Box::new(drover_ir::value::Variant {
                tag: "Ok".into(),
                payload: Value::Int(100),
            })))
        }
        other => panic!("entry 1 is {other:?}"),
    }
    let tampered = dir.path().join("tampered.msgpack");
    std::fs::write(&tampered, rmp_serde::to_vec_named(&dump).unwrap()).unwrap();
    let (code, out, err) = drover(&[
        "replay",
        &run,
        "--node",
        &node,
        "--journal",
        tampered.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, 6, "{out}{err}");
    assert!(out.contains("DIVERGED at journal entry #1"), "{out}");
    assert!(
        out.contains("recorded: perform") || out.contains("recorded: "),
        "{out}"
    );
    assert!(out.contains("replayed: "), "{out}");
    assert!(out.contains("add_one(100)") || out.contains("100"), "{out}");
    // Stepping shows the instructions that led there, ending at the perform.
    let (code, out, err) = drover(&[
        "replay",
        &run,
        "--node",
        &node,
        "--journal",
        tampered.to_str().unwrap(),
        "--step",
    ])
    .await;
    assert_eq!(code, 6, "{out}{err}");
    let before = out.split("DIVERGED").next().unwrap();
    let last = before.lines().rfind(|l| l.contains(" f0 ")).unwrap();
    assert!(last.contains("perform"), "{out}");
    assert!(
        before.contains("= #Ok(100)") || before.contains("= 100"),
        "{out}"
    );

    // A different program: `x * 3` became `x * 4`.
    let def = drover::registry::workflow("api_scaled").unwrap();
    let mut module = def.module().unwrap();
    let mut changed = 0;
    for k in &mut module.consts {
        if *k == Value::Int(3) {
            *k = Value::Int(4);
            changed += 1;
        }
    }
    assert_eq!(changed, 1);
    let v2 = dir.path().join("scaled-v2.dbc");
    std::fs::write(&v2, drover_ir::wire::encode(&module)).unwrap();
    let (code, out, err) = drover(&[
        "replay",
        &scaled,
        "--node",
        &node,
        "--program",
        v2.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, 6, "{out}{err}");
    assert!(
        out.contains("DIVERGED at journal entry #0 (start(2))"),
        "{out}"
    );
    assert!(out.contains("at instruction w"), "{out}");
    assert!(
        out.contains("(6)") && out.contains("(8)"),
        "recorded 6, replayed 8: {out}"
    );

    // From the data directory, once the node is stopped.
    s.down().await;
    let (code, out, err) = drover(&[
        "replay",
        &run,
        "--data",
        dir.path().to_str().unwrap(),
        "--tick-ms",
        "2",
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("replayed 4 entries: every step matches"),
        "{out}"
    );
    let (code, _, err) = drover(&["replay", "r-999", "--data", dir.path().to_str().unwrap()]).await;
    assert_eq!(code, 3, "{err}");
}

/// A `Write` the test reads while the CLI still writes to it.
#[derive(Clone, Default)]
struct Shared(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drover_logs_follow_prints_events_as_they_happen() {
    let s = Served::up().await;
    let c = s.client();
    let out = Shared::default();
    let follow = {
        let mut out = out.clone();
        let node = s.url.clone();
        tokio::task::spawn_blocking(move || {
            let mut err = Vec::new();
            // `--limit 0`: no past events, only what happens from now on.
            let argv = [
                "drover",
                "logs",
                "--follow",
                "--limit",
                "0",
                "--filter",
                "workflow == \"api_logs\" and kind == \"log\"",
                "--node",
                &node,
            ];
            let code = run_with(argv, &mut out, &mut err);
            (code, String::from_utf8(err).unwrap())
        })
    };
    // The CLI subscribes at some point: start runs until one of them shows.
    let mut started = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let run = c
            .start("api_logs", json!(started.len() as i64), None)
            .await
            .unwrap()
            .run;
        c.wait(&run).await.unwrap();
        started.push(run);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let text = out.text();
        if let Some(r) = started.iter().find(|r| text.contains(&format!("run={r} "))) {
            break r.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing followed: {text}"
        );
    };
    // Every run after the first one seen shows up too, in order.
    let more = c.start("api_logs", json!(-1), None).await.unwrap().run;
    c.wait(&more).await.unwrap();
    s.down().await;
    let (code, err) = follow.await.unwrap();
    assert_eq!(code, 0, "{err}");
    let text = out.text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.first().unwrap().contains(&format!("run={seen} ")),
        "{text}"
    );
    assert!(
        lines.last().unwrap().contains(&format!("run={more} ")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.contains("workflow=api_logs") && l.contains("\"api order\"")),
        "{text}"
    );
}
