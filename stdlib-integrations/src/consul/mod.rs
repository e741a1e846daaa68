//! The Consul integration: the KV store (`consul.kv_get`, `kv_put`,
//! `kv_cas`) and service discovery (`consul.register`, `discover`) through a
//! Consul agent's HTTP API, or an embedded store with the same semantics
//! (modify indexes, check-and-set, a service catalog) when there is no
//! `[consul]` section.
//!
//! Values are stored as their JSON text, so other Consul clients can read
//! them; a value that is not JSON (written by something else) reads back as
//! a string. `kv_cas(key, value, index)` stores only if the key's modify
//! index is `index` (0: only if the key does not exist) and answers whether
//! it stored. `discover` answers the instances passing their health checks
//! as `[{address, port}]`. The ACL token goes in `X-Consul-Token`.

pub mod config;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use base64::Engine;
use drover_ir::Value;
use serde_json::json;

pub use config::ConsulConfig;

use crate::args::{self, bad};
use crate::web::{self, Retrying};
use crate::{summary, EffectCall, EffectFailure, Health, Integration, ResourceDecl, Secret};

/// The operations, in catalog order.
pub const OPERATIONS: &[&str] = &["kv_get", "kv_put", "kv_cas", "register", "discover"];

/// Consul's limit on one value (512 KiB).
pub const MAX_VALUE_BYTES: usize = 512 * 1024;
/// How many keys the embedded store holds.
pub const MAX_KEYS: usize = 100_000;
/// How many instances the embedded catalog holds.
pub const MAX_INSTANCES: usize = 10_000;

/// The Consul integration.
pub struct ConsulIntegration {
    mode: Mode,
}

enum Mode {
    Agent {
        client: reqwest::Client,
        url: reqwest::Url,
        token: Option<Secret>,
        max_attempts: u32,
    },
    Embedded(ConsulStore),
}

/// The embedded store: KV with modify indexes and a service catalog.
#[derive(Debug, Default)]
pub struct ConsulStore {
    inner: Mutex<Store>,
}

#[derive(Debug, Default)]
struct Store {
    /// Key to (JSON text, modify index).
    kv: BTreeMap<String, (Vec<u8>, u64)>,
    index: u64,
    services: BTreeMap<String, BTreeSet<(String, u16)>>,
}

impl ConsulStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The modify index of `key`, if it exists.
    pub fn modify_index(&self, key: &str) -> Option<u64> {
        self.lock().kv.get(key).map(|(_, i)| *i)
    }

    fn put(&self, key: &str, raw: Vec<u8>, cas: Option<u64>) -> Result<bool, EffectFailure> {
        let mut g = self.lock();
        let current = g.kv.get(key).map(|(_, i)| *i);
        let ok = match cas {
            None => true,
            Some(0) => current.is_none(),
            Some(i) => current == Some(i),
        };
        if !ok {
            return Ok(false);
        }
        if current.is_none() && g.kv.len() >= MAX_KEYS {
            return Err(EffectFailure::permanent(
                "limit",
                format!("the embedded Consul store holds its limit of {MAX_KEYS} keys"),
            ));
        }
        g.index += 1;
        let idx = g.index;
        g.kv.insert(key.to_owned(), (raw, idx));
        Ok(true)
    }
}

/// A KV key: non-empty, no leading slash, no spaces.
fn key_arg(v: &Value) -> Result<&str, EffectFailure> {
    let k = args::string(v, "key")?;
    if k.is_empty() || k.starts_with('/') || k.len() > 2048 {
        return Err(bad("key", "must be 1 to 2048 bytes and not start with /"));
    }
    if k.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("key", "must not contain spaces or control characters"));
    }
    Ok(k)
}

/// A service name: letters, digits, `-`, `_` and `.`.
fn service_arg(v: &Value) -> Result<&str, EffectFailure> {
    let s = args::string(v, "service")?;
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(s)
    } else {
        Err(bad(
            "service",
            format!("expected letters, digits, -, _ or ., got {s:?}"),
        ))
    }
}

