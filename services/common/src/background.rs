//! A service's background work (the order processor, the reservation sweeper): it stops
//! when the service shuts down, and shutting down waits until each task has finished what
//! it was doing, so no tick is cut off half-way by the process exiting.

use std::future::Future;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Cheap to clone: every clone runs and stops the same tasks.
#[derive(Clone, Default)]
pub struct Background {
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Background {
    /// Runs `task`, which must return once the token it is given is cancelled.
    pub fn spawn<F>(&self, task: impl FnOnce(CancellationToken) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task(self.stop.clone()));
    }

    /// Asks every task to stop, and waits until all have.
    pub async fn stop(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn stopping_waits_for_a_task_to_finish_its_work() {
        let background = Background::default();
        let finished = Arc::new(AtomicBool::new(false));
        let done = finished.clone();
        background.spawn(|stop| async move {
            stop.cancelled().await;
            // The work a tick was doing when the service was told to stop.
            tokio::time::sleep(Duration::from_millis(50)).await;
            done.store(true, Ordering::SeqCst);
        });
        background.stop().await;
        assert!(
            finished.load(Ordering::SeqCst),
            "stop returned before the task ended"
        );
    }
}
