//! OTP restart types: permanent children are always restarted, transient
//! ones only after an abnormal exit, temporary ones never (and their spec
//! is dropped).

mod common;

use common::*;
use drover_supervisor::{ChildStatus, Registry, Restart, Strategy, Supervisor, SupervisorSpec};

#[derive(Debug, PartialEq)]
enum Outcome {
    Restarted,
    KeptStopped,
    Removed,
}

/// Starts `x` with the given restart type next to a permanent sibling,
/// stops `x` the given way and reports what the supervisor did.
async fn exit_with(restart: Restart, how: How) -> Outcome {
    let (log, registry) = (Log::new(), Registry::new());
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe("x", &log).restart(restart))
        .child(probe("sibling", &log));
    let sup = Supervisor::start(spec, &registry).await.unwrap();
    log.take();

    crash(&registry, "x", how);
    let terminated = format!("terminate x: {}", how.reason());
    until("x terminated", || async { log.count(&terminated) == 1 }).await;
    settle().await;

    let children = sup.which_children().await.unwrap();
    let x = children.iter().find(|c| c.id == "x");
    let restarted = log.count("init x") == 1;
    let outcome = match x {
        None => Outcome::Removed,
        Some(x) if x.status == ChildStatus::Running => {
            assert!(restarted, "{restart:?}/{how:?}: running without a new init");
            assert_eq!(x.restarts, 1);
            Outcome::Restarted
        }
        Some(x) => {
            assert!(!restarted, "{restart:?}/{how:?}: init ran but x is stopped");
            assert_eq!(x.restarts, 0);
            Outcome::KeptStopped
        }
    };
    // The sibling is never touched under one_for_one.
    assert_eq!(log.count("terminate sibling: shutdown"), 0);
    assert_eq!(
        registry.names().contains(&"x".to_string()),
        outcome == Outcome::Restarted
    );
    sup.shutdown().await;
    outcome
}

#[tokio::test(start_paused = true)]
async fn permanent_children_are_restarted_after_any_exit() {
    for how in [How::Normal, How::Shutdown, How::Error, How::Panic] {
        assert_eq!(
            exit_with(Restart::Permanent, how).await,
            Outcome::Restarted,
            "{how:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn transient_children_are_restarted_only_after_an_abnormal_exit() {
    for (how, expected) in [
        (How::Normal, Outcome::KeptStopped),
        (How::Shutdown, Outcome::KeptStopped),
        (How::Error, Outcome::Restarted),
        (How::Panic, Outcome::Restarted),
    ] {
        assert_eq!(
            exit_with(Restart::Transient, how).await,
            expected,
            "{how:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn temporary_children_are_never_restarted_and_their_spec_is_dropped() {
    for how in [How::Normal, How::Shutdown, How::Error, How::Panic] {
        assert_eq!(
            exit_with(Restart::Temporary, how).await,
            Outcome::Removed,
            "{how:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_transient_child_stopped_normally_can_be_restarted_by_hand() {
    let (log, registry) = (Log::new(), Registry::new());
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe("x", &log).restart(Restart::Transient));
    let sup = Supervisor::start(spec, &registry).await.unwrap();
    crash(&registry, "x", How::Normal);
    until("x gone", || async { registry.incarnation("x").is_none() }).await;
    settle().await;

    sup.restart_child("x").await.unwrap();
    assert!(registry.incarnation("x").is_some());
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn one_for_all_stops_a_temporary_sibling_for_good() {
    let (log, registry) = (Log::new(), Registry::new());
    let spec = SupervisorSpec::new(Strategy::OneForAll)
        .child(probe("a", &log))
        .child(probe("t", &log).restart(Restart::Temporary))
        .child(probe("c", &log));
    let sup = Supervisor::start(spec, &registry).await.unwrap();
    log.take();

    crash(&registry, "a", How::Panic);

    assert_eq!(
        log_after(&log, 5).await,
        [
            "terminate a: panic: boom",
            "terminate c: shutdown",
            "terminate t: shutdown",
            "init a",
            "init c",
        ]
    );
    let ids: Vec<String> = sup
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["a", "c"]);
    sup.shutdown().await;
}
