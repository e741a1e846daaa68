//! [`OwnedTask`]: a background task a supervised worker owns. The worker's
//! `handle_info` waits for it to end (an unexpected end fails the worker,
//! so its supervisor restarts it), and `terminate` asks it to stop and
//! gives it a grace period.

use std::future::Future;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::oneshot;
use tokio::task::{JoinError, JoinHandle};

/// A spawned task with a stop signal.
pub struct OwnedTask<T> {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<T>>,
}

impl<T: Send + 'static> OwnedTask<T> {
    /// Spawns `body(stop)`: `stop` completes when [`OwnedTask::stop`] is
    /// called (or the `OwnedTask` is dropped).
    pub fn spawn<F, Fut>(body: F) -> Self
    where
        F: FnOnce(BoxFuture<'static, ()>) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(body(Box::pin(async move {
            let _ = stopped.await;
        })));
        OwnedTask {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Waits until the task ends by itself, with what it returned or why it
    /// failed; once it has ended (or been stopped) this never completes.
    /// Cancel-safe, as a worker's `handle_info` must be.
    pub async fn ended(&mut self) -> Result<T, JoinError> {
        let Some(task) = self.task.as_mut() else {
            return std::future::pending().await;
        };
        let ended = task.await;
        self.task = None;
        ended
    }

    /// Signals the task to stop and waits up to `grace` for it; past that
    /// it is aborted.
    pub async fn stop(&mut self, grace: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(grace, task).await.is_err() {
                abort.abort();
            }
        }
    }
}
