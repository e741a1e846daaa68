//! The PagerDuty integration against a loopback server that checks the
//! Events API v2 contract, and against its embedded recorder.

mod loopback;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use drover_integrations::pagerduty::{IncidentStatus, PagerDutyConfig, PagerDutyIntegration};
use drover_integrations::{Config, EffectCall, Integration, Secret};
use drover_ir::Value;
use loopback::{Fault, Faults, Log};
use serde_json::{json, Value as J};

const KEY: &str = "R0UTINGKEY0123456789abcdefABCDEF";

/// PagerDuty's answer, as `drover::effects::pagerduty::Ack` decodes it.
#[derive(Debug, serde::Deserialize, PartialEq)]
struct Ack {
    dedup_key: String,
    status: String,
}

#[derive(Default)]
struct PagerDuty {
    faults: Faults,
    events: Log<J>,
    /// Open incidents by dedup key: (status, events).
    incidents: Mutex<HashMap<String, (String, u32)>>,
    opened: Mutex<u32>,
}

fn invalid(why: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "status": "invalid event", "message": "Event object is invalid", "errors": [why] })),
    )
        .into_response()
}

/// POST /v2/enqueue as documented: JSON, a 32-character routing key,
/// event_action, dedup_key; a trigger's payload has summary, source and a
/// severity from the enum. 202 on success, 400 on an invalid event.
async fn enqueue(State(s): State<Arc<PagerDuty>>, headers: HeaderMap, body: Bytes) -> Response {
    let ev: J = serde_json::from_slice(&body).unwrap_or(J::Null);
    s.events.push(ev.clone());
    if let Some(f) = s.faults.next() {
        return f.into_response();
    }
    let json_ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !json_ct {
        return invalid("Content-Type must be application/json");
    }
    let Some(rk) = ev["routing_key"].as_str() else {
        return invalid("routing_key is required");
    };
    if rk.len() != 32 {
        return invalid("routing_key must be 32 characters");
    }
    if rk != KEY {
        return invalid("Invalid Routing Key");
    }
    let action = ev["event_action"].as_str().unwrap_or("");
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        return invalid("event_action must be trigger, acknowledge or resolve");
    }
    let dedup = ev["dedup_key"].as_str();
    if dedup.is_some_and(|d| d.is_empty() || d.len() > 255) {
        return invalid("dedup_key must be 1 to 255 characters");
    }
    if action == "trigger" {
        let p = &ev["payload"];
        if !p["summary"]
            .as_str()
            .is_some_and(|x| !x.is_empty() && x.len() <= 1024)
        {
            return invalid("payload.summary is required (at most 1024 characters)");
        }
        if p["source"].as_str().is_none_or(str::is_empty) {
            return invalid("payload.source is required");
        }
        let sev = p["severity"].as_str().unwrap_or("");
        if !["critical", "error", "warning", "info"].contains(&sev) {
            return invalid("payload.severity must be critical, error, warning or info");
        }
    } else if dedup.is_none() {
        return invalid("dedup_key is required for acknowledge and resolve");
    }
    let key = dedup.map_or_else(|| format!("generated-{}", s.events.len()), str::to_owned);
    let mut incidents = s.incidents.lock().unwrap();
    match action {
        "trigger" => match incidents.get_mut(&key) {
            Some(open) if open.0 != "resolved" => open.1 += 1,
            _ => {
                incidents.insert(key.clone(), ("triggered".into(), 1));
                *s.opened.lock().unwrap() += 1;
            }
        },
        _ => {
            if let Some(open) = incidents.get_mut(&key) {
                open.1 += 1;
                open.0 = if action == "resolve" {
                    "resolved"
                } else {
                    "acknowledged"
                }
                .into();
            }
        }
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({ "status": "success", "message": "Event processed", "dedup_key": key })),
    )
        .into_response()
}

async fn server() -> (Arc<PagerDuty>, String) {
    let s = Arc::new(PagerDuty::default());
    let router = Router::new()
        .route("/v2/enqueue", post(enqueue))
        .with_state(s.clone());
    (s.clone(), loopback::serve(router).await)
}