fn value_bytes(v: &Value) -> Result<Vec<u8>, EffectFailure> {
    let raw = serde_json::to_vec(&v.to_json())
        .map_err(|e| bad("value", format!("cannot be written as JSON: {e}")))?;
    if raw.len() > MAX_VALUE_BYTES {
        return Err(EffectFailure::permanent(
            "too_large",
            format!(
                "value: {} bytes as JSON, over Consul's limit of {MAX_VALUE_BYTES}",
                raw.len()
            ),
        ));
    }
    Ok(raw)
}

/// A stored value: its JSON, else its text, else its bytes.
fn decode_value(raw: &[u8]) -> Value {
    match serde_json::from_slice::<serde_json::Value>(raw) {
        Ok(j) => Value::from_json(j),
        Err(_) => match std::str::from_utf8(raw) {
            Ok(s) => Value::Str(s.to_owned()),
            Err(_) => Value::Bytes(raw.to_vec()),
        },
    }
}

fn instance(address: &str, port: u16) -> Value {
    Value::record([
        ("address", Value::Str(address.to_owned())),
        ("port", Value::Int(i64::from(port))),
    ])
}

fn port_arg(v: &Value) -> Result<u16, EffectFailure> {
    let p = args::unsigned(v, "port")?;
    u16::try_from(p)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| bad("port", format!("must be 1 to 65535, got {p}")))
}

fn address_arg(v: &Value) -> Result<&str, EffectFailure> {
    let a = args::string(v, "address")?;
    if a.is_empty() || a.len() > 255 || a.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("address", "expected a host name or IP address"));
    }
    Ok(a)
}

impl ConsulIntegration {
    /// The integration against the configured agent.
    pub fn new(c: &ConsulConfig) -> Result<Self, String> {
        let url = reqwest::Url::parse(&c.url).map_err(|e| format!("consul.addr: {e}"))?;
        if url.cannot_be_a_base() {
            return Err(format!("consul.addr: {} cannot be a base URL", c.url));
        }
        Ok(ConsulIntegration {
            mode: Mode::Agent {
                client: web::client(c.timeout)?,
                url,
                token: c.token.clone(),
                max_attempts: c.max_attempts,
            },
        })
    }

    /// The embedded fallback.
    pub fn embedded() -> Self {
        ConsulIntegration {
            mode: Mode::Embedded(ConsulStore::default()),
        }
    }

    /// The embedded store, when embedded.
    pub fn store(&self) -> Option<&ConsulStore> {
        match &self.mode {
            Mode::Embedded(s) => Some(s),
            Mode::Agent { .. } => None,
        }
    }

    fn embedded_perform(
        &self,
        store: &ConsulStore,
        call: &EffectCall<'_>,
    ) -> Result<Value, EffectFailure> {
        let a = &call.args;
        match call.op {
            "kv_get" => {
                let k = key_arg(&a[0])?;
                Ok(store
                    .lock()
                    .kv
                    .get(k)
                    .map_or(Value::Null, |(raw, _)| decode_value(raw)))
            }
            "kv_put" => {
                let k = key_arg(&a[0])?;
                store.put(k, value_bytes(&a[1])?, None)?;
                Ok(Value::Null)
            }
            "kv_cas" => {
                let k = key_arg(&a[0])?;
                let raw = value_bytes(&a[1])?;
                let idx = args::unsigned(&a[2], "index")?;
                store.put(k, raw, Some(idx)).map(Value::Bool)
            }
            "register" => {
                let s = service_arg(&a[0])?;
                let addr = address_arg(&a[1])?;
                let port = port_arg(&a[2])?;
                let mut g = store.lock();
                let total: usize = g.services.values().map(BTreeSet::len).sum();
                let set = g.services.entry(s.to_owned()).or_default();
                if !set.contains(&(addr.to_owned(), port)) {
                    if total >= MAX_INSTANCES {
                        return Err(EffectFailure::permanent(
                            "limit",
                            format!(
                                "the embedded catalog holds its limit of {MAX_INSTANCES} instances"
                            ),
                        ));
                    }
                    set.insert((addr.to_owned(), port));
                }
                Ok(Value::Null)
            }
            "discover" => {
                let s = service_arg(&a[0])?;
                let g = store.lock();
                let list = g
                    .services
                    .get(s)
                    .map(|set| set.iter().map(|(a, p)| instance(a, *p)).collect())
                    .unwrap_or_default();
                Ok(Value::List(list))
            }
            other => Err(unknown(other)),
        }
    }

