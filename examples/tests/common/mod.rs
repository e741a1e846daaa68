//! What the examples' tests against real servers share.

#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

use drover::node::{IntegrationEffects, Node, NodeConfig, NodeHandle};
use drover_integrations::{Config, Integrations};

/// Whether a server listens at `addr`. When none does, the test skips and
/// says why, or fails when `DROVER_REQUIRE_SERVICES=1`.
pub fn service_up(addr: &str, what: &str) -> bool {
    use std::net::ToSocketAddrs;
    // `host:port`, a name resolved as `TcpStream::connect` would.
    let up = addr
        .to_socket_addrs()
        .ok()
        .into_iter()
        .flatten()
        .any(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok());
    if !up {
        let why = format!("no {what} listens at {addr}");
        if std::env::var("DROVER_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
            panic!("{why} (DROVER_REQUIRE_SERVICES=1)");
        }
        eprintln!("skipped: {why}");
    }
    up
}

/// A name no earlier test run used.
pub fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}-{nanos}-{}", std::process::id())
}

/// A durable node in a temporary directory whose integrations come from
/// `config`; the directory lives as long as the returned guard.
pub async fn node_with(config: &Config) -> (NodeHandle, tempfile::TempDir) {
    let effects = IntegrationEffects::new(Integrations::from_config(config).await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = Node::open_with(NodeConfig::new(dir.path()), Arc::new(effects))
        .await
        .unwrap();
    (node, dir)
}

/// The repository root, where the tools are run from, as the README shows.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `dslc` binary of this workspace. Another package's binary has no
/// `CARGO_BIN_EXE_` variable here, so it is built on first use.
pub fn dslc_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let bin = target
        .join("debug")
        .join(format!("dslc{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(root())
            .args(["build", "-q", "--bin", "dslc"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "`cargo build --bin dslc` failed");
    }
    bin
}

/// A `drover node` child process, killed if the test fails before
/// stopping it.
pub struct NodeProcess(pub Child);

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The test broker: RabbitMQ on this machine, guest/guest.
pub const RABBITMQ: &str = "127.0.0.1:5672";
pub const RABBITMQ_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A durable queue of the test's own on the test broker. The broker drops
/// it a minute after its last use, should the test fail before `delete`.
pub struct TestQueue {
    pub name: String,
    pub channel: lapin::Channel,
    _conn: lapin::Connection,
}

impl TestQueue {
    /// Declares a queue with a unique name starting with `tag`.
    pub async fn declare(tag: &str) -> TestQueue {
        use lapin::options::QueueDeclareOptions;
        use lapin::types::{AMQPValue, FieldTable};
        let conn = lapin::Connection::connect(RABBITMQ_URL, lapin::ConnectionProperties::default())
            .await
            .expect("connect to the test broker");
        let channel = conn.create_channel().await.unwrap();
        let name = unique(tag);
        let mut args = FieldTable::default();
        args.insert("x-expires".into(), AMQPValue::LongUInt(60_000));
        channel
            .queue_declare(name.as_str().into(), QueueDeclareOptions::durable(), args)
            .await
            .unwrap();
        TestQueue {
            name,
            channel,
            _conn: conn,
        }
    }

    /// Messages ready on the queue (not counting delivered, unacked ones).
    pub async fn ready(&self) -> u32 {
        use lapin::options::QueueDeclareOptions;
        self.channel
            .queue_declare(
                self.name.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await
            .unwrap()
            .message_count()
    }

    /// Deletes the queue.
    pub async fn delete(self) {
        let _ = self
            .channel
            .queue_delete(
                self.name.as_str().into(),
                lapin::options::QueueDeleteOptions::default(),
            )
            .await;
    }
}
