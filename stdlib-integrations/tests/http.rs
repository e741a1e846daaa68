//! The http integration against a loopback server that insists on the
//! Idempotency-Key header, and its unconfigured fallback.

mod loopback;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use drover_integrations::http::{HttpConfig, HttpIntegration};
use drover_integrations::{Config, EffectCall, Integration, ResourceLimit};
use drover_ir::Value;
use loopback::{Fault, Faults, Log};
use serde_json::{json, Value as J};

/// The answer, as `drover::effects::http::Response` decodes it.
#[derive(Debug, serde::Deserialize)]
struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: J,
}

#[derive(Default)]
struct Server {
    faults: Faults,
    /// (method, idempotency key, content type, body)
    seen: Log<(String, String, String, Vec<u8>)>,
}

async fn echo(
    State(s): State<Arc<Server>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let key = h("idempotency-key");
    s.seen.push((
        method.to_string(),
        key.clone(),
        h("content-type"),
        body.to_vec(),
    ));
    if key.is_empty() || headers.get_all("idempotency-key").iter().count() != 1 {
        return (
            StatusCode::BAD_REQUEST,
            "exactly one Idempotency-Key header required",
        )
            .into_response();
    }
    if let Some(f) = s.faults.next() {
        return f.into_response();
    }
    let body: J = if h("content-type").starts_with("application/json") {
        match serde_json::from_slice(&body) {
            Ok(j) => j,
            Err(_) => return (StatusCode::BAD_REQUEST, "body is not JSON").into_response(),
        }
    } else {
        J::String(String::from_utf8_lossy(&body).into_owned())
    };
    (
        StatusCode::CREATED,
        [("x-request-id", "abc123"), ("set-cookie", "session=s3cr3tcookie")],
        Json(json!({ "method": method.as_str(), "key": key, "body": body, "auth": h("authorization") })),
    )
        .into_response()
}

async fn server() -> (Arc<Server>, String) {
    let s = Arc::new(Server::default());
    let router = Router::new()
        .route("/echo", any(echo))
        .route("/text", get(|| async { "plain words" }))
        .route(
            "/missing",
            get(|| async { (StatusCode::NOT_FOUND, "nope") }),
        )
        .route("/big", get(|| async { "x".repeat(10_000) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .with_state(s.clone());
    (s.clone(), loopback::serve(router).await)
}

fn config(extra: &str) -> HttpConfig {
    let toml = format!("[http]\ntimeout_ms = 5000\nmax_body_bytes = 4096\n{extra}");
    Config::from_toml(&toml, "drover.toml")
        .unwrap()
        .http
        .unwrap()
}

fn s(x: &str) -> Value {
    Value::Str(x.into())
}

fn headers(pairs: &[(&str, &str)]) -> Value {
    drover_ir::to_value(pairs).unwrap()
}

fn call<'a>(args: Vec<Value>, id: &'a str) -> EffectCall<'a> {
    let mut c = EffectCall::new("request", args, id);
    c.deadline = Some(Instant::now() + Duration::from_secs(10));
    c
}

#[tokio::test]
async fn a_request_carries_the_idempotency_key_and_answers_status_headers_body() {
    let (srv, base) = server().await;
    let http = HttpIntegration::new(&config("")).unwrap();
    let body = Value::from_json(json!({ "amount": 5, "currency": "EUR" }));
    let got = http
        .perform(call(
            vec![
                s("post"),
                s(&format!("{base}/echo")),
                headers(&[
                    ("Authorization", "Bearer tok-42"),
                    ("Idempotency-Key", "mine"),
                ]),
                body,
            ],
            "run-h/1",
        ))
        .await
        .unwrap();
    let r: HttpResponse = drover_ir::from_value(got).unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.body["method"], "POST");
    assert_eq!(
        r.body["key"], "run-h/1",
        "the effect id replaces a workflow's key"
    );
    assert_eq!(r.body["body"]["amount"], 5);
    assert_eq!(r.body["auth"], "Bearer tok-42");
    assert!(
        r.headers
            .contains(&("x-request-id".into(), "abc123".into())),
        "{:?}",
        r.headers
    );

    let got = http
        .perform(call(
            vec![
                s("GET"),
                s(&format!("{base}/text")),
                Value::Null,
                Value::Null,
            ],
            "run-h/2",
        ))
        .await
        .unwrap();
    let r: HttpResponse = drover_ir::from_value(got).unwrap();
    assert_eq!((r.status, r.body), (200, json!("plain words")));

    // A 404 is an answer, not a failure.
    let got = http
        .perform(call(
            vec![
                s("GET"),
                s(&format!("{base}/missing")),
                Value::Null,
                Value::Null,
            ],
            "run-h/3",
        ))
        .await
        .unwrap();
    let r: HttpResponse = drover_ir::from_value(got).unwrap();
    assert_eq!((r.status, r.body), (404, json!("nope")));

    // A string body with a content type goes as it is.
    let got = http
        .perform(call(
            vec![
                s("PUT"),
                s(&format!("{base}/echo")),
                headers(&[("content-type", "text/csv")]),
                s("a,b\n1,2\n"),
            ],
            "run-h/4",
        ))
        .await
        .unwrap();
    let r: HttpResponse = drover_ir::from_value(got).unwrap();
    assert_eq!(r.body["body"], "a,b\n1,2\n");
    assert_eq!(srv.seen.all().last().unwrap().2, "text/csv");
}

