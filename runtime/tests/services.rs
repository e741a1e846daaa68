//! The node's services under its supervision tree, on the real embedded
//! store: a killed ticker is restarted and timers still fire; a user
//! gen_server's crash restarts it and its siblings by strategy; exhausting
//! the intensity stops the whole node, which says why and leaves a store
//! that reopens with every acknowledged run.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration as StdDuration, Instant};

use drover::log::Level;
use drover::logs::EventKind;
use drover::node::{Node, NodeConfig, NodeServices, Outcome, RunId, SupervisedNode};
use drover::prelude::*;
use drover::supervisor::{
    ChildSpec, ExitReason, Server, Strategy, SupervisorTree, TreeNode, WorkerSpec,
};
use drover_ir::Value;

const TIMEOUT: StdDuration = StdDuration::from_secs(5);

#[activity]
pub async fn plus_one(x: i64) -> Result<i64, Error> {
    Ok(x + 1)
}

#[workflow]
pub async fn short_nap(x: i64) -> Result<i64, Error> {
    sleep(Duration::from_millis(400)).await;
    let y = plus_one(x).await?;
    Ok(y)
}

#[workflow]
pub async fn await_go(x: i64) -> Result<i64, Error> {
    let _go: bool = signal::<bool>("go").await;
    let y = plus_one(x).await?;
    Ok(y)
}

/// A key-value store with a deliberate bug: storing the key "boom" panics.
pub struct Kv {
    map: BTreeMap<String, i64>,
}

#[derive(Debug)]
pub enum KvCall {
    Put(String, i64),
    Get(String),
}

impl Server for Kv {
    type Args = ();
    type Call = KvCall;
    type Reply = Option<i64>;
    type Cast = ();

    async fn init((): ()) -> Result<Self, ExitReason> {
        Ok(Kv {
            map: BTreeMap::new(),
        })
    }

    async fn handle_call(&mut self, msg: KvCall) -> Result<Option<i64>, ExitReason> {
        match msg {
            KvCall::Put(key, _) if key == "boom" => panic!("kv cannot store \"boom\""),
            KvCall::Put(key, value) => Ok(self.map.insert(key, value)),
            KvCall::Get(key) => Ok(self.map.get(&key).copied()),
        }
    }

    async fn handle_cast(&mut self, (): ()) -> Result<(), ExitReason> {
        Ok(())
    }
}

/// A sibling that counts what it is told.
pub struct Counter(i64);

impl Server for Counter {
    type Args = ();
    type Call = ();
    type Reply = i64;
    type Cast = ();

    async fn init((): ()) -> Result<Self, ExitReason> {
        Ok(Counter(0))
    }

    async fn handle_call(&mut self, (): ()) -> Result<i64, ExitReason> {
        self.0 += 1;
        Ok(self.0)
    }

    async fn handle_cast(&mut self, (): ()) -> Result<(), ExitReason> {
        Ok(())
    }
}

fn config(dir: &Path) -> NodeConfig {
    let mut config = NodeConfig::new(dir);
    config.tick_ms = 5;
    config
}

/// A node with, in its user subtree: `before` (a counter), `kv`, `after`
/// (a counter), so each strategy restarts a different group.
fn services(dir: &Path, strategy: Strategy, intensity: u32) -> NodeServices {
    NodeServices::new(config(dir))
        .user_strategy(strategy, intensity, StdDuration::from_secs(10))
        .child(ChildSpec::worker(
            "before",
            WorkerSpec::<Counter>::new("before", ()),
        ))
        .child(ChildSpec::worker("kv", WorkerSpec::<Kv>::new("kv", ())))
        .child(ChildSpec::worker(
            "after",
            WorkerSpec::<Counter>::new("after", ()),
        ))
}

fn find<'a>(tree: &'a SupervisorTree, id: &str) -> &'a TreeNode {
    tree.children
        .iter()
        .find(|c| c.info.id == id)
        .unwrap_or_else(|| panic!("no child {id} in\n{tree}"))
}

