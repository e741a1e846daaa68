//! Limits: oversized frames, a full queue's name, a held lock, bad options.

mod common;

use common::{open, open_with, program_and_run};
use drover_store::{EmbeddedStore, Options, Record, Store, StoreError};

#[tokio::test]
async fn a_frame_over_the_limit_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        max_frame_bytes: 4096,
        ..Options::default()
    };
    let (store, _) = open_with(dir.path(), options.clone());
    let (hash, run) = program_and_run(&store, "w").await;
    let before = store.stats();
    let err = store
        .append(vec![Record::Journal {
            run,
            seq: 0,
            entry: vec![0; 5000],
        }])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::FrameTooLarge {
                records: 1,
                max: 4096,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("over the 4096-byte frame limit"),
        "{err}"
    );
    // Many small records add up too.
    let many = (0..100)
        .map(|seq| Record::Journal {
            run,
            seq,
            entry: vec![0; 50],
        })
        .collect();
    assert!(matches!(
        store.append(many).await.unwrap_err(),
        StoreError::FrameTooLarge { records: 100, .. }
    ));
    let mut big = common::start("w", hash, 1);
    big.input = vec![0; 5000];
    assert!(matches!(
        store.start_run(big).await.unwrap_err(),
        StoreError::FrameTooLarge { .. }
    ));
    assert_eq!(store.stats(), before);
    // Just under the limit is fine.
    store
        .append(vec![Record::Journal {
            run,
            seq: 0,
            entry: vec![0; 4000],
        }])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_second_open_of_a_held_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let Err(err) = EmbeddedStore::open(dir.path(), Options::default()) else {
        panic!("a second open succeeded");
    };
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("in use by another process"), "{text}");
    assert!(text.contains("LOCK"), "{text}");
    // Dropping the store releases the directory.
    drop(store);
    let (store, _) = open(dir.path());
    program_and_run(&store, "w").await;
}

#[test]
fn impossible_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (options, says) in [
        (
            Options {
                max_frame_bytes: 0,
                ..Options::default()
            },
            "max_frame_bytes",
        ),
        (
            Options {
                segment_bytes: 10,
                ..Options::default()
            },
            "segment_bytes",
        ),
        (
            Options {
                queue_capacity: 0,
                ..Options::default()
            },
            "queue_capacity",
        ),
    ] {
        let Err(err) = EmbeddedStore::open(dir.path(), options) else {
            panic!("bad options accepted");
        };
        assert!(err.to_string().contains(says), "{err}");
    }
}
