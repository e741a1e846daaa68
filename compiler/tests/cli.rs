//! Tests that run the `dslc` binary the way a user does.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A `dslc` invocation: `.args(..)`, then `.run()` and assert on the output.
struct Dslc {
    cmd: Command,
}

struct Ran {
    out: Output,
}

fn dslc() -> Dslc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dslc"));
    cmd.current_dir(root());
    Dslc { cmd }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

impl Dslc {
    fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    fn run(mut self) -> Ran {
        let out = self.cmd.output().expect("dslc runs");
        Ran { out }
    }
}

impl Ran {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }

    #[track_caller]
    fn success(self) -> Self {
        assert_eq!(
            self.code(),
            0,
            "dslc failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }

    #[track_caller]
    fn code_is(self, code: i32) -> Self {
        assert_eq!(
            self.code(),
            code,
            "unexpected exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

const EXAMPLE: &str = "examples/asm/scan_email.dasm";
const EFFECTS: &str = "examples/asm/scan_email.effects.json";
const INPUT: &str = r#"{"message_id": "m-1", "attachment_sha256": "9f86d081884c7d65"}"#;

#[test]
fn asm_disasm_round_trips_and_inspect_shows_the_hash() {
    let dir = tmp();
    let dbc = dir.path().join("scan.dbc");
    let asm = dslc()
        .args(["asm", EXAMPLE, "-o"])
        .arg_path(&dbc)
        .run()
        .success();
    assert!(asm.stdout().starts_with("wrote "), "{}", asm.stdout());

    let dis = dslc().args(["disasm"]).arg_path(&dbc).run().success();
    assert!(dis.stdout().contains("workflow scan_email(email) {"));
    // The disassembly assembles to the same module, so the same bytes.
    let dasm2 = dir.path().join("again.dasm");
    std::fs::write(&dasm2, dis.stdout()).expect("write");
    let dbc2 = dir.path().join("again.dbc");
    dslc()
        .args(["asm"])
        .arg_path(&dasm2)
        .args(["-o"])
        .arg_path(&dbc2)
        .run()
        .success();
    let dis2 = dslc().args(["disasm"]).arg_path(&dbc2).run().success();
    assert_eq!(dis.stdout(), dis2.stdout());

    let inspect = dslc().args(["inspect"]).arg_path(&dbc).run().success();
    let text = inspect.stdout();
    assert!(text.contains("DRBC v1"), "{text}");
    assert!(text.contains("scan_email(email)"), "{text}");
    assert!(text.contains("pagerduty.trigger"), "{text}");
    assert!(text.contains("perform"), "{text}");

    let json = dslc()
        .args(["inspect", "--json"])
        .arg_path(&dbc)
        .run()
        .success();
    let v: serde_json::Value =
        serde_json::from_str(&json.stdout()).expect("inspect --json is JSON");
    assert_eq!(v["hash"].as_str().map(str::len), Some(64));
    assert_eq!(v["workflows"][0]["name"], "scan_email");
    assert!(v["effects_used"]
        .as_array()
        .is_some_and(|a| a.iter().any(|e| e == "scan")));
}

#[test]
fn verify_accepts_both_forms() {
    let dir = tmp();
    let ok = dslc().args(["verify", EXAMPLE]).run().success();
    assert!(ok.stdout().starts_with("ok: "), "{}", ok.stdout());
    let dbc = dir.path().join("scan.dbc");
    dslc()
        .args(["asm", EXAMPLE, "-o"])
        .arg_path(&dbc)
        .run()
        .success();
    dslc().args(["verify"]).arg_path(&dbc).run().success();
}

#[test]
fn verify_prints_every_error_against_the_text_and_exits_1() {
    let ran = dslc()
        .args(["verify", "tests/data/verify/many_errors_at_once.dasm"])
        .run()
        .code_is(1);
    let err = ran.stderr();
    assert!(err.contains("r9"), "{err}");
    assert!(err.contains("len"), "{err}");
    assert!(err.contains("placeholder"), "{err}");
    // miette points at line:col in the file.
    assert!(err.contains("many_errors_at_once.dasm:5:"), "{err}");

    let json = dslc()
        .args([
            "verify",
            "--json",
            "tests/data/verify/many_errors_at_once.dasm",
        ])
        .run()
        .code_is(1);
    let v: serde_json::Value = serde_json::from_str(&json.stdout()).expect("JSON");
    assert_eq!(v["ok"], false);
    assert_eq!(v["diagnostics"].as_array().map(Vec::len), Some(3));
}

#[test]
fn parse_errors_are_rendered_with_line_and_hint() {
    let ran = dslc()
        .args(["verify", "tests/data/parse/unknown_label.dasm"])
        .run()
        .code_is(1);
    let err = ran.stderr();
    assert!(err.contains("no block labelled `nowhere`"), "{err}");
    assert!(err.contains("unknown_label.dasm:4:"), "{err}");
    assert!(err.contains("no block labelled `elsewhere`"), "{err}");
}

#[test]
fn asm_refuses_a_program_that_does_not_verify_and_writes_nothing() {
    let dir = tmp();
    let out = dir.path().join("bad.dbc");
    dslc()
        .args(["asm", "tests/data/verify/use_before_def.dasm", "-o"])
        .arg_path(&out)
        .run()
        .code_is(1);
    assert!(!out.exists());
}

#[test]
fn broken_bytecode_gets_a_clear_error() {
    let dir = tmp();
    let dbc = dir.path().join("scan.dbc");
    dslc()
        .args(["asm", EXAMPLE, "-o"])
        .arg_path(&dbc)
        .run()
        .success();
    let mut bytes = std::fs::read(&dbc).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&dbc, &bytes).expect("write");
    let ran = dslc().args(["inspect"]).arg_path(&dbc).run().code_is(1);
    assert!(ran.stderr().contains("checksum"), "{}", ran.stderr());

    bytes.truncate(20);
    std::fs::write(&dbc, &bytes).expect("write");
    let ran = dslc().args(["disasm"]).arg_path(&dbc).run().code_is(1);
    assert!(ran.stderr().contains("truncated"), "{}", ran.stderr());

    let elf = dir.path().join("not.dbc");
    std::fs::write(&elf, b"\x7fELF\x02\x01\x01\x00").expect("write");
    let ran = dslc().args(["disasm"]).arg_path(&elf).run().code_is(1);
    assert!(ran.stderr().contains("DRBC"), "{}", ran.stderr());
}

#[test]
fn graph_prints_dot_with_labelled_edges() {
    let ran = dslc()
        .args(["graph", EXAMPLE, "scan_email"])
        .run()
        .success();
    let dot = ran.stdout();
    assert!(dot.starts_with("digraph \"scan_email\" {"), "{dot}");
    assert!(dot.contains("[label=\"true\"]"), "{dot}");
    assert!(dot.contains("[label=\"None\"]"), "{dot}");
    assert!(dot.contains("perform scan(r1)"), "{dot}");

    let missing = dslc().args(["graph", EXAMPLE, "nope"]).run().code_is(1);
    assert!(
        missing.stderr().contains("it has: scan_email"),
        "{}",
        missing.stderr()
    );
}

#[test]
fn graph_svg_uses_graphviz() {
    if Command::new("dot")
        .arg("-V")
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install graphviz (.ci/run does)"
        );
        eprintln!("skipping: Graphviz `dot` is not installed");
        return;
    }
    let dir = tmp();
    let svg = dir.path().join("g.svg");
    dslc()
        .args(["graph", EXAMPLE, "scan_email", "--svg", "-o"])
        .arg_path(&svg)
        .run()
        .success();
    let text = std::fs::read_to_string(&svg).expect("svg written");
    assert!(text.contains("<svg"), "{text}");
}

#[test]
fn run_prints_commands_result_and_trace() {
    let ran = dslc()
        .args([
            "run",
            EXAMPLE,
            "scan_email",
            "--input",
            INPUT,
            "--effects",
            EFFECTS,
        ])
        .run()
        .success();
    let out = ran.stdout();
    assert!(
        out.contains("perform   #1 memcache.get(\"verdict:9f86d081884c7d65\") attempt 1"),
        "{out}"
    );
    assert!(
        out.contains("attempt 2"),
        "the failed lookup is retried: {out}"
    );
    assert!(out.contains("slack.post"), "{out}");
    assert!(out.contains("pagerduty.trigger"), "{out}");
    assert!(out.contains("@ examples/asm/scan_email.dasm:"), "{out}");
    assert!(out.contains("\"verdict\": \"infected\""), "{out}");

    let json = dslc()
        .args([
            "run",
            EXAMPLE,
            "scan_email",
            "--json",
            "--input",
            INPUT,
            "--effects",
            EFFECTS,
        ])
        .run()
        .success();
    let v: serde_json::Value = serde_json::from_str(&json.stdout()).expect("JSON");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["result"]["alerted"], true);
    assert_eq!(v["retries"], 1);
}

