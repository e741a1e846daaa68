//! memcached going away and coming back, and memcached's authentication,
//! each on a memcached this test starts and owns.

mod common;

use std::time::Duration;

use drover_integrations::memcache::{MemcacheIntegration, ServerCache};
use drover_integrations::{EffectCall, HealthStatus, Integration, MemcacheConfig, Secret};
use drover_ir::Value;

fn config(addr: String) -> MemcacheConfig {
    let mut c = MemcacheConfig::new(vec![addr]);
    c.pool = 4;
    c.timeout = Duration::from_millis(300);
    c
}

async fn perform(
    m: &MemcacheIntegration<ServerCache>,
    op: &str,
    args: Vec<Value>,
) -> Result<Value, drover_integrations::EffectFailure> {
    m.perform(EffectCall::new(op, args, "run/1")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memcached_restart_is_survived() {
    let Some(mut server) = common::OwnMemcached::start(&[]) else {
        return;
    };
    let m = MemcacheIntegration::new(ServerCache::new(&config(server.addr())).unwrap(), 1 << 20);
    let k = |n: &str| Value::Str(format!("restart-{n}"));

    // Fill the pool with live connections, so the restart strands them.
    let set = |n: i64| {
        perform(
            &m,
            "set",
            vec![k(&n.to_string()), Value::Int(n), Value::Int(0)],
        )
    };
    let (a, b, c, d) = tokio::join!(set(0), set(1), set(2), set(3));
    for r in [a, b, c, d] {
        r.unwrap();
    }

    server.kill();
    // One failure during the outage; the other three pooled connections
    // are still stale when memcached comes back.
    let e = perform(&m, "get", vec![k("0")]).await.unwrap_err();
    assert!(e.retryable, "an outage is retryable: {e:?}");
    assert!(
        matches!(e.kind.as_str(), "unavailable" | "timeout"),
        "{e:?}"
    );

    server.restart();
    // The very next operation reconnects and succeeds: no stale connection
    // from before the restart is used.
    assert_eq!(
        perform(&m, "get", vec![k("0")]).await.unwrap(),
        Value::Null,
        "a restart empties memcached"
    );
    for n in 0..8 {
        perform(&m, "set", vec![k("after"), Value::Int(n), Value::Int(0)])
            .await
            .unwrap_or_else(|e| panic!("operation {n} after the restart failed: {e}"));
    }
    assert_eq!(m.health().await.status, HealthStatus::Up);
}

/// A restart with no operation during the outage: the idle connections
/// are checked before reuse, so the first operation after still succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_restart_is_survived() {
    let Some(mut server) = common::OwnMemcached::start(&[]) else {
        return;
    };
    let m = MemcacheIntegration::new(ServerCache::new(&config(server.addr())).unwrap(), 1 << 20);
    perform(
        &m,
        "set",
        vec![Value::Str("q".into()), Value::Int(1), Value::Int(0)],
    )
    .await
    .unwrap();
    server.restart();
    tokio::time::sleep(drover_integrations::memcache::IDLE_CHECK).await;
    assert_eq!(
        perform(&m, "get", vec![Value::Str("q".into())])
            .await
            .unwrap(),
        Value::Null
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_a_retryable_failure() {
    let port = common::free_port();
    let m = MemcacheIntegration::new(
        ServerCache::new(&config(format!("127.0.0.1:{port}"))).unwrap(),
        1 << 20,
    );
    let e = perform(&m, "get", vec![Value::Str("k".into())])
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind.as_str(), e.retryable),
        ("unavailable", true),
        "{e:?}"
    );
    assert_eq!(m.health().await.status, HealthStatus::Down);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ascii_authentication_uses_the_password_and_never_shows_it() {
    let dir = std::env::temp_dir().join(common::unique("auth"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("auth");
    std::fs::write(&file, "drover:s3cret-pw\n").unwrap();
    let Some(server) = common::OwnMemcached::start(&["-Y", file.to_str().unwrap()]) else {
        return;
    };

    let mut good = config(server.addr());
    good.username = Some("drover".into());
    good.password = Some(Secret::new("s3cret-pw"));
    assert!(
        !format!("{good:?}").contains("s3cret"),
        "Debug shows the password"
    );
    let m = MemcacheIntegration::new(ServerCache::new(&good).unwrap(), 1 << 20);
    perform(
        &m,
        "set",
        vec![Value::Str("a".into()), Value::Int(1), Value::Int(0)],
    )
    .await
    .unwrap();
    assert_eq!(
        perform(&m, "get", vec![Value::Str("a".into())])
            .await
            .unwrap(),
        Value::Int(1)
    );

    let mut bad = good.clone();
    bad.password = Some(Secret::new("wrong-pw"));
    let m = MemcacheIntegration::new(ServerCache::new(&bad).unwrap(), 1 << 20);
    let e = perform(&m, "get", vec![Value::Str("a".into())])
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind.as_str(), e.retryable),
        ("auth_failed", false),
        "{e:?}"
    );
    assert!(!e.message.contains("wrong-pw"), "{e:?}");

    let mut none = good.clone();
    none.username = None;
    none.password = None;
    let m = MemcacheIntegration::new(ServerCache::new(&none).unwrap(), 1 << 20);
    assert!(perform(&m, "get", vec![Value::Str("a".into())])
        .await
        .is_err());
    let _ = std::fs::remove_dir_all(dir);
}
