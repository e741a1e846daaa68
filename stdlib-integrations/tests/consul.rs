//! The Consul integration against a loopback server that checks the Consul
//! HTTP API contract (KV with check-and-set, agent service registration,
//! health-filtered discovery, ACL tokens), and the embedded store, which
//! must behave the same.

mod loopback;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use base64::Engine;
use drover_integrations::consul::{ConsulConfig, ConsulIntegration};
use drover_integrations::{Config, EffectCall, HealthStatus, Integration};
use drover_ir::Value;
use loopback::{Fault, Faults};
use serde_json::{json, Value as J};

const TOKEN: &str = "b1gs3cr3t-acl-token-0000";

/// One healthy instance, as `drover::effects::consul::Instance` decodes it.
#[derive(Debug, serde::Deserialize, PartialEq, Eq, PartialOrd, Ord)]
struct Instance {
    address: String,
    port: u16,
}

#[derive(Debug, serde::Deserialize, serde::Serialize, PartialEq, Clone)]
struct DbConfig {
    host: String,
    port: u16,
    replicas: Vec<String>,
}

/// A stored value: (raw bytes, create index, modify index).
type Entry = (Vec<u8>, u64, u64);
/// A registered instance: (id, name, address, port, passing).
type Registered = (String, String, String, u16, bool);

#[derive(Default)]
struct Consul {
    faults: Faults,
    /// key -> (raw value, create index, modify index)
    kv: Mutex<BTreeMap<String, Entry>>,
    index: Mutex<u64>,
    /// (id, name, address, port, passing)
    services: Mutex<Vec<Registered>>,
}

impl Consul {
    fn modify_index(&self, key: &str) -> Option<u64> {
        self.kv.lock().unwrap().get(key).map(|e| e.2)
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("x-consul-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t == TOKEN)
}

fn denied() -> Response {
    (StatusCode::FORBIDDEN, "ACL not found").into_response()
}

fn query_param(q: &Option<String>, name: &str) -> Option<String> {
    q.as_deref()?
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

async fn kv_get(
    State(s): State<Arc<Consul>>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(f) = s.faults.next() {
        return f.into_response();
    }
    if !authorized(&headers) {
        return denied();
    }
    match s.kv.lock().unwrap().get(&key) {
        None => StatusCode::NOT_FOUND.into_response(),
        Some((raw, create, modify)) => Json(json!([{
            "LockIndex": 0, "Key": key, "Flags": 0,
            "Value": base64::engine::general_purpose::STANDARD.encode(raw),
            "CreateIndex": create, "ModifyIndex": modify,
        }]))
        .into_response(),
    }
}

/// PUT /v1/kv/<key>[?cas=N]: the body is the raw value; answers true/false.
async fn kv_put(
    State(s): State<Arc<Consul>>,
    Path(key): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(f) = s.faults.next() {
        return f.into_response();
    }
    if !authorized(&headers) {
        return denied();
    }
    if body.len() > 512 * 1024 {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Value exceeds 524288 byte limit",
        )
            .into_response();
    }
    let cas = match query_param(&q, "cas") {
        None => None,
        Some(v) => match v.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => return (StatusCode::BAD_REQUEST, "Invalid cas index").into_response(),
        },
    };
    let mut kv = s.kv.lock().unwrap();
    let current = kv.get(&key).map(|e| e.2);
    let ok = match cas {
        None => true,
        Some(0) => current.is_none(),
        Some(i) => current == Some(i),
    };
    if ok {
        let mut idx = s.index.lock().unwrap();
        *idx += 1;
        let create = kv.get(&key).map_or(*idx, |e| e.1);
        kv.insert(key, (body.to_vec(), create, *idx));
    }
    Json(ok).into_response()
}

/// PUT /v1/agent/service/register with the documented fields only.
async fn register(State(s): State<Arc<Consul>>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&headers) {
        return denied();
    }
    let bad = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            format!("Request decode failed: {why}"),
        )
            .into_response()
    };
    let Ok(J::Object(o)) = serde_json::from_slice::<J>(&body) else {
        return bad("not a JSON object");
    };
    const KNOWN: &[&str] = &[
        "ID", "Name", "Tags", "Address", "Port", "Meta", "Check", "Checks",
    ];
    if let Some(k) = o.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return bad(&format!("unknown field {k:?}"));
    }
    let Some(name) = o.get("Name").and_then(J::as_str).filter(|n| !n.is_empty()) else {
        return bad("missing service name");
    };
    let Some(port) = o.get("Port").and_then(J::as_u64).filter(|p| *p <= 65535) else {
        return bad("Port must be an integer port");
    };
    let address = match o.get("Address") {
        None => String::new(),
        Some(J::String(a)) => a.clone(),
        Some(_) => return bad("Address must be a string"),
    };
    let id = o.get("ID").and_then(J::as_str).unwrap_or(name).to_owned();
    let mut services = s.services.lock().unwrap();
    services.retain(|e| e.0 != id);
    services.push((id, name.to_owned(), address, port as u16, true));
    StatusCode::OK.into_response()
}