#[tokio::test]
async fn a_503_is_retried_with_the_same_idempotency_key() {
    let (srv, base) = server().await;
    let http = HttpIntegration::new(&config("")).unwrap();
    srv.faults.push(Fault::status(503));
    let got = http
        .perform(call(
            vec![
                s("POST"),
                s(&format!("{base}/echo")),
                Value::Null,
                Value::Int(1),
            ],
            "run-h/5",
        ))
        .await
        .unwrap();
    assert_eq!(got.get_field("status"), Some(&Value::Int(201)));
    let keys: Vec<String> = srv.seen.all().into_iter().map(|x| x.1).collect();
    assert_eq!(keys, ["run-h/5", "run-h/5"]);

    // Out of sends: a retryable failure for the node's retry policy.
    let http = HttpIntegration::new(&config("max_attempts = 2\n")).unwrap();
    for _ in 0..2 {
        srv.faults.push(Fault::status(502).body("bad gateway"));
    }
    let err = http
        .perform(call(
            vec![
                s("GET"),
                s(&format!("{base}/echo")),
                Value::Null,
                Value::Null,
            ],
            "run-h/6",
        ))
        .await
        .unwrap_err();
    assert_eq!((err.kind.as_str(), err.retryable), ("unavailable", true));
    assert!(err.message.contains("HTTP 502"), "{err}");
}

#[tokio::test]
async fn the_per_host_rate_limit_spaces_requests() {
    let (srv, base) = server().await;
    let http = HttpIntegration::new(&config(
        "hosts = { \"127.0.0.1\" = { rate_per_second = 10, burst = 1 } }\n",
    ))
    .unwrap();
    assert_eq!(
        http.resources()[0].limit,
        ResourceLimit::Rate {
            per_second: 10.0,
            burst: 1
        }
    );
    assert_eq!(http.resources()[0].name, "http.host.127.0.0.1");
    for i in 0..4 {
        let id = format!("run-h/r{i}");
        http.perform(call(
            vec![
                s("GET"),
                s(&format!("{base}/echo")),
                Value::Null,
                Value::Null,
            ],
            &id,
        ))
        .await
        .unwrap();
    }
    // A lower bound only: a busy machine makes the gaps longer, never shorter.
    let times = srv.seen.times();
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_millis(80),
            "requests {gap:?} apart at 10/s"
        );
    }
    // A rate limit wait past the deadline fails at once, retryably.
    let mut c = call(
        vec![
            s("GET"),
            s(&format!("{base}/echo")),
            Value::Null,
            Value::Null,
        ],
        "run-h/r9",
    );
    c.deadline = Some(Instant::now() + Duration::from_millis(1));
    let err = http.perform(c).await.unwrap_err();
    assert!(
        err.retryable && (err.kind == "rate_limited" || err.kind == "timeout"),
        "{err}"
    );
}

#[tokio::test]
async fn bad_requests_big_bodies_and_no_config_fail_clearly() {
    let (srv, base) = server().await;
    let http = HttpIntegration::new(&config("")).unwrap();
    for (args, what) in [
        (
            vec![
                s("BREW"),
                s(&format!("{base}/echo")),
                Value::Null,
                Value::Null,
            ],
            "method",
        ),
        (
            vec![s("GET"), s("ftp://example.com/x"), Value::Null, Value::Null],
            "url",
        ),
        (
            vec![
                s("GET"),
                s(&format!("{base}/echo")),
                headers(&[("bad header", "x")]),
                Value::Null,
            ],
            "headers",
        ),
        (
            vec![
                s("GET"),
                s(&format!("{base}/echo")),
                Value::Int(3),
                Value::Null,
            ],
            "headers",
        ),
    ] {
        let err = http.perform(call(args, "run-h/7")).await.unwrap_err();
        assert_eq!(err.kind, "bad_argument", "{err}");
        assert!(err.message.starts_with(what), "{err}");
    }
    assert_eq!(srv.seen.len(), 0);
    let err = http
        .perform(call(
            vec![
                s("GET"),
                s(&format!("{base}/big")),
                Value::Null,
                Value::Null,
            ],
            "run-h/8",
        ))
        .await
        .unwrap_err();
    assert_eq!((err.kind.as_str(), err.retryable), ("too_large", false));

    let none = HttpIntegration::unconfigured();
    let err = none
        .perform(call(
            vec![
                s("GET"),
                s(&format!("{base}/echo")),
                Value::Null,
                Value::Null,
            ],
            "run-h/9",
        ))
        .await
        .unwrap_err();
    assert_eq!((err.kind.as_str(), err.retryable), ("unavailable", false));
    assert!(err.message.contains("[http]"), "{err}");
    assert_eq!(srv.seen.len(), 0);
}