    async fn agent_perform(&self, call: &EffectCall<'_>) -> Result<Value, EffectFailure> {
        let Mode::Agent {
            client,
            url: base,
            token,
            max_attempts,
        } = &self.mode
        else {
            return Err(unknown(call.op));
        };
        let what = format!("consul.{}", call.op);
        let a = &call.args;
        let url_for = |segments: &[&str]| {
            let mut u = base.clone();
            if let Ok(mut p) = u.path_segments_mut() {
                p.pop_if_empty().extend(segments);
            }
            u
        };
        let with_token = |rb: reqwest::RequestBuilder| match token {
            Some(t) => rb.header("X-Consul-Token", t.expose()),
            None => rb,
        };
        let retrying = Retrying {
            max_sends: *max_attempts,
            deadline: call.deadline,
        };
        let (method, url, body): (reqwest::Method, reqwest::Url, Option<Vec<u8>>) = match call.op {
            "kv_get" => {
                let k = key_arg(&a[0])?;
                let mut segs = vec!["v1", "kv"];
                segs.extend(k.split('/'));
                (reqwest::Method::GET, url_for(&segs), None)
            }
            "kv_put" | "kv_cas" => {
                let k = key_arg(&a[0])?;
                let raw = value_bytes(&a[1])?;
                let mut segs = vec!["v1", "kv"];
                segs.extend(k.split('/'));
                let mut u = url_for(&segs);
                if call.op == "kv_cas" {
                    let idx = args::unsigned(&a[2], "index")?;
                    u.query_pairs_mut().append_pair("cas", &idx.to_string());
                }
                (reqwest::Method::PUT, u, Some(raw))
            }
            "register" => {
                let s = service_arg(&a[0])?;
                let addr = address_arg(&a[1])?;
                let port = port_arg(&a[2])?;
                let body = json!({
                    "ID": format!("{s}-{addr}-{port}"),
                    "Name": s,
                    "Address": addr,
                    "Port": port,
                });
                (
                    reqwest::Method::PUT,
                    url_for(&["v1", "agent", "service", "register"]),
                    Some(body.to_string().into_bytes()),
                )
            }
            "discover" => {
                let s = service_arg(&a[0])?;
                let mut u = url_for(&["v1", "health", "service", s]);
                u.query_pairs_mut().append_pair("passing", "true");
                (reqwest::Method::GET, u, None)
            }
            other => return Err(unknown(other)),
        };
        let resp = web::send(&what, retrying, || {
            let rb = client.request(method.clone(), url.clone());
            let rb = match &body {
                Some(b) => rb.body(b.clone()),
                None => rb,
            };
            with_token(rb)
        })
        .await?
        .map_err(|g| g.failure(&what))?;
        let status = resp.status();
        let raw = web::read_bytes(resp, 2 * MAX_VALUE_BYTES + 4096)
            .await
            .map_err(|e| web::transport_failure(&what, e))?;
        if call.op == "kv_get" && status == reqwest::StatusCode::NOT_FOUND {
            return Ok(Value::Null);
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&raw);
            let kind = match status.as_u16() {
                401 | 403 => "unauthorized",
                _ => "rejected",
            };
            return Err(EffectFailure::permanent(
                kind,
                format!(
                    "{what}: Consul answered HTTP {}{}",
                    status.as_u16(),
                    web::body_note(&text)
                ),
            ));
        }
        let broken = |why: &str| {
            EffectFailure::retryable("unavailable", format!("{what}: unexpected answer: {why}"))
        };
        match call.op {
            "kv_get" => {
                let entries: Vec<serde_json::Value> =
                    serde_json::from_slice(&raw).map_err(|e| broken(&e.to_string()))?;
                let Some(entry) = entries.first() else {
                    return Ok(Value::Null);
                };
                match &entry["Value"] {
                    serde_json::Value::Null => Ok(Value::Str(String::new())),
                    serde_json::Value::String(b64) => {
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(b64)
                            .map_err(|e| broken(&format!("Value is not base64: {e}")))?;
                        Ok(decode_value(&bytes))
                    }
                    _ => Err(broken("Value is not a string")),
                }
            }
            "kv_put" | "kv_cas" => {
                let stored = match std::str::from_utf8(&raw).map(str::trim) {
                    Ok("true") => true,
                    Ok("false") => false,
                    _ => return Err(broken("expected true or false")),
                };
                if call.op == "kv_cas" {
                    Ok(Value::Bool(stored))
                } else if stored {
                    Ok(Value::Null)
                } else {
                    // A plain PUT answers false only when the key is locked.
                    Err(EffectFailure::retryable(
                        "conflict",
                        format!("{what}: Consul did not store the value (the key is locked)"),
                    ))
                }
            }
            "register" => Ok(Value::Null),
            _ => {
                let entries: Vec<serde_json::Value> =
                    serde_json::from_slice(&raw).map_err(|e| broken(&e.to_string()))?;
                let mut out = Vec::with_capacity(entries.len());
                for e in &entries {
                    let svc = &e["Service"];
                    let addr = match svc["Address"].as_str() {
                        Some(a) if !a.is_empty() => a,
                        _ => e["Node"]["Address"].as_str().unwrap_or(""),
                    };
                    let port = svc["Port"]
                        .as_u64()
                        .and_then(|p| u16::try_from(p).ok())
                        .ok_or_else(|| broken("Service.Port is not a port"))?;
                    out.push(instance(addr, port));
                }
                Ok(Value::List(out))
            }
        }
    }
}

