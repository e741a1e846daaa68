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