#[test]
fn run_failure_exits_4_and_says_why() {
    // No scripted responses: the lookup fails, and `unwrap` fails the run.
    let ran = dslc()
        .args(["run", EXAMPLE, "scan_email", "--input", INPUT])
        .run()
        .code_is(4);
    assert!(ran.stdout().contains("failed:"), "{}", ran.stdout());
    assert!(ran.stdout().contains("unscripted"), "{}", ran.stdout());
}

#[test]
fn bad_responses_file_points_at_the_mistake() {
    let dir = tmp();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\n  \"scan\": {\"ok\": 1,}\n}\n").expect("write");
    let ran = dslc()
        .args(["run", EXAMPLE, "scan_email", "--input", INPUT, "--effects"])
        .arg_path(&bad)
        .run()
        .code_is(1);
    let err = ran.stderr();
    assert!(err.contains("invalid effect responses file"), "{err}");
    assert!(err.contains("bad.json:2:"), "{err}");
}

#[test]
fn usage_and_io_errors_have_their_own_exit_codes() {
    dslc().args(["frobnicate"]).run().code_is(2);
    let ran = dslc()
        .args(["verify", "does/not/exist.dasm"])
        .run()
        .code_is(3);
    assert!(
        ran.stderr().contains("cannot read does/not/exist.dasm"),
        "{}",
        ran.stderr()
    );
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dslc"))
        .current_dir(root())
        .args(["graph", EXAMPLE, "scan_email"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

trait ArgPath {
    fn arg_path(self, p: &Path) -> Self;
}

impl ArgPath for Dslc {
    fn arg_path(mut self, p: &Path) -> Self {
        self.cmd.arg(p);
        self
    }
}

#[test]
fn limits_fail_the_run_with_a_named_error_and_a_place() {
    let ran = dslc()
        .args(["run", "tests/data/interp/limits.dasm", "forever"])
        .run()
        .code_is(4);
    assert!(
        ran.stdout().contains(
            "failed: FuelExhausted: the step ran out of fuel after 10000000 instructions, in `forever` block `entry` #0 (tests/data/interp/limits.dasm:8:5)"
        ),
        "{}",
        ran.stdout()
    );
    let ran = dslc()
        .args(["run", "tests/data/interp/limits.dasm", "balloon", "--json"])
        .run()
        .code_is(4);
    let v: serde_json::Value = serde_json::from_str(&ran.stdout()).expect("JSON");
    assert_eq!(v["status"], "failed");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("ValueTooLarge: ")),
        "{v}"
    );
}

#[test]
fn input_may_be_a_drover_literal_for_variants() {
    let ran = dslc()
        .args([
            "run",
            "tests/data/interp/records_and_variants.dasm",
            "classify",
            "--input",
            "#Err(\"boom\")",
        ])
        .run()
        .success();
    assert!(
        ran.stdout().contains("result: \"err boom\""),
        "{}",
        ran.stdout()
    );
    let bad = dslc()
        .args([
            "run",
            "tests/data/interp/records_and_variants.dasm",
            "classify",
            "--input",
            "#Err((",
        ])
        .run()
        .code_is(1);
    assert!(bad.stderr().contains("neither JSON"), "{}", bad.stderr());
}