fn unknown(op: &str) -> EffectFailure {
    EffectFailure::permanent("unknown_effect", format!("consul has no operation {op:?}"))
}

impl Integration for ConsulIntegration {
    fn name(&self) -> &'static str {
        "consul"
    }

    fn operations(&self) -> &'static [&'static str] {
        OPERATIONS
    }

    async fn perform(&self, call: EffectCall<'_>) -> Result<Value, EffectFailure> {
        let params: &[&str] = match call.op {
            "kv_get" => &["key"],
            "kv_put" => &["key", "value"],
            "kv_cas" => &["key", "value", "index"],
            "register" => &["service", "address", "port"],
            "discover" => &["service"],
            other => return Err(unknown(other)),
        };
        args::expect_arity(&format!("consul.{}", call.op), params, &call.args)?;
        match &self.mode {
            Mode::Embedded(store) => self.embedded_perform(store, &call),
            Mode::Agent { .. } => self.agent_perform(&call).await,
        }
    }

    async fn health(&self) -> Health {
        let Mode::Agent {
            client, url, token, ..
        } = &self.mode
        else {
            let g = self.store().map(ConsulStore::lock);
            let keys = g.as_ref().map_or(0, |g| g.kv.len());
            return Health::up(format!("embedded: {keys} keys"));
        };
        let mut u = url.clone();
        if let Ok(mut p) = u.path_segments_mut() {
            p.pop_if_empty().extend(["v1", "status", "leader"]);
        }
        let mut rb = client.get(u);
        if let Some(t) = token {
            rb = rb.header("X-Consul-Token", t.expose());
        }
        match rb.send().await {
            Ok(r) if r.status().is_success() => {
                let leader = web::read_text(r, 1024).await.unwrap_or_default();
                let leader = leader.trim().trim_matches('"');
                if leader.is_empty() {
                    Health::down("the Consul agent knows no leader")
                } else {
                    Health::up(format!("Consul leader {leader}"))
                }
            }
            Ok(r) => Health::down(format!(
                "/v1/status/leader answered HTTP {}",
                r.status().as_u16()
            )),
            Err(e) => Health::down(web::transport_failure("consul", e).message),
        }
    }

    fn resources(&self) -> Vec<ResourceDecl> {
        // A Consul agent has no request quota to share out.
        Vec::new()
    }

    fn summarize(&self, call: &EffectCall<'_>, result: &Result<Value, EffectFailure>) -> String {
        // The token is never in a call.
        summary::call("consul", call, result)
    }
}
