//! Dispatch through `Integrations`, built from config.

mod common;

use std::time::{Duration, Instant};

use drover_integrations::memcache::{EmbeddedCache, MemcacheIntegration};
use drover_integrations::{
    BuildError, Config, EffectCall, EffectFailure, Health, Integration, Integrations,
    MemcacheConfig, ResourceDecl, ResourceLimit,
};
use drover_ir::catalog::BUILTIN_EFFECTS;
use drover_ir::Value;

fn s(x: &str) -> Value {
    Value::Str(x.into())
}

#[tokio::test]
async fn an_empty_config_runs_everything_embedded() {
    let reg = Integrations::from_config(&Config::default()).await.unwrap();
    let served: Vec<&str> = reg.namespaces().collect();
    for ns in [
        "consul",
        "http",
        "logstash",
        "memcache",
        "pagerduty",
        "rabbitmq",
        "slack",
        "statsd",
    ] {
        assert!(served.contains(&ns), "{ns} missing from {served:?}");
        assert!(reg.is_embedded(ns), "{ns}");
    }
    let key = s(&common::unique("reg"));
    reg.perform(
        "memcache.set",
        vec![key.clone(), Value::Int(5), Value::Int(0)],
        "run/1",
        1,
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        reg.perform("memcache.incr", vec![key, Value::Int(2)], "run/2", 1, None)
            .await,
        Ok(Value::Int(7))
    );
    reg.perform(
        "statsd.count",
        vec![s("runs"), Value::Int(2), Value::Null],
        "run/3",
        1,
        None,
    )
    .await
    .unwrap();
    let m = reg.embedded_metrics().unwrap();
    assert_eq!(m.counts.values().sum::<f64>(), 2.0);
    for (ns, h) in reg.health().await {
        // http cannot answer arbitrary URLs without config.
        let want = if ns == "http" {
            drover_integrations::HealthStatus::Degraded
        } else {
            drover_integrations::HealthStatus::Up
        };
        assert_eq!(h.status, want, "{ns}: {h:?}");
    }
    assert!(reg.resources().is_empty());
}

#[tokio::test]
async fn dispatch_refuses_what_it_cannot_serve() {
    let reg = Integrations::from_config(&Config::default()).await.unwrap();
    for (effect, args, kind) in [
        ("nosuch.post", vec![s("c")], "unknown_effect"),
        (
            "http.request",
            vec![
                s("GET"),
                s("https://example.com/"),
                Value::Null,
                Value::Null,
            ],
            "unavailable",
        ),
        ("memcache.frob", vec![], "unknown_effect"),
        ("memcache", vec![], "unknown_effect"),
        ("memcache.get", vec![s("a"), s("b")], "bad_argument"),
    ] {
        let e = reg.perform(effect, args, "r/1", 1, None).await.unwrap_err();
        assert_eq!(
            (e.kind.as_str(), e.retryable),
            (kind, false),
            "{effect}: {e}"
        );
    }
    let past = Instant::now() - Duration::from_millis(1);
    let e = reg
        .perform("memcache.get", vec![s("k")], "r/1", 2, Some(past))
        .await
        .unwrap_err();
    assert_eq!((e.kind.as_str(), e.retryable), ("timeout", true));
    assert_eq!(
        e.to_value(),
        Value::record([("kind", s("timeout")), ("message", s(&e.message))])
    );
}

#[tokio::test]
async fn operations_match_the_catalog() {
    let reg = Integrations::from_config(&Config::default()).await.unwrap();
    for ns in reg.namespaces() {
        let ops: Vec<String> = reg
            .get(ns)
            .unwrap()
            .operation_names()
            .iter()
            .map(|o| format!("{ns}.{o}"))
            .collect();
        let catalog: Vec<&str> = BUILTIN_EFFECTS
            .iter()
            .map(|e| e.name)
            .filter(|n| n.starts_with(&format!("{ns}.")))
            .collect();
        assert_eq!(ops, catalog);
    }
}

struct Wrong;

impl Integration for Wrong {
    fn name(&self) -> &'static str {
        "memcache"
    }
    fn operations(&self) -> &'static [&'static str] {
        &["get"]
    }
    async fn perform(&self, _: EffectCall<'_>) -> Result<Value, EffectFailure> {
        Ok(Value::Null)
    }
    async fn health(&self) -> Health {
        Health::up("")
    }
    fn resources(&self) -> Vec<ResourceDecl> {
        Vec::new()
    }
    fn summarize(&self, _: &EffectCall<'_>, _: &Result<Value, EffectFailure>) -> String {
        String::new()
    }
}

#[test]
fn registering_checks_operations_and_duplicates() {
    let mut reg = Integrations::new();
    assert!(matches!(
        reg.register(Wrong),
        Err(BuildError::OperationsMismatch { .. })
    ));
    reg.register(MemcacheIntegration::new(EmbeddedCache::default(), 1024))
        .unwrap();
    assert!(matches!(
        reg.register(MemcacheIntegration::new(EmbeddedCache::default(), 1024)),
        Err(BuildError::Duplicate("memcache"))
    ));
}

#[test]
fn summaries_name_arguments_and_cut_long_values() {
    let m = MemcacheIntegration::new(EmbeddedCache::default(), 1024);
    let call = EffectCall::new(
        "set",
        vec![s("user:1"), s(&"x".repeat(5000)), Value::Int(60)],
        "r/1",
    );
    let line = m.summarize(&call, &Ok(Value::Null));
    assert!(
        line.starts_with("memcache.set key=\"user:1\" value=\"xxx"),
        "{line}"
    );
    assert!(
        line.contains("…(5000 bytes)")
            && line.contains("ttl_s=60")
            && line.ends_with("-> Ok(null)"),
        "{line}"
    );
    assert!(line.len() < 200, "{line}");
    let failed = m.summarize(&call, &Err(EffectFailure::retryable("unavailable", "down")));
    assert!(
        failed.ends_with("-> Err(unavailable: down, retryable)"),
        "{failed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_with_servers_uses_them() {
    let Some(addr) = common::memcached() else {
        return;
    };
    let listener = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut config = Config {
        memcache: Some(MemcacheConfig::new(vec![addr])),
        ..Config::default()
    };
    config
        .apply_env(|k| {
            (k == "DROVER_STATSD_ADDR").then(|| listener.local_addr().unwrap().to_string())
        })
        .unwrap();
    let reg = Integrations::from_config(&config).await.unwrap();
    assert!(!reg.is_embedded("memcache") && !reg.is_embedded("statsd"));
    assert!(reg.embedded_metrics().is_none());
    let key = s(&common::unique("reg-real"));
    reg.perform(
        "memcache.set",
        vec![key.clone(), s("v"), Value::Int(60)],
        "r/1",
        1,
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        reg.perform("memcache.get", vec![key], "r/2", 1, None).await,
        Ok(s("v"))
    );
    reg.perform(
        "statsd.gauge",
        vec![s("g"), Value::Int(1), Value::Null],
        "r/3",
        1,
        None,
    )
    .await
    .unwrap();
    let mut buf = [0u8; 1500];
    let n = tokio::time::timeout(Duration::from_secs(2), listener.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"g:1|g");
    assert_eq!(
        reg.resources(),
        [ResourceDecl {
            name: "memcache.connections".into(),
            limit: ResourceLimit::Concurrency(8)
        }]
    );
}
