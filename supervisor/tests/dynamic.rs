//! The dynamic API (`start_child`, `terminate_child`, `restart_child`,
//! `delete_child`, `which_children`, `count_children`) and tree snapshots.

mod common;

use std::time::Duration;

use common::*;
use drover_supervisor::{
    ChildCounts, ChildKind, ChildSpec, ChildStatus, ExitReason, Registry, Restart, StartError,
    Strategy, Supervisor, SupervisorError, SupervisorSpec,
};

async fn start(strategy: Strategy, ids: &[&str], log: &Log, registry: &Registry) -> Supervisor {
    let mut spec = SupervisorSpec::new(strategy).intensity(5);
    for id in ids {
        spec = spec.child(probe(id, log));
    }
    let sup = Supervisor::start(spec, registry).await.unwrap();
    log.take();
    sup
}

fn statuses(children: &[drover_supervisor::ChildInfo]) -> Vec<(&str, ChildStatus)> {
    children.iter().map(|c| (c.id.as_str(), c.status)).collect()
}

#[tokio::test(start_paused = true)]
async fn start_child_appends_a_child_and_refuses_duplicates() {
    let (log, registry) = (Log::new(), Registry::new());
    let sup = start(Strategy::OneForOne, &["a"], &log, &registry).await;

    sup.start_child(probe("d", &log)).await.unwrap();
    assert_eq!(log.take(), ["init d"]);
    let children = sup.which_children().await.unwrap();
    assert_eq!(
        statuses(&children),
        [("a", ChildStatus::Running), ("d", ChildStatus::Running)]
    );
    assert_eq!(
        sup.start_child(probe("d", &log)).await,
        Err(SupervisorError::AlreadyStarted("d".into()))
    );

    sup.terminate_child("d").await.unwrap();
    assert_eq!(
        sup.start_child(probe("d", &log)).await,
        Err(SupervisorError::AlreadyPresent("d".into()))
    );
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_child_that_fails_to_start_dynamically_leaves_no_spec() {
    let (log, registry) = (Log::new(), Registry::new());
    let sup = start(Strategy::OneForOne, &["a"], &log, &registry).await;
    let bad = ProbeArgs::new("bad", &log);
    bad.init.fail();

    assert_eq!(
        sup.start_child(probe_with(bad)).await,
        Err(SupervisorError::StartFailed {
            id: "bad".into(),
            error: StartError::InitFailed(ExitReason::error("init refused")),
        })
    );
    assert_eq!(sup.which_children().await.unwrap().len(), 1);
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn terminate_restart_and_delete_follow_otp() {
    let (log, registry) = (Log::new(), Registry::new());
    let sup = start(Strategy::OneForOne, &["a", "b"], &log, &registry).await;

    assert_eq!(
        sup.delete_child("a").await,
        Err(SupervisorError::Running("a".into()))
    );
    assert_eq!(
        sup.restart_child("a").await,
        Err(SupervisorError::Running("a".into()))
    );

    sup.terminate_child("a").await.unwrap();
    assert_eq!(log.take(), ["terminate a: shutdown"]);
    // A terminated child is not restarted by its supervisor.
    settle().await;
    let children = sup.which_children().await.unwrap();
    assert_eq!(
        statuses(&children),
        [("a", ChildStatus::Stopped), ("b", ChildStatus::Running)]
    );
    assert_eq!(registry.incarnation("a"), None);

    sup.restart_child("a").await.unwrap();
    assert_eq!(log.take(), ["init a"]);
    assert!(registry.incarnation("a").is_some());

    sup.terminate_child("a").await.unwrap();
    sup.delete_child("a").await.unwrap();
    let children = sup.which_children().await.unwrap();
    assert_eq!(statuses(&children), [("b", ChildStatus::Running)]);

    for result in [
        sup.terminate_child("a").await,
        sup.restart_child("a").await,
        sup.delete_child("a").await,
    ] {
        assert_eq!(result, Err(SupervisorError::NotFound("a".into())));
    }
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn terminating_a_temporary_child_drops_its_spec() {
    let (log, registry) = (Log::new(), Registry::new());
    let sup = start(Strategy::OneForOne, &["a"], &log, &registry).await;
    sup.start_child(probe("t", &log).restart(Restart::Temporary))
        .await
        .unwrap();

    sup.terminate_child("t").await.unwrap();
    assert_eq!(sup.which_children().await.unwrap().len(), 1);
    assert_eq!(
        sup.restart_child("t").await,
        Err(SupervisorError::NotFound("t".into()))
    );
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_dynamic_child_counts_as_started_last_for_rest_for_one() {
    let (log, registry) = (Log::new(), Registry::new());
    let sup = start(Strategy::RestForOne, &["a", "b"], &log, &registry).await;
    sup.start_child(probe("d", &log)).await.unwrap();
    log.take();

    crash(&registry, "a", How::Panic);
    assert_eq!(
        log_after(&log, 6).await,
        [
            "terminate a: panic: boom",
            "terminate d: shutdown",
            "terminate b: shutdown",
            "init a",
            "init b",
            "init d",
        ]
    );
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn count_children_counts_specs_running_children_and_kinds() {
    let (log, registry) = (Log::new(), Registry::new());
    let inner = SupervisorSpec::new(Strategy::OneForOne).child(probe("x", &log));
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe("a", &log))
        .child(probe("b", &log))
        .child(ChildSpec::supervisor("inner", inner));
    let sup = Supervisor::start(spec, &registry).await.unwrap();
    sup.terminate_child("b").await.unwrap();

    assert_eq!(
        sup.count_children().await.unwrap(),
        ChildCounts {
            specs: 3,
            active: 2,
            supervisors: 1,
            workers: 2,
        }
    );
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_tree_snapshot_nests_supervisors_with_status_and_restart_counts() {
    let (log, registry) = (Log::new(), Registry::new());
    let inner = SupervisorSpec::new(Strategy::OneForAll)
        .intensity(3)
        .period(Duration::from_secs(30))
        .child(probe("x", &log))
        .child(probe("y", &log));
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe("a", &log))
        .child(ChildSpec::supervisor("inner", inner))
        .child(probe("b", &log).restart(Restart::Transient));
    let sup = Supervisor::start(spec, &registry).await.unwrap();

    let before = registry.incarnation("y").unwrap();
    crash(&registry, "x", How::Panic);
    until("y restarted with x", || async {
        registry.incarnation("y").is_some_and(|i| i != before)
    })
    .await;
    crash(&registry, "b", How::Normal);
    until("b gone", || async { registry.incarnation("b").is_none() }).await;
    settle().await;

    let tree = sup.tree().await.unwrap();
    assert_eq!(tree.strategy, Strategy::OneForOne);
    let top: Vec<(&str, ChildKind, ChildStatus, u32)> = tree
        .children
        .iter()
        .map(|n| {
            (
                n.info.id.as_str(),
                n.info.kind,
                n.info.status,
                n.info.restarts,
            )
        })
        .collect();
    assert_eq!(
        top,
        [
            ("a", ChildKind::Worker, ChildStatus::Running, 0),
            ("inner", ChildKind::Supervisor, ChildStatus::Running, 0),
            ("b", ChildKind::Worker, ChildStatus::Stopped, 0),
        ]
    );
    let inner = tree.children[1].supervisor.as_ref().unwrap();
    assert_eq!(
        (inner.strategy, inner.intensity, inner.period_ms),
        (Strategy::OneForAll, 3, 30_000)
    );
    let nested: Vec<(&str, u32)> = inner
        .children
        .iter()
        .map(|n| (n.info.id.as_str(), n.info.restarts))
        .collect();
    assert_eq!(nested, [("x", 1), ("y", 1)]);
    assert!(tree.children[0].supervisor.is_none());

    let text = tree.to_string();
    assert!(
        text.contains("  inner [Supervisor Permanent] Running, restarts: 0"),
        "{text}"
    );
    assert!(
        text.contains("    x [Worker Permanent] Running, restarts: 1"),
        "{text}"
    );
    let json = serde_json::to_value(&tree).unwrap();
    assert_eq!(
        json["children"][1]["supervisor"]["children"][0]["restarts"],
        1
    );
    assert_eq!(json["children"][2]["status"], "Stopped");
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_supervisor_holds_a_bounded_number_of_children() {
    let log = Log::new();
    let mut spec = SupervisorSpec::new(Strategy::OneForOne);
    for i in 0..=drover_supervisor::MAX_CHILDREN {
        spec = spec.child(probe(&format!("w{i}"), &log));
    }
    assert!(matches!(
        Supervisor::start(spec, &Registry::new())
            .await
            .err()
            .unwrap(),
        StartError::InvalidSpec(_)
    ));
    assert_eq!(log.len(), 0);
}
