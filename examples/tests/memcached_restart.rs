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
    let mut mc = MemcacheConfig::new(vec![format!("127.0.0.1:{}", memcached.port)]);
    mc.timeout = Duration::from_millis(300);
    let config = Config {
        memcache: Some(mc),
        ..Config::default()
    };
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
