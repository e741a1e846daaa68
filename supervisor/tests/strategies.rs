//! OTP's restart strategies: which children a crash restarts, and in which
//! order they are stopped and started again.

mod common;

use std::time::Duration;

use common::*;
use drover_supervisor::{ChildStatus, ExitReason, Registry, Strategy, Supervisor, SupervisorSpec};

async fn start_abc(strategy: Strategy, log: &Log, registry: &Registry) -> Supervisor {
    let spec = SupervisorSpec::new(strategy)
        .intensity(5)
        .period(Duration::from_secs(60))
        .child(probe("a", log))
        .child(probe("b", log))
        .child(probe("c", log));
    let sup = Supervisor::start(spec, registry).await.unwrap();
    assert_eq!(log.take(), ["init a", "init b", "init c"]);
    sup
}

async fn restarts(sup: &Supervisor) -> Vec<(String, ChildStatus, u32)> {
    sup.which_children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.id, c.status, c.restarts))
        .collect()
}

fn row(id: &str, restarts: u32) -> (String, ChildStatus, u32) {
    (id.to_string(), ChildStatus::Running, restarts)
}

#[tokio::test(start_paused = true)]
async fn one_for_one_restarts_only_the_dead_child() {
    let (log, registry) = (Log::new(), Registry::new());
    let sup = start_abc(Strategy::OneForOne, &log, &registry).await;

    crash(&registry, "b", How::Panic);

    assert_eq!(
        log_after(&log, 2).await,
        ["terminate b: panic: boom", "init b"]
    );
    assert_eq!(
        restarts(&sup).await,
        [row("a", 0), row("b", 1), row("c", 0)]
    );
    assert_eq!(sup.shutdown().await, ExitReason::Shutdown);
}

#[tokio::test(start_paused = true)]
async fn one_for_all_stops_the_others_in_reverse_order_and_restarts_all_in_order() {
    let (log, registry) = (Log::new(), Registry::new());
    let sup = start_abc(Strategy::OneForAll, &log, &registry).await;

    crash(&registry, "b", How::Error);

    assert_eq!(
        log_after(&log, 6).await,
        [
            "terminate b: error: boom",
            "terminate c: shutdown",
            "terminate a: shutdown",
            "init a",
            "init b",
            "init c",
        ]
    );
    assert_eq!(
        restarts(&sup).await,
        [row("a", 1), row("b", 1), row("c", 1)]
    );
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn rest_for_one_restarts_the_dead_child_and_those_started_after_it() {
    let (log, registry) = (Log::new(), Registry::new());
    let sup = start_abc(Strategy::RestForOne, &log, &registry).await;

    crash(&registry, "b", How::Panic);

    assert_eq!(
        log_after(&log, 4).await,
        [
            "terminate b: panic: boom",
            "terminate c: shutdown",
            "init b",
            "init c",
        ]
    );
    assert_eq!(
        restarts(&sup).await,
        [row("a", 0), row("b", 1), row("c", 1)]
    );
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn rest_for_one_on_the_last_child_restarts_only_it() {
    let (log, registry) = (Log::new(), Registry::new());
    let sup = start_abc(Strategy::RestForOne, &log, &registry).await;

    crash(&registry, "c", How::Panic);

    assert_eq!(
        log_after(&log, 2).await,
        ["terminate c: panic: boom", "init c"]
    );
    assert_eq!(
        restarts(&sup).await,
        [row("a", 0), row("b", 0), row("c", 1)]
    );
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn rest_for_one_on_the_first_child_restarts_everything() {
    let (log, registry) = (Log::new(), Registry::new());
    let sup = start_abc(Strategy::RestForOne, &log, &registry).await;

    crash(&registry, "a", How::Error);

    assert_eq!(
        log_after(&log, 6).await,
        [
            "terminate a: error: boom",
            "terminate c: shutdown",
            "terminate b: shutdown",
            "init a",
            "init b",
            "init c",
        ]
    );
    sup.shutdown().await;
}

/// Bumps the counters of a and b, crashes b, and returns (a, b) afterwards.
async fn counters_after_crashing_b(strategy: Strategy) -> (i64, i64) {
    let (log, registry) = (Log::new(), Registry::new());
    let mut b = ProbeArgs::new("b", &log);
    b.start = 100;
    let spec = SupervisorSpec::new(strategy)
        .child(probe("a", &log))
        .child(probe_with(b));
    let sup = Supervisor::start(spec, &registry).await.unwrap();
    let (a_ref, b_ref) = (registry.server::<Probe>("a"), registry.server::<Probe>("b"));
    for _ in 0..3 {
        a_ref.call(ProbeCall::Incr, SECOND).await.unwrap();
        b_ref.call(ProbeCall::Incr, SECOND).await.unwrap();
    }
    assert_eq!(b_ref.call(ProbeCall::Get, SECOND).await, Ok(103));

    let before = registry.incarnation("b");
    crash(&registry, "b", How::Panic);
    until("b restarted", || async {
        registry.incarnation("b").is_some_and(|i| Some(i) != before)
    })
    .await;
    settle().await;

    let a = a_ref.call(ProbeCall::Get, SECOND).await.unwrap();
    let b = b_ref.call(ProbeCall::Get, SECOND).await.unwrap();
    sup.shutdown().await;
    (a, b)
}

#[tokio::test(start_paused = true)]
async fn a_restarted_child_starts_fresh_from_its_args_and_its_sibling_keeps_state() {
    assert_eq!(
        counters_after_crashing_b(Strategy::OneForOne).await,
        (3, 100)
    );
}

#[tokio::test(start_paused = true)]
async fn one_for_all_gives_every_sibling_fresh_state() {
    assert_eq!(
        counters_after_crashing_b(Strategy::OneForAll).await,
        (0, 100)
    );
}
