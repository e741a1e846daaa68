//! The Store contract on the embedded store: round trips, reopen, idempotent
//! starts, snapshots, listings, refusals and leases.

mod common;

use common::{entry, entry_bytes, open, program, program_and_run, start};
use drover_store::{
    Deployment, Record, RunFilter, RunId, RunStatus, StartOutcome, Store, StoreError,
};

#[tokio::test]
async fn start_append_load_and_journal_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (store, report) = open(dir.path());
    assert_eq!(report.records, 0);
    assert_eq!(report.truncated, None);

    let (hash, record) = program("scan");
    store.append(vec![record]).await.unwrap();
    let mut s = start("scan", hash, 10);
    s.input = b"{\"customer\":42}".to_vec();
    let run = store.start_run(s.clone()).await.unwrap();
    let StartOutcome::Created(run) = run else {
        panic!("expected a new run, got {run:?}")
    };
    assert_eq!(run, RunId(1));

    store
        .append(vec![entry(run, 0), entry(run, 1)])
        .await
        .unwrap();
    store.append(vec![entry(run, 2)]).await.unwrap();

    let data = store.load_run(run).await.unwrap().expect("run exists");
    assert_eq!(data.start, s);
    assert_eq!(data.snapshot, None);
    assert_eq!(
        data.journal,
        (0..3).map(|i| (i, entry_bytes(run, i))).collect::<Vec<_>>()
    );
    assert_eq!(data.finished, None);
    assert_eq!(store.journal(run).await.unwrap(), data.journal);
    assert_eq!(store.unfinished().await.unwrap(), vec![run]);

    store
        .append(vec![Record::Finished {
            run,
            outcome: b"ok".to_vec(),
            at_ms: 99,
        }])
        .await
        .unwrap();
    let data = store.load_run(run).await.unwrap().unwrap();
    let finished = data.finished.expect("finished");
    assert_eq!(
        (finished.outcome.as_slice(), finished.at_ms),
        (&b"ok"[..], 99)
    );
    assert!(store.unfinished().await.unwrap().is_empty());
    assert_eq!(store.load_run(RunId(77)).await.unwrap(), None);
    assert!(store.journal(RunId(77)).await.unwrap().is_empty());

    let stats = store.stats();
    assert_eq!(stats.appends, 5);
    assert_eq!(stats.records, 6);
    assert!(stats.fsyncs >= 1 && stats.fsyncs <= 5, "{stats:?}");
}

#[tokio::test]
async fn reopening_rebuilds_the_same_index() {
    let dir = tempfile::tempdir().unwrap();
    let (before, runs, programs, deployments) = {
        let (store, _) = open(dir.path());
        let (hash, a) = program_and_run(&store, "a").await;
        let b = store.start_run(start("b", hash, 5)).await.unwrap().run();
        store.append(vec![entry(a, 1), entry(b, 7)]).await.unwrap();
        store
            .append(vec![
                Record::Snapshot {
                    run: a,
                    upto_seq: 1,
                    state: b"state".to_vec(),
                },
                entry(a, 2),
                Record::Deploy {
                    workflow: "a".into(),
                    hash,
                    at_ms: 3,
                },
            ])
            .await
            .unwrap();
        store
            .append(vec![Record::Finished {
                run: b,
                outcome: vec![],
                at_ms: 8,
            }])
            .await
            .unwrap();
        let mut loaded = Vec::new();
        for run in [a, b] {
            loaded.push((
                store.load_run(run).await.unwrap(),
                store.journal(run).await.unwrap(),
            ));
        }
        (
            loaded,
            store.runs(&RunFilter::default()).await.unwrap(),
            store.program(hash).await.unwrap(),
            store.deployments().await.unwrap(),
        )
    };

    let (store, report) = open(dir.path());
    assert_eq!(report.frames, 6);
    assert_eq!(report.records, 9);
    assert_eq!(report.runs, 2);
    assert_eq!(report.truncated, None);
    let mut after = Vec::new();
    for run in [RunId(1), RunId(2)] {
        after.push((
            store.load_run(run).await.unwrap(),
            store.journal(run).await.unwrap(),
        ));
    }
    assert_eq!(after, before);
    assert_eq!(store.runs(&RunFilter::default()).await.unwrap(), runs);
    let hash = runs[0].program;
    assert_eq!(store.program(hash).await.unwrap(), programs);
    assert_eq!(store.deployments().await.unwrap(), deployments);
    assert_eq!(store.unfinished().await.unwrap(), vec![RunId(1)]);
    // Ids keep rising after a reopen; they are never reused.
    let next = store.start_run(start("a", hash, 9)).await.unwrap();
    assert_eq!(next, StartOutcome::Created(RunId(3)));
}

