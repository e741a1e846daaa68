//! The PagerDuty integration: Events API v2 (`POST /v2/enqueue`) for
//! `pagerduty.trigger`, `acknowledge` and `resolve`, or an embedded recorder
//! that keeps incidents by dedup key when there is no `[pagerduty]` section.
//!
//! A trigger's dedup key is the effect id, so every retry of one trigger
//! (inside an attempt or by the node's retry policy) names the same alert
//! and PagerDuty opens one incident. Answers are `{dedup_key, status}`.
//! PagerDuty answers 202 when it takes an event; 429 and 5xx are retried as
//! [`crate::web`] describes and 400 is a permanent `rejected` failure.
//! Events are rate limited per routing key (`rate_per_minute`).

pub mod config;

use std::collections::HashMap;
use std::sync::Mutex;

use drover_ir::Value;
use serde_json::json;

pub use config::PagerDutyConfig;

use crate::args::{self, bad};
use crate::web::{self, RateLimiter, Retrying};
use crate::{
    summary, EffectCall, EffectFailure, Health, Integration, ResourceDecl, ResourceLimit, Secret,
};

/// The operations, in catalog order.
pub const OPERATIONS: &[&str] = &["trigger", "acknowledge", "resolve"];

/// How many incidents the embedded recorder keeps.
pub const INCIDENT_LIMIT: usize = 10_000;

/// The severities PagerDuty accepts.
pub const SEVERITIES: &[&str] = &["critical", "error", "warning", "info"];

/// The PagerDuty integration.
pub struct PagerDutyIntegration {
    mode: Mode,
    /// The routing key's bucket; none when embedded (no remote quota).
    limiter: Option<RateLimiter>,
    per_minute: u32,
}

enum Mode {
    Api {
        client: reqwest::Client,
        url: String,
        routing_key: Secret,
        max_attempts: u32,
    },
    Embedded(Incidents),
}

/// Where an incident stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncidentStatus {
    /// Open, nobody on it.
    Triggered,
    /// Someone is on it.
    Acknowledged,
    /// Closed.
    Resolved,
}

/// An incident the embedded recorder holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Incident {
    /// Its dedup key.
    pub dedup_key: String,
    /// Where it stands.
    pub status: IncidentStatus,
    /// The trigger's summary.
    pub summary: String,
    /// `critical`, `error`, `warning` or `info`.
    pub severity: String,
    /// The trigger's source.
    pub source: String,
    /// The trigger's custom details.
    pub details: serde_json::Value,
    /// How many events named it (a retried trigger adds one, not an incident).
    pub events: u32,
    order: u64,
}

/// The embedded recorder: incidents by dedup key, deduplicated as
/// PagerDuty does (a trigger for an open incident adds to it).
#[derive(Debug, Default)]
pub struct Incidents {
    inner: Mutex<(HashMap<String, Incident>, u64)>,
}

impl Incidents {
    /// The incidents, oldest first.
    pub fn list(&self) -> Vec<Incident> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<Incident> = g.0.values().cloned().collect();
        v.sort_by_key(|i| i.order);
        v
    }

    fn event(&self, key: &str, ev: &Event) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.1 += 1;
        let order = g.1;
        let map = &mut g.0;
        match (ev, map.get_mut(key)) {
            (Event::Trigger { .. }, Some(i)) if i.status != IncidentStatus::Resolved => {
                i.events += 1;
            }
            (
                Event::Trigger {
                    summary,
                    severity,
                    source,
                    details,
                },
                _,
            ) => {
                if map.len() >= INCIDENT_LIMIT && !map.contains_key(key) {
                    // Forget a resolved incident first, else the oldest.
                    let victim = map
                        .values()
                        .filter(|i| i.status == IncidentStatus::Resolved)
                        .min_by_key(|i| i.order)
                        .or_else(|| map.values().min_by_key(|i| i.order))
                        .map(|i| i.dedup_key.clone());
                    if let Some(v) = victim {
                        map.remove(&v);
                    }
                }
                map.insert(
                    key.to_owned(),
                    Incident {
                        dedup_key: key.to_owned(),
                        status: IncidentStatus::Triggered,
                        summary: summary.clone(),
                        severity: severity.clone(),
                        source: source.clone(),
                        details: details.clone(),
                        events: 1,
                        order,
                    },
                );
            }
            (Event::Acknowledge, Some(i)) => {
                i.events += 1;
                if i.status == IncidentStatus::Triggered {
                    i.status = IncidentStatus::Acknowledged;
                }
            }
            (Event::Resolve, Some(i)) => {
                i.events += 1;
                i.status = IncidentStatus::Resolved;
            }
            // PagerDuty takes events for unknown keys and drops them.
            (_, None) => {}
        }
    }
}

