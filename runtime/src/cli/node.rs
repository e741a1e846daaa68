//! `drover node`: a long-lived node with every compiled-in workflow, serving
//! the API until SIGINT or SIGTERM.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::{EXIT_BAD_INPUT, EXIT_NODE};
use crate::api::{ApiService, ApiServiceArgs};
use crate::node::{
    IntegrationEffects, LogShipArgs, LogShipService, NodeConfig, NodeServices, TriggerService,
    TriggerServiceArgs,
};
use crate::supervisor::{ChildSpec, WorkerSpec};
use drover_integrations::rabbitmq::trigger::TriggerConfig;

/// Arguments of `drover node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node's data directory (created if missing).
    #[arg(long, default_value = "drover-data")]
    data: PathBuf,
    /// Where the API listens (`127.0.0.1:0` picks a free port).
    #[arg(long, default_value = "127.0.0.1:7070")]
    listen: String,
    /// Milliseconds per tick.
    #[arg(long, default_value_t = 10)]
    tick_ms: u64,
    /// A resource capacity, as NAME=UNITS (repeatable).
    #[arg(long = "resource", value_name = "NAME=UNITS")]
    resources: Vec<String>,
    /// Print the workflows' log events to stderr as JSON lines.
    #[arg(long)]
    log_stderr: bool,
    /// The integrations' config (TOML). Sections present connect to real
    /// servers; the rest use embedded fallbacks. `DROVER_*` environment
    /// variables apply over it.
    #[arg(long, env = "DROVER_CONFIG")]
    config: Option<PathBuf>,
    /// Start a run of WORKFLOW for every message on the RabbitMQ queue
    /// QUEUE, acking each only once its start is durable (repeatable;
    /// needs a `[rabbitmq]` config).
    #[arg(long = "trigger", value_name = "QUEUE=WORKFLOW")]
    triggers: Vec<String>,
}

/// The capacities of `--resource NAME=UNITS` flags.
pub(crate) fn parse_resources(flags: &[String]) -> Result<BTreeMap<String, u32>, String> {
    let mut resources = BTreeMap::new();
    for r in flags {
        let (name, units) = r
            .split_once('=')
            .and_then(|(n, u)| Some((n.trim(), u.trim().parse::<u32>().ok()?)))
            .filter(|(n, _)| !n.is_empty())
            .ok_or_else(|| format!("--resource {r:?} is not NAME=UNITS"))?;
        resources.insert(name.to_owned(), units);
    }
    Ok(resources)
}

