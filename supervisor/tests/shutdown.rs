//! Start and stop order, shutdown methods and timeouts.

mod common;

use std::time::Duration;

use common::*;
use drover_supervisor::{
    ChildSpec, ChildStatus, ExitReason, Registry, Shutdown, StartError, Strategy, Supervisor,
    SupervisorSpec, WorkerSpec,
};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn children_start_in_order_and_stop_in_reverse_order() {
    let (log, registry) = (Log::new(), Registry::new());
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe("a", &log))
        .child(probe("b", &log))
        .child(probe("c", &log));
    let sup = Supervisor::start(spec, &registry).await.unwrap();
    assert_eq!(log.take(), ["init a", "init b", "init c"]);
    assert_eq!(registry.names(), ["a", "b", "c"]);

    assert_eq!(sup.shutdown().await, ExitReason::Shutdown);
    assert_eq!(
        log.take(),
        [
            "terminate c: shutdown",
            "terminate b: shutdown",
            "terminate a: shutdown"
        ]
    );
    assert!(registry.names().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_nested_tree_stops_depth_first_in_reverse_order() {
    let (log, registry) = (Log::new(), Registry::new());
    let inner = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe("x", &log))
        .child(probe("y", &log));
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe("a", &log))
        .child(ChildSpec::supervisor("inner", inner))
        .child(probe("b", &log));
    let sup = Supervisor::start(spec, &registry).await.unwrap();
    assert_eq!(log.take(), ["init a", "init x", "init y", "init b"]);

    sup.shutdown().await;
    assert_eq!(
        log.take(),
        [
            "terminate b: shutdown",
            "terminate y: shutdown",
            "terminate x: shutdown",
            "terminate a: shutdown",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_child_that_ignores_shutdown_is_killed_after_its_timeout() {
    let (log, registry) = (Log::new(), Registry::new());
    let mut stuck = ProbeArgs::new("stuck", &log);
    stuck.hang_on_terminate = true;
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe("a", &log))
        .child(probe_with(stuck).shutdown(Shutdown::Timeout(Duration::from_secs(3))));
    let sup = Supervisor::start(spec, &registry).await.unwrap();
    log.take();

    let began = Instant::now();
    assert_eq!(sup.shutdown().await, ExitReason::Shutdown);

    // The paused clock moved only for the kill timer.
    assert_eq!(began.elapsed(), Duration::from_secs(3));
    assert_eq!(
        log.take(),
        ["terminate stuck: shutdown", "terminate a: shutdown"]
    );
    assert!(registry.names().is_empty());
}

#[tokio::test(start_paused = true)]
async fn terminate_child_kills_a_child_that_ignores_shutdown_after_its_timeout() {
    let (log, registry) = (Log::new(), Registry::new());
    let mut stuck = ProbeArgs::new("stuck", &log);
    stuck.hang_on_terminate = true;
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe_with(stuck).shutdown(Shutdown::Timeout(Duration::from_secs(2))));
    let sup = Supervisor::start(spec, &registry).await.unwrap();

    let began = Instant::now();
    sup.terminate_child("stuck").await.unwrap();
    assert_eq!(began.elapsed(), Duration::from_secs(2));
    assert_eq!(registry.incarnation("stuck"), None);
    assert_eq!(
        sup.which_children().await.unwrap()[0].status,
        ChildStatus::Stopped
    );
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_child_that_stops_in_time_is_not_waited_for_longer() {
    let (log, registry) = (Log::new(), Registry::new());
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe("a", &log).shutdown(Shutdown::Timeout(Duration::from_secs(60))));
    let sup = Supervisor::start(spec, &registry).await.unwrap();

    let began = Instant::now();
    sup.shutdown().await;
    assert_eq!(began.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn brutal_kill_stops_a_child_without_running_terminate() {
    let (log, registry) = (Log::new(), Registry::new());
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe("a", &log).shutdown(Shutdown::BrutalKill));
    let sup = Supervisor::start(spec, &registry).await.unwrap();
    log.take();

    sup.terminate_child("a").await.unwrap();
    settle().await;
    assert_eq!(log.take(), Vec::<String>::new());
    assert_eq!(registry.incarnation("a"), None);
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_child_that_fails_to_start_undoes_the_start_of_the_supervisor() {
    let (log, registry) = (Log::new(), Registry::new());
    let b = ProbeArgs::new("b", &log);
    b.init.fail();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe("a", &log))
        .child(probe_with(b))
        .child(probe("c", &log));

    let err = Supervisor::start(spec, &registry).await.err().unwrap();
    assert_eq!(
        err,
        StartError::ChildFailed {
            id: "b".into(),
            error: Box::new(StartError::InitFailed(ExitReason::error("init refused"))),
        }
    );
    // `c` never starts; `a` is stopped again.
    assert_eq!(log.take(), ["init a", "init b", "terminate a: shutdown"]);
    assert!(registry.names().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_panicking_init_fails_the_start_with_the_panic_message() {
    let (log, registry) = (Log::new(), Registry::new());
    let a = ProbeArgs::new("a", &log);
    a.init.panic();
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(probe_with(a));

    let err = Supervisor::start(spec, &registry).await.err().unwrap();
    assert_eq!(
        err,
        StartError::ChildFailed {
            id: "a".into(),
            error: Box::new(StartError::InitFailed(ExitReason::Panic(
                "init exploded".into()
            ))),
        }
    );
}

#[tokio::test(start_paused = true)]
async fn duplicate_child_ids_are_an_invalid_spec() {
    let log = Log::new();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe("a", &log))
        .child(probe("a", &log));
    assert!(matches!(
        Supervisor::start(spec, &Registry::new())
            .await
            .err()
            .unwrap(),
        StartError::InvalidSpec(_)
    ));
    assert_eq!(log.take(), Vec::<String>::new());
}

#[tokio::test(start_paused = true)]
async fn a_worker_whose_name_is_taken_does_not_start() {
    let (log, registry) = (Log::new(), Registry::new());
    let mut twin = probe("a", &log);
    twin.id = "a-twin".into();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe("a", &log))
        .child(twin);
    let err = Supervisor::start(spec, &registry).await.err().unwrap();
    assert_eq!(
        err,
        StartError::ChildFailed {
            id: "a-twin".into(),
            error: Box::new(StartError::AlreadyRegistered("a".into())),
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_zero_period_is_an_invalid_spec() {
    let spec = SupervisorSpec::new(Strategy::OneForOne).period(Duration::ZERO);
    assert!(matches!(
        Supervisor::start(spec, &Registry::new())
            .await
            .err()
            .unwrap(),
        StartError::InvalidSpec(_)
    ));
}

#[tokio::test(start_paused = true)]
async fn an_init_that_never_finishes_fails_the_start_after_the_init_timeout() {
    let (log, registry) = (Log::new(), Registry::new());
    let args = ProbeArgs::new("slow", &log);
    args.init.hang();
    let worker = WorkerSpec::<Probe>::new("slow", args).init_timeout(Duration::from_secs(2));
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::worker("slow", worker));

    let began = Instant::now();
    let err = Supervisor::start(spec, &registry).await.err().unwrap();
    assert_eq!(began.elapsed(), Duration::from_secs(2));
    assert_eq!(
        err,
        StartError::ChildFailed {
            id: "slow".into(),
            error: Box::new(StartError::InitTimeout(Duration::from_secs(2))),
        }
    );
    assert!(registry.names().is_empty());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_root_kills_the_whole_tree() {
    let (log, registry) = (Log::new(), Registry::new());
    let inner = SupervisorSpec::new(Strategy::OneForOne).child(probe("x", &log));
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe("a", &log))
        .child(ChildSpec::supervisor("inner", inner));
    let sup = Supervisor::start(spec, &registry).await.unwrap();
    log.take();

    drop(sup);
    until("every name freed", || async { registry.names().is_empty() }).await;
    // Killed, not shut down: no `terminate` ran.
    settle().await;
    assert_eq!(log.take(), Vec::<String>::new());
}
