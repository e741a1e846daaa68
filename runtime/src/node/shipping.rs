//! Log shipping as a child of the node's supervision tree: the node's
//! structured log events go to Logstash as JSON lines.

use std::time::Duration;

use drover_integrations::logstash::Shipper;
use drover_supervisor::{ChildSpec, ExitReason, Server, WorkerSpec};
use tokio::sync::broadcast::error::RecvError;

use super::owned_task::OwnedTask;
use super::NodeRef;

/// Follows the current loop's log events and ships each one. The loop's
/// event stream ends when the loop stops, so this worker sits after the
/// loop in the node's `rest_for_one` tree: a restarted loop restarts it,
/// and it follows the new loop. Events it falls behind on are counted and
/// skipped (the node's log ring and `drover logs` still have them).
pub struct LogShipService {
    task: OwnedTask<()>,
}

/// What a [`LogShipService`] starts from.
#[derive(Clone)]
pub struct LogShipArgs {
    /// The supervised node.
    pub node: NodeRef,
    /// Where the lines go.
    pub shipper: Shipper,
}

impl LogShipService {
    /// The child spec: id `logship`, registered as `drover.logship`.
    pub fn child_spec(args: LogShipArgs) -> ChildSpec {
        ChildSpec::worker(
            "logship",
            WorkerSpec::<LogShipService>::new("drover.logship", args),
        )
    }
}

impl Server for LogShipService {
    type Args = LogShipArgs;
    type Call = ();
    type Reply = ();
    type Cast = ();

    async fn init(args: LogShipArgs) -> Result<Self, ExitReason> {
        let node = args
            .node
            .node()
            .map_err(|e| ExitReason::error(format!("logship: {e}")))?;
        let mut events = node.subscribe_logs();
        let shipper = args.shipper;
        let task = OwnedTask::spawn(|mut stop| async move {
            loop {
                tokio::select! {
                    _ = &mut stop => return,
                    e = events.recv() => match e {
                        Ok(e) => {
                            shipper.ship(&e.to_json_line());
                        }
                        Err(RecvError::Lagged(_)) => {}
                        // The loop stopped: the worker ends, and is
                        // restarted with the next loop.
                        Err(RecvError::Closed) => return,
                    },
                }
            }
        });
        Ok(LogShipService { task })
    }

    async fn handle_call(&mut self, (): ()) -> Result<(), ExitReason> {
        Ok(())
    }

    async fn handle_cast(&mut self, (): ()) -> Result<(), ExitReason> {
        Ok(())
    }

    async fn handle_info(&mut self) -> Result<(), ExitReason> {
        Err(match self.task.ended().await {
            Ok(()) => ExitReason::error("logship: the node's event stream ended"),
            Err(e) => ExitReason::error(format!("logship: the task failed: {e}")),
        })
    }

    async fn terminate(&mut self, _: &ExitReason) {
        // The shipper keeps what it buffered across restarts; `drover
        // node` flushes it once the whole tree has stopped.
        self.task.stop(Duration::from_secs(5)).await;
    }
}
