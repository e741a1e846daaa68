//! The generic HTTP integration: `http.request(method, url, headers, body)`.
//!
//! Every request carries `Idempotency-Key: <effect id>` (replacing one the
//! workflow set), the same on every send of one effect, so servers that
//! honour the header apply a retried request once. 429 and 5xx answers are
//! retried as [`crate::web`] describes; any other answer, 4xx included, is
//! the result `{status, headers, body}`: headers as `[[name, value], ...]`
//! in order, body as JSON when the response says JSON and parses, else as
//! a string. Hosts listed in `[http] hosts` are rate limited per host.
//!
//! Trace summaries show the method, the URL without user info or secret
//! query values, the headers without credentials, and bodies only as their
//! size: a body may be a login or a token.
//!
//! Without an `[http]` section the effect cannot answer arbitrary URLs, so
//! it fails with a permanent `unavailable` naming the section to add.

pub mod config;

use std::collections::HashMap;

use drover_ir::Value;
use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE};

pub use config::{HostRate, HttpConfig};

use crate::args::{self, bad};
use crate::web::{self, RateLimiter, Retrying};
use crate::{
    summary, EffectCall, EffectFailure, Health, Integration, ResourceDecl, ResourceLimit, Secret,
};

/// The operations, in catalog order.
pub const OPERATIONS: &[&str] = &["request"];

/// The methods `http.request` sends.
pub const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Header names whose values summaries never show.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
    "x-consul-token",
];

/// Query parameters whose values summaries never show.
const SECRET_PARAMS: &[&str] = &[
    "token",
    "access_token",
    "api_key",
    "apikey",
    "key",
    "secret",
    "password",
    "signature",
    "sig",
];

/// The HTTP integration.
pub struct HttpIntegration {
    mode: Option<Client>,
}

struct Client {
    client: reqwest::Client,
    max_attempts: u32,
    max_body_bytes: usize,
    hosts: HashMap<String, (HostRate, RateLimiter)>,
}

/// A validated request.
struct Request {
    method: reqwest::Method,
    url: reqwest::Url,
    headers: reqwest::header::HeaderMap,
    body: Option<Vec<u8>>,
}

fn parse(call: &EffectCall<'_>) -> Result<Request, EffectFailure> {
    let a = &call.args;
    let m = args::string(&a[0], "method")?.to_ascii_uppercase();
    if !METHODS.contains(&m.as_str()) {
        return Err(bad(
            "method",
            format!("expected one of {}, got {m:?}", METHODS.join(", ")),
        ));
    }
    let method = reqwest::Method::from_bytes(m.as_bytes()).map_err(|e| bad("method", e))?;
    let u = args::string(&a[1], "url")?;
    let url = reqwest::Url::parse(u).map_err(|e| bad("url", format!("{e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad(
            "url",
            "expected an http:// or https:// URL with a host",
        ));
    }
    let mut headers = reqwest::header::HeaderMap::new();
    let mut add = |k: &str, v: &str| -> Result<(), EffectFailure> {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| bad("headers", format!("{k:?} is not a header name")))?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| bad("headers", format!("the value of {k} is not a header value")))?;
        headers.append(name, value);
        Ok(())
    };
    match &a[2] {
        Value::Null => {}
        Value::List(items) => {
            for item in items {
                match item {
                    Value::List(kv) if kv.len() == 2 => add(
                        args::string(&kv[0], "headers")?,
                        args::string(&kv[1], "headers")?,
                    )?,
                    other => {
                        return Err(bad(
                            "headers",
                            format!(
                                "each header must be a [name, value] pair, got {}",
                                other.kind()
                            ),
                        ))
                    }
                }
            }
        }
        Value::Map(m) => {
            for (k, v) in m {
                add(args::string(k, "headers")?, args::string(v, "headers")?)?;
            }
        }
        other => {
            return Err(bad(
                "headers",
                format!(
                    "expected a list of [name, value] pairs, got {}",
                    other.kind()
                ),
            ))
        }
    }
    headers.remove("idempotency-key");
    let key = HeaderValue::from_str(call.effect_id)
        .map_err(|_| bad("headers", "the effect id is not a header value"))?;
    headers.insert("idempotency-key", key);
    let body = match &a[3] {
        Value::Null => None,
        Value::Str(s) if headers.contains_key(CONTENT_TYPE) => Some(s.clone().into_bytes()),
        Value::Bytes(b) => Some(b.clone()),
        other => {
            if !headers.contains_key(CONTENT_TYPE) {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            Some(
                serde_json::to_vec(&other.to_json())
                    .map_err(|e| bad("body", format!("cannot be written as JSON: {e}")))?,
            )
        }
    };
    Ok(Request {
        method,
        url,
        headers,
        body,
    })
}