/// GET /v1/health/service/<name>[?passing=true]: entries with Node, Service
/// and Checks; an empty Service.Address means the node's address.
async fn health_service(
    State(s): State<Arc<Consul>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return denied();
    }
    let passing_only = query_param(&q, "passing").is_some_and(|v| v == "true" || v == "1");
    let services = s.services.lock().unwrap();
    let entries: Vec<J> = services
        .iter()
        .filter(|e| e.1 == name && (e.4 || !passing_only))
        .map(|(id, svc, addr, port, passing)| {
            json!({
                "Node": { "Node": "node-1", "Address": "10.0.0.1" },
                "Service": { "ID": id, "Service": svc, "Address": addr, "Port": port },
                "Checks": [{ "Status": if *passing { "passing" } else { "critical" } }],
            })
        })
        .collect();
    Json(entries).into_response()
}

async fn leader() -> Json<&'static str> {
    Json("127.0.0.1:8300")
}

async fn server() -> (Arc<Consul>, String) {
    let s = Arc::new(Consul::default());
    let router = Router::new()
        .route("/v1/kv/{*key}", get(kv_get).put(kv_put))
        .route("/v1/agent/service/register", put(register))
        .route("/v1/health/service/{name}", get(health_service))
        .route("/v1/status/leader", get(leader))
        .with_state(s.clone());
    (s.clone(), loopback::serve(router).await)
}

fn config(base: &str) -> ConsulConfig {
    let addr = base.trim_start_matches("http://");
    let toml = format!("[consul]\naddr = \"{addr}\"\ntoken = \"{TOKEN}\"\n");
    Config::from_toml(&toml, "drover.toml")
        .unwrap()
        .consul
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

/// KV, check-and-set and the catalog, the same against any backend;
/// `index` reads a key's modify index out of band.
async fn scenario(consul: &ConsulIntegration, index: impl Fn(&str) -> Option<u64>) {
    let db = DbConfig {
        host: "db.internal".into(),
        port: 5432,
        replicas: vec!["r1".into(), "r2".into()],
    };
    let key = "app/config/db";
    let v = drover_ir::to_value(&db).unwrap();
    assert_eq!(
        consul.perform(call("kv_get", vec![s(key)], "r/1")).await,
        Ok(Value::Null)
    );
    assert_eq!(
        consul
            .perform(call("kv_put", vec![s(key), v.clone()], "r/2"))
            .await,
        Ok(Value::Null)
    );
    let got = consul
        .perform(call("kv_get", vec![s(key)], "r/3"))
        .await
        .unwrap();
    let back: Option<DbConfig> = drover_ir::from_value(got).unwrap();
    assert_eq!(back, Some(db.clone()));

    // cas 0 creates only; a stale index loses; the current index wins.
    let lock = "app/lock";
    let cas = |value: &str, idx: u64, id: &'static str| {
        consul.perform(call(
            "kv_cas",
            vec![s(lock), s(value), Value::Int(idx as i64)],
            id,
        ))
    };
    assert_eq!(cas("a", 0, "r/4").await, Ok(Value::Bool(true)));
    assert_eq!(cas("b", 0, "r/5").await, Ok(Value::Bool(false)));
    let idx = index(lock).expect("the key exists");
    assert_eq!(cas("c", idx + 1000, "r/6").await, Ok(Value::Bool(false)));
    assert_eq!(cas("d", idx, "r/7").await, Ok(Value::Bool(true)));
    assert_eq!(
        cas("e", idx, "r/8").await,
        Ok(Value::Bool(false)),
        "the index moved on"
    );
    let got = consul
        .perform(call("kv_get", vec![s(lock)], "r/9"))
        .await
        .unwrap();
    assert_eq!(got, s("d"));

    for (addr, port) in [("10.0.0.7", 8080), ("10.0.0.8", 8081)] {
        let r = consul
            .perform(call(
                "register",
                vec![s("api"), s(addr), Value::Int(port)],
                "r/10",
            ))
            .await;
        assert_eq!(r, Ok(Value::Null));
    }
    let got = consul
        .perform(call("discover", vec![s("api")], "r/11"))
        .await
        .unwrap();
    let mut found: Vec<Instance> = drover_ir::from_value(got).unwrap();
    found.sort();
    assert_eq!(
        found,
        [
            Instance {
                address: "10.0.0.7".into(),
                port: 8080
            },
            Instance {
                address: "10.0.0.8".into(),
                port: 8081
            },
        ]
    );
    let got = consul
        .perform(call("discover", vec![s("nothing")], "r/12"))
        .await;
    assert_eq!(got, Ok(Value::List(vec![])));

    for (op, args) in [
        ("kv_get", vec![s("/leading")]),
        ("kv_put", vec![s("has space"), Value::Int(1)]),
        ("kv_cas", vec![s("k"), Value::Int(1), Value::Int(-1)]),
        ("register", vec![s("api"), s("10.0.0.9"), Value::Int(70000)]),
        ("discover", vec![s("no/slash")]),
    ] {
        let err = consul.perform(call(op, args, "r/13")).await.unwrap_err();
        assert_eq!(err.kind, "bad_argument", "{op}: {err}");
    }
}

