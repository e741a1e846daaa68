//! Queue-triggered starts: each RabbitMQ message on a queue starts a run of
//! one workflow, and is acked only once that start is durable
//! ([`drover_integrations::rabbitmq::trigger`] does the consuming).

use std::time::Duration;

use drover_integrations::rabbitmq::trigger::{
    self, StartError, Starter, TriggerConfig, TriggerStats,
};
use drover_ir::Value;
use drover_supervisor::{ChildSpec, ExitReason, Server, WorkerSpec};

use super::owned_task::OwnedTask;
use super::NodeRef;
use crate::registry;

/// Starts a run of `workflow` per message, the message's body as its input
/// (mapped to parameters as `drover start --input` maps JSON). The start's
/// idempotency key is `rabbitmq:<queue>:<message id>`, so a redelivered
/// message (its ack lost) maps to the run it already started.
pub struct WorkflowStarter {
    node: NodeRef,
    queue: String,
    workflow: String,
}

impl WorkflowStarter {
    /// Starts `workflow` on `node` for messages from `queue`.
    pub fn new(node: NodeRef, queue: impl Into<String>, workflow: impl Into<String>) -> Self {
        WorkflowStarter {
            node,
            queue: queue.into(),
            workflow: workflow.into(),
        }
    }

    fn args(&self, body: Value) -> Result<Vec<Value>, String> {
        match registry::workflow(&self.workflow) {
            Some(def) => {
                let names: Vec<&str> = def.params.iter().map(|(n, _)| *n).collect();
                crate::cli::arguments(&names, body.to_json())
            }
            // A deployed script: the body is its one argument.
            None => Ok(vec![body]),
        }
    }
}

impl Starter for WorkflowStarter {
    async fn start(&self, message_id: &str, body: Value) -> Result<(), StartError> {
        // A body that cannot be the workflow's input can never start it:
        // rejected, it goes to the dead-letter queue with the reason.
        let args = self
            .args(body)
            .map_err(|e| StartError::reject(format!("not {}'s input: {e}", self.workflow)))?;
        let node = self
            .node
            .node()
            .map_err(|e| StartError::retry(e.to_string()))?;
        let key = format!("rabbitmq:{}:{message_id}", self.queue);
        match node.start(&self.workflow, args, Some(key)).await {
            Ok(_) => Ok(()),
            Err(e @ super::NodeError::BadInput(_)) => Err(StartError::reject(e.to_string())),
            // The store, a closed loop, a workflow not deployed yet: later.
            Err(e) => Err(StartError::retry(e.to_string())),
        }
    }
}

/// A queue trigger as a child of the node's supervision tree: `init` starts
/// consuming (`trigger::run` with a [`WorkflowStarter`]); if the consumer
/// task ends by itself or panics the worker fails and its supervisor
/// restarts it; `terminate` stops consuming, leaving a message in the
/// middle of its start unacked for redelivery.
pub struct TriggerService {
    task: OwnedTask<TriggerStats>,
}

/// What a [`TriggerService`] starts from.
#[derive(Clone)]
pub struct TriggerServiceArgs {
    /// The supervised node whose current loop starts the runs.
    pub node: NodeRef,
    /// The queue and broker.
    pub config: TriggerConfig,
    /// The workflow each message starts.
    pub workflow: String,
}

impl TriggerService {
    /// The child spec: id `trigger.<queue>`, registered as
    /// `drover.trigger.<queue>`.
    pub fn child_spec(args: TriggerServiceArgs) -> ChildSpec {
        let id = format!("trigger.{}", args.config.queue);
        ChildSpec::worker(
            id.clone(),
            WorkerSpec::<TriggerService>::new(format!("drover.{id}"), args),
        )
    }
}

impl Server for TriggerService {
    type Args = TriggerServiceArgs;
    type Call = ();
    type Reply = ();
    type Cast = ();

    async fn init(args: TriggerServiceArgs) -> Result<Self, ExitReason> {
        let starter = WorkflowStarter::new(args.node, args.config.queue.clone(), args.workflow);
        let config = args.config;
        let task =
            OwnedTask::spawn(|stop| async move { trigger::run(&config, &starter, stop).await });
        Ok(TriggerService { task })
    }

    async fn handle_call(&mut self, (): ()) -> Result<(), ExitReason> {
        Ok(())
    }

    async fn handle_cast(&mut self, (): ()) -> Result<(), ExitReason> {
        Ok(())
    }

    async fn handle_info(&mut self) -> Result<(), ExitReason> {
        Err(match self.task.ended().await {
            Ok(stats) => ExitReason::error(format!(
                "the trigger stopped by itself ({} started, last error: {})",
                stats.started,
                stats.last_error.as_deref().unwrap_or("none")
            )),
            Err(e) => ExitReason::error(format!("the trigger task failed: {e}")),
        })
    }

    async fn terminate(&mut self, _: &ExitReason) {
        self.task.stop(Duration::from_secs(10)).await;
    }
}
