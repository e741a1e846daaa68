//! A user's key-value gen_server running in a node's supervision tree, next
//! to a sibling that audits it. The store has a deliberate bug: `put` of
//! the key "boom" panics. The user subtree's strategy (`rest_for_one` here,
//! or the first argument: one_for_one, one_for_all, rest_for_one) decides
//! which siblings restart with it; the node's own services and its runs
//! carry on.
//!
//! Run with `cargo run -p drover --example node_kv [strategy]`.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use drover::logs::EventKind;
use drover::node::{NodeConfig, NodeServices};
use drover::prelude::*;
use drover::supervisor::{ChildSpec, ExitReason, JsonCodec, Server, Strategy, WorkerSpec};
use drover_ir::Value;
use serde::{Deserialize, Serialize};

const TIMEOUT: StdDuration = StdDuration::from_secs(2);

#[activity]
pub async fn greet(name: String) -> Result<String, Error> {
    Ok(format!("hello, {name}"))
}

/// Sleeps on a durable timer, so the run spans the crash below.
#[workflow]
pub async fn slow_greeting(name: String) -> Result<String, Error> {
    sleep(Duration::from_millis(300)).await;
    let text = greet(name).await?;
    Ok(text)
}

/// The key-value store; its state lives as long as one incarnation.
struct Kv {
    map: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
enum KvCall {
    Put { key: String, value: String },
    Get { key: String },
}

impl Server for Kv {
    type Args = ();
    type Call = KvCall;
    type Reply = Option<String>;
    type Cast = ();

    async fn init((): ()) -> Result<Self, ExitReason> {
        println!("  [kv] init");
        Ok(Kv {
            map: BTreeMap::new(),
        })
    }

    async fn handle_call(&mut self, msg: KvCall) -> Result<Option<String>, ExitReason> {
        match msg {
            KvCall::Put { key, .. } if key == "boom" => {
                panic!("the deliberate bug: kv cannot store the key \"boom\"")
            }
            KvCall::Put { key, value } => Ok(self.map.insert(key, value)),
            KvCall::Get { key } => Ok(self.map.get(&key).cloned()),
        }
    }

    async fn handle_cast(&mut self, (): ()) -> Result<(), ExitReason> {
        Ok(())
    }

    async fn terminate(&mut self, reason: &ExitReason) {
        println!("  [kv] terminate: {reason}");
    }
}

/// Counts the writes it is told of.
struct Audit {
    writes: u64,
}

impl Server for Audit {
    type Args = ();
    type Call = ();
    type Reply = u64;
    type Cast = ();

    async fn init((): ()) -> Result<Self, ExitReason> {
        println!("  [audit] init");
        Ok(Audit { writes: 0 })
    }

    async fn handle_call(&mut self, (): ()) -> Result<u64, ExitReason> {
        Ok(self.writes)
    }

    async fn handle_cast(&mut self, (): ()) -> Result<(), ExitReason> {
        self.writes += 1;
        Ok(())
    }

    async fn terminate(&mut self, reason: &ExitReason) {
        println!("  [audit] terminate: {reason}");
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Keep the output readable: one line per panic.
    std::panic::set_hook(Box::new(|info| println!("  [panic] {info}")));
    let strategy = match std::env::args().nth(1).as_deref() {
        None | Some("rest_for_one") => Strategy::RestForOne,
        Some("one_for_one") => Strategy::OneForOne,
        Some("one_for_all") => Strategy::OneForAll,
        Some(other) => {
            return Err(format!(
                "unknown strategy {other:?}: one_for_one, one_for_all or rest_for_one"
            )
            .into())
        }
    };

    let data = tempfile::tempdir()?;
    println!(
        "starting a node in {} (user strategy {strategy:?})",
        data.path().display()
    );
    let node = NodeServices::new(NodeConfig::new(data.path()))
        .user_strategy(strategy, 3, StdDuration::from_secs(10))
        .child(ChildSpec::worker(
            "kv",
            WorkerSpec::<Kv>::new("kv", ()).codec(JsonCodec),
        ))
        .child(ChildSpec::worker(
            "audit",
            WorkerSpec::<Audit>::new("audit", ()),
        ))
        .start()
        .await?;
    println!("\n{}", node.tree().await?);

    let run = node
        .node()?
        .start("slow_greeting", vec![Value::from("Ada")], None)
        .await?;
    println!("started run {run} (slow_greeting, sleeps 300 ms)");

    let kv = node.registry().server::<Kv>("kv");
    let audit = node.registry().server::<Audit>("audit");
    kv.call(
        KvCall::Put {
            key: "colour".into(),
            value: "green".into(),
        },
        TIMEOUT,
    )
    .await?;
    audit.cast(())?;
    // By name with JSON bytes, as the HTTP API reaches a server.
    let reply = node
        .registry()
        .call_encoded("kv", br#"{"Get":{"key":"colour"}}"#, TIMEOUT)
        .await?;
    println!(
        "get colour (JSON) -> {}; audit counted {} write(s)",
        String::from_utf8_lossy(&reply),
        audit.call((), TIMEOUT).await?
    );

    println!("\nput boom: the bug");
    let before = node.registry().incarnation("kv");
    let crashed = kv
        .call(
            KvCall::Put {
                key: "boom".into(),
                value: "!".into(),
            },
            TIMEOUT,
        )
        .await;
    println!("put boom -> {crashed:?}");
    // Callers see the name unregistered mid-restart, as in OTP.
    while node.registry().incarnation("kv") == before
        || node.registry().incarnation("audit").is_none()
    {
        tokio::time::sleep(StdDuration::from_millis(1)).await;
    }

    println!("\n{}", node.tree().await?);
    println!(
        "after the restart: get colour -> {:?}, audit counted {} write(s)",
        kv.call(
            KvCall::Get {
                key: "colour".into()
            },
            TIMEOUT
        )
        .await?,
        audit.call((), TIMEOUT).await?
    );

    let outcome = node.node()?.result(run).await?;
    println!("run {run} finished regardless: {outcome:?}");

    println!("\nthe node's own log events:");
    for event in node.logs().iter().filter(|e| e.kind == EventKind::Node) {
        println!("  {}", event.to_json_line());
    }

    println!("\nshutting down (reverse start order)");
    println!("root supervisor exited: {}", node.shutdown().await);
    Ok(())
}