#[tokio::test]
async fn summaries_never_show_credentials() {
    let (_srv, base) = server().await;
    let http = HttpIntegration::new(&config("")).unwrap();
    let c = call(
        vec![
            s("GET"),
            s(&format!("{base}/echo?api_key=k3y-s3cr3t&page=2")),
            headers(&[
                ("Authorization", "Bearer tok-s3cr3t"),
                ("Accept", "application/json"),
            ]),
            Value::Null,
        ],
        "run-h/10",
    );
    let r = http.perform(c.clone()).await;
    assert!(r.is_ok(), "{r:?}");
    let line = http.summarize(&c, &r);
    for secret in ["k3y-s3cr3t", "tok-s3cr3t", "s3cr3tcookie"] {
        assert!(!line.contains(secret), "{line}");
    }
    assert!(line.starts_with("http.request method=\"GET\""), "{line}");
    assert!(
        line.contains("page=2") && line.contains("\"status\": 201"),
        "{line}"
    );
}

#[tokio::test]
async fn the_registry_builds_every_web_integration_from_config_and_dispatches() {
    let (srv, base) = server().await;
    let addr = base.trim_start_matches("http://");
    let toml = format!(
        "[slack]\ntoken = \"xoxb-1-2-abc\"\nurl = \"{base}/api\"\n\n\
         [pagerduty]\nrouting_key = \"0123456789abcdef0123456789abcdef\"\nurl = \"{base}\"\n\n\
         [consul]\naddr = \"{addr}\"\n\n\
         [http]\nhosts = {{ \"127.0.0.1\" = {{ rate_per_second = 50, burst = 5 }} }}\n"
    );
    let config = Config::from_toml(&toml, "drover.toml").unwrap();
    let reg = drover_integrations::Integrations::from_config(&config)
        .await
        .unwrap();
    for ns in ["slack", "pagerduty", "consul", "http"] {
        assert!(!reg.is_embedded(ns), "{ns}");
    }
    let names: Vec<String> = reg.resources().into_iter().map(|r| r.name).collect();
    for want in ["http.host.127.0.0.1", "pagerduty.events", "slack.channel"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    let args = vec![
        s("GET"),
        s(&format!("{base}/echo")),
        Value::Null,
        Value::Null,
    ];
    let r = reg
        .perform("http.request", args.clone(), "run-reg/1", 1, None)
        .await;
    assert_eq!(
        r.as_ref().unwrap().get_field("status"),
        Some(&Value::Int(201))
    );
    assert_eq!(srv.seen.all()[0].1, "run-reg/1");
    let c = EffectCall::new("request", args, "run-reg/1");
    let line = reg.summarize("http.request", &c, &r);
    assert!(line.starts_with("http.request method=\"GET\""), "{line}");
}

#[test]
fn http_config_reports_every_problem_with_its_key() {
    let c = config("hosts = { \"api.example.com\" = { rate_per_second = 2.5 } }\n");
    let h = c.hosts["api.example.com"];
    assert_eq!((h.rate_per_second, h.burst), (2.5, 3));
    let err = Config::from_toml(
        "[http]\ntimeout_ms = 0\nhosts = { \"https://x.com\" = { rate_per_second = 1 }, \"y.com\" = { burst = 2 } }\n",
        "drover.toml",
    )
    .unwrap_err();
    let keys: Vec<&str> = err.issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "http.timeout_ms",
            "http.hosts.https://x.com",
            "http.hosts.y.com.rate_per_second"
        ],
        "{err}"
    );
    assert!(err.render().contains("drover.toml"), "{}", err.render());
    let err = Config::from_toml("[http]\nretries = 3\n", "drover.toml").unwrap_err();
    assert!(err.to_string().contains("retries"), "{err}");

    // An empty section turns the effect on; so does an environment variable.
    let c = Config::from_toml("[http]\n", "drover.toml").unwrap();
    assert_eq!(c.http, Some(HttpConfig::default()));
    let mut c = Config::default();
    c.apply_env(|n| (n == "DROVER_HTTP_MAX_ATTEMPTS").then(|| "5".into()))
        .unwrap();
    assert_eq!(c.http.unwrap().max_attempts, 5);
    let err = Config::default()
        .apply_env(|n| (n == "DROVER_HTTP_TIMEOUT_MS").then(|| "soon".into()))
        .unwrap_err();
    assert_eq!(err.issues[0].key, "DROVER_HTTP_TIMEOUT_MS");
}

#[tokio::test]
async fn a_server_slower_than_timeout_ms_is_a_retryable_timeout() {
    let (_srv, base) = server().await;
    let http = HttpIntegration::new(
        &Config::from_toml("[http]\ntimeout_ms = 100\n", "t")
            .unwrap()
            .http
            .unwrap(),
    )
    .unwrap();
    let err = http
        .perform(call(
            vec![
                s("GET"),
                s(&format!("{base}/slow")),
                Value::Null,
                Value::Null,
            ],
            "run-h/11",
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind.as_str(), err.retryable),
        ("timeout", true),
        "{err}"
    );
}