fn restarts(tree: &SupervisorTree, path: &[&str]) -> u32 {
    let (last, subs) = path.split_last().unwrap();
    let mut t = tree;
    for s in subs {
        t = find(t, s)
            .supervisor
            .as_ref()
            .expect("a running supervisor");
    }
    find(t, last).info.restarts
}

async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + StdDuration::from_secs(10);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
}

async fn result(node: &SupervisedNode, run: RunId) -> Outcome {
    let handle = node.node().expect("the loop runs");
    tokio::time::timeout(StdDuration::from_secs(20), handle.result(run))
        .await
        .expect("the run ends in time")
        .expect("the result is readable")
}

fn ok(n: i64) -> Outcome {
    Outcome::Completed(Value::ok(Value::Int(n)))
}

fn node_events(node: &SupervisedNode) -> Vec<String> {
    node.logs()
        .into_iter()
        .filter(|e| e.kind == EventKind::Node)
        .map(|e| format!("{} {}", e.level.name(), e.msg.unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_ticker_is_restarted_and_a_sleeping_run_still_completes() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeServices::new(config(dir.path())).start().await.unwrap();
    let run = node
        .node()
        .unwrap()
        .start("short_nap", vec![Value::Int(41)], None)
        .await
        .unwrap();

    node.supervisor().kill_child("ticker").await.unwrap();
    until("the ticker's restart", async || {
        restarts(&node.tree().await.unwrap(), &["ticker"]) == 1
    })
    .await;

    assert_eq!(result(&node, run).await, ok(42));
    let tree = node.tree().await.unwrap();
    // rest_for_one: the ticker and what follows it, not what precedes it.
    assert_eq!(restarts(&tree, &["store"]), 0);
    assert_eq!(restarts(&tree, &["loop"]), 0);
    assert_eq!(restarts(&tree, &["user"]), 1);
    // The new ticker drives the loop's timers.
    let sent = node
        .registry()
        .server::<drover::node::services::Ticker>("drover.ticker")
        .call(drover::node::services::TickerCall::Sent, TIMEOUT)
        .await
        .unwrap();
    assert!(sent > 0, "the restarted ticker sent no ticks");
    let events = node_events(&node);
    assert!(
        events.contains(&"error ticker exited: killed".to_owned()),
        "{events:#?}"
    );
    assert!(
        events.contains(&"warn ticker restarted (1 restarts)".to_owned()),
        "{events:#?}"
    );
    assert_eq!(node.shutdown().await, ExitReason::Shutdown);
}

/// Puts "boom" into the kv, then waits for the user subtree to settle.
async fn crash_kv(node: &SupervisedNode) {
    let kv = node.registry().server::<Kv>("kv");
    kv.call(KvCall::Put("a".into(), 1), TIMEOUT).await.unwrap();
    let before = node.registry().incarnation("kv");
    let crashed = kv.call(KvCall::Put("boom".into(), 2), TIMEOUT).await;
    assert!(
        crashed.is_err(),
        "the bug did not crash the kv: {crashed:?}"
    );
    until("a new kv", async || {
        let now = node.registry().incarnation("kv");
        now.is_some() && now != before
    })
    .await;
    // The new incarnation starts from its Args: the old state is gone.
    assert_eq!(
        kv.call(KvCall::Get("a".into()), TIMEOUT).await.unwrap(),
        None
    );
}

async fn user_restarts(node: &SupervisedNode) -> [u32; 3] {
    let tree = node.tree().await.unwrap();
    [
        restarts(&tree, &["user", "before"]),
        restarts(&tree, &["user", "kv"]),
        restarts(&tree, &["user", "after"]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kv_crash_restarts_by_the_user_strategy_and_leaves_the_node_alone() {
    for (strategy, expected) in [
        (Strategy::OneForOne, [0, 1, 0]),
        (Strategy::OneForAll, [1, 1, 1]),
        (Strategy::RestForOne, [0, 1, 1]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let node = services(dir.path(), strategy, 3).start().await.unwrap();
        crash_kv(&node).await;
        until("the user subtree's restarts", async || {
            user_restarts(&node).await == expected
        })
        .await;
        let tree = node.tree().await.unwrap();
        for service in ["store", "loop", "ticker", "user"] {
            assert_eq!(restarts(&tree, &[service]), 0, "{strategy:?}: {service}");
        }
        let run = node
            .node()
            .unwrap()
            .start("short_nap", vec![Value::Int(1)], None)
            .await
            .unwrap();
        assert_eq!(result(&node, run).await, ok(2), "{strategy:?}");
        let events = node_events(&node);
        assert!(
            events
                .iter()
                .any(|e| e.starts_with("error kv exited: panic: kv cannot store")),
            "{strategy:?}: {events:#?}"
        );
        assert_eq!(node.shutdown().await, ExitReason::Shutdown);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausting_the_intensity_stops_the_node_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    // The user subtree tolerates no restart, nor does the root: the kv's
    // crash escalates to the root, which stops the node.
    let node = services(dir.path(), Strategy::OneForOne, 0)
        .intensity(0, StdDuration::from_secs(10))
        .start()
        .await
        .unwrap();
    let handle = node.node().unwrap();
    // Waits for a signal, so it is unfinished when the node stops.
    let run = handle
        .start("await_go", vec![Value::Int(9)], None)
        .await
        .unwrap();
    drop(handle);
    let node_ref = node.node_ref();

    let kv = node.registry().server::<Kv>("kv");
    assert!(kv
        .call(KvCall::Put("boom".into(), 1), TIMEOUT)
        .await
        .is_err());
    let exit = tokio::time::timeout(StdDuration::from_secs(20), node.wait())
        .await
        .expect("the node stops");
    assert_eq!(exit.reason, ExitReason::MaxRestartIntensity);
    let cause = exit.last_failure.clone().unwrap();
    assert!(cause.starts_with("kv: panic: kv cannot store"), "{cause}");
    assert!(exit.to_string().contains("reached max restart intensity"));

    // Nothing half-alive: no loop to talk to, and the store is closed (its
    // directory lock is free, so another node can open it at once).
    assert!(node_ref.node().is_err());
    let events: Vec<_> = node_ref
        .logs()
        .into_iter()
        .filter(|e| e.kind == EventKind::Node && e.level == Level::Error)
        .map(|e| e.msg.unwrap_or_default())
        .collect();
    assert!(
        events.iter().any(|m| m.starts_with("user gave up")),
        "{events:#?}"
    );
    assert!(
        events.iter().any(|m| m.starts_with("node gave up")),
        "{events:#?}"
    );
    assert!(
        events.iter().any(|m| m.starts_with("node stopped")),
        "{events:#?}"
    );

    let (reopened, report) = Node::open(config(dir.path())).await.unwrap();
    assert_eq!(report.resumed, vec![run], "the acknowledged run is resumed");
    reopened.signal(run, "go", Value::Bool(true)).await.unwrap();
    let outcome = tokio::time::timeout(StdDuration::from_secs(20), reopened.result(run))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome, ok(10));
    reopened.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_loop_resumes_every_acknowledged_run() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeServices::new(config(dir.path())).start().await.unwrap();
    let mut runs = Vec::new();
    let handle = node.node().unwrap();
    for x in 0..5 {
        runs.push(
            handle
                .start("short_nap", vec![Value::Int(x)], None)
                .await
                .unwrap(),
        );
    }
    drop(handle);
    // A loop crash (its task killed mid-run) restarts the loop and what
    // follows; the store stays open.
    node.supervisor().kill_child("loop").await.unwrap();
    until("the loop's restart", async || {
        node.node().is_ok() && restarts(&node.tree().await.unwrap(), &["loop"]) == 1
    })
    .await;
    let recovery = node.node_ref().recovery().unwrap();
    assert_eq!(recovery.resumed.len(), 5, "{recovery:?}");
    for (x, run) in runs.into_iter().enumerate() {
        assert_eq!(result(&node, run).await, ok(x as i64 + 1));
    }
    let tree = node.tree().await.unwrap();
    assert_eq!(restarts(&tree, &["store"]), 0);
    assert_eq!(restarts(&tree, &["ticker"]), 1);
    assert_eq!(node.shutdown().await, ExitReason::Shutdown);
}

/// A loopback server answering `ping` with `pong`, or with `err` for the
/// next `sick` pings.
async fn ping_server() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicU32>,
) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sick = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let state = sick.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let sick = state.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let ill = sick
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    let answer = if line == "ping" && !ill {
                        "pong\n"
                    } else {
                        "err\n"
                    };
                    if write.write_all(answer.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, sick)
}

/// One ping over a new connection.
async fn ping(addr: std::net::SocketAddr) -> Result<(), String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut socket = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    socket
        .write_all(b"ping\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(socket)
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    match line.trim_end() {
        "pong" => Ok(()),
        other => Err(format!("answered {other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_pool_is_rebuilt_by_its_restart() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    let (addr, sick) = ping_server().await;
    let builds = Arc::new(AtomicU32::new(0));
    let counted = builds.clone();
    let pool = drover::node::PoolHealth::new(
        "echo",
        move || {
            counted.fetch_add(1, Ordering::SeqCst);
            Box::pin(ping(addr))
        },
        move || Box::pin(ping(addr)),
    )
    .every(StdDuration::from_millis(20), 2);
    let dir = tempfile::tempdir().unwrap();
    let node = NodeServices::new(config(dir.path()))
        .pool(pool)
        .start()
        .await
        .unwrap();
    assert_eq!(builds.load(Ordering::SeqCst), 1);
    let health = node
        .registry()
        .server::<drover::node::services::PoolWorker>("pool.echo");
    until("a healthy check", async || {
        health.call((), TIMEOUT).await == Ok(Ok(()))
    })
    .await;

    // Two failed checks in a row: the worker fails and its restart
    // rebuilds the pool, which is healthy again.
    sick.store(2, Ordering::SeqCst);
    until("the pool's rebuild", async || {
        restarts(&node.tree().await.unwrap(), &["pools", "echo"]) == 1
    })
    .await;
    assert_eq!(builds.load(Ordering::SeqCst), 2);
    let events = node_events(&node);
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("error echo exited: error: pool echo unhealthy 2 times")),
        "{events:#?}"
    );
    // Only the pool: nothing else restarted.
    let tree = node.tree().await.unwrap();
    for service in ["store", "loop", "ticker", "pools", "user"] {
        assert_eq!(restarts(&tree, &[service]), 0, "{service}");
    }
    assert_eq!(node.shutdown().await, ExitReason::Shutdown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_that_cannot_be_rebuilt_stops_its_subtree_but_not_the_node() {
    let (addr, sick) = ping_server().await;
    let pool = drover::node::PoolHealth::new(
        "echo",
        move || Box::pin(ping(addr)),
        move || Box::pin(ping(addr)),
    )
    .every(StdDuration::from_millis(10), 1);
    let dir = tempfile::tempdir().unwrap();
    let node = NodeServices::new(config(dir.path()))
        .pool(pool)
        .start()
        .await
        .unwrap();
    // Sick for longer than the pools' intensity allows rebuilds.
    sick.store(1_000, std::sync::atomic::Ordering::SeqCst);
    until("the pools subtree to give up", async || {
        let tree = node.tree().await.unwrap();
        find(&tree, "pools").supervisor.is_none()
    })
    .await;
    let events = node_events(&node);
    assert!(
        events.iter().any(|e| e.starts_with("error pools gave up")),
        "{events:#?}"
    );
    // The node carries on: runs complete, no other service restarted.
    let run = node
        .node()
        .unwrap()
        .start("short_nap", vec![Value::Int(6)], None)
        .await
        .unwrap();
    assert_eq!(result(&node, run).await, ok(7));
    let tree = node.tree().await.unwrap();
    for service in ["store", "loop", "ticker", "user"] {
        assert_eq!(restarts(&tree, &[service]), 0, "{service}");
    }
    assert_eq!(node.shutdown().await, ExitReason::Shutdown);
}

/// Stands for the API server: a node service whose `init` takes the
/// current loop from a `NodeRef` and which serves starts through it.
pub struct Frontend {
    node: drover::node::NodeRef,
}

impl Server for Frontend {
    type Args = drover::node::NodeRef;
    type Call = i64;
    type Reply = Result<RunId, String>;
    type Cast = ();

    async fn init(node: drover::node::NodeRef) -> Result<Self, ExitReason> {
        // Started after the loop, so the loop is there.
        node.node().map_err(ExitReason::error)?;
        Ok(Frontend { node })
    }

    async fn handle_call(&mut self, x: i64) -> Result<Result<RunId, String>, ExitReason> {
        let node = self.node.node().map_err(ExitReason::error)?;
        Ok(node
            .start("short_nap", vec![Value::Int(x)], None)
            .await
            .map_err(|e| e.to_string()))
    }

    async fn handle_cast(&mut self, (): ()) -> Result<(), ExitReason> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_service_is_restarted_with_the_loop_and_serves_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let services = NodeServices::new(config(dir.path()));
    let node_ref = services.node_ref();
    let node = services
        .service(ChildSpec::worker(
            "frontend",
            WorkerSpec::<Frontend>::new("frontend", node_ref),
        ))
        .start()
        .await
        .unwrap();
    let frontend = node.registry().server::<Frontend>("frontend");
    let first = frontend.call(1, TIMEOUT).await.unwrap().unwrap();

    node.supervisor().kill_child("loop").await.unwrap();
    until("the frontend's restart", async || {
        restarts(&node.tree().await.unwrap(), &["frontend"]) == 1
    })
    .await;
    // Through the restarted frontend, on the restarted loop.
    let second = frontend.call(2, TIMEOUT).await.unwrap().unwrap();
    assert_eq!(result(&node, first).await, ok(2));
    assert_eq!(result(&node, second).await, ok(3));
    let tree = node.tree().await.unwrap();
    assert_eq!(restarts(&tree, &["loop"]), 1);
    assert_eq!(restarts(&tree, &["store"]), 0);
    assert_eq!(node.shutdown().await, ExitReason::Shutdown);
}

/// Log shipping is a service after the loop: when the loop restarts, the
/// shipper is restarted with it and follows the new loop's events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_shipping_follows_the_loop_across_its_restart() {
    use drover::node::{LogShipArgs, LogShipService};
    use drover_integrations::logstash::Shipper;

    let shipper = Shipper::embedded(10_000);
    let dir = tempfile::tempdir().unwrap();
    let mut services = NodeServices::new(config(dir.path()));
    let node_ref = services.node_ref();
    services = services.service(LogShipService::child_spec(LogShipArgs {
        node: node_ref,
        shipper: shipper.clone(),
    }));
    let node = services.start().await.unwrap();
    let shipped_for = |run: RunId| {
        let needle = format!("\"run\":\"{run}\"");
        shipper
            .lines()
            .into_iter()
            .filter(|l| l.contains(&needle))
            .count()
    };
    let before = node
        .node()
        .unwrap()
        .start("short_nap", vec![Value::Int(1)], None)
        .await
        .unwrap();
    assert_eq!(result(&node, before).await, ok(2));
    until("the first run's events shipped", async || {
        shipped_for(before) >= 2
    })
    .await;

    node.supervisor().kill_child("loop").await.unwrap();
    until("the loop's and the shipper's restart", async || {
        let tree = node.tree().await.unwrap();
        node.node().is_ok() && restarts(&tree, &["loop"]) == 1 && restarts(&tree, &["logship"]) == 1
    })
    .await;
    let after = node
        .node()
        .unwrap()
        .start("short_nap", vec![Value::Int(10)], None)
        .await
        .unwrap();
    assert_eq!(result(&node, after).await, ok(11));
    until("the second run's events shipped", async || {
        shipped_for(after) >= 2
    })
    .await;
    assert_eq!(node.shutdown().await, ExitReason::Shutdown);
}
