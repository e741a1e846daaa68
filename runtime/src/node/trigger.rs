//! Queue-triggered starts: each RabbitMQ message on a queue starts a run of
//! one workflow, and is acked only once that start is durable
//! ([`drover_integrations::rabbitmq::trigger`] does the consuming).

use drover_integrations::rabbitmq::trigger::{StartError, Starter};
use drover_ir::Value;

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
