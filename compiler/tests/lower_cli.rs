//! `dslc compile` and `dslc diff`, run as a user runs them; the other
//! subcommands work on what `compile` writes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `dslc` from the repository root.
fn dslc<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dslc"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("dslc runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const V1: &str = r#"
#[activity]
async fn fetch(id: i64) -> Result<i64, Error> { Ok(id * 2) }

#[workflow]
async fn total(ids: Vec<i64>) -> Result<i64, Error> {
    let mut sum = 0;
    for id in ids {
        sum += fetch(id).await?;
    }
    Ok(sum)
}

#[workflow]
async fn ping() -> i64 { 1 }
"#;

const V2: &str = r#"
#[activity]
async fn fetch(id: i64) -> Result<i64, Error> { Ok(id * 2) }

#[workflow]
async fn total(ids: Vec<i64>, bonus: i64) -> Result<i64, Error> {
    let mut sum = bonus;
    for id in ids {
        sum += fetch(id).await?;
    }
    memcache::set("total", &sum, 60).await?;
    Ok(sum)
}

#[workflow]
async fn pong() -> i64 { 2 }
"#;

#[test]
fn compile_writes_one_dbc_per_workflow_that_other_commands_read() {
    let dir = tempfile::tempdir().expect("tmp");
    let src = dir.path().join("flows.rs");
    std::fs::write(&src, V1).expect("write");
    let out_dir = dir.path().join("out");
    let out = dslc(&[
        "compile".as_ref(),
        src.as_os_str(),
        "-o".as_ref(),
        out_dir.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("total") && stdout.contains("instructions"),
        "{stdout}"
    );
    assert!(stdout.contains("ping"), "{stdout}");
    let total = out_dir.join("total.dbc");
    for cmd in ["verify", "inspect", "disasm"] {
        let out = dslc(&[cmd.as_ref(), total.as_os_str()]);
        assert_eq!(out.status.code(), Some(0), "{cmd}: {}", text(&out.stderr));
    }
    let out = dslc(&["graph".as_ref(), total.as_os_str(), "total".as_ref()]);
    assert_eq!(out.status.code(), Some(0), "graph: {}", text(&out.stderr));
    let effects = dir.path().join("effects.json");
    std::fs::write(&effects, r#"{"fetch": [{"ok": 2}, {"ok": 5}]}"#).expect("write");
    let out = dslc(&[
        "run".as_ref(),
        total.as_os_str(),
        "total".as_ref(),
        "--input".as_ref(),
        "[1, 2]".as_ref(),
        "--effects".as_ref(),
        effects.as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(0), "run: {}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["result"]["Ok"], 7, "{v}");
    let out = dslc(&["disasm".as_ref(), total.as_os_str()]);
    assert!(
        text(&out.stdout).contains("perform fetch("),
        "{}",
        text(&out.stdout)
    );

    let json = dslc(&[
        "compile".as_ref(),
        src.as_os_str(),
        "-o".as_ref(),
        out_dir.as_os_str(),
        "--json".as_ref(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(v["workflows"][0]["name"], "total");
    assert_eq!(v["workflows"][0]["activities"][0], "fetch");
}

#[test]
fn compile_errors_render_against_the_rust_source() {
    let dir = tempfile::tempdir().expect("tmp");
    let src = dir.path().join("bad.rs");
    std::fs::write(
        &src,
        "#[workflow]\nasync fn w() {\n    let t = std::time::Instant::now();\n    unsafe { 1 };\n}\n",
    )
    .expect("write");
    let out_dir = dir.path().join("out");
    let out = dslc(&[
        "compile".as_ref(),
        src.as_os_str(),
        "-o".as_ref(),
        out_dir.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("2 errors in"), "{err}");
    assert!(err.contains("reads the clock"), "{err}");
    assert!(
        err.contains("use `drover::now().await`, which is journaled"),
        "{err}"
    );
    assert!(err.contains("bad.rs:4:5"), "{err}");
    assert!(!out_dir.exists(), "nothing is written for a rejected file");
}

#[test]
fn diff_reports_workflows_effects_params_and_code() {
    let dir = tempfile::tempdir().expect("tmp");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for (src, out) in [(V1, &a), (V2, &b)] {
        let file = dir.path().join("flows.rs");
        std::fs::write(&file, src).expect("write");
        let r = dslc(&[
            "compile".as_ref(),
            file.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    }
    let (old, new) = (a.join("total.dbc"), b.join("total.dbc"));
    let same = dslc(&["diff".as_ref(), old.as_os_str(), old.as_os_str()]);
    assert_eq!(same.status.code(), Some(0));
    assert_eq!(text(&same.stdout), "no differences\n");

    let out = dslc(&["diff".as_ref(), old.as_os_str(), new.as_os_str()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("+ effect memcache.set(key, value, ttl_s)"),
        "{stdout}"
    );
    assert!(stdout.contains("~ workflow total"), "{stdout}");
    assert!(stdout.contains("params (ids) -> (ids, bonus)"), "{stdout}");
    assert!(
        stdout.contains("+    r") && stdout.contains("perform memcache.set("),
        "{stdout}"
    );

    let json = dslc(&[
        "diff".as_ref(),
        old.as_os_str(),
        new.as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(json.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(v["same"], false);
    assert_eq!(v["changed"][0]["params"]["new"][1], "bonus");

    let missing = dslc(&[
        "diff".as_ref(),
        old.as_os_str(),
        dir.path().join("nope.dbc").as_os_str(),
    ]);
    assert_eq!(missing.status.code(), Some(2));
}

/// A `#[pure]` fn is native code `dslc` does not have: `dslc run` answers it
/// from the responses file by name, in order, or fails naming it.
#[test]
fn run_answers_pure_fns_from_the_responses_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let src = dir.path().join("pure.rs");
    std::fs::write(
        &src,
        r#"
#[pure]
fn double(x: i64) -> i64 { x * 2 }

#[workflow]
async fn twice(a: i64, b: i64) -> i64 { double(a) + double(b) }
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    let compiled = dslc(&[
        "compile".as_ref(),
        src.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(compiled.status.success(), "{}", text(&compiled.stderr));
    let dbc = out.join("twice.dbc");
    let effects = dir.path().join("effects.json");
    std::fs::write(&effects, r#"{"double": [{"ok": 10}, {"ok": 4}]}"#).unwrap();
    let run = |effects: &Path| {
        dslc(&[
            "run".as_ref(),
            dbc.as_os_str(),
            "twice".as_ref(),
            "--input".as_ref(),
            "[5, 2]".as_ref(),
            "--effects".as_ref(),
            effects.as_os_str(),
            "--json".as_ref(),
        ])
    };
    let ran = run(&effects);
    assert!(ran.status.success(), "{}", text(&ran.stderr));
    let json: serde_json::Value = serde_json::from_slice(&ran.stdout).unwrap();
    assert_eq!(json["result"], 14);

    std::fs::write(&effects, "{}").unwrap();
    let unscripted = run(&effects);
    assert_eq!(unscripted.status.code(), Some(4));
    let json: serde_json::Value = serde_json::from_slice(&unscripted.stdout).unwrap();
    assert!(json["error"].as_str().unwrap().contains("double"), "{json}");
}
