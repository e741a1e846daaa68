//! Restart intensity and escalation: more than `intensity` restarts within
//! `period` make a supervisor stop its children and exit, and its parent
//! treats that exit like any child's.

mod common;

use std::time::Duration;

use common::*;
use drover_supervisor::{
    ChildSpec, ChildStatus, ExitReason, Registry, Restart, Strategy, Supervisor, SupervisorError,
    SupervisorSpec,
};

/// Crashes `name` and waits for its replacement to register.
async fn crash_and_wait_for_restart(registry: &Registry, name: &str) {
    let before = registry
        .incarnation(name)
        .expect("running before the crash");
    crash(registry, name, How::Panic);
    until(&format!("{name} restarted"), || async {
        registry.incarnation(name).is_some_and(|i| i != before)
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_third_crash_within_the_period_shuts_the_supervisor_down() {
    let (log, registry) = (Log::new(), Registry::new());
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(2)
        .period(Duration::from_secs(10))
        .child(probe("a", &log))
        .child(probe("b", &log));
    let sup = Supervisor::start(spec, &registry).await.unwrap();
    let handle = sup.handle().clone();

    crash_and_wait_for_restart(&registry, "a").await;
    tokio::time::sleep(SECOND).await;
    crash_and_wait_for_restart(&registry, "a").await;
    tokio::time::sleep(SECOND).await;
    log.take();
    crash(&registry, "a", How::Panic);

    assert_eq!(sup.join().await, ExitReason::MaxRestartIntensity);
    // The supervisor stops its remaining children before it exits.
    assert_eq!(
        log.take(),
        ["terminate a: panic: boom", "terminate b: shutdown"]
    );
    assert!(registry.names().is_empty());
    assert_eq!(
        handle.which_children().await,
        Err(SupervisorError::NotRunning)
    );
}

#[tokio::test(start_paused = true)]
async fn crashes_spread_beyond_the_period_are_tolerated() {
    let (log, registry) = (Log::new(), Registry::new());
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(2)
        .period(Duration::from_secs(10))
        .child(probe("a", &log));
    let sup = Supervisor::start(spec, &registry).await.unwrap();

    // Every 6 s: any 10 s window holds at most two restarts.
    for _ in 0..6 {
        crash_and_wait_for_restart(&registry, "a").await;
        tokio::time::sleep(Duration::from_secs(6)).await;
    }

    let a = &sup.which_children().await.unwrap()[0];
    assert_eq!((a.status, a.restarts), (ChildStatus::Running, 6));
    assert_eq!(sup.shutdown().await, ExitReason::Shutdown);
}

#[tokio::test(start_paused = true)]
async fn the_same_crashes_packed_into_one_period_are_not_tolerated() {
    let (log, registry) = (Log::new(), Registry::new());
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(2)
        .period(Duration::from_secs(10))
        .child(probe("a", &log));
    let sup = Supervisor::start(spec, &registry).await.unwrap();

    // Every 4 s: the third restart falls 8 s after the first.
    crash_and_wait_for_restart(&registry, "a").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    crash_and_wait_for_restart(&registry, "a").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    crash(&registry, "a", How::Panic);

    assert_eq!(sup.join().await, ExitReason::MaxRestartIntensity);
}

#[tokio::test(start_paused = true)]
async fn a_one_for_all_group_restart_counts_once() {
    let (log, registry) = (Log::new(), Registry::new());
    let spec = SupervisorSpec::new(Strategy::OneForAll)
        .intensity(1)
        .child(probe("a", &log))
        .child(probe("b", &log))
        .child(probe("c", &log));
    let sup = Supervisor::start(spec, &registry).await.unwrap();

    // Three children restarted, one restart against the intensity.
    crash_and_wait_for_restart(&registry, "b").await;
    settle().await;
    let counts = sup.count_children().await.unwrap();
    assert_eq!(counts.active, 3);
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_child_that_cannot_be_restarted_exhausts_the_intensity() {
    let (log, registry) = (Log::new(), Registry::new());
    let args = ProbeArgs::new("x", &log);
    let init = args.init.clone();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(3)
        .child(probe_with(args));
    let sup = Supervisor::start(spec, &registry).await.unwrap();
    log.take();

    init.fail();
    crash(&registry, "x", How::Panic);

    // Each failed start is one more restart, as OTP retries: the crash and
    // two retries fit in the intensity of 3, the fourth attempt does not.
    assert_eq!(sup.join().await, ExitReason::MaxRestartIntensity);
    assert_eq!(
        log.take(),
        ["terminate x: panic: boom", "init x", "init x", "init x"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_init_is_a_failed_restart_not_a_crash_of_the_supervisor() {
    let (log, registry) = (Log::new(), Registry::new());
    let args = ProbeArgs::new("x", &log);
    let init = args.init.clone();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(1)
        .child(probe_with(args));
    let sup = Supervisor::start(spec, &registry).await.unwrap();

    init.panic();
    crash(&registry, "x", How::Error);

    assert_eq!(sup.join().await, ExitReason::MaxRestartIntensity);
}

/// A child supervisor `inner` (one_for_one, intensity 1) holding worker `x`.
fn inner(log: &Log) -> ChildSpec {
    ChildSpec::supervisor(
        "inner",
        SupervisorSpec::new(Strategy::OneForOne)
            .intensity(1)
            .period(Duration::from_secs(10))
            .child(probe("x", log)),
    )
}

#[tokio::test(start_paused = true)]
async fn a_child_supervisor_that_gives_up_makes_the_parent_apply_its_strategy() {
    let (log, registry) = (Log::new(), Registry::new());
    let spec = SupervisorSpec::new(Strategy::OneForAll)
        .intensity(5)
        .child(probe("w", &log))
        .child(inner(&log));
    let sup = Supervisor::start(spec, &registry).await.unwrap();
    assert_eq!(log.take(), ["init w", "init x"]);

    crash_and_wait_for_restart(&registry, "x").await;
    assert_eq!(
        log_after(&log, 2).await,
        ["terminate x: panic: boom", "init x"]
    );

    // The second crash exceeds `inner`'s intensity: it exits, and the
    // one_for_all parent restarts the whole group.
    crash(&registry, "x", How::Panic);
    assert_eq!(
        log_after(&log, 4).await,
        [
            "terminate x: panic: boom",
            "terminate w: shutdown",
            "init w",
            "init x",
        ]
    );
    let tree = sup.tree().await.unwrap();
    let restarts: Vec<(String, u32)> = tree
        .children
        .iter()
        .map(|n| (n.info.id.clone(), n.info.restarts))
        .collect();
    assert_eq!(restarts, [("w".to_string(), 1), ("inner".to_string(), 1)]);
    // A fresh `inner` has a fresh restart history and a fresh `x`.
    let inner_tree = tree.children[1].supervisor.as_ref().unwrap();
    assert_eq!(inner_tree.children[0].info.restarts, 0);
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn at_the_top_the_tree_exits_with_a_reported_reason() {
    let (log, registry) = (Log::new(), Registry::new());
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(0)
        .child(probe("w", &log))
        .child(inner(&log));
    let sup = Supervisor::start(spec, &registry).await.unwrap();
    log.take();

    crash_and_wait_for_restart(&registry, "x").await;
    crash(&registry, "x", How::Panic);

    // `inner` gives up, and the top (intensity 0) gives up on the first restart.
    assert_eq!(sup.join().await, ExitReason::MaxRestartIntensity);
    assert_eq!(
        log.take(),
        [
            "terminate x: panic: boom",
            "init x",
            "terminate x: panic: boom",
            "terminate w: shutdown",
        ]
    );
    assert!(registry.names().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_transient_child_supervisor_that_gives_up_is_not_restarted() {
    // OTP's supervisor exits with reason `shutdown` on max intensity, which
    // is a normal exit for a transient child.
    let (log, registry) = (Log::new(), Registry::new());
    let spec = SupervisorSpec::new(Strategy::OneForAll)
        .child(probe("w", &log))
        .child(inner(&log).restart(Restart::Transient));
    let sup = Supervisor::start(spec, &registry).await.unwrap();

    crash_and_wait_for_restart(&registry, "x").await;
    log.take();
    crash(&registry, "x", How::Panic);

    assert_eq!(log_after(&log, 1).await, ["terminate x: panic: boom"]);
    let children = sup.which_children().await.unwrap();
    assert_eq!(children[0].status, ChildStatus::Running);
    assert_eq!(children[1].status, ChildStatus::Stopped);
    sup.shutdown().await;
}
