//! memcached restarted in the middle of a run, on a durable node: the
//! cache lookup fails while memcached is down, the retry policy tries again
//! once it is back, the run completes, and the failed attempts show in the
//! trace.

mod common;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use drover::effects::memcache;
use drover::node::Outcome;
use drover::prelude::*;
use drover_integrations::{Config, MemcacheConfig};
use drover_ir::Value;

/// Writes a value, waits, then reads it back and writes again, each cache
/// call with a retry policy.
#[workflow]
pub async fn cache_through_restart(key: String) -> Result<Option<String>, Error> {
    memcache::set(&key, "before", 60).await?;
    sleep(Duration::from_millis(500)).await;
    let found: Option<String> = memcache::get(&key)
        .retry(20, Duration::from_millis(100), Duration::from_millis(500))
        .await?;
    memcache::set(&key, "after", 60)
        .retry(20, Duration::from_millis(100), Duration::from_millis(500))
        .await?;
    Ok(found)
}

/// A memcached of this test's own, on a free port.
struct OwnMemcached {
    port: u16,
    child: Option<Child>,
}

impl OwnMemcached {
    fn start() -> Option<OwnMemcached> {
        let installed = Command::new("sh")
            .args(["-c", "command -v memcached"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !installed {
            let why = "the memcached binary is not installed";
            if std::env::var("DROVER_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
                panic!("{why} (DROVER_REQUIRE_SERVICES=1)");
            }
            eprintln!("skipped: {why}");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut m = OwnMemcached { port, child: None };
        m.restart();
        Some(m)
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn restart(&mut self) {
        self.kill();
        let child = Command::new("memcached")
            .args(["-l", "127.0.0.1", "-p", &self.port.to_string(), "-U", "0"])
            .args(["-m", "16", "-u", "root"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn memcached");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "memcached did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl OwnMemcached {
    /// Integrations with this memcached as the `[memcache]` section.
    fn config(&self) -> Config {
        let mut mc = MemcacheConfig::new(vec![format!("127.0.0.1:{}", self.port)]);
        mc.timeout = Duration::from_millis(300);
        Config {
            memcache: Some(mc),
            ..Config::default()
        }
    }
}

impl Drop for OwnMemcached {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_completes_through_a_memcached_restart() {
    let Some(mut memcached) = OwnMemcached::start() else {
        return;
    };
    let config = memcached.config();
    let (node, _dir) = common::node_with(&config).await;
    let run = node
        .start(
            "cache_through_restart",
            vec![Value::Str("restart-test".into())],
            None,
        )
        .await
        .unwrap();

    let wait_for = |what: &'static str, done: fn(&[drover::node::TraceItem]) -> bool| {
        let node = &node;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let trace = node.trace(run).await.unwrap();
                if done(&trace) {
                    return;
                }
                assert!(Instant::now() < deadline, "{what}: {trace:#?}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    // The first write went through; memcached goes down while the run sleeps.
    wait_for("the first set", |t| {
        t.iter().any(|i| i.effect == "memcache.set" && i.ok)
    })
    .await;
    memcached.kill();
    // The lookup fails at least once while it is down...
    wait_for("a failed get", |t| {
        t.iter()
            .any(|i| i.effect == "memcache.get" && i.result.is_some() && !i.ok)
    })
    .await;
    // ...and the retries get through once it is back.
    memcached.restart();
    let outcome = tokio::time::timeout(Duration::from_secs(60), node.result(run))
        .await
        .expect("the run finishes")
        .unwrap();
    // A restarted memcached has lost what it held: the lookup finds nothing,
    // which the workflow takes as a miss.
    let Outcome::Completed(v) = outcome else {
        panic!("{outcome:?}");
    };
    let result: Result<Option<String>, Error> = drover_ir::from_value(v).unwrap();
    assert_eq!(result, Ok(None));

    let trace = node.trace(run).await.unwrap();
    let gets: Vec<(u32, bool)> = trace
        .iter()
        .filter(|i| i.effect == "memcache.get")
        .map(|i| (i.attempt, i.ok))
        .collect();
    assert!(gets.len() >= 2, "{trace:#?}");
    assert!(gets[..gets.len() - 1].iter().all(|(_, ok)| !ok), "{gets:?}");
    assert_eq!(gets.last().map(|g| g.1), Some(true), "{gets:?}");
    let failed = trace
        .iter()
        .find(|i| i.effect == "memcache.get" && !i.ok)
        .unwrap();
    assert!(
        failed.summary.as_deref().is_some_and(|s| s.contains("Err")),
        "{failed:?}"
    );
    assert!(trace
        .iter()
        .filter(|i| i.effect == "memcache.set")
        .any(|i| i.ok && i.attempt >= 1 && i.tick > failed.tick));
    node.shutdown().await;
}

/// The memcache integration's pool on the node's supervision tree: while
/// memcached is down the pool worker's health checks fail, the supervisor
/// restarts the worker, and each restart rebuilds the pool; once memcached
/// is back, effects go through the rebuilt pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_supervisor_rebuilds_the_memcache_pool_after_failed_checks() {
    use std::sync::Arc;

    use drover::node::{IntegrationEffects, NodeConfig, NodeServices};
    use drover_integrations::Integrations;

    let Some(mut memcached) = OwnMemcached::start() else {
        return;
    };
    let config = memcached.config();
    let effects = Arc::new(IntegrationEffects::new(
        Integrations::from_config(&config).await.unwrap(),
    ));
    let pools = effects.pool_workers();
    assert_eq!(
        pools.len(),
        1,
        "one worker: memcache is the one real integration"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut services = NodeServices::new(NodeConfig::new(dir.path())).effects(effects.clone());
    for p in pools {
        services = services.pool(p.every(Duration::from_millis(200), 2));
    }
    let node = services.start().await.unwrap();
    let pool_number = || {
        let effects = effects.clone();
        async move {
            let h = effects
                .integrations()
                .get("memcache")
                .unwrap()
                .health_dyn()
                .await;
            let n = h
                .detail
                .split("pool #")
                .nth(1)
                .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse::<u64>().ok());
            (n, h)
        }
    };
    // Built once at start.
    let (first, h) = pool_number().await;
    let first = first.unwrap_or_else(|| panic!("{h:?}"));

    memcached.kill();
    let tree_restarts = || async {
        let tree = node.tree().await.unwrap();
        format!("{tree:?}")
    };
    // Two failed checks fail the worker; its restart rebuilds the pool.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events: Vec<String> = node
            .logs()
            .into_iter()
            .filter(|e| e.kind == drover::logs::EventKind::Node)
            .map(|e| format!("{} {}", e.level.name(), e.msg.unwrap_or_default()))
            .collect();
        if events
            .iter()
            .any(|m| m.contains("restart") && m.contains("memcache"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no restart of the memcache pool worker: {events:#?}\n{}",
            tree_restarts().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    memcached.restart();
    // The pool in use now is a rebuilt one, and it serves effects.
    let (now, h) = pool_number().await;
    assert!(
        now.is_some_and(|n| n > first),
        "before: #{first}, now: {h:?}"
    );
    let run = node
        .node()
        .unwrap()
        .start(
            "cache_through_restart",
            vec![Value::Str("rebuilt-pool".into())],
            None,
        )
        .await
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(30), node.node().unwrap().result(run))
        .await
        .expect("the run finishes")
        .unwrap();
    let Outcome::Completed(v) = outcome else {
        panic!("{outcome:?}");
    };
    let result: Result<Option<String>, Error> = drover_ir::from_value(v).unwrap();
    assert_eq!(result, Ok(Some("before".to_owned())));
    node.shutdown().await;
}