/// `url` with user info and secret-looking query values replaced.
fn redact_url(u: &str) -> String {
    let Ok(mut url) = reqwest::Url::parse(u) else {
        return u.to_owned();
    };
    if !url.username().is_empty() || url.password().is_some() {
        let _ = url.set_username(Secret::REDACTED);
        let _ = url.set_password(None);
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let secret = SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str());
                let v = if secret {
                    Secret::REDACTED.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

fn secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_HEADERS.contains(&n.as_str())
        || n.contains("token")
        || n.contains("secret")
        || n.contains("password")
        || (n.contains("key") && n != "idempotency-key")
}

fn redact_headers(v: &Value) -> Value {
    let redact = |k: &Value, val: &Value| match k.as_str() {
        Some(name) if secret_header(name) => Value::Str(Secret::REDACTED.into()),
        _ => val.clone(),
    };
    match v {
        Value::List(items) => Value::List(
            items
                .iter()
                .map(|item| match item {
                    Value::List(kv) if kv.len() == 2 => {
                        Value::List(vec![kv[0].clone(), redact(&kv[0], &kv[1])])
                    }
                    other => other.clone(),
                })
                .collect(),
        ),
        Value::Map(m) => Value::Map(m.iter().map(|(k, v)| (k.clone(), redact(k, v))).collect()),
        other => other.clone(),
    }
}

/// A body as its kind and approximate size, for summaries.
fn body_size(v: &Value) -> Value {
    match v {
        Value::Null => Value::Null,
        Value::Str(s) => Value::Str(format!("<string, {} bytes>", s.len())),
        other => Value::Str(format!(
            "<{}, ~{} bytes>",
            other.kind(),
            other.approx_size()
        )),
    }
}

impl HttpIntegration {
    /// The integration as configured.
    pub fn new(c: &HttpConfig) -> Result<Self, String> {
        Ok(HttpIntegration {
            mode: Some(Client {
                client: web::client(c.timeout)?,
                max_attempts: c.max_attempts,
                max_body_bytes: c.max_body_bytes,
                hosts: c
                    .hosts
                    .iter()
                    .map(|(h, r)| {
                        (
                            h.clone(),
                            (*r, RateLimiter::new(r.rate_per_second, r.burst)),
                        )
                    })
                    .collect(),
            }),
        })
    }

    /// The fallback without config: every request fails `unavailable`.
    pub fn unconfigured() -> Self {
        HttpIntegration { mode: None }
    }
}

impl Integration for HttpIntegration {
    fn name(&self) -> &'static str {
        "http"
    }

    fn operations(&self) -> &'static [&'static str] {
        OPERATIONS
    }

    async fn perform(&self, call: EffectCall<'_>) -> Result<Value, EffectFailure> {
        if call.op != "request" {
            return Err(EffectFailure::permanent(
                "unknown_effect",
                format!("http has no operation {:?}", call.op),
            ));
        }
        args::expect_arity(
            "http.request",
            &["method", "url", "headers", "body"],
            &call.args,
        )?;
        let req = parse(&call)?;
        let Some(c) = &self.mode else {
            return Err(EffectFailure::permanent(
                "unavailable",
                "http.request needs an [http] section in the integration config \
                 (an empty one will do) or DROVER_HTTP_TIMEOUT_MS; this node has none",
            ));
        };
        let host = req.url.host_str().unwrap_or("").to_ascii_lowercase();
        let with_port = req
            .url
            .port()
            .map(|p| format!("{host}:{p}"))
            .unwrap_or_default();
        let limiter = c.hosts.get(&with_port).or_else(|| c.hosts.get(&host));
        if let Some((_, l)) = limiter {
            l.take("http.request", "host", call.deadline).await?;
        }
        let retrying = Retrying {
            max_sends: c.max_attempts,
            deadline: call.deadline,
        };
        let resp = web::send("http.request", retrying, || {
            let rb = c
                .client
                .request(req.method.clone(), req.url.clone())
                .headers(req.headers.clone());
            match &req.body {
                Some(b) => rb.body(b.clone()),
                None => rb,
            }
        })
        .await?
        .map_err(|g| g.failure("http.request"))?;
        let status = resp.status();
        let headers: Vec<Value> = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                Value::List(vec![
                    Value::Str(k.as_str().to_owned()),
                    Value::Str(String::from_utf8_lossy(v.as_bytes()).into_owned()),
                ])
            })
            .collect();
        let json = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.contains("json"));
        let bytes = web::read_bytes(resp, c.max_body_bytes + 1)
            .await
            .map_err(|e| web::transport_failure("http.request", e))?;
        if bytes.len() > c.max_body_bytes {
            return Err(EffectFailure::permanent(
                "too_large",
                format!(
                    "http.request: the response body is over max_body_bytes ({})",
                    c.max_body_bytes
                ),
            ));
        }
        let body = match json.then(|| serde_json::from_slice::<serde_json::Value>(&bytes)) {
            Some(Ok(j)) => Value::from_json(j),
            _ => Value::Str(String::from_utf8_lossy(&bytes).into_owned()),
        };
        Ok(Value::record([
            ("status", Value::Int(i64::from(status.as_u16()))),
            ("headers", Value::List(headers)),
            ("body", body),
        ]))
    }

    async fn health(&self) -> Health {
        match &self.mode {
            Some(c) => Health::up(format!("{} rate-limited hosts", c.hosts.len())),
            None => Health::degraded("not configured: http.request fails until [http] is set"),
        }
    }

    fn resources(&self) -> Vec<ResourceDecl> {
        let Some(c) = &self.mode else {
            return Vec::new();
        };
        let mut out: Vec<ResourceDecl> = c
            .hosts
            .iter()
            .map(|(h, (r, _))| ResourceDecl {
                name: format!("http.host.{h}"),
                limit: ResourceLimit::Rate {
                    per_second: r.rate_per_second,
                    burst: r.burst,
                },
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    fn summarize(&self, call: &EffectCall<'_>, result: &Result<Value, EffectFailure>) -> String {
        let mut c = call.clone();
        if let Some(Value::Str(u)) = c.args.get(1) {
            c.args[1] = Value::Str(redact_url(u));
        }
        if let Some(h) = c.args.get(2) {
            c.args[2] = redact_headers(h);
        }
        // Bodies may carry credentials (a login, a token endpoint's answer)
        // and response headers may set cookies: show sizes and the status.
        if let Some(b) = c.args.get(3) {
            c.args[3] = body_size(b);
        }
        let shown = result.as_ref().map(|v| {
            Value::record([
                ("status", v.get_field("status").cloned().unwrap_or_default()),
                (
                    "body",
                    v.get_field("body").map(body_size).unwrap_or_default(),
                ),
            ])
        });
        summary::call("http", &c, &shown.map_err(Clone::clone))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_hide_credentials_in_urls_and_headers() {
        assert_eq!(
            redact_url("https://u:pw@api.example.com/x?token=abc&page=2"),
            "https://%5Bredacted%5D@api.example.com/x?token=%5Bredacted%5D&page=2"
        );
        assert!(secret_header("Authorization"));
        assert!(secret_header("X-Goog-Api-Key"));
        assert!(!secret_header("Idempotency-Key"));
        assert!(!secret_header("Accept"));
    }
}