#[tokio::test]
async fn the_agent_api_answers_kv_cas_and_discovery() {
    let (srv, base) = server().await;
    let consul = ConsulIntegration::new(&config(&base)).unwrap();
    let srv2 = srv.clone();
    scenario(&consul, move |k| srv2.modify_index(k)).await;
    // Stored as JSON text other Consul clients can read.
    let raw = srv.kv.lock().unwrap()["app/config/db"].0.clone();
    let j: J = serde_json::from_slice(&raw).unwrap();
    assert_eq!(j["host"], "db.internal");
    // An unhealthy instance is not discovered.
    srv.services.lock().unwrap().push((
        "api-sick".into(),
        "api".into(),
        "10.0.0.66".into(),
        80,
        false,
    ));
    srv.services
        .lock()
        .unwrap()
        .push(("api-node".into(), "api".into(), String::new(), 9000, true));
    let got = consul
        .perform(call("discover", vec![s("api")], "r/20"))
        .await
        .unwrap();
    let found: Vec<Instance> = drover_ir::from_value(got).unwrap();
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found.contains(&Instance {
        address: "10.0.0.1".into(),
        port: 9000
    }));
    let h = consul.health().await;
    assert_eq!(h.status, HealthStatus::Up, "{h:?}");
    assert!(h.detail.contains("127.0.0.1:8300"), "{h:?}");
}

#[tokio::test]
async fn the_embedded_store_behaves_like_the_agent() {
    let consul = ConsulIntegration::embedded();
    let store = |k: &str| consul.store().unwrap().modify_index(k);
    scenario(&consul, store).await;
}

#[tokio::test]
async fn a_5xx_is_retried_and_a_wrong_token_is_refused_without_showing_it() {
    let (srv, base) = server().await;
    let consul = ConsulIntegration::new(&config(&base)).unwrap();
    srv.faults
        .push(Fault::status(500).body("rpc error: No cluster leader"));
    let c = call("kv_put", vec![s("k"), Value::Int(1)], "r/30");
    let r = consul.perform(c.clone()).await;
    assert_eq!(r, Ok(Value::Null));
    assert!(srv.modify_index("k").is_some());

    let mut wrong = config(&base);
    wrong.token = Some(drover_integrations::Secret::new("not-the-token-xyz"));
    let consul = ConsulIntegration::new(&wrong).unwrap();
    let c = call("kv_get", vec![s("k")], "r/31");
    let r = consul.perform(c.clone()).await;
    let err = r.clone().unwrap_err();
    assert_eq!((err.kind.as_str(), err.retryable), ("unauthorized", false));
    let line = consul.summarize(&c, &r);
    assert!(
        line.starts_with("consul.kv_get key=\"k\" -> Err(unauthorized"),
        "{line}"
    );
    for text in [
        line,
        err.message,
        format!("{wrong:?}"),
        format!("{:?}", config(&base)),
    ] {
        assert!(
            !text.contains("not-the-token-xyz") && !text.contains(TOKEN),
            "{text}"
        );
    }
}

#[tokio::test]
async fn an_agent_that_is_down_is_a_retryable_failure_and_down_health() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let consul = ConsulIntegration::new(&ConsulConfig::new(&format!("127.0.0.1:{port}"))).unwrap();
    let err = consul
        .perform(call("kv_get", vec![s("k")], "r/40"))
        .await
        .unwrap_err();
    assert_eq!((err.kind.as_str(), err.retryable), ("unavailable", true));
    assert_eq!(consul.health().await.status, HealthStatus::Down);
}

#[test]
fn consul_config_from_toml_and_env() {
    let c = Config::from_toml(
        "[consul]\naddr = \"https://consul.internal:8501/\"\ntimeout_ms = 250\n",
        "drover.toml",
    )
    .unwrap()
    .consul
    .unwrap();
    assert_eq!(c.url, "https://consul.internal:8501");
    assert_eq!(c.timeout, Duration::from_millis(250));
    let err = Config::from_toml("[consul]\ntoken = \"x\"\n", "drover.toml").unwrap_err();
    assert_eq!(err.issues[0].key, "consul.addr");
    let mut c = Config::default();
    c.apply_env(|n| match n {
        "DROVER_CONSUL_ADDR" => Some("127.0.0.1:8500".into()),
        "DROVER_CONSUL_TOKEN" => Some(TOKEN.into()),
        _ => None,
    })
    .unwrap();
    let c = c.consul.unwrap();
    assert_eq!(c.url, "http://127.0.0.1:8500");
    assert_eq!(c.token.unwrap().expose(), TOKEN);
    let err = Config::default()
        .apply_env(|n| (n == "DROVER_CONSUL_TOKEN").then(|| TOKEN.into()))
        .unwrap_err();
    assert!(err.to_string().contains("DROVER_CONSUL_ADDR"), "{err}");
}