impl NodeArgs {
    /// Runs the node until a signal; returns the exit code.
    pub fn execute(self, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
        let resources = match parse_resources(&self.resources) {
            Ok(r) => r,
            Err(m) => {
                let _ = writeln!(err, "drover node: {m}");
                return EXIT_BAD_INPUT;
            }
        };
        if self.tick_ms == 0 {
            let _ = writeln!(err, "drover node: --tick-ms must be at least 1");
            return EXIT_BAD_INPUT;
        }
        let mut triggers = Vec::new();
        for t in &self.triggers {
            match t.split_once('=') {
                Some((q, w)) if !q.trim().is_empty() && !w.trim().is_empty() => {
                    triggers.push((q.trim().to_owned(), w.trim().to_owned()));
                }
                _ => {
                    let _ = writeln!(err, "drover node: --trigger {t:?} is not QUEUE=WORKFLOW");
                    return EXIT_BAD_INPUT;
                }
            }
        }
        let mut config = NodeConfig::new(self.data.clone());
        config.tick_ms = self.tick_ms;
        config.resources = resources;
        config.log_to_stderr = self.log_stderr;
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(err, "drover node: tokio runtime: {e}");
                return EXIT_NODE;
            }
        };
        runtime.block_on(async move {
            let listener = match std::net::TcpListener::bind(&self.listen) {
                Ok(l) => l,
                Err(e) => {
                    let _ = writeln!(err, "drover node: cannot listen on {}: {e}", self.listen);
                    return EXIT_BAD_INPUT;
                }
            };
            let addr = match listener.local_addr() {
                Ok(a) => a,
                Err(e) => {
                    let _ = writeln!(err, "drover node: {e}");
                    return EXIT_NODE;
                }
            };
            let effects = match IntegrationEffects::from_config_file(self.config.as_deref()).await {
                Ok(e) => Arc::new(e),
                Err(e) => {
                    let _ = writeln!(err, "drover node: {e}");
                    return EXIT_BAD_INPUT;
                }
            };
            let embedded = effects.embedded_namespaces();
            let broker = effects.rabbitmq_config().cloned();
            if !triggers.is_empty() && broker.is_none() {
                let _ = writeln!(
                    err,
                    "drover node: --trigger needs a [rabbitmq] config (or DROVER_RABBITMQ_URL)"
                );
                return EXIT_BAD_INPUT;
            }
            // The node's services under one tree: store, loop, ticker, log
            // shipping (with [logstash]), the API server, the queue
            // triggers, and a pool worker per configured integration.
            let mut services = NodeServices::new(config).effects(effects.clone());
            let node_ref = services.node_ref();
            let shipper = effects
                .integrations()
                .log_shipper()
                .filter(|_| !embedded.contains(&"logstash"))
                .cloned();
            if let Some(shipper) = &shipper {
                services = services.service(LogShipService::child_spec(LogShipArgs {
                    node: node_ref.clone(),
                    shipper: shipper.clone(),
                }));
            }
            let api = ApiServiceArgs {
                listener: Arc::new(listener),
                node: node_ref.clone(),
            };
            services = services.service(ChildSpec::worker(
                "api",
                WorkerSpec::<ApiService>::new("drover.api", api),
            ));
            for (queue, workflow) in triggers {
                let Some(broker) = broker.clone() else { break };
                services = services.service(TriggerService::child_spec(TriggerServiceArgs {
                    node: node_ref.clone(),
                    config: TriggerConfig::new(broker, queue),
                    workflow,
                }));
            }
            for pool in effects.pool_workers() {
                services = services.pool(pool);
            }
            let node = match services.start().await {
                Ok(n) => n,
                Err(e) => {
                    let _ = writeln!(err, "drover node: {e}");
                    return EXIT_NODE;
                }
            };
            let report = node.node_ref().recovery();
            if let Some(report) = &report {
                if let Some(cut) = report.store.as_ref().and_then(|s| s.truncated.as_ref()) {
                    let _ = writeln!(err, "drover node: store recovery: {cut:?}");
                }
                for (run, why) in report.diverged.iter().chain(&report.failed) {
                    let _ = writeln!(err, "drover node: run {run} is not resumed: {why}");
                }
                for (w, why) in &report.bad_deployments {
                    let _ = writeln!(err, "drover node: workflow {w} cannot start: {why}");
                }
            }
            let _ = writeln!(
                out,
                "drover node listening on http://{addr} (data {}, {} runs resumed)",
                self.data.display(),
                report.as_ref().map_or(0, |r| r.resumed.len())
            );
            if !embedded.is_empty() {
                let _ = writeln!(
                    err,
                    "drover node: embedded fallbacks (no config section): {}",
                    embedded.join(", ")
                );
            }
            let _ = out.flush();
            // Until a signal asks for an orderly stop, or the tree gives up.
            let code = match node.run_until(shutdown_signal()).await {
                Ok(()) => 0,
                Err(exit) => {
                    let _ = writeln!(err, "drover node: {exit}");
                    EXIT_NODE
                }
            };
            // The last events (the node's own stop among them) go out if
            // Logstash takes them within two seconds.
            if let Some(shipper) = shipper {
                let _ = shipper.flush(std::time::Duration::from_secs(2)).await;
            }
            let _ = writeln!(out, "drover node stopped");
            code
        })
    }
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