enum Event {
    Trigger {
        summary: String,
        severity: String,
        source: String,
        details: serde_json::Value,
    },
    Acknowledge,
    Resolve,
}

/// The severity argument: `"critical"`, or the typed enum's `#Critical`.
fn severity(v: &Value) -> Result<String, EffectFailure> {
    let s = match v {
        Value::Str(s) => s.as_str(),
        Value::Variant(var) if var.payload.is_null() => var.tag.as_str(),
        other => {
            return Err(bad(
                "severity",
                format!(
                    "expected critical, error, warning or info, got {}",
                    other.kind()
                ),
            ))
        }
    };
    let lower = s.to_ascii_lowercase();
    if SEVERITIES.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(bad(
            "severity",
            format!("expected critical, error, warning or info, got {s:?}"),
        ))
    }
}

fn dedup_key(v: &Value) -> Result<String, EffectFailure> {
    let k = args::string(v, "dedup_key")?;
    if k.is_empty() || k.len() > 255 {
        return Err(bad("dedup_key", "must be 1 to 255 characters"));
    }
    Ok(k.to_owned())
}

fn parse(call: &EffectCall<'_>) -> Result<(String, Event), EffectFailure> {
    let a = &call.args;
    match call.op {
        "trigger" => {
            args::expect_arity(
                "pagerduty.trigger",
                &["summary", "severity", "source", "details"],
                a,
            )?;
            let summary = args::string(&a[0], "summary")?;
            if summary.trim().is_empty() {
                return Err(bad("summary", "must not be empty"));
            }
            let source = args::string(&a[2], "source")?;
            if source.trim().is_empty() {
                return Err(bad("source", "must not be empty"));
            }
            if call.effect_id.is_empty() || call.effect_id.len() > 255 {
                return Err(bad(
                    "dedup_key",
                    "the effect id must be 1 to 255 characters",
                ));
            }
            Ok((
                call.effect_id.to_owned(),
                Event::Trigger {
                    // PagerDuty cuts summaries at 1024 characters.
                    summary: summary::cut(summary, 1024).to_owned(),
                    severity: severity(&a[1])?,
                    source: source.to_owned(),
                    details: a[3].to_json(),
                },
            ))
        }
        "acknowledge" | "resolve" => {
            args::expect_arity(&format!("pagerduty.{}", call.op), &["dedup_key"], a)?;
            let ev = if call.op == "resolve" {
                Event::Resolve
            } else {
                Event::Acknowledge
            };
            Ok((dedup_key(&a[0])?, ev))
        }
        other => Err(EffectFailure::permanent(
            "unknown_effect",
            format!("pagerduty has no operation {other:?}"),
        )),
    }
}

fn ack(dedup_key: &str, status: &str) -> Value {
    Value::record([
        ("dedup_key", Value::Str(dedup_key.to_owned())),
        ("status", Value::Str(status.to_owned())),
    ])
}

impl PagerDutyIntegration {
    /// The integration against the Events API as configured.
    pub fn new(c: &PagerDutyConfig) -> Result<Self, String> {
        Ok(PagerDutyIntegration {
            mode: Mode::Api {
                client: web::client(c.timeout)?,
                url: format!("{}/v2/enqueue", c.url),
                routing_key: c.routing_key.clone(),
                max_attempts: c.max_attempts,
            },
            limiter: Some(RateLimiter::new(
                f64::from(c.rate_per_minute) / 60.0,
                c.rate_per_minute,
            )),
            per_minute: c.rate_per_minute,
        })
    }

