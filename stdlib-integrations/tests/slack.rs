//! The Slack integration against a loopback server that checks Slack's
//! published Web API and webhook contracts, and against its embedded sink.

mod loopback;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use drover_integrations::slack::{SlackConfig, SlackIntegration};
use drover_integrations::{Config, EffectCall, EffectFailure, Integration, Secret};
use drover_ir::Value;
use loopback::{Fault, Faults, Log};
use serde_json::{json, Value as J};

const TOKEN: &str = "xoxb-1234-5678-abcdefghijklmnop";
const HOOK_PATH: &str = "T0001/B0001/hooksecretpart42";

/// A posted message, as `drover::effects::slack::Posted` decodes it.
#[derive(Debug, serde::Deserialize, PartialEq)]
struct Posted {
    channel: String,
    ts: String,
}

#[derive(Default)]
struct Slack {
    faults: Faults,
    requests: Log<J>,
    posted: Log<J>,
    hooked: Log<J>,
}

fn fail(error: &str) -> Response {
    Json(json!({ "ok": false, "error": error })).into_response()
}

/// chat.postMessage as documented: a Bearer bot token, a JSON body with a
/// channel and text or blocks; errors are HTTP 200 with ok:false.
async fn post_message(State(s): State<Arc<Slack>>, headers: HeaderMap, body: Bytes) -> Response {
    let parsed: J = serde_json::from_slice(&body).unwrap_or(J::Null);
    s.requests.push(parsed.clone());
    if let Some(f) = s.faults.next() {
        return f.into_response();
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(token) = auth.strip_prefix("Bearer ") else {
        return fail("not_authed");
    };
    if !token.starts_with("xoxb-") || token != TOKEN {
        return fail("invalid_auth");
    }
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return fail("invalid_arguments");
    }
    let Some(obj) = parsed.as_object() else {
        return fail("invalid_json");
    };
    let Some(channel) = obj.get("channel").and_then(J::as_str) else {
        return fail("channel_not_found");
    };
    let text = obj.get("text");
    if text.is_some_and(|t| !t.is_string()) {
        return fail("invalid_arguments");
    }
    let has_text = text.and_then(J::as_str).is_some_and(|t| !t.is_empty());
    match obj.get("blocks") {
        None => {}
        Some(J::Array(blocks))
            if blocks
                .iter()
                .all(|b| b.get("type").is_some_and(J::is_string)) => {}
        Some(_) => return fail("invalid_blocks"),
    }
    if !has_text && obj.get("blocks").is_none() {
        return fail("no_text");
    }
    let id = match channel {
        "#general" | "C0GENERAL" => "C0GENERAL",
        "#ops" | "C0OPS" => "C0OPS",
        _ => return fail("channel_not_found"),
    };
    let n = s.posted.len() + 1;
    s.posted.push(parsed.clone());
    Json(
        json!({ "ok": true, "channel": id, "ts": format!("1700000000.{n:06}"), "message": parsed }),
    )
    .into_response()
}

/// auth.test: who the token is.
async fn auth_test(headers: HeaderMap) -> Response {
    let ok = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a == format!("Bearer {TOKEN}"));
    if ok {
        Json(json!({ "ok": true, "team": "Drover" })).into_response()
    } else {
        fail("invalid_auth")
    }
}

/// An incoming webhook: JSON with text or blocks; answers `ok` as text.
async fn hook(
    State(s): State<Arc<Slack>>,
    Path((a, b, c)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    use axum::http::StatusCode;
    if let Some(f) = s.faults.next() {
        return f.into_response();
    }
    if format!("{a}/{b}/{c}") != HOOK_PATH {
        return (StatusCode::NOT_FOUND, "no_service").into_response();
    }
    if headers.contains_key("authorization") {
        return (StatusCode::BAD_REQUEST, "invalid_token").into_response();
    }
    let parsed: J = match serde_json::from_slice(&body) {
        Ok(j) => j,
        Err(_) => return (StatusCode::BAD_REQUEST, "invalid_payload").into_response(),
    };
    if !parsed["text"].is_string() && !parsed["blocks"].is_array() {
        return (StatusCode::BAD_REQUEST, "no_text").into_response();
    }
    s.hooked.push(parsed);
    "ok".into_response()
}

async fn server() -> (Arc<Slack>, String) {
    let s = Arc::new(Slack::default());
    let router = Router::new()
        .route("/api/chat.postMessage", post(post_message))
        .route("/api/auth.test", post(auth_test))
        .route("/services/{a}/{b}/{c}", post(hook))
        .with_state(s.clone());
    (s.clone(), loopback::serve(router).await)
}

fn config(base: &str) -> SlackConfig {
    let toml = format!(
        "[slack]\ntoken = \"{TOKEN}\"\nurl = \"{base}/api\"\nchannel_rate = 1000\nchannel_burst = 100\n\
         webhooks = {{ alerts = \"{base}/services/{HOOK_PATH}\" }}\n"
    );
    Config::from_toml(&toml, "drover.toml")
        .unwrap()
        .slack
        .unwrap()
}

fn s(x: &str) -> Value {
    Value::Str(x.into())
}

fn call<'a>(op: &'a str, args: Vec<Value>, id: &'a str) -> EffectCall<'a> {
    let mut c = EffectCall::new(op, args, id);
    c.deadline = Some(Instant::now() + Duration::from_secs(10));
    c
}

#[tokio::test]
async fn post_sends_the_documented_request_and_answers_channel_and_ts() {
    let (srv, base) = server().await;
    let slack = SlackIntegration::new(&config(&base)).unwrap();
    let blocks = Value::from_json(
        json!([{ "type": "section", "text": { "type": "mrkdwn", "text": "*hi*" } }]),
    );
    let got = slack
        .perform(call(
            "post",
            vec![s("#general"), s("deployed"), blocks],
            "run/1",
        ))
        .await
        .unwrap();
    let posted: Posted = drover_ir::from_value(got).unwrap();
    assert_eq!(posted.channel, "C0GENERAL");
    assert_eq!(posted.ts, "1700000000.000001");
    let sent = srv.posted.all();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["text"], "deployed");
    assert_eq!(sent[0]["blocks"][0]["type"], "section");
    assert_eq!(sent[0]["metadata"]["event_payload"]["effect_id"], "run/1");
    assert_eq!(
        slack.health().await.status,
        drover_integrations::HealthStatus::Up
    );
}

