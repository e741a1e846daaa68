//! File-driven tests: every `.dasm` under `tests/data/{parse,verify,interp}/`
//! is one case, with its expectations written inline.
//!
//! - The first line names the kind: `; test: parse`, `; test: verify` or
//!   `; test: interp`.
//! - `parse` and `verify` cases end the offending lines with
//!   `; error: TEXT` (or `; warning: TEXT`): a diagnostic whose message
//!   contains TEXT must point at that line, and every diagnostic must be
//!   expected. A case without expectations must parse (and verify) cleanly
//!   and round-trip through the printer.
//! - `interp` cases have header lines
//!   `; run: WORKFLOW [ARG, ...] => RESULT_JSON` or `=> fail KIND` (the
//!   arguments in Drover literal syntax, so `#Ok(5)` is a variant), and
//!   `; effect: NAME RESPONSE_JSON` (repeat a name to queue responses).
//!
//! Set `DROVER_FILETEST=substring` to run only the matching cases.

use std::path::{Path, PathBuf};

use drover_compiler::scripted::{self, Outcome, Response, Script};
use drover_interpreter::{Config, Program};
use drover_ir::text::{self, TextMap};
use drover_ir::verify::{self, Severity};
use drover_ir::Value;

#[derive(Debug, Clone, PartialEq)]
struct Expected {
    line: usize,
    severity: &'static str,
    text: String,
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data")
}