#[tokio::test]
async fn the_same_idempotency_key_gives_the_same_run_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut keyed = {
        let (store, _) = open(dir.path());
        let (hash, _) = program_and_run(&store, "order").await;
        let mut keyed = start("order", hash, 2);
        keyed.idempotency_key = Some("order-1234".into());
        let first = store.start_run(keyed.clone()).await.unwrap();
        assert_eq!(first, StartOutcome::Created(RunId(2)));
        assert_eq!(
            store.start_run(keyed.clone()).await.unwrap(),
            StartOutcome::Existing(RunId(2))
        );
        keyed
    };
    let (store, _) = open(dir.path());
    // Even with other fields changed: the key alone names the run.
    keyed.input = b"different".to_vec();
    assert_eq!(
        store.start_run(keyed.clone()).await.unwrap(),
        StartOutcome::Existing(RunId(2))
    );
    keyed.idempotency_key = Some("order-5678".into());
    assert_eq!(
        store.start_run(keyed).await.unwrap(),
        StartOutcome::Created(RunId(3))
    );
}

#[tokio::test]
async fn concurrent_starts_with_one_key_make_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let store = std::sync::Arc::new(store);
    let (hash, _) = program_and_run(&store, "pay").await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = store.clone();
        let mut s = start("pay", hash, i);
        s.idempotency_key = Some("payment-7".into());
        tasks.push(tokio::spawn(async move { store.start_run(s).await }));
    }
    let mut created = 0;
    let mut runs = std::collections::BTreeSet::new();
    for t in tasks {
        let outcome = t.await.unwrap().unwrap();
        created += matches!(outcome, StartOutcome::Created(_)) as usize;
        runs.insert(outcome.run());
    }
    assert_eq!(created, 1);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(store.runs(&RunFilter::default()).await.unwrap().len(), 2);
}

#[tokio::test]
async fn load_run_after_a_snapshot_returns_only_later_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let (_, run) = program_and_run(&store, "w").await;
    for seq in 0..10 {
        store.append(vec![entry(run, seq)]).await.unwrap();
    }
    store
        .append(vec![Record::Snapshot {
            run,
            upto_seq: 6,
            state: b"after 6".to_vec(),
        }])
        .await
        .unwrap();
    let check = |data: drover_store::RunData| {
        let snap = data.snapshot.expect("snapshot");
        assert_eq!((snap.upto_seq, snap.state.as_slice()), (6, &b"after 6"[..]));
        let seqs: Vec<u64> = data.journal.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, vec![7, 8, 9]);
        assert_eq!(data.journal[0].1, entry_bytes(run, 7));
    };
    check(store.load_run(run).await.unwrap().unwrap());
    assert_eq!(store.journal(run).await.unwrap().len(), 10);

    // A snapshot past the last entry moves the frontier: later entries go above it.
    store
        .append(vec![Record::Snapshot {
            run,
            upto_seq: 20,
            state: b"s20".to_vec(),
        }])
        .await
        .unwrap();
    let err = store.append(vec![entry(run, 15)]).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SeqConflict {
                seq: 15,
                frontier: 20,
                ..
            }
        ),
        "{err}"
    );
    store.append(vec![entry(run, 21)]).await.unwrap();
    drop(store);
    let (store, _) = open(dir.path());
    let data = store.load_run(run).await.unwrap().unwrap();
    assert_eq!(data.snapshot.unwrap().upto_seq, 20);
    assert_eq!(data.journal, vec![(21, entry_bytes(run, 21))]);
}

