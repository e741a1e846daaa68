//! What the examples' tests against real servers share.

#![allow(dead_code)] // each test binary uses its own part

use std::sync::Arc;
use std::time::Duration;

use drover::node::{IntegrationEffects, Node, NodeConfig, NodeHandle};
use drover_integrations::{Config, Integrations};

/// Whether a server listens at `addr`. When none does, the test skips and
/// says why, or fails when `DROVER_REQUIRE_SERVICES=1`.
pub fn service_up(addr: &str, what: &str) -> bool {
    let up = addr.parse().ok().is_some_and(|a| {
        std::net::TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok()
    });
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
