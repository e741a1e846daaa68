//! A key-value gen_server with a deliberate bug, supervised next to a stats
//! counter. `put("boom", ..)` panics; the supervisor restarts the store and,
//! with `rest_for_one`, the stats worker started after it.
//!
//! Run with `cargo run -p drover-supervisor --example kv`.

use std::collections::BTreeMap;
use std::time::Duration;

use drover_supervisor::{
    ChildSpec, ExitReason, JsonCodec, Registry, Server, Strategy, Supervisor, SupervisorSpec,
    WorkerSpec,
};
use serde::{Deserialize, Serialize};

const TIMEOUT: Duration = Duration::from_secs(1);

/// The store; its state lives only as long as one incarnation.
struct KvStore {
    map: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
enum KvCall {
    Put { key: String, value: String },
    Get { key: String },
}

impl Server for KvStore {
    type Args = ();
    type Call = KvCall;
    type Reply = Option<String>;
    type Cast = ();

    async fn init(_: ()) -> Result<Self, ExitReason> {
        println!("  [kv] init");
        Ok(KvStore {
            map: BTreeMap::new(),
        })
    }

    async fn handle_call(&mut self, msg: KvCall) -> Result<Option<String>, ExitReason> {
        match msg {
            KvCall::Put { key, value } => {
                if key == "boom" {
                    panic!("the deliberate bug: kv cannot store the key \"boom\"");
                }
                Ok(self.map.insert(key, value))
            }
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

/// Counts requests seen by the store.
struct Stats {
    requests: u64,
}

impl Server for Stats {
    type Args = ();
    type Call = ();
    type Reply = u64;
    type Cast = ();

    async fn init(_: ()) -> Result<Self, ExitReason> {
        println!("  [stats] init");
        Ok(Stats { requests: 0 })
    }

    async fn handle_call(&mut self, (): ()) -> Result<u64, ExitReason> {
        Ok(self.requests)
    }

    async fn handle_cast(&mut self, (): ()) -> Result<(), ExitReason> {
        self.requests += 1;
        Ok(())
    }

    async fn terminate(&mut self, reason: &ExitReason) {
        println!("  [stats] terminate: {reason}");
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Keep the demo's output readable: report panics in one line.
    std::panic::set_hook(Box::new(|info| println!("  [panic] {info}")));

    let registry = Registry::new();
    let spec = SupervisorSpec::new(Strategy::RestForOne)
        .intensity(3)
        .period(Duration::from_secs(5))
        .child(ChildSpec::worker(
            "kv",
            WorkerSpec::<KvStore>::new("kv", ()).codec(JsonCodec),
        ))
        .child(ChildSpec::worker(
            "stats",
            WorkerSpec::<Stats>::new("stats", ()),
        ));

    println!("starting the tree");
    let sup = Supervisor::start(spec, &registry).await?;
    println!("\n{}", sup.tree().await?);

    let kv = registry.server::<KvStore>("kv");
    let stats = registry.server::<Stats>("stats");
    let put = |key: &str, value: &str| KvCall::Put {
        key: key.into(),
        value: value.into(),
    };
    kv.call(put("colour", "green"), TIMEOUT).await?;
    stats.cast(())?;
    // The same store, driven by name with JSON bytes as the HTTP API will.
    let reply = registry
        .call_encoded("kv", br#"{"Get":{"key":"colour"}}"#, TIMEOUT)
        .await?;
    stats.cast(())?;
    println!(
        "get colour (JSON) -> {}, stats: {} requests",
        String::from_utf8_lossy(&reply),
        stats.call((), TIMEOUT).await?
    );

    println!("\nput boom: the bug");
    let before = registry.incarnation("kv");
    let crashed = kv.call(put("boom", "!"), TIMEOUT).await;
    println!("put boom -> {crashed:?}");

    // OTP callers see `noproc` mid-restart too; wait for the new incarnation.
    while registry.incarnation("kv") == before || registry.incarnation("stats").is_none() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    println!("\n{}", sup.tree().await?);
    println!(
        "after the restart: get colour -> {:?}, stats: {} requests (fresh state from Args)",
        kv.call(
            KvCall::Get {
                key: "colour".into()
            },
            TIMEOUT
        )
        .await?,
        stats.call((), TIMEOUT).await?
    );

    println!("\nshutting down (reverse start order)");
    println!("supervisor exited: {}", sup.shutdown().await);
    Ok(())
}