    /// The embedded fallback: events go to an [`Incidents`] recorder.
    pub fn embedded() -> Self {
        let per_minute = config::defaults::RATE_PER_MINUTE;
        PagerDutyIntegration {
            mode: Mode::Embedded(Incidents::default()),
            limiter: None,
            per_minute,
        }
    }

    /// The embedded recorder, when embedded.
    pub fn incidents(&self) -> Option<&Incidents> {
        match &self.mode {
            Mode::Embedded(i) => Some(i),
            Mode::Api { .. } => None,
        }
    }
}

impl Integration for PagerDutyIntegration {
    fn name(&self) -> &'static str {
        "pagerduty"
    }

    fn operations(&self) -> &'static [&'static str] {
        OPERATIONS
    }

    async fn perform(&self, call: EffectCall<'_>) -> Result<Value, EffectFailure> {
        let what = format!("pagerduty.{}", call.op);
        let (key, event) = parse(&call)?;
        if let Some(l) = &self.limiter {
            l.take(&what, "events", call.deadline).await?;
        }
        let (client, url, routing_key, max_attempts) = match &self.mode {
            Mode::Embedded(incidents) => {
                incidents.event(&key, &event);
                return Ok(ack(&key, "success"));
            }
            Mode::Api {
                client,
                url,
                routing_key,
                max_attempts,
            } => (client, url, routing_key, *max_attempts),
        };
        let mut body = json!({
            "routing_key": routing_key.expose(),
            "dedup_key": key,
        });
        match event {
            Event::Trigger {
                summary,
                severity,
                source,
                details,
            } => {
                body["event_action"] = json!("trigger");
                let mut payload = json!({
                    "summary": summary,
                    "severity": severity,
                    "source": source,
                });
                if !details.is_null() {
                    payload["custom_details"] = details;
                }
                body["payload"] = payload;
            }
            Event::Acknowledge => body["event_action"] = json!("acknowledge"),
            Event::Resolve => body["event_action"] = json!("resolve"),
        }
        let retrying = Retrying {
            max_sends: max_attempts,
            deadline: call.deadline,
        };
        let resp = web::send(&what, retrying, || client.post(url).json(&body))
            .await?
            .map_err(|g| g.failure(&what))?;
        let status = resp.status();
        let text = web::read_text(resp, 1 << 16)
            .await
            .map_err(|e| web::transport_failure(&what, e))?;
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if status.is_success() {
            let key = answer["dedup_key"].as_str().unwrap_or(&key).to_owned();
            let st = answer["status"].as_str().unwrap_or("success");
            return Ok(ack(&key, st));
        }
        let detail = match answer["errors"].as_array() {
            Some(errs) => errs
                .iter()
                .filter_map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            None => summary::cut(text.trim(), 200).to_owned(),
        };
        let kind = match status.as_u16() {
            401 | 403 => "unauthorized",
            _ => "rejected",
        };
        Err(EffectFailure::permanent(
            kind,
            format!(
                "{what}: PagerDuty answered HTTP {}: {detail}",
                status.as_u16()
            ),
        ))
    }

    async fn health(&self) -> Health {
        match &self.mode {
            Mode::Embedded(i) => Health::up(format!(
                "embedded: {} incidents recorded",
                i.inner.lock().unwrap_or_else(|p| p.into_inner()).0.len()
            )),
            // The Events API has no health endpoint and any event would
            // page someone: check that the server answers HTTP at all.
            Mode::Api { client, url, .. } => match client.get(url).send().await {
                Ok(r) => Health::up(format!(
                    "Events API reachable (GET answered {})",
                    r.status().as_u16()
                )),
                Err(e) => Health::down(web::transport_failure("pagerduty", e).message),
            },
        }
    }

    fn resources(&self) -> Vec<ResourceDecl> {
        if self.limiter.is_none() {
            return Vec::new();
        }
        vec![ResourceDecl {
            name: "pagerduty.events".into(),
            limit: ResourceLimit::Rate {
                per_second: f64::from(self.per_minute) / 60.0,
                burst: self.per_minute,
            },
        }]
    }

    fn summarize(&self, call: &EffectCall<'_>, result: &Result<Value, EffectFailure>) -> String {
        // No argument is a secret; the routing key is never in a call.
        summary::call("pagerduty", call, result)
    }
}
