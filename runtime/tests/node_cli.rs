//! `drover run` through `drover::cli::run_with`, as the binary calls it:
//! output, `--json`, exit codes and `--data`.

use drover::cli::run_with;
use drover::prelude::*;

#[activity]
pub async fn double(x: i64) -> Result<i64, Error> {
    Ok(x * 2)
}

#[workflow]
pub async fn double_twice(x: i64) -> Result<i64, Error> {
    let a = double(x).await?;
    let b = double(a).await?;
    Ok(b)
}

#[workflow]
pub async fn always_refuses(reason: String) -> Result<i64, Error> {
    let _ = double(1).await?;
    Err(Error::new("refused", reason))
}

fn drover(args: &[&str]) -> (u8, String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut argv = vec!["drover"];
    argv.extend_from_slice(args);
    let code = run_with(argv, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn run_prints_the_result_and_the_trace() {
    let (code, out, err) = drover(&["run", "double_twice", "--input", "3"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("of double_twice"), "{out}");
    assert!(out.contains("double(3) → 6"), "{out}");
    assert!(out.contains("double(6) → 12"), "{out}");
    assert!(out.contains("result: {\n  \"Ok\": 12\n}"), "{out}");
    assert!(
        out.contains("2 effect attempts, 3 journal entries"),
        "{out}"
    );
}

#[test]
fn run_json_is_for_scripts() {
    let (code, out, err) = drover(&["run", "double_twice", "--input", r#"{"x": 5}"#, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["outcome"]["completed"]["Ok"], 20);
    assert_eq!(v["ok"], true);
    let trace = v["trace"].as_array().unwrap();
    assert_eq!(trace.len(), 2);
    assert_eq!(trace[0]["effect"], "double");
    assert_eq!(trace[1]["result"], "20");
    assert!(trace[1]["duration_ms"].is_u64());
}

#[test]
fn exit_codes_tell_bad_input_from_failed_runs() {
    let (code, _, err) = drover(&["run", "double_twice", "--input", "{nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("not JSON"), "{err}");
    let (code, _, err) = drover(&["run", "no_such_workflow"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("double_twice"),
        "known workflows are listed: {err}"
    );
    let (code, _, _) = drover(&["run", "double_twice", "--input", "3", "--resource", "x"]);
    assert_eq!(code, 1);
    let (code, _, _) = drover(&["run"]);
    assert_eq!(code, 1);
    let (code, out, err) = drover(&["run", "always_refuses", "--input", "\"no\"", "--json"]);
    assert_eq!(code, 4, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["outcome"]["completed"]["Err"]["kind"], "refused");
    let (code, out, _) = drover(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("run"), "{out}");
}

#[test]
fn data_keeps_the_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let data = data.to_str().unwrap();
    for expected in ["r-1", "r-2"] {
        let (code, out, err) = drover(&[
            "run",
            "double_twice",
            "--input",
            "1",
            "--data",
            data,
            "--json",
        ]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        // The second run is a new run in the same store.
        assert_eq!(v["run"], expected);
    }
}