fn config(base: &str) -> PagerDutyConfig {
    let toml = format!("[pagerduty]\nrouting_key = \"{KEY}\"\nurl = \"{base}\"\n");
    Config::from_toml(&toml, "drover.toml")
        .unwrap()
        .pagerduty
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

/// A trigger as the typed API sends it: the severity is an enum variant.
fn trigger_args() -> Vec<Value> {
    vec![
        s("disk full on db-1"),
        Value::variant("Critical", Value::Null),
        s("db-1"),
        Value::record([("used", Value::Int(99))]),
    ]
}

#[tokio::test]
async fn trigger_acknowledge_resolve_follow_the_events_api() {
    let (srv, base) = server().await;
    let pd = PagerDutyIntegration::new(&config(&base)).unwrap();
    let got = pd
        .perform(call("trigger", trigger_args(), "run-a/4"))
        .await
        .unwrap();
    let ack: Ack = drover_ir::from_value(got).unwrap();
    assert_eq!(
        ack,
        Ack {
            dedup_key: "run-a/4".into(),
            status: "success".into()
        }
    );
    let ev = &srv.events.all()[0];
    assert_eq!(ev["event_action"], "trigger");
    assert_eq!(ev["payload"]["severity"], "critical");
    assert_eq!(ev["payload"]["custom_details"]["used"], 99);

    for (op, status) in [("acknowledge", "acknowledged"), ("resolve", "resolved")] {
        let got = pd
            .perform(call(op, vec![s("run-a/4")], "run-a/5"))
            .await
            .unwrap();
        let ack: Ack = drover_ir::from_value(got).unwrap();
        assert_eq!(ack.dedup_key, "run-a/4");
        assert_eq!(srv.incidents.lock().unwrap()["run-a/4"].0, status);
    }
    assert_eq!(*srv.opened.lock().unwrap(), 1);
}

#[tokio::test]
async fn a_500_is_retried_with_the_same_dedup_key_and_opens_one_incident() {
    let (srv, base) = server().await;
    let pd = PagerDutyIntegration::new(&config(&base)).unwrap();
    srv.faults.push(Fault::status(500));
    pd.perform(call("trigger", trigger_args(), "run-b/1"))
        .await
        .unwrap();
    let keys: Vec<J> = srv
        .events
        .all()
        .iter()
        .map(|e| e["dedup_key"].clone())
        .collect();
    assert_eq!(keys, [json!("run-b/1"), json!("run-b/1")]);
    assert_eq!(*srv.opened.lock().unwrap(), 1);
    assert_eq!(
        srv.incidents.lock().unwrap()["run-b/1"],
        ("triggered".into(), 1)
    );
}

#[tokio::test]
async fn across_node_retries_the_dedup_key_holds_and_one_incident_opens() {
    let (srv, base) = server().await;
    let mut c = config(&base);
    c.max_attempts = 1;
    let pd = PagerDutyIntegration::new(&c).unwrap();
    srv.faults.push(Fault::status(503));
    let err = pd
        .perform(call("trigger", trigger_args(), "run-c/2"))
        .await
        .unwrap_err();
    assert_eq!((err.kind.as_str(), err.retryable), ("unavailable", true));
    let mut retry = call("trigger", trigger_args(), "run-c/2");
    retry.attempt = 2;
    pd.perform(retry).await.unwrap();
    // A retry after a lost answer: the server took the event; PagerDuty dedups.
    let mut again = call("trigger", trigger_args(), "run-c/2");
    again.attempt = 3;
    pd.perform(again).await.unwrap();
    let keys: Vec<J> = srv
        .events
        .all()
        .iter()
        .map(|e| e["dedup_key"].clone())
        .collect();
    assert_eq!(keys, vec![json!("run-c/2"); 3]);
    assert_eq!(*srv.opened.lock().unwrap(), 1);
}

#[tokio::test]
async fn a_400_is_permanent_and_a_429_past_the_deadline_is_retryable() {
    let (srv, base) = server().await;
    let mut c = config(&base);
    c.routing_key = Secret::new("0123456789abcdef0123456789abcdef");
    let err = PagerDutyIntegration::new(&c)
        .unwrap()
        .perform(call("trigger", trigger_args(), "run-d/1"))
        .await
        .unwrap_err();
    assert_eq!((err.kind.as_str(), err.retryable), ("rejected", false));
    assert!(err.message.contains("Invalid Routing Key"), "{err}");
    assert!(!err.message.contains("0123456789abcdef"), "{err}");

    let pd = PagerDutyIntegration::new(&config(&base)).unwrap();
    srv.faults.push(Fault::status(429).retry_after(60));
    let err = pd
        .perform(call("trigger", trigger_args(), "run-d/2"))
        .await
        .unwrap_err();
    assert_eq!((err.kind.as_str(), err.retryable), ("rate_limited", true));
    assert!(err.message.contains("60.0s"), "{err}");

    // A bad severity never reaches the server.
    let before = srv.events.len();
    let mut args = trigger_args();
    args[1] = s("catastrophic");
    let err = pd
        .perform(call("trigger", args, "run-d/3"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "bad_argument");
    assert_eq!(srv.events.len(), before);
}

#[tokio::test]
async fn the_routing_key_never_shows() {
    let (_srv, base) = server().await;
    let c = config(&base);
    assert!(!format!("{c:?}").contains(KEY));
    let pd = PagerDutyIntegration::new(&c).unwrap();
    let call = call("trigger", trigger_args(), "run-e/1");
    let r = pd.perform(call.clone()).await;
    let line = pd.summarize(&call, &r);
    assert!(
        line.starts_with("pagerduty.trigger summary=\"disk full on db-1\""),
        "{line}"
    );
    assert!(!line.contains(KEY), "{line}");
    let err = Config::from_toml(
        "[pagerduty]\nrouting_key = \"0123456789abcdef0123456789abcde\"\n",
        "drover.toml",
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("32 letters and digits, this one has 31"),
        "{err}"
    );
    assert!(
        !err.render().contains("0123456789abcdef"),
        "{}",
        err.render()
    );
}

#[tokio::test]
async fn the_embedded_recorder_dedups_like_pagerduty() {
    let pd = PagerDutyIntegration::embedded();
    for attempt in 1..=2 {
        let mut c = call("trigger", trigger_args(), "run-f/1");
        c.attempt = attempt;
        let ack: Ack = drover_ir::from_value(pd.perform(c).await.unwrap()).unwrap();
        assert_eq!(ack.dedup_key, "run-f/1");
    }
    let list = pd.incidents().unwrap().list();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].events, list[0].status),
        (2, IncidentStatus::Triggered)
    );
    assert_eq!(list[0].severity, "critical");
    pd.perform(call("acknowledge", vec![s("run-f/1")], "run-f/2"))
        .await
        .unwrap();
    assert_eq!(
        pd.incidents().unwrap().list()[0].status,
        IncidentStatus::Acknowledged
    );
    pd.perform(call("resolve", vec![s("run-f/1")], "run-f/3"))
        .await
        .unwrap();
    assert_eq!(
        pd.incidents().unwrap().list()[0].status,
        IncidentStatus::Resolved
    );
}