fn cases() -> Vec<PathBuf> {
    let filter = std::env::var("DROVER_FILETEST").unwrap_or_default();
    let mut out = Vec::new();
    for kind in ["parse", "verify", "interp"] {
        let dir = data_dir().join(kind);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.extension().is_some_and(|e| e == "dasm")
                && path.to_string_lossy().contains(&filter)
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `; error: X` / `; warning: X` comments, by line; one line may carry
/// several (`; error: X ; warning: Y`).
fn expectations(src: &str) -> Vec<Expected> {
    let mut out = Vec::new();
    for (i, line) in src.lines().enumerate() {
        let mut marks: Vec<(usize, &'static str, usize)> = Vec::new();
        for severity in ["error", "warning"] {
            let marker = format!("; {severity}: ");
            marks.extend(
                line.match_indices(&marker)
                    .map(|(pos, _)| (pos, severity, pos + marker.len())),
            );
        }
        marks.sort();
        for (k, &(_, severity, text_start)) in marks.iter().enumerate() {
            let text_end = marks.get(k + 1).map_or(line.len(), |m| m.0);
            out.push(Expected {
                line: i + 1,
                severity,
                text: line[text_start..text_end].trim().to_owned(),
            });
        }
    }
    out
}

fn line_of(src: &str, offset: usize) -> usize {
    src.get(..offset).unwrap_or(src).matches('\n').count() + 1
}

/// Matches actual (line, severity, message) against the expectations and
/// returns a description of every mismatch.
fn compare(expected: &[Expected], actual: &[(usize, &'static str, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut unmatched: Vec<&(usize, &'static str, String)> = actual.iter().collect();
    for e in expected {
        match unmatched.iter().position(|(line, sev, msg)| {
            *line == e.line && *sev == e.severity && msg.contains(&e.text)
        }) {
            Some(i) => {
                unmatched.remove(i);
            }
            None => problems.push(format!(
                "line {}: expected {} containing {:?}; got on that line: {:?}",
                e.line,
                e.severity,
                e.text,
                actual.iter().filter(|a| a.0 == e.line).collect::<Vec<_>>()
            )),
        }
    }
    for (line, sev, msg) in unmatched {
        problems.push(format!("line {line}: unexpected {sev}: {msg}"));
    }
    problems
}

fn run_parse(path: &Path, src: &str) -> Vec<String> {
    let expected = expectations(src);
    match text::parse_with_map(&path.display().to_string(), src) {
        Ok((module, _)) => {
            let mut problems = compare(&expected, &[]);
            let printed = text::print(&module);
            match text::parse(&printed) {
                Ok(again) if text::print(&again) == printed => {}
                Ok(_) => problems.push("print(parse(print(m))) != print(m)".into()),
                Err(e) => problems.push(format!("printed text does not parse: {e}")),
            }
            problems
        }
        Err(errs) => {
            let actual: Vec<_> = errs
                .errors()
                .iter()
                .map(|e| (e.line as usize, "error", e.message.clone()))
                .collect();
            compare(&expected, &actual)
        }
    }
}

fn diag_lines(
    src: &str,
    map: &TextMap,
    report: &verify::Report,
) -> Vec<(usize, &'static str, String)> {
    report
        .diags
        .iter()
        .map(|d| {
            let line = map.locate(d.location).map_or(0, |r| line_of(src, r.start));
            let sev = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            (line, sev, d.message.clone())
        })
        .collect()
}

fn run_verify(path: &Path, src: &str) -> Vec<String> {
    let (module, map) = match text::parse_with_map(&path.display().to_string(), src) {
        Ok(ok) => ok,
        Err(e) => {
            return vec![format!(
                "does not parse:\n{}",
                drover_ir::diagnostics::render(&e)
            )]
        }
    };
    let report = verify::verify(&module);
    let problems = compare(&expectations(src), &diag_lines(src, &map, &report));
    if !problems.is_empty() {
        let rendered = report.render(&path.display().to_string(), src, &map);
        return problems.into_iter().chain([rendered]).collect();
    }
    problems
}

fn run_interp(path: &Path, src: &str) -> Vec<String> {
    let (module, _) = match text::assemble(&path.display().to_string(), src) {
        Ok(ok) => ok,
        Err(e) => {
            return vec![format!(
                "does not parse:\n{}",
                drover_ir::diagnostics::render(&e)
            )]
        }
    };
    let report = verify::verify(&module);
    if report.has_errors() {
        return vec![format!("does not verify: {:?}", report.diags)];
    }
    let program = match Program::new(module) {
        Ok(p) => p,
        Err(e) => return vec![format!("does not load: {e}")],
    };
    let mut script = Script::default();
    let mut runs = Vec::new();
    for (i, line) in src.lines().enumerate() {
        let n = i + 1;
        if let Some(rest) = line.strip_prefix("; effect: ") {
            let Some((name, json)) = rest.split_once(' ') else {
                return vec![format!("line {n}: `; effect: NAME RESPONSE_JSON`")];
            };
            match Response::from_json(json) {
                Ok(r) => script.push(name, r),
                Err(e) => return vec![format!("line {n}: bad response: {e}")],
            }
        } else if let Some(rest) = line.strip_prefix("; run: ") {
            runs.push((n, rest.to_owned()));
        }
    }
    if runs.is_empty() {
        return vec!["an interp case needs at least one `; run:` line".into()];
    }
    let mut problems = Vec::new();
    for (n, spec) in runs {
        let Some((call, expect)) = spec.split_once(" => ") else {
            problems.push(format!("line {n}: `; run: WORKFLOW ARGS => RESULT`"));
            continue;
        };
        let Some((workflow, args)) = call.trim().split_once(' ') else {
            problems.push(format!("line {n}: `; run: WORKFLOW ARGS => RESULT`"));
            continue;
        };
        let args: Vec<Value> = match drover_ir::text::parse_value("args", args) {
            Ok(Value::List(a)) => a,
            Ok(other) => {
                problems.push(format!("line {n}: args must be a list, got {other}"));
                continue;
            }
            Err(e) => {
                problems.push(format!("line {n}: args must be a literal list: {e}"));
                continue;
            }
        };
        let mut script = script.clone();
        let run = match scripted::run(
            &program,
            workflow,
            args,
            &[],
            &mut script,
            Config::default(),
        ) {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("line {n}: interpreter error: {e}"));
                continue;
            }
        };
        let expect = expect.trim();
        match (&run.outcome, expect.strip_prefix("fail ")) {
            (Outcome::Failed(e), Some(kind)) => {
                let got = format!("{:?}", e.kind);
                if got != kind.trim() {
                    problems.push(format!("line {n}: expected failure {kind}, got {got}: {e}"));
                }
            }
            (Outcome::Completed(v), None) => {
                match serde_json::from_str::<serde_json::Value>(expect) {
                    Ok(want) if v.to_json() == want => {}
                    Ok(want) => {
                        problems.push(format!("line {n}: expected {want}, got {}", v.to_json()))
                    }
                    Err(e) => problems.push(format!("line {n}: bad expected JSON: {e}")),
                }
            }
            (outcome, _) => problems.push(format!("line {n}: expected {expect}, got {outcome:?}")),
        }
    }
    problems
}

#[test]
fn file_driven_cases() {
    let cases = cases();
    assert!(!cases.is_empty(), "no cases under {}", data_dir().display());
    let mut failures = Vec::new();
    for path in &cases {
        let src = std::fs::read_to_string(path).expect("readable case");
        let kind = src
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("; test: "))
            .map(str::trim);
        let problems = match kind {
            Some("parse") => run_parse(path, &src),
            Some("verify") => run_verify(path, &src),
            Some("interp") => run_interp(path, &src),
            other => vec![format!(
                "first line must be `; test: parse|verify|interp`, got {other:?}"
            )],
        };
        if !problems.is_empty() {
            failures.push(format!("{}:\n  {}", path.display(), problems.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    eprintln!("{} file-driven cases passed", cases.len());
}