#[tokio::test]
async fn runs_filters_by_workflow_status_time_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let (a, ra) = program("a");
    let (b, rb) = program("b");
    store.append(vec![ra, rb]).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..10u64 {
        let (wf, hash) = if i % 2 == 0 { ("a", a) } else { ("b", b) };
        ids.push(
            store
                .start_run(start(wf, hash, 100 + i))
                .await
                .unwrap()
                .run(),
        );
    }
    for run in &ids[..4] {
        store
            .append(vec![Record::Finished {
                run: *run,
                outcome: vec![],
                at_ms: 500,
            }])
            .await
            .unwrap();
    }
    let list = |f: RunFilter| {
        let store = &store;
        async move {
            store
                .runs(&f)
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.run.0)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(RunFilter::default()).await,
        (1..=10).collect::<Vec<_>>()
    );
    let only_a = RunFilter {
        workflow: Some("a".into()),
        ..RunFilter::default()
    };
    assert_eq!(list(only_a.clone()).await, vec![1, 3, 5, 7, 9]);
    let running = RunFilter {
        status: Some(RunStatus::Running),
        ..only_a.clone()
    };
    assert_eq!(list(running).await, vec![5, 7, 9]);
    let finished = RunFilter {
        status: Some(RunStatus::Finished),
        ..RunFilter::default()
    };
    assert_eq!(list(finished).await, vec![1, 2, 3, 4]);
    let window = RunFilter {
        started_after_ms: Some(103),
        started_before_ms: Some(107),
        ..RunFilter::default()
    };
    assert_eq!(list(window).await, vec![4, 5, 6, 7]);
    let page = RunFilter {
        after: Some(RunId(6)),
        limit: 2,
        ..RunFilter::default()
    };
    assert_eq!(list(page).await, vec![7, 8]);

    let summary = &store.runs(&RunFilter::default()).await.unwrap()[0];
    assert_eq!(summary.workflow, "a");
    assert_eq!(summary.status, RunStatus::Finished);
    assert_eq!(summary.finished_at_ms, Some(500));
    assert_eq!(summary.started_at_ms, 100);
}

#[tokio::test]
async fn refused_calls_say_why_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let (hash, run) = program_and_run(&store, "w").await;
    store.append(vec![entry(run, 5)]).await.unwrap();
    let before = store.stats();

    let err = store.append(vec![]).await.unwrap_err();
    assert!(matches!(err, StoreError::EmptyBatch), "{err}");

    // The good first record must not survive the bad second one.
    let err = store
        .append(vec![entry(run, 6), entry(RunId(9), 0)])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "record 1 names run r-9, which does not exist"
    );
    let err = store
        .append(vec![entry(run, 6), entry(run, 6)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::SeqConflict { index: 1, .. }),
        "{err}"
    );
    let err = store
        .append(vec![Record::Program {
            hash,
            bytes: b"other bytes".to_vec(),
        }])
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("record 0: program bytes hash to"),
        "{err}"
    );
    let (unknown, _) = program("never stored");
    let err = store.start_run(start("w", unknown, 1)).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownProgram { .. }), "{err}");
    let err = store
        .append(vec![Record::Deploy {
            workflow: "w".into(),
            hash: unknown,
            at_ms: 1,
        }])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownProgram { .. }), "{err}");
    let mut child = start("w", hash, 1);
    child.parent = Some((RunId(40), 3));
    let err = store.start_run(child).await.unwrap_err();
    assert_eq!(err.to_string(), "parent run r-40 does not exist");
    store
        .append(vec![Record::Snapshot {
            run,
            upto_seq: 5,
            state: vec![],
        }])
        .await
        .unwrap();
    let err = store
        .append(vec![Record::Snapshot {
            run,
            upto_seq: 4,
            state: vec![],
        }])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::SnapshotBehind { latest: 5, .. }),
        "{err}"
    );
    store
        .append(vec![Record::Finished {
            run,
            outcome: vec![],
            at_ms: 1,
        }])
        .await
        .unwrap();
    let err = store.append(vec![entry(run, 100)]).await.unwrap_err();
    assert!(matches!(err, StoreError::RunFinished { .. }), "{err}");

    // Only the snapshot and finish were written.
    assert_eq!(store.stats().appends, before.appends + 2);
    assert_eq!(
        store.journal(run).await.unwrap(),
        vec![(5, entry_bytes(run, 5))]
    );
    drop(store);
    let (store, report) = open(dir.path());
    assert_eq!(report.records, 5);
    assert_eq!(store.journal(run).await.unwrap().len(), 1);
}

