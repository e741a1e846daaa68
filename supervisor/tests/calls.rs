//! Calls and casts: across restarts, timeouts, and bounded mailboxes.

mod common;

use std::time::Duration;

use common::*;
use drover_supervisor::{
    CallError, CastError, ChildSpec, ExitReason, Registry, Shutdown, Strategy, Supervisor,
    SupervisorSpec, WorkerSpec,
};
use tokio::time::Instant;

async fn one_probe(args: ProbeArgs, registry: &Registry) -> Supervisor {
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(5)
        .child(probe_with(args));
    Supervisor::start(spec, registry).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_crashing_call_gets_the_exit_reason_and_the_next_call_reaches_the_new_incarnation() {
    let (log, registry) = (Log::new(), Registry::new());
    let mut args = ProbeArgs::new("p", &log);
    args.start = 10;
    let sup = one_probe(args, &registry).await;
    let p = registry.server::<Probe>("p");
    assert_eq!(p.call(ProbeCall::Incr, SECOND).await, Ok(11));
    let first = registry.incarnation("p").unwrap();

    assert_eq!(
        p.call(ProbeCall::Exit(How::Panic), SECOND).await,
        Err(CallError::ServerExited(ExitReason::Panic("boom".into())))
    );
    until("p restarted", || async {
        registry.incarnation("p").is_some_and(|i| i != first)
    })
    .await;

    // Same handle, new incarnation, fresh state from the args.
    assert_eq!(p.call(ProbeCall::Get, SECOND).await, Ok(10));
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn calls_queued_behind_a_crash_get_the_exit_reason() {
    let (log, registry) = (Log::new(), Registry::new());
    let sup = one_probe(ProbeArgs::new("p", &log), &registry).await;
    let p = registry.server::<Probe>("p");

    p.cast(ProbeCast::Sleep(SECOND)).unwrap();
    p.cast(ProbeCast::Exit(How::Error)).unwrap();
    // Queued after the fatal cast: never handled by this incarnation.
    assert_eq!(
        p.call(ProbeCall::Get, Duration::from_secs(10)).await,
        Err(CallError::ServerExited(ExitReason::error("boom")))
    );
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_call_returns_timeout_after_its_timeout_and_the_server_lives_on() {
    let (log, registry) = (Log::new(), Registry::new());
    let sup = one_probe(ProbeArgs::new("p", &log), &registry).await;
    let p = registry.server::<Probe>("p");
    p.call(ProbeCall::Incr, SECOND).await.unwrap();

    let began = Instant::now();
    assert_eq!(
        p.call(ProbeCall::Sleep(Duration::from_secs(5)), SECOND)
            .await,
        Err(CallError::Timeout)
    );
    assert_eq!(began.elapsed(), SECOND);

    // The late reply is dropped; the next call waits its turn and succeeds.
    assert_eq!(p.call(ProbeCall::Get, Duration::from_secs(10)).await, Ok(1));
    assert_eq!(began.elapsed(), Duration::from_secs(5));
    assert_eq!(sup.which_children().await.unwrap()[0].restarts, 0);
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_full_mailbox_refuses_casts_and_makes_calls_wait_within_their_timeout() {
    let (log, registry) = (Log::new(), Registry::new());
    let worker = WorkerSpec::<Probe>::new("p", ProbeArgs::new("p", &log)).mailbox_capacity(2);
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::worker("p", worker));
    let sup = Supervisor::start(spec, &registry).await.unwrap();
    let p = registry.server::<Probe>("p");

    // No await between the casts, so the server cannot drain any of them.
    assert_eq!(p.cast(ProbeCast::Sleep(Duration::from_secs(10))), Ok(()));
    assert_eq!(p.cast(ProbeCast::Sleep(Duration::from_secs(10))), Ok(()));
    assert_eq!(p.cast(ProbeCast::Incr), Err(CastError::MailboxFull));

    let began = Instant::now();
    assert_eq!(
        p.call(ProbeCall::Get, SECOND).await,
        Err(CallError::Timeout)
    );
    assert_eq!(began.elapsed(), SECOND);

    // Once the backlog drains, the server answers again; the refused cast never ran.
    assert_eq!(p.call(ProbeCall::Get, Duration::from_secs(60)).await, Ok(0));
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_stop_request_overtakes_queued_messages() {
    let (log, registry) = (Log::new(), Registry::new());
    let worker = WorkerSpec::<Probe>::new("p", ProbeArgs::new("p", &log)).mailbox_capacity(1);
    let child = ChildSpec::worker("p", worker).shutdown(Shutdown::Timeout(Duration::from_secs(60)));
    let sup = Supervisor::start(
        SupervisorSpec::new(Strategy::OneForOne).child(child),
        &registry,
    )
    .await
    .unwrap();
    let p = registry.server::<Probe>("p");
    let nap = Duration::from_secs(10);
    p.cast(ProbeCast::Sleep(nap)).unwrap();
    // The second nap fits once the server has taken the first one.
    until("second nap queued", || async {
        p.cast(ProbeCast::Sleep(nap)).is_ok()
    })
    .await;

    let began = Instant::now();
    sup.shutdown().await;
    // The running nap finishes (handlers are not interrupted); the queued one never runs.
    assert!(began.elapsed() <= nap, "{:?}", began.elapsed());
    assert_eq!(log.take(), ["init p", "terminate p: shutdown"]);
}

#[tokio::test(start_paused = true)]
async fn a_name_nobody_holds_is_not_running() {
    let registry = Registry::new();
    let ghost = registry.server::<Probe>("ghost");
    assert_eq!(
        ghost.call(ProbeCall::Get, SECOND).await,
        Err(CallError::NotRunning)
    );
    assert_eq!(ghost.cast(ProbeCast::Incr), Err(CastError::NotRunning));
}

#[tokio::test(start_paused = true)]
async fn a_name_held_by_another_server_type_is_a_typed_error() {
    let (log, registry) = (Log::new(), Registry::new());
    let sup = one_probe(ProbeArgs::new("p", &log), &registry).await;
    let wrong = registry.server::<Kv>("p");
    assert!(matches!(
        wrong.call(KvCall::Get { key: "k".into() }, SECOND).await,
        Err(CallError::WrongServerType { .. })
    ));
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_stopped_server_is_not_running_for_callers() {
    let (log, registry) = (Log::new(), Registry::new());
    let sup = one_probe(ProbeArgs::new("p", &log), &registry).await;
    let p = registry.server::<Probe>("p");
    sup.terminate_child("p").await.unwrap();
    assert_eq!(
        p.call(ProbeCall::Get, SECOND).await,
        Err(CallError::NotRunning)
    );
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_caller_of_a_killed_server_learns_it_was_killed() {
    let (log, registry) = (Log::new(), Registry::new());
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe("p", &log).shutdown(Shutdown::BrutalKill));
    let sup = Supervisor::start(spec, &registry).await.unwrap();
    let p = registry.server::<Probe>("p");
    let caller = tokio::spawn(async move {
        p.call(
            ProbeCall::Sleep(Duration::from_secs(10)),
            Duration::from_secs(60),
        )
        .await
    });
    settle().await;

    sup.terminate_child("p").await.unwrap();
    assert_eq!(
        caller.await.unwrap(),
        Err(CallError::ServerExited(ExitReason::Killed))
    );
    sup.shutdown().await;
}
