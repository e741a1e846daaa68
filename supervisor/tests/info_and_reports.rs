//! `handle_info` (work between messages, OTP's timer and monitor messages),
//! `kill_child` (OTP's `exit(Pid, kill)`) and supervisor reports.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use drover_supervisor::{
    ChildSpec, ChildStatus, ExitReason, Registry, Reporter, Server, Strategy, Supervisor,
    SupervisorError, SupervisorReport, SupervisorSpec, WorkerSpec,
};

/// Counts ticks of its own interval and crashes on tick `crash_at`, once
/// over all incarnations.
struct Ticker {
    interval: tokio::time::Interval,
    ticks: u64,
    crash_at: Option<u64>,
    armed: Arc<AtomicBool>,
    log: Log,
}

impl Server for Ticker {
    type Args = (Option<u64>, Arc<AtomicBool>, Log);
    type Call = ();
    type Reply = u64;
    type Cast = ();

    async fn init((crash_at, armed, log): Self::Args) -> Result<Self, ExitReason> {
        log.push("init ticker".into());
        Ok(Ticker {
            interval: tokio::time::interval(Duration::from_millis(10)),
            ticks: 0,
            crash_at,
            armed,
            log,
        })
    }

    async fn handle_call(&mut self, (): ()) -> Result<u64, ExitReason> {
        Ok(self.ticks)
    }

    async fn handle_cast(&mut self, (): ()) -> Result<(), ExitReason> {
        Ok(())
    }

    async fn handle_info(&mut self) -> Result<(), ExitReason> {
        self.interval.tick().await;
        self.ticks += 1;
        if Some(self.ticks) == self.crash_at && self.armed.swap(false, Ordering::SeqCst) {
            return Err(ExitReason::error(format!("tick {}", self.ticks)));
        }
        Ok(())
    }

    async fn terminate(&mut self, reason: &ExitReason) {
        self.log.push(format!("terminate ticker: {reason}"));
    }
}

fn ticker(crash_at: Option<u64>, log: &Log) -> ChildSpec {
    ChildSpec::worker(
        "ticker",
        WorkerSpec::<Ticker>::new(
            "ticker",
            (crash_at, Arc::new(AtomicBool::new(true)), log.clone()),
        ),
    )
}

fn recorder() -> (Reporter, Arc<Mutex<Vec<SupervisorReport>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    (
        Reporter::new(move |r| sink.lock().unwrap().push(r.clone())),
        seen,
    )
}

#[tokio::test(start_paused = true)]
async fn handle_info_runs_between_messages_and_calls_still_get_answers() {
    let (log, registry) = (Log::new(), Registry::new());
    let sup = Supervisor::start(
        SupervisorSpec::new(Strategy::OneForOne).child(ticker(None, &log)),
        &registry,
    )
    .await
    .unwrap();
    let t = registry.server::<Ticker>("ticker");
    tokio::time::sleep(Duration::from_millis(105)).await;
    let ticks = t.call((), SECOND).await.unwrap();
    // The first tick of an interval is immediate: 0, 10, .., 100 ms.
    assert_eq!(ticks, 11);
    // Calls interleave with ticks without losing any.
    for _ in 0..5 {
        t.call((), SECOND).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(t.call((), SECOND).await.unwrap(), 21);
    assert_eq!(sup.shutdown().await, ExitReason::Shutdown);
    assert_eq!(log.take(), ["init ticker", "terminate ticker: shutdown"]);
}

#[tokio::test(start_paused = true)]
async fn an_error_from_handle_info_is_a_crash_that_terminate_sees_and_the_supervisor_restarts() {
    let (log, registry) = (Log::new(), Registry::new());
    let (reporter, seen) = recorder();
    let sup = Supervisor::start(
        SupervisorSpec::new(Strategy::OneForOne)
            .intensity(3)
            .reporter(reporter)
            .child(ticker(Some(3), &log)),
        &registry,
    )
    .await
    .unwrap();
    assert_eq!(
        log_after(&log, 3).await,
        [
            "init ticker",
            "terminate ticker: error: tick 3",
            "init ticker"
        ]
    );
    let rows = sup.which_children().await.unwrap();
    assert_eq!(rows[0].restarts, 1);
    assert_eq!(
        seen.lock().unwrap()[..2],
        [
            SupervisorReport::ChildExited {
                child: "ticker".into(),
                reason: ExitReason::error("tick 3"),
            },
            SupervisorReport::ChildRestarted {
                child: "ticker".into(),
                restarts: 1,
            },
        ]
    );
    drop(sup);
}

#[tokio::test(start_paused = true)]
async fn kill_child_is_a_crash_restarted_by_strategy_without_terminate() {
    let (log, registry) = (Log::new(), Registry::new());
    let spec = SupervisorSpec::new(Strategy::RestForOne)
        .intensity(5)
        .child(probe("a", &log))
        .child(probe("b", &log))
        .child(probe("c", &log));
    let sup = Supervisor::start(spec, &registry).await.unwrap();
    assert_eq!(log.take(), ["init a", "init b", "init c"]);

    sup.kill_child("b").await.unwrap();
    // b gets no terminate (killed); c, started after it, is stopped and
    // both start again in order.
    assert_eq!(
        log_after(&log, 3).await,
        ["terminate c: shutdown", "init b", "init c"]
    );
    let rows: Vec<(String, ChildStatus, u32)> = sup
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.id, c.status, c.restarts))
        .collect();
    assert_eq!(
        rows,
        [
            ("a".into(), ChildStatus::Running, 0),
            ("b".into(), ChildStatus::Running, 1),
            ("c".into(), ChildStatus::Running, 1)
        ]
    );
    assert_eq!(
        sup.kill_child("nope").await,
        Err(SupervisorError::NotFound("nope".into()))
    );
    sup.terminate_child("a").await.unwrap();
    assert_eq!(
        sup.kill_child("a").await,
        Err(SupervisorError::Stopped("a".into()))
    );
    drop(sup);
}

#[tokio::test(start_paused = true)]
async fn exhausting_the_intensity_is_reported_before_the_supervisor_exits() {
    let (log, registry) = (Log::new(), Registry::new());
    let (reporter, seen) = recorder();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(1)
        .period(Duration::from_secs(10))
        .reporter(reporter)
        .child(probe("a", &log));
    let sup = Supervisor::start(spec, &registry).await.unwrap();
    crash(&registry, "a", How::Error);
    log_after(&log, 3).await;
    crash(&registry, "a", How::Error);
    assert_eq!(sup.join().await, ExitReason::MaxRestartIntensity);
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.last(),
        Some(&SupervisorReport::Escalated {
            intensity: 1,
            period_ms: 10_000
        })
    );
    assert_eq!(
        seen.iter()
            .filter(|r| matches!(r, SupervisorReport::ChildExited { .. }))
            .count(),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_reporter_does_not_take_the_supervisor_down() {
    let (log, registry) = (Log::new(), Registry::new());
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(3)
        .reporter(Reporter::new(|_| panic!("reporter bug")))
        .child(probe("a", &log));
    let sup = Supervisor::start(spec, &registry).await.unwrap();
    log.take();
    crash(&registry, "a", How::Error);
    assert_eq!(
        log_after(&log, 2).await,
        ["terminate a: error: boom", "init a"]
    );
    assert_eq!(sup.shutdown().await, ExitReason::Shutdown);
}