#[tokio::test]
async fn child_runs_and_deployments_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let (v1, parent) = program_and_run(&store, "flow").await;
    let (v2, r2) = program("flow v2");
    store
        .append(vec![
            r2,
            Record::Deploy {
                workflow: "flow".into(),
                hash: v1,
                at_ms: 1,
            },
            Record::Deploy {
                workflow: "flow".into(),
                hash: v2,
                at_ms: 2,
            },
        ])
        .await
        .unwrap();
    let mut child = start("flow", v1, 3);
    child.parent = Some((parent, 4));
    let child_run = store.start_run(child).await.unwrap().run();
    drop(store);
    let (store, _) = open(dir.path());
    let expected = Deployment {
        workflow: "flow".into(),
        program: v2,
        at_ms: 2,
    };
    assert_eq!(
        store.deployment("flow").await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(store.deployment("nope").await.unwrap(), None);
    assert_eq!(store.deployments().await.unwrap(), vec![expected]);
    let data = store.load_run(child_run).await.unwrap().unwrap();
    assert_eq!(data.start.parent, Some((parent, 4)));
    assert_eq!(data.start.program, v1);
    assert_eq!(
        store.program(v2).await.unwrap().as_deref(),
        Some(&b"module flow v2"[..])
    );
}

#[tokio::test]
async fn claims_lease_each_unfinished_run_to_one_node() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let (hash, r1) = program_and_run(&store, "w").await;
    let r2 = store.start_run(start("w", hash, 1)).await.unwrap().run();
    let r3 = store.start_run(start("w", hash, 1)).await.unwrap().run();
    store
        .append(vec![Record::Finished {
            run: r3,
            outcome: vec![],
            at_ms: 1,
        }])
        .await
        .unwrap();

    assert_eq!(store.claim("n1", 60_000, 1).await.unwrap(), vec![r1]);
    assert_eq!(store.claim("n2", 60_000, 10).await.unwrap(), vec![r2]);
    assert!(store.claim("n3", 60_000, 10).await.unwrap().is_empty());
    assert_eq!(
        store.renew("n1", &[r1, r2], 60_000).await.unwrap(),
        vec![r1]
    );
    store.release("n2", &[r1, r2]).await.unwrap();
    assert_eq!(store.claim("n3", 60_000, 10).await.unwrap(), vec![r2]);
    // An expired lease can be taken over; the old holder then loses it.
    assert_eq!(store.renew("n1", &[r1], 0).await.unwrap(), vec![r1]);
    assert_eq!(store.claim("n2", 60_000, 10).await.unwrap(), vec![r1]);
    assert!(store.renew("n1", &[r1], 60_000).await.unwrap().is_empty());
}

#[test]
fn run_ids_print_and_parse() {
    assert_eq!(RunId(42).to_string(), "r-42");
    assert_eq!("r-42".parse::<RunId>(), Ok(RunId(42)));
    for bad in ["42", "r-", "r-+1", "r-x", "r-99999999999999999999", "R-1"] {
        let err = bad.parse::<RunId>().unwrap_err();
        assert!(err.to_string().contains("r-<decimal>"), "{bad}: {err}");
    }
}