#[tokio::test]
async fn slack_errors_become_failures_of_the_right_kind() {
    let (srv, base) = server().await;
    let slack = SlackIntegration::new(&config(&base)).unwrap();
    let err = slack
        .perform(call(
            "post",
            vec![s("#nowhere"), s("x"), Value::Null],
            "run/2",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "rejected");
    assert!(!err.retryable);
    assert!(err.message.contains("channel_not_found"), "{err}");

    // Slack's ok:false ratelimited is worth retrying.
    srv.faults
        .push(Fault::status(200).body(r#"{"ok":false,"error":"ratelimited"}"#));
    let err = slack
        .perform(call(
            "post",
            vec![s("#general"), s("x"), Value::Null],
            "run/3",
        ))
        .await
        .unwrap_err();
    assert_eq!((err.kind.as_str(), err.retryable), ("rate_limited", true));

    // A wrong token is refused by the server.
    let mut bad = config(&base);
    bad.token = Some(Secret::new("xoxb-0000-wrong"));
    let err = SlackIntegration::new(&bad)
        .unwrap()
        .perform(call(
            "post",
            vec![s("#general"), s("x"), Value::Null],
            "run/4",
        ))
        .await
        .unwrap_err();
    assert_eq!((err.kind.as_str(), err.retryable), ("unauthorized", false));
    assert!(!err.message.contains("wrong"), "{err}");

    // Bad arguments never reach the server.
    let before = srv.requests.len();
    let err = slack
        .perform(call(
            "post",
            vec![s("#general"), s(""), Value::Null],
            "run/5",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "bad_argument");
    let err = slack
        .perform(call(
            "post",
            vec![s("#general"), s("x"), Value::Int(3)],
            "run/6",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "bad_argument");
    assert_eq!(srv.requests.len(), before);
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_and_the_message_posted_once() {
    let (srv, base) = server().await;
    let slack = SlackIntegration::new(&config(&base)).unwrap();
    srv.faults.push(Fault::status(429).retry_after(1));
    let got = slack
        .perform(call(
            "post",
            vec![s("#ops"), s("once"), Value::Null],
            "run/7",
        ))
        .await
        .unwrap();
    let posted: Posted = drover_ir::from_value(got).unwrap();
    assert_eq!(posted.channel, "C0OPS");
    assert_eq!(srv.requests.len(), 2, "one 429, then the post");
    let posted = srv.posted.all();
    assert_eq!(posted.len(), 1, "posted exactly once");
    assert_eq!(posted[0]["text"], "once");
}

#[tokio::test]
async fn a_retry_after_past_the_deadline_is_a_retryable_failure_naming_the_wait() {
    let (srv, base) = server().await;
    let slack = SlackIntegration::new(&config(&base)).unwrap();
    srv.faults.push(Fault::status(429).retry_after(30));
    let mut c = call("post", vec![s("#ops"), s("later"), Value::Null], "run/8");
    c.deadline = Some(Instant::now() + Duration::from_secs(5));
    let err = slack.perform(c).await.unwrap_err();
    assert_eq!((err.kind.as_str(), err.retryable), ("rate_limited", true));
    assert!(err.message.contains("30.0s"), "{err}");
    assert_eq!(srv.posted.len(), 0);
}

#[tokio::test]
async fn webhooks_by_name_and_by_url_and_their_urls_never_show() {
    let (srv, base) = server().await;
    let slack = SlackIntegration::new(&config(&base)).unwrap();
    let by_name = call(
        "webhook",
        vec![s("alerts"), s("by name"), Value::Null],
        "run/9",
    );
    let r = slack.perform(by_name.clone()).await;
    assert_eq!(r, Ok(Value::Null));
    let url = format!("{base}/services/{HOOK_PATH}");
    let by_url = call("webhook", vec![s(&url), s("by url"), Value::Null], "run/10");
    let r2 = slack.perform(by_url.clone()).await;
    assert_eq!(r2, Ok(Value::Null));
    let texts: Vec<J> = srv.hooked.all().iter().map(|j| j["text"].clone()).collect();
    assert_eq!(texts, [json!("by name"), json!("by url")]);

    let line = slack.summarize(&by_url, &r2);
    assert!(!line.contains("hooksecretpart42"), "{line}");
    assert!(
        line.contains("[redacted]") && line.contains("by url"),
        "{line}"
    );
    let line = slack.summarize(&by_name, &r);
    assert!(line.contains("url=\"alerts\""), "{line}");

    // A failure message never carries the URL either.
    let wrong = format!("{base}/services/T0001/B0001/otherhooksecret");
    let c = call("webhook", vec![s(&wrong), s("x"), Value::Null], "run/11");
    let r = slack.perform(c.clone()).await;
    let err = r.clone().unwrap_err();
    assert_eq!((err.kind.as_str(), err.retryable), ("rejected", false));
    assert!(err.message.contains("no_service"), "{err}");
    for text in [err.message.clone(), slack.summarize(&c, &r)] {
        assert!(!text.contains("otherhooksecret"), "{text}");
    }
}

#[test]
fn secrets_stay_out_of_debug_output_and_config_errors() {
    let c = config("http://127.0.0.1:9");
    let debug = format!("{c:?}");
    assert!(
        !debug.contains(TOKEN) && !debug.contains("hooksecretpart42"),
        "{debug}"
    );
    let err =
        Config::from_toml("[slack]\ntoken = \"sk-notaslacktoken\"\n", "drover.toml").unwrap_err();
    let report = err.render();
    assert!(report.contains("slack.token"), "{report}");
    assert!(!report.contains("notaslacktoken"), "{report}");
    assert!(!err.to_string().contains("notaslacktoken"), "{err}");
    let err = Config::from_toml(
        "[slack]\nwebhooks = { alerts = \"hooks.example/secrethookpath\" }\n",
        "drover.toml",
    )
    .unwrap_err();
    assert_eq!(err.issues[0].key, "slack.webhooks.alerts");
    assert!(!err.render().contains("secrethookpath"), "{}", err.render());
}

#[tokio::test]
async fn health_asks_auth_test() {
    let (_srv, base) = server().await;
    let h = SlackIntegration::new(&config(&base))
        .unwrap()
        .health()
        .await;
    assert_eq!(h.status, drover_integrations::HealthStatus::Up, "{h:?}");
    let mut bad = config(&base);
    bad.token = Some(Secret::new("xoxb-0000-wrong"));
    let h = SlackIntegration::new(&bad).unwrap().health().await;
    assert_eq!(h.status, drover_integrations::HealthStatus::Down, "{h:?}");
    assert!(h.detail.contains("invalid_auth"), "{h:?}");
}

#[test]
fn env_vars_configure_slack() {
    let mut c = Config::default();
    c.apply_env(|n| match n {
        "DROVER_SLACK_TOKEN" => Some(TOKEN.into()),
        "DROVER_SLACK_URL" => Some("http://127.0.0.1:1/api/".into()),
        "DROVER_SLACK_CHANNEL_RATE" => Some("0.5".into()),
        _ => None,
    })
    .unwrap();
    let s = c.slack.unwrap();
    assert_eq!(s.token.as_ref().map(Secret::expose), Some(TOKEN));
    assert_eq!(s.url, "http://127.0.0.1:1/api");
    assert_eq!(s.channel_rate, 0.5);
    let err = Config::default()
        .apply_env(|n| (n == "DROVER_SLACK_TOKEN").then(|| "nope".into()))
        .unwrap_err();
    assert_eq!(err.issues[0].key, "DROVER_SLACK_TOKEN");
}

#[tokio::test]
async fn the_embedded_sink_records_and_answers_like_slack() {
    let slack = SlackIntegration::embedded();
    let got = slack
        .perform(call(
            "post",
            vec![s("#general"), s("hello"), Value::Null],
            "run/12",
        ))
        .await
        .unwrap();
    let posted: Posted = drover_ir::from_value(got).unwrap();
    assert_eq!(posted.channel, "#general");
    slack
        .perform(call(
            "webhook",
            vec![s("https://hooks.example/secret"), s("hook"), Value::Null],
            "run/13",
        ))
        .await
        .unwrap();
    let msgs = slack.sink().unwrap().messages();
    assert_eq!(msgs.len(), 2);
    assert_eq!(
        (msgs[0].target.as_str(), msgs[0].text.as_str()),
        ("#general", "hello")
    );
    assert_eq!(msgs[0].ts, posted.ts);
    assert_eq!(msgs[1].target, "webhook:[redacted]");
    let err: EffectFailure = slack
        .perform(call(
            "post",
            vec![s("#general"), s(""), Value::Null],
            "run/14",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "bad_argument");
}
